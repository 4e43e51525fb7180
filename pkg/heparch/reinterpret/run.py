"""``arch reinterpret``: new signal points through a bundle's signal interface, computed in parallel.

:func:`load` reads the bundle through the domain model (:mod:`heparch.analysis`): the
likelihoods, their published signal patches, labels, claim settings and the analysis's luminosity.
:func:`plan` checks the new points against the interface and generates their patches;
:func:`run` computes them with replay's executor (:mod:`heparch.replay.executor`, the same
workers, ``--jobs`` and ``--scheduler``) and returns a replay report without claims (so the
replay's summary table and HTML page render it) plus what only a reinterpretation has:
the cross-section limits, the dropped modifiers and the warnings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import heparch
from heparch.analysis import Analysis, Likelihood, OpenBundle, declared_interface, derived_simplified, points_of, recorded_settings
from heparch.components.interface import Interface, Ops, derive
from heparch.components.signal_interface import follow
from heparch.components.workspace import pyhf_digest
from heparch.errors import InputError
from heparch.findings import Finding
from heparch.infer.backends import choose
from heparch.infer.base import Settings
from heparch.reinterpret.generate import Generated, inputs_from_patch, patch_for
from heparch.reinterpret.signal import SignalFile, SignalPoint, check
from heparch.reinterpret.simplified import bins_of, signals_for, with_signals
from heparch.replay.executor import execute
from heparch.replay.outcome import PointOutcome, ReplayReport, SimplifiedCLs, Values
from heparch.replay.work import Context, Task, TaskResult
from heparch.spec.components import SignalInterface
from heparch.store.writer import atomic_output


@dataclasses.dataclass(frozen=True)
class Published:
    """One likelihood of a bundle with its published signal patches."""

    likelihood: str
    workspace: Mapping[str, Any]
    patches: Mapping[str, Ops]
    labels: tuple[str, ...]
    values: Mapping[str, Mapping[str, float]]
    settings: Settings
    references: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the patchset's metadata.references (pyhf requires one)
    declared: tuple[str, SignalInterface] | None = None  # the signal-interface component (path, model), if the analysis declared one
    simplified: tuple[str, Mapping[str, Any]] | None = None  # (logical path, content) of a simplified likelihood derived from it

    def interface(self, luminosity_ifb: float | None = None) -> Interface:
        """The declared interface where there is one (checked at build and verify), else the derived one."""
        derived = derive(self.workspace, self.patches, likelihood=self.likelihood, measurement=self.settings.measurement, luminosity_ifb=luminosity_ifb)
        return follow(derived, self.declared[1], self.declared[0]) if self.declared is not None else derived


@dataclasses.dataclass(frozen=True)
class Source:
    """What reinterpretation reads from a bundle."""

    path: Path
    identity: str
    likelihoods: Mapping[str, Published]
    luminosity_ifb: float | None
    axes: Mapping[str, str]

    @property
    def with_patches(self) -> list[str]:
        """The likelihoods with published signal patches."""
        return [n for n, p in self.likelihoods.items() if p.patches]

    def _only_with_patches(self) -> str:
        """The one likelihood with signal patches."""
        with_patches = self.with_patches
        if len(with_patches) != 1:
            raise InputError(
                f"{self.path}: {len(with_patches)} likelihoods have signal patches {with_patches}; name one with likelihood=NAME", option="likelihood"
            )
        return with_patches[0]

    def published(self, likelihood: str | None) -> Published:
        """The likelihood named (else the only one with signal patches)."""
        likelihood = self._only_with_patches() if likelihood is None else likelihood
        found = self.likelihoods.get(likelihood)
        if found is None:
            raise InputError(
                f"{self.path}: likelihood {likelihood!r} is not a likelihood of the bundle; it has {sorted(self.likelihoods)}", option="likelihood"
            )
        if not found.patches:
            raise InputError(f"{self.path}: likelihood {likelihood!r} has no published signal patches, so no signal interface can be derived")
        return found

    def interface(self, likelihood: str | None) -> Interface:
        return self.published(likelihood).interface(self.luminosity_ifb)


def _published(bundle: OpenBundle, likelihood: Likelihood, *, simplified: bool) -> Published:
    """One likelihood of the bundle with its published signal patches (its patchsets' patches, then
    its patch files', named by their ``patch.name`` annotation), labels, claim settings, declared
    interface and (with ``simplified``) its derived simplified likelihood; each file read once
    (1Lbb's patchset is 14 MB)."""
    found = points_of(bundle, likelihood)
    patches = {name: p.patch for name, p in found.points.items()}
    values = {name: p.values for name, p in found.points.items() if p.source in likelihood.patchsets}
    sl = derived_simplified(bundle, likelihood) if simplified else None
    settings = recorded_settings(bundle, likelihood)
    return Published(likelihood.path, found.spec, patches, found.labels or (), values, settings, found.references, declared_interface(bundle, likelihood), sl)


def load(bundle_path: Path, *, simplified: bool = False) -> Source:
    """Read ``bundle_path`` through the domain model (:mod:`heparch.analysis`); with ``simplified``
    also the simplified likelihood derived from each likelihood."""
    with heparch.open(bundle_path) as bundle:
        analysis = Analysis.of(bundle)
        likelihoods = {lk.path: _published(bundle, lk, simplified=simplified) for lk in analysis.likelihoods if lk.kind == "workspace"}
        return Source(bundle_path, analysis.identity, likelihoods, analysis.luminosity_ifb, analysis.axes)


# ---------------------------------------------------------------------------------------
# the template


def template(source: Source, likelihood: str | None) -> tuple[Interface, SignalPoint]:
    """The interface and one published point's inputs (the first of the patchset), named ``example_<point>``."""
    pub = source.published(likelihood)
    itf = pub.interface(source.luminosity_ifb)
    name = next(iter(pub.patches))
    point, _ = inputs_from_patch(itf, f"example_{name}", pub.patches[name], pub.workspace, pub.values.get(name))
    return itf, point


# ---------------------------------------------------------------------------------------
# the plan and the run


@dataclasses.dataclass(frozen=True)
class Plan:
    """The new points of one likelihood, their patches and the work to run."""

    source: Source
    interface: Interface
    points: Mapping[str, SignalPoint]
    generated: Mapping[str, Generated]
    context: Context
    tasks: Sequence[Task]
    warnings: Sequence[Finding]
    xsec_pb: float | None
    notes: Sequence[str] = ()
    simplified: Context | None = None  # --compare-simplified: the simplified likelihood with the new points' signals
    outside_simplified: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)  # point -> its regions the SL does not hold

    @property
    def contexts(self) -> dict[str, Context]:
        return {c.token: c for c in (self.context, self.simplified) if c is not None}


def plan(
    source: Source,
    signals: SignalFile,
    *,
    likelihood: str | None = None,
    upper_limits: bool = False,
    xsec_pb: float | None = None,
    backend: str | None = None,
    compare_simplified: bool = False,
) -> Plan:
    """Check ``signals`` against the interface of the likelihood (``likelihood``, else the one
    the file names, else the only one with signal patches) and generate the tasks; with
    ``compare_simplified`` each point is computed on the likelihood's simplified likelihood too
    (the source must be loaded with ``simplified=True``)."""
    if xsec_pb is not None and not xsec_pb > 0:
        raise InputError(f"xsec {xsec_pb:g}: give the signal's cross-section in pb, > 0", option="xsec")
    pub = source.published(likelihood or signals.likelihood)
    itf = pub.interface(source.luminosity_ifb)
    warnings = check(itf, signals.points, str(signals.path), poi_bounds=pub.settings.poi_bounds)
    context, reason = _context(source, pub, backend)
    generated = {p.name: patch_for(itf, p) for p in signals.points}
    wants_ul = _wants_upper_limits(signals, upper_limits=upper_limits, xsec_pb=xsec_pb)
    sl_context, outside = _simplified_context(source, pub, signals.points) if compare_simplified else (None, {})
    tasks = _tasks(context, generated, sl_context, upper_limit=wants_ul)
    notes = ([f"{pub.likelihood}: {reason}"] if reason else []) + _left_out(outside)
    points = {p.name: p for p in signals.points}
    return Plan(source, itf, points, generated, context, tasks, warnings, xsec_pb, notes, sl_context, outside)


def _context(source: Source, pub: Published, backend: str | None) -> tuple[Context, str | None]:
    """The work context of ``pub`` on the backend chosen for it (``backend``, else the default), and why that one."""

    choice = choose("workspace", pub.workspace, backend, settings=pub.settings)
    token = f"{source.identity}:{pub.likelihood}:reinterpret:{choice.name}"
    return Context(token, pub.likelihood, "workspace", choice.name, pub.workspace, pub.settings, fallback=choice.fallback), choice.reason


def _tasks(context: Context, generated: Mapping[str, Generated], simplified: Context | None, *, upper_limit: bool) -> list[Task]:
    """A task per point: its generated patch on ``context`` (and its signal on the ``simplified`` context)."""
    sl_token = None if simplified is None else simplified.token
    return [Task(context.token, name, patches=(g.ops,), upper_limit=upper_limit, simplified=sl_token) for name, g in generated.items()]


def _left_out(outside: Mapping[str, Sequence[str]]) -> list[str]:
    """A note per point with regions the simplified likelihood does not hold."""
    return [f"{name}: regions {', '.join(regions)} are not in the simplified likelihood; its signal there is left out" for name, regions in outside.items()]


def _simplified_context(source: Source, pub: Published, points: Sequence[SignalPoint]) -> tuple[Context, dict[str, list[str]]]:
    """The simplified likelihood of ``pub`` with the new ``points`` as its signals, and each point's regions it does not hold."""
    if pub.simplified is None:
        raise InputError(f"{source.path}: holds no simplified likelihood derived from {pub.likelihood}; drop --compare-simplified")
    sl_path, sl = pub.simplified
    bins = bins_of(pub.workspace, sl, f"{source.path}:{sl_path}")
    signals, outside = signals_for(bins, points)
    token = f"{source.identity}:{sl_path}:reinterpret:simplified"
    return Context(token, sl_path, "simplified", "simplified", with_signals(sl, signals)), outside


def _wants_upper_limits(signals: SignalFile, *, upper_limits: bool, xsec_pb: float | None) -> bool:
    """Upper limits are computed when asked for, or to scale by a cross-section (--xsec or a point's ``xsec_pb`` label)."""
    return upper_limits or xsec_pb is not None or any("xsec_pb" in p.labels for p in signals.points)


def _scaled(mu: float | None, xsec: float) -> float | None:
    return None if mu is None else mu * xsec


def _xsec_limits(values: dict[str, Any], xsec: float | None) -> dict[str, Any]:
    """``xsec_up_obs_pb`` and ``xsec_up_exp_pb``: the mu limits times the cross-section the yields were made with."""
    if xsec is None or "mu_up_obs" not in values:
        return values
    expected = [_scaled(m, xsec) for m in values["mu_up_exp"]]
    return {**values, "xsec_pb": xsec, "xsec_up_obs_pb": _scaled(values["mu_up_obs"], xsec), "xsec_up_exp_pb": expected}


def outcome(p: Plan, result: TaskResult) -> PointOutcome:
    """A computed point as a replay outcome without a claim (it passes when it was computed)."""
    point = p.points[result.point]
    values = None
    if result.values is not None:
        values = Values.from_json(_xsec_limits(dict(result.values), point.labels.get("xsec_pb", p.xsec_pb)))
    simplified = None if result.simplified is None else SimplifiedCLs.of(result.simplified, values)
    return PointOutcome(
        key=result.point,
        likelihood=p.interface.likelihood,
        point=result.point,
        claimed=None,
        replayed=values,
        passed=values is not None,
        backend=result.backend,
        seconds=result.seconds,
        error=result.error,
        values=dict(point.labels),
        note=result.note,
        simplified=simplified,
    )


def run(p: Plan, *, jobs: int = 1, scheduler: str | None = None, on_outcome: Callable[[PointOutcome, int, int], None] | None = None) -> ReplayReport:
    """Compute every point of ``p`` (in parallel with ``jobs`` or on Dask at ``scheduler``)."""

    start = time.perf_counter()
    done: dict[str, PointOutcome] = {}
    with contextlib.closing(execute(p.contexts, p.tasks, jobs=jobs, scheduler=scheduler)) as results:
        for result in results:
            done[result.point] = got = outcome(p, result)
            if on_outcome is not None:
                on_outcome(got, len(done), len(p.tasks))
    ordered = [done[t.point] for t in p.tasks if t.point in done]
    return ReplayReport(str(p.source.path), p.source.identity, ordered, time.perf_counter() - start, labels=_plane(p.points.values()), axes=p.source.axes)


def _plane(points: Any) -> tuple[str, str] | None:
    """The first two labels every point has: the axes of the report's plot (None: fewer than two)."""
    labels = _labels(points)
    return (labels[0], labels[1]) if len(labels) >= 2 else None


def _labels(points: Any) -> list[str]:
    """The label names every point has (in the first point's order), ``xsec_pb`` left out."""
    points = list(points)
    if not points:
        return []
    common = set.intersection(*(set(pt.labels) for pt in points))
    return [k for k in points[0].labels if k in common and k != "xsec_pb"]


def _point_json(p: Plan, o: PointOutcome) -> dict[str, Any]:
    """One point of the ``--json`` document."""
    doc: dict[str, Any] = {"likelihood": o.likelihood, "backend": o.backend, "seconds": round(o.seconds, 6), "labels": dict(o.values)}
    doc.update(o.replayed.to_json() if o.replayed is not None else {"error": o.error})
    if o.note:
        doc["note"] = o.note
    doc["dropped"] = [str(d) for d in p.generated[o.point].dropped]
    if o.simplified is not None:
        doc["simplified"] = {**o.simplified.to_json(), "regions_left_out": list(p.outside_simplified.get(o.point, []))}
    return doc


def to_json(p: Plan, report: ReplayReport) -> dict[str, Any]:
    """The ``--json`` document: per point the CLs, limits, labels and the modifiers it did not get."""
    return {
        "bundle": report.bundle,
        "identity": report.identity,
        "likelihood": p.interface.likelihood,
        "interface": p.interface.source,
        "points": {o.point: _point_json(p, o) for o in report.points},
        "summary": _summary_json(report),
        "warnings": [w.to_json() for w in p.warnings],
    }


def _summary_json(report: ReplayReport) -> dict[str, Any]:
    """How many points were computed, failed and excluded, and the wall time."""
    computed = [o for o in report.points if o.replayed is not None]
    return {
        "total": len(report.points),
        "computed": len(computed),
        "failed": len(report.points) - len(computed),
        "excluded": sum(1 for o in computed if o.excluded("replayed")),
        "seconds": round(report.seconds, 3),
    }


# ---------------------------------------------------------------------------------------
# --patchset-out


def patchset(p: Plan) -> dict[str, Any]:
    """A pyhf PatchSet (schema 1.0.0) of the new points, for the likelihood's background-only workspace."""
    labels = _labels(p.points.values()) or ["index"]
    patches = []
    for i, (name, g) in enumerate(p.generated.items()):
        labs = p.points[name].labels
        values = [labs[k] for k in labels] if labels != ["index"] else [i]
        patches.append({"metadata": {"name": name, "values": values}, "patch": g.ops})
    pub = p.source.likelihoods[p.interface.likelihood]
    metadata = {
        "description": f"new signal points for {p.interface.likelihood} made by arch reinterpret from {p.source.path.name} ({p.source.identity})",
        "digests": {"sha256": pyhf_digest(pub.workspace)},
        "labels": labels,
        "references": dict(pub.references),  # the analysis's: the new points are for its likelihood
    }
    return {"metadata": metadata, "patches": patches, "version": "1.0.0"}


def write_json(path: Path, doc: Any) -> None:
    """``doc`` as JSON at ``path``, written to a temporary file and renamed into place."""

    reason = unwritable(path)
    if reason is not None:
        raise InputError(f"{path}: {reason}")
    with atomic_output(path) as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True).encode("utf-8") + b"\n")


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be an output file, with the fix (None: it can)."""
    if path.is_dir():
        return "is a directory; give a file in an existing directory"
    if not path.parent.is_dir():
        return "its directory does not exist; give a file in an existing directory"
    return None
