"""``arch claim``: compute every point's results and record them in a new bundle.

For every likelihood of the bundle that has signal points (the patches of its patchsets
and patch files; the signals of a simplified likelihood), CLs at mu = 1 and, with
``upper_limits``, the upper limits at CLs = 0.05 are computed in parallel
(:mod:`heparch.replay.executor`) and recorded as one results component per likelihood
(DESIGN.md 5b) with the settings, the software versions, the backend, the default
tolerance and the parent bundle's identity. The new bundle is the parent's files plus
these components (an existing results component of the same likelihood is replaced in
place), built from a verified extraction: a new identity, no signatures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shutil
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

import heparch
from heparch import __version__, config
from heparch.analysis import DEFAULT_TOLERANCE, LEVEL, MU, Analysis, Likelihood, OpenBundle, Point, points_of, results_path, with_results
from heparch.build import build
from heparch.errors import AuditFailed, FitError, InputError
from heparch.extract import arch_yaml_data, extract
from heparch.infer import inputs as infer_inputs
from heparch.infer.backends import choose
from heparch.infer.base import Settings
from heparch.infer.pyhf_backend import TOLERANCE as FIT_TOLERANCE
from heparch.replay import audit as auditing
from heparch.replay.executor import execute
from heparch.replay.outcome import Audited, AuditSummary
from heparch.replay.work import Context, Task, TaskResult
from heparch.store import tmpfiles

#: the tolerance recorded with new claims
TOLERANCE: Final = DEFAULT_TOLERANCE


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """The new bundle, and what went into it."""

    output: Path
    identity: str
    parent: str  # the input bundle's identity
    components: Mapping[str, str]  # likelihood -> logical path of its results component
    points: int
    failed: Mapping[str, str]  # "<likelihood>:<point>" -> error (only with allow_failures)
    audit: AuditSummary  # the bundle-wide audit
    notes: tuple[str, ...] = ()


def _versions(backends: set[str]) -> dict[str, str]:
    out = {"heparch": __version__, "python": platform.python_version()}
    packages = ["numpy", "scipy"] + (["pyhf"] if "pyhf" in backends else [])
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    return out


def _settings(kind: str, settings: Settings | None, backends: set[str]) -> dict[str, Any]:
    """The results' ``settings``: mu, level, the :class:`Settings` and the pyhf fit tolerance
    where pyhf computed a point."""
    return {"mu": MU, "level": LEVEL, **_recorded_settings(kind, settings), **_fit_tolerance(backends)}


def _recorded_settings(kind: str, settings: Settings | None) -> dict[str, Any]:
    """The :class:`Settings` as recorded: a simplified likelihood has no interpolation, bounds or
    measurement to record (the defaults of the rest)."""
    if kind == "workspace":
        return (settings or Settings()).to_json()
    return {k: v for k, v in Settings().to_json().items() if k != "interpolation"}


def _fit_tolerance(backends: set[str]) -> dict[str, float]:
    """pyhf's fit tolerance, where pyhf computed a point."""
    if "pyhf" not in backends:
        return {}
    return {"fit_tolerance": FIT_TOLERANCE}


def plan(bundle: OpenBundle, *, backend: str | None, upper_limits: bool, settings: Settings | None = None) -> tuple[dict[str, Context], list[Task], list[str]]:
    """Contexts (one per likelihood with points), tasks (one per point) and notes."""
    contexts: dict[str, Context] = {}
    tasks: list[Task] = []
    notes: list[str] = []
    for lk in Analysis.of(bundle).likelihoods:
        found = points_of(bundle, lk)
        if not found.points:
            notes.append(f"{lk.path}: no signal points (no patchset, patch file or signal); nothing claimed for it")
            continue
        ctx = _context(bundle, lk, found.spec, backend, settings, notes)
        contexts[ctx.token] = ctx
        tasks += [_task(ctx, p, upper_limits) for p in found.points.values()]
    return contexts, tasks, notes


def _context(bundle: OpenBundle, lk: Likelihood, spec: Any, backend: str | None, settings: Settings | None, notes: list[str]) -> Context:
    """The context that computes ``lk``'s claims (the backend chosen, why in ``notes``)."""
    if lk.kind == "simplified":
        backend, used = _simplified_backend(lk, backend, settings, notes), None
    else:
        used = _workspace_settings(bundle, lk, spec, settings)
    choice = choose(lk.kind, spec, backend, settings=used)
    if choice.reason:
        notes.append(f"{lk.path}: {choice.reason}")
    token = f"{bundle.identity}:{lk.path}:{choice.name}"
    return Context(token, lk.path, lk.kind, choice.name, spec, used, fallback=choice.fallback)


def _simplified_backend(lk: Likelihood, backend: str | None, settings: Settings | None, notes: list[str]) -> str | None:
    """The backend asked for a simplified likelihood: the simplified one (None: chosen by kind) in
    place of a HistFactory backend; the settings do not apply (both said in ``notes``)."""
    if backend in ("fast", "pyhf"):
        notes.append(f"{lk.path}: a simplified likelihood; computed with the simplified backend, not the {backend} backend asked for")
        backend = None
    if settings is not None and settings != Settings():
        notes.append(f"{lk.path}: a simplified likelihood; computed with qtilde as spey does, the settings options apply to workspaces")
    return backend


def _workspace_settings(bundle: OpenBundle, lk: Likelihood, spec: Any, settings: Settings | None) -> Settings | None:
    """The settings a workspace's claims use, as the workspace gives them (E081: the measurement
    must let pyhf start a fit)."""
    infer_inputs.require_measurement(spec, settings.measurement if settings is not None else None, f"{bundle.path}:{lk.path}")
    return infer_inputs.as_given(settings, spec) if settings is not None else None


def _task(ctx: Context, point: Point, upper_limits: bool) -> Task:
    if ctx.kind == "workspace":
        return Task(ctx.token, point.name, patches=(point.patch,), mu=MU, level=LEVEL, upper_limit=upper_limits)
    return Task(ctx.token, point.name, signal=point.name, mu=MU, level=LEVEL, upper_limit=upper_limits)


def _component(ctx: Context, values: Mapping[str, Mapping[str, Any]], parent: str, notes: list[str], audit: AuditSummary | None = None) -> dict[str, Any]:
    """The results component of ``ctx``'s likelihood. A point whose limits reach above the cap
    has no finite limit to claim: its CLs values are claimed, its limits left out (and named
    in ``notes``)."""
    points = {point: _claimable(values[point]) for point in sorted(values)}
    _note_above_cap(ctx.likelihood, [point for point in points if _above_cap(values[point])], notes)
    used = {str(v.get("backend", ctx.backend)) for v in points.values()} | {ctx.backend}
    out = {
        "likelihood": ctx.likelihood,
        "backend": ctx.backend,
        "settings": _settings(ctx.kind, ctx.settings, used),
        "software": _versions(used),
        "tolerance": TOLERANCE.to_json(),
        "parent": {"identity": parent},
        "points": points,
    }
    return out | ({"audit": audit.to_json()} if audit is not None else {})


def _note_above_cap(likelihood: str, above: list[str], notes: list[str]) -> None:
    """Name the points whose limits are not claimed (the first 8)."""
    if above:
        more = " ..." if len(above) > 8 else ""
        notes.append(f"{likelihood}: upper limits above the cap are not claimed for {len(above)} point(s): {', '.join(above[:8])}{more}")


#: a point's upper limits, as computed
_LIMITS: Final = ("mu_up_obs", "mu_up_exp")


def _above_cap(values: Mapping[str, Any]) -> bool:
    """Whether a point's upper limits were computed and reach above the cap (a limit is None)."""
    return "mu_up_obs" in values and (values["mu_up_obs"] is None or None in (values.get("mu_up_exp") or [None]))


def _claimable(values: Mapping[str, Any]) -> dict[str, Any]:
    """A point's values as claimed: without its limits when they reach above the cap."""
    return {k: v for k, v in values.items() if k not in _LIMITS} if _above_cap(values) else dict(values)


def claim(
    bundle_path: str | Path,
    output: str | Path,
    *,
    backend: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    upper_limits: bool = False,
    allow_failures: bool = False,
    settings: Settings | None = None,
    audit: int = 1,
    on_result: Callable[[TaskResult, int, int], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
) -> ClaimResult:
    """Compute and record the claims of ``bundle_path`` into a new bundle ``output``; ``audit``
    points computed by the fast engine (the simplified engine for a simplified likelihood) are
    recomputed with the reference backend (:mod:`heparch.replay.audit`) and the result recorded;
    a difference above the tolerance is an :class:`AuditFailed` (nothing is written).
    ``on_start(stage, n)`` says when a stage begins ("points": n points to compute, then "audit": n
    to recompute with the reference, when there are any); ``on_result(result, done, total)`` as
    each of the stage's points arrives (``done`` of its ``total``)."""
    src, out = Path(bundle_path), Path(output)
    _check_output(src, out)
    with heparch.open(src) as bundle:
        contexts, tasks, notes = plan(bundle, backend=backend, upper_limits=upper_limits, settings=settings)
        parent = bundle.identity
        paths = _results_paths(Analysis.of(bundle), contexts, tasks)
    _check_audit(audit)
    stage = on_start or _no_stage
    stage("points", len(tasks))
    values, failed = _compute(contexts, tasks, notes, jobs=jobs, scheduler=scheduler, on_result=on_result)
    _require_all(failed, len(tasks), allow_failures)
    computed = _by_own_backend(contexts, tasks, values)
    audits = _audit(contexts, computed, values, audit, parent, jobs=jobs, scheduler=scheduler, on_start=stage, on_result=on_result)
    _require_audit_passed(audits[""])
    components = _components(contexts, values, paths, parent, notes, audits)
    identity = _write(src, out, components)
    claimed = {likelihood: path for path, (likelihood, _) in components.items()}
    return ClaimResult(out, identity, parent, claimed, _count(values), failed, audits[""], tuple(notes))


def _no_stage(stage: str, n: int) -> None:
    """``on_start`` when none is given."""


def _check_audit(audit: int) -> None:
    if audit < 0:
        raise InputError(f"audit {audit}: must be 0 or more", option="audit")


def _require_all(failed: Mapping[str, str], total: int, allow_failures: bool) -> None:
    """Refuse to write claims when points failed, unless ``allow_failures``."""
    if failed and not allow_failures:
        key, error = next(iter(failed.items()))
        raise FitError(f"{len(failed)} of {total} points failed, so no claims were written (first: {key}: {error}); --allow-failures writes the others")


def _require_audit_passed(overall: AuditSummary) -> None:
    if overall.status == "failed":
        raise AuditFailed(f"the audit against the reference backend failed, so no claims were written: {overall.one_line(worst=True)}")


def _components(
    contexts: Mapping[str, Context], values: Values, paths: Mapping[str, str], parent: str, notes: list[str], audits: Mapping[str, AuditSummary]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The results components to write, by logical path: (likelihood, component) for each likelihood with claimed points."""
    return {
        paths[ctx.likelihood]: (ctx.likelihood, _component(ctx, values[token], parent, notes, audits[token]))
        for token, ctx in contexts.items()
        if values[token]
    }


def _count(values: Values) -> int:
    """The number of points computed."""
    return sum(len(v) for v in values.values())


def _results_paths(analysis: Analysis, contexts: Mapping[str, Context], tasks: list[Task]) -> dict[str, str]:
    """The results component of each likelihood with points, by likelihood; an error when none has points."""
    if not tasks:
        raise InputError(f"{analysis.source}: no likelihood has signal points (patchsets, patch files or simplified-likelihood signals); nothing to claim")
    paths: dict[str, str] = {}
    for ctx in contexts.values():  # one file each: 'A.json' and 'A' must not both get results/A.json
        if ctx.likelihood not in paths:
            paths[ctx.likelihood] = results_path(analysis, ctx.likelihood, paths.values())
    return paths


def _check_output(src: Path, out: Path) -> None:
    """``out`` must be a new file name in an existing directory, not the input bundle."""
    if out.is_dir():
        raise InputError(f"out {out}: is a directory; give the output file name, e.g. out={out / 'claimed.zst'}", option="out")
    if not out.parent.is_dir():
        raise InputError(f"out {out}: directory {out.parent} does not exist", option="out")
    if out.exists() and out.resolve() == src.resolve():
        raise InputError(f"out {out}: is the input bundle; write the claimed bundle to a new file", option="out")


Values = dict[str, dict[str, dict[str, Any]]]  # context token -> point -> the values to claim


def _compute(
    contexts: Mapping[str, Context],
    tasks: list[Task],
    notes: list[str],
    *,
    jobs: int,
    scheduler: str | None,
    on_result: Callable[[TaskResult, int, int], None] | None,
) -> tuple[Values, dict[str, str]]:
    """Every point's values (with the backend that computed it), the failed points' errors by
    ``<likelihood>:<point>``; a point's note (a fallback) goes to ``notes``."""
    values: Values = {t: {} for t in contexts}
    failed: dict[str, str] = {}

    def record(result: TaskResult) -> None:
        _record(result, f"{contexts[result.token].likelihood}:{result.point}", values, failed, notes)

    _execute(contexts, tasks, record, jobs=jobs, scheduler=scheduler, on_result=on_result)
    return values, failed


def _execute(
    contexts: Mapping[str, Context],
    tasks: list[Task],
    record: Callable[[TaskResult], None],
    *,
    jobs: int,
    scheduler: str | None,
    on_result: Callable[[TaskResult, int, int], None] | None,
) -> None:
    """Run ``tasks``: each result is recorded as it arrives, then ``on_result(result, done, total)`` hears of it."""
    with contextlib.closing(execute(contexts, tasks, jobs=jobs, scheduler=scheduler)) as results:  # closed: the workers stop on any exit
        for n, result in enumerate(results, 1):
            record(result)
            if on_result is not None:
                on_result(result, n, len(tasks))


def _record(result: TaskResult, key: str, values: Values, failed: dict[str, str], notes: list[str]) -> None:
    """One point's result (``key``: ``<likelihood>:<point>``): its values with the backend that
    computed them, or its error; its note (a fallback)."""
    if result.values is None:
        failed[key] = _error(result)
    else:
        values[result.token][result.point] = {**result.values, "backend": result.backend}
    if result.note is not None:
        notes.append(f"{key}: {result.note}")


def _error(result: TaskResult) -> str:
    return result.error or "failed"


def _by_own_backend(contexts: Mapping[str, Context], tasks: list[Task], values: Values) -> dict[tuple[str, str], Task]:
    """The tasks computed by their context's backend (not by a fallback): the ones to audit."""
    return {(t.token, t.point): t for t in tasks if values[t.token].get(t.point, {}).get("backend") == contexts[t.token].backend}


def _audit(
    contexts: Mapping[str, Context],
    computed: Mapping[tuple[str, str], Task],
    values: Mapping[str, Mapping[str, Mapping[str, Any]]],
    n: int,
    parent: str,
    *,
    jobs: int,
    scheduler: str | None,
    on_start: Callable[[str, int], None],
    on_result: Callable[[TaskResult, int, int], None] | None,
) -> dict[str, AuditSummary]:
    """The audit by context token, and bundle-wide under ``""``; ``on_start("audit", n)`` when
    there are ``n`` points to recompute, ``on_result`` as each arrives."""
    seed = auditing.seed_of(parent)
    todo, why = auditing.tasks_for(contexts, computed, n, seed) if n else ([], [])
    if todo:
        on_start("audit", len(todo))
    found, errors = _audited(contexts, todo, values, jobs=jobs, scheduler=scheduler, on_result=on_result)
    out = {
        token: auditing.summary(n, seed, found[token], errors[token], _audit_notes(ctx.likelihood, why, bool(found[token]), n))
        for token, ctx in contexts.items()
    }
    out[""] = auditing.summary(n, seed, _by_point(contexts, found), _by_point(contexts, errors), why)
    return out


def _audit_notes(likelihood: str, why: list[str], audited: bool, n: int) -> list[str]:
    """The audit's notes on one likelihood: the choice's notes on it, else why none of its points was audited."""
    mine = [w for w in why if w.startswith(f"{likelihood}:")]
    return mine if mine or audited else [f"none of {likelihood}'s points was among the {n} chosen"]


_T = TypeVar("_T")


def _by_point(contexts: Mapping[str, Context], by_token: Mapping[str, Mapping[str, _T]]) -> dict[str, _T]:
    """``<likelihood>:<point>`` -> value, from context token -> point -> value."""
    return {f"{contexts[t].likelihood}:{p}": v for t, points in by_token.items() for p, v in points.items()}


def _audited(
    contexts: Mapping[str, Context],
    todo: list[Task],
    values: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    jobs: int,
    scheduler: str | None,
    on_result: Callable[[TaskResult, int, int], None] | None,
) -> tuple[dict[str, dict[str, Audited]], dict[str, dict[str, str]]]:
    """Run the audit tasks: each audited point's comparison with the reference backend, and the
    errors, by context token and point."""
    found: dict[str, dict[str, Audited]] = {t: {} for t in contexts}
    errors: dict[str, dict[str, str]] = {t: {} for t in contexts}

    def record(result: TaskResult) -> None:
        if result.values is None:
            errors[result.token][result.point] = _error(result)
        else:
            found[result.token][result.point] = _compared(values[result.token][result.point], result.values)

    _execute(contexts, todo, record, jobs=jobs, scheduler=scheduler, on_result=on_result)
    return found, errors


def _compared(claimed: Mapping[str, Any], audited: Mapping[str, Any]) -> Audited:
    """A point's claimed values against the reference backend's (``audited``: the audit task's values)."""
    return auditing.compared({**claimed, "nll": audited["nll"]}, audited["reference"], TOLERANCE)


def _write(src: Path, out: Path, components: Mapping[str, tuple[str, dict[str, Any]]]) -> str:
    """Extract ``src`` (verified), replace or add the results components, build ``out``."""
    with tmpfiles.staging_dir(out, "claim") as staging:  # removed on every exit path; a killed run's by the next one
        tree = extract(src, staging / "tree")
        shutil.rmtree(tree / "signatures", ignore_errors=True)  # the new identity voids them
        with heparch.open(src) as bundle:
            data = arch_yaml_data(bundle.manifest)
        for path, (_, obj) in sorted(components.items()):
            target = tree.joinpath(*path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        data = with_results(data, {path: likelihood for path, (likelihood, _) in components.items()})
        (tree / config.FILENAME).write_text(config.render(data), encoding="utf-8")
        return build(tree, output=out).identity
