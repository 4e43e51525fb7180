"""replay.outcome: the typed values of a point give back the JSON they were read from (issue 12: dicts only at the edges)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from heparch.replay.outcome import RATIO_CAP, Audited, AuditSummary, PointOutcome, SimplifiedCLs, Values
from heparch.spec.components import Audit

NUMBER = st.one_of(st.integers(0, 10), st.floats(0.0, 1.0, allow_nan=False))
LIMIT = st.one_of(st.none(), st.floats(0.01, 100.0, allow_nan=False))
FIELDS = st.sampled_from(["CLs_obs", "CLs_exp[0]", "CLs_exp[4]", "mu_up_obs"])


@st.composite
def values_json(draw: st.DrawFn) -> dict[str, Any]:
    """A values object as claims and workers write it: the CLs values, optional limits (null: above the cap), marks and other fields."""
    obj: dict[str, Any] = {"CLs_obs": draw(NUMBER), "CLs_exp": draw(st.lists(NUMBER, min_size=5, max_size=5))}
    optional = {
        "mu_up_obs": LIMIT,
        "mu_up_exp": st.lists(LIMIT, min_size=5, max_size=5),
        "underflow": st.lists(FIELDS, max_size=3),
        "multimodal": st.booleans(),
        "starts": st.dictionaries(st.sampled_from(["nominal", "warm"]), st.fixed_dictionaries({"CLs_obs": NUMBER}), max_size=2),
        "backend": st.sampled_from(["fast", "pyhf"]),
        "xsec_up_obs_pb": LIMIT,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            obj[key] = draw(strategy)
    return obj


@settings(max_examples=200, deadline=timedelta(seconds=1))
@given(values_json())
def test_values_give_back_their_json(obj: dict[str, Any]) -> None:
    v = Values.from_json(obj)
    assert v.to_json() == obj
    assert (v.mu_up_obs is not None and math.isinf(v.mu_up_obs)) == ("mu_up_obs" in obj and obj["mu_up_obs"] is None)  # above the cap
    assert list(v.fields())[:6] == ["CLs_obs", *(f"CLs_exp[{i}]" for i in range(5))]


def test_a_point_writes_its_typed_parts_as_json() -> None:
    full = Values(0.2, (0.1,) * 5)
    sl = SimplifiedCLs.of({"CLs_obs": 0.25, "CLs_exp": [0.1] * 5}, full)
    failed = SimplifiedCLs.of({"error": "FitError: x"}, full)
    p = PointOutcome(key="A", likelihood="l.json", point="A", claimed=None, replayed=full, passed=True, backend="fast", seconds=0.0, simplified=sl)
    doc = p.to_json()
    assert doc["claimed"] == {}  # nothing claimed (arch reinterpret's points)
    assert doc["simplified"] == {"CLs_obs": 0.25, "CLs_exp": [0.1] * 5, "difference_CLs_obs": 0.25 - 0.2}
    assert failed.to_json() == {"error": "FitError: x"}
    assert (p.excluded("claimed"), p.excluded("replayed")) == (None, False)


AUDITED = st.builds(
    Audited,
    nll_difference=st.floats(-1e-2, 1e-2, allow_nan=False),
    ratio=st.one_of(st.floats(0.0, 1e12, allow_nan=False), st.just(math.inf)),
    field=st.sampled_from(["nll", "CLs_obs", "CLs_exp[2]"]),
    audited_value=NUMBER,
    reference_value=NUMBER,
    tolerance=st.just(1e-4),
    reference=st.sampled_from(["pyhf", "spey"]),
)


@settings(max_examples=100, deadline=timedelta(seconds=1))
@given(
    st.dictionaries(st.sampled_from(["a.json:A", "a.json:B", "b.json:C"]), AUDITED, max_size=3), st.sampled_from(["skipped", "passed", "failed"]), st.booleans()
)
def test_an_audit_summary_writes_the_stored_form(points: dict[str, Audited], status: str, reason: bool) -> None:
    """The summary's JSON is what a results component's ``audit`` holds (spec.components.Audit,
    checked again by verify): ratios up to the cap (JSON has no infinity), the reference and the
    largest ratio only where a point was audited."""
    summary = AuditSummary(2, 7, status, "why" if reason else None, points)
    doc = summary.to_json()
    assert Audit.from_json(doc).to_json() == doc
    assert [p["ratio"] for p in doc["points"].values()] == [min(p.ratio, RATIO_CAP) for p in points.values()]
    assert ("max_ratio" in doc, "reference" in doc) == (bool(points), bool(points))
    if points:
        assert doc["max_ratio"] == max(p["ratio"] for p in doc["points"].values())
        assert set(doc["reference"].split(", ")) == {p.reference for p in points.values()}
    assert ("reason" in doc) == reason
    assert AuditSummary(0, 7, "off").to_json() == {"requested": 0, "seed": 7, "status": "off"}  # no points object when off


def test_an_audit_summary_in_one_line() -> None:
    near = Audited(-3e-8, 0.0172, "CLs_exp[1]", 0.1, 0.10001, 1e-4, "pyhf")
    far = Audited(2e-8, math.inf, "CLs_obs", 0.0, 1e-300, 1e-4, "pyhf")
    passed = AuditSummary(3, 7, "passed", None, {"l.json:A": near})
    failed = AuditSummary(3, 7, "failed", "b.json: none of its points was chosen", {"l.json:A": near, "l.json:B": far})
    assert passed.one_line() == "audit passed: 1 point(s) against pyhf, max difference 0.0172 of the tolerance"
    assert failed.one_line(worst=True) == (
        "audit failed: 2 point(s) against pyhf, max difference 1e+09 of the tolerance (l.json:B, CLs_obs; -ln L difference 2e-08); b.json: none of its points was chosen"
    )
    # nothing audited: the reason says why (not '0 point(s) against None')
    errors = AuditSummary(1, 7, "failed", "1 point(s) could not be recomputed (first: l.json:A: FitError: x)", {})
    assert errors.one_line(worst=True) == "audit failed: 1 point(s) could not be recomputed (first: l.json:A: FitError: x)"
    assert AuditSummary(0, 7, "off").one_line() == "audit off"
