"""Analysis metadata found in the files of an analysis directory, with where each value came from.

One reader for what publications already ship beside their likelihoods, used by ``arch init``
(and ``arch build``'s patchset references):

* a pyhf PatchSet's ``metadata.references`` (``hepdata``);
* a HEPData ``submission.yaml``: ``record_ids`` (INSPIRE, arXiv), the first document's
  ``comment`` (description), the tables' ``cmenergies`` keyword (GeV -> ``sqrt_s_TeV``), the
  HEPData DOI where the downloaded files carry one (the record's ``hepdata_doi``, else the
  record part of a table's ``table_doi`` or a resource's ``doi``), the luminosity only where a
  table's data file states it (a ``LUMINOSITY`` qualifier with its unit: fb^-1, pb^-1, ...), and the
  ``additional_resources`` (:func:`archive_resources`: the likelihood archive that
  ``arch build`` unpacks);
* an SModelS ``globalInfo.txt``: ``sqrts`` (``13*TeV``), ``lumi`` (``139.0/fb``), ``arxiv``
  (an abs URL), ``publicationDOI`` and the analysis ``id`` (whose first word names the
  collaboration: marked as guessed).

Every value is read by the parser of its field in :mod:`heparch.identifiers` (the one check that
``arch build`` and verification apply): an arXiv id without its version, a HEPData DOI cut to
its record's, quantities converted to TeV and fb^-1. A value not of its field's form, or a
quantity without its unit, is passed over.

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
from heparch.errors import InputError
from heparch.identifiers import (
    BadValue,
    find_doi,
    is_quantity,
    parse_arxiv_paper,
    parse_hepdata_record,
    parse_inspire,
    parse_luminosity,
    parse_sqrt_s,
    tev_of_gev,
)

SUBMISSION = "submission.yaml"
GLOBAL_INFO = "globalInfo.txt"


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
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only for a submission.yaml
    from ruamel.yaml.error import YAMLError  # ruamel.yaml (~0.1 s): only for a submission.yaml

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
    yield from _record_ids(docs[0].get("record_ids"), where)
    yield from _comment(docs[0].get("comment"), where)
    yield from _sqrt_s(docs, where)
    yield from _hepdata_doi(docs, where)
    yield from _luminosity(docs, path.parent, where)


def _comment(comment: Any, where: str) -> Iterator[Found]:
    """The record's ``comment`` as the description, its white space made single spaces."""
    if isinstance(comment, str) and comment.strip():
        yield Found("description", " ".join(comment.split()), f"{where}: comment")


def _sqrt_s(docs: list[dict[str, Any]], where: str) -> Iterator[Found]:
    """The tables' ``cmenergies`` keyword, where they state one energy."""
    energies = sorted({e for d in docs for e in _cmenergies(d)})
    if len(energies) == 1:
        yield Found("sqrt_s_TeV", tev_of_gev(energies[0]), f"{where}: keywords cmenergies ({energies[0]:g} GeV)")


def _hepdata_doi(docs: list[dict[str, Any]], where: str) -> Iterator[Found]:
    """The record's HEPData DOI: ``hepdata_doi``, else the record part of the first table or resource DOI."""
    candidates = [("hepdata_doi", docs[0].get("hepdata_doi"))]
    candidates += [("table_doi", d.get("table_doi")) for d in docs[1:]]
    candidates += [("additional_resources doi", r.get("doi")) for d in docs for r in _dicts(d.get("additional_resources"))]
    for key, value in candidates:
        doi = _parsed(parse_hepdata_record, value)
        if doi is not None:
            yield Found("hepdata", doi, f"{where}: {key}")
            return


def _dicts(items: Any) -> list[dict[str, Any]]:
    """The mappings of a YAML list (nothing when ``items`` is not a list)."""
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _parsed(parse: Callable[[Any], Any], value: Any) -> Any:
    """``parse(value)`` (a :mod:`heparch.identifiers` parser), or None for a value not of its form."""
    try:
        return parse(value)
    except BadValue:
        return None


def archive_resources(path: Path) -> list[str]:
    """The relative ``location`` of every ``additional_resources`` entry of a ``submission.yaml``
    (the record's and the tables'), in order, without URLs, absolute paths or '..'."""
    locations = (_relative_location(r.get("location")) for doc in _yaml_docs(path, "HEPData submission") for r in _dicts(doc.get("additional_resources")))
    return list(dict.fromkeys(loc for loc in locations if loc is not None))


def _relative_location(loc: Any) -> str | None:
    """A resource's location as a relative path inside the submission (``./a`` is ``a``); None
    for a URL, an absolute path, a path with '..' or no path at all."""
    if not isinstance(loc, str) or "://" in loc or loc.startswith("/"):
        return None
    parts = [p for p in loc.split("/") if p not in ("", ".")]
    return "/".join(parts) if parts and ".." not in parts else None


_LUMI_NAMES = frozenset({"luminosity", "lumi", "integrated luminosity", "int. luminosity"})


def _luminosity(docs: list[dict[str, Any]], folder: Path, where: str) -> Iterator[Found]:
    """The luminosity where the tables' data files state one (one value across them)."""
    stated: dict[float, str] = {}
    for data_file in dict.fromkeys(filter(None, map(_data_file, docs[1:]))):  # each file read once, however many tables name it
        for value in _table_luminosities(folder / data_file):
            stated.setdefault(value, data_file)
    if len(stated) == 1:
        ((value, data_file),) = stated.items()
        yield Found("luminosity_ifb", value, f"{where}: {data_file} qualifier LUMINOSITY")


def _data_file(doc: dict[str, Any]) -> str | None:
    """A table's ``data_file`` where it is a YAML file beside submission.yaml."""
    data_file = doc.get("data_file")
    return data_file if isinstance(data_file, str) and data_file.endswith((".yaml", ".yml")) and "/" not in data_file else None


def _table_luminosities(file: Path) -> Iterator[int | float]:
    """The luminosities (fb^-1) a table's ``LUMINOSITY`` qualifiers state (``139`` ``fb$^{-1}$``)."""
    for table in _yaml_docs(file, "HEPData table")[:1]:
        qualifiers = (q for dep in _dicts(table.get("dependent_variables")) for q in _dicts(dep.get("qualifiers")))
        stated = (_parsed(_luminosity_stated, f"{q.get('value', '')} {q.get('units', '')}") for q in qualifiers if _is_luminosity(q))
        yield from (value for value in stated if value is not None)


def _is_luminosity(qualifier: dict[str, Any]) -> bool:
    return str(qualifier.get("name", "")).strip().lower() in _LUMI_NAMES


def _luminosity_stated(text: str) -> int | float:
    """A luminosity with its unit in fb^-1 (``139/fb``; a table's ``139 fb$^{-1}$``: white space, '$' and braces dropped)."""
    return _with_unit(parse_luminosity, re.sub(r"[\s${}]", "", text))


def _energy_stated(text: str) -> int | float:
    """An energy with its unit in TeV (SModelS's ``13*TeV``)."""
    return _with_unit(parse_sqrt_s, text.replace("*", " "))


def _with_unit(parse: Callable[[str], int | float], text: str) -> int | float:
    """``parse(text)`` (:mod:`heparch.identifiers`) for a quantity that states its unit: a bare
    number found in a file is not taken to be in the field's unit."""
    if not re.search(r"[a-zA-Z]", text):
        raise BadValue(f"{text!r} states no unit")
    return parse(text)


def _record_ids(ids: Any, where: str) -> Iterator[Found]:
    for item in _dicts(ids):
        kind = _RECORD_ID_KINDS.get(str(item.get("type", "")).lower())
        if kind is None:
            continue
        field, label, parse = kind
        value = _parsed(parse, item.get("id"))
        if value is not None:
            yield Found(field, value, f"{where}: record_ids ({label})")


def _hepdata_id(value: Any) -> str:
    """A HEPData record id or DOI as the record's DOI: a record number ``89408`` is record 89408's DOI
    ``10.17182/hepdata.89408`` (not an INSPIRE id, which a bare number means elsewhere), a resource DOI
    ``.../r2`` is cut to its record's."""
    text = str(value).strip() if isinstance(value, int | str) else ""
    if not text:
        raise BadValue(f"{value!r} is not a HEPData record id or DOI")
    if text.isdigit():
        return f"10.17182/hepdata.{int(text)}"
    return _parsed(parse_hepdata_record, value) or text


# a record_ids entry's type -> (metadata field, its name in the finding's source, the id's parser)
_RECORD_ID_KINDS: dict[str, tuple[str, str, Callable[[Any], str]]] = {
    "inspire": ("inspire", "inspire", parse_inspire),
    "arxiv": ("arxiv", "arXiv", parse_arxiv_paper),
    "hepdata": ("hepdata", "hepdata", _hepdata_id),
}


def _cmenergies(doc: dict[str, Any]) -> Iterator[float]:
    for kw in _dicts(doc.get("keywords")):
        if kw.get("name") == "cmenergies":
            values = kw.get("values")
            yield from (float(v) for v in (values if isinstance(values, list) else ()) if is_quantity(v))


def from_global_info(path: Path, where: str) -> Iterator[Found]:
    """An SModelS ``globalInfo.txt`` (``key: value`` lines)."""
    try:
        text = read_capped(path, "SModelS globalInfo").decode("utf-8")
    except Exception:
        return
    info = dict(_key_values(text))
    for key, (field, parse) in _GLOBAL_INFO_FIELDS.items():
        value = _parsed(parse, info[key]) if key in info else None
        if value is not None:
            yield Found(field, value, f"{where}: {key}")
    yield from _title_and_collaboration(info.get("id", ""), where)


# a globalInfo.txt key -> (metadata field, the value's parser), in the order they are reported
_GLOBAL_INFO_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "sqrts": ("sqrt_s_TeV", _energy_stated),
    "lumi": ("luminosity_ifb", _luminosity_stated),
    "arxiv": ("arxiv", parse_arxiv_paper),
    "publicationDOI": ("doi", find_doi),
}


def _title_and_collaboration(ident: str, where: str) -> Iterator[Found]:
    """The analysis id (``ATLAS-SUSY-2018-31``) as the title; its first word, a collaboration's name, as a guess."""
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
