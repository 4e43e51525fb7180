"""One inference input for ``arch cls`` / ``arch upper-limit``, and the checks it passes.

:class:`Inputs` is a background-only workspace with the RFC 6902 patches of a signal point
(applied in order, as ``pyhf cls`` does), or a simplified likelihood with the name of its
signal. :func:`workspace_inputs` and :func:`simplified_inputs` check what they are given
and build it; which file, bundle, likelihood and point they come from is resolved above
the engines (:func:`heparch.analysis.resolve`).

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

from heparch.components import workspace
from heparch.components.patchset import PatchChecker, apply_patch, check_patch_file
from heparch.components.simplified import check_simplified as simplified_findings
from heparch.errors import InferenceInputError, InputError
from heparch.findings import Finding
from heparch.spec import limits, schema_check, strictjson

if TYPE_CHECKING:
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


def listing(names: Sequence[str]) -> str:
    """Names for a message: the first :data:`MAX_LISTED`, quoted; ``none`` for none."""
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


def _float_int(text: str) -> int:
    """``json.loads`` hook: an integer that a float can hold (every number becomes one; 1e400 cannot)."""
    value = int(text)
    if len(text) > 300:
        try:
            float(value)
        except OverflowError:
            raise ValueError(f"integer {text[:20]}... ({len(text)} digits) is beyond the largest float") from None
    return value


def read_json(path: Path, what: str) -> Any:
    """The JSON file ``path`` (a ``what``), NaN and infinities refused."""
    text = _read_bytes(path, what)
    depth = strictjson.nesting(text)
    if depth > limits.DEPTH:  # the parser would recurse past Python's limit
        raise InputError(f"{path}: not valid JSON: nesting {depth} deep, deeper than {limits.DEPTH}; expected a {what}")
    constants = _Constants()
    try:
        obj = json.loads(text, parse_constant=constants, parse_int=_float_int)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON file (nor a bundle); expected a {what}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}; expected a {what}") from None
    if constants.seen:
        require_finite(obj, str(path), "numbers")
    return obj


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes; an InputError naming the file and the ``what`` when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (the {what})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what} file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def _nonfinite(obj: Any, path: str = "$") -> str | None:
    """JSON path of the first NaN or infinite number in ``obj`` (depth first, in document order)."""
    stack: list[tuple[Any, str]] = [(obj, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        stack.extend(_children(node, where))
    return None


def _children(node: Any, where: str) -> list[tuple[Any, str]]:
    """The members of a JSON object or array with their paths, last first (for a stack)."""
    if isinstance(node, dict):
        return [(v, f"{where}.{k}") for k, v in reversed(list(node.items()))]
    if isinstance(node, list):
        return [(v, f"{where}[{i}]") for i, v in reversed(list(enumerate(node)))]
    return []


def require_finite(obj: Any, location: str, what: str) -> None:
    where = _nonfinite(obj)
    if where is not None:
        raise InferenceInputError(f"{location}:{where}: {what} must be finite, found NaN or infinity; fix the input")


def raise_findings(findings: Sequence[Any]) -> None:
    """Raise the first error of ``findings`` (all of them attached)."""
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InferenceInputError(errors[0].one_line(), findings=errors)


# ---------------------------------------------------------------------------------------
# checks of each kind of input


def check_workspace(ws: Any, location: str) -> PatchChecker:
    """Raise unless ``ws`` is a valid workspace; the checker is for its patches."""
    if not workspace.looks_like_workspace(ws):
        raise InferenceInputError(
            f"{location}: not a pyhf workspace nor a simplified likelihood (no 'channels' and 'observations'/'measurements'; no 'observed', 'background' and 'covariance')"
        )
    checker = PatchChecker(ws)  # validates the schema once
    if not checker.usable:
        raise_findings(workspace.check_workspace(ws, location=location))
    issues = checker.consistency.issues(ws)  # cheap: per-sample summaries are memoised
    raise_findings([Finding("E061", f"{location}:{schema_check.json_path(path)}", message) for path, message in issues])
    return checker


def check_simplified(sl: Any, location: str) -> None:
    """Raise unless ``sl`` is a valid simplified likelihood with finite numbers."""
    require_finite(sl, location, "rates, covariance and moments")
    raise_findings(simplified_findings(sl, location=location))


def _check_patches(checker: PatchChecker, patches: Sequence[tuple[Patch, str]], likelihood_location: str) -> None:
    """Each patch (with its location) must be a JSON Patch that applies and gives a valid workspace."""
    doc = checker.workspace
    for k, (ops, location) in enumerate(patches):
        require_finite(ops, location, "patched yields")
        if k:  # a later patch applies to the patched workspace
            doc, _ = apply_patch(doc, patches[k - 1][0])
            checker = PatchChecker(doc)
        raise_findings(check_patch_file(ops, doc, location=location, likelihood_location=likelihood_location, checker=checker))


def _model_warnings(ws: Any, patches: Sequence[Patch], location: str, measurement: str | None = None) -> tuple[Finding, ...]:
    """The W findings of the model (``ws`` with ``patches`` applied; consistent, as checked);
    raise on E080 or E081 (a model pyhf cannot compute with the measurement used: the one
    named, else the first, pyhf's default; the workspace's other measurements do not matter)."""
    doc = ws
    for ops in patches:
        doc, _ = apply_patch(doc, ops)
    _require_measurement(doc, measurement, location)
    consistency = workspace.Consistency()
    notices = workspace.observation_notices(doc) + consistency.model_notices(doc, measurement=measurement)
    notices += workspace.unused_parameters(doc, consistency.used_names(doc))
    where = location if not patches else f"{location} (patched)"
    findings = workspace.notice_findings(notices, where)
    raise_findings(findings)
    return tuple(findings)


def require_measurement(ws: Any, measurement: str | None, location: str, *, valid: bool = False) -> None:
    """Raise unless the workspace ``ws`` has the measurement named ``measurement`` (None: the
    first) and pyhf can start a fit with it (E081, naming the measurement). A workspace that
    fails its schema is left to the backends to refuse, unless ``valid`` says it passed."""
    if not valid and not schema_check.is_valid(workspace.SCHEMA, ws):
        return
    _require_measurement(ws, measurement, location)
    notices = workspace.Consistency().parameter_notices(ws, measurement=workspace.measurement_index(ws, measurement))
    raise_findings(workspace.notice_findings(notices, location))


def _require_measurement(ws: Any, measurement: str | None, location: str) -> None:
    names = workspace.measurement_names(ws)
    if not names:
        raise InferenceInputError(f"{location}:$.measurements: the workspace has no measurement; pyhf needs one naming the parameter of interest")
    if measurement is not None and measurement not in names:
        raise InferenceInputError(
            f"{location}:$.measurements: measurement {measurement!r} is not a measurement of the workspace; valid names: {listing(names)}",
            option="measurement",
        )


def patch_files(files: Sequence[Path]) -> list[tuple[Patch, str]]:
    """Each RFC 6902 patch file read, with its name."""
    out = []
    for f in files:
        ops = read_json(Path(f), "RFC 6902 patch")
        if not isinstance(ops, list):
            raise InferenceInputError(
                f"{f}: not an RFC 6902 patch (a JSON array of operations); a patchset goes with patchset=PS.json (and the point to take from it)",
                option="patchset",
            )
        out.append((ops, str(f)))
    return out


# ---------------------------------------------------------------------------------------
# the two kinds of input


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


def simplified_inputs(sl: Any, location: str, signal: str, *, likelihood: str | None = None) -> Inputs:
    """The ``signal`` of the simplified likelihood ``sl`` (checked by :func:`check_simplified`)."""
    return Inputs("simplified", sl, location, signal=signal, point=signal, likelihood=likelihood)


def workspace_inputs(
    ws: Any,
    location: str,
    ops: Sequence[tuple[Patch, str]],
    files: Sequence[Path],
    *,
    point: str | None,
    likelihood: str | None = None,
    measurement: str | None = None,
) -> Inputs:
    """The workspace ``ws`` with the point's patch ``ops`` (patch, location) and then the RFC
    6902 patch ``files``: each checked to apply and give a valid workspace, and the model's
    warnings; ``point`` None is named after the patch files."""
    checker = check_workspace(ws, location)
    found = patch_files(files)
    if point is None and found:
        point = "+".join(Path(loc).stem for _, loc in found)
    every = [*ops, *found]
    _check_patches(checker, every, location)
    patches = tuple(o for o, _ in every)
    warnings = _model_warnings(ws, patches, location, measurement)
    return Inputs("workspace", ws, location, patches=patches, point=point, likelihood=likelihood, warnings=warnings)


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
    config = _measurement_config(spec, measurement)
    if config is None:
        return None
    for par in config.get("parameters") or []:
        if isinstance(par, Mapping) and par.get("name") == config["poi"] and isinstance(par.get("bounds"), list):
            bounds = _one_pair(par["bounds"])
            if bounds is not None:
                return bounds
    return NORMFACTOR_BOUNDS


def _measurement_config(spec: Mapping[str, Any], measurement: str | None) -> Mapping[str, Any] | None:
    """The ``config`` of the measurement named (None: the first) when it names its POI."""
    found = [m for m in spec.get("measurements") or [] if isinstance(m, Mapping) and (measurement is None or m.get("name") == measurement)]
    config = found[0].get("config") if found else None
    return config if isinstance(config, Mapping) and isinstance(config.get("poi"), str) else None


def _one_pair(bounds: list[Any]) -> tuple[float, float] | None:
    """``[[lower, upper]]`` as ``(lower, upper)``; None for another shape."""
    if len(bounds) == 1 and isinstance(bounds[0], list) and len(bounds[0]) == 2:
        return float(bounds[0][0]), float(bounds[0][1])
    return None


def as_given(settings: Settings, spec: Mapping[str, Any]) -> Settings:
    """``settings`` with ``poi_bounds`` dropped where they are the ones the workspace gives
    (claims recorded them before they could be chosen): the same computation, spelled as the default."""
    if settings.poi_bounds is not None and settings.poi_bounds == workspace_poi_bounds(spec, settings.measurement):
        return dataclasses.replace(settings, poi_bounds=None)
    return settings
