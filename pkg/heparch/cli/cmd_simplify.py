"""``arch simplify``: derive a simplified likelihood from a full likelihood (DESIGN.md 5b)."""

from __future__ import annotations

from pathlib import Path

import typer

from heparch.cli._common import emit_json, print_result, say
from heparch.cli._progress import QUIET, stages
from heparch.errors import InputError

_INPUT_HELP = "The full likelihood: a pyhf workspace JSON (with --patchset) or a bundle (.zst)."
_PATCHSET_HELP = "A pyhf patchset JSON whose patches give the signals (required for a workspace INPUT); in a bundle, the logical path of one of its patchsets (default: all)."
_LIKELIHOOD_HELP = "The logical path of the likelihood to simplify, for a bundle that holds several."
_CHANNELS_HELP = "Comma-separated channel names whose bins the simplified likelihood keeps, in that order. Default: every channel, in pyhf's (sorted) order."


def simplify(
    input_: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="The simplified-likelihood JSON to write (atomically)."),
    patchset: str | None = typer.Option(None, "--patchset", help=_PATCHSET_HELP),
    likelihood: str | None = typer.Option(None, "--likelihood", help=_LIKELIHOOD_HELP),
    channels: str | None = typer.Option(None, "--channels", help=_CHANNELS_HELP),
    samples: int = typer.Option(100_000, "--samples", help="How many nuisance-parameter samples the moments are computed from."),
    seed: int = typer.Option(0, "--seed", help="The seed of numpy's default_rng; recorded in derived_from."),
    json_out: bool = typer.Option(
        False,
        "--json",
        help="Print a summary as JSON on stdout: bins (channel and bin index of each entry), linear_bins, samples, clipped_samples, seconds, derived_from, warnings.",
    ),
    quiet: bool = QUIET,
) -> None:
    """Derive a simplified likelihood (background means, covariance and third moments per bin;
    a signal vector per patch) by sampling the nuisance parameters from their post-fit
    distribution after a background-only fit to the observed data (Buckley et al. 2019).
    Bins whose third moment breaks m3^2 <= 8 m2^3 keep the linear form, with a warning.
    'arch build' of a directory holding the workspace and the output attaches it to the
    likelihood. Exit 0 when written, 2 for bad inputs, 3 when a fit does not converge.

    Example: arch simplify BkgOnly.json --patchset patchset.json -o simplified.json --samples 100000 --seed 1
    """
    from heparch.simplify import check_output, write  # start-up: loaded when this command runs
    from heparch.simplify import simplify as derive  # start-up: loaded when this command runs

    chosen = _channels(channels)
    out = check_output(output, inputs=[input_, *([patchset] if patchset is not None else [])])
    with stages("simplify", quiet=quiet) as on_progress:
        result = derive(input_, patchset=patchset, likelihood=likelihood, channels=chosen, samples=samples, seed=seed, on_progress=on_progress)
    for line in result.warnings:
        say(f"warning: {line}")
    write(result, out)
    linear = len(result.linear_bins)
    print_result(
        f"{out}: {len(result.bins)} bins, {len(result.sl['signals'])} signals, {result.samples} samples (seed {seed}), "
        f"{result.seconds:.1f} s; {linear} bin{'' if linear == 1 else 's'} fell back to the linear form; "
        f"{result.clipped} sample{'' if result.clipped == 1 else 's'} had parameters clipped to their bounds",
        json_out=json_out,
    )
    if json_out:
        emit_json({**result.summary(), "output": str(out)})


def _channels(channels: str | None) -> list[str] | None:
    """``--channels A,B``: the channel names (None: every channel)."""
    if channels is None:
        return None
    chosen = [c.strip() for c in channels.split(",") if c.strip()]
    if not chosen:
        raise InputError(f"--channels {channels!r}: name at least one channel (comma-separated)")
    return chosen


def register(app: typer.Typer) -> None:
    app.command("simplify")(simplify)
