"""Tests of heparch.replay.report: summary table, JUnit XML, the HTML page and its SVG plot, atomic writes."""

from __future__ import annotations

import collections
import json
import math
import os
import re
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heparch.errors import InputError
from heparch.replay import report as rr
from heparch.replay.outcome import Mismatch, PointOutcome, ReplayReport

from clihelp import run
from conftest import small_patchset, small_workspace

SVG = "{http://www.w3.org/2000/svg}"
LIKELIHOOD = "BkgOnly.json"


# --- synthetic reports ------------------------------------------------------------------------


def point(key: str, claimed: float | None, replayed: float | None, *, values: dict[str, float] | None = None, **kw: object) -> PointOutcome:
    args: dict[str, object] = {
        "key": key,
        "likelihood": LIKELIHOOD,
        "point": key,
        "claimed": {} if claimed is None else {"CLs_obs": claimed, "CLs_exp": [claimed] * 5},
        "replayed": None if replayed is None else {"CLs_obs": replayed},
        "passed": True,
        "backend": "fast",
        "seconds": 0.25,
        "values": values or {},
    }
    args.update(kw)
    return PointOutcome(**args)  # type: ignore[arg-type]


FAILING = "pt_500_100"
ERRORED = "pt_600_50"
FLIPPED = "pt_700_200"


def grid(*, labels: bool = True, software: bool = True) -> ReplayReport:
    """A 5x5 m1-m2 grid: one point outside tolerance, one whose fit failed, one whose exclusion flips within tolerance."""
    pts = []
    for i, m1 in enumerate(range(300, 800, 100)):
        for j, m2 in enumerate(range(0, 250, 50)):
            key = f"pt_{m1}_{m2}"
            c = 0.0 if (i, j) == (0, 0) else min(10 ** (-3 + 0.35 * i + 0.3 * j), 0.9)
            r = c * (1 + 1e-4 * ((7 * i + 3 * j) % 5 - 2))
            vals = {"m1": float(m1), "m2": float(m2)} if labels else {}
            if key == FAILING:
                r = c * 1.8
                pts.append(
                    point(key, c, r, values=vals, passed=False, mismatches=(Mismatch("CLs_obs", c, r, 1e-3 * c), Mismatch("CLs_exp[2]", c, r, 1e-3 * c)))
                )
            elif key == ERRORED:
                pts.append(point(key, c, None, values=vals, passed=False, error="RuntimeError: fit did not converge"))
            elif key == FLIPPED:
                pts.append(point(key, 0.04999, 0.05001, values=vals))
            else:
                pts.append(point(key, c, r, values=vals))
    return ReplayReport(
        bundle="ana.zst",
        identity="sha256:0123456789abcdef",
        points=pts,
        seconds=4.2,
        software={"pyhf": ("0.7.6", "0.7.7")} if software else {},
        labels=("m1", "m2") if labels else None,
    )


# --- SVG helpers ----------------------------------------------------------------------------------


def svg_of(page: str) -> ET.Element:
    """The page's inline <svg>, parsed as XML (which also proves it is well-formed)."""
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    return ET.fromstring(page[start:end])


def view_box(svg: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in svg.attrib["viewBox"].split())
    return x, y, w, h


def panel(svg: ET.Element, pid: str) -> ET.Element:
    found = svg.find(f".//{SVG}g[@id='{pid}']")
    assert found is not None, f"panel {pid} missing"
    return found


def markers(pnl: ET.Element) -> list[ET.Element]:
    return [g for g in pnl.iter(f"{SVG}g") if "point" in g.attrib.get("class", "").split()]


def coordinates(el: ET.Element) -> list[tuple[float, float]]:
    """Every (x, y) a marker's shapes use: circle centres and extents, rectangle corners, path vertices."""
    out: list[tuple[float, float]] = []
    for shape in el:
        a = {k: float(v) for k, v in shape.attrib.items() if k in ("cx", "cy", "r", "x", "y", "width", "height")}
        if shape.tag == f"{SVG}circle":
            out += [(a["cx"] - a["r"], a["cy"] - a["r"]), (a["cx"] + a["r"], a["cy"] + a["r"])]
        elif shape.tag == f"{SVG}rect":
            out += [(a["x"], a["y"]), (a["x"] + a["width"], a["y"] + a["height"])]
        elif shape.tag == f"{SVG}path":
            nums = [float(n) for n in re.findall(r"-?[\d.]+(?:e-?\d+)?|nan|inf", shape.attrib["d"])]
            out += list(zip(nums[::2], nums[1::2], strict=True))
    return out


def assert_markers_inside(svg: ET.Element, pid: str, n: int) -> list[ET.Element]:
    x0, y0, w, h = view_box(svg)
    ms = markers(panel(svg, pid))
    assert len(ms) == n
    for m in ms:
        xy = coordinates(m)
        assert xy, f"marker without geometry: {ET.tostring(m)!r}"
        for x, y in xy:
            assert math.isfinite(x)
            assert math.isfinite(y)
            assert x0 <= x <= x0 + w, (x, y)
            assert y0 <= y <= y0 + h, (x, y)
    return ms


# --- summary table --------------------------------------------------------------------------------


def test_summary_table_lists_failures_first_and_names_software() -> None:
    text = rr.summary_table(grid())
    lines = text.splitlines()
    assert lines[1].startswith("FAIL")
    assert FAILING in lines[1]
    assert "CLs_obs" in lines[1]
    assert "CLs_exp[2]" in lines[2]  # the second mismatch of the same point, on its own line
    assert lines[3].startswith("ERROR")
    assert ERRORED in lines[3]
    assert "fit did not converge" in lines[3]
    assert "pyhf: recorded 0.7.6, running 0.7.7" in lines
    assert "passed 23, failed 2 (1 with a computation error), total 25 in 4.2 s" in lines
    assert max(len(line) for line in lines) <= 100


def test_summary_table_caps_rows() -> None:
    lines = rr.summary_table(grid(), max_rows=5).splitlines()
    assert "... 20 more (0 failed, 20 passed)" in lines
    assert sum(line.startswith("ok ") for line in lines) == 3
    assert "... 24 more (1 failed, 23 passed)" in rr.summary_table(grid(), max_rows=1)


def test_summary_table_cuts_long_names_and_errors() -> None:
    long = "x" * 80
    rep = ReplayReport("b", "i", [point(long, 0.1, None, passed=False, error="E" * 300)], 1.0)
    lines = rr.summary_table(rep).splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "\u2026" in lines[1]


# --- JUnit ------------------------------------------------------------------------------------------


def test_junit_one_testcase_per_point_with_failure_and_error() -> None:
    rep = grid()
    root = ET.fromstring(rr.junit_xml(rep))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib["name"] == "heparch replay"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"]) == ("25", "1", "1")
    assert root.attrib["tests"] == "25"
    assert float(suite.attrib["time"]) == pytest.approx(4.2)
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == [p.point for p in rep.points]
    assert {c.attrib["classname"] for c in cases} == {LIKELIHOOD}
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    assert [c.attrib["name"] for c in failures] == [FAILING]
    assert [c.attrib["name"] for c in errors] == [ERRORED]
    failure = failures[0].find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "mismatch"
    assert failure.text is not None
    assert len(failure.text.splitlines()) == 2
    assert failure.text.startswith("CLs_obs: claimed")
    assert "CLs_exp[2]" in failure.attrib["message"]
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert props == {"bundle": "ana.zst", "identity": "sha256:0123456789abcdef", "software.pyhf": "recorded 0.7.6, running 0.7.7"}


def test_junit_exactly_one_failure_for_one_mismatch() -> None:
    pts = [point(f"p{i}", 0.2, 0.2) for i in range(4)]
    pts[2] = point("p2", 0.2, 0.3, passed=False, mismatches=(Mismatch("CLs_obs", 0.2, 0.3, 2e-4),))
    root = ET.fromstring(rr.junit_xml(ReplayReport("b.zst", "sha256:00", pts, 1.0)))
    assert len(root.findall(".//failure")) == 1
    assert not root.findall(".//error")
    assert root.find("testsuite").attrib["failures"] == "1"  # type: ignore[union-attr]


def test_junit_is_deterministic_and_valid_for_hostile_names() -> None:
    rep = ReplayReport("b", "i", [point("a\x1b[31m<&>\x00\ud800", 0.1, None, passed=False, error="\nbad \x07 thing\nmore")], 1.0)
    data = rr.junit_xml(rep)
    assert data == rr.junit_xml(rep)
    case = ET.fromstring(data).find(".//testcase")
    assert case is not None
    assert case.attrib["name"] == "a\ufffd[31m<&>\ufffd\ufffd"
    error = case.find("error")
    assert error is not None
    assert error.attrib["message"] == "bad \ufffd thing"
    assert rr.html(rep).encode("utf-8")  # the page too holds no lone surrogate


# --- HTML and its SVG -----------------------------------------------------------------------------


def test_html_svg_has_geometry_for_every_point() -> None:
    rep = grid()
    svg = svg_of(rr.html(rep))
    for pid in ("exclusion", "difference"):
        pnl = panel(svg, pid)
        assert pnl.find(f"{SVG}path[@class='axis x-axis']") is not None
        assert pnl.find(f"{SVG}path[@class='axis y-axis']") is not None
        texts = [t.text for t in pnl.iter(f"{SVG}text")]
        assert "m1" in texts
        assert "m2" in texts
        assert len([t for t in pnl.iter(f"{SVG}text") if t.attrib.get("class") == "tick"]) >= 6
        ms = assert_markers_inside(svg, pid, len(rep.points))
        by_key = {m.findtext(f"{SVG}title", "").split(" ")[0]: m for m in ms}
        assert "failed" in by_key[FAILING].attrib["class"]
        assert "errored" in by_key[ERRORED].attrib["class"]
        assert by_key[ERRORED].find(f"{SVG}path[@class='cross']") is not None
        assert by_key[FLIPPED].attrib["class"] == "point flipped"
    exclusion = markers(panel(svg, "exclusion"))
    assert sum(m.find(f"{SVG}circle[@class='ring-fail']") is not None for m in exclusion) == 2
    assert sum(m.find(f"{SVG}circle[@class='ring-flip']") is not None for m in exclusion) == 1
    cells = [r.attrib["fill"] for m in markers(panel(svg, "difference")) for r in m.iter(f"{SVG}rect") if r.attrib.get("class") == "cell"]
    assert len(cells) == 24
    assert len(set(cells)) > 3
    assert svg.find(f".//{SVG}g[@id='colour-bar']") is not None
    assert len(svg.findall(f".//{SVG}g[@class='legend-item']")) == 7


def test_html_fallback_plot_without_labels() -> None:
    rep = grid(labels=False)
    page = rr.html(rep)
    svg = svg_of(page)
    for pid in ("exclusion", "difference"):
        ms = assert_markers_inside(svg, pid, len(rep.points))
        assert sum(m.find(f"{SVG}path[@class='cross']") is not None for m in ms) == 1
    assert panel(svg, "exclusion").find(f"{SVG}path[@class='diag']") is not None
    assert "<th>m1</th>" not in page


def test_html_points_without_label_values_are_counted_not_drawn() -> None:
    rep = grid()
    pts = [*rep.points, point("no-values", 0.3, 0.3)]
    page = rr.html(ReplayReport(rep.bundle, rep.identity, pts, 1.0, labels=("m1", "m2")))
    svg = svg_of(page)
    assert len(markers(panel(svg, "exclusion"))) == 25
    assert "1 point(s) without m1/m2 values are not drawn" in page


@pytest.mark.parametrize(
    ("claimed", "replayed"),
    [(0.0, 0.0), (1.0, 1.0), (float("nan"), 0.1), (0.1, float("inf")), (None, 0.2), (1e-300, 1e-300)],
)
def test_html_odd_values_stay_inside(claimed: float | None, replayed: float | None) -> None:
    for values in ({"m1": 100.0, "m2": 100.0}, {}):
        rep = ReplayReport("b", "i", [point("a", claimed, replayed, values=values), point("b", 0.5, 0.5, values=values)], 1.0, labels=("m1", "m2"))
        svg = svg_of(rr.html(rep))
        assert_markers_inside(svg, "exclusion", 2)
        assert_markers_inside(svg, "difference", 2)


finite = st.floats(allow_nan=False, allow_infinity=False)
cls = st.one_of(st.none(), st.floats(min_value=0, max_value=1), st.sampled_from([float("nan"), float("inf"), -1.0, 2.0]))


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(cls, cls, finite, finite, st.booleans()), min_size=1, max_size=12), st.booleans())
def test_html_markers_inside_for_any_values(rows: Sequence[tuple[float | None, float | None, float, float, bool]], labels: bool) -> None:
    pts = [
        point(f"p{i}", c, r, values={"m1": x, "m2": y}, passed=ok and r is not None, error=None if r is not None else "E")
        for i, (c, r, x, y, ok) in enumerate(rows)
    ]
    svg = svg_of(rr.html(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2") if labels else None)))
    assert_markers_inside(svg, "exclusion", len(pts))
    assert_markers_inside(svg, "difference", len(pts))


# values a tick loop over float steps never leaves, or that reach log10(0): equal, nearly equal,
# subnormal, huge, negative, mixed-sign; one point, two collinear points
AXIS_CASES = [
    [1e16, 1e16 + 2],
    [1e16, 1e16 + 4],
    [0.3, 0.1 + 0.2],
    [0.0, 5e-324],
    [5e-324],
    [-5e-324, 5e-324],
    [7.0],
    [7.0, 7.0],
    [-1e308, 1e308],
    [-1.7976931348623157e308, 1.7976931348623157e308],
    [1e-300, 2e-300],
    [2.2250738585072014e-308, 3e-308],
    [-3.0, -2.0],
    [-1e-9, 1e16],
    [1e300, 1e308],
]


@pytest.mark.parametrize("values", AXIS_CASES)
def test_axis_range_and_ticks_end_for_any_finite_values(values: list[float]) -> None:
    lo, hi = rr._padded(values)
    assert math.isfinite(lo)
    assert math.isfinite(hi)
    assert lo <= min(values)
    assert max(values) <= hi
    ticks = rr._nice_ticks(lo, hi)
    assert len(ticks) <= 13
    assert ticks == sorted(set(ticks))
    assert all(lo - 1e-9 * (hi - lo) <= t <= hi + 1e-9 * (hi - lo) for t in ticks)
    if hi - lo < 1e300 and hi - lo > 1e-290:  # an ordinary range gets ticks
        assert len(ticks) >= 3


@settings(max_examples=200)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4))
def test_axis_ticks_terminate_and_stay_bounded(values: list[float]) -> None:
    lo, hi = rr._padded(values)
    ticks = rr._nice_ticks(lo, hi)
    assert len(ticks) <= 13
    assert ticks == sorted(set(ticks))


@pytest.mark.parametrize("values", AXIS_CASES)
def test_html_for_degenerate_label_values(values: list[float]) -> None:
    # two points per value: one pair at each value, the other axis an ordinary grid
    pts = [point(f"p{i}", 0.01, 0.01, values={"m1": v, "m2": float(i)}) for i, v in enumerate(values * 2)]
    svg = svg_of(rr.html(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))))
    assert_markers_inside(svg, "exclusion", len(pts))


@pytest.mark.parametrize(
    "first",
    [lambda i: 1e16 + (i % 2) * 2, lambda i: 0.3 + (i % 2) * 1e-16, lambda i: (i % 2) * 5e-324],
    ids=["huge-nearly-equal", "rounding", "subnormal"],
)
def test_replay_html_on_bundle_with_degenerate_label_values(tmp_path: Path, first: Callable[[int], float]) -> None:
    """The CLI end to end: build, claim and ``replay --html`` finish, exit 0, and draw every point."""
    src = tmp_path / "ana"
    src.mkdir()
    ws = small_workspace()
    ps = small_patchset(ws)
    template = ps["patches"][0]
    ps["patches"] = [{"metadata": {"name": f"pt{i}", "values": [first(i), i]}, "patch": json.loads(json.dumps(template["patch"]))} for i in range(6)]
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(ps))
    bundle, claimed, page = tmp_path / "b.zst", tmp_path / "claimed.zst", tmp_path / "replay.html"
    assert run("build", str(src), "-o", str(bundle))[0] == 0
    code, _, err = run("claim", str(bundle), "-o", str(claimed), "--jobs", "1", "--audit", "0")
    assert code == 0, err
    started = time.monotonic()
    code, _, err = run("replay", str(claimed), "--jobs", "1", "--html", str(page))
    assert code == 0, err
    assert time.monotonic() - started < 120  # "in seconds"; the limit only catches a hang
    assert_markers_inside(svg_of(page.read_text(encoding="utf-8")), "exclusion", 6)


def test_html_escapes_point_names() -> None:
    evil = '<script>alert("x")</script>'
    rep = ReplayReport(
        f"{evil}.zst", evil, [point(evil, 0.1, 0.1, values={"m1": 1.0, evil: 2.0}, backend=evil)], 1.0, software={evil: (evil, evil)}, labels=("m1", evil)
    )
    page = rr.html(rep)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    svg = svg_of(page)
    assert any(t.text == evil for t in svg.iter(f"{SVG}text"))  # the axis title, escaped in the markup


def test_html_header_table_and_self_contained() -> None:
    rep = grid()
    page = rr.html(rep)
    assert page.startswith("<!DOCTYPE html>")
    assert "ana.zst" in page
    assert "sha256:0123456789abcdef" in page
    assert "pyhf: recorded 0.7.6, running 0.7.7" in page
    assert "<b>23 passed</b>" in page
    assert "2 failed" in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]  # only the SVG namespace
    assert "<link" not in page
    assert "<script" not in page
    assert "@import" not in page
    assert "url(" not in page
    table = page[page.index("<h2>All points") :]
    assert table.count("<tr") == len(rep.points) + 1
    assert table.count('<tr class="fail">') == 1
    assert table.count('<tr class="error">') == 1
    assert "<th>m1</th><th>m2</th><th>claimed CLs_obs</th>" in table


def test_html_stays_light_for_thousands_of_points() -> None:
    pts = [
        point(f"pt_{i}_{j}", 10 ** (-(i + j) / 30), 10 ** (-(i + j) / 30) * 1.00001, values={"m1": i * 25.0, "m2": j * 25.0})
        for i in range(60)
        for j in range(50)
    ]
    start = time.perf_counter()
    page = rr.html(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
    assert time.perf_counter() - start < 10
    assert len(page) / len(pts) < 1500  # bytes per point: two markers with tooltips and a table row
    assert len(markers(panel(svg_of(page), "difference"))) == 3000


# --- writing ---------------------------------------------------------------------------------------


def test_write_reports_writes_both(tmp_path: Path) -> None:
    rep = grid()
    rr.write_reports(rep, junit=tmp_path / "r.xml", html_path=tmp_path / "r.html")
    assert (tmp_path / "r.xml").read_bytes() == rr.junit_xml(rep)
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == rr.html(rep)
    rr.write_reports(rep, junit=None, html_path=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.xml"]


def test_write_reports_refuses_missing_directory_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing/r\.xml: directory .*missing does not exist"):
        rr.write_reports(grid(), junit=tmp_path / "missing" / "r.xml", html_path=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()  # nothing is written when one target is bad
    with pytest.raises(InputError, match="is a directory"):
        rr.write_reports(grid(), junit=None, html_path=tmp_path)


def test_write_reports_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.html"
    target.write_text("old report")

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InputError, match=r"r\.html: cannot write the report: No space left on device$"):
        rr.write_reports(grid(), junit=None, html_path=target)
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert target.read_text() == "old report"


# --- a real browser -----------------------------------------------------------------------------


def _browser() -> str | None:
    return next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA non-interlaced PNG, with zlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), "only 8-bit non-interlaced PNGs"
    assert colour in (2, 6), "only RGB and RGBA PNGs"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp], prev[i], prev[i - bpp]) if i >= bpp else (0, prev[i], 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def test_browser_renders_a_plot(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install chromium)")
    page, shot = tmp_path / "report.html", tmp_path / "shot.png"
    page.write_text(rr.html(grid()), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    cmd += [f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 900)
    # the plot: below the header (about 130 px), above the bottom of the window
    region = [row[3 * 20 : 3 * 1180] for row in rows[140:720]]
    pixels = collections.Counter(row[i : i + 3] for row in region for i in range(0, len(row), 3))
    total = sum(pixels.values())
    assert (total - pixels[b"\xff\xff\xff"]) / total > 0.3  # panels, grid, markers, legend: not a blank page
    assert len({bytes(v // 16 for v in p) for p in pixels}) > 40

    def near(rgb: tuple[int, int, int]) -> int:
        return sum(n for p, n in pixels.items() if all(abs(a - b) < 24 for a, b in zip(p, rgb, strict=True)))

    assert near((0x1F, 0x4E, 0x9C)) > 2000  # excluded markers (navy)
    assert near((0xD6, 0x27, 0x28)) > 100  # rings and crosses of failed points (red)
    assert near((0xE6, 0x9F, 0x00)) > 30  # the ring of the flipped point (amber)
    assert near((0x1B, 0x78, 0x37)) + near((0x76, 0x2A, 0x83)) > 100  # the difference colour scale
