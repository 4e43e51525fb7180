"""The replay report's figures, drawn with matplotlib (imported here, and only when a figure is made).

Three figures of a :class:`~heparch.replay.outcome.ReplayReport`:

* :func:`exclusion_figure`: over the plane of the patchset's two label axes, per likelihood, the
  observed exclusion contour at the claims' CLs level, the expected (median) contour and its
  +-1 sigma band, claimed (dashed, hatched band) and replayed (solid, filled band) together;
  with several likelihoods also the combination that takes, at each point, the likelihood with
  the smallest expected CLs. Contours interpolate log10(CLs) linearly over a Delaunay
  triangulation of the points (in axis units scaled to [0, 1], so m1 and m2 weigh alike).
  Without label axes it shows replayed against claimed CLs_obs instead.
* :func:`upper_limit_figure`: the observed upper limit on the signal strength per point, when
  upper limits were claimed or replayed.
* :func:`points_figure`: the point-by-point view: claimed against replayed exclusion per
  point (distinct markers for "excluded as claimed only" and "excluded in replay only") and
  each point's difference as a fraction of its tolerance (where the replay recorded it, else
  the replayed minus claimed observed CLs) on a diverging colour scale.

Artists carry SVG ids (``Artist.set_gid``), so a test or a reader can find them in the SVG:

======================================  =========================================================
``obs-contour-{replayed,claimed}-rN``   observed contour of likelihood N (``rN``; in the order of
                                        the report), or ``-combined`` for the best-expected choice
``exp-contour-{replayed,claimed}-rN``   expected (median) contour
``exp-band-{replayed,claimed}-rN``      the region between the -1 and +1 sigma expected contours
``ul-map``                              the observed upper limits (markers coloured by value)
``points-{both,neither,claimed-only,    the point view's marker groups: one of the first five per
replayed-only,error,failed,flipped}``   point; rings of failed points, squares of flipped ones
``difference-cells``                    the point view's difference cells (``difference-failed``:
                                        their red outlines; ``difference-missing``: not computed)
======================================  =========================================================

Every figure says "replay by heparch, not an official result". Output is deterministic:
text stays text (``svg.fonttype = none``), a fixed ``svg.hashsalt``, no date in the metadata.
Label values can be any finite floats: positions are mapped to [0, 1] per axis with the
overflow-free :class:`AxisMap`, whose ticks come from :func:`nice_ticks` (a bounded loop).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import itertools
import math
import re
import sys
import warnings
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heparch.errors import InputError
from heparch.replay.outcome import PointOutcome, ReplayReport, Values
from heparch.store.writer import atomic_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes  # matplotlib (~0.5 s): only when a plot is drawn
    from matplotlib.figure import Figure  # matplotlib (~0.5 s): only when a plot is drawn
    from matplotlib.tri import Triangulation  # matplotlib (~0.5 s): only when a plot is drawn

__all__ = [
    "DISCLAIMER",
    "AxisMap",
    "Contours",
    "best_expected",
    "exclusion_figure",
    "figure_svg",
    "nice_ticks",
    "padded",
    "placed_points",
    "points_figure",
    "signed_ratio",
    "upper_limit_figure",
    "write_plot",
]

DISCLAIMER = "replay by heparch, not an official result"
PLOT_FORMATS = (".pdf", ".png", ".svg")

NAVY = "#1f4e9c"
RED = "#d62728"
AMBER = "#e69f00"
PURPLE = "#7b3294"
GREY = "#8a8a8a"
#: one colour per likelihood (region); the combination is drawn in black
REGION_COLOURS = (NAVY, "#1b7837", "#8c510a", PURPLE, "#c51b7d", "#01665e", "#4d4d4d")
#: CLs below this are drawn as this (log10 of 0 is not a number)
CLS_FLOOR = 1e-12

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "heparch-replay",
    "svg.id": "",
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.5,
    "axes.linewidth": 0.8,
    "axes.edgecolor": "#444444",
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "hatch.linewidth": 0.6,
    "path.simplify": False,
}

#: the hover text of each marker of a figure's marker groups, by SVG id, in drawing order (figure_svg adds them)
_TITLES: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"

# --- text and numbers ---------------------------------------------------------------------

#: what XML 1.0 cannot hold, and lone surrogates (the SVG would not parse, or not encode)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(s: str) -> str:
    """``s`` with the characters XML 1.0 forbids replaced by U+FFFD (names come from user files)."""
    return _NOT_XML.sub("\ufffd", s)


def finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def cls_of(src: Values | None, index: int | None = None) -> float | None:
    """The observed CLs (``CLs_exp[index]`` when ``index`` is given) of claimed or replayed values, if finite."""
    if src is None:
        return None
    if index is None:
        return finite(src.cls_obs)
    return finite(src.cls_exp[index]) if len(src.cls_exp) > index else None


def fmt_tick(v: float) -> str:
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


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round values in [lo, hi]; at most ``2 n + 1``, distinct, and never a loop over float steps.

    Ticks are integer multiples ``k * step`` for a range of ``k`` computed up front, so a step below the
    float spacing of ``lo`` (1e16 + 4) cannot stall the loop, and a span below the smallest normal float
    (subnormal values) gives no ticks rather than a math domain error.
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return []
    span = hi - lo
    if span == math.inf:  # both near the float limit: tick the halves
        return [2 * v for v in nice_ticks(lo / 2, hi / 2, n)]
    if span / n < sys.float_info.min:
        return []
    return _multiples(lo, hi, _tick_step(span / n), 2 * n)


def _multiples(lo: float, hi: float, step: float, most: int) -> list[float]:
    """The multiples of ``step`` in [lo, hi], none when there would be more than ``most + 1``."""
    span = hi - lo
    k0, k1 = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    if not 0 <= k1 - k0 <= most:
        return []
    # round away the float noise of k * step (0.30000000000000004) at a precision relative to the step
    digits = max(0, 2 - math.floor(math.log10(step)))
    ticks = (round(k * step, digits) + 0.0 for k in range(k0, k1 + 1))
    return sorted({v for v in ticks if lo - 1e-9 * span <= v <= hi + 1e-9 * span})


def _tick_step(raw: float) -> float:
    """The round step (1, 2, 2.5 or 5 times a power of ten) at or just above ``raw``."""
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))


def padded(values: Sequence[float]) -> tuple[float, float]:
    """An axis range around ``values``; values a tick label cannot tell apart (relative 1e-9) count as one."""
    lo, hi = min(values), max(values)
    scale = max(abs(lo), abs(hi))
    distinct = hi - lo > max(1e-9 * scale, 64 * sys.float_info.min)
    pad = (hi - lo) * 0.07 if distinct else max(1.0, 0.1 * scale)
    return (lo - pad, hi + pad) if math.isfinite(hi - lo + 2 * pad) else (lo, hi)


@dataclasses.dataclass(frozen=True)
class AxisMap:
    """A data axis mapped onto [0, 1] (the padded range of the values), computed without overflow.

    matplotlib draws in these units, so any finite values plot (a span of 3.6e308 overflows
    matplotlib's own transforms); the ticks are placed at :func:`nice_ticks` of the data range.
    """

    lo: float
    hi: float

    @classmethod
    def of(cls, values: Sequence[float]) -> AxisMap:
        return cls(*padded(values))

    def unit(self, v: float) -> float:
        den = self.hi * 0.5 - self.lo * 0.5
        return (v * 0.5 - self.lo * 0.5) / den if den > 0 else 0.5

    def ticks(self) -> list[tuple[float, str]]:
        return [(self.unit(v), fmt_tick(v)) for v in nice_ticks(self.lo, self.hi)]


# --- the data of the plane ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Placed:
    """A point with label values: its outcome and its position in axis units."""

    outcome: PointOutcome
    x: float
    y: float
    u: float
    v: float


def placed_points(report: ReplayReport) -> tuple[list[Placed], AxisMap | None, AxisMap | None]:
    """The points with finite values of both labels, and the two axes (None without such points)."""
    if report.labels is None:
        return [], None, None
    xy = _with_label_values(report.points, report.labels)
    if not xy:
        return [], None, None
    xs, ys = AxisMap.of([x for _, x, _ in xy]), AxisMap.of([y for _, _, y in xy])
    return [Placed(p, x, y, xs.unit(x), ys.unit(y)) for p, x, y in xy], xs, ys


def _with_label_values(points: Sequence[PointOutcome], labels: tuple[str, str]) -> list[tuple[PointOutcome, float, float]]:
    """The points with finite values of both labels, and those values."""
    a, b = labels
    raw = [(p, finite(p.values.get(a)), finite(p.values.get(b))) for p in points]
    return [(p, x, y) for p, x, y in raw if x is not None and y is not None]


def level_of(report: ReplayReport) -> float:
    """The claims' CLs level (``settings.level`` of the results; the most common one if they differ)."""
    levels = collections.Counter(p.level for p in report.points)
    return levels.most_common(1)[0][0] if levels else 0.05


def axis_title(report: ReplayReport, label: str) -> str:
    """The title of a label axis: ``analysis.axes[label]`` of the manifest, else the label."""
    return clean(report.axes.get(label) or label)


def regions(placed: Sequence[Placed]) -> list[tuple[str, list[Placed]]]:
    """The points grouped by likelihood, in the order the report has them."""
    groups: dict[str, list[Placed]] = {}
    for q in placed:
        groups.setdefault(q.outcome.likelihood, []).append(q)
    return list(groups.items())


def best_expected(placed: Sequence[Placed], which: str) -> list[Placed]:
    """Per position, the point of the likelihood with the smallest expected (median) CLs (the usual
    best-expected-region choice), by the ``which`` (claimed or replayed) values."""
    best: dict[tuple[float, float], tuple[float, Placed]] = {}
    for q in placed:
        src = q.outcome.claimed if which == "claimed" else q.outcome.replayed
        e = cls_of(src, 2)
        if e is None:
            continue
        key = (q.x, q.y)
        if key not in best or e < best[key][0]:
            best[key] = (e, q)
    return [q for _, q in best.values()]


# --- matplotlib ---------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib as mpl  # matplotlib (~0.5 s): only when a plot is drawn

    with mpl.rc_context(_RC), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no contour levels", tight-layout hints: the figure says what it skips
        yield


def _figure(width: float, height: float, **margins: float) -> Figure:
    """A figure with fixed margins (matplotlib's constrained layout triples the drawing time)."""
    from matplotlib.figure import Figure  # matplotlib (~0.5 s): only when a plot is drawn

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(**margins)
    fig.text(0.995, 0.004, DISCLAIMER, ha="right", va="bottom", fontsize=7, color=GREY)
    return fig


def _text(ax: Axes, x: float, y: float, s: str, **kw: Any) -> None:
    ax.text(x, y, clean(s), parse_math=False, transform=ax.transAxes, **kw)


def _frame(ax: Axes, xs: AxisMap, ys: AxisMap, xtitle: str, ytitle: str, title: str) -> None:
    """Axes in [0, 1] units with ticks at the data's round values and the given titles."""
    from matplotlib.ticker import FixedFormatter, FixedLocator  # matplotlib (~0.5 s): only when a plot is drawn

    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    for axis, m in ((ax.xaxis, xs), (ax.yaxis, ys)):
        ticks = m.ticks()
        axis.set_major_locator(FixedLocator([t for t, _ in ticks]))
        axis.set_major_formatter(FixedFormatter([label for _, label in ticks]))
    ax.set_xlabel(xtitle, parse_math=False)
    ax.set_ylabel(ytitle, parse_math=False)
    ax.set_title(clean(title), parse_math=False, loc="left")
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def _position(q: Placed) -> tuple[float, float]:
    """A point's position in axis units, rounded: positions closer than 1e-9 of the axis are one."""
    return round(q.u, 9), round(q.v, 9)


def _triangulation(qs: Sequence[Placed]) -> Triangulation | None:
    """A Delaunay triangulation of the (distinct) points' positions, None when they do not span a plane."""
    from matplotlib.tri import Triangulation  # matplotlib (~0.5 s): only when a plot is drawn

    uv = [_position(q) for q in qs]
    if not _may_span_plane(uv):
        return None
    try:
        tri = Triangulation([u for u, _ in uv], [v for _, v in uv])
        n = len(tri.triangles)
    except (ValueError, RuntimeError):  # qhull: all points on a line (or nearly)
        return None
    return tri if n else None


def _may_span_plane(uv: Sequence[tuple[float, float]]) -> bool:
    """At least three positions, not all on one vertical or horizontal line (qhull decides the rest)."""
    return len(uv) >= 3 and len({u for u, _ in uv}) >= 2 and len({v for _, v in uv}) >= 2


#: the claimed or the replayed values of a point
Source = Callable[[PointOutcome], Values | None]


def _with(qs: Sequence[Placed], src: Source, index: int | None = None) -> list[Placed]:
    """The points whose value is finite (a point whose computation failed drops out of the replayed contours)."""
    return [q for q in qs if cls_of(src(q.outcome), index) is not None]


def _log(x: float) -> float:
    return math.log10(min(max(x, CLS_FLOOR), 1.0))


@dataclasses.dataclass
class Contours:
    """What :func:`exclusion_figure` drew: the figure, the axes' maps, artists by SVG id, notes."""

    figure: Figure
    x: AxisMap | None
    y: AxisMap | None
    artists: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def _unique(qs: Sequence[Placed]) -> list[Placed]:
    """The first point at each position (several points of one likelihood at one place: the first counts)."""
    seen: dict[tuple[float, float], Placed] = {}
    for q in qs:
        seen.setdefault(_position(q), q)
    return list(seen.values())


def _contour_set(ax: Axes, out: Contours, qs: Sequence[Placed], which: str, suffix: str, colour: str, level: float) -> bool:
    """The observed and expected contours and the expected band of ``qs`` (``which`` values); False when
    the points with values do not span a plane."""
    src: Source = (lambda p: p.claimed) if which == "claimed" else (lambda p: p.replayed)
    style = "--" if which == "claimed" else "-"
    target = math.log10(level)
    drawn_obs = _observed_contour(ax, out, _unique(_with(qs, src)), src, f"{which}-{suffix}", (colour, style), target)
    drawn_exp = _expected_contours(ax, out, _unique(_with(qs, src, 4)), src, (which, suffix), (colour, style), target)
    return drawn_obs or drawn_exp


def _observed_contour(ax: Axes, out: Contours, obs: Sequence[Placed], src: Source, tag: str, look: tuple[str, str], target: float) -> bool:
    tri = _triangulation(obs)
    if tri is None:
        return False
    z = [_log(cls_of(src(q.outcome)) or 0.0) for q in obs]
    cs = ax.tricontour(tri, z, levels=[target], colors=[look[0]], linestyles=[look[1]], linewidths=[2.0], zorder=5)
    out.artists[_gid(cs, f"obs-contour-{tag}")] = cs
    return True


def _expected_contours(ax: Axes, out: Contours, exp: Sequence[Placed], src: Source, tag: tuple[str, str], look: tuple[str, str], target: float) -> bool:
    """The median expected contour and the +-1 sigma band: where the -1 sigma CLs is below the level and
    the +1 sigma CLs above it (f <= 0)."""
    tri = _triangulation(exp)
    if tri is None:
        return False
    which, suffix = tag
    colour, style = look
    e = [[_log(cls_of(src(q.outcome), i) or 0.0) for q in exp] for i in (1, 2, 3)]
    cs = ax.tricontour(tri, e[1], levels=[target], colors=[colour], linestyles=[style], linewidths=[1.2], zorder=5)
    out.artists[_gid(cs, f"exp-contour-{which}-{suffix}")] = cs
    _expected_band(ax, out, tri, (e[0], e[2]), tag, colour, target)
    return True


def _expected_band(
    ax: Axes, out: Contours, tri: Triangulation, sigmas: tuple[list[float], list[float]], tag: tuple[str, str], colour: str, target: float
) -> None:
    """The +-1 sigma band (log10 CLs at -1 and +1 sigma): filled where the replay's is, hatched where the claim's is."""
    which, suffix = tag
    f = [max(lo - target, target - hi) for lo, hi in zip(*sigmas, strict=True)]
    if min(f) >= 0:
        return
    fill = {"colors": [colour], "alpha": 0.18} if which == "replayed" else {"colors": ["none"], "hatches": ["////"]}
    band = ax.tricontourf(tri, f, levels=[min(f) - 1.0, 0.0], zorder=2, **fill)
    if which == "claimed":
        band.set_edgecolor(colour)
        band.set_linewidth(0.0)
    out.artists[_gid(band, f"exp-band-{which}-{suffix}")] = band


def _gid(artist: Any, gid: str) -> str:
    artist.set_gid(gid)
    return gid


def _scatter_points(ax: Axes, qs: Sequence[Placed]) -> None:
    """The points themselves, small and grey, under the contours: where the interpolation has data."""
    excluded = [q for q in qs if q.outcome.excluded("replayed")]
    allowed = [q for q in qs if not q.outcome.excluded("replayed")]
    size = _marker_size(qs, 0.12, 3.0)
    _scatter_at(ax, excluded, s=size, c=GREY, marker="o", linewidths=0, gid="points-excluded-replayed", zorder=1)
    _scatter_at(
        ax,
        allowed,
        s=size,
        facecolors="none",
        edgecolors=GREY,
        marker="o",
        linewidths=0.6,
        gid="points-allowed-replayed",
        zorder=1,
    )


def _scatter_at(ax: Axes, qs: Sequence[Placed], **kw: Any) -> Any:
    """A scatter of markers at the points' positions (axis units); ``kw`` as for ``Axes.scatter``."""
    return ax.scatter([q.u for q in qs], [q.v for q in qs], **kw)


def _marker_size(qs: Sequence[Placed], frac: float, cap: float) -> float:
    """Marker area (pt^2) from the typical spacing of the points in axis units (axes ~ 300 pt wide)."""

    def gap(vs: Iterable[float]) -> float:
        u = sorted({round(v, 4) for v in vs})
        gaps = sorted(b - a for a, b in itertools.pairwise(u) if b - a > 1e-4)
        return gaps[len(gaps) // 2] if gaps else 0.2

    d = min(gap(q.u for q in qs), gap(q.v for q in qs)) * 300 * frac * 2
    d = min(max(d, 1.5), cap * 2)
    return d * d


def exclusion_figure(report: ReplayReport) -> Contours:
    """The exclusion plot: contours per likelihood (and combined) over the two label axes."""
    with _style():
        return _exclusion(report)


def _exclusion(report: ReplayReport) -> Contours:
    placed, xs, ys = placed_points(report)
    level = level_of(report)
    fig = _figure(8.8, 5.4, left=0.08, right=0.62, bottom=0.1, top=0.93)
    ax = fig.add_subplot()
    out = Contours(fig, xs, ys)
    if not placed or xs is None or ys is None or report.labels is None:
        _ratio_panel(ax, report, level)
        out.notes.append("the points have no label values: no exclusion contour; replayed against claimed CLs_obs instead")
        return out
    la, lb = report.labels
    _frame(ax, xs, ys, axis_title(report, la), axis_title(report, lb), f"Exclusion at CLs = {level:g}")
    if not 0 < level < 1:
        _scatter_points(ax, placed)
        out.notes.append(f"no contour: the claims' CLs level {level:g} is not between 0 and 1")
        return out
    _scatter_points(ax, placed)
    _contours(ax, out, placed, level)
    if len(placed) < len(report.points):
        out.notes.append(f"{len(report.points) - len(placed)} point(s) without {la}/{lb} values are not drawn (see the table)")
    return out


def _contours(ax: Axes, out: Contours, placed: Sequence[Placed], level: float) -> None:
    """The contours of each likelihood (and, with several, of their combination) and the legend."""
    from matplotlib.lines import Line2D  # matplotlib (~0.5 s): only when a plot is drawn

    groups = regions(placed)
    handles = _region_contours(ax, out, groups, level)
    if len(groups) > 1:
        _combined_contours(ax, out, placed, level)
        handles.append(Line2D([], [], color="black", label="combined (best expected per point)"))
    handles += _style_handles(REGION_COLOURS[0] if len(groups) == 1 else "black", level)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7.5)


def _region_contours(ax: Axes, out: Contours, groups: Sequence[tuple[str, Sequence[Placed]]], level: float) -> list[Any]:
    """Claimed and replayed contours of each likelihood (region) in its colour; the legend handles
    naming the regions where there are several."""
    from matplotlib.lines import Line2D  # matplotlib (~0.5 s): only when a plot is drawn

    handles: list[Any] = []
    for i, (name, qs) in enumerate(groups):
        colour = REGION_COLOURS[i % len(REGION_COLOURS)]
        drawn = [_contour_set(ax, out, qs, which, f"r{i}", colour, level) for which in ("claimed", "replayed")]
        if not any(drawn):
            out.notes.append(f"{name}: no contour, its {len(_unique(qs))} point position(s) do not span a plane (fewer than 3, or on one line)")
        if len(groups) > 1:
            handles.append(Line2D([], [], color=colour, label=clean(name)))
    return handles


def _combined_contours(ax: Axes, out: Contours, placed: Sequence[Placed], level: float) -> None:
    for which in ("claimed", "replayed"):
        if not _contour_set(ax, out, best_expected(placed, which), which, "combined", "black", level):
            out.notes.append(f"combined ({which}): no contour, the best-expected points do not span a plane")


def _style_handles(colour: str, level: float) -> list[Any]:
    """Legend entries for the line styles (observed/expected, claimed/replayed) and the point markers."""
    from matplotlib.lines import Line2D  # matplotlib (~0.5 s): only when a plot is drawn
    from matplotlib.patches import Patch  # matplotlib (~0.5 s): only when a plot is drawn

    return [
        Line2D([], [], color=colour, linewidth=2.0, label="observed, replayed"),
        Line2D([], [], color=colour, linewidth=2.0, linestyle="--", label="observed, claimed"),
        Line2D([], [], color=colour, linewidth=1.2, label="expected, replayed"),
        Patch(facecolor=colour, alpha=0.18, label="expected \u00b11\u03c3, replayed"),
        Patch(facecolor="none", edgecolor=colour, hatch="////", linewidth=0, label="expected \u00b11\u03c3, claimed"),
        Line2D([], [], color=GREY, marker="o", linestyle="none", markersize=3, label=f"point, excluded in replay (CLs < {level:g})"),
    ]


# --- the point view -----------------------------------------------------------------------------


def difference(p: PointOutcome) -> float | None:
    c, r = cls_of(p.claimed), cls_of(p.replayed)
    return None if c is None or r is None else r - c


def flipped(p: PointOutcome) -> bool:
    """Whether the claimed and the replayed observed CLs fall on different sides of the point's level."""
    c, r = p.excluded("claimed"), p.excluded("replayed")
    return c is not None and r is not None and c != r


def category(p: PointOutcome) -> str:
    """``both``, ``neither``, ``claimed-only``, ``replayed-only`` (excluded where) or ``error`` (not replayed)."""
    if cls_of(p.replayed) is None:
        return "error"
    c, r = bool(cls_of(p.claimed) is not None and p.excluded("claimed")), bool(p.excluded("replayed"))
    return {(True, True): "both", (False, False): "neither", (True, False): "claimed-only", (False, True): "replayed-only"}[(c, r)]


#: marker of each category: (label, marker, face, edge); the two "only" categories differ in shape and colour
CATEGORIES = {
    "both": ("excluded, both", "o", NAVY, NAVY),
    "neither": ("not excluded, both", "o", "none", GREY),
    "claimed-only": ("excluded as claimed only", "v", AMBER, "#8a5a00"),
    "replayed-only": ("excluded in replay only", "^", PURPLE, "#3f1250"),
    "error": ("computation failed", "x", RED, RED),
}


def points_figure(report: ReplayReport) -> Figure:
    """The point-by-point view: exclusion claimed vs replayed per point, and the difference per point."""
    with _style():
        return _points(report)


def _points(report: ReplayReport) -> Figure:
    placed, xs, ys = placed_points(report)
    fig = _figure(12.0, 5.4, left=0.07, right=0.97, bottom=0.3, top=0.93, wspace=0.25)
    left, right = fig.subplots(1, 2)
    level = level_of(report)
    if not placed or xs is None or ys is None or report.labels is None:
        _ratio_panel(left, report, level)
        _difference_scatter(right, report, level)
        return fig
    la, lb = (axis_title(report, label) for label in report.labels)
    _frame(left, xs, ys, la, lb, f"Exclusion per point (CLs_obs < {level:g})")
    _frame(right, xs, ys, la, lb, "Replayed vs claimed, per point")
    size = _marker_size(placed, 0.42, 9.0)
    _TITLES[fig] = _point_markers(left, placed, size, report.labels)
    left.legend(handles=_legend_handles(), loc="upper left", bbox_to_anchor=(-0.1, -0.12), ncols=3, fontsize=7.5)
    _difference_cells(fig, right, placed, size)
    for i, note in enumerate(_plane_notes(report, placed)):
        _text(right, 0.0, -0.16 - 0.06 * i, note, fontsize=7.5, color="#555555", va="top")
    return fig


def _point_markers(ax: Axes, placed: Sequence[Placed], size: float, labels: tuple[str, str]) -> dict[str, list[str]]:
    """One marker per point by its category, then the rings of failed and flipped points on top;
    returns each group's hover texts."""
    titles = {}
    for name, (label, marker, face, edge) in CATEGORIES.items():
        qs = [q for q in placed if category(q.outcome) == name]
        kw: dict[str, Any] = {"facecolors": face, "edgecolors": edge} if marker != "x" else {"c": face}
        scale = 1.3 if marker in "v^" else 1.0
        _scatter_at(ax, qs, s=size * scale, marker=marker, linewidths=1.0, label=label, gid=f"points-{name}", zorder=3, **kw)
        titles[f"points-{name}"] = [tooltip(q.outcome, labels) for q in qs]
    _rings(ax, placed, size)
    return titles


def _rings(ax: Axes, placed: Sequence[Placed], size: float) -> None:
    """Rings around the failed points (red) and the passed points whose exclusion flipped (amber)."""
    rings = (
        ("failed", "o", RED, [q for q in placed if not q.outcome.passed]),
        ("flipped", "s", AMBER, [q for q in placed if q.outcome.passed and flipped(q.outcome)]),
    )
    for name, marker, colour, qs in rings:
        _scatter_at(
            ax,
            qs,
            s=size * 2.6,
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            linewidths=1.8,
            gid=f"points-{name}",
            zorder=4,
        )


def tooltip(p: PointOutcome, labels: tuple[str, str] | None) -> str:
    """A point's hover text: name, label values, claimed and replayed CLs_obs, and why it failed."""
    where = ""
    if labels:
        where = " (" + ", ".join(f"{label}={_num(finite(p.values.get(label)))}" for label in labels) + ")"
    text = f"{p.key}{where}: CLs_obs claimed {_num(cls_of(p.claimed))}, replayed {_num(cls_of(p.replayed))}"
    if p.error:
        text += f" [not computed: {p.error.splitlines()[0] if p.error.strip() else p.error}]"
    elif not p.passed:
        text += " [FAIL: " + "; ".join(m.one_line() for m in p.mismatches[:2]) + "]"
    return clean(text)


def _num(x: float | None) -> str:
    return "none" if x is None else format(x, ".6g")


def _plane_notes(report: ReplayReport, placed: Sequence[Placed]) -> list[str]:
    notes = []
    if report.labels is not None and len(placed) < len(report.points):
        notes.append(f"{len(report.points) - len(placed)} point(s) without {report.labels[0]}/{report.labels[1]} values are not drawn")
    if len({q.outcome.likelihood for q in placed}) > 1:
        notes.append("several likelihoods share the plane: coinciding markers overlap, failed ones on top")
    return notes


def _diff_norm(diffs: Iterable[float | None]) -> Any:
    from matplotlib.colors import SymLogNorm  # matplotlib (~0.5 s): only when a plot is drawn

    top_data = max((abs(d) for d in diffs if d is not None), default=0.0)
    top = min(max(10.0 ** math.ceil(math.log10(top_data)) if top_data > 0 else 0.0, 1e-4), 1.0)
    return SymLogNorm(linthresh=top * 1e-5, linscale=0.5, vmin=-top, vmax=top, base=10)


def signed_ratio(p: PointOutcome) -> float | None:
    """The point's largest |replayed - claimed| / tolerance (the replay's ``ratio``), with the sign of its
    CLs_obs difference: beyond +-1 the point fails. None without a ratio or a difference."""
    d = difference(p)
    r = finite(p.ratio)
    return None if d is None or r is None else math.copysign(r, d)


def _ratio_norm(ratios: Iterable[float]) -> Any:
    from matplotlib.colors import SymLogNorm  # matplotlib (~0.5 s): only when a plot is drawn

    top = max((abs(r) for r in ratios), default=1.0)
    top = min(10.0 ** math.ceil(math.log10(max(top, 1.0))), 1e6)
    return SymLogNorm(linthresh=1e-3, linscale=0.5, vmin=-top, vmax=top, base=10)


def _cell_values(placed: Sequence[Placed]) -> tuple[list[tuple[Placed, float]], Any, str]:
    """Each point's colour value, the colour scale and its title: the signed ratio to the tolerance where
    every compared point has one (as a replay records), else the plain difference."""
    diffs = [(q, d) for q in placed if (d := difference(q.outcome)) is not None]
    ratios = [(q, r) for q, _ in diffs if (r := signed_ratio(q.outcome)) is not None]
    if diffs and len(ratios) == len(diffs):
        return ratios, _ratio_norm(abs(r) for _, r in ratios), "(replayed \u2212 claimed) / tolerance, worst value; beyond \u00b11 it fails"
    return diffs, _diff_norm(d for _, d in diffs), "replayed \u2212 claimed CLs_obs (symmetric log; failed outlined in red)"


def _difference_cells(fig: Figure, ax: Axes, placed: Sequence[Placed], size: float) -> None:
    with_d, norm, title = _cell_values(placed)
    cells = _scatter_at(
        ax,
        [q for q, _ in with_d],
        c=[d for _, d in with_d],
        cmap="PRGn",
        norm=norm,
        s=size * 1.6,
        marker="s",
        linewidths=0.4,
        edgecolors="#9a9a9a",
        gid="difference-cells",
        zorder=3,
    )
    _failed_and_missing_cells(ax, placed, size)
    bar = fig.colorbar(cells, ax=ax, shrink=0.9)
    _plain_ticks(bar.ax.yaxis, signed=True)
    bar.set_label(title, fontsize=8)


def _failed_and_missing_cells(ax: Axes, placed: Sequence[Placed], size: float) -> None:
    """A red square around each failed point's cell and a red cross where a point has no difference."""
    failed = [q for q in placed if not q.outcome.passed]
    _scatter_at(
        ax,
        failed,
        s=size * 3.2,
        marker="s",
        facecolors="none",
        edgecolors=RED,
        linewidths=1.6,
        gid="difference-failed",
        zorder=4,
    )
    missing = [q for q in placed if difference(q.outcome) is None]
    _scatter_at(ax, missing, s=size, marker="x", c=RED, linewidths=1.2, gid="difference-missing", zorder=4)


def _ratio_panel(ax: Axes, report: ReplayReport, level: float) -> None:
    """Without label values: replayed against claimed CLs_obs, log-log, agreement on the diagonal."""
    lo, hi = _cls_range(report)
    _log_log_frame(ax, lo, hi, level)
    for name, (label, marker, face, edge) in CATEGORIES.items():
        ps = [p for p in report.points if category(p) == name]
        xs = [_clip(cls_of(p.claimed), lo, hi) for p in ps]
        ys = [_clip(cls_of(p.replayed), lo, hi) for p in ps]
        kw: dict[str, Any] = {"facecolors": face, "edgecolors": edge} if marker != "x" else {"c": face}
        ax.scatter(xs, ys, s=30, marker=marker, linewidths=1.0, label=label, gid=f"points-{name}", zorder=3, **kw)
    _failed_rings(ax, report, lo, hi)
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis)
    ax.set_xlabel("claimed CLs_obs")
    ax.set_ylabel("replayed CLs_obs (not computed: on the bottom edge)")
    ax.set_title(f"Replayed vs claimed CLs_obs (shaded: exclusion at {level:g} differs)", loc="left")
    ax.legend(handles=_legend_handles(), loc="upper left", fontsize=7.5)


def _cls_range(report: ReplayReport) -> tuple[float, float]:
    """The decades that hold every claimed and replayed CLs_obs."""
    return _log_range([cls_of(p.claimed) for p in report.points] + [cls_of(p.replayed) for p in report.points])


def _log_log_frame(ax: Axes, lo: float, hi: float, level: float) -> None:
    """Log-log axes over [lo, hi], the quadrants where the exclusion at ``level`` differs shaded,
    the diagonal of agreement and the level's lines."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.axvspan(lo, level, ymin=_frac(level, lo, hi), ymax=1.0, color=AMBER, alpha=0.12, linewidth=0)
    ax.axvspan(level, hi, ymin=0.0, ymax=_frac(level, lo, hi), color=AMBER, alpha=0.12, linewidth=0)
    ax.plot([lo, hi], [lo, hi], color="#444444", linewidth=0.8)
    ax.axvline(level, color="#777777", linestyle="--", linewidth=0.8)
    ax.axhline(level, color="#777777", linestyle="--", linewidth=0.8)


def _failed_rings(ax: Axes, report: ReplayReport, lo: float, hi: float) -> None:
    """A red ring around each point outside its tolerance."""
    failed = [p for p in report.points if not p.passed]
    ax.scatter(
        [_clip(cls_of(p.claimed), lo, hi) for p in failed],
        [_clip(cls_of(p.replayed), lo, hi) for p in failed],
        s=90,
        marker="o",
        facecolors="none",
        edgecolors=RED,
        linewidths=1.8,
        label="failed tolerance",
        gid="points-failed",
        zorder=4,
    )


def _legend_handles() -> list[Any]:
    """The point view's legend, with markers of one size whatever the plot's marker size."""
    from matplotlib.lines import Line2D  # matplotlib (~0.5 s): only when a plot is drawn

    handles = [
        Line2D([], [], linestyle="none", marker=marker, markersize=8, markerfacecolor=face, markeredgecolor=edge, label=label)
        for label, marker, face, edge in CATEGORIES.values()
    ]
    handles.append(
        Line2D([], [], linestyle="none", marker="o", markersize=11, markerfacecolor="none", markeredgecolor=RED, markeredgewidth=1.8, label="failed tolerance")
    )
    handles.append(
        Line2D(
            [],
            [],
            linestyle="none",
            marker="s",
            markersize=11,
            markerfacecolor="none",
            markeredgecolor=AMBER,
            markeredgewidth=1.8,
            label="exclusion differs (within tolerance)",
        )
    )
    return handles


def _difference_scatter(ax: Axes, report: ReplayReport, level: float) -> None:
    lo, hi = _cls_range(report)
    diffs = [difference(p) for p in report.points]
    top = float(_diff_norm(diffs).vmax)
    _log_symlog_frame(ax, lo, hi, top, level)
    ok = [(p, d) for p, d in zip(report.points, diffs, strict=True) if d is not None]
    ax.scatter(*_on_frame(ok, lo, hi, top), s=20, c=NAVY, gid="difference-cells", zorder=3)
    ax.scatter(
        *_on_frame([(p, d) for p, d in ok if not p.passed], lo, hi, top),
        s=80,
        marker="o",
        facecolors="none",
        edgecolors=RED,
        linewidths=1.8,
        gid="difference-failed",
        zorder=4,
    )
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis, signed=True)
    ax.set_xlabel("claimed CLs_obs")
    ax.set_ylabel("replayed \u2212 claimed (symmetric log)")
    ax.set_title("Replayed \u2212 claimed CLs_obs", loc="left")


def _on_frame(diffs: Sequence[tuple[PointOutcome, float]], lo: float, hi: float, top: float) -> tuple[list[float], list[float]]:
    """Where each point's difference is drawn: its claimed CLs_obs within [lo, hi], the difference within +-``top``."""
    return [_clip(cls_of(p.claimed), lo, hi) for p, _ in diffs], [max(min(d, top), -top) for _, d in diffs]


def _log_symlog_frame(ax: Axes, lo: float, hi: float, top: float, level: float) -> None:
    """Claimed CLs on a log axis over [lo, hi], differences on a symmetric log axis up to +-``top``, the level's line."""
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=top * 1e-5, linscale=0.5)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-top * 1.05, top * 1.05)
    ax.axvline(level, color="#777777", linestyle="--", linewidth=0.8)


def _plain_ticks(axis: Any, *, signed: bool = False) -> None:
    """Tick labels as plain text (matplotlib's default log labels go through its slow mathtext parser)."""
    from matplotlib.ticker import FuncFormatter  # matplotlib (~0.5 s): only when a plot is drawn

    axis.set_major_formatter(FuncFormatter(lambda v, _: ("+" if signed and v > 0 else "") + fmt_tick(v)))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _log_range(values: Iterable[float | None]) -> tuple[float, float]:
    pos = [v for v in values if v is not None and v > 0]
    lo = max(min(pos, default=1e-3), 1e-12)
    hi = max(max(pos, default=1.0), 1.0)
    return 10.0 ** math.floor(math.log10(lo) - 0.05), 10.0 ** math.ceil(math.log10(hi))


def _clip(v: float | None, lo: float, hi: float) -> float:
    return lo if v is None else min(max(v, lo), hi)


def _frac(v: float, lo: float, hi: float) -> float:
    return min(max((math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)), 0.0), 1.0)


# --- upper limits -------------------------------------------------------------------------------


def upper_limits(p: PointOutcome) -> float | None:
    """The point's observed upper limit on the signal strength: replayed, else claimed (positive, finite)."""
    for src in (p.replayed, p.claimed):
        v = None if src is None else finite(src.mu_up_obs)
        if v is not None and v > 0:
            return v
    return None


def upper_limit_figure(report: ReplayReport) -> Figure | None:
    """The map of the observed upper limits over the label plane; None when no point has one."""
    placed, xs, ys = placed_points(report)
    with_ul = _with_upper_limits(placed)
    if not with_ul or xs is None or ys is None or report.labels is None:
        return None
    with _style():
        from matplotlib.colors import LogNorm  # matplotlib (~0.5 s): only when a plot is drawn

        fig = _figure(7.0, 5.2, left=0.1, right=0.97, bottom=0.1, top=0.93)
        ax = fig.add_subplot()
        la, lb = (axis_title(report, label) for label in report.labels)
        _frame(ax, xs, ys, la, lb, "Observed upper limit on the signal strength (replayed, else claimed)")
        uls = [ul for _, ul in with_ul]
        lo, hi = _log_span(min(uls), max(uls))
        norm = LogNorm(vmin=lo, vmax=hi, clip=True)
        size = _marker_size([q for q, _ in with_ul], 0.45, 10.0)
        sc = _scatter_at(
            ax,
            [q for q, _ in with_ul],
            c=uls,
            norm=norm,
            cmap="viridis",
            s=size * 1.6,
            marker="s",
            linewidths=0,
            gid="ul-map",
            zorder=3,
        )
        _upper_limit_bar(fig.colorbar(sc, ax=ax, shrink=0.9), lo, hi)
        return fig


def _with_upper_limits(placed: Sequence[Placed]) -> list[tuple[Placed, float]]:
    """The points with an upper limit and its value (of several likelihoods, the one with the best expected CLs at each point)."""
    if len(regions(placed)) > 1:
        placed = best_expected(placed, "replayed") or placed
    return [(q, ul) for q in placed if (ul := upper_limits(q.outcome)) is not None]


def _upper_limit_bar(bar: Any, lo: float, hi: float) -> None:
    """The colour bar's ticks and title: under two decades 1, 2 and 5 of each decade get a label, else only the decades."""
    if hi < lo * 100:
        from matplotlib.ticker import LogLocator  # matplotlib (~0.5 s): only when a plot is drawn

        bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    _plain_ticks(bar.ax.yaxis)
    bar.set_label("observed upper limit on \u03bc (1 = the signal as predicted)")


def _log_span(lo: float, hi: float) -> tuple[float, float]:
    """A logarithmic colour range around [lo, hi] (positive), within [1e-30, 1e30] (values beyond take
    the end colours: matplotlib's log scale fails near the float limits), at least a decade wide."""
    lo, hi = min(max(lo, 1e-30), 1e29), min(max(hi, 1e-29), 1e30)
    if hi >= lo * 10:
        return lo, hi
    mid = math.sqrt(lo * hi)
    return mid / math.sqrt(10), mid * math.sqrt(10)


# --- output -------------------------------------------------------------------------------------


#: matplotlib's numbered ids (``figure_1``, ``axes_1``, ``line2d_12`` ...): unique within a figure, not
#: within a page of several; never referenced (references go to its hashed ids, ``m0a1b2c3d4e``)
_NUMBERED_ID = re.compile(r'\bid="((?:[a-z][a-z0-9.]*|[A-Z][A-Za-z]+)_[0-9]+)"')


def figure_svg(fig: Figure, prefix: str = "") -> str:
    """The figure as an inline SVG element (no XML declaration or doctype), deterministic; with
    ``prefix``, matplotlib's numbered ids get it, so several figures on one page keep ids unique."""
    buf = io.StringIO()
    with _style():
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # RDF namespaces, nothing to show
    if prefix:
        text = _NUMBERED_ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = text[text.index("<svg") :].strip()
    titles = _TITLES.get(fig)
    return _with_titles(text, titles) if titles else text


def _with_titles(text: str, titles: Mapping[str, Sequence[str]]) -> str:
    """The SVG with a ``<title>`` (hover text) in each marker of the groups ``titles`` names, in order."""

    ET.register_namespace("", _SVG_NS)
    ET.register_namespace("xlink", _XLINK_NS)
    root = ET.fromstring(text)
    for group in root.iter(f"{{{_SVG_NS}}}g"):
        names = titles.get(group.get("id", ""))
        for el, title in zip(_markers(group), names or (), strict=False):
            ET.SubElement(el, f"{{{_SVG_NS}}}title").text = title
    return ET.tostring(root, encoding="unicode")


def _markers(group: Any) -> list[Any]:
    """The markers (``use`` and ``path`` elements) of an SVG group, outside its ``defs``."""
    marker_tags = (f"{{{_SVG_NS}}}use", f"{{{_SVG_NS}}}path")
    in_defs = {id(el) for d in group.iter(f"{{{_SVG_NS}}}defs") for el in d.iter()}
    return [el for el in group.iter() if el.tag in marker_tags and id(el) not in in_defs]


def write_plot(report: ReplayReport, path: Path) -> list[str]:
    """Write the exclusion plot alone to ``path`` (.pdf, .png or .svg); returns its notes (what it skipped)."""
    suffix = path.suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise InputError(f"plot {path}: the format comes from the suffix; use .pdf, .png or .svg", option="plot")
    drawn = exclusion_figure(report)
    meta: dict[str, Any] = {
        ".svg": {"Date": None, "Creator": None},
        ".pdf": {"CreationDate": None, "Creator": None, "Producer": None},
        ".png": {"Software": None},
    }[suffix]
    buf = io.BytesIO()
    with _style():
        drawn.figure.savefig(buf, format=suffix[1:], metadata=meta, dpi=200 if suffix == ".png" else 100)

    try:
        with atomic_output(path) as fh:
            fh.write(buf.getvalue())
    except OSError as exc:
        raise InputError(f"plot {path}: cannot write the plot: {exc.strerror or exc}", option="plot") from exc
    return drawn.notes
