"""Analysis metadata found in the files of an analysis directory, with where each value came from.

One reader for what publications already ship beside their likelihoods, used by ``arch init``
(and ``arch build``'s patchset references):

* a pyhf PatchSet's ``metadata.references`` (``hepdata``);
* a HEPData ``submission.yaml``: ``record_ids`` (INSPIRE, arXiv), the first document's
  ``comment`` (description), the tables' ``cmenergies`` keyword (GeV -> ``sqrt_s_TeV``);
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
from collections.abc import Iterable, Iterator
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
    chosen: dict[str, Found] = {}
    conflicts: list[Found] = []
    for found in _all(directory, files):
        first = chosen.setdefault(found.field, found)
        if first is not found and first.value != found.value:
            conflicts.append(found)
    return chosen, conflicts


def _all(directory: Path, files: Iterable[tuple[str, Any]]) -> Iterator[Found]:
    for logical, obj in files:
        name = Path(logical).name
        if isinstance(obj, dict) and isinstance(obj.get("patches"), list):
            yield from from_patchset(obj, logical)
        elif name == SUBMISSION:
            yield from from_submission(directory / logical, logical)
        elif name == GLOBAL_INFO:
            yield from from_global_info(directory / logical, logical)


def from_patchset(obj: dict[str, Any], where: str) -> Iterator[Found]:
    """A PatchSet's ``metadata.references.hepdata``."""
    meta = obj.get("metadata")
    refs = meta.get("references") if isinstance(meta, dict) else None
    if isinstance(refs, dict) and isinstance(refs.get("hepdata"), str) and refs["hepdata"].strip():
        yield Found("hepdata", refs["hepdata"].strip(), f"{where}: metadata.references.hepdata")


def from_submission(path: Path, where: str) -> Iterator[Found]:
    """A HEPData ``submission.yaml`` (several YAML documents: the record's, then one per table)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from heparch.errors import InputError

    try:
        text = read_capped(path, "HEPData submission").decode("utf-8")
        reject_unsafe_yaml(text, str(path))
        docs = [d for d in YAML(typ="safe", pure=True).load_all(io.StringIO(text)) if isinstance(d, dict)]
    except (InputError, UnicodeDecodeError, YAMLError):
        return  # not a submission heparch can read: nothing found in it (build checks files on its own)
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


def _record_ids(ids: Any, where: str) -> Iterator[Found]:
    for item in ids if isinstance(ids, list) else ():
        if not isinstance(item, dict):
            continue
        kind, value = str(item.get("type", "")).lower(), item.get("id")
        if kind == "inspire" and isinstance(value, int | str) and str(value).isdigit():
            yield Found("inspire", f"ins{value}", f"{where}: record_ids (inspire)")
        elif kind == "arxiv" and isinstance(value, str) and (m := _ARXIV.search(value)):
            yield Found("arxiv", m.group(1), f"{where}: record_ids (arXiv)")


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
