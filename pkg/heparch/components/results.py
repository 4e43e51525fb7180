"""Claimed results: schema, CLs ranges and the signal points they name.

>>> res = {"likelihood": "BkgOnly.json", "points": {"A": {"CLs_obs": 0.2, "CLs_exp": [0.1, 0.2, 0.3, 0.4, 0.5]},
...        "B": {"CLs_obs": 1.5, "CLs_exp": [0.1, 0.2, 0.3, 0.4, 0.5]}}}
>>> for finding in check_results(res, location="r.json", known_points={"A"}):
...     print(finding.one_line())
E068 r.json:$.points.B.CLs_obs: 1.5 is greater than the maximum of 1 (expected 1, found 1.5)
E069 r.json:$.points.B: 'B' is not a signal point of BkgOnly.json
"""

from __future__ import annotations

from typing import Any, Final

from heparch.findings import Finding
from heparch.spec import schema_check

SCHEMA: Final = "results.json"
#: at most this many unknown points are reported one by one
MAX_POINTS: Final = 20


def looks_like_results(obj: Any) -> bool:
    """A dict with ``likelihood`` and ``points``."""
    return isinstance(obj, dict) and "likelihood" in obj and "points" in obj


def check_results(obj: Any, *, location: str, known_points: set[str] | None) -> list[Finding]:
    """Findings for a results component.

    E068: the schema (CLs values in [0, 1], five expected values, five expected upper
    limits). E069: point names not in ``known_points`` (the patch or signal names of the
    likelihood; None skips this check). W005: fields the schema does not know. That the
    component names a likelihood of the bundle, one per likelihood, is the caller's check.
    """
    findings = schema_check.check(SCHEMA, obj, code="E068", location=location)
    findings.extend(
        Finding("W005", f"{location}:{path}", "field not in the results schema 1.0.0; it is ignored") for path in schema_check.unknown_fields(SCHEMA, obj)
    )
    points = obj.get("points") if isinstance(obj, dict) else None
    if known_points is not None and isinstance(points, dict):
        findings.extend(_unknown_points(points, known_points, obj.get("likelihood"), location))
    return findings


def _unknown_points(points: dict[str, Any], known: set[str], likelihood: Any, location: str) -> list[Finding]:
    unknown = [name for name in points if name not in known]
    out = [
        Finding(
            "E069",
            f"{location}:{schema_check.json_path(['points', name])}",
            f"{name!r} is not a signal point of {likelihood}",
        )
        for name in unknown[:MAX_POINTS]
    ]
    if len(unknown) > MAX_POINTS:
        out.append(
            Finding(
                "E069",
                f"{location}:$.points",
                f"{len(unknown) - MAX_POINTS} more points are not signal points of {likelihood}",
            )
        )
    return out
