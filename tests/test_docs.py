"""Docs that are generated from the code stay current."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from heparch.cli.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text("utf-8")
    assert committed == render(), "regenerate: python -m heparch.cli.reference > docs/cli.md"


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for command in ("init", "build", "verify", "inspect", "ls", "cat", "extract", "cls", "upper-limit", "claim", "replay"):
        assert f"arch {command}" in readme


def test_readme_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick start's arch commands (build, verify, replay of the example) succeed as written."""
    from clihelp import run

    readme = (ROOT / "README.md").read_text("utf-8")
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S)
    assert first is not None
    steps = [s.strip() for s in first.group(1).split("&&")]
    commands = [shlex.split(s)[1:] for s in steps if s.startswith("arch ")]
    assert [c[0] for c in commands] == ["build", "verify", "replay"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    for args in commands:
        code, _, err = run(*args)
        assert code == 0, f"arch {' '.join(args)}: exit {code}: {err}"
    assert "<svg" in (tmp_path / "replay.html").read_text("utf-8")
