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

#: a yields file larger than this is refused (100 1Lbb points with every systematic: ~10 MB)
MAX_YIELDS_BYTES: Final = 256 << 20
SUFFIXES: Final = (".yaml", ".yml", ".json", ".csv")
CSV_REQUIRED: Final = ("point", "channel", "bin", "yield")

Values = tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Variation:
    """Relative up and down variations per bin (+0.05 = +5 %)."""

    up: Values
    down: Values


@dataclasses.dataclass(frozen=True)
class RegionInput:
    """A signal's yields in one region, with its optional per-bin MC uncertainty and variations."""

    yields: Values
    mc_unc: Values | None = None
    systematics: Mapping[str, Variation] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SignalPoint:
    """One new signal point: its name, yields per region and label values (for the report)."""

    name: str
    regions: Mapping[str, RegionInput]
    labels: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        regions: dict[str, Any] = {}
        for channel, r in self.regions.items():
            doc: dict[str, Any] = {"yield": list(r.yields)}
            if r.mc_unc is not None:
                doc["mc_unc"] = list(r.mc_unc)
            if r.systematics:
                doc["systematics"] = {k: {"up": list(v.up), "down": list(v.down)} for k, v in r.systematics.items()}
            regions[channel] = doc
        out: dict[str, Any] = {"name": self.name, "regions": regions}
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
    systematics = value.get("systematics") or {}
    if not isinstance(systematics, Mapping):
        raise _bad(f"{where}.systematics", "must map a systematic's key to {up, down}")
    return RegionInput(
        _numbers(value["yield"], f"{where}.yield"),
        _numbers(value["mc_unc"], f"{where}.mc_unc") if value.get("mc_unc") is not None else None,
        {str(k): _variation(v, f"{where}.systematics.{k}") for k, v in systematics.items()},
    )


def _point(value: Any, where: str) -> SignalPoint:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str) or not isinstance(value.get("regions"), Mapping):
        raise _bad(where, "a point needs 'name' (a string) and 'regions' (channel -> yields); add them")
    labels = value.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise _bad(f"{where}.labels", "must map a label to a number")
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
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

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


def _cell(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(where, f"{text!r} is not a number; give a number") from None


def _columns(header: Sequence[str], path: Path) -> tuple[list[str], list[str]]:
    """The value columns (yield, mc_unc, <key>_up/_down) and the label columns."""
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise _bad(f"{path}:1", f"missing column(s) {missing}; the long form needs {', '.join(CSV_REQUIRED)}")
    values = [c for c in header if c in ("yield", "mc_unc") or c.endswith(("_up", "_down"))]
    labels = [c for c in header if c not in values and c not in CSV_REQUIRED]
    return values, labels


def _csv_row(row: Mapping[str, str], line: int, path: Path, values: Sequence[str]) -> tuple[str, str, int, dict[str, float]]:
    where = f"{path}:{line}"
    point, channel = (row.get("point") or "").strip(), (row.get("channel") or "").strip()
    if not point or not channel:
        raise _bad(where, "every row needs 'point' and 'channel'; fill them in")
    b = _bin_index(row, where)
    cells = {c: _cell(row[c].strip(), f"{where}:{c}") for c in values if (row.get(c) or "").strip()}
    if "yield" not in cells:
        raise _bad(f"{where}:yield", "empty; give the expected signal events in this bin")
    return point, channel, b, cells


def _bin_index(row: Mapping[str, str], where: str) -> int:
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


def _csv_region(rows: _Rows, where: str) -> RegionInput:
    yields = _series(rows.values["yield"], f"{where}:yield")
    mc = rows.values.get("mc_unc")
    keys = sorted({c.rsplit("_", 1)[0] for c in rows.values if c.endswith(("_up", "_down"))})
    systematics = {}
    for key in keys:
        up, down = rows.values.get(f"{key}_up"), rows.values.get(f"{key}_down")
        if up is None or down is None:
            raise _bad(f"{where}:{key}", f"'{key}_up' without '{key}_down' (or the reverse); give both relative variations")
        systematics[key] = Variation(_series(up, f"{where}:{key}_up"), _series(down, f"{where}:{key}_down"))
    return RegionInput(yields, _series(mc, f"{where}:mc_unc") if mc else None, systematics)


def _csv_labels(point: str, row: Mapping[str, str], labels: Sequence[str], seen: dict[str, dict[str, float]], where: str) -> None:
    """Record the label values of ``point`` (one number per point, the same on each of its rows)."""
    got = {c: _cell(row[c].strip(), f"{where}:{c}") for c in labels if (row.get(c) or "").strip()}
    before = seen.setdefault(point, got)
    if before != got:
        raise _bad(where, f"point {point!r} has label values {got} here and {before} on an earlier row; give one value per point")


def _read_csv(text: str, path: Path) -> SignalFile:
    reader = csv.DictReader(io.StringIO(text))
    values, labels = _columns([c.strip() for c in reader.fieldnames or []], path)
    reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
    cells: dict[str, dict[str, _Rows]] = {}
    label_values: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        point, channel, b, got = _csv_row(row, line, path, values)
        _csv_labels(point, row, labels, label_values, f"{path}:{line}")
        rows = cells.setdefault(point, {}).setdefault(channel, _Rows())
        if b in rows.values.get("yield", {}):
            raise _bad(f"{path}:{line}", f"point {point!r} region {channel!r} bin {b} is given twice; keep one row")
        for column, v in got.items():
            rows.values.setdefault(column, {})[b] = v
    points = tuple(SignalPoint(p, {c: _csv_region(r, f"{path}:{p}:{c}") for c, r in regions.items()}, label_values.get(p, {})) for p, regions in cells.items())
    return SignalFile(path, points)


def _parse(text: str, path: Path) -> SignalFile:
    """The file's points, by its suffix's format."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(text, path)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON: {exc}") from None
        return _document(data, path)
    return _document(_load_yaml(text, path), path)


def read(path: Path) -> SignalFile:
    """Read a yields file (format by suffix: see the module docs); an :class:`InputError` naming the place and the fix."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"signal {path}: use a .yaml, .json or .csv file (the format comes from the suffix)", option="signal")
    try:
        text = read_capped(path, "yields file", MAX_YIELDS_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    got = _parse(text, path)
    if not got.points:
        raise _bad(str(path), "holds no signal point; see 'arch reinterpret BUNDLE --template'")
    names = [p.name for p in got.points]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _bad(str(path), f"point name(s) {twice} given more than once; name each point once")
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


def _systematic_findings(region: RegionInput, itf: Interface, where: str) -> list[Finding]:
    """Unknown systematic keys; a normsys with different values per bin."""
    out = []
    for key, v in region.systematics.items():
        syst = itf.systematic(key)
        if syst is None:
            known = ", ".join(s.key for s in itf.systematics[:8]) or "none"
            out.append(Finding("E101", f"{where}.{key}", f"unknown systematic; the interface's keys are: {known} (see 'arch reinterpret BUNDLE --interface')"))
        elif syst.type == "normsys" and (len(set(v.up)) > 1 or len(set(v.down)) > 1):
            out.append(Finding("E102", f"{where}.{key}", "a normsys scales the region's total: give the same up and the same down in every bin"))
    return out


def _shape(region: RegionInput, r: Region, itf: Interface, where: str) -> list[Finding]:
    """Bin counts, known systematics, one normsys value per channel."""
    out = [
        Finding("E102", where, f"{name}: {len(values)} value(s), the region has {r.bins} bin(s); give one per bin", r.bins, len(values))
        for name, values in _series_of(region)
        if values is not None and len(values) != r.bins
    ]
    return out + _systematic_findings(region, itf, where)


def _rates(region: RegionInput, r: Region, bounds: tuple[float, float], where: str) -> list[Finding]:
    """E104 where the total rate goes negative for a POI value inside ``bounds``; W030 for a negative yield otherwise."""
    out = []
    for b, (s, bkg) in enumerate(zip(region.yields, r.background, strict=False)):
        if s >= 0:
            continue
        worst = min(bkg + bounds[0] * s, bkg + bounds[1] * s)
        if worst < 0:
            mu = bounds[1] if bkg + bounds[1] * s < bkg + bounds[0] * s else bounds[0]
            msg = f"bin {b}: yield {s:g} makes the total rate {worst:g} < 0 at mu = {mu:g} (background {bkg:g}); the rate must stay >= 0 for mu in [{bounds[0]:g}, {bounds[1]:g}]: fix the yield"
            out.append(Finding("E104", where, msg))
        else:
            out.append(Finding("W030", where, f"bin {b}: negative yield {s:g}; the total rate stays positive for mu in [{bounds[0]:g}, {bounds[1]:g}]"))
    return out


def _check_point(itf: Interface, point: SignalPoint, where: str) -> list[Finding]:
    out = []
    for channel, region in point.regions.items():
        at = f"{where}: point {point.name!r} region {channel!r}"
        r = itf.region(channel)
        if r is None:
            have = ", ".join(x.channel for x in itf.regions)
            out.append(Finding("E101", at, f"unknown region; a signal of {itf.likelihood} enters {have}"))
            continue
        bad = _finite(region)
        if bad is not None:
            out.append(Finding("E103", at, f"{bad}; give finite numbers"))
            continue
        shape = _shape(region, r, itf, at)
        out += shape
        if not shape:
            out += _rates(region, r, itf.poi_bounds, at)
    return out


def check(itf: Interface, points: Sequence[SignalPoint], where: str, *, poi_bounds: tuple[float, float] | None = None) -> list[Finding]:
    """Check ``points`` against ``itf``: raise :class:`InferenceInputError` with every error (the
    first as its message), return the warnings. ``poi_bounds`` replace the interface's."""
    if poi_bounds is not None:
        itf = dataclasses.replace(itf, poi_bounds=poi_bounds)
    findings = [f for p in points for f in _check_point(itf, p, where)]
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InferenceInputError(errors[0].one_line(), findings=errors)
    return findings


# ---------------------------------------------------------------------------------------
# writing (the template)


def _csv_rows(p: SignalPoint, keys: Sequence[str], labels: Sequence[str]) -> list[list[str]]:
    """The long-form rows of one point: one per (region, bin)."""
    rows = []
    tail = [repr(p.labels[k]) if k in p.labels else "" for k in labels]
    for channel, r in p.regions.items():
        for b, y in enumerate(r.yields):
            row = [p.name, channel, str(b), repr(y), repr(r.mc_unc[b]) if r.mc_unc is not None else ""]
            for k in keys:
                v = r.systematics.get(k)
                row += [repr(v.up[b]), repr(v.down[b])] if v is not None else ["", ""]
            rows.append(row + tail)
    return rows


def _csv_text(points: Sequence[SignalPoint], keys: Sequence[str]) -> str:
    labels = list(dict.fromkeys(k for p in points for k in p.labels))
    keys = list(dict.fromkeys([*keys, *(k for p in points for r in p.regions.values() for k in r.systematics)]))
    header = ["point", "channel", "bin", "yield", "mc_unc"] + [f"{k}_{s}" for k in keys for s in ("up", "down")] + labels
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for p in points:
        writer.writerows(_csv_rows(p, keys, labels))
    return out.getvalue()


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
    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.width = 120
    yaml.dump(doc, out)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + out.getvalue()
