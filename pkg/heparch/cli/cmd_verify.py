"""``arch verify``: fixity, schema and semantic checks of a bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from heparch.cli._common import emit_json, render_findings, say
from heparch.errors import EXIT_FAILED


def verify(
    bundle: Path = typer.Argument(..., help="The bundle (.zst) to check."),
    level: str = typer.Option("full", "--level", help="structure: archive layout and manifest; fixity: plus every blob's size and hashes; full: plus component schemas and semantics."),
    json_out: bool = typer.Option(False, "--json", help='Print {"valid", "identity", "level", "findings"} as JSON on stdout.'),
) -> None:
    """Check BUNDLE. Exit 0 when valid (warnings allowed), 1 when it fails a check, 2 on usage errors.

    Every problem is a finding with a stable code from spec/validation-codes.md.
    """
    from heparch.verify import verify as run

    result = run(bundle, level=level)  # type: ignore[arg-type]
    report = result.report
    if report.findings:
        render_findings(report.findings)
    verdict = "valid" if result.valid else "INVALID"
    say(f"{bundle}: {verdict} at level {level} ({len(report.errors)} errors, {len(report.warnings)} warnings); identity {result.identity}")
    if json_out:
        emit_json(result.to_json())
    if not result.valid:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
