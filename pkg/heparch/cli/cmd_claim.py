"""``arch claim``: compute every point's CLs (and limits) and record them in a new bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heparch.cli import _settings as opts
from heparch.cli._common import emit_json, print_result, say
from heparch.cli._progress import QUIET, Progress
from heparch.cli.cmd_replay import BACKEND, JOBS, SCHEDULER
from heparch.errors import InputError

if TYPE_CHECKING:
    from heparch.claim import ClaimResult
    from heparch.replay.work import TaskResult


def claim(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst) whose likelihoods to compute."),
    output: Path = typer.Option(..., "-o", "--output", help="The new bundle to write (the input is never changed)."),
    backend: str | None = BACKEND,
    jobs: int | None = JOBS,
    scheduler: str | None = SCHEDULER,
    upper_limits: bool = typer.Option(False, "--upper-limits", help="Also compute the upper limits on the signal strength at CLs = 0.05 (slower)."),
    allow_failures: bool = typer.Option(False, "--allow-failures", help="Write the claims of the points that could be computed even when others failed."),
    test_stat: str = opts.TEST_STAT,
    normsys: str = opts.NORMSYS,
    histosys: str = opts.HISTOSYS,
    poi_bounds: str | None = opts.POI_BOUNDS,
    measurement: str | None = opts.MEASUREMENT,
    audit: int = typer.Option(
        1,
        "--audit",
        min=0,
        help="Recompute N points the fast engine computed with pyhf (a simplified likelihood's with spey, when installed), chosen by a seed "
        "derived from the bundle identity; compare -ln L of the free fit, then CLs, and record the largest difference as a fraction of "
        "the tolerance in the results' 'audit'. A difference above the tolerance fails the claim (exit 1, nothing written). 0: no audit.",
    ),
    json_out: bool = typer.Option(False, "--json", help='Print {"output", "identity", "parent", "components", "points", "failed", "audit"} on stdout.'),
    quiet: bool = QUIET,
) -> None:
    """Compute CLs at mu=1 (and with --upper-limits the upper limits) for every signal point of
    every likelihood of BUNDLE, and write a new bundle with one results component per
    likelihood: the values, settings (the options below), software versions, the backend (per
    point: a point the fast engine cannot compute falls back to pyhf, and says so), marks of
    several minima or underflow, default tolerance (CLs: abs 1e-4, rel 1e-3; limits: rel 1e-3)
    and the parent bundle's identity.

    The new bundle has a new identity and no signatures. An existing results component of a
    likelihood is replaced. Exit 0 when written, 1 when BUNDLE is invalid, 2 on bad inputs or
    when a point cannot be computed (nothing is written unless --allow-failures).

    Example: arch claim analysis.zst -o claimed.zst --jobs 2 --upper-limits
    """
    from heparch.claim import claim as run  # start-up: loaded when this command runs
    from heparch.replay.core import default_jobs  # start-up: loaded when this command runs

    if jobs is not None and scheduler is not None:
        raise InputError("--jobs and --scheduler exclude each other: --scheduler runs on the Dask cluster's workers")
    shown = _Stages(bundle, quiet=quiet)
    try:
        result = run(
            bundle,
            output,
            backend=backend,
            jobs=jobs or default_jobs(),
            scheduler=scheduler,
            upper_limits=upper_limits,
            allow_failures=allow_failures,
            settings=opts.settings(test_stat, normsys, histosys, poi_bounds, measurement),
            audit=audit,
            on_start=shown.started,
            on_result=shown.arrived,
        )
    finally:
        shown.progress.close()
    _show(result, json_out=json_out)


def _show(result: ClaimResult, *, json_out: bool) -> None:
    """The notes, the audit and the points not claimed (stderr); what was written (stdout, or JSON with --json)."""
    for note in result.notes:
        say(note)
    say(result.audit.one_line(worst=True))
    for key, error in sorted(result.failed.items()):
        say(f"warning: {key}: not claimed: {error}")
    print_result(
        f"claimed {result.points} point(s) in {len(result.components)} results component(s): {', '.join(sorted(result.components.values()))}\n"
        f"wrote {result.output}\nidentity {result.identity} (parent {result.parent})",
        json_out=json_out,
    )
    if json_out:
        emit_json(
            {
                "output": str(result.output),
                "identity": result.identity,
                "parent": result.parent,
                "components": dict(result.components),
                "points": result.points,
                "failed": dict(result.failed),
                "audit": result.audit.to_json(),
            }
        )


class _Stages:
    """claim's ``on_start`` and ``on_result``: a line saying what starts, then a bar counting its
    points (the claim's; then the audit's on a bar of its own, whose elapsed and remaining time are
    the audit's), a failure as a line of its own."""

    def __init__(self, bundle: Path, *, quiet: bool) -> None:
        self.bundle = bundle
        self.quiet = quiet
        self.progress = Progress(None, f"claim: reading {bundle.name}", quiet=quiet)  # from the start: reading and planning take seconds
        self.failed = 0
        self.what = ""  # in a failure's line: "" for a claimed point, "audit " for an audited one

    def started(self, stage: str, n: int) -> None:
        self.failed, self.what = 0, "" if stage == "points" else f"{stage} "
        if stage == "points":
            self.progress.message(f"{self.bundle}: claiming {n} point(s)")
            self.progress.start(n, "claim")
            return
        self.progress.close()  # the points' bar keeps its last state
        self.progress = Progress(n, "claim: audit", quiet=self.quiet)
        self.progress.message(f"{self.bundle}: auditing {n} point(s) with the reference backend")

    def arrived(self, result: TaskResult, done: int, total: int) -> None:
        if result.error is not None:
            self.failed += 1
            self.progress.message(f"FAIL {self.what}{result.point}: {result.error}")
        self.progress.update(done, self.failed)


def register(app: typer.Typer) -> None:
    app.command("claim")(claim)
