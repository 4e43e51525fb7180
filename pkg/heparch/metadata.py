"""Analysis metadata found in the files of an analysis directory, with where each value came from.

One reader for what publications already ship beside their likelihoods, used by ``arch init``
(and ``arch build``'s patchset references):

* a pyhf PatchSet's ``metadata.references`` (``hepdata``);
* a HEPData ``submission.yaml``: ``record_ids`` (INSPIRE, arXiv), the first document's
  ``comment`` (description), the tables' ``cmenergies`` keyword (GeV -> ``sqrt_s_TeV``), the
  HEPData DOI where the downloaded files carry one (the record's ``hepdata_doi``, else the
  record part of a table's ``table_doi`` or a resource's ``doi``), the luminosity only where a
  table's data file states it (a ``LUMINOSITY`` qualifier in fb^-1, pb^-1 or ab^-1), and the
  ``additional_resources`` (:func:`archive_resources`: the likelihood archive that
  ``arch build`` unpacks);
* an SModelS ``globalInfo.txt``: ``sqrts`` (``13*TeV``), ``lumi`` (``139.0/fb``), ``arxiv``
  (an abs URL), ``publicationDOI`` and the analysis ``id`` (whose first word names the
  collaboration: marked as guessed).

Nothing is invented: a field no file gives is not returned. Where two files disagree, the first
found (in path order) wins and the others are reported as conflicts.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from heparch.config import read_capped, reject_unsafe_yaml

SUBMISSION = "submission.yaml"
GLOBAL_INFO = "globalInfo.txt"
_ARXIV = re.compile(r"(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?")


@dataclasses.dataclass(frozen=True)
class Found:
    """One metadata value and where it came from (``source``: file and field)."""

    field: str
    value: Any
    source: str
    guessed: bool = False


def discover(directory: Path, files: Iterable[tuple[str, Any]]) -> tuple[dict[str, Found], list[Found]]:
    """The analysis fields found in ``directory`` (``files``: logical path and parsed JSON or
    None, in path order), and the values that conflict with an earlier one."""
    return discover_files((logical, directory / logical, obj) for logical, obj in files)


def discover_files(files: Iterable[tuple[str, Path, Any]]) -> tuple[dict[str, Found], list[Found]]:
    """:func:`discover` for files that need not share a directory (``files``: logical path,
    the file, parsed JSON or None; in path order): where a value comes from is its logical path.
    The record's files (submission.yaml, globalInfo.txt) come before the patchsets, whose
    ``references`` describe one component."""
    chosen: dict[str, Found] = {}
    conflicts: list[Found] = []
    ordered = sorted(files, key=lambda f: Path(f[0]).name not in (SUBMISSION, GLOBAL_INFO))
    for found in _all(ordered):
        first = chosen.setdefault(found.field, found)
        if first is not found and first.value != found.value:
            conflicts.append(found)
    return chosen, conflicts


def _all(files: Iterable[tuple[str, Path, Any]]) -> Iterator[Found]:
    for logical, file, obj in files:
        name = Path(logical).name
        if isinstance(obj, dict) and isinstance(obj.get("patches"), list):
            yield from from_patchset(obj, logical)
        elif name == SUBMISSION:
            yield from from_submission(file, logical)
        elif name == GLOBAL_INFO:
            yield from from_global_info(file, logical)


def from_patchset(obj: dict[str, Any], where: str) -> Iterator[Found]:
    """A PatchSet's ``metadata.references.hepdata``."""
    meta = obj.get("metadata")
    refs = meta.get("references") if isinstance(meta, dict) else None
    if isinstance(refs, dict) and isinstance(refs.get("hepdata"), str) and refs["hepdata"].strip():
        yield Found("hepdata", refs["hepdata"].strip(), f"{where}: metadata.references.hepdata")


def _yaml_docs(path: Path, what: str) -> list[dict[str, Any]]:
    """The mapping documents of a YAML file, read capped and safe; [] when it cannot be read."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from heparch.errors import InputError

    try:
        text = read_capped(path, what).decode("utf-8")
        reject_unsafe_yaml(text, str(path))
        return [d for d in YAML(typ="safe", pure=True).load_all(io.StringIO(text)) if isinstance(d, dict)]
    except (InputError, UnicodeDecodeError, YAMLError):
        return []  # not a file heparch can read: nothing found in it (build checks files on its own)


def from_submission(path: Path, where: str) -> Iterator[Found]:
    """A HEPData ``submission.yaml`` (several YAML documents: the record's, then one per table)."""
    docs = _yaml_docs(path, "HEPData submission")
    if not docs:
        return
    record = docs[0]
    yield from _record_ids(record.get("record_ids"), where)
    comment = record.get("comment")
    if isinstance(comment, str) and comment.strip():
        yield Found("description", " ".join(comment.split()), f"{where}: comment")
    energies = sorted({e for d in docs for e in _cmenergies(d)})
    if len(energies) == 1:
        yield Found("sqrt_s_TeV", _number(energies[0] / 1000.0), f"{where}: keywords cmenergies ({energies[0]:g} GeV)")
    yield from _hepdata_doi(docs, where)
    yield from _luminosity(docs, path.parent, where)


_HEPDATA_DOI = re.compile(r"(10\.17182/hepdata\.\d+(?:\.v\d+)?)(?:/[tr]\d+)?")


def _hepdata_doi(docs: list[dict[str, Any]], where: str) -> Iterator[Found]:
    """The record's HEPData DOI: ``hepdata_doi``, else the record part of the first table or resource DOI."""
    candidates = [("hepdata_doi", docs[0].get("hepdata_doi"))]
    candidates += [("table_doi", d.get("table_doi")) for d in docs[1:]]
    candidates += [("additional_resources doi", r.get("doi")) for d in docs for r in _resources(d)]
    for key, value in candidates:
        if isinstance(value, str) and (m := _HEPDATA_DOI.fullmatch(value.strip())):
            yield Found("hepdata", m.group(1), f"{where}: {key}")
            return


def _resources(doc: dict[str, Any]) -> list[dict[str, Any]]:
    res = doc.get("additional_resources")
    return [r for r in res if isinstance(r, dict)] if isinstance(res, list) else []


def archive_resources(path: Path) -> list[str]:
    """The relative ``location`` of every ``additional_resources`` entry of a ``submission.yaml``
    (the record's and the tables'), in order, without URLs, absolute paths or '..'."""
    out: list[str] = []
    for doc in _yaml_docs(path, "HEPData submission"):
        for r in _resources(doc):
            loc = _relative_location(r.get("location"))
            if loc is not None and loc not in out:
                out.append(loc)
    return out


def _relative_location(loc: Any) -> str | None:
    """A resource's location as a relative path inside the submission (``./a`` is ``a``); None
    for a URL, an absolute path, a path with '..' or no path at all."""
    if not isinstance(loc, str) or "://" in loc or loc.startswith("/"):
        return None
    parts = [p for p in loc.split("/") if p not in ("", ".")]
    return "/".join(parts) if parts and ".." not in parts else None


_LUMI_NAMES = frozenset({"luminosity", "lumi", "integrated luminosity", "int. luminosity"})
_LUMI = re.compile(r"([0-9]+(?:\.[0-9]*)?)\s*(?:\$?\s*)?(fb|pb|ab)\s*\$?\s*(?:\^\{?-1\}?|-1|\^-1)", re.IGNORECASE)


def _luminosity(docs: list[dict[str, Any]], folder: Path, where: str) -> Iterator[Found]:
    """The luminosity where the tables' data files state one (one value across them)."""
    stated: dict[float, str] = {}
    for doc in docs[1:]:
        data_file = doc.get("data_file")
        if not (isinstance(data_file, str) and data_file.endswith((".yaml", ".yml")) and "/" not in data_file):
            continue
        for table in _yaml_docs(folder / data_file, "HEPData table")[:1]:
            for value in _lumi_qualifiers(table):
                stated.setdefault(value, data_file)
    if len(stated) == 1:
        ((value, data_file),) = stated.items()
        yield Found("luminosity_ifb", _number(value), f"{where}: {data_file} qualifier LUMINOSITY")


def _lumi_qualifiers(table: dict[str, Any]) -> Iterator[float]:
    for dep in table.get("dependent_variables") or ():
        for q in (dep.get("qualifiers") or ()) if isinstance(dep, dict) else ():
            if isinstance(q, dict) and str(q.get("name", "")).strip().lower() in _LUMI_NAMES:
                m = _LUMI.search(f"{q.get('value', '')} {q.get('units', '')}".replace(" ", "").replace("{", "").replace("}", ""))
                if m:
                    yield float(m.group(1)) * {"fb": 1.0, "ab": 1000.0, "pb": 0.001}[m.group(2).lower()]


def _record_ids(ids: Any, where: str) -> Iterator[Found]:
    for item in ids if isinstance(ids, list) else ():
        kind = _RECORD_ID_KINDS.get(str(item.get("type", "")).lower()) if isinstance(item, dict) else None
        if kind is None:
            continue
        field, label, parse = kind
        value = parse(item.get("id"))
        if value is not None:
            yield Found(field, value, f"{where}: record_ids ({label})")


def _inspire_id(value: Any) -> str | None:
    return f"ins{value}" if isinstance(value, int | str) and str(value).isdigit() else None


def _arxiv_id(value: Any) -> str | None:
    m = _ARXIV.search(value) if isinstance(value, str) else None
    return m.group(1) if m else None


def _hepdata_id(value: Any) -> str | None:
    """A HEPData record id or DOI (a resource DOI ``.../r2`` is kept to its record's DOI)."""
    if not isinstance(value, int | str) or not str(value).strip():
        return None
    doi = _HEPDATA_DOI.fullmatch(str(value).strip())
    return doi.group(1) if doi else str(value).strip()


# a record_ids entry's type -> (metadata field, its name in the finding's source, the id's parser)
_RECORD_ID_KINDS: dict[str, tuple[str, str, Callable[[Any], str | None]]] = {
    "inspire": ("inspire", "inspire", _inspire_id),
    "arxiv": ("arxiv", "arXiv", _arxiv_id),
    "hepdata": ("hepdata", "hepdata", _hepdata_id),
}


def _cmenergies(doc: dict[str, Any]) -> Iterator[float]:
    for kw in doc.get("keywords") or ():
        if isinstance(kw, dict) and kw.get("name") == "cmenergies":
            for v in kw.get("values") or ():
                if isinstance(v, int | float) and not isinstance(v, bool) and v > 0:
                    yield float(v)


def from_global_info(path: Path, where: str) -> Iterator[Found]:
    """An SModelS ``globalInfo.txt`` (``key: value`` lines)."""
    try:
        text = read_capped(path, "SModelS globalInfo").decode("utf-8")
    except Exception:
        return
    info = dict(_key_values(text))
    sqrts = re.fullmatch(r"([0-9.]+)\s*\*\s*TeV", info.get("sqrts", ""))
    if sqrts:
        yield Found("sqrt_s_TeV", _number(float(sqrts.group(1))), f"{where}: sqrts")
    lumi = re.fullmatch(r"([0-9.]+)\s*/\s*(fb|ab|pb)", info.get("lumi", ""))
    if lumi:
        scale = {"fb": 1.0, "ab": 1000.0, "pb": 0.001}[lumi.group(2)]
        yield Found("luminosity_ifb", _number(float(lumi.group(1)) * scale), f"{where}: lumi")
    arxiv = _ARXIV.search(info.get("arxiv", ""))
    if arxiv:
        yield Found("arxiv", arxiv.group(1), f"{where}: arxiv")
    doi = re.search(r"(10\.\d{4,9}/\S+)", info.get("publicationDOI", ""))
    if doi:
        yield Found("doi", doi.group(1), f"{where}: publicationDOI")
    ident = info.get("id", "")
    if ident:
        yield Found("title", ident, f"{where}: id")
        experiment = ident.split("-")[0]
        if experiment in ("ATLAS", "CMS", "LHCb", "ALICE"):
            yield Found("collaboration", experiment, f"{where}: id", guessed=True)


def _key_values(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and not key[0].isspace() and re.fullmatch(r"[A-Za-z_]\w*", key):
            yield key, value.strip()


def _number(x: float) -> int | float:
    """13.0 -> 13, 139.0 -> 139; other values as they are."""
    return int(x) if float(x).is_integer() else x
