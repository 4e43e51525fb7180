"""Small helpers shared by the commands: JSON output and finding rendering."""

from __future__ import annotations

import json
import sys
from typing import Any

from heparch.findings import Finding


def emit_json(obj: Any) -> None:
    """JSON to stdout, keys sorted."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def say(text: str) -> None:
    """Human status to stderr."""
    sys.stderr.write(text + "\n")


def render_findings(findings: list[Finding]) -> None:
    for f in findings:
        say(f"  {f.severity}: {f.one_line()}")
