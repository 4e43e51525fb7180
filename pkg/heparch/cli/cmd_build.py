"""``arch build``: an analysis directory (or one workspace JSON, or a HEPData archive) -> a bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from heparch.cli._common import emit_json, print_result, render_findings, say
from heparch.cli._progress import QUIET, status


def build(
    source: Path = typer.Argument(
        ...,
        metavar="SOURCE",
        help="Analysis directory (with or without arch.yaml), a single pyhf workspace JSON, or a HEPData archive (.tar.gz, .tgz, .tar, .zip) or submission.",
    ),
    output: Path = typer.Option(None, "-o", "--output", help="Bundle to write. Default: ./<name>.zst, name from arch.yaml or the source."),
    supersedes: Path = typer.Option(
        None,
        "--supersedes",
        metavar="OLD.zst",
        help="The bundle this one is a new version of: its identity is recorded (manifest 'supersedes'; overrides arch.yaml's supersedes).",
    ),
    note: str = typer.Option(None, "--note", metavar="TEXT", help="What changed since --supersedes (overrides arch.yaml's version_note)."),
    json_out: bool = typer.Option(False, "--json", help="Print {identity, output, warnings} as JSON on stdout."),
    quiet: bool = QUIET,
) -> None:
    """Pack SOURCE into a deterministic, content-addressed bundle.

    Without arch.yaml, files are recognised by content: pyhf workspaces become likelihoods,
    patchsets and patch.<name>.json files attach to the workspace in their directory,
    other files are attachments. Invalid inputs are refused (exit 2) with one line per
    problem naming the file, the JSON path and the fix. Same inputs, byte-identical bundle.

    A HEPData likelihood archive is read as downloaded (one top folder is stripped; RegionX/
    folders stay), through the import profile (spec section 8.1): links, devices, unsafe or
    duplicate names and archives beyond the entry, size and ratio caps are refused (E090-E095),
    macOS metadata is skipped (W020). A submission's additional_resources archive is unpacked
    into a folder of its name. Metadata comes from submission.yaml and patchsets where arch.yaml
    is silent. The archive and its unpacked directory give the same identity.
    """
    from heparch.build import build as run  # start-up: loaded when this command runs

    with status(f"building {source}", quiet=quiet):
        result = run(source, output=output, supersedes=supersedes, note=note)
    if result.warnings:
        say(f"{len(result.warnings)} warning(s):")
        render_findings(result.warnings)
    print_result(f"built {result.output} ({len(result.manifest.files)} files)\nidentity {result.identity}", json_out=json_out)
    if json_out:
        emit_json({"identity": result.identity, "output": str(result.output), "warnings": [w.to_json() for w in result.warnings]})


def register(app: typer.Typer) -> None:
    app.command("build")(build)
