"""The shared upper-limit root finder, on CLs curves with known roots."""

from __future__ import annotations

import math

import pytest

from heparch.infer.base import CLsResult
from heparch.infer.limits import upper_limit


def _curves(rates: tuple[float, ...]):  # type: ignore[no-untyped-def]
    calls = []

    def cls_at(mu: float) -> CLsResult:
        calls.append(mu)
        values = [math.exp(-mu * k) for k in rates]
        return CLsResult(values[0], tuple(values[1:]), mu, "test")  # type: ignore[arg-type]

    return cls_at, calls


@pytest.mark.parametrize("upper_bound", [10.0, 0.5])
def test_roots_match_analytic_values(upper_bound: float) -> None:
    rates = (1.0, 3.0, 2.0, 1.5, 1.0, 0.7)
    cls_at, _ = _curves(rates)
    ul = upper_limit(cls_at, level=0.05, upper_bound=upper_bound)
    want = [math.log(20) / k for k in rates]
    got = [ul.observed, *ul.expected]
    assert got == pytest.approx(want, rel=1e-4)
    assert ul.poi_upper_bound >= max(want)
    assert ul.above_cap == ()


def test_limit_beyond_cap_is_infinite_and_named() -> None:
    cls_at, _ = _curves((1e-4, 1.0, 1.0, 1.0, 1.0, 1.0))
    ul = upper_limit(cls_at, upper_bound=10.0, cap=100.0)
    assert math.isinf(ul.observed)
    assert ul.above_cap == ("observed",)
    assert ul.expected[2] == pytest.approx(math.log(20), rel=1e-4)
    assert ul.poi_upper_bound == 100.0


def test_cls_values_are_cached() -> None:
    cls_at, calls = _curves((1.0, 3.0, 2.0, 1.5, 1.0, 0.7))
    upper_limit(cls_at)
    assert len(calls) == len(set(calls))
