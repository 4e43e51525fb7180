"""``arch export``: a verified bundle as a HEPData submission, DataCite, Zenodo, CITATION.cff or RO-Crate metadata."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from heparch.cli._common import emit_json, say


class Format(enum.StrEnum):
    hepdata = "hepdata"
    datacite = "datacite"
    zenodo = "zenodo"
    citation = "citation"
    ro_crate = "ro-crate"


def export(
    fmt: Format = typer.Argument(..., metavar="FORMAT", help="hepdata, datacite, zenodo, citation or ro-crate."),
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst)."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write: for hepdata a new (or empty) directory, or a file ending in .zip; for datacite a .json file, "
        "or DataCite XML when it ends in .xml. Default: BUNDLE-NAME-hepdata/, datacite.json, .zenodo.json, CITATION.cff "
        "or ro-crate-metadata.json in the current directory.",
    ),
    doi: str | None = typer.Option(None, "--doi", help="The DOI the repository reserved for the deposit (datacite: required; zenodo, citation: recorded)."),
    publisher: str | None = typer.Option(None, "--publisher", help="The publisher of the deposit, e.g. Zenodo (datacite: required)."),
    year: int | None = typer.Option(None, "--year", min=1000, max=9999, help="The publication year of the deposit (datacite: required)."),
    json_out: bool = typer.Option(False, "--json", help='Print {"format", "bundle", "identity", "output", "files"} as JSON on stdout.'),
) -> None:
    """Verify BUNDLE fully, then write its metadata, claimed results and identity as FORMAT:
    a HEPData submission (the likelihoods as HistFactory resources, the claims as tables),
    DataCite 4.5 JSON or XML, Zenodo deposit metadata (.zenodo.json), CITATION.cff (CFF 1.2.0) or
    a detached RO-Crate 1.1 ro-crate-metadata.json for the unpacked bag. Every value comes from
    the bundle, except what a repository assigns at deposit (--doi, --publisher, --year); a
    field the format requires and the bundle lacks is refused (exit 2), naming it. Nothing is
    written if verification fails (exit 1). See docs/export.md for each format's mapping.
    """
    from heparch.export import Deposit  # start-up: loaded when this command runs
    from heparch.export import export as run  # start-up: loaded when this command runs

    written = run(fmt.value, bundle, output, deposit=Deposit(doi=doi, publisher=publisher, year=year))
    say(f"exported {bundle} as {written.format} to {written.output} ({len(written.files)} file{'' if len(written.files) == 1 else 's'})")
    if json_out:
        emit_json(written.to_json())


def register(app: typer.Typer) -> None:
    app.command("export")(export)
