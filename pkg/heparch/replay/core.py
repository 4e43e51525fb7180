"""Replay a bundle's claims: plan the points, run them, compare within the recorded tolerance.

:func:`plan` reads the results components (one per likelihood, DESIGN.md 5b) and turns
every claimed point into a :class:`~heparch.replay.work.Task`; :func:`replay` runs them
(:mod:`heparch.replay.executor`), compares each result with its claim as it arrives and
returns a :class:`~heparch.replay.outcome.ReplayReport`.

The backend is chosen at replay time (``fast`` where it supports the model, else
``pyhf``; ``simplified`` for a simplified likelihood); the settings are the recorded
ones (``mu``, ``level``, interpolation codes, fit tolerance). A value agrees when
``|replayed - claimed| <= max(abs, rel * |claimed|)`` with the component's tolerance,
or :data:`DEFAULT_TOLERANCE` where it records none.

>>> compare(Values(0.063, (0.1,) * 5), Values(0.06615, (0.1,) * 5), DEFAULT_TOLERANCE)[0].field
'CLs_obs'
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import heparch
from heparch import signals
from heparch.analysis import DEFAULT_TOLERANCE, Analysis, Claim, Claims, Likelihood, claims_of, select
from heparch.errors import InputError
from heparch.infer.backends import choose
from heparch.infer.pyhf_backend import NOMINAL_START
from heparch.replay import work
from heparch.replay.executor import execute
from heparch.replay.outcome import Audited, AuditSummary, LocalMinimum, Mismatch, PointOutcome, ReplayReport, SimplifiedCLs, Values
from heparch.replay.work import Context, Task, TaskResult
from heparch.spec.components import Tolerance, ToleranceSpec
from heparch.store.writer import atomic_output

STATE_FORMAT: Final = "heparch-replay-state/1"


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------
# comparison


def allowed(claimed: float, spec: ToleranceSpec) -> float:
    """The tolerance ``max(abs, rel * |claimed|)``."""
    return max(float(spec.abs or 0.0), float(spec.rel or 0.0) * abs(claimed))


def _spec(tolerance: Tolerance, group: str) -> ToleranceSpec:
    """The tolerance of a group (``CLs`` or ``mu_up``); the default's where none is given."""
    spec: ToleranceSpec | None = getattr(tolerance, group)
    if spec is None or (spec.abs is None and spec.rel is None):
        spec = getattr(DEFAULT_TOLERANCE, group)
    assert spec is not None
    return spec


#: a value at or below this underflows double precision (what the backends mark as ``underflow``)
UNDERFLOW: Final = 1e-300


def _group(field: str) -> str:
    """The tolerance group of a compared field: ``CLs`` or ``mu_up``."""
    return "CLs" if field.startswith("CLs") else "mu_up"


def candidates(claimed: Values, replayed: Values, tolerance: Tolerance) -> Iterator[Mismatch]:
    """Every claimed value as a :class:`Mismatch` candidate (field, claimed, replayed, tolerance);
    a limit above the cap (or not computed) is replayed as infinity. A value both sides mark as underflowing
    double precision agrees without a comparison, and so does one marked on one side whose other
    side is also at most :data:`UNDERFLOW` (an unmarked 0 from an older tool); otherwise a value
    marked on one side only is a mismatch whatever the numbers (its ``note`` says which side)."""
    specs = {group: _spec(tolerance, group) for group in ("CLs", "mu_up")}
    got = replayed.fields()
    for field, w in claimed.fields().items():
        g = got.get(field)
        note = _underflow_note(field, w, g, set(claimed.underflow or ()), set(replayed.underflow or ()))
        if note is not None:
            yield Mismatch(field, float(w), math.inf if g is None else float(g), allowed(w, specs[_group(field)]), note)


def _underflow_note(field: str, claimed: float, replayed: float | None, under_c: set[str], under_r: set[str]) -> str | None:
    """None where the value agrees without a comparison (underflowing on both sides, marked or
    not); else the mismatch note ("" for the plain comparison of numbers)."""
    marked_c, marked_r = field in under_c, field in under_r
    if marked_c == marked_r:
        return None if marked_c else ""
    unmarked = replayed if marked_c else claimed
    if unmarked is not None and 0.0 <= float(unmarked) <= UNDERFLOW:
        return None  # the other side holds the same underflowed value without the mark (claims by older tools)
    sides = ("the claim", "the replay") if marked_c else ("the replay", "the claim")
    return f"{sides[0]} marks it as underflowing double precision, {sides[1]} does not"


def compare(claimed: Values, replayed: Values, tolerance: Tolerance) -> list[Mismatch]:
    """Every claimed value (``CLs_obs``, ``CLs_exp[i]``, ``mu_up_obs``, ``mu_up_exp[i]``) that
    the replay does not reproduce within ``tolerance``; a replayed limit above the cap (infinity in
    :class:`Values`, null in JSON) never agrees with a claimed one, nor does a value marked as
    underflowing on one side only."""
    return [m for m in candidates(claimed, replayed, tolerance) if m.note or not abs(m.difference) <= m.tolerance]


def ratio(m: Mismatch) -> float:
    """``|replayed - claimed| / tolerance`` of one compared value; infinite for a value marked as
    underflowing on one side only, or a difference where the tolerance is 0."""
    d = abs(m.difference)
    if m.note:
        return math.inf
    return d / m.tolerance if m.tolerance > 0 else (0.0 if d == 0 else math.inf)


def worst_ratio(claimed: Values, replayed: Values, tolerance: Tolerance) -> float:
    """The largest ``|replayed - claimed| / tolerance`` over the claimed values (<= 1: it agrees)."""
    return max((ratio(m) for m in candidates(claimed, replayed, tolerance)), default=0.0)


def local_minimum(claimed: Values, replayed: Values, tolerance: Tolerance) -> LocalMinimum | None:
    """Where the claimed CLs values disagree with the replay's (taken at the lowest minimum) but
    agree with the values from another start of its fits: that start and both values (the claim
    was made at a local minimum). ``replayed.starts`` holds, by start name, an object with
    that start's ``CLs_obs`` (and ``CLs_exp``); None when no start explains the claim.

    >>> local_minimum(Values(0.2778, ()), Values(0.114, (), starts={"nominal": {"CLs_obs": 0.2778}}), DEFAULT_TOLERANCE)
    LocalMinimum(start='nominal', claimed=0.2778, replayed=0.114, start_cls_obs=0.2778)
    """
    cls_only = claimed.cls_only()
    if replayed.starts is None or not compare(cls_only, replayed, tolerance):
        return None
    for name, values in replayed.starts.items():
        if _explains(cls_only, values, replayed.underflow, tolerance):
            return LocalMinimum(str(name), claimed.cls_obs, replayed.cls_obs, values["CLs_obs"])
    return None


def _explains(claimed: Values, start: Any, underflow: tuple[str, ...] | None, tolerance: Tolerance) -> bool:
    """Whether the values of one start (an object with ``CLs_obs``, perhaps ``CLs_exp``) agree with the claimed CLs values it has."""
    if not isinstance(start, Mapping) or "CLs_obs" not in start:
        return False
    # only the claimed values the start has (its CLs_exp, its underflow marks: the replay's are used)
    wanted = dataclasses.replace(claimed, cls_exp=claimed.cls_exp if "CLs_exp" in start else (), underflow=claimed.underflow if "underflow" in start else None)
    return not compare(wanted, Values(start["CLs_obs"], tuple(start.get("CLs_exp") or ()), underflow=underflow), tolerance)


# ---------------------------------------------------------------------------------------
# the plan


@dataclasses.dataclass(frozen=True)
class Claimed:
    """One claimed point as the replay compares it: its key in the report (the point's name,
    or ``<likelihood>:<point>`` when the run covers several likelihoods) and its :class:`Claim`."""

    key: str
    claim: Claim
    claimed: Values  # the claim's values, as the replay compares them

    @classmethod
    def of(cls, claim: Claim) -> Claimed:
        return cls(claim.point.name, claim, Values.from_json(claim.values.to_json()))

    @property
    def likelihood(self) -> str:
        return self.claim.point.likelihood

    @property
    def point(self) -> str:
        return self.claim.point.name

    @property
    def tolerance(self) -> Tolerance:
        return self.claim.tolerance

    @property
    def level(self) -> float:
        return self.claim.settings.level

    @property
    def values(self) -> dict[str, float]:
        return self.claim.point.values


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a replay runs: contexts (one per likelihood), tasks and their claims."""

    bundle: str
    identity: str
    contexts: Mapping[str, Context]
    tasks: Sequence[Task]
    claims: Mapping[tuple[str, str], Claimed]  # (token, point) -> claim
    software: Mapping[str, tuple[str, str]]
    labels: tuple[str, str] | None
    notes: Sequence[str] = ()  # e.g. why a backend fell back to pyhf
    axes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # the manifest's analysis.axes: label -> axis title

    def claim_of(self, task: Task | TaskResult) -> Claimed:
        return self.claims[(task.token, task.point)]


def _current_version(package: str) -> str:
    if package == "python":
        return platform.python_version()
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def software_differences(recorded: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{package: (recorded, current)}`` for the recorded versions that differ from this environment's."""
    out = {}
    for package, version in recorded.items():
        current = _current_version(package)
        if current != version:
            out[package] = (version, current)
    return out


def plan(
    bundle_path: str | Path,
    *,
    points: Sequence[str] = (),
    likelihood: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    backend: str | None = None,
    compare_simplified: bool = True,
) -> Plan:
    """The replay of ``bundle_path``'s claims, restricted to ``likelihood``, ``points`` or a random ``sample``."""
    path = Path(bundle_path)
    analysis, read, derived = _read(path, likelihood, compare_simplified)
    built = _Built()
    for claims in read:
        built.add(claims, analysis, backend, derived.get(claims.likelihood.path))
    if len(read) > 1:
        built.claims = {k: dataclasses.replace(c, key=f"{c.likelihood}:{c.point}") for k, c in built.claims.items()}
    return Plan(
        bundle=str(path),
        identity=analysis.identity,
        contexts=built.contexts,
        tasks=_select(built.tasks, built.claims, points, sample, seed, path),
        claims=built.claims,
        software=software_differences(built.software),
        labels=_plane(read),
        notes=built.notes,
        axes=analysis.axes,
    )


def _plane(read: Sequence[Claims]) -> tuple[str, str] | None:
    """The first two label names of the first likelihood whose points have labels (the plots' axes)."""
    labels = next((c.labels for c in read if c.labels), None)
    return (labels[0], labels[1]) if labels and len(labels) >= 2 else None


def _read(path: Path, likelihood: str | None, compare_simplified: bool) -> tuple[Analysis, list[Claims], dict[str, Any]]:
    """The bundle's analysis, the claims to replay, and (``compare_simplified``) the simplified
    likelihood derived from each full one, by the full one's path."""
    with heparch.open(path) as bundle:
        analysis = Analysis.of(bundle)
        read = [claims_of(bundle, lk) for lk in _claimed(analysis, likelihood)]
        wanted = [c.likelihood for c in read if c.likelihood.simplified] if compare_simplified else []
        return analysis, read, {lk.path: bundle.read_json(lk.simplified[0]) for lk in wanted}


def _claimed(analysis: Analysis, likelihood: str | None) -> list[Likelihood]:
    """The likelihoods whose claims are replayed (``likelihood``: only that one), by results path."""
    claimed = analysis.claimed()
    if likelihood is not None:
        select(
            likelihood,
            [lk.path for lk in claimed],
            where=str(analysis.source),
            option="likelihood",
            predicate="has no claimed results",
            label="claimed likelihoods: ",
        )
        claimed = [lk for lk in claimed if lk.path == likelihood]
    if not claimed:
        raise InputError(
            f"{analysis.source}: holds no results component, so there is nothing to replay; record claims with 'arch claim {analysis.source} -o claimed.zst'"
        )
    return sorted(claimed, key=lambda lk: str(lk.results))


@dataclasses.dataclass
class _Built:
    """The plan as it is built, one likelihood's claims at a time."""

    contexts: dict[str, Context] = dataclasses.field(default_factory=dict)
    tasks: list[Task] = dataclasses.field(default_factory=list)
    claims: dict[tuple[str, str], Claimed] = dataclasses.field(default_factory=dict)
    software: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, claims: Claims, analysis: Analysis, backend: str | None, derived: Any) -> None:
        """The context of ``claims``' likelihood (and of the simplified likelihood ``derived`` from
        it, to compare), and a task per claimed point."""
        ctx = self._context(claims, analysis, backend)
        sl = self._derived(claims.likelihood, analysis, derived)
        for claim in claims.claims:
            self.tasks.append(_task(ctx, claim, sl))
            self.claims[(ctx.token, claim.point.name)] = Claimed.of(claim)
        self.software.update(claims.software)

    def _context(self, claims: Claims, analysis: Analysis, backend: str | None) -> Context:
        lk, settings = claims.likelihood, claims.settings
        used = settings.settings if lk.kind == "workspace" else None
        try:
            choice = choose(lk.kind, claims.spec, backend, settings=used)
        except InputError as exc:
            raise InputError(f"{analysis.source}:{claims.path}:$.settings: the claims' settings cannot be replayed: {exc.message}", option=exc.option) from None
        if choice.reason:
            self.notes.append(f"{lk.path}: {choice.reason}")
        token = f"{analysis.identity}:{lk.path}:{choice.name}"
        self.contexts[token] = Context(token, lk.path, lk.kind, choice.name, claims.spec, used, settings.fit_tolerance, fallback=choice.fallback)
        return self.contexts[token]

    def _derived(self, lk: Likelihood, analysis: Analysis, spec: Any) -> Context | None:
        if spec is None or lk.kind != "workspace":
            return None
        token = f"{analysis.identity}:{lk.simplified[0]}:simplified"
        self.contexts[token] = Context(token, lk.simplified[0], "simplified", "simplified", spec)
        return self.contexts[token]


def _task(ctx: Context, claim: Claim, sl: Context | None) -> Task:
    """The task that replays ``claim`` (its limits too when they are claimed); ``sl``: the
    simplified likelihood whose signal of the same name is computed too."""
    point, values = claim.point, claim.values
    workspace = ctx.kind == "workspace"
    return Task(
        ctx.token,
        point.name,
        patches=((point.patch,) if workspace and point.patch is not None else ()),
        signal=None if workspace else point.name,
        mu=claim.settings.mu,
        level=claim.settings.level,
        upper_limit=values.mu_up_obs is not None or values.mu_up_exp is not None,
        simplified=_simplified_token(sl, point.name),
    )


def _simplified_token(sl: Context | None, point: str) -> str | None:
    """The token of the simplified likelihood ``sl`` when it has a signal named ``point``."""
    return sl.token if sl is not None and point in (sl.spec.get("signals") or {}) else None


def _select(tasks: list[Task], claims: Mapping[tuple[str, str], Claimed], points: Sequence[str], sample: int | None, seed: int, path: Path) -> list[Task]:
    if points:
        tasks = _named(tasks, claims, points, path)
    return tasks if sample is None else _sampled(tasks, sample, seed)


def _sampled(tasks: list[Task], sample: int, seed: int) -> list[Task]:
    """``sample`` of ``tasks`` chosen at random with ``seed`` (all when there are no more), in their order."""
    if sample < 1:
        raise InputError(f"sample {sample}: must be at least 1", option="sample")
    if sample >= len(tasks):
        return tasks
    keep = set(random.Random(seed).sample(range(len(tasks)), sample))
    return [t for i, t in enumerate(tasks) if i in keep]


def _named(tasks: list[Task], claims: Mapping[tuple[str, str], Claimed], points: Sequence[str], path: Path) -> list[Task]:
    """The tasks of the points named (a point's name or ``<likelihood>:<point>``), in the order named."""
    by_name = _by_name(tasks, claims)
    valid = sorted({claims[(t.token, t.point)].key for t in tasks})
    chosen: list[Task] = []
    for name in dict.fromkeys(points):
        if name not in by_name:
            select(name, valid, where=str(path), option="point", predicate="is not a claimed point")
        chosen += [t for t in by_name[name] if t not in chosen]
    return chosen


def _by_name(tasks: list[Task], claims: Mapping[tuple[str, str], Claimed]) -> dict[str, list[Task]]:
    """The tasks by the names a point may be given with: its name and ``<likelihood>:<point>``."""
    by_name: dict[str, list[Task]] = {}
    for t in tasks:
        c = claims[(t.token, t.point)]
        by_name.setdefault(c.point, []).append(t)
        by_name.setdefault(f"{c.likelihood}:{c.point}", []).append(t)
    return by_name


# ---------------------------------------------------------------------------------------
# resumable state


class State:
    """``--resume state.json``: the points already computed, written atomically as results arrive.

    Only computed points are kept (a point whose computation failed runs again); a state
    made for another bundle (identity) is refused rather than mixed in.
    """

    def __init__(self, path: Path, identity: str) -> None:
        self.path = path
        self.identity = identity
        self.done: dict[str, dict[str, Any]] = {}
        self._dirty = not path.exists()  # written even before a point arrives: an interrupted run names it
        self._last = 0.0
        if path.is_dir():
            raise InputError(f"resume {path}: is a directory; give a file name, e.g. {path / 'replay-state.json'}", option="resume")
        if not path.parent.is_dir():
            raise InputError(f"resume {path}: directory {path.parent} does not exist", option="resume")
        if path.exists():
            self.done = _read_state(path, identity)

    def key(self, result: Task | TaskResult) -> str:
        return f"{result.token}\n{result.point}"

    def get(self, task: Task) -> TaskResult | None:
        found = self.done.get(self.key(task))
        if found is None:
            return None
        return TaskResult(
            task.token, task.point, found["values"], str(found.get("backend", "?")), float(found.get("seconds", 0.0)), None, found.get("simplified")
        )

    def record(self, result: TaskResult) -> None:
        if result.values is None:
            return
        self.done[self.key(result)] = {"values": result.values, "backend": result.backend, "seconds": result.seconds, "simplified": result.simplified}
        self._dirty = True
        if time.monotonic() - self._last > 1.0:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return

        data = json.dumps({"format": STATE_FORMAT, "identity": self.identity, "points": self.done}, sort_keys=True).encode("utf-8")
        with atomic_output(self.path) as fh:
            fh.write(data)
        self._dirty = False
        self._last = time.monotonic()


def _state_file(path: Path) -> dict[str, Any]:
    """The parsed state file ``path``: a JSON object of :data:`STATE_FORMAT` with ``points``."""
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"resume {path}: not a replay state file ({exc}); delete it to start afresh", option="resume") from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT or not isinstance(obj.get("points"), dict):
        raise InputError(f"resume {path}: not a heparch replay state file (format {STATE_FORMAT}); delete it to start afresh", option="resume")
    return obj


def _read_state(path: Path, identity: str) -> dict[str, dict[str, Any]]:
    """The computed points of the state file ``path``, which must have been made for ``identity``."""
    obj = _state_file(path)
    if obj.get("identity") != identity:
        raise InputError(f"resume {path}: was made for bundle {obj.get('identity')}, not {identity}; use another state file", option="resume")
    return {k: v for k, v in obj["points"].items() if _kept(v)}


def _kept(entry: Any) -> bool:
    """Whether a state file's entry holds a point's computed values (DESIGN.md 5b's values object,
    and its simplified likelihood's result or error as an object); any other is computed again."""
    if not isinstance(entry, dict) or not _values_object(entry.get("values")):
        return False
    simplified = entry.get("simplified")
    return simplified is None or (isinstance(simplified, dict) and ("CLs_obs" not in simplified or _values_object(simplified)))


def _values_object(values: Any) -> bool:
    """CLs_obs a number and CLs_exp five; the limits, where there, a number or null (above the cap) each."""
    if not isinstance(values, dict) or not _numbers([values.get("CLs_obs")], 1) or not _numbers(values.get("CLs_exp"), 5):
        return False
    limits_ok = "mu_up_obs" not in values or _numbers([values["mu_up_obs"]], 1, null=True)
    return limits_ok and (values.get("mu_up_exp") is None or _numbers(values["mu_up_exp"], 5, null=True))


def _numbers(items: Any, n: int, *, null: bool = False) -> bool:
    """Whether ``items`` is a list of ``n`` numbers (not booleans; ``null``: or None)."""
    return isinstance(items, list) and len(items) == n and all(_number(x) or (null and x is None) for x in items)


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------
# the run


#: the name, in a replayed point's ``starts``, of pyhf's result from its own nominal start
PYHF_NOMINAL: Final = NOMINAL_START


def _with_pyhf_nominal(plan: Plan, result: TaskResult, values: Values) -> Values:
    """A point whose replay found several minima and disagrees with its claim: the claim may have
    been made by pyhf from its nominal start, at a local minimum. Its ``values`` with what pyhf gives
    from there added to ``starts`` (so :func:`local_minimum` can tell), when pyhf computes it."""
    pyhf_values = _pyhf_nominal(plan, result)
    if pyhf_values is None:
        return values
    nominal = {"CLs_obs": pyhf_values["CLs_obs"], "CLs_exp": pyhf_values["CLs_exp"]}
    return dataclasses.replace(values, starts={**(values.starts or {}), PYHF_NOMINAL: nominal})


def _pyhf_nominal(plan: Plan, result: TaskResult) -> Mapping[str, Any] | None:
    """What pyhf gives for a workspace point from its nominal start; None where pyhf computed the
    replay already or cannot compute the point."""
    rerun = _pyhf_rerun(plan, result)
    if rerun is None:
        return None
    try:
        pyhf_values = work.compute(rerun[0], dataclasses.replace(rerun[1], upper_limit=False), backend="pyhf")
    except Exception:  # pyhf cannot compute it either: nothing explains the claim
        return None
    nominal = (pyhf_values.get("starts") or {}).get(PYHF_NOMINAL)  # the pyhf backend takes the lowest minimum too
    return nominal if isinstance(nominal, dict) else pyhf_values


def _pyhf_rerun(plan: Plan, result: TaskResult) -> tuple[Context, Task] | None:
    """The context and task of a workspace point another backend than pyhf replayed (None otherwise)."""
    ctx = plan.contexts.get(result.token)
    if ctx is None or ctx.kind != "workspace" or result.backend == "pyhf":
        return None
    return next(((ctx, t) for t in plan.tasks if (t.token, t.point) == (result.token, result.point)), None)


@dataclasses.dataclass(frozen=True)
class _Compared:
    """A computed point against its claim: the replayed values (with pyhf's nominal start where
    it was asked), the mismatches, the worst ratio and the local minimum that explains them."""

    replayed: Values | None
    mismatches: tuple[Mismatch, ...] = ()
    ratio: float | None = None
    local_minimum: LocalMinimum | None = None


#: a point whose computation failed: nothing compared
_NOT_COMPUTED: Final = _Compared(None)


def _compared(plan: Plan, result: TaskResult, c: Claimed, replayed: Values) -> _Compared:
    """Compare a computed point with its claim; a multimodal point that disagrees is checked for a claim at a local minimum."""
    mismatches = tuple(compare(c.claimed, replayed, c.tolerance))
    worst = worst_ratio(c.claimed, replayed, c.tolerance)
    if not (mismatches and replayed.multimodal):
        return _Compared(replayed, mismatches, worst)
    replayed = _with_pyhf_nominal(plan, result, replayed)
    return _Compared(replayed, mismatches, worst, local_minimum(c.claimed, replayed, c.tolerance))


def outcome(plan: Plan, result: TaskResult) -> PointOutcome:
    """Compare one result with its claim."""
    c = plan.claim_of(result)
    got = _NOT_COMPUTED if result.values is None else _compared(plan, result, c, Values.from_json(result.values))
    return PointOutcome(
        key=c.key,
        likelihood=c.likelihood,
        point=c.point,
        claimed=c.claimed,
        replayed=got.replayed,
        passed=got.replayed is not None and not got.mismatches,
        backend=result.backend,
        seconds=result.seconds,
        mismatches=got.mismatches,
        error=result.error,
        values=c.values,
        level=c.level,
        simplified=None if result.simplified is None else SimplifiedCLs.of(result.simplified, got.replayed),
        ratio=got.ratio,
        local_minimum=got.local_minimum,
        note=result.note,
    )


def run(
    plan: Plan,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    resume: Path | None = None,
    audit: int = 0,
    on_outcome: Callable[[PointOutcome, int, int], None] | None = None,
    on_audit: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Run ``plan``; ``on_outcome(outcome, done, total)`` is called as each point arrives; then
    ``audit`` points computed by the fast engine are recomputed with the reference backend
    (:func:`audit_points`; ``on_audit(done, total)`` as it starts, with 0, and as each audited point
    arrives). Interrupted (Ctrl-C, SIGTERM), it stops its workers, writes the
    ``resume`` state and raises :class:`ReplayInterrupted` (a :class:`heparch.signals.Interrupted`)."""
    start = time.perf_counter()
    arrived = _Arrived(plan, on_outcome, State(resume, plan.identity) if resume is not None else None)
    todo = _resumed(plan, arrived)
    try:
        with contextlib.closing(execute(plan.contexts, todo, jobs=jobs, scheduler=scheduler)) as results:  # closed: workers stop on any exit
            for result in results:
                arrived.computed(result)
        summary = audit_points(plan, arrived.done, audit, jobs=jobs, scheduler=scheduler, on_audit=on_audit) if audit else None
    except signals.INTERRUPTS as exc:  # Ctrl-C or SIGTERM (heparch.signals): keep what was computed, say how to go on
        with signals.shielded():
            arrived.flush()
        raise ReplayInterrupted(signals.signum_of(exc), len(arrived.done), len(plan.tasks), resume) from None
    finally:
        arrived.flush()
    return ReplayReport(plan.bundle, plan.identity, arrived.ordered(), time.perf_counter() - start, plan.software, plan.labels, summary, axes=plan.axes)


class _Arrived:
    """The outcomes so far, by (token, point); each one is passed on to ``on_outcome`` as it arrives,
    and each computed result is recorded in the resume ``state`` (when there is one)."""

    def __init__(self, plan: Plan, on_outcome: Callable[[PointOutcome, int, int], None] | None, state: State | None) -> None:
        self.plan = plan
        self.on_outcome = on_outcome
        self.state = state
        self.done: dict[tuple[str, str], PointOutcome] = {}

    def add(self, result: TaskResult) -> None:
        self.done[(result.token, result.point)] = got = outcome(self.plan, result)
        if self.on_outcome is not None:
            self.on_outcome(got, len(self.done), len(self.plan.tasks))

    def computed(self, result: TaskResult) -> None:
        """A result just computed: recorded in the state, then added."""
        if self.state is not None:
            self.state.record(result)
        self.add(result)

    def flush(self) -> None:
        if self.state is not None:
            self.state.flush()

    def ordered(self) -> list[PointOutcome]:
        """The outcomes in the plan's order."""
        return [self.done[(t.token, t.point)] for t in self.plan.tasks if (t.token, t.point) in self.done]


def _resumed(plan: Plan, arrived: _Arrived) -> list[Task]:
    """The tasks still to run; those the resume state holds arrive at once."""
    todo: list[Task] = []
    for task in plan.tasks:
        previous = arrived.state.get(task) if arrived.state is not None else None
        if previous is None:
            todo.append(task)
        else:
            arrived.add(previous)
    return todo


class ReplayInterrupted(signals.Interrupted):
    """A replay stopped by SIGINT or SIGTERM: ``done`` of ``total`` points computed, kept in the
    ``resume`` state (None: none kept); its line names the parameter (the CLI says ``--resume``).

    >>> str(ReplayInterrupted(2, 12, 125, Path("s.json")))
    'interrupted: 12 of 125 points done; state in s.json; rerun with resume=s.json'
    """

    def __init__(self, signum: int, done: int, total: int, resume: Path | None) -> None:
        kept = (
            f"state in {resume}; rerun with resume={resume}" if resume is not None else "none kept (run with resume=FILE to keep computed points across runs)"
        )
        super().__init__(signum, f"interrupted: {done} of {total} points done; {kept}")
        self.done, self.total, self.resume = done, total, resume


def audit_points(
    plan: Plan,
    done: dict[tuple[str, str], PointOutcome],
    n: int,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    on_audit: Callable[[int, int], None] | None = None,
) -> AuditSummary:
    """Recompute ``n`` of the points the fast engine replayed (the simplified engine's: with spey)
    with the reference backend, chosen by a seed derived from the bundle identity; each audited
    outcome in ``done`` gets its ``audit``, and a difference above the tolerance fails it like a
    mismatch (field ``audit:<field>``). ``on_audit(done, total)``: 0 of the points to audit before
    the first (none when there is nothing to audit), then as each arrives. Returns the audit summary."""
    from heparch.replay import audit as auditing  # audit builds on this module's comparison: imported here, not at the top

    seed = auditing.seed_of(plan.identity)
    computed = {
        k: t for t in plan.tasks if (k := (t.token, t.point)) in done and done[k].replayed is not None and done[k].backend == plan.contexts[t.token].backend
    }
    todo, why = auditing.tasks_for(plan.contexts, computed, n, seed)
    found: dict[str, Audited] = {}
    errors: dict[str, str] = {}
    report = on_audit if on_audit is not None and todo else lambda _done, _total: None
    report(0, len(todo))
    with contextlib.closing(execute(plan.contexts, todo, jobs=jobs, scheduler=scheduler)) as results:
        for count, result in enumerate(results, 1):
            _audited(plan, done, result, found, errors)
            report(count, len(todo))
    return auditing.summary(n, seed, found, errors, why)


def _audited(plan: Plan, done: dict[tuple[str, str], PointOutcome], result: TaskResult, found: dict[str, Audited], errors: dict[str, str]) -> None:
    """Record one audit result in ``found`` (or ``errors``) and on its outcome in ``done``."""
    from heparch.replay import audit as auditing  # cycle: audit imports this module

    key = (result.token, result.point)
    p = done[key]
    if result.values is None:
        errors[p.key] = result.error or "failed"
        return
    assert p.replayed is not None
    found[p.key] = got = auditing.compared({**p.replayed.to_json(), "nll": result.values["nll"]}, result.values["reference"], plan.claim_of(result).tolerance)
    extra: tuple[Mismatch, ...] = ()
    if got.ratio > 1:
        extra = (Mismatch(f"audit:{got.field}", got.audited_value, got.reference_value, got.tolerance, f"the audit: {p.backend} vs {got.reference}"),)
    done[key] = dataclasses.replace(p, audit=got, mismatches=p.mismatches + extra, passed=p.passed and not extra)


def replay(bundle: str | Path, *, points: Iterable[str] = (), likelihood: str | None = None, sample: int | None = None, seed: int = 0,
           backend: str | None = None, jobs: int = 1, scheduler: str | None = None, resume: Path | None = None, audit: int = 0,
           on_outcome: Callable[[PointOutcome, int, int], None] | None = None) -> ReplayReport:  # fmt: skip
    """Plan and run the replay of ``bundle`` (see :func:`plan` and :func:`run`)."""
    p = plan(bundle, points=list(points), likelihood=likelihood, sample=sample, seed=seed, backend=backend)
    return run(p, jobs=jobs, scheduler=scheduler, resume=resume, audit=audit, on_outcome=on_outcome)
