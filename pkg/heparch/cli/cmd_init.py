"""``arch init``: write a commented arch.yaml describing an analysis directory."""

from __future__ import annotations

from pathlib import Path

import typer

from heparch.cli._common import emit_json, print_result


def init(
    directory: Path = typer.Argument(..., metavar="DIRECTORY", help="The analysis directory."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing arch.yaml."),
    json_out: bool = typer.Option(False, "--json", help='Print {"path"} of the arch.yaml written as JSON on stdout.'),
) -> None:
    """Write DIRECTORY/arch.yaml: every field explained in a comment, the files found listed with
    the roles they were recognised as, and the analysis metadata the directory already holds
    (a HEPData submission.yaml, a patchset's references, an SModelS globalInfo.txt), each value
    with a comment saying where it came from. Nothing is invented: the other fields are
    commented-out examples. Edit it, then run 'arch build DIRECTORY'.
    """
    from heparch.init import init as run  # start-up: loaded when this command runs

    path = run(directory, force=force)
    print_result(f"wrote {path}; edit it, then run: arch build {directory}", json_out=json_out)
    if json_out:
        emit_json({"path": str(path)})


def register(app: typer.Typer) -> None:
    app.command("init")(init)
