"""``arch export hepdata``: a HEPData submission (``submission.yaml``, tables, resources).

The first document of ``submission.yaml`` carries the description (``comment``), the record ids
(INSPIRE, arXiv) and the resources: the bundle itself (its identity in the description), and
each likelihood and patchset as a file of type ``HistFactory`` written beside it. Each results
component becomes a table of claimed CLs (observed and the five expected values) per signal
point, with the points' label values as independent variables, and a table of upper limits
where the claims have them, so HEPData renders them. HEPData wants every file in one flat
directory: a logical path's ``/`` becomes ``_``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from heparch.analysis import Analysis, OpenBundle
from heparch.errors import InputError
from heparch.export.common import Chunks, Claims, Source, claims
from heparch.spec.components import ResultPoint

SUBMISSION = "submission.yaml"
#: HEPData's resource type of pyhf JSON likelihoods
HISTFACTORY = "HistFactory"
_SIGMAS = ("-2 sigma", "-1 sigma", "median", "+1 sigma", "+2 sigma")
_MISSING = "-"  # HEPData's value for a point without a number
_NAME_MAX = 64  # submission schema: a table name has at most 64 characters


def files(src: Source, bundle: OpenBundle, fh: BinaryIO) -> list[tuple[str, Chunks]]:
    """The submission's files: ``submission.yaml``, the tables, the likelihoods and the bundle."""
    claimed = claims(bundle)
    if not claimed:
        raise InputError(
            f"cannot export hepdata: {src.path} holds no claimed results and a HEPData submission needs at least one table; add them with 'arch claim' first"
        )
    resources = _resource_files(src, bundle)
    tables = [table for i, c in enumerate(claimed, 1) for table in _tables(src, c, i)]
    out = [*_yaml_files(_first_document(src, resources), tables), *((name, chunks) for name, _, chunks in resources), (src.path.name, _copy(fh))]
    _unique([name for name, _ in out], src)
    return out


def _yaml_files(first: dict[str, Any], tables: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[tuple[str, Chunks]]:
    """``submission.yaml`` (the ``first`` document, then each table's) and each table's data file."""
    docs: list[Any] = [first, *(doc for _, doc, _ in tables)]
    return [(SUBMISSION, [dump(docs)]), *((name, [dump([data])]) for name, _, data in tables)]


def _unique(names: list[str], src: Source) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{src.path}: two files of the HEPData export would be named {name!r}; rename the component (or the bundle file)")
        seen.add(name)


def flat_name(logical: str) -> str:
    """The file name of a component in the flat submission directory."""
    return logical.replace("/", "_")


def _resource_files(src: Source, bundle: OpenBundle) -> list[tuple[str, str, Chunks]]:
    """(file name, description, bytes) of each likelihood and patchset, in logical-path order."""
    described: list[tuple[str, str]] = []
    for lk in Analysis.of(bundle).likelihoods:
        if lk.kind == "workspace":
            described.append((lk.path, f"HistFactory likelihood {lk.path} (pyhf JSON workspace)"))
            described += [(ps, f"signal patchset {ps} of the likelihood {lk.path} (pyhf PatchSet)") for ps in lk.patchsets]
    return [(flat_name(path), f"{what}, from the heparch bundle {src.identity}", bundle.iter_bytes(path)) for path, what in sorted(described)]


def _copy(fh: BinaryIO) -> Iterator[bytes]:
    fh.seek(0)
    while chunk := fh.read(1 << 20):
        yield chunk


def _first_document(src: Source, resources: Sequence[tuple[str, str, Chunks]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if src.analysis.description:
        doc["comment"] = src.analysis.description
    ids = _record_ids(src)
    if ids:
        doc["record_ids"] = ids
    items = [
        {
            "location": src.path.name,
            "description": f"heparch bundle {src.about.name or src.path.name}, identity {src.identity} (check it with 'arch verify')",
            "type": "heparch",
        }
    ]
    items += [{"location": name, "description": what, "type": HISTFACTORY} for name, what, _ in resources]
    doc["additional_resources"] = items
    return doc


def _record_ids(src: Source) -> list[dict[str, Any]]:
    ids: list[dict[str, Any]] = []
    inspire = str(src.analysis.inspire or "").strip().removeprefix("ins")
    if inspire.isdigit():
        ids.append({"type": "inspire", "id": int(inspire)})
    if src.analysis.arxiv:
        ids.append({"type": "arXiv", "id": str(src.analysis.arxiv).strip().removeprefix("arXiv:")})
    return ids


# --- tables ----------------------------------------------------------------------------------


def _tables(src: Source, claims: Claims, index: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(data file, submission document, table) of the CLs table and, where the claims have upper limits, of theirs."""
    lk = claims.results.likelihood
    points = list(claims.points)
    out = [_table(src, claims, f"CLs_{index}.yaml", f"CLs {lk}", _cls_variables(points), f"Claimed CLs of each signal point of the likelihood {lk}")]
    limited = [(name, p) for name, p in points if p.mu_up_obs is not None or p.mu_up_exp is not None]
    if limited:
        what = f"Claimed upper limits on the signal strength of each signal point of the likelihood {lk}"
        out.append(_table(src, claims, f"upper_limits_{index}.yaml", f"Upper limits {lk}", _limit_variables(limited), what))
    return out


def _table(
    src: Source, claims: Claims, data_file: str, name: str, dependent: tuple[list[str], list[tuple[str, list[Any]]]], what: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    points, columns = dependent
    level = claims.results.settings.level if claims.results.settings else None
    description = f"{what} (heparch results component {claims.path}" + (f", CLs level {level}" if level is not None else "") + f"; bundle {src.identity})."
    doc = {"name": name[:_NAME_MAX], "description": description, "keywords": _keywords(src), "data_file": data_file}
    table = {
        "independent_variables": _independent(src, claims, points),
        "dependent_variables": [
            {"header": {"name": header}, "qualifiers": _qualifiers(src, claims), "values": [{"value": v} for v in values]} for header, values in columns
        ],
    }
    return data_file, doc, table


def _cls_variables(points: list[tuple[str, ResultPoint]]) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    return [n for n, _ in points], _band("CLs", [p.CLs_obs for _, p in points], [p.CLs_exp for _, p in points])


def _limit_variables(points: list[tuple[str, ResultPoint]]) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    observed = [_MISSING if p.mu_up_obs is None else p.mu_up_obs for _, p in points]
    return [n for n, _ in points], _band("mu_up", observed, [p.mu_up_exp or [_MISSING] * len(_SIGMAS) for _, p in points])


def _band(what: str, observed: list[Any], expected: list[Sequence[Any]]) -> list[tuple[str, list[Any]]]:
    """The columns of ``what``: observed, then the expected value at each of :data:`_SIGMAS`."""
    return [(f"{what} observed", observed), *((f"{what} expected {s}", [e[i] for e in expected]) for i, s in enumerate(_SIGMAS))]


def _independent(src: Source, claims: Claims, points: list[str]) -> list[dict[str, Any]]:
    """The label values of the points (headed by the labels' titles in ``analysis.axes``, else the
    labels) where every point has them; else the point names."""
    if claims.labels and all(p in claims.values for p in points):
        titles = src.analysis.axes or {}  # analysis.axes: a label's title in plots
        return [
            {"header": {"name": titles.get(label, label)}, "values": [{"value": claims.values[p][i]} for p in points]} for i, label in enumerate(claims.labels)
        ]
    return [{"header": {"name": "signal point"}, "values": [{"value": p} for p in points]}]


def _keywords(src: Source) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if src.analysis.sqrt_s_TeV is not None:
        out.append({"name": "cmenergies", "values": [_gev(src.analysis.sqrt_s_TeV)]})
    if src.analysis.keywords:
        out.append({"name": "phrases", "values": list(src.analysis.keywords)})
    return out


def _qualifiers(src: Source, claims: Claims) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if src.analysis.sqrt_s_TeV is not None:
        out.append({"name": "SQRT(S)", "value": _gev(src.analysis.sqrt_s_TeV), "units": "GeV"})
    if src.analysis.luminosity_ifb is not None:
        out.append({"name": "LUMINOSITY", "value": src.analysis.luminosity_ifb, "units": "fb$^{-1}$"})
    out.append({"name": "likelihood", "value": claims.results.likelihood})
    return out


def _gev(tev: float) -> float | int:
    gev = tev * 1000
    return int(gev) if float(gev).is_integer() else gev


def float_text(x: float) -> str:
    """``x`` as YAML 1.1 reads it back as the same float: PyYAML, which HEPData and its validator
    use, reads ``1e-05`` as a string, so the mantissa always has a point (``1.0e-05``)."""
    text = repr(float(x))
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def dump(documents: list[Any]) -> bytes:
    """YAML 1.1 documents (``---`` between them), as HEPData reads them."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when the submission YAML is written

    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)  # HEPData reads YAML 1.1 (PyYAML): strings such as 'on' or 'no' must be quoted as 1.1 resolves them
    yaml.representer.add_representer(float, lambda r, x: r.represent_scalar("tag:yaml.org,2002:float", float_text(x)))
    yaml.default_flow_style = False
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump_all(documents, buf)
    return buf.getvalue().encode("utf-8")
