"""Tests of heparch.replay.report: summary table, JUnit XML, the HTML page and its SVG plot, atomic writes."""

from __future__ import annotations

import collections
import dataclasses
import itertools
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
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heparch.errors import InputError
from heparch.replay import plot
from heparch.replay import report as rr
from heparch.replay.outcome import Mismatch, PointOutcome, ReplayReport, Values

from clihelp import run
from conftest import ONE_LBB, small_patchset, small_workspace

SVG = "{http://www.w3.org/2000/svg}"
LIKELIHOOD = "BkgOnly.json"


# --- synthetic reports ------------------------------------------------------------------------


def point(key: str, claimed: float | None, replayed: float | None, *, values: dict[str, float] | None = None, **kw: object) -> PointOutcome:
    """A point whose claimed CLs_obs and CLs_exp are ``claimed`` and replayed CLs_obs is ``replayed``."""
    args: dict[str, object] = {
        "key": key,
        "likelihood": LIKELIHOOD,
        "point": key,
        "claimed": None if claimed is None else Values(claimed, (claimed,) * 5),
        "replayed": None if replayed is None else Values(replayed, ()),
        "passed": True,
        "backend": "fast",
        "seconds": 0.25,
        "values": values or {},
    }
    args.update(kw)
    return PointOutcome(**args)


def full_point(key: str, claimed: dict[str, object], replayed: dict[str, object], values: dict[str, float], **kw: object) -> PointOutcome:
    """A passing point with the given claimed and replayed values (all fields)."""
    args: dict[str, object] = {"likelihood": LIKELIHOOD, "passed": True, "backend": "fast", "seconds": 0.25, **kw}
    return PointOutcome(key=key, point=key, claimed=Values.from_json(claimed), replayed=Values.from_json(replayed), values=values, **args)  # type: ignore[arg-type]


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


def svgs_of(page: str) -> dict[str, ET.Element]:
    """The page's inline <svg> figures by their <figure id>, parsed as XML (which also proves them well-formed)."""
    out = {}
    for m in re.finditer(r'<figure id="([a-z-]+)">(<svg.*?</svg>)', page, re.S):
        out[m.group(1)] = ET.fromstring(m.group(2))
    return out


def view_box(svg: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in svg.attrib["viewBox"].split())
    return x, y, w, h


def by_id(svg: ET.Element, gid: str) -> ET.Element | None:
    return svg.find(f".//{SVG}g[@id='{gid}']")


def ids(svg: ET.Element) -> set[str]:
    return {g.attrib["id"] for g in svg.iter(f"{SVG}g") if "id" in g.attrib}


XLINK = "{http://www.w3.org/1999/xlink}href"


def _numbers(d: str) -> list[tuple[float, float]]:
    nums = [float(n) for n in re.findall(r"-?[\d.]+(?:e-?\d+)?", d)]
    return list(zip(nums[::2], nums[1::2], strict=True))


def marker_elements(svg: ET.Element, gid: str) -> list[ET.Element]:
    """The markers of a scatter drawn with SVG id ``gid``: matplotlib writes ``<use>`` of a shared
    path for many markers and a ``<path>`` each for a few."""
    group = by_id(svg, gid)
    if group is None:
        return []
    defs = {id(el) for d in group.iter(f"{SVG}defs") for el in d.iter()}
    return [el for el in group.iter() if el.tag in (f"{SVG}use", f"{SVG}path") and id(el) not in defs]


def marker_shape(svg: ET.Element, el: ET.Element) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """A marker's centre and its outline's vertices relative to the centre."""
    if el.tag == f"{SVG}use":
        ref = svg.find(f".//{SVG}path[@id='{el.attrib[XLINK][1:]}']")
        assert ref is not None
        return (float(el.attrib["x"]), float(el.attrib["y"])), _numbers(ref.attrib["d"])
    xy = _numbers(el.attrib["d"])
    cx, cy = sum(x for x, _ in xy) / len(xy), sum(y for _, y in xy) / len(xy)
    return (cx, cy), [(x - cx, y - cy) for x, y in xy]


def uses(svg: ET.Element, gid: str) -> list[tuple[float, float]]:
    """The marker positions of a scatter drawn with SVG id ``gid`` (none when it has no markers)."""
    return [(float(el.attrib["x"]), float(el.attrib["y"])) if el.tag == f"{SVG}use" else marker_shape(svg, el)[0] for el in marker_elements(svg, gid)]


POINT_GROUPS = ("points-both", "points-neither", "points-claimed-only", "points-replayed-only", "points-error")


def assert_markers_inside(svg: ET.Element, n: int) -> None:
    """One marker per point in the point view, every one finite and inside the figure."""
    x0, y0, w, h = view_box(svg)
    found = [xy for gid in POINT_GROUPS for xy in uses(svg, gid)]
    assert len(found) == n
    for x, y in found:
        assert math.isfinite(x)
        assert math.isfinite(y)
        assert x0 <= x <= x0 + w, (x, y)
        assert y0 <= y <= y0 + h, (x, y)


def texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


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


# --- HTML and its figures -------------------------------------------------------------------------


def test_html_point_view_has_a_marker_per_point() -> None:
    rep = grid()
    figs = svgs_of(rr.html(rep))
    assert set(figs) == {"fig-exclusion", "fig-points"}  # no upper limits claimed: no map
    svg = figs["fig-points"]
    assert_markers_inside(svg, len(rep.points))
    assert len(uses(svg, "points-error")) == 1
    assert len(uses(svg, "points-failed")) == 2  # the mismatch and the computation error
    assert len(uses(svg, "points-flipped")) == 1
    assert len(uses(svg, "points-claimed-only")) == 1  # FLIPPED: 0.04999 claimed, 0.05001 replayed
    assert len(uses(svg, "difference-cells")) == 24
    fills = {el.attrib["style"] for el in marker_elements(svg, "difference-cells")}
    assert len(fills) > 3  # a colour scale, not one colour
    words = texts(svg)
    assert "m1" in words
    assert "m2" in words
    assert plot.DISCLAIMER in words


def test_difference_cells_show_the_ratio_to_the_tolerance_where_recorded() -> None:
    pts = [point(f"p{i}", 0.2, 0.2 + d, values={"m1": float(i), "m2": 0.0 if i < 2 else 1.0}, ratio=abs(d) / 1e-3) for i, d in enumerate((-2e-3, 5e-4, 1e-6))]
    assert [plot.signed_ratio(p) for p in pts] == pytest.approx([-2.0, 0.5, 1e-3])
    words = texts(ET.fromstring(plot.figure_svg(plot.points_figure(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))))))
    assert any("/ tolerance" in w for w in words)
    assert "+1" in words  # the tolerance on the colour bar
    assert "-1" in words
    without = [dataclasses.replace(p, ratio=None) for p in pts]
    words = texts(ET.fromstring(plot.figure_svg(plot.points_figure(ReplayReport("b", "i", without, 1.0, labels=("m1", "m2"))))))
    assert not any("/ tolerance" in w for w in words)
    assert any(w.startswith("replayed \u2212 claimed CLs_obs") for w in words)


def test_point_markers_have_hover_text() -> None:
    rep = grid()
    svg = svgs_of(rr.html(rep))["fig-points"]
    titles = {el.findtext(f"{SVG}title", ""): el for gid in POINT_GROUPS for el in marker_elements(svg, gid)}
    assert len(titles) == len(rep.points)
    by_key = {t.split(" ")[0]: t for t in titles}
    assert by_key[FAILING].startswith(f"{FAILING} (m1=500, m2=100): CLs_obs claimed")
    assert "[FAIL: CLs_obs: claimed" in by_key[FAILING]
    assert "[not computed: RuntimeError: fit did not converge]" in by_key[ERRORED]
    assert not by_key["pt_300_50"].endswith("]")  # a passing point: no reason given


def test_claimed_only_and_replayed_only_markers_differ_in_shape_and_colour() -> None:
    pts = [point("c", 0.04, 0.06, values={"m1": 1.0, "m2": 1.0}), point("r", 0.06, 0.04, values={"m1": 2.0, "m2": 1.0})]
    svg = svgs_of(rr.html(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))))["fig-points"]
    claimed_only = by_id(svg, "points-claimed-only")
    replayed_only = by_id(svg, "points-replayed-only")
    assert claimed_only is not None
    assert replayed_only is not None
    (c,), (r,) = marker_elements(svg, "points-claimed-only"), marker_elements(svg, "points-replayed-only")

    def apex_below(el: ET.Element) -> bool:
        """A triangle whose single apex is at the bottom (SVG y grows downwards)."""
        corners = {(round(x, 3), round(y, 3)) for x, y in marker_shape(svg, el)[1]}
        ys = [y for _, y in corners]
        assert len(corners) == 3
        return ys.count(max(ys)) == 1 and ys.count(min(ys)) == 2

    assert apex_below(c)
    assert not apex_below(r)
    fill = re.compile(r"fill: (#[0-9a-f]{6})")
    colours = {m.group(1) for u in (c, r) if (m := fill.search(u.attrib["style"]))}
    assert colours == {plot.AMBER, plot.PURPLE}


def test_html_fallback_plot_without_labels() -> None:
    rep = grid(labels=False)
    page = rr.html(rep)
    figs = svgs_of(page)
    assert set(figs) == {"fig-points"}
    assert_markers_inside(figs["fig-points"], len(rep.points))
    assert len(uses(figs["fig-points"], "points-error")) == 1
    assert "<th>m1</th>" not in page


def test_html_points_without_label_values_are_counted_not_drawn() -> None:
    rep = grid()
    pts = [*rep.points, point("no-values", 0.3, 0.3)]
    page = rr.html(ReplayReport(rep.bundle, rep.identity, pts, 1.0, labels=("m1", "m2")))
    assert_markers_inside(svgs_of(page)["fig-points"], 25)
    assert "1 point(s) without m1/m2 values are not drawn" in page


@pytest.mark.parametrize(
    ("claimed", "replayed"),
    [(0.0, 0.0), (1.0, 1.0), (float("nan"), 0.1), (0.1, float("inf")), (None, 0.2), (1e-300, 1e-300)],
)
def test_html_odd_values_stay_inside(claimed: float | None, replayed: float | None) -> None:
    for values in ({"m1": 100.0, "m2": 100.0}, {}):
        pts = [point("a", claimed, replayed, values=values), point("b", 0.5, 0.5, values=values)]
        fig = plot.points_figure(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
        assert_markers_inside(ET.fromstring(plot.figure_svg(fig)), 2)


finite = st.floats(allow_nan=False, allow_infinity=False)
cls = st.one_of(st.none(), st.floats(min_value=0, max_value=1), st.sampled_from([float("nan"), float("inf"), -1.0, 2.0]))


@pytest.mark.slow
@settings(max_examples=12, deadline=timedelta(seconds=30), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(cls, cls, finite, finite, st.booleans()), min_size=1, max_size=12), st.booleans())
def test_figures_render_for_any_values(rows: Sequence[tuple[float | None, float | None, float, float, bool]], labels: bool) -> None:
    """Every finite label value and every CLs (none, NaN, out of range) renders, every point inside the figure."""
    pts = [
        point(f"p{i}", c, r, values={"m1": x, "m2": y}, passed=ok and r is not None, error=None if r is not None else "E")
        for i, (c, r, x, y, ok) in enumerate(rows)
    ]
    rep = ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2") if labels else None)
    assert_markers_inside(ET.fromstring(plot.figure_svg(plot.points_figure(rep))), len(pts))
    assert ET.fromstring(plot.figure_svg(plot.exclusion_figure(rep).figure)) is not None


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
    lo, hi = plot.padded(values)
    assert math.isfinite(lo)
    assert math.isfinite(hi)
    assert lo <= min(values)
    assert max(values) <= hi
    ticks = plot.nice_ticks(lo, hi)
    assert len(ticks) <= 13
    assert ticks == sorted(set(ticks))
    assert all(lo - 1e-9 * (hi - lo) <= t <= hi + 1e-9 * (hi - lo) for t in ticks)
    if hi - lo < 1e300 and hi - lo > 1e-290:  # an ordinary range gets ticks
        assert len(ticks) >= 3


@settings(max_examples=200, deadline=timedelta(seconds=1))
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4))
def test_axis_ticks_terminate_and_stay_bounded(values: list[float]) -> None:
    """The axes of the plots: any finite values map into [0, 1] and get at most 13 distinct ticks, also in [0, 1]."""
    axis = plot.AxisMap.of(values)
    ticks = plot.nice_ticks(axis.lo, axis.hi)
    assert len(ticks) <= 13
    assert ticks == sorted(set(ticks))
    for v in values:
        assert 0.0 <= axis.unit(v) <= 1.0
    assert all(-1e-6 <= u <= 1 + 1e-6 for u, _ in axis.ticks())


@pytest.mark.parametrize("values", AXIS_CASES)
def test_html_for_degenerate_label_values(values: list[float]) -> None:
    # two points per value: one pair at each value, the other axis an ordinary grid
    pts = [point(f"p{i}", 0.01, 0.01, values={"m1": v, "m2": float(i)}) for i, v in enumerate(values * 2)]
    rep = ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))
    assert_markers_inside(ET.fromstring(plot.figure_svg(plot.points_figure(rep))), len(pts))


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
    assert_markers_inside(svgs_of(page.read_text(encoding="utf-8"))["fig-points"], 6)


def test_replay_plot_and_axis_titles_from_arch_yaml(analysis: Path, tmp_path: Path) -> None:
    """analysis.axes in arch.yaml enters the manifest (no unknown-field warning) and titles the
    axes of the page and of --plot; a --plot without a known suffix is exit 2 before any work."""
    (analysis / "arch.yaml").write_text('analysis:\n  license: CC-BY-4.0\n  axes:\n    m1: "m(chargino) [GeV]"\n')
    bundle, claimed = tmp_path / "b.zst", tmp_path / "claimed.zst"
    code, _, err = run("build", str(analysis), "-o", str(bundle))
    assert code == 0, err
    assert "axes" not in err
    assert run("claim", str(bundle), "-o", str(claimed), "--jobs", "1", "--audit", "0")[0] == 0
    page, pdf, svg = tmp_path / "r.html", tmp_path / "exclusion.pdf", tmp_path / "exclusion.svg"
    code, _, err = run("replay", str(claimed), "--jobs", "1", "--html", str(page), "--plot", str(pdf))
    assert code == 0, err
    assert pdf.read_bytes().startswith(b"%PDF")
    figs = svgs_of(page.read_text(encoding="utf-8"))
    assert "m(chargino) [GeV]" in texts(figs["fig-exclusion"])
    assert "m2" in texts(figs["fig-exclusion"])  # no title given: the label
    code, _, err = run("verify", "--replay", str(claimed), "--jobs", "1", "--plot", str(svg))
    assert code == 0, err
    assert "m(chargino) [GeV]" in texts(ET.fromstring(svg.read_bytes()))
    code, _, err = run("replay", str(claimed), "--plot", str(tmp_path / "exclusion.jpg"))
    assert code == 2
    assert "--plot" in err
    assert "use .pdf, .png or .svg" in err
    code, _, err = run("verify", str(claimed), "--plot", str(svg))
    assert code == 2
    assert "--plot: a replay option; add --replay" in err


def test_manifest_axes_must_be_strings(analysis: Path, tmp_path: Path) -> None:
    (analysis / "arch.yaml").write_text("analysis:\n  axes:\n    m1: 300\n")
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert "arch.yaml:$.analysis.axes.m1: 300 is not of type 'string'" in err


def test_html_escapes_point_names() -> None:
    evil = '<script>alert("x")</script>'
    rep = ReplayReport(
        f"{evil}.zst", evil, [point(evil, 0.1, 0.1, values={"m1": 1.0, evil: 2.0}, backend=evil)], 1.0, software={evil: (evil, evil)}, labels=("m1", evil)
    )
    page = rr.html(rep)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert evil in texts(svgs_of(page)["fig-points"])  # the axis title, escaped in the markup


def test_html_header_table_and_self_contained() -> None:
    rep = grid()
    page = rr.html(rep)
    assert page.startswith("<!DOCTYPE html>")
    assert "ana.zst" in page
    assert "sha256:0123456789abcdef" in page
    assert "pyhf: recorded 0.7.6, running 0.7.7" in page
    assert "<b>23 passed</b>" in page
    assert "2 failed" in page
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}  # namespaces only
    assert "<link" not in page
    assert "<script" not in page
    assert "@import" not in page
    assert re.findall(r"url\(([^#][^)]*)\)", page) == []  # references within the page (clip paths, hatches) only
    assert plot.DISCLAIMER in page
    all_ids = re.findall(r'\bid="([^"]+)"', page)
    duplicated = [i for i, n in collections.Counter(all_ids).items() if n > 1]
    assert all(re.fullmatch(r"[a-zA-Z][0-9a-f]{10}|C[0-9]+_[0-9]+_[0-9a-f]{10}", i) for i in duplicated), duplicated  # only matplotlib's content hashes recur
    referenced = set(re.findall(r'(?:href="|url\()#([^")]+)', page))
    assert referenced <= set(all_ids)
    table = page[page.index("<h2>All points") :]
    assert table.count("<tr") == len(rep.points) + 1
    assert table.count('<tr class="fail">') == 1
    assert table.count('<tr class="error">') == 1
    assert "<th>m1</th><th>m2</th><th>claimed CLs_obs</th>" in table


@pytest.mark.slow
def test_html_stays_light_for_ten_thousand_points() -> None:
    pts = [
        point(f"pt_{i}_{j}", 10 ** (-(i + j) / 60), 10 ** (-(i + j) / 60) * 1.00001, values={"m1": i * 25.0, "m2": j * 25.0})
        for i in range(100)
        for j in range(100)
    ]
    start = time.perf_counter()
    page = rr.html(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
    assert time.perf_counter() - start < 60  # a hang, not a benchmark (benchmarks/bench_report.py times it)
    assert len(page) / len(pts) < 1500  # bytes per point: markers in two figures and a table row
    figs = svgs_of(page)
    assert len(uses(figs["fig-points"], "difference-cells")) == 10_000
    assert_markers_inside(figs["fig-points"], 10_000)
    assert {"obs-contour-replayed-r0", "obs-contour-claimed-r0"} <= ids(figs["fig-exclusion"])


# --- exclusion contours --------------------------------------------------------------------------

LBB_AXES = {"m1": "m(chargino) [GeV]", "m2": "m(neutralino) [GeV]"}


def lbb_report(*, shift: float = 1.25, with_ul: bool = False) -> ReplayReport:
    """The 1Lbb points from stored values: claimed = pyhf's reference CLs, replayed = those x ``shift``
    (so the replayed contours move visibly), label values from the patchset, axis titles set."""
    reference = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text())["points"]
    patchset = json.loads((ONE_LBB / "patchset.json").read_text())
    labels = patchset["metadata"]["labels"]
    values = {p["metadata"]["name"]: dict(zip(labels, map(float, p["metadata"]["values"]), strict=True)) for p in patchset["patches"]}
    pts = []
    for name, ref in sorted(reference.items()):
        replayed = {"CLs_obs": min(ref["CLs_obs"] * shift, 1.0), "CLs_exp": [min(v * shift, 1.0) for v in ref["CLs_exp"]]}
        claimed = dict(ref)
        if with_ul:
            claimed["mu_up_obs"] = replayed["mu_up_obs"] = 0.3 + 3 * ref["CLs_obs"]
        pts.append(full_point(name, claimed, replayed, values[name], backend="stored"))
    return ReplayReport("1lbb.zst", "sha256:stored", pts, 1.0, labels=(labels[0], labels[1]), axes=LBB_AXES)


def crossing(lines: Sequence[Sequence[tuple[float, float]]], a: tuple[float, float], b: tuple[float, float]) -> list[float]:
    """Where the polylines meet the segment a-b, as fractions t of the way from a to b. A contour over a
    triangulation has its vertices on the triangles' edges, so on an edge a-b it has a vertex."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    found = []
    for line in lines:
        for x, y in line:
            t = ((x - a[0]) * dx + (y - a[1]) * dy) / length2
            off = abs((x - a[0]) * dy - (y - a[1]) * dx) / math.sqrt(length2)
            if 0 < t < 1 and off < 1e-9:
                found.append(t)
    return found


def polylines(contour_set: object) -> list[list[tuple[float, float]]]:
    """The vertices of a contour set's paths, split at MOVETO codes."""
    from matplotlib.path import Path as MplPath

    out: list[list[tuple[float, float]]] = []
    for path in contour_set.get_paths():  # type: ignore[attr-defined]
        for vertices, code in path.iter_segments(simplify=False):
            if code == MplPath.MOVETO or not out:
                out.append([])
            out[-1].append((float(vertices[-2]), float(vertices[-1])))
    return out


def neighbours_across(report: ReplayReport, which: str) -> list[tuple[PointOutcome, PointOutcome]]:
    """Pairs of points with the same m2 and consecutive m1, one excluded and one allowed (``which`` values)."""
    rows: dict[float, list[PointOutcome]] = collections.defaultdict(list)
    for p in report.points:
        rows[p.values["m2"]].append(p)
    pairs = []
    for row in rows.values():
        row.sort(key=lambda p: p.values["m1"])
        pairs += [(p, q) for p, q in itertools.pairwise(row) if p.excluded(which) != q.excluded(which)]
    return pairs


@pytest.fixture(scope="module")
def lbb_page() -> str:
    return rr.html(lbb_report(with_ul=True))


def test_1lbb_report_has_contours_band_and_axis_titles(lbb_page: str) -> None:
    figs = svgs_of(lbb_page)
    assert set(figs) == {"fig-exclusion", "fig-upper-limits", "fig-points"}
    found = ids(figs["fig-exclusion"])
    for kind in ("obs-contour", "exp-contour", "exp-band"):
        for which in ("replayed", "claimed"):
            assert f"{kind}-{which}-r0" in found, kind
    for svg in figs.values():
        words = texts(svg)
        assert LBB_AXES["m1"] in words
        assert LBB_AXES["m2"] in words
        assert plot.DISCLAIMER in words
    assert len(uses(figs["fig-upper-limits"], "ul-map")) == 125
    assert_markers_inside(figs["fig-points"], 125)


@pytest.mark.parametrize("which", ["replayed", "claimed"])
def test_1lbb_observed_contour_passes_between_excluded_and_allowed_neighbours(which: str) -> None:
    """Numerically, on the path's vertices: the observed contour crosses the segment between two
    neighbouring points on either side of the level, where log10(CLs) interpolates to log10(level)."""
    rep = lbb_report()
    drawn = plot.exclusion_figure(rep)
    assert drawn.x is not None
    assert drawn.y is not None
    lines = polylines(drawn.artists[f"obs-contour-{which}-r0"])
    tri = plot._triangulation(plot._unique(plot.placed_points(rep)[0]))
    assert tri is not None
    edges = {(round(float(tri.x[i]), 9), round(float(tri.y[i]), 9), round(float(tri.x[j]), 9), round(float(tri.y[j]), 9)) for i, j in tri.edges}
    edges |= {(c, d, a, b) for a, b, c, d in edges}

    def is_edge(p: PointOutcome, q: PointOutcome) -> bool:
        a, b = (drawn.x.unit(p.values["m1"]), drawn.y.unit(p.values["m2"])), (drawn.x.unit(q.values["m1"]), drawn.y.unit(q.values["m2"]))  # type: ignore[union-attr]
        return (round(a[0], 9), round(a[1], 9), round(b[0], 9), round(b[1], 9)) in edges

    pairs = [(p, q) for p, q in neighbours_across(rep, which) if is_edge(p, q)]  # interpolated along the edge: the crossing is exact
    assert len(pairs) >= 3
    for p, q in pairs:
        a = (drawn.x.unit(p.values["m1"]), drawn.y.unit(p.values["m2"]))
        b = (drawn.x.unit(q.values["m1"]), drawn.y.unit(q.values["m2"]))
        hits = crossing(lines, a, b)
        assert hits, f"no {which} contour between {p.key} and {q.key}"
        src = [p.claimed if which == "claimed" else p.replayed, q.claimed if which == "claimed" else q.replayed]
        za, zb = (math.log10(s.cls_obs) for s in src)  # type: ignore[union-attr]
        t = (math.log10(0.05) - za) / (zb - za)  # log10(CLs) interpolated linearly along the edge
        assert any(abs(got - t) < 1e-6 for got in hits), (p.key, q.key, hits, t)


def test_contour_is_drawn_at_the_claims_level_not_at_005() -> None:
    # CLs = 10^-(m1/100) on a 6x4 grid: at level 0.1 the boundary is m1 = 100, at 0.05 m1 = 130.1
    pts = [
        point(f"p{m1}_{m2}", 10 ** (-m1 / 100), 10 ** (-m1 / 100), values={"m1": float(m1), "m2": float(m2)}, level=0.1)
        for m1 in range(0, 300, 50)
        for m2 in range(0, 200, 50)
    ]
    drawn = plot.exclusion_figure(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
    assert drawn.x is not None
    xs = {round(x, 9) for line in polylines(drawn.artists["obs-contour-replayed-r0"]) for x, _ in line}
    assert xs == {round(drawn.x.unit(100.0), 9)}


def test_several_likelihoods_get_their_contours_and_the_best_expected_combination() -> None:
    # region A is better (smaller expected CLs) at m1 < 150, region B above
    pts = []
    for lik, slope in (("A.json", -1), ("B.json", 1)):
        for m1 in range(0, 300, 50):
            for m2 in range(0, 200, 50):
                e = 10 ** (-1.3 + slope * (150 - m1) / 100)
                both = {"CLs_obs": e, "CLs_exp": [e] * 5}
                pts.append(full_point(f"{lik}:{m1}_{m2}", both, both, {"m1": float(m1), "m2": float(m2)}, likelihood=lik))
    rep = ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))
    chosen = plot.best_expected(plot.placed_points(rep)[0], "replayed")
    assert len(chosen) == 24
    assert {q.outcome.likelihood for q in chosen if q.x < 150} == {"A.json"}
    assert {q.outcome.likelihood for q in chosen if q.x > 150} == {"B.json"}
    found = set(plot.exclusion_figure(rep).artists)
    for suffix in ("r0", "r1", "combined"):
        assert f"obs-contour-replayed-{suffix}" in found
        assert f"exp-contour-claimed-{suffix}" in found


ROBUST = {
    "one point": [(1.0, 1.0)],
    "two collinear": [(1.0, 1.0), (2.0, 2.0)],
    "collinear line": [(float(i), 3.0) for i in range(6)],
    "huge": [(1e300 * i, -1e300 * j) for i in range(3) for j in range(3)],
    "tiny": [(1e-300 * i, 5e-324 * j) for i in range(3) for j in range(3)],
    "nearly equal": [(1e16 + 2 * i, 0.3 + 1e-16 * j) for i in range(3) for j in range(3)],
    "negative": [(-5.0 - i, -1e-3 * j) for i in range(3) for j in range(3)],
}


#: the layouts whose positions do not span a plane (tiny: y values closer than a tick can tell apart count as one)
FLAT = {"one point", "two collinear", "collinear line", "tiny", "nearly equal"}


def rendered(fig: object) -> list[bytes]:
    """The figure's RGB pixels, drawn by Agg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # type: ignore[arg-type]
    canvas.draw()
    data = bytes(canvas.buffer_rgba())
    return [data[i : i + 3] for i in range(0, len(data), 4)]


@pytest.mark.parametrize("case", sorted(ROBUST))
def test_exclusion_plot_renders_for_any_layout(case: str) -> None:
    """Every layout writes a non-blank PNG; where the points do not span a plane the contour is skipped with a note."""
    pts = [point(f"p{i}", 10 ** (-i / 3), 10 ** (-i / 3), values={"m1": x, "m2": y}) for i, (x, y) in enumerate(ROBUST[case])]
    rep = ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2"))
    drawn = plot.exclusion_figure(rep)
    pixels = rendered(drawn.figure)
    assert len({bytes(p) for p in pixels[::97]}) > 10  # axes, ticks, text, markers: not blank
    assert sum(p[0] < 200 for p in pixels) > 2000
    if case in FLAT:
        assert any("do not span a plane" in n for n in drawn.notes), drawn.notes
    else:
        assert drawn.notes == []
        assert "obs-contour-replayed-r0" in drawn.artists


@pytest.mark.parametrize("uls", [(5e-324,), (1e308,), (1.0,), (5e-324, 1.7976931348623157e308), (0.5, 0.5000001), (-1.0, 2.0)])
def test_upper_limit_map_for_any_positive_limits(uls: tuple[float, ...]) -> None:
    pts = [
        full_point(f"a{i}", {"CLs_obs": 0.1, "CLs_exp": [0.1] * 5, "mu_up_obs": ul}, {"CLs_obs": 0.1, "CLs_exp": [0.1] * 5}, {"m1": 1.0 + i, "m2": 2.0})
        for i, ul in enumerate(uls)
    ]
    fig = plot.upper_limit_figure(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
    assert fig is not None
    assert len(uses(ET.fromstring(plot.figure_svg(fig)), "ul-map")) == sum(ul > 0 for ul in uls)  # a negative limit is not drawn


def test_no_upper_limit_map_without_upper_limits() -> None:
    assert plot.upper_limit_figure(grid()) is None


def test_level_outside_0_1_gives_a_note_not_a_crash() -> None:
    pts = [point(f"p{i}", 0.01 * i, 0.01 * i, values={"m1": float(i % 3), "m2": float(i // 3)}, level=0.0) for i in range(9)]
    drawn = plot.exclusion_figure(ReplayReport("b", "i", pts, 1.0, labels=("m1", "m2")))
    assert drawn.notes == ["no contour: the claims' CLs level 0 is not between 0 and 1"]
    assert drawn.artists == {}


def test_write_plot_formats_and_determinism(tmp_path: Path) -> None:
    rep = grid()
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF"), (".png", b"\x89PNG")):
        target = tmp_path / f"exclusion{suffix}"
        plot.write_plot(rep, target)
        first = target.read_bytes()
        assert first.startswith(magic)
        plot.write_plot(rep, target)
        assert target.read_bytes() == first, suffix  # no date, fixed ids
    with pytest.raises(InputError, match=r"plot .*exclusion\.jpg: the format comes from the suffix; use \.pdf, \.png or \.svg"):
        plot.write_plot(rep, tmp_path / "exclusion.jpg")
    assert rr.html(rep) == rr.html(rep)


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


def test_browser_renders_the_figures(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (Debian: apt-get install chromium)")
    page, shot = tmp_path / "report.html", tmp_path / "shot.png"
    page.write_text(rr.html(grid()), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    cmd += [f"--screenshot={shot}", "--window-size=1200,1500", page.as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 1500)
    # the figures: below the header (about 150 px), to the bottom of the window (the point view starts near 700 px)
    region = [row[3 * 20 : 3 * 1180] for row in rows[150:1500:2]]
    pixels = collections.Counter(row[i : i + 3] for row in region for i in range(0, len(row), 6))
    total = sum(pixels.values())
    assert (total - pixels[b"\xff\xff\xff"]) / total > 0.05  # axes, contours, markers, legends: not a blank page
    assert len({bytes(v // 16 for v in p) for p in pixels}) > 40

    def near(rgb: tuple[int, int, int]) -> int:
        return sum(n for p, n in pixels.items() if all(abs(a - b) < 24 for a, b in zip(p, rgb, strict=True)))

    assert near((0x1F, 0x4E, 0x9C)) > 1000  # contours and excluded markers (navy)
    assert near((0xD6, 0x27, 0x28)) > 50  # rings and crosses of failed points (red)
    assert near((0xE6, 0x9F, 0x00)) > 30  # the flipped point (amber triangle and square)
    assert near((0x1B, 0x78, 0x37)) + near((0x76, 0x2A, 0x83)) + near((0x40, 0x00, 0x4B)) + near((0x00, 0x44, 0x1B)) > 50  # the difference colour scale
