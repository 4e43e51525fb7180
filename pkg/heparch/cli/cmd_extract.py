"""``arch extract``: unpack a verified bundle into a directory that rebuilds to the same identity."""

from __future__ import annotations

from pathlib import Path

import typer

from heparch.cli._common import emit_json, print_result
from heparch.cli._progress import QUIET, status


def extract(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst)."),
    output: Path = typer.Option(..., "-o", "--output", help="New (or empty) directory to write into."),
    json_out: bool = typer.Option(False, "--json", help='Print {"bundle", "output"} as JSON on stdout.'),
    quiet: bool = QUIET,
) -> None:
    """Verify BUNDLE fully, then write every file at its logical path plus arch.yaml
    (with created and all metadata) and signatures/. 'arch build' of the directory gives
    a bundle with the same identity. Nothing is written if verification fails.
    """
    from heparch.extract import extract as run  # start-up: loaded when this command runs

    with status(f"verifying and extracting {bundle}", quiet=quiet):
        out = run(bundle, output)
    print_result(f"extracted {bundle} into {out}", json_out=json_out)
    if json_out:
        emit_json({"bundle": str(bundle), "output": str(out)})


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
