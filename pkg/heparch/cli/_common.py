"""Small helpers shared by the commands: where output goes, JSON output and finding rendering.

The convention of every command (README, docs/cli.md): the result goes to stdout, in words
(:func:`print_result`) or, with ``--json``, as one JSON document (:func:`emit_json`; the words then go
to stderr, so stdout stays parseable); progress, notes, warnings and errors go to stderr
(:func:`say`). ``arch verify b.zst > log`` captures the verdict; ``arch cat`` writes the file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from heparch.findings import Finding


def emit_json(obj: Any) -> None:
    """JSON to stdout, keys sorted."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def print_result(text: str, *, json_out: bool = False) -> None:
    """The command's result in words: to stdout, or to stderr when ``--json`` holds stdout."""
    (sys.stderr if json_out else sys.stdout).write(text + "\n")


def say(text: str) -> None:
    """Human status to stderr."""
    sys.stderr.write(text + "\n")


def render_findings(findings: list[Finding]) -> None:
    for f in findings:
        say(f"  {f.severity}: {f.one_line()}")
