"""The domain model (heparch.analysis): a bundle's likelihoods, points and claims, and the selection rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import heparch
from heparch.analysis import DEFAULT_TOLERANCE, Analysis, claims_of, points_of, resolve, results_path, select, with_results
from heparch.build import build
from heparch.cli.main import flagged
from heparch.errors import InferenceInputError, InputError

from conftest import EXAMPLE


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(EXAMPLE, output=tmp_path_factory.mktemp("example") / "example.zst").output


def test_select_lists_the_valid_names_and_the_close_ones() -> None:
    assert select("b", ["a", "b"], where="w", option="point", predicate="is not a point") == "b"
    with pytest.raises(InputError, match=r"^w: point 'C1N2_200_10' is not a point; valid names: 'C1N2_200_100', 'X'; did you mean 'C1N2_200_100'\?$"):
        select("C1N2_200_10", ["C1N2_200_100", "X"], where="w", option="point", predicate="is not a point")
    with pytest.raises(InferenceInputError, match=r"valid names: 'a'; see here$"):  # nothing close: no guess
        select("zzz", ["a"], where="w", option="point", predicate="is not a point", hint="; see here", error=InferenceInputError)


def test_the_example_bundle_as_the_domain_model(example: Path) -> None:
    with heparch.open(example) as bundle:
        analysis = Analysis.of(bundle)
        [full, sl] = analysis.likelihoods
        assert (full.path, full.kind, full.patchsets, full.simplified, full.results) == (
            "BkgOnly.json",
            "workspace",
            ("patchset.json",),
            ("simplified.json",),
            "results.json",
        )
        assert (sl.path, sl.kind, sl.results) == ("simplified.json", "simplified", None)
        assert full.digest == bundle.manifest.file("BkgOnly.json").digest
        points = points_of(bundle, full)
        claims = claims_of(bundle, full)
        signals = points_of(bundle, sl)
    patchset = json.loads((EXAMPLE / "patchset.json").read_text())
    assert list(points.points) == [p["metadata"]["name"] for p in patchset["patches"]]
    first = points.points["C1N2_200_100"]
    assert (first.source, first.labels, first.values) == ("patchset.json", ("m1", "m2"), {"m1": 200.0, "m2": 100.0})
    assert first.patch == next(p["patch"] for p in patchset["patches"] if p["metadata"]["name"] == "C1N2_200_100")
    assert set(signals.points) <= set(points.points)
    assert signals.points
    results = json.loads((EXAMPLE / "results.json").read_text())
    assert [c.point.name for c in claims.claims] == list(results["points"])
    one = claims.claims[0]
    assert one.values.CLs_obs == results["points"][one.point.name]["CLs_obs"]
    assert one.tolerance.to_json() == results["tolerance"] == DEFAULT_TOLERANCE.to_json()
    assert (one.settings.mu, one.settings.level) == (results["settings"].get("mu", 1.0), results["settings"].get("level", 0.05))
    assert claims.labels == ("m1", "m2")
    assert results_path(analysis, "BkgOnly.json") == "results.json"
    assert results_path(analysis, "simplified.json") == "results/simplified.json"
    # a path another likelihood was given is taken too (likelihoods 'simplified.json' and 'simplified')
    assert results_path(analysis, "simplified.json", ["results/simplified.json"]) == "results/simplified-2.json"


def test_a_missed_name_gets_a_guess_in_cls_replay_and_simplify(example: Path) -> None:
    from heparch.replay import core
    from heparch.simplify import simplify

    with pytest.raises(InferenceInputError, match=r": point 'C1N2_200_10' is not a signal point .* did you mean 'C1N2_200_100'"):
        resolve(example, point="C1N2_200_10")
    with pytest.raises(InputError, match=r": point 'C1N2_200_10' is not a claimed point; .* did you mean 'C1N2_200_100'"):
        core.plan(example, points=["C1N2_200_10"])
    with pytest.raises(InputError, match=r": likelihood 'BkgOnly' has no claimed results; claimed likelihoods: 'BkgOnly\.json'; did you mean 'BkgOnly\.json'"):
        core.plan(example, likelihood="BkgOnly")
    with pytest.raises(
        InputError, match=r": likelihood 'BkgOnly' is not a likelihood \(role 'likelihood'\) of the bundle; it has 'BkgOnly\.json'; did you mean"
    ):
        simplify(example, likelihood="BkgOnly")


def test_with_results_adds_or_replaces_the_component() -> None:
    data = {"name": "x", "files": [{"path": "a.json", "role": "likelihood"}, {"path": "r.json", "role": "attachment"}]}
    out = with_results(data, {"r.json": "a.json", "q.json": "a.json"})
    assert out["files"] == [
        {"path": "a.json", "role": "likelihood"},
        {"path": "q.json", "role": "results", "likelihood": "a.json", "mediaType": "application/json"},
        {"path": "r.json", "role": "results", "likelihood": "a.json", "mediaType": "application/json"},
    ]
    assert data["files"][1]["role"] == "attachment"  # the input is left as it was


def test_what_the_manifest_says_besides_the_likelihoods(example: Path) -> None:
    with heparch.open(example) as bundle:
        analysis = Analysis.of(bundle)
    about = analysis.about
    assert (about.name, about.created, about.deposit) == ("toy-3x30", "2026-01-01T00:00:00Z", None)
    assert about.format.startswith("https://")
    assert about.metadata.title == "Toy search in three categories of 30 bins (heparch example)"
    assert (analysis.luminosity_ifb, about.metadata.sqrt_s_TeV, about.metadata.keywords) == (
        139,
        13,
        ("toy", "simplified-likelihood", "pyhf", "electroweakino"),
    )
    stored = [f.path for f in about.stored]
    assert stored == sorted(stored)
    assert {"BkgOnly.json", "patchset.json", "simplified.json", "results.json", "code/fit.py"} <= set(stored)
    assert analysis.paths == frozenset(stored)


def test_a_file_given_as_input_gets_the_parameter_and_arch_the_flag(tmp_path: Path) -> None:
    not_a_patchset = tmp_path / "ps.json"
    not_a_patchset.write_text(json.dumps({"patch": []}))
    with pytest.raises(InferenceInputError) as patchset:
        resolve(EXAMPLE / "BkgOnly.json", patchset=not_a_patchset, point="C1N2_200_100")
    assert str(patchset.value) == f"{not_a_patchset}: not a pyhf patchset (needs 'patches' and 'metadata'); give RFC 6902 patch files with patches=FILE"
    assert flagged(patchset.value).endswith("give RFC 6902 patch files with --patch FILE")
    with pytest.raises(InputError) as patched:
        resolve(EXAMPLE / "simplified.json", patches=[not_a_patchset])
    assert str(patched.value).endswith("is a simplified likelihood: a patchset and patch files apply to workspaces; name its signal with point=NAME")
    assert flagged(patched.value).endswith("name its signal with --point NAME")
