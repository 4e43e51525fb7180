"""New signal points as a user gives them: read a yields file, check it against an interface.

Three formats, by suffix:

- ``.yaml``/``.yml``/``.json``: ``{"likelihood": optional, "points": [{"name", "labels": {label: number},
  "regions": {channel: {"yield": [...], "mc_unc": [...], "systematics": {key: {"up": [...], "down": [...]}}}}}]}``;
- ``.csv``, long form: one row per (point, channel, bin) with columns ``point, channel, bin, yield``
  (``bin`` counts from 0) and optional ``mc_unc``, ``<key>_up``, ``<key>_down`` (an empty cell: not
  given) and label columns (one number per point, e.g. ``m1, m2``).

:func:`check` holds every point against the interface and returns the warnings; the errors
(unknown region or systematic, wrong bin count, NaN, a negative total rate for a POI value
inside its bounds) are raised together, each naming the point, region and fix (exit 2).

>>> p = SignalPoint("p1", {"SR": RegionInput((1.0, 2.0))})
>>> p.regions["SR"].yields
(1.0, 2.0)
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from heparch.components.interface import Interface, Region
from heparch.config import read_capped, reject_unsafe_yaml, yaml_error
from heparch.errors import InferenceInputError, InputError
from heparch.findings import Finding
from heparch.infer.inputs import raise_findings
from heparch.spec import limits, strictjson

#: a yields file larger than this is refused (100 1Lbb points with every systematic: ~10 MB)
MAX_YIELDS_BYTES: Final = 256 << 20
SUFFIXES: Final = (".yaml", ".yml", ".json", ".csv")
CSV_REQUIRED: Final = ("point", "channel", "bin", "yield")
#: the suffixes of a systematic's columns
VARIATIONS: Final = ("_up", "_down")

Values = tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Variation:
    """Relative up and down variations per bin (+0.05 = +5 %)."""

    up: Values
    down: Values

    def to_json(self) -> dict[str, Any]:
        return {"up": list(self.up), "down": list(self.down)}


@dataclasses.dataclass(frozen=True)
class RegionInput:
    """A signal's yields in one region, with its optional per-bin MC uncertainty and variations."""

    yields: Values
    mc_unc: Values | None = None
    systematics: Mapping[str, Variation] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"yield": list(self.yields)}
        if self.mc_unc is not None:
            doc["mc_unc"] = list(self.mc_unc)
        if self.systematics:
            doc["systematics"] = {k: v.to_json() for k, v in self.systematics.items()}
        return doc


@dataclasses.dataclass(frozen=True)
class SignalPoint:
    """One new signal point: its name, yields per region and label values (for the report)."""

    name: str
    regions: Mapping[str, RegionInput]
    labels: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "regions": {channel: r.to_json() for channel, r in self.regions.items()}}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclasses.dataclass(frozen=True)
class SignalFile:
    """A read yields file: its points and the likelihood it names (None: not named)."""

    path: Path
    points: tuple[SignalPoint, ...]
    likelihood: str | None = None


def _bad(where: str, message: str, code: str = "E100") -> InferenceInputError:
    finding = Finding(code, where, message)
    return InferenceInputError(finding.one_line(), findings=[finding])


# ---------------------------------------------------------------------------------------
# reading: JSON and YAML


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, f"{value!r} is not a number; give a number")
    return float(value)


def _numbers(value: Any, where: str) -> Values:
    if not isinstance(value, list):
        raise _bad(where, f"{type(value).__name__} is not a list of numbers, one per bin; give a list")
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(value))


def _variation(value: Any, where: str) -> Variation:
    if not isinstance(value, Mapping) or set(value) != {"up", "down"}:
        raise _bad(where, "a systematic needs 'up' and 'down' (relative variations per bin); give both")
    return Variation(_numbers(value["up"], f"{where}.up"), _numbers(value["down"], f"{where}.down"))


def _region(value: Any, where: str) -> RegionInput:
    if not isinstance(value, Mapping) or "yield" not in value:
        raise _bad(where, "a region needs 'yield' (one number per bin); add it")
    unknown = set(value) - {"yield", "mc_unc", "systematics"}
    if unknown:
        raise _bad(where, f"unknown field(s) {sorted(unknown)}; a region has 'yield', 'mc_unc' and 'systematics'")
    systematics = _mapping(value.get("systematics"), f"{where}.systematics", "must map a systematic's key to {up, down}")
    mc_unc = value.get("mc_unc")
    return RegionInput(
        _numbers(value["yield"], f"{where}.yield"),
        None if mc_unc is None else _numbers(mc_unc, f"{where}.mc_unc"),
        {str(k): _variation(v, f"{where}.systematics.{k}") for k, v in systematics.items()},
    )


def _mapping(value: Any, where: str, message: str) -> Mapping[Any, Any]:
    """An optional mapping (absent or empty: ``{}``); ``message`` says what it must map when it is not one."""
    got = value or {}
    if not isinstance(got, Mapping):
        raise _bad(where, message)
    return got


def _is_point(value: Any) -> bool:
    """A mapping with a string ``name`` and a mapping ``regions``."""
    return isinstance(value, Mapping) and isinstance(value.get("name"), str) and isinstance(value.get("regions"), Mapping)


def _point(value: Any, where: str) -> SignalPoint:
    if not _is_point(value):
        raise _bad(where, "a point needs 'name' (a string) and 'regions' (channel -> yields); add them")
    labels = _mapping(value.get("labels"), f"{where}.labels", "must map a label to a number")
    where = f"{where}({value['name']})"
    if not value["regions"]:
        raise _bad(f"{where}.regions", "no region; give the yields of at least one region (see 'arch reinterpret BUNDLE --interface')")
    return SignalPoint(
        value["name"],
        {str(k): _region(v, f"{where}.regions.{k}") for k, v in value["regions"].items()},
        {str(k): _number(v, f"{where}.labels.{k}") for k, v in labels.items()},
    )


def _document(data: Any, path: Path) -> SignalFile:
    if not isinstance(data, Mapping) or not isinstance(data.get("points"), list):
        raise _bad(str(path), "must be a mapping with 'points' (a list of points); see 'arch reinterpret BUNDLE --template'")
    likelihood = data.get("likelihood")
    if likelihood is not None and not isinstance(likelihood, str):
        raise _bad(f"{path}:likelihood", "must be the likelihood's logical path (a string)")
    points = tuple(_point(p, f"{path}:points[{i}]") for i, p in enumerate(data["points"]))
    return SignalFile(path, points, likelihood)


def _load_yaml(text: str, path: Path) -> Any:
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only for a YAML signal file
    from ruamel.yaml.error import YAMLError  # ruamel.yaml (~0.1 s): only for a YAML signal file

    reject_unsafe_yaml(text, str(path))
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise yaml_error(str(path), exc) from None


# ---------------------------------------------------------------------------------------
# reading: CSV long form


@dataclasses.dataclass
class _Rows:
    """The cells of one (point, channel): bin -> value, per column."""

    values: dict[str, dict[int, float]] = dataclasses.field(default_factory=dict)

    def add(self, b: int, cells: Mapping[str, float]) -> bool:
        """Record the cells of bin ``b``; False when the bin was given already."""
        if b in self.values.get("yield", {}):
            return False
        for column, v in cells.items():
            self.values.setdefault(column, {})[b] = v
        return True


def _cell(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(where, f"{text!r} is not a number; give a number") from None


def _text(row: Mapping[str, str | None], column: str) -> str:
    """A cell's text without surrounding blanks ("" where the row has no such cell)."""
    return (row.get(column) or "").strip()


def _filled(row: Mapping[str, str | None], columns: Sequence[str], where: str) -> dict[str, float]:
    """The numbers in the non-empty cells of ``columns``."""
    return {c: _cell(_text(row, c), f"{where}:{c}") for c in columns if _text(row, c)}


def _is_value_column(column: str) -> bool:
    """``yield``, ``mc_unc`` or a systematic's ``<key>_up``/``<key>_down``."""
    return column in ("yield", "mc_unc") or column.endswith(VARIATIONS)


def _columns(header: Sequence[str], path: Path) -> tuple[list[str], list[str]]:
    """The value columns (yield, mc_unc, <key>_up/_down) and the label columns."""
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise _bad(f"{path}:1", f"missing column(s) {missing}; the long form needs {', '.join(CSV_REQUIRED)}")
    values = [c for c in header if _is_value_column(c)]
    labels = [c for c in header if c not in {*values, *CSV_REQUIRED}]
    return values, labels


def _csv_row(row: Mapping[str, str | None], where: str, values: Sequence[str]) -> tuple[str, str, int, dict[str, float]]:
    point, channel = _text(row, "point"), _text(row, "channel")
    if not point or not channel:
        raise _bad(where, "every row needs 'point' and 'channel'; fill them in")
    b = _bin_index(row, where)
    cells = _filled(row, values, where)
    if "yield" not in cells:
        raise _bad(f"{where}:yield", "empty; give the expected signal events in this bin")
    return point, channel, b, cells


def _bin_index(row: Mapping[str, str | None], where: str) -> int:
    """A row's ``bin`` column as an integer."""
    try:
        return int(row.get("bin") or "")
    except ValueError:
        raise _bad(f"{where}:bin", f"{row.get('bin')!r} is not a bin index (0, 1, ...)") from None


def _series(by_bin: Mapping[int, float], where: str) -> Values:
    bins = sorted(by_bin)
    if bins != list(range(len(bins))):
        raise _bad(where, f"bins {bins} given; give bins 0..n-1 of the region, each once", "E102")
    return tuple(by_bin[b] for b in bins)


def _csv_variation(rows: _Rows, key: str, where: str) -> Variation:
    """The up and down columns of systematic ``key``: both, or an error."""
    up, down = rows.values.get(f"{key}_up"), rows.values.get(f"{key}_down")
    if up is None or down is None:
        raise _bad(f"{where}:{key}", f"'{key}_up' without '{key}_down' (or the reverse); give both relative variations")
    return Variation(_series(up, f"{where}:{key}_up"), _series(down, f"{where}:{key}_down"))


def _csv_region(rows: _Rows, where: str) -> RegionInput:
    yields = _series(rows.values["yield"], f"{where}:yield")
    mc = rows.values.get("mc_unc")
    keys = sorted({c.rsplit("_", 1)[0] for c in rows.values if c.endswith(VARIATIONS)})
    systematics = {key: _csv_variation(rows, key, where) for key in keys}
    return RegionInput(yields, _series(mc, f"{where}:mc_unc") if mc else None, systematics)


def _csv_labels(point: str, row: Mapping[str, str | None], labels: Sequence[str], seen: dict[str, dict[str, float]], where: str) -> None:
    """Record the label values of ``point`` (one number per point, the same on each of its rows)."""
    got = _filled(row, labels, where)
    before = seen.setdefault(point, got)
    if before != got:
        raise _bad(where, f"point {point!r} has label values {got} here and {before} on an earlier row; give one value per point")


def _read_csv(text: str, path: Path) -> SignalFile:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _csv_file(reader, path)
    except csv.Error as exc:  # a field beyond the csv module's 128 kB, a NUL byte, ...
        raise _bad(f"{path}:{reader.line_num}", f"not valid CSV: {exc}; give one row per point, region and bin, each field under 128 kB") from None


def _csv_file(reader: csv.DictReader[str], path: Path) -> SignalFile:
    reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
    values, labels = _columns(reader.fieldnames, path)
    cells: dict[str, dict[str, _Rows]] = {}
    label_values: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        where = f"{path}:{line}"
        point, channel, b, got = _csv_row(row, where, values)
        _csv_labels(point, row, labels, label_values, where)
        if not cells.setdefault(point, {}).setdefault(channel, _Rows()).add(b, got):
            raise _bad(where, f"point {point!r} region {channel!r} bin {b} is given twice; keep one row")
    points = tuple(SignalPoint(p, _csv_regions(regions, f"{path}:{p}"), label_values.get(p, {})) for p, regions in cells.items())
    return SignalFile(path, points)


def _csv_regions(regions: Mapping[str, _Rows], where: str) -> dict[str, RegionInput]:
    """A point's regions from the cells of its rows."""
    return {c: _csv_region(r, f"{where}:{c}") for c, r in regions.items()}


def _read_json(text: str, path: Path) -> SignalFile:
    depth = strictjson.nesting(text.encode("utf-8"))
    if depth > limits.DEPTH:  # the parser would recurse past Python's limit
        raise InputError(f"{path}: not valid JSON: nesting {depth} deep, deeper than {limits.DEPTH}")
    try:  # NaN and Infinity are read, and refused with their point and region (E103)
        data = json.loads(text, parse_int=_safe_int)
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    return _document(data, path)


def _safe_int(text: str) -> int:
    """A JSON integer within +-(2^53 - 1): a larger one overflows a float (ValueError: not valid JSON)."""
    value = int(text)
    if abs(value) > 2**53 - 1:
        raise ValueError(f"integer {text[:20]}{'...' if len(text) > 20 else ''} is outside +-(2^53 - 1)")
    return value


def _read_yaml(text: str, path: Path) -> SignalFile:
    return _document(_load_yaml(text, path), path)


#: how a yields file is read, by suffix (else YAML)
READERS: Final = {".csv": _read_csv, ".json": _read_json}


def _decoded(path: Path) -> str:
    """The text of yields file ``path``: a known suffix, at most :data:`MAX_YIELDS_BYTES`, UTF-8."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"signal {path}: use a .yaml, .json or .csv file (the format comes from the suffix)", option="signal")
    try:
        return read_capped(path, "yields file", MAX_YIELDS_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None


def _check_names(got: SignalFile) -> None:
    """At least one point, each named once."""
    if not got.points:
        raise _bad(str(got.path), "holds no signal point; see 'arch reinterpret BUNDLE --template'")
    names = collections.Counter(p.name for p in got.points)
    twice = sorted(n for n, k in names.items() if k > 1)
    if twice:
        raise _bad(str(got.path), f"point name(s) {twice} given more than once; name each point once")


def read(path: Path) -> SignalFile:
    """Read a yields file (format by suffix: see the module docs); an :class:`InputError` naming the place and the fix."""
    text = _decoded(path)
    got = READERS.get(path.suffix.lower(), _read_yaml)(text, path)
    _check_names(got)
    return got


# ---------------------------------------------------------------------------------------
# checks against the interface


def _finite(region: RegionInput) -> str | None:
    """The first input of ``region`` that is NaN or infinite."""
    for name, values in _series_of(region):
        for b, x in enumerate(values or ()):
            if not math.isfinite(x):
                return f"{name} bin {b} is {x}"
    return None


def _series_of(region: RegionInput) -> list[tuple[str, Values | None]]:
    """Every per-bin input of ``region`` by name."""
    out: list[tuple[str, Values | None]] = [("yield", region.yields), ("mc_unc", region.mc_unc)]
    for k, v in region.systematics.items():
        out += [(f"{k}_up", v.up), (f"{k}_down", v.down)]
    return out


def _systematic_finding(region: RegionInput, key: str, itf: Interface, where: str) -> Finding | None:
    """An unknown systematic key, or a normsys with different values per bin."""
    syst, v = itf.systematic(key), region.systematics[key]
    if syst is None:
        known = ", ".join(s.key for s in itf.systematics[:8]) or "none"
        return Finding("E101", f"{where}.{key}", f"unknown systematic; the interface's keys are: {known} (see 'arch reinterpret BUNDLE --interface')")
    if syst.type == "normsys" and (len(set(v.up)) > 1 or len(set(v.down)) > 1):
        return Finding("E102", f"{where}.{key}", "a normsys scales the region's total: give the same up and the same down in every bin")
    return None


def _shape(region: RegionInput, r: Region, itf: Interface, where: str) -> list[Finding]:
    """Bin counts, known systematics, one normsys value per channel."""
    out = [
        Finding("E102", where, f"{name}: {len(values)} value(s), the region has {r.bins} bin(s); give one per bin", r.bins, len(values))
        for name, values in _series_of(region)
        if values is not None and len(values) != r.bins
    ]
    found = (_systematic_finding(region, key, itf, where) for key in region.systematics)
    return out + [f for f in found if f is not None]


def _negative_yield(b: int, s: float, bkg: float, bounds: tuple[float, float], where: str) -> Finding:
    """E104 where the negative yield ``s`` makes the total rate negative for a POI value inside ``bounds``, else W030."""
    low, high = bkg + bounds[0] * s, bkg + bounds[1] * s
    if min(low, high) < 0:
        mu = bounds[1] if high < low else bounds[0]
        msg = f"bin {b}: yield {s:g} makes the total rate {min(low, high):g} < 0 at mu = {mu:g} (background {bkg:g}); the rate must stay >= 0 for mu in [{bounds[0]:g}, {bounds[1]:g}]: fix the yield"
        return Finding("E104", where, msg)
    return Finding("W030", where, f"bin {b}: negative yield {s:g}; the total rate stays positive for mu in [{bounds[0]:g}, {bounds[1]:g}]")


def _rates(region: RegionInput, r: Region, bounds: tuple[float, float], where: str) -> list[Finding]:
    """A finding per negative yield (:func:`_negative_yield`)."""
    return [_negative_yield(b, s, bkg, bounds, where) for b, (s, bkg) in enumerate(zip(region.yields, r.background, strict=False)) if s < 0]


def _check_region(itf: Interface, channel: str, region: RegionInput, at: str) -> list[Finding]:
    """A known region, finite inputs, the right shape; then the rates."""
    r = itf.region(channel)
    if r is None:
        have = ", ".join(x.channel for x in itf.regions)
        return [Finding("E101", at, f"unknown region; a signal of {itf.likelihood} enters {have}")]
    bad = _finite(region)
    if bad is not None:
        return [Finding("E103", at, f"{bad}; give finite numbers")]
    return _shape(region, r, itf, at) or _rates(region, r, itf.poi_bounds, at)


def _check_point(itf: Interface, point: SignalPoint, where: str) -> list[Finding]:
    return [f for channel, region in point.regions.items() for f in _check_region(itf, channel, region, f"{where}: point {point.name!r} region {channel!r}")]


def check(itf: Interface, points: Sequence[SignalPoint], where: str, *, poi_bounds: tuple[float, float] | None = None) -> list[Finding]:
    """Check ``points`` against ``itf``: raise :class:`InferenceInputError` with every error (the
    first as its message), return the warnings. ``poi_bounds`` replace the interface's."""
    if poi_bounds is not None:
        itf = dataclasses.replace(itf, poi_bounds=poi_bounds)
    findings = [f for p in points for f in _check_point(itf, p, where)]
    raise_findings(findings)
    return findings


# ---------------------------------------------------------------------------------------
# writing (the template)


def _bin_cells(r: RegionInput, b: int, keys: Sequence[str]) -> list[str]:
    """Bin ``b`` of a region in the long form: bin, yield, mc_unc and each systematic's up and down ("" where not given)."""
    row = [str(b), repr(r.yields[b]), repr(r.mc_unc[b]) if r.mc_unc is not None else ""]
    for k in keys:
        v = r.systematics.get(k)
        row += [repr(v.up[b]), repr(v.down[b])] if v is not None else ["", ""]
    return row


def _csv_rows(p: SignalPoint, keys: Sequence[str], labels: Sequence[str]) -> list[list[str]]:
    """The long-form rows of one point: one per (region, bin)."""
    tail = [repr(p.labels[k]) if k in p.labels else "" for k in labels]
    return [[p.name, channel, *_bin_cells(r, b, keys), *tail] for channel, r in p.regions.items() for b in range(len(r.yields))]


def _systematic_keys(points: Sequence[SignalPoint], keys: Sequence[str]) -> list[str]:
    """``keys``, then the other systematics the points give, each once."""
    return list(dict.fromkeys([*keys, *(k for p in points for r in p.regions.values() for k in r.systematics)]))


def _csv_text(points: Sequence[SignalPoint], keys: Sequence[str]) -> str:
    labels = list(dict.fromkeys(k for p in points for k in p.labels))
    keys = _systematic_keys(points, keys)
    header = [*CSV_REQUIRED, "mc_unc", *(f"{k}{s}" for k in keys for s in VARIATIONS), *labels]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in points:
        writer.writerows(_csv_rows(p, keys, labels))
    return out.getvalue()


def _yaml_text(doc: Mapping[str, Any], header: str) -> str:
    """``doc`` as YAML after ``header`` as comment lines."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only for a YAML signal file

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.width = 120
    yaml.dump(doc, out)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + out.getvalue()


def dump(points: Sequence[SignalPoint], fmt: str, *, likelihood: str | None = None, header: str = "", keys: Sequence[str] = ()) -> str:
    """``points`` as a yields file of format ``fmt`` (``yaml``, ``json`` or ``csv``) that :func:`read` reads back;
    a CSV has columns for the systematic ``keys`` too (empty where not given)."""
    if fmt == "csv":
        return _csv_text(points, keys)
    doc: dict[str, Any] = {"points": [p.to_json() for p in points]}
    if likelihood is not None:
        doc["likelihood"] = likelihood
    if fmt == "json":
        return json.dumps(doc, indent=1) + "\n"
    return _yaml_text(doc, header)
