"""Render a :class:`~heparch.replay.outcome.ReplayReport`: a summary table, JUnit XML and an HTML page.

Pure functions of the report: :func:`summary_table` for stderr and :func:`junit_xml` for CI
test-report consumers (standard library only), :func:`html` for a self-contained page with the
figures of :mod:`heparch.replay.plot` inline as SVG (matplotlib, imported when a page is
rendered), and :func:`write_reports` to write the files atomically.

>>> from heparch.replay.outcome import Mismatch, PointOutcome, ReplayReport, Values
>>> ok = PointOutcome(key="pt_300_100", likelihood="BkgOnly.json", point="pt_300_100", claimed=Values(0.44, (0.4,) * 5),
...                   replayed=Values(0.4401, (0.4,) * 5), passed=True, backend="fast", seconds=0.2, values={"m1": 300, "m2": 100})
>>> bad = PointOutcome(key="pt_500_200", likelihood="BkgOnly.json", point="pt_500_200", claimed=Values(0.03, (0.04,) * 5),
...                    replayed=Values(0.06, (0.04,) * 5), passed=False, backend="fast", seconds=0.3, values={"m1": 500, "m2": 200},
...                    mismatches=(Mismatch("CLs_obs", 0.03, 0.06, 0.0001),))
>>> rep = ReplayReport(bundle="ana.zst", identity="sha256:0123", points=[ok, bad], seconds=0.5,
...                    software={"pyhf": ("0.7.6", "0.7.7")}, labels=("m1", "m2"))
>>> print(summary_table(rep))
      point                          field           claimed    replayed  difference   tolerance
FAIL  pt_500_200                     CLs_obs            0.03        0.06       +0.03      0.0001
ok    pt_300_100                     CLs_obs            0.44      0.4401     +0.0001
passed 1, failed 1, total 2 in 0.5 s
pyhf: recorded 0.7.6, running 0.7.7
>>> page = html(rep)
>>> b'failures="1"' in junit_xml(rep), 'id="obs-contour-replayed-r0"' in page, 'id="points-replayed-only"' in page
(True, False, True)
"""

from __future__ import annotations

import collections
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Final

from heparch.errors import InputError
from heparch.replay import plot
from heparch.replay.outcome import PointOutcome, ReplayReport
from heparch.replay.plot import clean, cls_of, difference, finite, flipped
from heparch.store.writer import atomic_output

__all__ = ["html", "junit_xml", "summary_table", "write_reports"]

# --- shared helpers ------------------------------------------------------------------------


def _status(p: PointOutcome) -> str:
    """``pass``, ``fail`` (compared and outside tolerance) or ``error`` (no replayed values)."""
    if p.passed:
        return "pass"
    return "error" if p.replayed is None else "fail"


def _worst_ratio(p: PointOutcome) -> float | None:
    """The largest |difference| / tolerance over the point's compared values (the replay's
    ``ratio``), else over its mismatches (None without either)."""
    if p.ratio is not None:
        return p.ratio
    ratios = [abs(m.difference) / m.tolerance for m in p.mismatches if m.tolerance > 0 and math.isfinite(m.difference)]
    return max(ratios) if ratios else None


def _local_line(p: PointOutcome) -> str:
    lm = p.local_minimum
    if lm is None:
        return ""
    return (
        f"claim-at-local-minimum: the claimed CLs_obs {_g(finite(lm.claimed))} is the replay's value from start "
        f"{lm.start!r} ({_g(finite(lm.start_cls_obs))}); at the lowest minimum it is {_g(finite(lm.replayed))}"
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
    return [] if report.audit is None else [report.audit.one_line()]


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
        return _failed_rows(p, 100 - prefix_w)
    c, r, d = cls_of(p.claimed), cls_of(p.replayed), difference(p)
    return [_row("ok", p.key, "CLs_obs", [_g(c), _g(r), _g(d, "+.3g")])]


def _failed_rows(p: PointOutcome, width: int) -> list[str]:
    """A failed point's rows: one per mismatch, then its local-minimum line or its error (``width``: their text's)."""
    rows = _mismatch_rows(p)
    if p.local_minimum is not None:
        rows.append(f"{'':<5} {'':<{_KEY_W}} " + _cut(_local_line(p), width))
    if p.error or not rows:
        rows.append(_error_row(p, width, first=not rows))
    return rows


def _mismatch_rows(p: PointOutcome) -> list[str]:
    """One row per mismatch: field, claimed, replayed, difference, tolerance (the first row names the point)."""
    word = "LOCAL" if p.local_minimum is not None else "FAIL"
    rows = []
    for i, m in enumerate(p.mismatches):
        nums = [_g(m.claimed), _g(m.replayed), _g(m.difference, "+.3g"), _g(m.tolerance, ".3g")]
        rows.append(_row(word if i == 0 else "", p.key if i == 0 else "", _cut(m.field, 11), nums))
    return rows


def _error_row(p: PointOutcome, width: int, *, first: bool) -> str:
    """A failed point's error (or why it failed) in a row; ``first``: the point's only row, which names it."""
    text = _cut(p.error or "failed (no mismatch recorded)", width)
    word, key = ("FAIL", _cut(p.key, _KEY_W)) if first else ("", "")
    return f"{word:<5} {key:<{_KEY_W}} {text}"


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
    lines += _more_line(report, shown, len(failed))
    lines.append(_totals_line(report))
    lines += _audit_lines(report)
    lines += _software_lines(report)
    return "\n".join(lines)


def _more_line(report: ReplayReport, shown: Sequence[PointOutcome], n_failed: int) -> list[str]:
    """``... N more (M failed, K passed)`` for the points the table leaves out (none when it shows all)."""
    more = len(report.points) - len(shown)
    more_failed = n_failed - sum(1 for p in shown if not p.passed)
    return [f"... {more} more ({more_failed} failed, {more - more_failed} passed)"] if more else []


def _totals_line(report: ReplayReport) -> str:
    """``passed N, failed M (why), total T in S s``."""
    n_pass, n_fail, n_err = _counts(report)
    n_local = sum(1 for p in report.points if p.local_minimum is not None)
    why = [f"{n_err} with a computation error" * bool(n_err), f"{n_local} claimed at a local minimum" * bool(n_local)]
    because = f" ({', '.join(t for t in why if t)})" if n_err or n_local else ""
    return f"passed {n_pass}, failed {n_fail + n_err}{because}, total {len(report.points)} in {report.seconds:.3g} s"


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
    _junit_properties(ET.SubElement(suite, "properties"), report)
    for p in report.points:
        case = ET.SubElement(suite, "testcase", {"classname": clean(p.likelihood), "name": clean(p.point), "time": f"{p.seconds:.3f}"})
        add = _JUNIT_OUTCOME.get(_status(p))  # a passing point: its test case alone
        if add is not None:
            add(case, p)
    if report.software:
        ET.SubElement(suite, "system-out").text = clean("software differing from the claims:\n" + "\n".join(_software_lines(report)))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _junit_properties(props: ET.Element, report: ReplayReport) -> None:
    """The suite's properties: the bundle, its identity, each differing software version, the audit."""
    ET.SubElement(props, "property", {"name": "bundle", "value": clean(report.bundle)})
    ET.SubElement(props, "property", {"name": "identity", "value": clean(report.identity)})
    for name, (rec, cur) in sorted(report.software.items()):
        ET.SubElement(props, "property", {"name": f"software.{clean(name)}", "value": clean(f"recorded {rec}, running {cur}")})
    for line in _audit_lines(report):
        ET.SubElement(props, "property", {"name": "audit", "value": clean(line)})


def _junit_failure(case: ET.Element, p: PointOutcome) -> None:
    """A point outside its tolerance: ``<failure>`` with every mismatch (or its local minimum)."""
    lines = _failure_lines(p)
    kind = "claim-at-local-minimum" if p.local_minimum is not None else "mismatch"
    el = ET.SubElement(case, "failure", {"message": clean("; ".join(lines)), "type": kind})
    el.text = clean("\n".join(lines))


def _junit_error(case: ET.Element, p: PointOutcome) -> None:
    """A point whose computation failed: ``<error>`` with the error's first line as its message."""
    text = p.error or "no replayed values"
    first = next((line for line in text.splitlines() if line.strip()), text)
    el = ET.SubElement(case, "error", {"message": clean(first), "type": "computation"})
    el.text = clean(text)


#: what a point's test case holds, by its status
_JUNIT_OUTCOME: Final[Mapping[str, Callable[[ET.Element, PointOutcome], None]]] = {"fail": _junit_failure, "error": _junit_error}


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
figure svg{max-width:100%;height:auto}
figcaption{font-size:12.5px;color:#555;max-width:1100px}
table{border-collapse:collapse;font-size:12.5px}
th,td{padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f1f1f1;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:'DejaVu Sans Mono',monospace}
tr.fail td{background:#fde0df}
tr.error td{background:#fbe3cf}
td.details{font-family:'DejaVu Sans Mono',monospace;white-space:pre-wrap}
"""

_EXCLUSION_CAPTION = (
    "Exclusion contours at the claims' CLs level, interpolated linearly in log10(CLs) over a Delaunay "
    "triangulation of the points (axes scaled to the same length): observed (thick), expected median (thin) "
    "and the expected \u00b11\u03c3 band, replayed solid and filled, claimed dashed and hatched, so a shift "
    "between claim and replay shows as two lines. With several likelihoods each has its colour, and black is "
    "their combination taking at each point the likelihood with the smallest expected CLs. Grey markers are "
    "the points (filled: excluded in the replay)."
)
_UPPER_LIMIT_CAPTION = "Observed upper limit on the signal strength per point (replayed where computed, else claimed); below 1 the point is excluded."
_PLANE_CAPTION = (
    "Left: one marker per point: filled navy circle = excluded as claimed and in the replay, hollow = neither, "
    "amber down-triangle = excluded as claimed only, purple up-triangle = excluded in the replay only, red cross = "
    "not computed; a red ring marks a point outside its tolerance, an amber square one whose exclusion differs "
    "within tolerance. Right: per point, the largest difference between replayed and claimed values as a fraction "
    "of its tolerance, signed as the observed CLs difference (beyond \u00b11 the point fails; red outline), on a "
    "diverging symmetric-log colour scale; where the replay recorded no such ratio, the replayed minus claimed "
    "observed CLs. Hover a marker for its values."
)
_SCATTER_CAPTION = (
    "The points have no label values, so the plot shows replayed against claimed observed CLs (left; "
    "agreement lies on the diagonal, shaded regions are where the exclusion status differs) and the "
    "difference against the claimed value (right, symmetric log). Values beyond an axis are drawn on its edge."
)


def _e(s: object) -> str:
    return escape(clean(str(s)), quote=True)


def _simplified(p: PointOutcome) -> str:
    if p.simplified is None:
        return ""
    return "error" if p.simplified.values is None else _g(cls_of(p.simplified.values))


def _ratio_cell(p: PointOutcome, status: str) -> str:
    """The |difference| / tolerance cell: the worst ratio where known (a passing point's only when the replay
    recorded it), else ``<= 1`` for a passing point."""
    ratio = _worst_ratio(p)
    if ratio is not None and (status != "pass" or p.ratio is not None):
        return _g(ratio, ".3g")
    return "\u2264 1" if status == "pass" else ""


def _cells(p: PointOutcome, labels: tuple[str, str] | None, simplified: bool) -> str:
    status = _status(p)
    vals = [_g(finite(p.values.get(label)), "g") for label in labels or ()]
    nums = [*vals, _g(cls_of(p.claimed)), _g(cls_of(p.replayed)), _g(difference(p), "+.3g"), _ratio_cell(p, status)]
    nums += [_simplified(p)] if simplified else []
    word = {"pass": "pass", "fail": "FAIL", "error": "ERROR"}[status] if p.local_minimum is None else "claim at a local minimum"
    cells = [f"<td>{_e(p.key)}</td>"] + [f'<td class="num">{_e(v)}</td>' for v in nums]
    cells += [f"<td>{word}</td>", f"<td>{_e(p.backend)}</td>", f'<td class="num">{p.seconds:.3f}</td>']
    row_cls = "" if status == "pass" else f' class="{status}"'
    return f"<tr{row_cls}>{''.join(cells)}</tr>"


def _figure_html(svg: str, fid: str, caption: str) -> str:
    return f'<figure id="{fid}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _figures(report: ReplayReport, plane: bool) -> list[str]:
    """The figures as inline SVG: the exclusion contours and the upper-limit map (with label axes), the point view."""
    out = []
    if plane:
        drawn = plot.exclusion_figure(report)
        out.append(_figure_html(plot.figure_svg(drawn.figure, "exclusion"), "fig-exclusion", _EXCLUSION_CAPTION))
        out += [f'<p class="meta note">{_e(note)}.</p>' for note in drawn.notes]
        uls = plot.upper_limit_figure(report)
        if uls is not None:
            out.append(_figure_html(plot.figure_svg(uls, "upper-limits"), "fig-upper-limits", _UPPER_LIMIT_CAPTION))
    points = plot.points_figure(report)
    out.append(_figure_html(plot.figure_svg(points, "points"), "fig-points", _PLANE_CAPTION if plane else _SCATTER_CAPTION))
    return out


def html(report: ReplayReport) -> str:
    """One self-contained HTML page: header, the inline SVG plot, the failed points and a table of all points.

    No external resources and no script: the figures (:mod:`heparch.replay.plot`, drawn by
    matplotlib) are inline SVG whose artists carry ids (``obs-contour-replayed-r0`` ...), text
    stays text. Every string from the bundle is escaped.
    """
    placed, _, _ = plot.placed_points(report)
    labels = report.labels if placed else None
    out = _html_head(report)
    out += _figures(report, labels is not None)
    out += _html_failed(report)
    out += _html_all(report, labels)
    return "\n".join(out)


def _html_head(report: ReplayReport) -> list[str]:
    """The page's head, title, counts and notes (flipped exclusions, the audit, software, the disclaimer)."""
    n_pass, n_fail, n_err = _counts(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>heparch replay: {_e(report.bundle)}</title>",
        f"<style>{_PAGE_STYLE}</style></head><body>",
        f"<h1>heparch replay: {_e(report.bundle)}</h1>",
        f'<p class="meta">identity <code>{_e(report.identity)}</code></p>',
        f'<p class="meta counts">{len(report.points)} points: <b>{n_pass} passed</b>, <b class="fail">{n_fail + n_err} failed</b>'
        + (f" ({n_err} with a computation error)" if n_err else "")
        + f"; {report.seconds:.3g} s</p>",
    ]
    out += _flipped_note(report)
    out += [f'<p class="meta audit">{_e(line)}</p>' for line in _audit_lines(report)]
    out += _software_warning(report)
    out.append(f'<p class="meta disclaimer">{plot.DISCLAIMER}: the figures and numbers below are recomputed from the bundle.</p>')
    return out


def _flipped_note(report: ReplayReport) -> list[str]:
    """The points whose exclusion differs between claimed and replayed (the first ten named; none: no line)."""
    changed = [p for p in report.points if flipped(p)]
    if not changed:
        return []
    names = ", ".join(_e(p.key) for p in changed[:10]) + (", \u2026" if len(changed) > 10 else "")
    return [f'<p class="meta">The exclusion (CLs_obs &lt; level) differs between claimed and replayed at {len(changed)} point(s): {names}</p>']


def _software_warning(report: ReplayReport) -> list[str]:
    """The software versions that differ from the claims' (none: no line)."""
    if not report.software:
        return []
    versions = "; ".join(_e(line) for line in _software_lines(report))
    return [f'<p class="warn">Software differs from the versions the claims recorded: {versions}</p>']


def _html_failed(report: ReplayReport) -> list[str]:
    """The table of failed points (none without)."""
    failed = report.failed
    if not failed:
        return []
    out = [f"<h2>Failed points ({len(failed)})</h2><table><tr><th>point</th><th>likelihood</th><th>details</th></tr>"]
    for p in failed:
        details = "\n".join(_failure_lines(p))
        out.append(f'<tr class="{_status(p)}"><td>{_e(p.key)}</td><td>{_e(p.likelihood)}</td><td class="details">{_e(details)}</td></tr>')
    return [*out, "</table>"]


def _html_all(report: ReplayReport, labels: tuple[str, str] | None) -> list[str]:
    """The table of all points, and the end of the page."""
    simplified = any(p.simplified is not None for p in report.points)
    heads = [*(labels or ()), "claimed CLs_obs", "replayed CLs_obs", "difference", "|difference| / tolerance"]
    heads += [*(["simplified CLs_obs"] if simplified else []), "result", "backend", "seconds"]
    out = [f"<h2>All points ({len(report.points)})</h2><table><tr><th>point</th>{''.join(f'<th>{_e(h)}</th>' for h in heads)}</tr>"]
    out += [_cells(p, labels, simplified) for p in report.points]
    return [
        *out,
        "</table>",
        '<p class="meta">|difference| / tolerance: the largest over the point\'s compared values; a point passes when it is \u2264 1 for every value.</p>',
        "</body></html>",
        "",
    ]


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
