"""Render a :class:`~heparch.replay.outcome.ReplayReport`: a summary table, JUnit XML and an HTML page.

Pure functions of the report (standard library only): :func:`summary_table` for stderr,
:func:`junit_xml` for CI test-report consumers, :func:`html` for a self-contained page with
an inline SVG plot, and :func:`write_reports` to write the files atomically.

>>> from heparch.replay.outcome import Mismatch, PointOutcome, ReplayReport
>>> ok = PointOutcome(key="pt_300_100", likelihood="BkgOnly.json", point="pt_300_100", claimed={"CLs_obs": 0.44},
...                   replayed={"CLs_obs": 0.4401}, passed=True, backend="fast", seconds=0.2, values={"m1": 300, "m2": 100})
>>> bad = PointOutcome(key="pt_500_200", likelihood="BkgOnly.json", point="pt_500_200", claimed={"CLs_obs": 0.03},
...                    replayed={"CLs_obs": 0.06}, passed=False, backend="fast", seconds=0.3, values={"m1": 500, "m2": 200},
...                    mismatches=(Mismatch("CLs_obs", 0.03, 0.06, 0.0001),))
>>> rep = ReplayReport(bundle="ana.zst", identity="sha256:0123", points=[ok, bad], seconds=0.5,
...                    software={"pyhf": ("0.7.6", "0.7.7")}, labels=("m1", "m2"))
>>> print(summary_table(rep))
      point                          field           claimed    replayed  difference   tolerance
FAIL  pt_500_200                     CLs_obs            0.03        0.06       +0.03      0.0001
ok    pt_300_100                     CLs_obs            0.44      0.4401     +0.0001
passed 1, failed 1, total 2 in 0.5 s
pyhf: recorded 0.7.6, running 0.7.7
>>> b'failures="1"' in junit_xml(rep), html(rep).count('<g class="point')
(True, 4)
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from heparch.errors import InputError
from heparch.replay.outcome import PointOutcome, ReplayReport

__all__ = ["html", "junit_xml", "summary_table", "write_reports"]

# --- shared helpers ------------------------------------------------------------------------

#: what XML 1.0 cannot hold (control characters other than tab, newline, carriage return) and
#: lone surrogates (valid in a JSON string, not encodable as UTF-8)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(s: str) -> str:
    """``s`` with the characters XML 1.0 forbids replaced by U+FFFD (point names and errors come from user files)."""
    return _NOT_XML.sub("\ufffd", s)


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _cls(src: Mapping[str, Any] | None) -> float | None:
    return _finite(src.get("CLs_obs")) if src else None


def _status(p: PointOutcome) -> str:
    """``pass``, ``fail`` (compared and outside tolerance) or ``error`` (no replayed values)."""
    if p.passed:
        return "pass"
    return "error" if p.replayed is None else "fail"


def _difference(p: PointOutcome) -> float | None:
    c, r = _cls(p.claimed), _cls(p.replayed)
    return None if c is None or r is None else r - c


def _flipped(p: PointOutcome) -> bool:
    """Whether the claimed and the replayed observed CLs fall on different sides of the point's level."""
    c, r = p.excluded("claimed"), p.excluded("replayed")
    return c is not None and r is not None and c != r


def _worst_ratio(p: PointOutcome) -> float | None:
    """The largest |difference| / tolerance over the point's compared values (the replay's
    ``ratio``), else over its mismatches (None without either)."""
    if p.ratio is not None:
        return p.ratio
    ratios = [abs(m.difference) / m.tolerance for m in p.mismatches if m.tolerance > 0 and math.isfinite(m.difference)]
    return max(ratios) if ratios else None


def _local_line(p: PointOutcome) -> str:
    lm = p.local_minimum or {}
    return (
        f"claim-at-local-minimum: the claimed CLs_obs {_g(_finite(lm.get('claimed')))} is the replay's value from start "
        f"{lm.get('start')!r} ({_g(_finite(lm.get('start_CLs_obs')))}); at the lowest minimum it is {_g(_finite(lm.get('replayed')))}"
    )


def _failure_lines(p: PointOutcome) -> list[str]:
    lines = ([_local_line(p)] if p.local_minimum is not None else []) + [m.one_line() for m in p.mismatches]
    if p.error:
        lines.append(p.error)
    return lines or ["failed (no mismatch recorded)"]


def _counts(report: ReplayReport) -> tuple[int, int, int]:
    """(passed, failed comparisons, computation errors)."""
    st = collections.Counter(_status(p) for p in report.points)
    return st["pass"], st["fail"], st["error"]


def _software_lines(report: ReplayReport) -> list[str]:
    return [f"{name}: recorded {rec}, running {cur}" for name, (rec, cur) in sorted(report.software.items())]


def _audit_lines(report: ReplayReport) -> list[str]:
    """The engine audit in one line (none without --audit)."""
    a = report.audit
    if not a:
        return []
    if a.get("status") in ("off", "skipped"):
        return [f"audit {a.get('status')}" + (f": {a['reason']}" if a.get("reason") else "")]
    text = f"audit {a.get('status')}: {len(a.get('points') or {})} point(s) against {a.get('reference')}, max difference {_g(_finite(a.get('max_ratio')), '.3g')} of the tolerance"
    return [text + (f"; {a['reason']}" if a.get("reason") else "")]


def _g(x: float | None, spec: str = ".6g") -> str:
    return "" if x is None else format(x, spec)


# --- summary table ------------------------------------------------------------------------

_KEY_W = 30
_NUM_W = 11


def _cut(s: str, width: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def _row(status: str, key: str, field: str, nums: Sequence[str]) -> str:
    line = f"{status:<5} {_cut(key, _KEY_W):<{_KEY_W}} {field:<11}" + "".join(f" {n:>{_NUM_W}}" for n in nums)
    return line.rstrip()


def _table_rows(p: PointOutcome) -> list[str]:
    status = _status(p)
    prefix_w = 5 + 1 + _KEY_W + 1
    if status == "error":
        return [f"{'ERROR':<5} {_cut(p.key, _KEY_W):<{_KEY_W}} " + _cut(p.error or "no replayed values", 100 - prefix_w)]
    if status == "fail":
        rows = []
        word = "LOCAL" if p.local_minimum is not None else "FAIL"
        for i, m in enumerate(p.mismatches):
            nums = [_g(m.claimed), _g(m.replayed), _g(m.difference, "+.3g"), _g(m.tolerance, ".3g")]
            rows.append(_row(word if i == 0 else "", p.key if i == 0 else "", _cut(m.field, 11), nums))
        if p.local_minimum is not None:
            rows.append(f"{'':<5} {'':<{_KEY_W}} " + _cut(_local_line(p), 100 - prefix_w))
        if p.error or not rows:
            text = _cut(p.error or "failed (no mismatch recorded)", 100 - prefix_w)
            rows.append(f"{'FAIL' if not rows else '':<5} {_cut(p.key, _KEY_W) if not rows else '':<{_KEY_W}} {text}")
        return rows
    c, r, d = _cls(p.claimed), _cls(p.replayed), _difference(p)
    return [_row("ok", p.key, "CLs_obs", [_g(c), _g(r), _g(d, "+.3g")])]


def summary_table(report: ReplayReport, *, max_rows: int = 20) -> str:
    """A plain-text table for stderr, at most 100 columns wide.

    Failed points come first (one row per mismatch: field, claimed, replayed, difference,
    tolerance; or the computation error), then passing points (their observed CLs), up to
    ``max_rows`` points in all and a ``... N more`` line; then a totals line and one line per
    software version that differs from the recorded one.
    """
    failed = [p for p in report.points if not p.passed]
    passing = [p for p in report.points if p.passed]
    shown = (failed + passing)[: max(max_rows, 0)]
    head = _row("", "point", "field", ["claimed", "replayed", "difference", "tolerance"])
    lines = [head]
    for p in shown:
        lines += _table_rows(p)
    more_failed = len(failed) - sum(1 for p in shown if not p.passed)
    more = len(report.points) - len(shown)
    if more:
        lines.append(f"... {more} more ({more_failed} failed, {more - more_failed} passed)")
    n_pass, n_fail, n_err = _counts(report)
    totals = f"passed {n_pass}, failed {n_fail + n_err}"
    n_local = sum(1 for p in report.points if p.local_minimum is not None)
    if n_err or n_local:
        totals += (
            " (" + ", ".join(t for t in (f"{n_err} with a computation error" * bool(n_err), f"{n_local} claimed at a local minimum" * bool(n_local)) if t) + ")"
        )
    lines.append(f"{totals}, total {len(report.points)} in {report.seconds:.3g} s")
    lines += _audit_lines(report)
    lines += _software_lines(report)
    return "\n".join(lines)


# --- JUnit XML ----------------------------------------------------------------------------


def junit_xml(report: ReplayReport) -> bytes:
    """JUnit XML: one ``<testcase classname=likelihood name=point>`` per point, in the report's order.

    A point outside its tolerance gets ``<failure type="mismatch">``, a point whose computation
    failed gets ``<error type="computation">``: the test ran and disagreed, versus the test
    could not run. Both count as not passed for GitLab (its test report shows the element's
    *text*, ignoring ``message``) and for the GitHub actions that read JUnit (they show
    ``message`` as the title and the text as details). So the text holds every mismatch
    (:meth:`~heparch.replay.outcome.Mismatch.one_line`, one a line) or the error, and
    ``message`` the same on one line (``; ``-separated; an error's first line). ``<properties>``
    carry the bundle, its identity and each differing software version; the versions are
    repeated in the suite's ``<system-out>`` for consumers that show only that (Jenkins).
    Output is deterministic (no timestamp, no host name), in the report's point order.
    """
    _, n_fail, n_err = _counts(report)
    counts = {"tests": str(len(report.points)), "failures": str(n_fail), "errors": str(n_err)}
    time = f"{report.seconds:.3f}"
    root = ET.Element("testsuites", {"name": "heparch replay", **counts, "time": time})
    suite = ET.SubElement(root, "testsuite", {"name": "heparch replay", **counts, "skipped": "0", "time": time})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "bundle", "value": _xml_text(report.bundle)})
    ET.SubElement(props, "property", {"name": "identity", "value": _xml_text(report.identity)})
    for name, (rec, cur) in sorted(report.software.items()):
        ET.SubElement(props, "property", {"name": f"software.{_xml_text(name)}", "value": _xml_text(f"recorded {rec}, running {cur}")})
    for line in _audit_lines(report):
        ET.SubElement(props, "property", {"name": "audit", "value": _xml_text(line)})
    for p in report.points:
        case = ET.SubElement(suite, "testcase", {"classname": _xml_text(p.likelihood), "name": _xml_text(p.point), "time": f"{p.seconds:.3f}"})
        status = _status(p)
        if status == "fail":
            lines = _failure_lines(p)
            kind = "claim-at-local-minimum" if p.local_minimum is not None else "mismatch"
            el = ET.SubElement(case, "failure", {"message": _xml_text("; ".join(lines)), "type": kind})
            el.text = _xml_text("\n".join(lines))
        elif status == "error":
            text = p.error or "no replayed values"
            first = next((line for line in text.splitlines() if line.strip()), text)
            el = ET.SubElement(case, "error", {"message": _xml_text(first), "type": "computation"})
            el.text = _xml_text(text)
    if report.software:
        ET.SubElement(suite, "system-out").text = _xml_text("software differing from the claims:\n" + "\n".join(_software_lines(report)))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


# --- SVG plot -----------------------------------------------------------------------------

_NAVY = "#1f4e9c"
_RED = "#d62728"
_AMBER = "#e69f00"
#: PRGn, colour-blind safe diverging scale: purple = replayed lower, green = replayed higher
_DIVERGING = ("#762a83", "#af8dc3", "#e7d4e8", "#f7f7f7", "#d9f0d3", "#7fbf7b", "#1b7837")

_W, _H = 1160, 600
_TOP, _BOTTOM = 46, 446  # plot area rows
_PANEL_X = ((76, 506), (636, 1066))  # plot area columns of the two panels

_SVG_STYLE = f"""
text{{font:13px 'DejaVu Sans',Verdana,sans-serif;fill:#222}}
.title{{font-weight:bold;font-size:14px}}
.tick{{font-size:11.5px;fill:#444}}
.bg{{fill:#fbfbfb;stroke:#888}}
.grid{{stroke:#e4e4e4;stroke-width:1}}
.axis{{stroke:#444;stroke-width:1;fill:none}}
.ce{{fill:{_NAVY};stroke:{_NAVY};stroke-width:1.5}}
.cn{{fill:#fff;stroke:{_NAVY};stroke-width:1.5}}
.re{{fill:{_NAVY}}}
.rn{{fill:#fff}}
.dot{{fill:{_NAVY};stroke:#fff;stroke-width:0.8;fill-opacity:0.85}}
.ring-fail{{fill:none;stroke:{_RED};stroke-width:2.5}}
.ring-flip{{fill:none;stroke:{_AMBER};stroke-width:2.5}}
.cross{{stroke:{_RED};stroke-width:2.2;fill:none}}
.cell{{stroke:#9a9a9a;stroke-width:0.6}}
.level{{stroke:#777;stroke-dasharray:5 4;fill:none}}
.diag{{stroke:#444;stroke-width:1;fill:none}}
.flipzone{{fill:{_AMBER};fill-opacity:0.12;stroke:none}}
.note{{font-size:12px;fill:#555}}
"""


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _diverging(s: float) -> str:
    """Colour of ``s`` in [-1, 1] on the diverging scale (0 = near white)."""
    u = (min(max(s, -1.0), 1.0) + 1) / 2 * (len(_DIVERGING) - 1)
    i = min(int(u), len(_DIVERGING) - 2)
    f = u - i
    a, b = _hex(_DIVERGING[i]), _hex(_DIVERGING[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def _n(x: float) -> str:
    """A coordinate as short text."""
    return f"{x:.1f}".removesuffix(".0")


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e5:
        return f"{v:.6g}"
    text = f"{v:.3g}"
    if "e" not in text:
        return text
    m, e = text.split("e")
    return f"{m}e{int(e)}"


@dataclasses.dataclass(frozen=True)
class _Scale:
    """Data to pixels on one axis: ``lin``, ``log`` (lo > 0) or ``sym`` (symmetric log, lo = -hi, linear within ``lin``)."""

    kind: str
    lo: float
    hi: float
    p0: float
    p1: float
    lin: float = 1.0

    def unit(self, v: float) -> float:
        if self.kind == "log":
            u = (math.log10(max(v, self.lo)) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        elif self.kind == "sym":
            u = (_symlog(v, self.lin, self.hi) + 1) / 2
        else:
            u = (v - self.lo) / (self.hi - self.lo)
        return min(max(u, 0.0), 1.0) if math.isfinite(u) else 0.5  # an overflowing span must not make a NaN coordinate

    def __call__(self, v: float) -> float:
        return self.p0 + (self.p1 - self.p0) * self.unit(v)

    def ticks(self) -> list[tuple[float, str]]:
        if self.kind == "log":
            k0, k1 = math.ceil(math.log10(self.lo) - 1e-9), math.floor(math.log10(self.hi) + 1e-9)
            step = max(1, math.ceil((k1 - k0 + 1) / 7))
            return [(10.0**k, _fmt_tick(10.0**k)) for k in range(k1, k0 - 1, -step)][::-1]
        if self.kind == "sym":
            decades = round(math.log10(self.hi / self.lin))
            step = 1 if decades <= 3 else 2
            mags = [self.hi / 10.0**k for k in range(0, decades + 1, step)]
            return [(-m, _fmt_tick(-m)) for m in mags] + [(0.0, "0")] + [(m, "+" + _fmt_tick(m)) for m in reversed(mags)]
        return [(v, _fmt_tick(v)) for v in _nice_ticks(self.lo, self.hi)]


def _symlog(x: float, lin: float, top: float) -> float:
    """Symmetric log in [-1, 1]: linear for |x| <= lin (a band of width 1/(decades+1)), log above, clipped at ``top``."""
    decades = max(math.log10(top / lin), 1e-9)
    w = 1 / (decades + 1)
    a = abs(x)
    s = w * a / lin if a <= lin else w + (1 - w) * min(1.0, math.log10(a / lin) / decades)
    return math.copysign(min(s, 1.0), x)


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round values in [lo, hi]; at most ``2 n + 1``, distinct, and never a loop over float steps.

    Ticks are integer multiples ``k * step`` for a range of ``k`` computed up front, so a step below the
    float spacing of ``lo`` (1e16 + 4) cannot stall the loop, and a span below the smallest normal float
    (subnormal values) gives no ticks rather than a math domain error.
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return []
    span = hi - lo
    if span == math.inf:  # both near the float limit: tick the halves
        return [2 * v for v in _nice_ticks(lo / 2, hi / 2, n)]
    if span / n < sys.float_info.min:
        return []
    raw = span / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    k0, k1 = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if not 0 <= k1 - k0 <= 2 * n:
        return []
    # round away the float noise of k * step (0.30000000000000004) at a precision relative to the step
    digits = max(0, 2 - math.floor(math.log10(step)))
    ticks = (round(k * step, digits) + 0.0 for k in range(k0, k1 + 1))
    return sorted({v for v in ticks if lo - 1e-9 * span <= v <= hi + 1e-9 * span})


def _padded(values: Sequence[float]) -> tuple[float, float]:
    """An axis range around ``values``; values a tick label cannot tell apart (relative 1e-9) count as one."""
    lo, hi = min(values), max(values)
    scale = max(abs(lo), abs(hi))
    distinct = hi - lo > max(1e-9 * scale, 64 * sys.float_info.min)
    pad = (hi - lo) * 0.07 if distinct else max(1.0, 0.1 * scale)
    return (lo - pad, hi + pad) if math.isfinite(hi - lo + 2 * pad) else (lo, hi)


def _log_range(values: Iterable[float | None]) -> tuple[float, float]:
    pos = [v for v in values if v is not None and v > 0]
    lo = max(min(pos, default=1e-3), 1e-12)
    hi = max(max(pos, default=1.0), 1.0)
    return 10.0 ** math.floor(math.log10(lo) - 0.05), 10.0 ** math.ceil(math.log10(hi))


def _diff_scale(diffs: Iterable[float | None], p0: float, p1: float) -> _Scale:
    top_data = max((abs(d) for d in diffs if d is not None), default=0.0)
    top = min(max(10.0 ** math.ceil(math.log10(top_data)) if top_data > 0 else 0.0, 1e-4), 1.0)
    return _Scale("sym", -top, top, p0, p1, lin=top * 1e-5)


def _el(parent: ET.Element, tag: str, attrs: Mapping[str, str | float] | None = None, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v if isinstance(v, str) else _n(v) for k, v in (attrs or {}).items()})
    if text is not None:
        el.text = _xml_text(text)
    return el


def _frame(svg: ET.Element, pid: str, title: str, x: _Scale, y: _Scale, xtitle: str, ytitle: str) -> ET.Element:
    """A panel: background, grid, ticks, axis titles; returns the group to draw markers into."""
    g = _el(svg, "g", {"id": pid, "class": "panel"})
    x0, x1, y0, y1 = x.p0, x.p1, y.p1, y.p0
    _el(g, "text", {"x": x0, "y": _TOP - 14, "class": "title"}, title)
    _el(g, "rect", {"class": "bg", "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    ticks = _el(g, "g", {"class": "ticks"})
    for v, label in x.ticks():
        px = x(v)
        _el(ticks, "line", {"class": "grid", "x1": px, "x2": px, "y1": y0, "y2": y1})
        _el(ticks, "line", {"class": "axis", "x1": px, "x2": px, "y1": y1, "y2": y1 + 5})
        _el(ticks, "text", {"class": "tick", "x": px, "y": y1 + 19, "text-anchor": "middle"}, label)
    for v, label in y.ticks():
        py = y(v)
        _el(ticks, "line", {"class": "grid", "x1": x0, "x2": x1, "y1": py, "y2": py})
        _el(ticks, "line", {"class": "axis", "x1": x0 - 5, "x2": x0, "y1": py, "y2": py})
        _el(ticks, "text", {"class": "tick", "x": x0 - 8, "y": py + 4, "text-anchor": "end"}, label)
    _el(g, "path", {"class": "axis x-axis", "d": f"M{_n(x0)} {_n(y1)}H{_n(x1)}"})
    _el(g, "path", {"class": "axis y-axis", "d": f"M{_n(x0)} {_n(y0)}V{_n(y1)}"})
    _el(g, "text", {"class": "axis-title", "x": (x0 + x1) / 2, "y": y1 + 40, "text-anchor": "middle"}, xtitle)
    _el(
        g,
        "text",
        {"class": "axis-title", "x": x0 - 56, "y": (y0 + y1) / 2, "text-anchor": "middle", "transform": f"rotate(-90 {_n(x0 - 56)} {_n((y0 + y1) / 2)})"},
        ytitle,
    )
    return g


def _cross(parent: ET.Element, cx: float, cy: float, r: float) -> None:
    _el(parent, "path", {"class": "cross", "d": f"M{_n(cx - r)} {_n(cy - r)}L{_n(cx + r)} {_n(cy + r)}M{_n(cx - r)} {_n(cy + r)}L{_n(cx + r)} {_n(cy - r)}"})


def _ring(parent: ET.Element, p: PointOutcome, cx: float, cy: float, r: float) -> None:
    """The red ring of a failed point, else the amber ring of a point whose exclusion flipped."""
    if not p.passed:
        _el(parent, "circle", {"class": "ring-fail", "cx": cx, "cy": cy, "r": r + 3})
    elif _flipped(p):
        _el(parent, "circle", {"class": "ring-flip", "cx": cx, "cy": cy, "r": r + 3})


def _tooltip(p: PointOutcome, labels: tuple[str, str] | None) -> str:
    where = ""
    if labels:
        vals = [_finite(p.values.get(label)) for label in labels]
        where = " (" + ", ".join(f"{label}={_g(v, 'g')}" for label, v in zip(labels, vals, strict=True)) + ")"
    c, r, d = _cls(p.claimed), _cls(p.replayed), _difference(p)
    text = f"{p.key}{where}: CLs_obs claimed {_g(c)}, replayed {_g(r) or 'none'}"
    if d is not None:
        text += f", difference {d:+.3g}"
    status = _status(p)
    return text + ("" if status == "pass" else f" [{status.upper()}: {_failure_lines(p)[0]}]")


def _point_group(parent: ET.Element, p: PointOutcome, labels: tuple[str, str] | None) -> ET.Element:
    cls = {"pass": "point", "fail": "point failed", "error": "point errored"}[_status(p)]
    g = _el(parent, "g", {"class": cls + (" flipped" if _flipped(p) else "")})
    _el(g, "title", None, _tooltip(p, labels))
    return g


def _radius(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Marker radius from the typical spacing of the grid in pixels."""

    def gap(vs: Sequence[float]) -> float:
        u = sorted({round(v, 1) for v in vs})
        gaps = sorted(b - a for a, b in itertools.pairwise(u) if b - a > 0.5)
        return gaps[len(gaps) // 2] if gaps else 60.0

    return min(max(0.42 * min(gap(xs), gap(ys)), 2.5), 9.0)


def _legend_item(svg: ET.Element, x: float, y: float, label: str, draw: str) -> None:
    g = _el(svg, "g", {"class": "legend-item"})
    r = 7.0
    if draw in ("both", "neither", "claimed-only", "replayed-only"):
        _el(g, "circle", {"class": "ce" if draw in ("both", "claimed-only") else "cn", "cx": x, "cy": y, "r": r})
        _el(g, "circle", {"class": "re" if draw in ("both", "replayed-only") else "rn", "cx": x, "cy": y, "r": r * 0.5})
    elif draw == "dot":
        _el(g, "circle", {"class": "dot", "cx": x, "cy": y, "r": 4.5})
    elif draw in ("fail", "flip", "dot-fail", "dot-flip"):
        kind = draw.removeprefix("dot-")
        if kind == draw:
            _el(g, "circle", {"class": "cn", "cx": x, "cy": y, "r": r})
        else:
            _el(g, "circle", {"class": "dot", "cx": x, "cy": y, "r": 4.5})
        _el(g, "circle", {"class": f"ring-{kind}", "cx": x, "cy": y, "r": (r if kind == draw else 4.5) + 3})
    elif draw == "cross":
        _cross(g, x, y, r * 0.8)
    elif draw == "zone":
        _el(g, "rect", {"class": "flipzone", "x": x - 8, "y": y - 7, "width": 16, "height": 14, "style": "fill-opacity:0.35"})
    elif draw == "level":
        _el(g, "path", {"class": "level", "d": f"M{_n(x - 10)} {_n(y)}H{_n(x + 10)}"})
    _el(g, "text", {"x": x + 15, "y": y + 4.5}, label)


def _legend(svg: ET.Element, items: Sequence[tuple[str, str]], x0: float, y0: float, col_w: float, per_row: int) -> None:
    for i, (label, draw) in enumerate(items):
        _legend_item(svg, x0 + (i % per_row) * col_w, y0 + (i // per_row) * 24, label, draw)


def _colour_bar(svg: ET.Element, scale: _Scale, x: float) -> None:
    g = _el(svg, "g", {"id": "colour-bar"})
    steps = 60
    top, bottom = scale.p1, scale.p0
    h = (bottom - top) / steps
    for i in range(steps):
        s = 1 - 2 * (i + 0.5) / steps
        _el(g, "rect", {"x": x, "y": top + i * h, "width": 16, "height": h + 0.3, "fill": _diverging(s)})
    _el(g, "rect", {"x": x, "y": top, "width": 16, "height": bottom - top, "fill": "none", "stroke": "#888"})
    for v, label in scale.ticks():
        py = scale(v)
        _el(g, "line", {"class": "axis", "x1": x + 16, "x2": x + 20, "y1": py, "y2": py})
        _el(g, "text", {"class": "tick", "x": x + 23, "y": py + 4}, label)


def _level(report: ReplayReport) -> float:
    levels = collections.Counter(p.level for p in report.points)
    return levels.most_common(1)[0][0] if levels else 0.05


def _plane_points(report: ReplayReport) -> list[tuple[PointOutcome, float, float]]:
    if report.labels is None:
        return []
    a, b = report.labels
    out = []
    for p in report.points:
        x, y = _finite(p.values.get(a)), _finite(p.values.get(b))
        if x is not None and y is not None:
            out.append((p, x, y))
    return out


def _svg_root() -> ET.Element:
    svg = ET.Element(
        "svg",
        {"xmlns": "http://www.w3.org/2000/svg", "viewBox": f"0 0 {_W} {_H}", "width": str(_W), "height": str(_H), "role": "img", "class": "replay-plot"},
    )
    _el(svg, "style", None, _SVG_STYLE)
    return svg


def _plane_svg(report: ReplayReport, placed: list[tuple[PointOutcome, float, float]]) -> ET.Element:
    """Two panels over the (label1, label2) plane: exclusion claimed vs replayed, and the CLs_obs difference."""
    assert report.labels is not None
    la, lb = report.labels
    level = _level(report)
    xr, yr = _padded([x for _, x, _ in placed]), _padded([y for _, _, y in placed])
    svg = _svg_root()
    diffs = [_difference(p) for p, _, _ in placed]
    panels = []
    for pid, (c0, c1), title in (
        ("exclusion", _PANEL_X[0], f"Exclusion (CLs_obs < {level:g}): ring = claimed, centre = replayed"),
        ("difference", _PANEL_X[1], "Replayed \u2212 claimed CLs_obs"),
    ):
        xs, ys = _Scale("lin", *xr, c0, c1), _Scale("lin", *yr, _BOTTOM, _TOP)
        panels.append((_frame(svg, pid, title, xs, ys, la, lb), xs, ys))
    (g1, xs1, ys1), (g2, xs2, ys2) = panels
    r = _radius([xs1(x) for _, x, _ in placed], [ys1(y) for _, _, y in placed])
    dscale = _diff_scale(diffs, _BOTTOM, _TOP)
    m1, m2 = _el(g1, "g", {"class": "markers"}), _el(g2, "g", {"class": "markers"})
    # failed points last, so that their rings are drawn on top
    for (p, x, y), d in sorted(zip(placed, diffs, strict=True), key=lambda t: (t[0][0].passed, not _flipped(t[0][0])), reverse=True):
        cx, cy = xs1(x), ys1(y)
        g = _point_group(m1, p, report.labels)
        _el(g, "circle", {"class": "ce" if p.excluded("claimed") else "cn", "cx": cx, "cy": cy, "r": r})
        if p.replayed is None or _cls(p.replayed) is None:
            _cross(g, cx, cy, r * 0.75)
        else:
            _el(g, "circle", {"class": "re" if p.excluded("replayed") else "rn", "cx": cx, "cy": cy, "r": r * 0.5})
        _ring(g, p, cx, cy, r)
        cx, cy = xs2(x), ys2(y)
        g = _point_group(m2, p, report.labels)
        if d is None:
            _cross(g, cx, cy, r * 0.75)
        else:
            _el(g, "rect", {"class": "cell", "x": cx - r, "y": cy - r, "width": 2 * r, "height": 2 * r, "fill": _diverging(_symlog(d, dscale.lin, dscale.hi))})
        if not p.passed:
            _el(g, "rect", {"class": "ring-fail", "x": cx - r - 3, "y": cy - r - 3, "width": 2 * r + 6, "height": 2 * r + 6})
    _colour_bar(svg, dscale, _PANEL_X[1][1] + 14)
    items = [
        ("excluded, both", "both"),
        ("excluded as claimed only", "claimed-only"),
        ("failed tolerance", "fail"),
        ("not excluded, both", "neither"),
        ("excluded in replay only", "replayed-only"),
        ("exclusion differs (within tolerance)", "flip"),
        ("computation failed", "cross"),
    ]
    _legend(svg, items, _PANEL_X[0][0] - 40, _BOTTOM + 76, 205, 3)
    missing = len(report.points) - len(placed)
    note = f"Colour: symmetric log scale, white within \u00b1{_fmt_tick(dscale.lin)}; failed points outlined in red."
    _el(svg, "text", {"class": "note", "x": _PANEL_X[1][0], "y": _BOTTOM + 76}, note)
    notes = [f"{missing} point(s) without {la}/{lb} values are not drawn (see the table)."] if missing else []
    n_like = len({p.likelihood for p, _, _ in placed})
    if n_like > 1:
        notes.append(f"{n_like} likelihoods share the plane: coinciding markers overlap, failed ones on top.")
    for i, text in enumerate(notes):
        _el(svg, "text", {"class": "note", "x": _PANEL_X[1][0], "y": _BOTTOM + 124 + 20 * i}, text)
    return svg


def _scatter_svg(report: ReplayReport) -> ET.Element:
    """Without label axes: replayed vs claimed CLs_obs (log-log, with the diagonal), and the difference vs claimed."""
    level = _level(report)
    pts = [(p, _cls(p.claimed)) for p in report.points]
    lo, hi = _log_range([c for _, c in pts] + [_cls(p.replayed) for p in report.points])
    svg = _svg_root()
    x1 = _Scale("log", lo, hi, *_PANEL_X[0])
    y1 = _Scale("log", lo, hi, _BOTTOM, _TOP)
    g1 = _frame(svg, "exclusion", f"Replayed vs claimed CLs_obs (exclusion: CLs_obs < {level:g})", x1, y1, "claimed CLs_obs", "replayed CLs_obs")
    # the two quadrants where the exclusion status differs, the level lines and the diagonal
    lx, ly = x1(level), y1(level)
    _el(g1, "rect", {"class": "flipzone", "x": x1.p0, "y": y1.p1, "width": lx - x1.p0, "height": ly - y1.p1})
    _el(g1, "rect", {"class": "flipzone", "x": lx, "y": ly, "width": x1.p1 - lx, "height": y1.p0 - ly})
    _el(g1, "path", {"class": "level", "d": f"M{_n(lx)} {_n(y1.p0)}V{_n(y1.p1)}M{_n(x1.p0)} {_n(ly)}H{_n(x1.p1)}"})
    _el(g1, "path", {"class": "diag", "d": f"M{_n(x1.p0)} {_n(y1.p0)}L{_n(x1.p1)} {_n(y1.p1)}"})
    x2 = _Scale("log", lo, hi, *_PANEL_X[1])
    y2 = _diff_scale([_difference(p) for p in report.points], _BOTTOM, _TOP)
    g2 = _frame(svg, "difference", "Replayed \u2212 claimed CLs_obs (symmetric log)", x2, y2, "claimed CLs_obs", "replayed \u2212 claimed")
    _el(g2, "path", {"class": "level", "d": f"M{_n(x2(level))} {_n(y2.p0)}V{_n(y2.p1)}"})
    m1, m2 = _el(g1, "g", {"class": "markers"}), _el(g2, "g", {"class": "markers"})
    r = 4.0
    for p, c in sorted(pts, key=lambda t: (t[0].passed, not _flipped(t[0])), reverse=True):
        rep, d = _cls(p.replayed), _difference(p)
        cx = x1(c) if c is not None else x1.p0
        for panel, cy in ((m1, y1(rep) if rep is not None else None), (m2, y2(d) if d is not None else None)):
            g = _point_group(panel, p, None)
            px = cx if panel is m1 else x2(c) if c is not None else x2.p0
            if cy is None:  # no replayed value: a cross on the bottom edge
                _cross(g, px, _BOTTOM - r, r)
                continue
            _el(g, "circle", {"class": "dot", "cx": px, "cy": cy, "r": r})
            _ring(g, p, px, cy, r)
    items = [
        ("point", "dot"),
        ("failed tolerance", "dot-fail"),
        ("exclusion differs (within tolerance)", "dot-flip"),
        ("computation failed (on the bottom edge)", "cross"),
        ("exclusion differs in this region", "zone"),
        (f"CLs_obs = {level:g}", "level"),
    ]
    _legend(svg, items, _PANEL_X[0][0] - 40, _BOTTOM + 76, 300, 3)
    return svg


def _svg(report: ReplayReport) -> str:
    placed = _plane_points(report)
    svg = _plane_svg(report, placed) if placed else _scatter_svg(report)
    return ET.tostring(svg, encoding="unicode")


# --- HTML ---------------------------------------------------------------------------------

_PAGE_STYLE = """
body{font:14px/1.4 'DejaVu Sans',Verdana,sans-serif;color:#222;margin:16px 20px;max-width:1200px}
h1{font-size:19px;margin:0 0 4px}
h2{font-size:16px;margin:18px 0 6px}
.meta{margin:2px 0;color:#444}
.meta code{font-size:12.5px}
.counts b.fail{color:#b3191b}
.warn{background:#fff4d6;border-left:4px solid #e69f00;padding:4px 8px;margin:6px 0}
figure{margin:6px 0 0}
svg.replay-plot{max-width:100%;height:auto}
figcaption{font-size:12.5px;color:#555;max-width:1100px}
table{border-collapse:collapse;font-size:12.5px}
th,td{padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f1f1f1;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:'DejaVu Sans Mono',monospace}
tr.fail td{background:#fde0df}
tr.error td{background:#fbe3cf}
td.details{font-family:'DejaVu Sans Mono',monospace;white-space:pre-wrap}
"""

_PLANE_CAPTION = (
    "Left: one marker per point; the ring shows the claimed exclusion, the centre the replayed one "
    "(filled = excluded), so a ring with a hole or an empty ring with a dot marks a point whose exclusion "
    "changed. Right: replayed minus claimed observed CLs per point, on a diverging symmetric-log colour "
    "scale: this difference is what moves the exclusion boundary (a point flips when it crosses level - CLs_obs), "
    "it stays defined where the claimed CLs is 0, and the log scale shows numerical noise and real "
    "discrepancies side by side. Hover a marker for its values."
)
_SCATTER_CAPTION = (
    "The points have no label values, so the plot shows replayed against claimed observed CLs (left; "
    "agreement lies on the diagonal, shaded quadrants are where the exclusion status differs) and the "
    "difference against the claimed value (right, symmetric log). Values beyond an axis are drawn on its edge. "
    "Hover a marker for its values."
)


def _e(s: object) -> str:
    return escape(_xml_text(str(s)), quote=True)


def _simplified(p: PointOutcome) -> str:
    if p.simplified is None:
        return ""
    return "error" if "error" in p.simplified else _g(_cls(p.simplified))


def _cells(p: PointOutcome, labels: tuple[str, str] | None, simplified: bool) -> str:
    status = _status(p)
    ratio = _worst_ratio(p)
    tol = _g(ratio, ".3g") if ratio is not None and (status != "pass" or p.ratio is not None) else ("\u2264 1" if status == "pass" else "")
    vals = [_g(_finite(p.values.get(label)), "g") for label in labels] if labels else []
    nums = [*vals, _g(_cls(p.claimed)), _g(_cls(p.replayed)), _g(_difference(p), "+.3g"), tol]
    if simplified:
        nums.append(_simplified(p))
    word = {"pass": "pass", "fail": "FAIL", "error": "ERROR"}[status] if p.local_minimum is None else "claim at a local minimum"
    cells = [f"<td>{_e(p.key)}</td>"] + [f'<td class="num">{_e(v)}</td>' for v in nums]
    cells += [f"<td>{word}</td>", f"<td>{_e(p.backend)}</td>", f'<td class="num">{p.seconds:.3f}</td>']
    row_cls = "" if status == "pass" else f' class="{status}"'
    return f"<tr{row_cls}>{''.join(cells)}</tr>"


def html(report: ReplayReport) -> str:
    """One self-contained HTML page: header, the inline SVG plot, the failed points and a table of all points.

    No external resources and no script: the plot is plain SVG (one ``<g class="point">`` per
    point and panel, with a ``<title>`` tooltip), so the page stays light for thousands of
    points. Every string from the bundle is escaped.
    """
    n_pass, n_fail, n_err = _counts(report)
    total = len(report.points)
    labels = report.labels if _plane_points(report) else None
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>heparch replay: {_e(report.bundle)}</title>",
        f"<style>{_PAGE_STYLE}</style></head><body>",
        f"<h1>heparch replay: {_e(report.bundle)}</h1>",
        f'<p class="meta">identity <code>{_e(report.identity)}</code></p>',
        f'<p class="meta counts">{total} points: <b>{n_pass} passed</b>, <b class="fail">{n_fail + n_err} failed</b>'
        + (f" ({n_err} with a computation error)" if n_err else "")
        + f"; {report.seconds:.3g} s</p>",
    ]
    flipped = [p for p in report.points if _flipped(p)]
    if flipped:
        names = ", ".join(_e(p.key) for p in flipped[:10]) + (", \u2026" if len(flipped) > 10 else "")
        out.append(f'<p class="meta">The exclusion (CLs_obs &lt; level) differs between claimed and replayed at {len(flipped)} point(s): {names}</p>')
    for line in _audit_lines(report):
        out.append(f'<p class="meta audit">{_e(line)}</p>')
    if report.software:
        versions = "; ".join(_e(line) for line in _software_lines(report))
        out.append(f'<p class="warn">Software differs from the versions the claims recorded: {versions}</p>')
    caption = _PLANE_CAPTION if labels else _SCATTER_CAPTION
    out += [f"<figure>{_svg(report)}", f"<figcaption>{_e(caption)}</figcaption></figure>"]
    failed = report.failed
    if failed:
        out.append(f"<h2>Failed points ({len(failed)})</h2><table><tr><th>point</th><th>likelihood</th><th>details</th></tr>")
        for p in failed:
            details = "\n".join(_failure_lines(p))
            out.append(f'<tr class="{_status(p)}"><td>{_e(p.key)}</td><td>{_e(p.likelihood)}</td><td class="details">{_e(details)}</td></tr>')
        out.append("</table>")
    simplified = any(p.simplified is not None for p in report.points)
    heads = [*(labels or ()), "claimed CLs_obs", "replayed CLs_obs", "difference", "|difference| / tolerance"]
    heads += [*(["simplified CLs_obs"] if simplified else []), "result", "backend", "seconds"]
    out.append(f"<h2>All points ({total})</h2><table><tr><th>point</th>{''.join(f'<th>{_e(h)}</th>' for h in heads)}</tr>")
    out += [_cells(p, labels, simplified) for p in report.points]
    out += [
        "</table>",
        '<p class="meta">|difference| / tolerance: the largest over the point\'s compared values; a point passes when it is \u2264 1 for every value.</p>',
        "</body></html>",
        "",
    ]
    return "\n".join(out)


# --- files --------------------------------------------------------------------------------


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file to write the report to")
    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")


def write_reports(report: ReplayReport, *, junit: Path | None, html_path: Path | None) -> None:
    """Write the JUnit XML and/or HTML report, each atomically (a temporary file beside it, then renamed).

    Every target is checked and every document rendered before anything is written; raises
    :class:`~heparch.errors.InputError` with a one-line message when a target's directory does
    not exist, the target is a directory, or the file cannot be written.
    """
    from heparch.store.writer import atomic_output

    jobs: list[tuple[Path, bytes]] = []
    for target, render in ((junit, junit_xml), (html_path, lambda r: html(r).encode("utf-8"))):
        if target is not None:
            _check_target(Path(target))
            jobs.append((Path(target), render(report)))
    for target, data in jobs:
        try:
            with atomic_output(target) as fh:
                fh.write(data)
        except OSError as exc:
            raise InputError(f"{target}: cannot write the report: {exc.strerror or exc}") from exc
