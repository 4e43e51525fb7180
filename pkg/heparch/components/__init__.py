"""Schema and semantic checks of every component kind (pure Python: json + jsonschema).

Every ``check_*`` function returns a list of :class:`~heparch.findings.Finding` and never
raises on bad content. pyhf is never imported here; numpy and scipy only lazily, by the
Cholesky check of a covariance of 64 bins or more (LAPACK, simplified.cholesky_failure).

>>> findings, obj = load_json(b'{"a": 1, "a": 2}', location="x.json")
>>> findings[0].code, obj
('E060', None)
"""

from __future__ import annotations

from typing import Any

from heparch.findings import Finding
from heparch.spec import strictjson

__all__ = ["load_json"]


def load_json(data: bytes, *, location: str) -> tuple[list[Finding], Any]:
    """Parse a JSON component strictly: ``([], obj)`` or ``([E060 finding], None)``."""
    try:
        return [], strictjson.loads(data)
    except strictjson.StrictJSONError as exc:
        return [Finding(exc.code or "E060", location, f"not strict JSON: {exc}")], None
