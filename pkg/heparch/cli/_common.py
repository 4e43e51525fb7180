"""Small helpers shared by the commands: where output goes, JSON output and finding rendering.

The convention of every command (README, docs/cli.md): the result goes to stdout, in words
(:func:`print_result`) or, with ``--json``, as one JSON document (:func:`emit_json`; the words then go
to stderr, so stdout stays parseable); progress, notes, warnings and errors go to stderr
(:func:`say`). ``arch verify b.zst > log`` captures the verdict; ``arch cat`` writes the file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from heparch.findings import Finding


def emit_json(obj: Any) -> None:
    """JSON to stdout, keys sorted."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def print_result(text: str, *, json_out: bool = False) -> None:
    """The command's result in words: to stdout, or to stderr when ``--json`` holds stdout."""
    (sys.stderr if json_out else sys.stdout).write(text + "\n")


def reproduction_line(r: Mapping[str, Any]) -> str:
    """One recorded reproduction (an entry of ``arch inspect --json``'s reproductions, or a signature's replay), in words."""
    worst = "" if r["worst_ratio"] is None else f", worst difference {r['worst_ratio']:.2g} of the tolerance"
    return f"reproduced {r['date']}: {r['points']} points agreed, backends {', '.join(r['backends'])}, heparch {r['heparch']} on {r['platform']}{worst}"


def say(text: str) -> None:
    """Human status to stderr."""
    sys.stderr.write(text + "\n")


def render_findings(findings: list[Finding]) -> None:
    for f in findings:
        say(f"  {f.severity}: {f.one_line()}")
