"""docs/tutorial.md runs as written: every ```sh block as one script, every `$ ` line of a
```console block as one command, each with the exit code the page states (`# exit N`, else 0),
in order, in an empty directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"


def steps(text: str) -> list[tuple[str, int]]:
    """(shell text, expected exit code) of every step, in the page's order."""
    out: list[tuple[str, int]] = []
    for kind, body in re.findall(r"^```(sh|console)\n(.*?)^```$", text, re.S | re.M):
        if kind == "sh":
            out.append((body, 0))
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                command, _, comment = line[2:].partition("  # ")
                code = re.fullmatch(r"exit (\d+)", comment.strip())
                out.append((command, int(code.group(1)) if code else 0))
    return out


def test_steps_are_found() -> None:
    found = steps(TUTORIAL.read_text("utf-8"))
    commands = [c for c, _ in found]
    for verb in ("init", "build", "verify", "claim", "keygen", "sign", "replay"):
        assert any(c.startswith(f"arch {verb} ") for c in commands), verb
    assert ("arch build analysis -o analysis.zst", 2) in found  # the misspelt key
    assert ("arch verify claimed.zst --trust strict.yaml", 1) in found
    assert sum(code == 0 for _, code in found) > 15


@pytest.mark.slow
def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # the venv's arch, not coreutils'
    for command, expected in steps(TUTORIAL.read_text("utf-8")):
        args = ["bash", "-e", "-o", "pipefail", "-c", command]
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == expected, f"{command}: exit {done.returncode}, the tutorial says {expected}\n{done.stdout}\n{done.stderr}"
    report = (tmp_path / "report.html").read_text("utf-8")
    assert "<svg" in report
    assert "m(C1/N2) [GeV]" in report  # the axis titles set in arch.yaml
    assert (tmp_path / "exclusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    identities = [
        json.loads(subprocess.run(["arch", "inspect", name, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout)["identity"]
        for name in ("claimed.zst", "rebuilt.zst")
    ]
    assert identities[0] == identities[1]
