"""Resolve what ``arch cls`` / ``arch upper-limit`` were given into one inference input.

INPUT is a pyhf workspace JSON, a simplified-likelihood JSON or a bundle (detected by
the zstd magic ``28 b5 2f fd``, whatever its name). The signal point comes from
``--patchset PS.json --point NAME`` (a patch of a patchset), ``--patch FILE`` (RFC 6902
patch files, applied in order after the point's patch, as ``pyhf cls`` does), or
``--point NAME`` alone for a simplified likelihood (one of its ``signals``) or a bundle
(a patch of the likelihood's patchsets, a ``patch`` file's ``patch.name``, or a signal of
a simplified likelihood). ``--likelihood PATH`` picks one likelihood of a bundle.

Every problem is an :class:`~heparch.errors.InputError` (exit 2) whose one line names
the file, the field and the fix.

>>> ws = {"channels": [], "observations": [], "version": "1.0.0"}
>>> r = Inputs("workspace", ws, "ws.json", patches=([{"op": "add", "path": "/x", "value": 1}],), point="p")
>>> r.patched()["x"], "x" in ws
(1, False)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from heparch.errors import InferenceInputError, InputError

if TYPE_CHECKING:
    from heparch.api import Bundle
    from heparch.components.patchset import PatchChecker
    from heparch.findings import Finding
    from heparch.infer.base import Settings

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
#: at most this many valid names are listed in an error
MAX_LISTED: Final = 8

Patch = list[Any]


@dataclasses.dataclass(frozen=True)
class Inputs:
    """One resolved inference input.

    ``kind`` is ``workspace`` (``spec`` is the background-only workspace, ``patches`` the
    RFC 6902 patches to apply in order) or ``simplified`` (``spec`` is the simplified
    likelihood, ``signal`` the name of the signal). ``point`` names the signal point (None
    for a workspace used as it is); ``likelihood`` is the logical path in a bundle.
    """

    kind: str
    spec: Mapping[str, Any]
    source: str
    patches: tuple[Patch, ...] = ()
    signal: str | None = None
    point: str | None = None
    likelihood: str | None = None
    #: warnings about the model (W codes): what pyhf computes but is unusual
    warnings: tuple[Finding, ...] = ()

    def patched(self) -> Any:
        """The workspace with every patch applied (copy-on-write: ``spec`` is unchanged)."""
        from heparch.components.patchset import apply_patch

        doc: Any = self.spec
        for ops in self.patches:
            doc, _ = apply_patch(doc, ops)
        return doc

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "point": self.point,
            "likelihood": self.likelihood,
            "patches": len(self.patches),
            "warnings": [f.to_json() for f in self.warnings],
        }


# ---------------------------------------------------------------------------------------
# small helpers


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED])
    more = f", ... ({len(names)} in all)" if len(names) > MAX_LISTED else ""
    return shown + more if names else "none"


class _Constants:
    """``json.loads`` hook: records that NaN or Infinity literals were parsed."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, literal: str) -> float:
        self.seen = True
        return float(literal)


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (the {what})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what} file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    constants = _Constants()
    try:
        obj = json.loads(text, parse_constant=constants)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON file (nor a bundle); expected a {what}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}; expected a {what}") from None
    if constants.seen:
        _require_finite(obj, str(path), "numbers")
    return obj


def _nonfinite(obj: Any, path: str = "$") -> str | None:
    """JSON path of the first NaN or infinite number in ``obj``."""
    stack: list[tuple[Any, str]] = [(obj, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float):
            if not math.isfinite(node):
                return where
        elif isinstance(node, dict):
            stack.extend((v, f"{where}.{k}") for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


def _require_finite(obj: Any, location: str, what: str) -> None:
    where = _nonfinite(obj)
    if where is not None:
        raise InferenceInputError(f"{location}:{where}: {what} must be finite, found NaN or infinity; fix the input")


def _raise_findings(findings: Sequence[Any]) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InferenceInputError(errors[0].one_line(), findings=errors)


# ---------------------------------------------------------------------------------------
# checks of each kind of input


def _check_workspace(ws: Any, location: str) -> PatchChecker:
    """Raise unless ``ws`` is a valid workspace; the checker is for its patches."""
    from heparch.components.patchset import PatchChecker
    from heparch.components.workspace import check_workspace, looks_like_workspace
    from heparch.findings import Finding
    from heparch.spec import schema_check

    if not looks_like_workspace(ws):
        raise InferenceInputError(
            f"{location}: not a pyhf workspace nor a simplified likelihood (no 'channels' and 'observations'/'measurements'; no 'observed', 'background' and 'covariance')"
        )
    checker = PatchChecker(ws)  # validates the schema once
    if not checker.usable:
        _raise_findings(check_workspace(ws, location=location))
    issues = checker.consistency.issues(ws)  # cheap: per-sample summaries are memoised
    _raise_findings([Finding("E061", f"{location}:{schema_check.json_path(path)}", message) for path, message in issues])
    return checker


def _check_simplified(sl: Any, location: str) -> None:
    from heparch.components.simplified import check_simplified

    _require_finite(sl, location, "rates, covariance and moments")
    _raise_findings(check_simplified(sl, location=location))


def _check_patches(checker: PatchChecker, patches: Sequence[tuple[Patch, str]], likelihood_location: str) -> None:
    """Each patch (with its location) must be a JSON Patch that applies and gives a valid workspace."""
    from heparch.components.patchset import PatchChecker, apply_patch, check_patch_file

    doc = checker.workspace
    for k, (ops, location) in enumerate(patches):
        _require_finite(ops, location, "patched yields")
        if k:  # a later patch applies to the patched workspace
            doc, _ = apply_patch(doc, patches[k - 1][0])
            checker = PatchChecker(doc)
        _raise_findings(check_patch_file(ops, doc, location=location, likelihood_location=likelihood_location, checker=checker))


def _model_warnings(ws: Any, patches: Sequence[Patch], location: str, measurement: str | None = None) -> tuple[Finding, ...]:
    """The W findings of the model (``ws`` with ``patches`` applied; consistent, as checked);
    raise on E080 or E081 (a model pyhf cannot compute with the measurement used: the one
    named, else the first, pyhf's default; the workspace's other measurements do not matter)."""
    from heparch.components import workspace
    from heparch.components.patchset import apply_patch

    doc = ws
    for ops in patches:
        doc, _ = apply_patch(doc, ops)
    _require_measurement(doc, measurement, location)
    consistency = workspace.Consistency()
    notices = workspace.observation_notices(doc) + consistency.model_notices(doc, measurement=measurement)
    notices += workspace.unused_parameters(doc, consistency.used_names(doc))
    where = location if not patches else f"{location} (patched)"
    findings = workspace.notice_findings(notices, where)
    _raise_findings(findings)
    return tuple(findings)


def require_measurement(ws: Any, measurement: str | None, location: str, *, valid: bool = False) -> None:
    """Raise unless the workspace ``ws`` has the measurement named ``measurement`` (None: the
    first) and pyhf can start a fit with it (E081, naming the measurement). A workspace that
    fails its schema is left to the backends to refuse, unless ``valid`` says it passed."""
    from heparch.components import workspace
    from heparch.spec import schema_check

    if not valid and not schema_check.is_valid(workspace.SCHEMA, ws):
        return
    _require_measurement(ws, measurement, location)
    notices = workspace.Consistency().parameter_notices(ws, measurement=workspace.measurement_index(ws, measurement))
    _raise_findings(workspace.notice_findings(notices, location))


def _require_measurement(ws: Any, measurement: str | None, location: str) -> None:
    from heparch.components.workspace import measurement_names

    names = measurement_names(ws)
    if not names:
        raise InferenceInputError(f"{location}:$.measurements: the workspace has no measurement; pyhf needs one naming the parameter of interest")
    if measurement is not None and measurement not in names:
        raise InferenceInputError(
            f"{location}:$.measurements: --measurement {measurement!r} is not a measurement of the workspace; valid names: {_listing(names)}"
        )


def _patch_files(files: Sequence[Path]) -> list[tuple[Patch, str]]:
    out = []
    for f in files:
        ops = _read_json(Path(f), "RFC 6902 patch")
        if not isinstance(ops, list):
            raise InferenceInputError(f"{f}: not an RFC 6902 patch (a JSON array of operations); a patchset goes with --patchset and --point")
        out.append((ops, str(f)))
    return out


def _patch_of(patchset: Any, point: str | None, location: str) -> Patch:
    """The patch named ``point`` of ``patchset``."""
    from heparch.components.patchset import looks_like_patchset

    if not looks_like_patchset(patchset):
        raise InferenceInputError(f"{location}: not a pyhf patchset (needs 'patches' and 'metadata'); give RFC 6902 patch files with --patch")
    names = [str(p.get("metadata", {}).get("name")) for p in patchset["patches"] if isinstance(p, dict)]
    if point is None:
        raise InputError(f"{location}: name the signal point with --point; patches: {_listing(names)}")
    for p in patchset["patches"]:
        if isinstance(p, dict) and p.get("metadata", {}).get("name") == point:
            ops = p.get("patch")
            if not isinstance(ops, list):
                raise InferenceInputError(f"{location}:$.patches[name={point!r}].patch: not a list of RFC 6902 operations")
            return ops
    raise InferenceInputError(f"{location}: --point {point!r} is not a patch of the patchset (patches[].metadata.name); valid names: {_listing(names)}")


def _signal_of(sl: Mapping[str, Any], point: str | None, location: str) -> str:
    signals = [str(name) for name in sl.get("signals", {})]
    if point is None:
        if len(signals) == 1:
            return signals[0]
        raise InputError(f"{location}: name the signal with --point; signals: {_listing(signals)}")
    if point not in signals:
        raise InferenceInputError(f"{location}:$.signals: --point {point!r} is not a signal of the simplified likelihood; valid names: {_listing(signals)}")
    return point


# ---------------------------------------------------------------------------------------
# the three kinds of INPUT


def is_bundle(path: Path) -> bool:
    """True when ``path`` starts with the zstd magic."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == ZSTD_MAGIC
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; give a workspace JSON, a simplified-likelihood JSON or a bundle (.zst)") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


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
    """Resolve the CLI inputs (see the module docstring); raises :class:`InputError`.
    ``measurement`` names the workspace measurement used (``--measurement``; None: the first),
    the one whose parameters must let pyhf start a fit (E081)."""
    path = Path(path)
    if is_bundle(path):
        return _from_bundle(
            path, patchset=patchset, point=point, patches=[Path(p) for p in patches], likelihood=likelihood, backend=backend, measurement=measurement
        )
    if likelihood is not None:
        raise InputError(f"--likelihood {likelihood!r}: only for a bundle; {path} is a JSON file")
    from heparch.components.simplified import looks_like_simplified

    obj = _read_json(path, "workspace, simplified likelihood or bundle")
    if looks_like_simplified(obj):
        if patchset is not None or patches:
            raise InputError(f"{path}: is a simplified likelihood: --patchset and --patch apply to workspaces; name its signal with --point")
        _check_simplified(obj, str(path))
        signal = _signal_of(obj, point, str(path))
        return Inputs("simplified", obj, str(path), signal=signal, point=signal)
    checker = _check_workspace(obj, str(path))
    ops: list[tuple[Patch, str]] = []
    name = None
    if patchset is not None:
        ps_path = Path(patchset)
        found = _patch_of(_read_json(ps_path, "patchset"), point, str(ps_path))
        ops.append((found, f"{ps_path}:{point}"))
        name = point
    elif point is not None:
        raise InputError(f"--point {point!r}: a workspace file has no signal points; give the patchset with --patchset PS.json (or use --patch FILE)")
    files = _patch_files([Path(p) for p in patches])
    ops += files
    if name is None and files:
        name = "+".join(Path(loc).stem for _, loc in files)
    _check_patches(checker, ops, str(path))
    patches_ = tuple(o for o, _ in ops)
    warnings = _model_warnings(obj, patches_, str(path), measurement)
    return Inputs("workspace", obj, str(path), patches=patches_, point=name, warnings=warnings)


def _pick_likelihood(bundle: Bundle, likelihood: str | None, backend: str | None) -> tuple[str, str]:
    """(logical path, kind) of the likelihood to use."""
    full = [f.path for f in bundle.manifest.by_role("likelihood")]
    simplified = [f.path for f in bundle.manifest.by_role("simplified-likelihood")]
    if likelihood is not None:
        if likelihood in full:
            return likelihood, "workspace"
        if likelihood in simplified:
            return likelihood, "simplified"
        raise InputError(f"{bundle.path}: --likelihood {likelihood!r} is not a likelihood of the bundle; it has {_listing(full + simplified)}")
    candidates = simplified if backend == "simplified" else (full or simplified)
    kind = "simplified" if candidates is simplified else "workspace"
    if len(candidates) == 1:
        return candidates[0], kind
    if not candidates:
        raise InputError(f"{bundle.path}: holds no {'simplified ' if backend == 'simplified' else ''}likelihood to run on")
    raise InputError(f"{bundle.path}: holds {len(candidates)} likelihoods; pick one with --likelihood: {_listing(candidates)}")


def bundle_points(bundle: Bundle, name: str, patchset: str | Path | None) -> dict[str, tuple[Patch | None, str]]:
    """point name -> (patch, logical path) for the workspace ``name`` of ``bundle``; the
    patch is None for a ``patch`` file (read when it is chosen)."""
    points: dict[str, tuple[Patch | None, str]] = {}
    sets = [f for f in bundle.manifest.by_role("patchset") if f.likelihood == name]
    if patchset is not None:
        sets = [f for f in sets if f.path == str(patchset)]
        if not sets:
            raise InputError(f"{bundle.path}: --patchset {str(patchset)!r} is not a patchset of likelihood {name!r} in the bundle")
    for entry in sets:
        obj = bundle.read_json(entry.path)
        for p in obj.get("patches", []) if isinstance(obj, dict) else []:
            pname = p.get("metadata", {}).get("name") if isinstance(p, dict) else None
            if isinstance(pname, str) and pname not in points:
                points[pname] = (p.get("patch"), entry.path)
    if patchset is None:
        for entry in bundle.manifest.by_role("patch"):
            if entry.likelihood == name:
                pname = entry.annotations.get("patch.name", entry.path)
                points.setdefault(pname, (None, entry.path))
    return points


def _simplified_hint(bundle: Bundle, name: str, point: str) -> str:
    """A hint when ``point`` is a signal of a simplified likelihood derived from ``name``."""
    for entry in bundle.manifest.by_role("simplified-likelihood"):
        if entry.likelihood in (name, None):
            obj = bundle.read_json(entry.path)
            if isinstance(obj, dict) and isinstance(obj.get("signals"), dict) and point in obj["signals"]:
                return f"; it is a signal of the simplified likelihood {entry.path!r}: add --backend simplified (or --likelihood {entry.path})"
    return ""


def _from_bundle(
    path: Path, *, patchset: str | Path | None, point: str | None, patches: Sequence[Path], likelihood: str | None, backend: str | None, measurement: str | None
) -> Inputs:
    import heparch

    with heparch.open(path) as bundle:
        name, kind = _pick_likelihood(bundle, likelihood, backend)
        obj = bundle.read_json(name)
        location = f"{path}:{name}"
        if kind == "simplified":
            if patchset is not None or patches:
                raise InputError(f"{location}: is a simplified likelihood: --patchset and --patch apply to workspaces; name its signal with --point")
            _check_simplified(obj, location)
            signal = _signal_of(obj, point, location)
            return Inputs("simplified", obj, location, signal=signal, point=signal, likelihood=name)
        checker = _check_workspace(obj, location)
        points = bundle_points(bundle, name, patchset)
        ops: list[tuple[Patch, str]] = []
        if point is not None:
            if point not in points:
                raise InferenceInputError(
                    f"{location}: --point {point!r} is not a signal point of this likelihood (its patchsets and patch files); valid names: {_listing(sorted(points))}"
                    + _simplified_hint(bundle, name, point)
                )
            found, where = points[point]
            if found is None:
                found = bundle.read_json(where)
            if not isinstance(found, list):
                raise InferenceInputError(f"{path}:{where}: the patch of {point!r} is not an RFC 6902 patch (a JSON array of operations)")
            ops.append((found, f"{path}:{where}:{point}"))
        elif points and not patches:
            raise InputError(f"{location}: name the signal point with --point; points: {_listing(sorted(points))}")
    files = _patch_files(patches)
    ops += files
    if point is None and files:
        point = "+".join(Path(loc).stem for _, loc in files)
    _check_patches(checker, ops, location)
    patches_ = tuple(o for o, _ in ops)
    warnings = _model_warnings(obj, patches_, location, measurement)
    return Inputs("workspace", obj, location, patches=patches_, point=point, likelihood=name, warnings=warnings)


# ---------------------------------------------------------------------------------------
# settings


#: pyhf 0.7.6's default bounds of a normfactor (the usual POI) when the measurement sets none
NORMFACTOR_BOUNDS: Final = (0.0, 10.0)


def workspace_poi_bounds(spec: Mapping[str, Any], measurement: str | None = None) -> tuple[float, float] | None:
    """The POI bounds the workspace gives: the measurement's parameter config, else pyhf's
    default for a normfactor; None when the measurement or its POI cannot be found.

    >>> ws = {"measurements": [{"name": "m", "config": {"poi": "mu", "parameters": [{"name": "mu", "bounds": [[-10, 10]]}]}}]}
    >>> workspace_poi_bounds(ws), workspace_poi_bounds({"measurements": [{"name": "m", "config": {"poi": "mu"}}]})
    ((-10.0, 10.0), (0.0, 10.0))
    """
    found = [m for m in spec.get("measurements") or [] if isinstance(m, Mapping) and (measurement is None or m.get("name") == measurement)]
    config = found[0].get("config") if found else None
    if not isinstance(config, Mapping) or not isinstance(config.get("poi"), str):
        return None
    for par in config.get("parameters") or []:
        if isinstance(par, Mapping) and par.get("name") == config["poi"] and isinstance(par.get("bounds"), list):
            bounds = par["bounds"]
            if len(bounds) == 1 and isinstance(bounds[0], list) and len(bounds[0]) == 2:
                return float(bounds[0][0]), float(bounds[0][1])
    return NORMFACTOR_BOUNDS


def as_given(settings: Settings, spec: Mapping[str, Any]) -> Settings:
    """``settings`` with ``poi_bounds`` dropped where they are the ones the workspace gives
    (claims recorded them before they could be chosen): the same computation, spelled as the default."""
    if settings.poi_bounds is not None and settings.poi_bounds == workspace_poi_bounds(spec, settings.measurement):
        return dataclasses.replace(settings, poi_bounds=None)
    return settings
