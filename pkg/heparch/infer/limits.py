"""Upper limits by root finding on CLs(mu) = level, shared by every backend.

The observed limit and each of the five expected limits are found separately with
Brent's method (``rtol`` 1e-4 by default) on the values of one cached CLs function.
When CLs at the POI's upper bound is still above ``level`` the bound is doubled
until it brackets the root, up to ``cap``; a limit beyond the cap is ``inf`` and is
named in ``above_cap``. Every widening is recorded in the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from heparch.infer.base import CLsResult, UpperLimit

DEFAULT_CAP = 1.0e4
NAMES = ("observed", "expected_-2", "expected_-1", "expected_0", "expected_+1", "expected_+2")


def _values(r: CLsResult) -> tuple[float, ...]:
    return (r.observed, *r.expected)


def _limit(values: Callable[[float], tuple[float, ...]], i: int, lo: float, hi: float, *, level: float, rtol: float) -> float:
    """Where curve ``i`` of ``values`` crosses ``level`` below ``hi``: bracketed by walking down
    from ``lo`` until CLs > level, then Brent's method; ``inf`` when the curve is still above
    ``level`` at ``hi`` (the cap), the lowest point walked to when it never rises above it."""
    from scipy.optimize import brentq  # scipy.optimize (~1 s): only when a limit is searched

    a = lo
    while values(a)[i] <= level and a > hi * 1e-9:
        a /= 10
    if values(hi)[i] > level:
        return math.inf
    if values(a)[i] <= level:
        return a
    return float(brentq(lambda mu: values(mu)[i] - level, a, hi, rtol=rtol, xtol=1e-12 * hi))


def _bracket(values: Callable[[float], tuple[float, ...]], hi: float, cap: float, level: float) -> tuple[float, float]:
    """The POI interval to search: the upper bound ``hi`` doubled until every curve is below
    ``level`` there (or it reaches ``cap``), the lower end the last bound tried (at first hi * 1e-6)."""
    lo = hi * 1e-6
    while max(values(hi)) > level and hi < cap:
        lo, hi = hi, min(2 * hi, cap)
    return lo, hi


def upper_limit(
    cls_at: Callable[[float], CLsResult],
    *,
    level: float = 0.05,
    upper_bound: float = 10.0,
    cap: float = DEFAULT_CAP,
    rtol: float = 1e-4,
    backend: str = "",
    settings: Mapping[str, Any] | None = None,
) -> UpperLimit:
    """Observed and expected upper limits of the POI from ``cls_at(mu)``."""
    cache: dict[float, tuple[float, ...]] = {}

    def values(mu: float) -> tuple[float, ...]:
        if mu not in cache:
            cache[mu] = _values(cls_at(mu))
        return cache[mu]

    lo, hi = _bracket(values, float(upper_bound), cap, level)
    limits = [_limit(values, i, lo, hi, level=level, rtol=rtol) for i in range(len(NAMES))]
    above = [name for name, limit in zip(NAMES, limits, strict=True) if limit == math.inf]
    return UpperLimit(
        observed=limits[0],
        expected=(limits[1], limits[2], limits[3], limits[4], limits[5]),
        level=level,
        backend=backend,
        settings={**(settings or {}), "rtol": rtol, "poi_upper_bound_initial": float(upper_bound)},
        poi_upper_bound=hi,
        cap=cap,
        above_cap=tuple(above),
    )
