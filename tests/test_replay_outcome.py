"""replay.outcome: the typed values of a point give back the JSON they were read from (issue 12: dicts only at the edges)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from heparch.replay.outcome import PointOutcome, SimplifiedCLs, Values

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
