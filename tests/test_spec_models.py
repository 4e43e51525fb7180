"""The frozen models of heparch.spec.components and their JSON schemas must not drift."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heparch.spec import components as models
from heparch.spec import schema_check

from conftest import SHARED

DATA = pathlib.Path(__file__).parent / "test_components"

Shape = dict[str, Any] | None


def _deref(node: Any, root: dict[str, Any]) -> Any:
    """Follow local ``$ref``s and unwrap pydantic's ``anyOf: [X, null]`` optionals."""
    for _ in range(32):
        if isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
            target: Any = root
            for token in node["$ref"][2:].split("/"):
                target = target[token]
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
            continue
        if isinstance(node, dict) and "anyOf" in node:
            options = [o for o in node["anyOf"] if o != {"type": "null"}]
            structured = [o for o in options if isinstance(o, dict) and ("$ref" in o or o.get("type") in ("object", "array"))]
            if len(structured) == 1:
                node = {**{k: v for k, v in node.items() if k != "anyOf"}, **structured[0]}
                continue
        break
    return node


def shape(node: Any, root: dict[str, Any]) -> Shape:
    """Property names and required sets of every object, recursively (None for leaves)."""
    node = _deref(node, root)
    if not isinstance(node, dict):
        return None
    if node.get("type") == "object" or "properties" in node:
        extra = node.get("additionalProperties")
        return {
            "properties": {k: shape(v, root) for k, v in sorted(node.get("properties", {}).items())},
            "required": sorted(node.get("required", [])),
            "values": shape(extra, root) if isinstance(extra, dict) else None,
        }
    if node.get("type") == "array":
        items = node.get("items")
        if items is None and node.get("prefixItems"):
            items = node["prefixItems"][0]
        inner = shape(items, root) if items is not None else None
        return {"items": inner} if inner is not None else None
    return None


@pytest.mark.parametrize(
    ("model", "name"),
    [(models.SimplifiedLikelihood, "simplified-likelihood.json"), (models.Results, "results.json"), (models.SignalInterface, "signal-interface.json")],
)
def test_models_match_schemas(model: type[pydantic.BaseModel], name: str) -> None:
    spec = schema_check.documents()[schema_check.resolve_uri(name)]
    generated = model.model_json_schema()
    assert shape(generated, generated) == shape(spec, spec)


def test_manifest_model_matches_schema() -> None:
    """heparch.spec.models.Manifest (analysis, with its axes, containers, files) and manifest.json."""
    from heparch.spec.models import Manifest

    spec = schema_check.documents()[schema_check.resolve_uri("manifest.json")]
    generated = Manifest.model_json_schema()
    found = shape(generated, generated)
    assert found == shape(spec, spec)
    assert found is not None
    assert "axes" in found["properties"]["analysis"]["properties"]


def test_shape_sees_nesting() -> None:
    spec = schema_check.documents()[schema_check.resolve_uri("results.json")]
    found = shape(spec, spec)
    assert found is not None
    point = found["properties"]["points"]["values"]
    assert point["required"] == ["CLs_exp", "CLs_obs"]
    assert sorted(found["properties"]["tolerance"]["properties"]) == ["CLs", "mu_up"]
    assert sorted(found["properties"]["tolerance"]["properties"]["CLs"]["properties"]) == ["abs", "rel"]


@pytest.mark.parametrize(
    ("model", "name"),
    [(models.SimplifiedLikelihood, "sl.json"), (models.Results, "results.json")],
)
def test_round_trip(model: type[models.SimplifiedLikelihood] | type[models.Results], name: str) -> None:
    obj = json.loads((DATA / name).read_text())
    parsed = model.from_json(obj)
    assert parsed.to_json() == obj
    assert model.from_json(parsed.to_json()) == parsed


def test_unknown_fields_are_kept() -> None:
    obj = json.loads((DATA / "results_warn_unknown_fields.json").read_text())
    assert models.Results.from_json(obj).to_json() == obj


def test_models_are_frozen_and_typed() -> None:
    res = models.Results.from_json(json.loads((DATA / "results.json").read_text()))
    point = res.points["sig_300_100"]
    assert point.CLs_exp[2] == 0.015
    assert point.mu_up_obs == 0.61
    assert res.tolerance is not None
    assert res.tolerance.CLs is not None
    assert res.tolerance.CLs.rel == 1e-3
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        point.CLs_obs = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    "point",
    [
        {"CLs_obs": 1.5, "CLs_exp": [0.1] * 5},
        {"CLs_obs": 0.5, "CLs_exp": [0.1] * 4},
        {"CLs_obs": True, "CLs_exp": [0.1] * 5},
        {"CLs_exp": [0.1] * 5},
    ],
)
def test_bad_points_rejected(point: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        models.ResultPoint.from_json(point)


def test_sl_model_keeps_ints() -> None:
    sl = models.SimplifiedLikelihood.from_json(json.loads((DATA / "sl.json").read_text()))
    assert sl.n_bins == 3
    assert sl.observed == (10, 7, 3)
    assert isinstance(sl.observed[0], int)
    assert sl.derived_from is not None
    assert sl.derived_from.seed == 42


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared real data not present")
@pytest.mark.parametrize("path", sorted(SHARED.glob("sl-toy-*/sl.json")), ids=lambda p: p.parent.name)
def test_sl_toys_parse(path: pathlib.Path) -> None:
    obj = json.loads(path.read_text())
    assert models.SimplifiedLikelihood.from_json(obj).to_json() == obj


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1e999]", "infinite"),
        (b"[" + b"1" * 5000 + b"]", r"outside \+-\(2\^53 - 1\)"),  # not even converted (Python's 4300-digit limit)
        (b'{"a": -1e400}', "infinite"),
    ],
)
def test_strict_json_refuses_numbers_json_cannot_hold(data: bytes, message: str) -> None:
    """Both used to escape as plain ValueError (a crash) or parse as infinity."""
    from heparch.spec import strictjson

    with pytest.raises(strictjson.StrictJSONError, match=message):
        strictjson.loads(data)


def test_manifest_with_a_huge_integer_is_a_finding() -> None:
    from heparch.spec.manifest_check import parse_manifest

    manifest, findings = parse_manifest(b'{"bundleFormat": {"uri": "x", "version": ' + b"1" * 5000 + b"}}")
    assert manifest is None
    assert [f.code for f in findings] == ["E038"]  # I-JSON's range, checked before Python's 4300-digit limit
    assert "outside +-(2^53 - 1)" in findings[0].message


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, -1.0, 2.5]), st.sampled_from(["", "add", "1", "true"]))


@settings(derandomize=True, deadline=1000, max_examples=200)
@given(_SCALARS, _SCALARS)
def test_json_equal_on_scalars_is_json_equality(a: Any, b: Any) -> None:
    """A boolean equals only a boolean (``True != 1``), a string only a string, a number any equal
    number (``1 == 1.0``), null only null; the same whichever way round."""

    def kind(x: Any) -> str:
        return "boolean" if isinstance(x, bool) else "number" if isinstance(x, int | float) else type(x).__name__

    expected = kind(a) == kind(b) and a == b
    assert schema_check.json_equal(a, b) is expected
    assert schema_check.json_equal(b, a) is expected
