"""Findings: every problem a check reports, with a stable code from the spec."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: ``code`` is from ``spec/validation-codes.md`` (E = MUST, W = SHOULD)."""

    code: str
    location: str
    message: str
    expected: Any = None
    found: Any = None

    @property
    def severity(self) -> Severity:
        return "error" if self.code.startswith("E") else "warning"

    def one_line(self) -> str:
        text = f"{self.code} {self.location}: {self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected!r}, found {self.found!r})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "location": self.location,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
        }


@dataclasses.dataclass
class Report:
    """Collected findings of one check; valid when no finding is an error."""

    findings: list[Finding] = dataclasses.field(default_factory=list)

    def add(self, code: str, location: str, message: str, *, expected: Any = None, found: Any = None) -> None:
        self.findings.append(Finding(code, location, message, expected, found))

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        return sorted({f.code for f in self.findings})
