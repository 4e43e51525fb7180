"""Named results of a replay: one :class:`PointOutcome` per signal point, one :class:`ReplayReport` per run.

``claimed`` and ``replayed`` are :class:`Values` (observed CLs, the expected band -2..+2 sigma
and, when claimed, the upper limits), the comparisons :class:`Mismatch`, :class:`LocalMinimum`
and :class:`SimplifiedCLs`; they become JSON (DESIGN.md 5b's names) only in :meth:`PointOutcome.to_json`.

>>> p = PointOutcome(key="A", likelihood="BkgOnly.json", point="A", claimed=Values(0.2, (0.1,) * 5), replayed=Values(0.2001, (0.1,) * 5),
...                  passed=True, backend="fast", seconds=0.1)
>>> p.to_json()["pass"], p.to_json()["replayed"]["CLs_obs"], p.excluded("claimed"), p.excluded("replayed")
(True, 0.2001, False, False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final


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


#: the fields :class:`Values` names; every other field of a values object is kept in ``extra``
_NAMED: Final = frozenset({"CLs_obs", "CLs_exp", "mu_up_obs", "mu_up_exp", "underflow", "multimodal", "starts"})


def _limit(v: float | None) -> float:
    """A limit as given in JSON: null (above the cap) is infinity."""
    return math.inf if v is None else v


def _json_limit(v: float) -> float | None:
    return None if math.isinf(v) else v


def _marked(fields: Any) -> tuple[str, ...] | None:
    """The fields an ``underflow`` mark names (None without the mark)."""
    return tuple(str(f) for f in fields) if isinstance(fields, list | tuple) else None


def _limits(obj: Mapping[str, Any]) -> tuple[float | None, tuple[float, ...] | None]:
    """The observed and expected limits of a values object (None where it has none; null is infinity)."""
    obs = _limit(obj["mu_up_obs"]) if "mu_up_obs" in obj else None
    exp = obj.get("mu_up_exp")
    return obs, None if exp is None else tuple(_limit(v) for v in exp)


@dataclasses.dataclass(frozen=True)
class Values:
    """The CLs values and limits of one point, claimed or replayed (DESIGN.md 5b).

    ``cls_obs`` and ``cls_exp`` (-2..+2 sigma) are always there; ``mu_up_obs`` and ``mu_up_exp``
    only where limits were claimed or computed (None: not there; ``math.inf``: above the cap,
    JSON null). The backends' marks: the fields that ``underflow`` double precision, and
    ``multimodal`` with each of the fits' ``starts``. ``extra`` keeps every other field as given
    (a claim's ``backend``, a newer 1.x's fields, reinterpret's cross-section limits), so
    :meth:`to_json` gives the object back.

    >>> v = Values.from_json({"CLs_obs": 0.2, "CLs_exp": [0.1, 0.15, 0.2, 0.3, 0.4], "mu_up_obs": None, "backend": "fast"})
    >>> v.mu_up_obs, dict(v.extra), v.to_json()["mu_up_obs"] is None, list(v.fields())
    (inf, {'backend': 'fast'}, True, ['CLs_obs', 'CLs_exp[0]', 'CLs_exp[1]', 'CLs_exp[2]', 'CLs_exp[3]', 'CLs_exp[4]', 'mu_up_obs'])
    """

    cls_obs: float
    cls_exp: tuple[float, ...]
    mu_up_obs: float | None = None
    mu_up_exp: tuple[float, ...] | None = None
    underflow: tuple[str, ...] | None = None
    multimodal: bool | None = None
    starts: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Values:
        """The values of a JSON object with DESIGN.md 5b's names (a claim's, or a worker's result)."""
        starts = obj.get("starts")
        return cls(
            obj["CLs_obs"],
            tuple(obj["CLs_exp"]),
            *_limits(obj),
            underflow=_marked(obj.get("underflow")),
            multimodal=obj.get("multimodal"),
            starts=dict(starts) if isinstance(starts, Mapping) else None,
            extra={k: v for k, v in obj.items() if k not in _NAMED},
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object (a limit above the cap as null; the limits and the marks only where set)."""
        return {**self.extra, "CLs_obs": self.cls_obs, "CLs_exp": list(self.cls_exp), **self._limits_json(), **self._marks_json()}

    def _limits_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mu_up_obs is not None:
            out["mu_up_obs"] = _json_limit(self.mu_up_obs)
        if self.mu_up_exp is not None:
            out["mu_up_exp"] = [_json_limit(v) for v in self.mu_up_exp]
        return out

    def _marks_json(self) -> dict[str, Any]:
        marks = {
            "underflow": None if self.underflow is None else list(self.underflow),
            "multimodal": self.multimodal,
            "starts": None if self.starts is None else dict(self.starts),
        }
        return {k: v for k, v in marks.items() if v is not None}

    def fields(self) -> dict[str, float]:
        """Each value by its field name in a comparison: ``CLs_obs``, ``CLs_exp[0]`` .. ``[4]``, then the limits where there."""
        out = {"CLs_obs": self.cls_obs, **{f"CLs_exp[{i}]": v for i, v in enumerate(self.cls_exp)}}
        if self.mu_up_obs is not None:
            out["mu_up_obs"] = self.mu_up_obs
        return {**out, **{f"mu_up_exp[{i}]": v for i, v in enumerate(self.mu_up_exp or ())}}

    def cls_only(self) -> Values:
        """These values without the limits."""
        return dataclasses.replace(self, mu_up_obs=None, mu_up_exp=None)


@dataclasses.dataclass(frozen=True)
class LocalMinimum:
    """A claim the replay explains by another start of its fits: that start, the claimed and
    replayed observed CLs (at the lowest minimum) and the start's."""

    start: str
    claimed: float
    replayed: float
    start_cls_obs: float

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "claimed": self.claimed, "replayed": self.replayed, "start_CLs_obs": self.start_cls_obs}


@dataclasses.dataclass(frozen=True)
class SimplifiedCLs:
    """The simplified likelihood's result at a point (its ``values``, or the ``error``) and the
    ``difference`` of its observed CLs from the full likelihood's replay."""

    values: Values | None
    error: str | None = None
    difference: float | None = None

    @classmethod
    def of(cls, computed: Mapping[str, Any], full: Values | None) -> SimplifiedCLs:
        """From a worker's result (``{"error": ...}`` where it failed) and the full likelihood's replayed values."""
        if "CLs_obs" not in computed:
            return cls(None, computed.get("error"))
        values = Values.from_json(computed)
        return cls(values, None, None if full is None else values.cls_obs - full.cls_obs)

    def to_json(self) -> dict[str, Any]:
        if self.values is None:
            return {"error": self.error}
        diff = {} if self.difference is None else {"difference_CLs_obs": self.difference}
        return {**self.values.to_json(), **diff}


@dataclasses.dataclass(frozen=True)
class Audited:
    """One point's audit: the difference in -ln L of the free fit, and the largest difference as a
    fraction of its tolerance (``ratio``; <= 1 passes): its field (``nll`` or a CLs value), the
    audited and the reference backend's values there, the tolerance, and the reference backend."""

    nll_difference: float
    ratio: float
    field: str
    audited_value: float
    reference_value: float
    tolerance: float
    reference: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: an audit summary records ratios up to this (JSON has no infinity: a value marked as underflowing on one side only)
RATIO_CAP: Final = 1e9


@dataclasses.dataclass(frozen=True)
class AuditSummary:
    """A run's audit against the reference backend (claim's ``--audit N``, replay's): the number of
    points ``requested`` and the ``seed`` that chose them, its ``status`` (``off``, ``skipped``,
    ``passed`` or ``failed``) and ``reason``, and each audited point (None when the audit was off).
    JSON (a results component's ``audit``, replay's ``--json``) only in :meth:`to_json`.

    >>> a = AuditSummary(1, 7, "passed", points={"A": Audited(1e-8, 0.25, "CLs_obs", 0.3, 0.30002, 1e-4, "pyhf")})
    >>> a.reference, a.max_ratio, a.one_line()
    ('pyhf', 0.25, 'audit passed: 1 point(s) against pyhf, max difference 0.25 of the tolerance')
    >>> a.one_line(worst=True)
    'audit passed: 1 point(s) against pyhf, max difference 0.25 of the tolerance (A, CLs_obs; -ln L difference 1e-08)'
    >>> a.to_json() == {"requested": 1, "seed": 7, "reference": "pyhf", "max_ratio": 0.25, "status": "passed",
    ...                 "points": {"A": {"nll_difference": 1e-08, "ratio": 0.25, "field": "CLs_obs"}}}
    True
    >>> AuditSummary(0, 7, "off").to_json()
    {'requested': 0, 'seed': 7, 'status': 'off'}
    """

    requested: int
    seed: int
    status: str
    reason: str | None = None
    points: Mapping[str, Audited] | None = None

    @property
    def reference(self) -> str | None:
        """The reference backends of the audited points (None: no point was audited)."""
        return ", ".join(sorted({p.reference for p in self.points.values()})) if self.points else None

    @property
    def max_ratio(self) -> float | None:
        """The largest difference as a fraction of its tolerance, as recorded (up to :data:`RATIO_CAP`; None: no point audited)."""
        return max(_capped(p.ratio) for p in self.points.values()) if self.points else None

    def one_line(self, *, worst: bool = False) -> str:
        """The audit in one line; with ``worst``, the audited point farthest from the reference follows the largest difference."""
        top = self.max_ratio
        if self.status in ("off", "skipped") or top is None:  # no point audited: the reason says why
            return f"audit {self.status}" + self._reason(": ")
        text = f"audit {self.status}: {len(self.points or {})} point(s) against {self.reference}, max difference {top:.3g} of the tolerance"
        return text + (self._worst() if worst else "") + self._reason("; ")

    def _reason(self, sep: str) -> str:
        """The reason after ``sep`` (none: empty)."""
        return f"{sep}{self.reason}" if self.reason else ""

    def _worst(self) -> str:
        name, p = max((self.points or {}).items(), key=lambda kv: _capped(kv[1].ratio))
        return f" ({name}, {p.field}; -ln L difference {p.nll_difference:.3g})"

    def to_json(self) -> dict[str, Any]:
        """The ``audit`` object (DESIGN.md 5b): each point's -ln L difference, ratio and field; the
        reference, the largest ratio and the reason only where there are any."""
        out: dict[str, Any] = {"requested": self.requested, "seed": self.seed}
        if self.points is not None:
            out["points"] = {k: {"nll_difference": v.nll_difference, "ratio": _capped(v.ratio), "field": v.field} for k, v in self.points.items()}
        derived = {"reference": self.reference, "max_ratio": self.max_ratio, "reason": self.reason}
        return {**out, **{k: v for k, v in derived.items() if v is not None}, "status": self.status}


def _capped(ratio: float) -> float:
    return min(float(ratio), RATIO_CAP)


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
    claimed: Values | None  # None: nothing was claimed (arch reinterpret's new points)
    replayed: Values | None
    passed: bool
    backend: str
    seconds: float
    mismatches: tuple[Mismatch, ...] = ()
    error: str | None = None
    values: Mapping[str, float] = dataclasses.field(default_factory=dict)
    level: float = 0.05
    simplified: SimplifiedCLs | None = None  # the simplified likelihood's result, when the bundle has one for this point
    ratio: float | None = None  # the largest |replayed - claimed| / tolerance over the compared values (<= 1 agrees)
    local_minimum: LocalMinimum | None = None
    note: str | None = None
    audit: Audited | None = None  # the audit of this point against the reference backend (--audit)

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
        return None if src is None else bool(src.cls_obs < self.level)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "likelihood": self.likelihood,
            "point": self.point,
            "claimed": self.claimed.to_json() if self.claimed is not None else {},
            "replayed": self.replayed.to_json() if self.replayed is not None else None,
            "pass": self.passed,
            "outcome": self.status,
            "backend": self.backend,
            "seconds": round(self.seconds, 6),
        }
        return {**out, **self._optional_json()}

    def _optional_json(self) -> dict[str, Any]:
        """The fields a point has only sometimes, as JSON (none of them when unset)."""
        optional: dict[str, Any] = {
            "mismatches": [dataclasses.asdict(m) for m in self.mismatches] or None,
            "error": self.error,
            "values": dict(self.values) or None,
            "simplified": _json_or_none(self.simplified),
            "local_minimum": _json_or_none(self.local_minimum),
            "note": self.note,
            "audit": _json_or_none(self.audit),
        }
        out = {k: v for k, v in optional.items() if v is not None}
        if self.ratio is not None:  # an infinite ratio is written as null
            out["worst_ratio"] = self.ratio if math.isfinite(self.ratio) else None
        return out


def _json_or_none(value: LocalMinimum | SimplifiedCLs | Audited | None) -> dict[str, Any] | None:
    return None if value is None else value.to_json()


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
    audit: AuditSummary | None = None  # the engine audit's summary (--audit N)
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
            out["audit"] = self.audit.to_json()
        return out
