"""The analysis a bundle holds: its likelihoods, their signal points and the claims on them.

The one place that answers "which likelihoods and signal points does this bundle hold, with
which claims and settings": it alone reads the manifest's file list and a results
component's points (tests/test_layers.py holds it). It reads a bundle through the packager's
reader (:class:`heparch.bundle.OpenBundle`), below the Python API, whose ``Bundle.likelihoods()``
and ``Bundle.patchset()`` ask it. :class:`Analysis` is built once from a bundle's manifest, with
what the manifest says about the bundle besides (:class:`Description`, for the exports);
:func:`points_of` and :func:`claims_of` read a likelihood's components
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
import operator
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from heparch.bundle import OpenBundle as OpenBundle  # the open bundle the modules above receive (they never import the reader or the API)
from heparch.components.patchset import looks_like_patchset
from heparch.components.signal_interface import ROLE as INTERFACE_ROLE
from heparch.components.simplified import looks_like_simplified
from heparch.errors import InferenceInputError, InputError
from heparch.infer import inputs as infer_inputs
from heparch.infer.base import Settings
from heparch.infer.inputs import Inputs, Patch, listing
from heparch.spec import models
from heparch.spec.components import ResultPoint, Results, SignalInterface, Tolerance
from heparch.spec.models import FileEntry, Manifest

Kind = Literal["workspace", "simplified"]
#: the manifest's metadata of the analysis (title, collaboration, identifiers, axes, ...), as the format types it
Metadata: TypeAlias = models.Analysis
#: what a repository assigned at deposit (DOI, publisher, year), as arch.yaml recorded it
RecordedDeposit: TypeAlias = models.Deposit

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
class Description:
    """What a bundle's manifest says about it besides its likelihoods: what the exports show."""

    name: str | None = None
    created: str | None = None  # RFC 3339, as recorded
    format: str = ""  # the bundleFormat URI
    metadata: Metadata = dataclasses.field(default_factory=Metadata)  # the manifest's analysis (empty without one)
    deposit: RecordedDeposit | None = None
    stored: tuple[FileEntry, ...] = ()  # every stored file (logical path, role, digest, size, media type), in logical-path order

    @classmethod
    def of(cls, manifest: Manifest) -> Description:
        metadata = manifest.analysis or Metadata()
        return cls(manifest.name, manifest.created, manifest.bundleFormat.uri, metadata, manifest.deposit, manifest.files)


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What a bundle holds, from its manifest: the likelihoods in logical-path order, and what the
    manifest says about the bundle besides."""

    source: Path
    identity: str
    likelihoods: tuple[Likelihood, ...]
    about: Description = dataclasses.field(default_factory=Description)

    @classmethod
    def of(cls, bundle: OpenBundle) -> Analysis:
        files = bundle.manifest.files
        mine = _components_by_likelihood(files)
        found = [_likelihood(f, _KINDS[f.role], mine.get(f.path, [])) for f in files if f.role in _KINDS]
        return cls(bundle.path, bundle.identity, tuple(sorted(found, key=operator.attrgetter("path"))), Description.of(bundle.manifest))

    @property
    def paths(self) -> frozenset[str]:
        """Every logical path of the bundle."""
        return frozenset(f.path for f in self.about.stored)

    @property
    def axes(self) -> Mapping[str, str]:
        """``analysis.axes`` of the manifest: label -> axis title."""
        return dict(self.about.metadata.axes or {})

    @property
    def luminosity_ifb(self) -> float | None:
        """``analysis.luminosity_ifb`` of the manifest."""
        return self.about.metadata.luminosity_ifb

    def names(self, *kinds: Kind) -> list[str]:
        """Logical paths of the likelihoods of these kinds (all without)."""
        wanted = kinds or tuple(_KINDS.values())
        return [lk.path for lk in self.likelihoods if lk.kind in wanted]

    def likelihood(self, path: str) -> Likelihood:
        """The likelihood of logical path ``path`` (a ``KeyError`` if there is none: :func:`select` the name first)."""
        return {lk.path: lk for lk in self.likelihoods}[path]

    def claimed(self) -> list[Likelihood]:
        """The likelihoods with a results component."""
        return [lk for lk in self.likelihoods if lk.results is not None]


def _components_by_likelihood(files: Sequence[FileEntry]) -> dict[str, list[FileEntry]]:
    """The files that name a likelihood (their ``likelihood`` annotation), by that likelihood."""
    belongs: dict[str, list[FileEntry]] = {}
    for f in files:
        if f.likelihood is not None:
            belongs.setdefault(f.likelihood, []).append(f)
    return belongs


def _likelihood(entry: FileEntry, kind: Kind, mine: Sequence[FileEntry]) -> Likelihood:
    """The likelihood of manifest entry ``entry``, with the files that name it (``mine``)."""
    return Likelihood(
        entry.path,
        kind,
        entry.digest,
        patchsets=_paths(mine, "patchset"),
        patch_files=tuple((f.path, f.annotations.get("patch.name", f.path)) for f in _of_role(mine, "patch")),
        simplified=_paths(mine, "simplified-likelihood"),
        results=next(iter(_paths(mine, "results")), None),
        derived_from=entry.likelihood,
        interfaces=_paths(mine, INTERFACE_ROLE),
    )


def _of_role(files: Sequence[FileEntry], role: str) -> list[FileEntry]:
    return [f for f in files if f.role == role]


def _paths(files: Sequence[FileEntry], role: str) -> tuple[str, ...]:
    """The logical paths of the files of this role."""
    return tuple(f.path for f in _of_role(files, role))


#: the roles of likelihoods, and their kinds
_KINDS: Final[Mapping[str, Kind]] = {"likelihood": "workspace", "simplified-likelihood": "simplified"}


def with_results(data: Mapping[str, object], components: Mapping[str, str]) -> dict[str, object]:
    """arch.yaml's ``data`` (:func:`heparch.extract.arch_yaml_data`) with each results component
    (logical path -> its likelihood) added to its ``files``, replacing any file of that path."""
    kept = _files_besides(data.get("files"), components)
    kept += [{"path": path, "role": "results", "likelihood": lk, "mediaType": "application/json"} for path, lk in components.items()]
    return {**data, "files": sorted(kept, key=lambda f: str(f["path"]))}


def _files_besides(files: object, paths: Mapping[str, str]) -> list[dict[str, Any]]:
    """arch.yaml's ``files`` (a list of mappings) without those of these logical ``paths``."""
    if not isinstance(files, list):
        return []
    return [dict(f) for f in files if isinstance(f, Mapping) and f.get("path") not in paths]


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
    labels = _labels(_field(patchset, "metadata", "labels"))
    found = (_patch_point(p, labels, likelihood, source) for p in _list(_field(patchset, "patches")))
    return [p for p in found if p is not None]


def _patch_point(patch: Any, labels: tuple[str, ...], likelihood: str, source: str) -> Point | None:
    """The point of one patch of a patchset (None without a name)."""
    name = _field(patch, "metadata", "name")
    if not isinstance(name, str):
        return None
    return Point(likelihood, name, source, _field(patch, "patch"), labels, _aligned(_field(patch, "metadata", "values"), labels))


def _signal_points(spec: Any, likelihood: str) -> list[Point]:
    """The points of a simplified likelihood: its ``signals``, with the label values its ``values`` give."""
    signals = _field(spec, "signals")
    if not isinstance(signals, dict):
        return []
    labels = _labels(_field(spec, "labels"))
    return [Point(likelihood, str(sig), likelihood, None, labels, _aligned(_field(spec, "values", sig), labels)) for sig in signals]


def _field(obj: Any, *keys: str) -> Any:
    """``obj[key][...]`` down through JSON objects; None where one of them is not an object."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(raw: Any) -> tuple[str, ...]:
    """The label names of a ``labels`` list (none without one)."""
    return tuple(str(x) for x in _list(raw))


def _aligned(values: Any, labels: tuple[str, ...]) -> tuple[Any, ...] | None:
    """``values`` as a tuple when it is a list with one value per label."""
    return tuple(values) if isinstance(values, list) and len(values) == len(labels) else None


def points_of(bundle: OpenBundle, likelihood: Likelihood, *, patchsets: Sequence[str] | None = None) -> Points:
    """The likelihood's JSON and points: the patches of its patchsets (``patchsets``: only
    these) and, with all its patchsets, its patch files; a simplified likelihood's signals."""
    spec = bundle.read_json(likelihood.path)
    if likelihood.kind == "simplified":
        return Points(likelihood, spec, _by_name(_signal_points(spec, likelihood.path)))
    return _workspace_points(bundle, likelihood, spec, patchsets)


def _workspace_points(bundle: OpenBundle, likelihood: Likelihood, spec: Any, patchsets: Sequence[str] | None) -> Points:
    """A workspace's points: its patchsets' patches (each patchset read once), then with all its patchsets its patch files."""
    read = {path: bundle.read_json(path) for path in (likelihood.patchsets if patchsets is None else patchsets)}
    found = [p for path, obj in read.items() for p in patchset_points(obj, likelihood.path, path)]
    files = _patch_file_points(bundle, likelihood) if patchsets is None else []
    return Points(likelihood, spec, _by_name(found + files), _references(read.values()))


def _patch_file_points(bundle: OpenBundle, likelihood: Likelihood) -> list[Point]:
    """The points of the likelihood's RFC 6902 patch files, named by their ``patch.name``."""
    return [Point(likelihood.path, name, path, bundle.read_json(path)) for path, name in likelihood.patch_files]


def _by_name(found: Sequence[Point]) -> dict[str, Point]:
    """The points by name, the first definition of a name winning."""
    points: dict[str, Point] = {}
    for p in found:
        points.setdefault(p.name, p)
    return points


def _references(patchsets: Iterable[Any]) -> dict[str, Any]:
    """The first non-empty ``metadata.references`` of these parsed patchsets."""
    found = (_field(obj, "metadata", "references") for obj in patchsets)
    return dict(next((refs for refs in found if isinstance(refs, dict) and refs), {}))


def declared_interface(bundle: OpenBundle, likelihood: Likelihood) -> tuple[str, SignalInterface] | None:
    """The likelihood's declared signal interface (its first, by manifest order), read: (logical path, model)."""
    if not likelihood.interfaces:
        return None
    path = likelihood.interfaces[0]
    return path, SignalInterface.from_json(bundle.read_json(path))


def derived_simplified(bundle: OpenBundle, likelihood: Likelihood) -> tuple[str, Any] | None:
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
    results: Results  # the component as recorded
    labels: tuple[str, ...] | None = None  # the label names of the likelihood's points


def claims_of(bundle: OpenBundle, likelihood: Likelihood) -> Claims:
    """The claims on ``likelihood`` (which has a results component); every claimed point must be
    one of the likelihood's points. Raises :class:`InputError` naming the field otherwise."""
    assert likelihood.results is not None
    where = f"{bundle.path}:{likelihood.results}"
    results = _results(bundle, likelihood.results, likelihood.path)
    found = points_of(bundle, likelihood)
    settings = _claim_settings(_recorded(results), found.spec, where)
    if likelihood.kind == "workspace":  # E081: the measurement the claims were made with must let pyhf start a fit
        infer_inputs.require_measurement(found.spec, settings.settings.measurement, f"{bundle.path}:{likelihood.path}")
    tolerance, software = results.tolerance or DEFAULT_TOLERANCE, dict(results.software or {})
    claims = tuple(Claim(_claimed(found, name, where), values, settings, tolerance, software) for name, values in results.points.items())
    return Claims(likelihood, likelihood.results, found.spec, settings, claims, software, results, found.labels)


def _results(bundle: OpenBundle, path: str, likelihood: str) -> Results:
    """The results component ``path`` of ``likelihood``, read; it must name that likelihood."""
    results = Results.from_json(bundle.read_json(path))
    if results.likelihood != likelihood:
        raise InputError(
            f"{bundle.path}:{path}:$.likelihood: {results.likelihood!r} is not the likelihood the manifest names for it ({likelihood!r}); fix the results component"
        )
    return results


def _recorded(results: Results) -> dict[str, Any]:
    """A results component's ``settings`` as recorded (none: empty)."""
    return results.settings.to_json() if results.settings else {}


def _claimed(found: Points, name: str, where: str) -> Point:
    """The point a results component claims under ``name``: one of the likelihood's points."""
    if name not in found.points:
        raise InputError(f"{where}:$.points.{name}: not a signal point of {found.likelihood.path}; fix the results component")
    return found.points[name]


def _claim_settings(recorded: Mapping[str, Any], spec: Any, where: str) -> ClaimSettings:
    """The typed settings of a results component (``recorded``: its ``settings``)."""
    typed = infer_inputs.as_given(Settings.from_json(recorded, f"{where}:$.settings"), spec)
    fit = recorded.get("fit_tolerance")
    return ClaimSettings(typed, float(recorded.get("mu", MU)), float(recorded.get("level", LEVEL)), float(fit) if isinstance(fit, int | float) else None)


def recorded_settings(bundle: OpenBundle, likelihood: Likelihood) -> Settings:
    """The inference settings ``likelihood``'s results component records, as recorded (the defaults without one)."""
    if likelihood.results is None:
        return Settings()
    results = Results.from_json(bundle.read_json(likelihood.results))
    return Settings.from_json(_recorded(results), f"{bundle.path}:{likelihood.results}:$.settings")


def results_path(analysis: Analysis, likelihood: str, also_taken: Iterable[str] = ()) -> str:
    """The results component of ``likelihood``: its existing one, else a free ``results/<likelihood>``
    (free: not a file of the bundle, nor one of ``also_taken``, the paths given to other likelihoods)."""
    existing = analysis.likelihood(likelihood).results
    return existing if existing is not None else _free("results/" + likelihood.removesuffix(".json"), analysis.paths | frozenset(also_taken))


def _free(stem: str, taken: frozenset[str]) -> str:
    """``<stem>.json``, else the first ``<stem>-<k>.json`` (k = 2, 3, ...) not ``taken``."""
    path, k = stem + ".json", 1
    while path in taken:
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
        return _simplified(obj, str(path), point, patched=_patched(patchset, files))
    return _from_workspace(obj, path, patchset, point, files, measurement)


def _patched(patchset: str | Path | None, patches: Sequence[Path]) -> bool:
    """Whether a patchset or patch files were given (they apply to workspaces)."""
    return patchset is not None or bool(patches)


def _from_workspace(ws: Any, path: Path, patchset: str | Path | None, point: str | None, patches: Sequence[Path], measurement: str | None) -> Inputs:
    """The workspace file ``ws`` with the point ``point`` of the patchset file ``patchset`` (none
    without one), then the ``patches``."""
    if patchset is None and point is not None:
        raise InputError(
            f"point {point!r}: a workspace file has no signal points; give the patchset that holds it with patchset=PS.json (or apply RFC 6902 patch files and name no point)",
            option="patchset",
        )
    ops = [_patch_of_file(Path(patchset), point)] if patchset is not None else []
    return infer_inputs.workspace_inputs(ws, str(path), ops, patches, point=point, measurement=measurement)


def _patch_of_file(ps_path: Path, point: str | None) -> tuple[Patch, str]:
    """The patch named ``point`` of the patchset file ``ps_path``, with its location."""
    found = patchset_points(_read_patchset(ps_path), "", str(ps_path))
    names = [p.name for p in found]
    if point is None:
        raise InputError(f"{ps_path}: name the signal point with point=NAME; patches: {listing(names)}", option="point")
    select(point, names, where=str(ps_path), option="point", predicate="is not a patch of the patchset (patches[].metadata.name)", error=InferenceInputError)
    ops = _by_name(found)[point].patch
    if not isinstance(ops, list):
        raise InferenceInputError(f"{ps_path}:$.patches[name={point!r}].patch: not a list of RFC 6902 operations")
    return ops, f"{ps_path}:{point}"


def _read_patchset(ps_path: Path) -> Any:
    """The patchset file ``ps_path``, parsed: it must look like a pyhf patchset."""
    obj = infer_inputs.read_json(ps_path, "patchset")
    if not looks_like_patchset(obj):
        raise InferenceInputError(
            f"{ps_path}: not a pyhf patchset (needs 'patches' and 'metadata'); give RFC 6902 patch files with patches=FILE", option="patches"
        )
    return obj


def _simplified(sl: Any, location: str, point: str | None, *, patched: bool, likelihood: str | None = None) -> Inputs:
    """The signal ``point`` of the simplified likelihood ``sl`` (None: its only signal)."""
    if patched:
        raise InputError(
            f"{location}: is a simplified likelihood: a patchset and patch files apply to workspaces; name its signal with point=NAME", option="point"
        )
    infer_inputs.check_simplified(sl, location)
    signals = [p.name for p in _signal_points(sl, likelihood or location)]
    return infer_inputs.simplified_inputs(sl, location, _signal(point, signals, location), likelihood=likelihood)


def _signal(point: str | None, signals: Sequence[str], location: str) -> str:
    """The signal named ``point`` of a simplified likelihood with these ``signals`` (None: the only one)."""
    if point is not None:
        predicate = "is not a signal of the simplified likelihood"
        return select(point, signals, where=f"{location}:$.signals", option="point", predicate=predicate, error=InferenceInputError)
    if len(signals) != 1:
        raise InputError(f"{location}: name the signal with point=NAME; signals: {listing(signals)}", option="point")
    return signals[0]


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


def _simplified_hint(bundle: OpenBundle, analysis: Analysis, likelihood: str, point: str) -> str:
    """A hint when ``point`` is a signal of a simplified likelihood derived from ``likelihood`` (or from none)."""
    holder = next((lk for lk in _derived(analysis, likelihood) if point in points_of(bundle, lk).points), None)
    if holder is None:
        return ""
    return f"; it is a signal of the simplified likelihood {holder.path!r}: add --backend simplified (or --likelihood {holder.path})"


def _derived(analysis: Analysis, likelihood: str) -> list[Likelihood]:
    """The simplified likelihoods derived from ``likelihood``, or naming none they are derived from."""
    return [lk for lk in analysis.likelihoods if lk.kind == "simplified" and lk.derived_from in (likelihood, None)]


def _from_bundle(
    path: Path, *, patchset: str | Path | None, point: str | None, patches: Sequence[Path], likelihood: str | None, backend: str | None, measurement: str | None
) -> Inputs:
    with OpenBundle(path) as bundle:
        analysis = Analysis.of(bundle)
        lk = _pick_likelihood(analysis, likelihood, backend)
        location = f"{path}:{lk.path}"
        if lk.kind == "simplified":
            return _simplified(bundle.read_json(lk.path), location, point, patched=_patched(patchset, patches), likelihood=lk.path)
        found = points_of(bundle, lk, patchsets=_patchsets(analysis, lk, patchset))
        ops = _point_patch(bundle, analysis, found, point, location, patches)
    return infer_inputs.workspace_inputs(found.spec, location, ops, patches, point=point, likelihood=lk.path, measurement=measurement)


def _patchsets(analysis: Analysis, lk: Likelihood, patchset: str | Path | None) -> list[str] | None:
    if patchset is None:
        return None
    if str(patchset) not in lk.patchsets:
        raise InputError(f"{analysis.source}: patchset {str(patchset)!r} is not a patchset of likelihood {lk.path!r} in the bundle", option="patchset")
    return [str(patchset)]


def _point_patch(bundle: OpenBundle, analysis: Analysis, found: Points, point: str | None, location: str, patches: Sequence[Path]) -> list[tuple[Patch, str]]:
    """The patch of the point named ``point`` (none named: no patch, when the likelihood has no
    points or ``patches`` are given)."""
    if point is not None:
        return _bundle_patch(bundle, analysis, found, point, location)
    if found.points and not patches:
        raise InputError(f"{location}: name the signal point with point=NAME; points: {listing(sorted(found.points))}", option="point")
    return []


def _bundle_patch(bundle: OpenBundle, analysis: Analysis, found: Points, point: str, location: str) -> list[tuple[Patch, str]]:
    hint = _simplified_hint(bundle, analysis, found.likelihood.path, point) if point not in found.points else ""
    predicate = "is not a signal point of this likelihood (its patchsets and patch files)"
    select(point, sorted(found.points), where=location, option="point", predicate=predicate, hint=hint, error=InferenceInputError)
    p = found.points[point]
    if not isinstance(p.patch, list):
        raise InferenceInputError(f"{analysis.source}:{p.source}: the patch of {point!r} is not an RFC 6902 patch (a JSON array of operations)")
    return [(p.patch, f"{analysis.source}:{p.source}:{point}")]
