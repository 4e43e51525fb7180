"""``arch reinterpret``: the signal interface of a bundle, and new signal points through it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heparch.cli._common import emit_json, print_result, say
from heparch.cli._progress import QUIET, Progress
from heparch.cli.cmd_replay import JOBS, SCHEDULER
from heparch.errors import EXIT_FAILED, EXIT_OK, InputError

if TYPE_CHECKING:
    from heparch.reinterpret.run import Plan, Source
    from heparch.replay.outcome import PointOutcome, ReplayReport

INTERFACE = typer.Option(
    False,
    "--interface",
    help="Print the signal interface: regions, bins, modifiers and how a new signal gets them; the one the analysis declared (a signal-interface "
    "component) where there is one, else derived from the published patches. It says which.",
)
SIGNAL = typer.Option(
    None,
    "--signal",
    help="The new points' yields: .yaml/.json ({points: [{name, labels, regions: {channel: {yield, mc_unc, systematics}}}]}) or .csv "
    "(long form: point, channel, bin, yield; optional mc_unc, <key>_up, <key>_down and label columns).",
)
TEMPLATE = typer.Option(
    False, "--template", help="Write a yields file to start from, prefilled with one published point's values (format from -o's suffix; YAML on stdout)."
)
OUTPUT = typer.Option(None, "-o", "--output", help="With --template: the file to write (.yaml, .json or .csv).")
LIKELIHOOD = typer.Option(
    None, "--likelihood", help="The likelihood (logical path) for a bundle with several; default: the yields file's, else the only one with signal patches."
)
UPPER = typer.Option(False, "--upper-limits", help="Also compute the upper limits on mu (observed and expected band) at CLs = 0.05.")
XSEC = typer.Option(
    None,
    "--xsec",
    metavar="PB",
    help="The cross-section (pb) the yields were made with: also report cross-section upper limits (mu limits x PB); a point's 'xsec_pb' label overrides it.",
)
BACKEND = typer.Option(None, "--backend", help="fast or pyhf. Default: fast where it supports the model, else pyhf.")
PATCHSET_OUT = typer.Option(None, "--patchset-out", help="Write the new points as a pyhf PatchSet (JSON) for the likelihood's background-only workspace.")
COMPARE = typer.Option(
    False,
    "--compare-simplified",
    help="With --signal: also compute every point on the bundle's simplified likelihood derived from the same likelihood (its signal: the point's "
    "yields in the simplified likelihood's bins) and report full vs simplified CLs per point.",
)
HTML = typer.Option(None, "--html", help="Write a self-contained HTML report (replay's page: the table and the exclusion plot).")
JSON = typer.Option(
    False,
    "--json",
    help='With --interface: the interface as JSON. Otherwise {"points": {NAME: {CLs_obs, CLs_exp, mu_up_obs, mu_up_exp, xsec_up_obs_pb, ..., dropped}}, "summary", "warnings"}.',
)


def _check_options(interface: bool, template: bool, signal: Path | None, jobs: int | None, scheduler: str | None, compare_simplified: bool) -> None:
    """One of --interface, --template and --signal; the options that go together."""
    if sum((interface, template, signal is not None)) != 1:
        raise InputError("give exactly one of --interface, --template and --signal FILE")
    if jobs is not None and scheduler is not None:
        raise InputError("--jobs and --scheduler exclude each other: --scheduler runs on the Dask cluster's workers")
    if compare_simplified and signal is None:
        raise InputError("--compare-simplified compares the points of --signal FILE; give --signal")


def _check_targets(targets: dict[str, Path | None]) -> None:
    """Each output given (flag -> path) can be written: a file in an existing directory."""
    from heparch.reinterpret.run import unwritable  # start-up: loaded when this command runs

    for flag, path in targets.items():
        reason = None if path is None else unwritable(path)
        if reason is not None:
            raise InputError(f"{flag} {path}: {reason}")


def _show_interface(source: Source, likelihood: str | None, json_out: bool) -> None:
    from heparch.components.interface import describe  # start-up: loaded when this command runs

    names = [likelihood] if likelihood is not None else source.with_patches
    if not names:
        raise InputError(f"{source.path}: no likelihood has published signal patches, so no signal interface can be derived")
    interfaces = [source.interface(n) for n in names]
    if json_out:
        emit_json({"likelihoods": {i.likelihood: i.to_json() for i in interfaces}})
    else:
        typer.echo("\n".join(describe(i) for i in interfaces))


def _write_template(source: Source, likelihood: str | None, output: Path | None) -> None:
    from heparch.reinterpret.run import template  # start-up: loaded when this command runs
    from heparch.reinterpret.signal import dump  # start-up: loaded when this command runs
    from heparch.store.writer import atomic_output  # start-up: loaded when this command runs

    fmt = "yaml" if output is None else output.suffix.lower().lstrip(".").replace("yml", "yaml")
    if fmt not in ("yaml", "json", "csv"):
        raise InputError(f"-o {output}: use a .yaml, .json or .csv file (the format comes from the suffix)")
    itf, point = template(source, likelihood)
    header = f"arch reinterpret template for {itf.likelihood}: one point, prefilled from a published point; units: {itf.units()}"
    text = dump([point], fmt, likelihood=itf.likelihood, header=header, keys=[s.key for s in itf.systematics])
    if output is None:
        typer.echo(text, nl=False)
        return
    with atomic_output(output) as fh:
        fh.write(text.encode("utf-8"))
    say(f"{output}: template with point {point.name!r} ({len(point.regions)} regions)")


def _compute(plan: Plan, jobs: int | None, scheduler: str | None, quiet: bool) -> ReplayReport:
    from heparch.reinterpret.run import run  # start-up: loaded when this command runs
    from heparch.replay.core import default_jobs  # start-up: loaded when this command runs

    n_jobs = jobs or default_jobs()
    where = f"on Dask at {scheduler}" if scheduler else f"{n_jobs} local process{'es' if n_jobs > 1 else ''}"
    say(f"{plan.source.path}: {len(plan.tasks)} new point(s) of {plan.interface.likelihood}, {where}; signal interface {plan.interface.source}")
    progress = Progress(len(plan.tasks), "reinterpret", quiet=quiet)
    failed = 0

    def arrived(outcome: PointOutcome, done: int, total: int) -> None:
        nonlocal failed
        if outcome.note is not None:
            progress.message(f"{outcome.key}: {outcome.note}")
        if not outcome.passed:
            failed += 1
            progress.message(f"ERROR {outcome.key}: {outcome.error}")
        progress.update(done, failed)

    try:
        return run(plan, jobs=n_jobs, scheduler=scheduler, on_outcome=arrived)
    finally:
        progress.close()


def _summary(plan: Plan, report: ReplayReport, json_out: bool) -> None:
    dropped = {str(d) for g in plan.generated.values() for d in g.dropped}
    if dropped:
        say(f"{len(dropped)} modifier(s) of the published signals not given to the new points (see --json 'dropped'; 'arch reinterpret --interface')")
    for o in report.points:
        print_result(_point_line(o), json_out=json_out)


def _point_line(o: PointOutcome) -> str:
    """A point's result in one line: its CLs and limits (and its simplified CLs), or its error."""
    v = o.replayed.to_json() if o.replayed is not None else {}
    if not v:
        return f"{o.key}: ERROR {o.error}"
    limit = f", mu_up_obs {v['mu_up_obs']:.4g}" if v.get("mu_up_obs") is not None else ""
    xsec = f", xsec_up_obs {v['xsec_up_obs_pb']:.4g} pb" if v.get("xsec_up_obs_pb") is not None else ""
    return f"{o.key}: CLs_obs {v['CLs_obs']:.4g}, CLs_exp {v['CLs_exp'][2]:.4g}{limit}{xsec}{_vs_simplified(o)}"


def _vs_simplified(o: PointOutcome) -> str:
    """``; simplified CLs_obs ..., CLs_exp ...`` (or its error) for --compare-simplified, else nothing."""
    if o.simplified is None:
        return ""
    sl = o.simplified.to_json()
    if "CLs_obs" not in sl:
        return f"; simplified: ERROR {sl.get('error')}"
    return f"; simplified CLs_obs {sl['CLs_obs']:.4g} (difference {sl.get('difference_CLs_obs', float('nan')):+.3g}), CLs_exp {sl['CLs_exp'][2]:.4g}"


def reinterpret(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst) whose likelihood to reinterpret."),
    interface: bool = INTERFACE,
    signal: Path | None = SIGNAL,
    template: bool = TEMPLATE,
    output: Path | None = OUTPUT,
    likelihood: str | None = LIKELIHOOD,
    upper_limits: bool = UPPER,
    xsec: float | None = XSEC,
    backend: str | None = BACKEND,
    jobs: int | None = JOBS,
    scheduler: str | None = SCHEDULER,
    patchset_out: Path | None = PATCHSET_OUT,
    compare_simplified: bool = COMPARE,
    html: Path | None = HTML,
    json_out: bool = JSON,
    quiet: bool = QUIET,
) -> None:
    """Compute new signal points on a published likelihood without writing patches by hand.

    --interface prints the signal interface: the one the analysis declared (a signal-interface
    component, checked against the patches at build), else the one derived from the bundle's
    published signal patches (never stored in the bundle); --template writes a yields file to fill in; --signal computes
    CLs (observed and expected band) of every point in the file, in parallel, with upper limits
    on mu (--upper-limits) and on the cross-section (--xsec). Progress goes to stderr, the
    per-point results to stdout (to stderr with --json, whose document holds stdout). Exit 0 when every point was computed, 1 when any could not be, 2 on bad inputs
    (unknown region or systematic, wrong bin count, NaN, a total rate < 0 for mu in the POI bounds).

    With --compare-simplified each point is also computed on the bundle's simplified likelihood
    of the same likelihood; its bins are mapped to the full likelihood's channels by their
    observed counts (exit 2 when that mapping cannot be found).

    Example: arch reinterpret 1lbb.zst --signal new.csv --upper-limits --xsec 0.05 --jobs 2 --patchset-out new_patchset.json
    """
    from heparch.reinterpret import run as reinterpreting  # start-up: loaded when this command runs

    _check_options(interface, template, signal, jobs, scheduler, compare_simplified)
    _check_targets({"-o": output, "--patchset-out": patchset_out, "--html": html})
    source = reinterpreting.load(bundle, simplified=compare_simplified)
    if interface:
        return _show_interface(source, likelihood, json_out)
    if template:
        return _write_template(source, likelihood, output)
    assert signal is not None
    failed = _run_signal(source, signal, likelihood, upper_limits, xsec, backend, jobs, scheduler, patchset_out, html, json_out, quiet, compare_simplified)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _run_signal(source: Source, signal: Path, likelihood: str | None, upper_limits: bool, xsec: float | None, backend: str | None,
                jobs: int | None, scheduler: str | None, patchset_out: Path | None, html: Path | None, json_out: bool,
                quiet: bool, compare_simplified: bool = False) -> bool:  # fmt: skip
    """Compute the points of ``signal``, write the outputs; whether any point failed."""
    from heparch.reinterpret import run as reinterpreting  # start-up: loaded when this command runs
    from heparch.reinterpret.signal import read  # start-up: loaded when this command runs

    plan = reinterpreting.plan(
        source, read(signal), likelihood=likelihood, upper_limits=upper_limits, xsec_pb=xsec, backend=backend, compare_simplified=compare_simplified
    )
    for note in plan.notes:
        say(note)
    for w in plan.warnings:
        say(f"warning: {w.one_line()}")
    if patchset_out is not None:
        reinterpreting.write_json(patchset_out, reinterpreting.patchset(plan))
    report = _compute(plan, jobs, scheduler, quiet)
    _summary(plan, report, json_out)
    if html is not None:
        from heparch.replay.report import write_reports  # start-up: loaded when this command runs

        write_reports(report, junit=None, html_path=html)
    if json_out:
        emit_json(reinterpreting.to_json(plan, report))
    return bool(report.failed)


def register(app: typer.Typer) -> None:
    app.command("reinterpret")(reinterpret)
