"""``arch replay``: recompute a bundle's claimed results and compare them within their tolerance.

The options are shared with ``arch verify --replay`` (:func:`run_replay`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heparch import signals
from heparch.cli._common import emit_json, print_result, say
from heparch.cli._progress import QUIET, Progress, status
from heparch.errors import EXIT_FAILED, EXIT_OK, InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from heparch.replay.core import Plan
    from heparch.replay.outcome import PointOutcome, ReplayReport
    from heparch.signing.keys import Signer

POINT = typer.Option([], "--point", help="Replay only this claimed point (repeatable); with several likelihoods also '<likelihood>:<point>'.")
LIKELIHOOD = typer.Option(None, "--likelihood", help="Replay only the claims of this likelihood (its logical path).")
SAMPLE = typer.Option(None, "--sample", help="Replay a random sample of N of the selected points (reproducible with --seed).", min=1)
SEED = typer.Option(0, "--seed", help="Seed of --sample's random choice.")
BACKEND = typer.Option(
    None,
    "--backend",
    help="fast, pyhf or simplified. Default: chosen per likelihood at replay time, fast where it supports the model, else pyhf; simplified for a simplified likelihood.",
)
JOBS = typer.Option(None, "--jobs", "-j", help="Local worker processes. Default: the number of CPUs.", min=1)
SCHEDULER = typer.Option(
    None, "--scheduler", help="Run on a Dask distributed cluster: the scheduler's address, e.g. tcp://host:8786 (workers need heparch installed)."
)
RESUME = typer.Option(None, "--resume", help="State file: points already computed there are not run again; new results are added as they arrive.")
AUDIT = typer.Option(
    0,
    "--audit",
    min=0,
    help="Also recompute N points the fast engine replayed with pyhf (a simplified likelihood's with spey, when installed), chosen by a seed "
    "derived from the bundle identity; compare -ln L of the free fit, then CLs, and report the largest difference as a fraction of the "
    "tolerance. A difference above the tolerance fails the point like a mismatch. pyhf takes ~20-70 s a point on a real likelihood.",
)
JSON = typer.Option(
    False,
    "--json",
    help='Print {"points": {NAME: {"likelihood", "claimed", "replayed", "pass", "backend", "seconds"}}, "summary": {"total", "passed", "failed", "seconds"}} on stdout; with --attest also "attested": {"identity", "keyid", "role", "written"}.',
)
JUNIT = typer.Option(None, "--junit", help="Write a JUnit XML report: one test case per point, a <failure> per mismatch.")
HTML = typer.Option(None, "--html", help="Write a self-contained HTML report with the table and a plot of claimed vs replayed exclusion.")
PLOT = typer.Option(
    None,
    "--plot",
    metavar="FILE.pdf|png|svg",
    help="Write the exclusion plot alone (observed and expected contours, claimed and replayed) for a paper; the format comes from the suffix.",
)
ATTEST = typer.Option(
    None,
    "--attest",
    metavar="KEY",
    help="When every claimed point was replayed and agreed, sign BUNDLE in place (like 'arch sign') with a record of this replay "
    "(heparch version, backends, each point's worst difference / tolerance, date, platform). KEY: an Ed25519 private key file, "
    "or env:HEPARCH_KEY to read the key text from that variable (in CI); its passphrase from --passphrase-file or $HEPARCH_PASSPHRASE. Needs --role.",
)
PASSPHRASE_FILE = typer.Option(
    None,
    "--passphrase-file",
    metavar="FILE",
    help="With --attest: a file whose first line is the key's passphrase (else $HEPARCH_PASSPHRASE; neither: no passphrase), as for 'arch sign'.",
)
ROLE = typer.Option(None, "--role", help="With --attest: the role the record is signed for, e.g. replay-ci (1-24 of a-z, 0-9, '-').")
SIMPLIFIED = typer.Option(
    True,
    "--simplified/--no-simplified",
    help="Also compute a simplified likelihood derived from the same likelihood, when the bundle has one, and report how far it is from the full result.",
)


def run_replay(
    bundle: Path,
    *,
    point: list[str],
    likelihood: str | None,
    sample: int | None,
    seed: int,
    backend: str | None,
    jobs: int | None,
    scheduler: str | None,
    resume: Path | None,
    junit: Path | None,
    html: Path | None,
    simplified: bool,
    audit: int = 0,
    plot: Path | None = None,
    json_out: bool = False,
    quiet: bool = False,
) -> ReplayReport:
    """Replay ``bundle`` with the CLI's options: progress and failures on stderr, the summary
    table on stdout (stderr with ``json_out``), the JUnit, HTML and plot files written; the
    report (``report.failed`` decides the exit code)."""
    from heparch.replay import core  # start-up: loaded when this command runs
    from heparch.replay.report import summary_table, write_reports  # start-up: loaded when this command runs

    _check_options(junit, html, plot, jobs, scheduler)
    progress = Progress(None, f"replay: reading {bundle.name}", quiet=quiet)  # from the start: reading and planning take seconds
    try:
        plan = core.plan(bundle, points=point, likelihood=likelihood, sample=sample, seed=seed, backend=backend, compare_simplified=simplified)
        for note in plan.notes:
            progress.message(note)
        n_jobs = jobs or core.default_jobs()
        progress.message(_starting_line(bundle, plan, n_jobs, scheduler))
        progress.start(len(plan.tasks), "replay")
        report = core.run(
            plan, jobs=n_jobs, scheduler=scheduler, resume=resume, audit=audit, on_outcome=_reporter(progress), on_audit=_audit_reporter(bundle, progress)
        )
    except core.ReplayInterrupted as exc:
        raise signals.Interrupted(exc.signum, interrupted_line(exc.done, exc.total, exc.resume)) from None
    finally:
        progress.close()
    print_result(summary_table(report), json_out=json_out)
    write_reports(report, junit=junit, html_path=html)
    _write_plot(report, plot)
    return report


def _starting_line(bundle: Path, plan: Plan, n_jobs: int, scheduler: str | None) -> str:
    """``BUNDLE: replaying N point(s) of M likelihood(s), WHERE``."""
    where = f"on Dask at {scheduler}" if scheduler else f"{n_jobs} local process{'es' if n_jobs > 1 else ''}"
    n_likelihoods = len({plan.contexts[t.token].likelihood for t in plan.tasks})
    return f"{bundle}: replaying {len(plan.tasks)} point(s) of {n_likelihoods} likelihood(s), {where}"


def interrupted_line(done: int, total: int, resume: Path | None) -> str:
    """The one line an interrupted replay prints.

    >>> interrupted_line(12, 125, Path("s.json"))
    'interrupted: 12 of 125 points done; state in s.json; rerun with --resume s.json'
    """
    if resume is None:
        return f"interrupted: {done} of {total} points done; none kept (run with --resume FILE to keep computed points across runs)"
    return f"interrupted: {done} of {total} points done; state in {resume}; rerun with --resume {resume}"


def _write_plot(report: ReplayReport, plot: Path | None) -> None:
    """--plot: the exclusion plot alone, and its notes on stderr."""
    if plot is None:
        return
    from heparch.replay.plot import write_plot  # only with --plot; matplotlib when a plot is drawn

    for note in write_plot(report, plot):
        say(f"{plot}: {note}")


def _check_options(junit: Path | None, html: Path | None, plot: Path | None, jobs: int | None, scheduler: str | None) -> None:
    """Bad output paths and exclusive options are refused before any work."""
    if plot is not None and plot.suffix.lower() not in (".pdf", ".png", ".svg"):
        raise InputError(f"--plot {plot}: the format comes from the suffix; use .pdf, .png or .svg")
    for target, flag in ((junit, "--junit"), (html, "--html"), (plot, "--plot")):
        if target is not None:
            _check_target(target, flag)
    if jobs is not None and scheduler is not None:
        raise InputError("--jobs and --scheduler exclude each other: --scheduler runs on the Dask cluster's workers")


def _check_target(target: Path, flag: str) -> None:
    """An output file of ``flag``: not a directory, in a directory that exists."""
    if target.is_dir() or not target.parent.is_dir():
        raise InputError(f"{flag} {target}: {'is a directory' if target.is_dir() else 'its directory does not exist'}; give a file in an existing directory")


def _audit_reporter(bundle: Path, progress: Progress) -> Callable[[int, int], None]:
    """The ``on_audit`` callback: the audit's start as a line, then its own count on the bar."""

    def audited(done: int, total: int) -> None:
        if done == 0:
            progress.message(f"{bundle}: auditing {total} point(s) with the reference backend")
            progress.start(total, "replay: audit")
        else:
            progress.update(done)

    return audited


def _reporter(progress: Progress) -> Callable[[PointOutcome, int, int], None]:
    """The ``on_outcome`` callback: a note or failure as a line of its own, then the bar."""
    failed = 0

    def arrived(outcome: PointOutcome, done: int, total: int) -> None:
        nonlocal failed
        if outcome.note is not None:
            progress.message(f"{outcome.key}: {outcome.note}")
        if not outcome.passed:
            failed += 1
            why = outcome.error or "; ".join(m.one_line() for m in outcome.mismatches[:2])
            word = "CLAIM AT A LOCAL MINIMUM" if outcome.local_minimum is not None else "FAIL"
            progress.message(f"{word} {outcome.key}: {why}")
        progress.update(done, failed)

    return arrived


def replay(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst) whose claims to replay."),
    point: list[str] = POINT,
    likelihood: str | None = LIKELIHOOD,
    sample: int | None = SAMPLE,
    seed: int = SEED,
    backend: str | None = BACKEND,
    jobs: int | None = JOBS,
    scheduler: str | None = SCHEDULER,
    resume: Path | None = RESUME,
    json_out: bool = JSON,
    junit: Path | None = JUNIT,
    html: Path | None = HTML,
    simplified: bool = SIMPLIFIED,
    audit: int = AUDIT,
    plot: Path | None = PLOT,
    attest: str | None = ATTEST,
    role: str | None = ROLE,
    passphrase_file: Path | None = PASSPHRASE_FILE,
    quiet: bool = QUIET,
) -> None:
    """Recompute the claimed CLs values (and upper limits, where claimed) of BUNDLE with the
    recorded settings and compare them within the recorded tolerance, max(abs, rel x claimed).

    Points run in parallel (local processes, or Dask with --scheduler); a failing point is
    reported and the others go on. Progress goes to stderr, the summary table to stdout. Exit 0 when
    every point agrees, 1 when any does not (or cannot be computed), 2 on bad inputs.

    With --attest KEY --role ROLE a replay of every point that agreed is recorded in BUNDLE as a
    signed envelope (the identity does not change); a failed replay is never signed.

    Example: arch replay claimed.zst --jobs 2 --junit replay.xml --html replay.html --plot exclusion.pdf

    Example: HEPARCH_KEY="$CI_KEY" arch replay claimed.zst --attest env:HEPARCH_KEY --role replay-ci
    """
    attester = _attester(attest, role, passphrase_file, point=point, likelihood=likelihood, sample=sample, resume=resume)
    report = run_replay(
        bundle,
        point=point,
        likelihood=likelihood,
        sample=sample,
        seed=seed,
        backend=backend,
        jobs=jobs,
        scheduler=scheduler,
        resume=resume,
        junit=junit,
        html=html,
        simplified=simplified,
        audit=audit,
        plot=plot,
        json_out=json_out,
        quiet=quiet,
    )
    attested = _attest(bundle, *attester, report, quiet=quiet) if attester is not None and not report.failed else {}
    if json_out:
        emit_json({**report.to_json(), **attested})
    raise typer.Exit(EXIT_FAILED if report.failed else EXIT_OK)


def _attester(
    key: str | None,
    role: str | None,
    passphrase_file: Path | None,
    *,
    point: list[str],
    likelihood: str | None,
    sample: int | None,
    resume: Path | None,
) -> tuple[Signer, str] | None:
    """(key, role) of --attest, checked with the selection options before any work; None without --attest."""
    if key is None:
        _without_attest(role, passphrase_file)
        return None
    selected = [flag for flag, value in (("--point", point), ("--likelihood", likelihood), ("--sample", sample), ("--resume", resume)) if value]
    if selected:
        raise InputError(f"--attest records a replay of every claimed point in one run: drop {selected[0]}")
    return _signer(key, passphrase_file), _attest_role(role)


def _without_attest(role: str | None, passphrase_file: Path | None) -> None:
    """--role and --passphrase-file belong to --attest: refused without it."""
    if role is not None:
        raise InputError("--role is the role of --attest's record; give --attest KEY too (or use 'arch sign' to sign without replaying)")
    if passphrase_file is not None:
        raise InputError("--passphrase-file is the passphrase of --attest's key; give --attest KEY too (or drop --passphrase-file)")


def _attest_role(role: str | None) -> str:
    """--role of --attest: given, and a valid role name."""
    from heparch.signing.trust import role_problem  # only with --attest

    if role is None:
        raise InputError("--attest needs --role ROLE, the role its record is signed for (e.g. replay-ci)")
    problem = role_problem(role)
    if problem:
        raise InputError(f"--role: {problem}")
    return role


def _signer(key: str, passphrase_file: Path | None) -> Signer:
    """--attest's key: a key file, or ``env:NAME`` for the key's text in that variable; its
    passphrase from --passphrase-file, else $HEPARCH_PASSPHRASE (as ``arch sign``)."""
    from heparch.signing.keys import load_signer, read_passphrase, signer_from_text  # cryptography: only with --attest

    passphrase = read_passphrase(passphrase_file)
    if key.startswith(_ENV_PREFIX):
        variable = key.removeprefix(_ENV_PREFIX)
        return signer_from_text(_key_text(variable), where=f"${variable}", passphrase=passphrase)
    return load_signer(Path(key), passphrase=passphrase)


_ENV_PREFIX = "env:"


def _key_text(variable: str) -> bytes:
    text = os.environ.get(variable)
    if not text:
        raise InputError(f"--attest env:{variable}: ${variable} is not set or empty; put the private key's text in it (or give a key file)")
    return text.encode("utf-8")


def _attest(bundle: Path, signer: Signer, role: str, report: ReplayReport, *, quiet: bool) -> dict[str, object]:
    """Sign BUNDLE with the record of ``report`` (which passed every point); what was written, as --json's ``attested``."""
    from heparch.sign import attest  # only with --attest
    from heparch.signing.envelope import ReplayedPoint  # only with --attest

    points = [ReplayedPoint(p.likelihood, p.point, p.backend, p.ratio) for p in report.points]
    with status(f"verifying {bundle} and signing the record of this replay", quiet=quiet):
        done = attest(bundle, signer, role=role, identity=report.identity, points=points)
    if not quiet:
        say(f"attested: signed the record of this replay ({len(points)} points) for role {done.role} with key {done.keyid}; wrote {', '.join(done.written)}")
    return {"attested": {"identity": done.identity, "keyid": done.keyid, "role": done.role, "written": list(done.written)}}


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
