"""Docs that are generated from the code stay current."""

from __future__ import annotations

from pathlib import Path

from heparch.cli.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text("utf-8")
    assert committed == render(), "regenerate: python -m heparch.cli.reference > docs/cli.md"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for command in ("init", "build", "verify", "inspect", "ls", "cat", "extract"):
        assert f"arch {command}" in readme
