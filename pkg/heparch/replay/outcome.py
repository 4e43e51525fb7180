"""Named results of a replay: one :class:`PointOutcome` per signal point, one :class:`ReplayReport` per run.

``claimed`` and ``replayed`` use DESIGN.md 5b's names: ``CLs_obs`` (a number), ``CLs_exp``
(five numbers, -2..+2 sigma) and, when claimed, ``mu_up_obs`` and ``mu_up_exp``.

>>> p = PointOutcome(key="A", likelihood="BkgOnly.json", point="A", claimed={"CLs_obs": 0.2}, replayed={"CLs_obs": 0.2001},
...                  passed=True, backend="fast", seconds=0.1)
>>> p.to_json()["pass"], p.excluded("claimed"), p.excluded("replayed")
(True, False, False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One value outside its tolerance: ``field`` is ``CLs_obs``, ``CLs_exp[2]``, ``mu_up_obs`` ..."""

    field: str
    claimed: float
    replayed: float
    tolerance: float
    note: str = ""  # why it is a mismatch whatever the numbers (e.g. underflow marked on one side only)

    @property
    def difference(self) -> float:
        return self.replayed - self.claimed

    def one_line(self) -> str:
        why = f"; {self.note}" if self.note else ""
        return f"{self.field}: claimed {self.claimed:.6g}, replayed {self.replayed:.6g} (difference {self.difference:.3g}, tolerance {self.tolerance:.3g}{why})"


@dataclasses.dataclass(frozen=True)
class PointOutcome:
    """The replay of one signal point.

    ``key`` is the point name, or ``<likelihood>:<point>`` when the run covers several
    likelihoods. ``replayed`` is None when the computation failed (``error`` says why;
    such a point does not pass). ``values`` are the point's label values from the patchset
    (e.g. ``{"m1": 700.0, "m2": 250.0}``), used for plots. ``local_minimum`` is set when
    the claim disagrees with the replay but agrees with another start of the replay's fits
    (the claim was made at a local minimum: outcome ``claim-at-local-minimum``, not passed);
    ``note`` says why the point ran on another backend than its likelihood's (a fallback).
    """

    key: str
    likelihood: str
    point: str
    claimed: Mapping[str, Any]
    replayed: Mapping[str, Any] | None
    passed: bool
    backend: str
    seconds: float
    mismatches: tuple[Mismatch, ...] = ()
    error: str | None = None
    values: Mapping[str, float] = dataclasses.field(default_factory=dict)
    level: float = 0.05
    simplified: Mapping[str, Any] | None = None  # the simplified likelihood's result, when the bundle has one for this point
    ratio: float | None = None  # the largest |replayed - claimed| / tolerance over the compared values (<= 1 agrees)
    local_minimum: Mapping[str, Any] | None = None
    note: str | None = None
    audit: Mapping[str, Any] | None = None  # the audit of this point against the reference backend (--audit)

    @property
    def status(self) -> str:
        """``pass``, ``claim-at-local-minimum``, ``fail`` (compared, outside the tolerance) or ``error`` (not computed)."""
        if self.passed:
            return "pass"
        if self.replayed is None:
            return "error"
        return "claim-at-local-minimum" if self.local_minimum is not None else "fail"

    def excluded(self, which: str) -> bool | None:
        """Whether the claimed (``which="claimed"``) or replayed observed CLs is below ``level``."""
        src = self.claimed if which == "claimed" else self.replayed
        if not src or "CLs_obs" not in src:
            return None
        return bool(src["CLs_obs"] < self.level)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "likelihood": self.likelihood,
            "point": self.point,
            "claimed": dict(self.claimed),
            "replayed": dict(self.replayed) if self.replayed is not None else None,
            "pass": self.passed,
            "outcome": self.status,
            "backend": self.backend,
            "seconds": round(self.seconds, 6),
        }
        return {**out, **self._optional_json()}

    def _optional_json(self) -> dict[str, Any]:
        """The fields a point has only sometimes, as JSON (none of them when unset)."""
        optional: dict[str, Any] = {
            "mismatches": [dataclasses.asdict(m) for m in self.mismatches] if self.mismatches else None,
            "error": self.error,
            "values": dict(self.values) if self.values else None,
            "simplified": None if self.simplified is None else dict(self.simplified),
            "local_minimum": None if self.local_minimum is None else dict(self.local_minimum),
            "note": self.note,
            "audit": None if self.audit is None else dict(self.audit),
        }
        out = {k: v for k, v in optional.items() if v is not None}
        if self.ratio is not None:  # an infinite ratio is written as null
            out["worst_ratio"] = self.ratio if math.isfinite(self.ratio) else None
        return out


@dataclasses.dataclass(frozen=True)
class ReplayReport:
    """A whole replay: the points in a stable order, and what differs from the claims' environment.

    ``software`` maps a package to ``(recorded, current)`` for every package whose version
    differs from the one the claims recorded; ``labels`` names the patchset's two label
    axes (e.g. ``("m1", "m2")``) when the points have them; ``axes`` their titles from the
    manifest's ``analysis.axes`` (e.g. ``{"m1": "m(chargino) [GeV]"}``).
    """

    bundle: str
    identity: str
    points: Sequence[PointOutcome]
    seconds: float
    software: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    labels: tuple[str, str] | None = None
    audit: Mapping[str, Any] | None = None  # the engine audit's summary (--audit N)
    axes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # label -> axis title (manifest analysis.axes), for plots

    @property
    def failed(self) -> list[PointOutcome]:
        return [p for p in self.points if not p.passed]

    def summary(self) -> dict[str, Any]:
        failed = len(self.failed)
        local = sum(1 for p in self.points if p.local_minimum is not None)
        out: dict[str, Any] = {"total": len(self.points), "passed": len(self.points) - failed, "failed": failed, "seconds": round(self.seconds, 3)}
        if local:
            out["claim_at_local_minimum"] = local
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document: ``{"points": {key: ...}, "summary": {...}, ...}``."""
        out: dict[str, Any] = {
            "points": {p.key: p.to_json() for p in self.points},
            "summary": self.summary(),
            "bundle": self.bundle,
            "identity": self.identity,
        }
        if self.software:
            out["software"] = {k: {"recorded": r, "current": c} for k, (r, c) in sorted(self.software.items())}
        if self.audit is not None:
            out["audit"] = dict(self.audit)
        return out
