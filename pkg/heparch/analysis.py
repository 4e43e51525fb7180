"""The analysis a bundle holds: its likelihoods, their signal points and the claims on them.

The one place that answers "which likelihoods and signal points does this bundle hold, with
which claims and settings": it alone reads the manifest's file list and a results
component's points (tests/test_layers.py holds it). :class:`Analysis` is built once from a
bundle's manifest; :func:`points_of` and :func:`claims_of` read a likelihood's components
into frozen :class:`Point` and :class:`Claim` values; :func:`select` is the one rule for a
name given with ``--likelihood`` or ``--point`` (a miss lists the valid names and the
close ones). :func:`resolve` turns what ``arch cls`` / ``arch upper-limit`` were given (a
workspace or simplified-likelihood JSON, or a bundle) into :class:`~heparch.infer.inputs.Inputs`.

>>> select("pt_300_10", ["pt_300_100", "extra"], where="ps.json", option="point", predicate="is not a patch of the patchset")
Traceback (most recent call last):
...
heparch.errors.InputError: ps.json: point 'pt_300_10' is not a patch of the patchset; valid names: 'pt_300_100', 'extra'; did you mean 'pt_300_100'?
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import heparch
from heparch.api import Bundle
from heparch.components.patchset import looks_like_patchset
from heparch.components.signal_interface import ROLE as INTERFACE_ROLE
from heparch.components.simplified import looks_like_simplified
from heparch.errors import InferenceInputError, InputError
from heparch.infer import inputs as infer_inputs
from heparch.infer.base import Settings
from heparch.infer.inputs import Inputs, Patch, listing
from heparch.spec.components import ResultPoint, Results, SignalInterface, Tolerance
from heparch.spec.models import FileEntry

Kind = Literal["workspace", "simplified"]
#: an open bundle, as the modules above this one receive it (they never import the API itself)
OpenBundle: TypeAlias = Bundle

#: the tolerance of claims that record none, and the one ``arch claim`` records (DESIGN.md 5b)
DEFAULT_TOLERANCE: Final = Tolerance.from_json({"CLs": {"abs": 1e-4, "rel": 1e-3}, "mu_up": {"abs": 0.0, "rel": 1e-3}})
#: the CLs level and signal strength of claims that record none
LEVEL: Final = 0.05
MU: Final = 1.0


# ---------------------------------------------------------------------------------------
# the selection rule


def select(
    wanted: str,
    valid: Sequence[str],
    *,
    where: str,
    option: str,
    predicate: str,
    label: str = "valid names: ",
    hint: str = "",
    error: type[InputError] = InputError,
) -> str:
    """``wanted`` when it is one of ``valid``; else ``error`` naming ``where``, the parameter
    ``option`` (the CLI names its flag), the valid names and the close ones ("did you mean").
    ``hint`` ends the message."""
    if wanted in valid:
        return wanted
    close = difflib.get_close_matches(wanted, list(valid), n=3)
    mean = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise error(f"{where}: {option} {wanted!r} {predicate}; {label}{listing(valid)}{mean}{hint}", option=option)


def only(valid: Sequence[str], *, where: str, what: str, option: str) -> str:
    """The one name of ``valid`` when nothing was named; else an error asking to name one."""
    if len(valid) == 1:
        return valid[0]
    if not valid:
        raise InputError(f"{where}: holds no {what}")
    raise InputError(f"{where}: holds {len(valid)} {what}s; pick one with {option}=NAME: {listing(valid)}", option=option)


# ---------------------------------------------------------------------------------------
# the bundle's likelihoods


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """One likelihood of a bundle: its logical path, its kind (a HistFactory ``workspace`` or a
    ``simplified`` likelihood) and the components that belong to it (logical paths)."""

    path: str
    kind: Kind
    digest: str
    patchsets: tuple[str, ...] = ()
    patch_files: tuple[tuple[str, str], ...] = ()  # (logical path, point name) of its RFC 6902 patch files
    simplified: tuple[str, ...] = ()  # simplified likelihoods derived from it
    results: str | None = None  # its results component
    derived_from: str | None = None  # a simplified likelihood's full likelihood, when the manifest names it
    interfaces: tuple[str, ...] = ()  # its declared signal-interface components


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What a bundle holds, from its manifest: the likelihoods in logical-path order."""

    source: Path
    identity: str
    likelihoods: tuple[Likelihood, ...]
    paths: frozenset[str]  # every logical path of the bundle
    axes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # analysis.axes: label -> axis title
    luminosity_ifb: float | None = None  # analysis.luminosity_ifb

    @classmethod
    def of(cls, bundle: Bundle) -> Analysis:
        m = bundle.manifest
        axes = dict(m.analysis.axes or {}) if m.analysis is not None else {}
        luminosity = m.analysis.luminosity_ifb if m.analysis is not None else None
        belongs: dict[str, list[FileEntry]] = {}
        for f in m.files:
            if f.likelihood is not None:
                belongs.setdefault(f.likelihood, []).append(f)
        found = [_likelihood(f, _KINDS[f.role], belongs.get(f.path, [])) for f in m.files if f.role in _KINDS]
        paths = frozenset(f.path for f in m.files)
        return cls(bundle.path, bundle.identity, tuple(sorted(found, key=lambda lk: lk.path)), paths, axes, luminosity)

    def names(self, *kinds: Kind) -> list[str]:
        """Logical paths of the likelihoods of these kinds (all without)."""
        return [lk.path for lk in self.likelihoods if not kinds or lk.kind in kinds]

    def likelihood(self, path: str) -> Likelihood:
        """The likelihood of logical path ``path`` (a ``KeyError`` if there is none: :func:`select` the name first)."""
        for lk in self.likelihoods:
            if lk.path == path:
                return lk
        raise KeyError(path)

    def claimed(self) -> list[Likelihood]:
        """The likelihoods with a results component."""
        return [lk for lk in self.likelihoods if lk.results is not None]


#: the roles of likelihoods, and their kinds
_KINDS: Final[Mapping[str, Kind]] = {"likelihood": "workspace", "simplified-likelihood": "simplified"}


def _likelihood(entry: FileEntry, kind: Kind, mine: Sequence[FileEntry]) -> Likelihood:
    """The likelihood of manifest entry ``entry``, with the files that name it (``mine``)."""

    def paths(role: str) -> tuple[str, ...]:
        return tuple(f.path for f in mine if f.role == role)

    patch_files = tuple((f.path, f.annotations.get("patch.name", f.path)) for f in mine if f.role == "patch")
    results = paths("results")
    derived = paths("simplified-likelihood")
    first_results = results[0] if results else None
    return Likelihood(entry.path, kind, entry.digest, paths("patchset"), patch_files, derived, first_results, entry.likelihood, paths(INTERFACE_ROLE))


def with_results(data: Mapping[str, object], components: Mapping[str, str]) -> dict[str, object]:
    """arch.yaml's ``data`` (:func:`heparch.extract.arch_yaml_data`) with each results component
    (logical path -> its likelihood) added to its ``files``, replacing any file of that path."""
    files = data.get("files")
    kept = [dict(f) for f in files if isinstance(f, Mapping) and f.get("path") not in components] if isinstance(files, list) else []
    kept += [{"path": path, "role": "results", "likelihood": lk, "mediaType": "application/json"} for path, lk in components.items()]
    return {**data, "files": sorted(kept, key=lambda f: str(f["path"]))}


# ---------------------------------------------------------------------------------------
# signal points


@dataclasses.dataclass(frozen=True)
class Point:
    """One signal point of a likelihood: its name, where it is defined (a patchset, a patch
    file or the simplified likelihood itself), its RFC 6902 patch (None for a signal of a
    simplified likelihood; as found, checked where it is used) and its label values."""

    likelihood: str
    name: str
    source: str
    patch: Any = None
    labels: tuple[str, ...] = ()
    raw_values: tuple[Any, ...] | None = None  # as the patchset gives them, one per label

    @property
    def values(self) -> dict[str, float]:
        """The numeric label values (e.g. ``{"m1": 700.0, "m2": 250.0}``)."""
        pairs = zip(self.labels, self.raw_values or (), strict=False)
        return {lab: float(v) for lab, v in pairs if _number(v)}

    @property
    def numbers(self) -> tuple[float, ...] | None:
        """The label values as given, when the point gives a number for every label (None otherwise)."""
        if not self.labels or self.raw_values is None or not all(_number(v) for v in self.raw_values):
            return None
        return self.raw_values


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class Points:
    """A likelihood's JSON and its signal points by name (first definition wins)."""

    likelihood: Likelihood
    spec: Any
    points: Mapping[str, Point]
    references: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the first patchset's metadata.references

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The label names of the first labelled point."""
        return next((p.labels for p in self.points.values() if p.labels), None)


def patchset_points(patchset: Any, likelihood: str, source: str) -> list[Point]:
    """The points of a parsed pyhf patchset (its ``patches[].metadata.name``), in order."""
    if not isinstance(patchset, dict):
        return []
    meta = patchset.get("metadata")
    raw = meta.get("labels") if isinstance(meta, dict) else None
    labels = tuple(str(x) for x in raw) if isinstance(raw, list) else ()
    found = (_patch_point(p, labels, likelihood, source) for p in patchset.get("patches") or [])
    return [p for p in found if p is not None]


def _patch_point(patch: Any, labels: tuple[str, ...], likelihood: str, source: str) -> Point | None:
    """The point of one patch of a patchset (None without a name)."""
    meta = patch.get("metadata") if isinstance(patch, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    return Point(likelihood, meta["name"], source, patch.get("patch"), labels, _aligned(meta.get("values"), labels))


def _signal_points(spec: Any, likelihood: str) -> list[Point]:
    if not isinstance(spec, dict) or not isinstance(spec.get("signals"), dict):
        return []
    raw = spec.get("labels")
    labels = tuple(str(x) for x in raw) if isinstance(raw, list) else ()
    values = spec.get("values")
    values = values if isinstance(values, dict) else {}
    return [Point(likelihood, str(sig), likelihood, None, labels, _aligned(values.get(sig), labels)) for sig in spec["signals"]]


def _aligned(values: Any, labels: tuple[str, ...]) -> tuple[Any, ...] | None:
    """``values`` as a tuple when it is a list with one value per label."""
    return tuple(values) if isinstance(values, list) and len(values) == len(labels) else None


def points_of(bundle: Bundle, likelihood: Likelihood, *, patchsets: Sequence[str] | None = None) -> Points:
    """The likelihood's JSON and points: the patches of its patchsets (``patchsets``: only
    these) and, with all its patchsets, its patch files; a simplified likelihood's signals."""
    spec = bundle.read_json(likelihood.path)
    if likelihood.kind == "simplified":
        return Points(likelihood, spec, _by_name(_signal_points(spec, likelihood.path)))
    return _workspace_points(bundle, likelihood, spec, patchsets)


def _workspace_points(bundle: Bundle, likelihood: Likelihood, spec: Any, patchsets: Sequence[str] | None) -> Points:
    """A workspace's points: its patchsets' patches (each patchset read once), then with all its patchsets its patch files."""
    read = [(path, bundle.read_json(path)) for path in (likelihood.patchsets if patchsets is None else patchsets)]
    found = [p for path, obj in read for p in patchset_points(obj, likelihood.path, path)]
    if patchsets is None:
        found += [Point(likelihood.path, name, path, bundle.read_json(path)) for path, name in likelihood.patch_files]
    return Points(likelihood, spec, _by_name(found), _references(obj for _, obj in read))


def _by_name(found: Iterable[Point]) -> dict[str, Point]:
    """The points by name, the first definition of a name winning."""
    points: dict[str, Point] = {}
    for p in found:
        points.setdefault(p.name, p)
    return points


def _references(patchsets: Iterable[Any]) -> dict[str, Any]:
    """The first non-empty ``metadata.references`` of these parsed patchsets."""
    for obj in patchsets:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        refs = meta.get("references") if isinstance(meta, dict) else None
        if isinstance(refs, dict) and refs:
            return dict(refs)
    return {}


def declared_interface(bundle: Bundle, likelihood: Likelihood) -> tuple[str, SignalInterface] | None:
    """The likelihood's declared signal interface (its first, by manifest order), read: (logical path, model)."""
    if not likelihood.interfaces:
        return None
    path = likelihood.interfaces[0]
    return path, SignalInterface.from_json(bundle.read_json(path))


def derived_simplified(bundle: Bundle, likelihood: Likelihood) -> tuple[str, Any] | None:
    """The first simplified likelihood derived from ``likelihood`` (by manifest order), read: (logical path, JSON)."""
    if not likelihood.simplified:
        return None
    path = likelihood.simplified[0]
    return path, bundle.read_json(path)


# ---------------------------------------------------------------------------------------
# claims


@dataclasses.dataclass(frozen=True)
class ClaimSettings:
    """How the claims of one likelihood were computed: the inference :class:`Settings` (as the
    workspace gives them: bounds equal to the workspace's are dropped), ``mu``, ``level`` and the
    pyhf fit tolerance."""

    settings: Settings
    mu: float = MU
    level: float = LEVEL
    fit_tolerance: float | None = None


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claimed point: the point, its claimed values, and the settings, tolerance and
    software of its likelihood's results component."""

    point: Point
    values: ResultPoint
    settings: ClaimSettings
    tolerance: Tolerance
    software: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Claims:
    """The results component of one likelihood, read: its claims in the component's order."""

    likelihood: Likelihood
    path: str
    spec: Any
    settings: ClaimSettings
    claims: tuple[Claim, ...]
    software: Mapping[str, str]
    labels: tuple[str, ...] | None = None  # the label names of the likelihood's points


def claims_of(bundle: Bundle, likelihood: Likelihood) -> Claims:
    """The claims on ``likelihood`` (which has a results component); every claimed point must be
    one of the likelihood's points. Raises :class:`InputError` naming the field otherwise."""
    assert likelihood.results is not None
    where = f"{bundle.path}:{likelihood.results}"
    results = Results.from_json(bundle.read_json(likelihood.results))
    if results.likelihood != likelihood.path:
        raise InputError(
            f"{where}:$.likelihood: {results.likelihood!r} is not the likelihood the manifest names for it ({likelihood.path!r}); fix the results component"
        )
    found = points_of(bundle, likelihood)
    recorded = results.settings.to_json() if results.settings else {}
    settings = _claim_settings(recorded, found.spec, where)
    if likelihood.kind == "workspace":  # E081: the measurement the claims were made with must let pyhf start a fit
        infer_inputs.require_measurement(found.spec, settings.settings.measurement, f"{bundle.path}:{likelihood.path}")
    tolerance = results.tolerance or DEFAULT_TOLERANCE
    software = dict(results.software or {})
    claims = []
    for name, values in results.points.items():
        if name not in found.points:
            raise InputError(f"{where}:$.points.{name}: not a signal point of {likelihood.path}; fix the results component")
        claims.append(Claim(found.points[name], values, settings, tolerance, software))
    return Claims(likelihood, likelihood.results, found.spec, settings, tuple(claims), software, found.labels)


def _claim_settings(recorded: Mapping[str, Any], spec: Any, where: str) -> ClaimSettings:
    """The typed settings of a results component (``recorded``: its ``settings``)."""
    typed = infer_inputs.as_given(Settings.from_json(recorded, f"{where}:$.settings"), spec)
    fit = recorded.get("fit_tolerance")
    return ClaimSettings(typed, float(recorded.get("mu", MU)), float(recorded.get("level", LEVEL)), float(fit) if isinstance(fit, int | float) else None)


def recorded_settings(bundle: Bundle, likelihood: Likelihood) -> Settings:
    """The inference settings ``likelihood``'s results component records, as recorded (the defaults without one)."""
    if likelihood.results is None:
        return Settings()
    results = Results.from_json(bundle.read_json(likelihood.results))
    return Settings.from_json(results.settings.to_json() if results.settings else {}, f"{bundle.path}:{likelihood.results}:$.settings")


def results_path(analysis: Analysis, likelihood: str) -> str:
    """The results component of ``likelihood``: its existing one, else a free ``results/<likelihood>``."""
    existing = analysis.likelihood(likelihood).results
    if existing is not None:
        return existing
    stem = "results/" + (likelihood[:-5] if likelihood.endswith(".json") else likelihood)
    path, k = stem + ".json", 1
    while path in analysis.paths:
        k += 1
        path = f"{stem}-{k}.json"
    return path


# ---------------------------------------------------------------------------------------
# arch cls / arch upper-limit inputs


def resolve(
    path: str | Path,
    *,
    patchset: str | Path | None = None,
    point: str | None = None,
    patches: Sequence[str | Path] = (),
    likelihood: str | None = None,
    backend: str | None = None,
    measurement: str | None = None,
) -> Inputs:
    """The inference input of INPUT ``path``: a workspace JSON (with ``patchset`` and ``point``,
    and/or the RFC 6902 ``patches`` applied in order after the point's patch, as ``pyhf cls``
    does), a simplified-likelihood JSON (``point`` names its signal) or a bundle (``likelihood``
    picks one; ``point`` names a patch of its patchsets, a patch file's ``patch.name`` or a
    signal of a simplified likelihood). ``measurement`` names the workspace measurement used
    (None: the first). Raises :class:`InputError` (exit 2) naming the file, field and fix."""
    path = Path(path)
    files = [Path(p) for p in patches]
    if infer_inputs.is_bundle(path):
        return _from_bundle(path, patchset=patchset, point=point, patches=files, likelihood=likelihood, backend=backend, measurement=measurement)
    if likelihood is not None:
        raise InputError(f"likelihood {likelihood!r}: only for a bundle; {path} is a JSON file", option="likelihood")
    obj = infer_inputs.read_json(path, "workspace, simplified likelihood or bundle")
    if looks_like_simplified(obj):
        return _simplified(obj, str(path), point, patched=patchset is not None or bool(files))
    ops: list[tuple[Patch, str]] = []
    if patchset is not None:
        ops.append(_patch_of_file(Path(patchset), point))
    elif point is not None:
        raise InputError(f"--point {point!r}: a workspace file has no signal points; give the patchset with --patchset PS.json (or use --patch FILE)")
    return infer_inputs.workspace_inputs(obj, str(path), ops, files, point=point if patchset is not None else None, measurement=measurement)


def _patch_of_file(ps_path: Path, point: str | None) -> tuple[Patch, str]:
    """The patch named ``point`` of the patchset file ``ps_path``, with its location."""
    obj = infer_inputs.read_json(ps_path, "patchset")
    if not looks_like_patchset(obj):
        raise InferenceInputError(f"{ps_path}: not a pyhf patchset (needs 'patches' and 'metadata'); give RFC 6902 patch files with --patch")
    found = patchset_points(obj, "", str(ps_path))
    names = [p.name for p in found]
    if point is None:
        raise InputError(f"{ps_path}: name the signal point with point=NAME; patches: {listing(names)}", option="point")
    select(point, names, where=str(ps_path), option="point", predicate="is not a patch of the patchset (patches[].metadata.name)", error=InferenceInputError)
    ops = next(p.patch for p in found if p.name == point)
    if not isinstance(ops, list):
        raise InferenceInputError(f"{ps_path}:$.patches[name={point!r}].patch: not a list of RFC 6902 operations")
    return ops, f"{ps_path}:{point}"


def _simplified(sl: Any, location: str, point: str | None, *, patched: bool, likelihood: str | None = None) -> Inputs:
    """The signal ``point`` of the simplified likelihood ``sl`` (None: its only signal)."""
    if patched:
        raise InputError(f"{location}: is a simplified likelihood: --patchset and --patch apply to workspaces; name its signal with --point")
    infer_inputs.check_simplified(sl, location)
    signals = [p.name for p in _signal_points(sl, likelihood or location)]
    if point is None:
        if len(signals) != 1:
            raise InputError(f"{location}: name the signal with point=NAME; signals: {listing(signals)}", option="point")
        point = signals[0]
    predicate = "is not a signal of the simplified likelihood"
    select(point, signals, where=f"{location}:$.signals", option="point", predicate=predicate, error=InferenceInputError)
    return infer_inputs.simplified_inputs(sl, location, point, likelihood=likelihood)


def _pick_likelihood(analysis: Analysis, likelihood: str | None, backend: str | None) -> Likelihood:
    """The likelihood ``arch cls`` runs on: the one named, else the only full one (the only
    simplified one with ``backend="simplified"``, or when the bundle holds no full one)."""
    where = str(analysis.source)
    if likelihood is not None:
        predicate = "is not a likelihood of the bundle"
        return analysis.likelihood(select(likelihood, analysis.names(), where=where, option="likelihood", predicate=predicate, label="it has "))
    full, simplified = analysis.names("workspace"), analysis.names("simplified")
    if backend == "simplified":
        return analysis.likelihood(only(simplified, where=where, what="simplified likelihood", option="likelihood"))
    return analysis.likelihood(only(full or simplified, where=where, what="likelihood", option="likelihood"))


def _simplified_hint(bundle: Bundle, analysis: Analysis, likelihood: str, point: str) -> str:
    """A hint when ``point`` is a signal of a simplified likelihood derived from ``likelihood`` (or from none)."""
    for lk in analysis.likelihoods:
        if lk.kind == "simplified" and lk.derived_from in (likelihood, None) and point in points_of(bundle, lk).points:
            return f"; it is a signal of the simplified likelihood {lk.path!r}: add --backend simplified (or --likelihood {lk.path})"
    return ""


def _from_bundle(
    path: Path, *, patchset: str | Path | None, point: str | None, patches: Sequence[Path], likelihood: str | None, backend: str | None, measurement: str | None
) -> Inputs:
    with heparch.open(path) as bundle:
        analysis = Analysis.of(bundle)
        lk = _pick_likelihood(analysis, likelihood, backend)
        location = f"{path}:{lk.path}"
        if lk.kind == "simplified":
            return _simplified(bundle.read_json(lk.path), location, point, patched=patchset is not None or bool(patches), likelihood=lk.path)
        found = points_of(bundle, lk, patchsets=_patchsets(analysis, lk, patchset))
        ops = _bundle_patch(bundle, analysis, found, point, location) if point is not None else []
        if point is None and found.points and not patches:
            raise InputError(f"{location}: name the signal point with point=NAME; points: {listing(sorted(found.points))}", option="point")
    return infer_inputs.workspace_inputs(found.spec, location, ops, patches, point=point, likelihood=lk.path, measurement=measurement)


def _patchsets(analysis: Analysis, lk: Likelihood, patchset: str | Path | None) -> list[str] | None:
    if patchset is None:
        return None
    if str(patchset) not in lk.patchsets:
        raise InputError(f"{analysis.source}: patchset {str(patchset)!r} is not a patchset of likelihood {lk.path!r} in the bundle", option="patchset")
    return [str(patchset)]


def _bundle_patch(bundle: Bundle, analysis: Analysis, found: Points, point: str, location: str) -> list[tuple[Patch, str]]:
    hint = _simplified_hint(bundle, analysis, found.likelihood.path, point) if point not in found.points else ""
    predicate = "is not a signal point of this likelihood (its patchsets and patch files)"
    select(point, sorted(found.points), where=location, option="point", predicate=predicate, hint=hint, error=InferenceInputError)
    p = found.points[point]
    if not isinstance(p.patch, list):
        raise InferenceInputError(f"{analysis.source}:{p.source}: the patch of {point!r} is not an RFC 6902 patch (a JSON array of operations)")
    return [(p.patch, f"{analysis.source}:{p.source}:{point}")]
