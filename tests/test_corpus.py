"""The corpus: every workspace in SHARED builds, verifies, and gives fast == pyhf.

Each workspace goes through the whole path a user takes: ``heparch.build.build`` into a
bundle, ``heparch.verify.verify`` (level full) valid, then the likelihood and its patches read
back from the bundle (``heparch.api.Bundle``) and CLs at mu = 1 from the fast engine compared
with pyhf within max(1e-4, 1e-3 x CLs) (DESIGN.md section 6), every value of the band.

* 1Lbb (BkgOnly.json + its 125 patches): pyhf values from
  ``SHARED/atlas-1lbb-ins1755298/reference_pyhf_cls.json`` (see its PROVENANCE.md); the
  ``simplify-examples`` beside it (packed in the same bundle): the full signal workspace against
  the same reference, the two simplified ones with a signal against live pyhf;
* every SModelS background-only workspace with a signal injected by
  ``tests/golden/make_corpus_golden.py``, whose pyhf values (tolerance 1e-10, recorded with
  software versions) are in ``tests/golden/corpus_cls.json``;
* the 9 pyhf validation cases (their pyhf values in ``SHARED/pyhf-validation/reference_pyhf.json``,
  heparch's default settings; ``tests/test_validation.py`` covers the file's settings).

pyhf is recomputed live on a few small models only; the large workspaces and 1Lbb are slow
(``tests/test_infer_fast.py`` holds the fast engine to the 1Lbb reference on every run, reading
the published files directly).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from golden.make_corpus_golden import SMODELS, WORKSPACES, injection_patch
from heparch.api import Bundle
from heparch.build import build
from heparch.errors import DegenerateResult
from heparch.infer.base import Settings
from heparch.infer.fast import FastBackend
from heparch.infer.pyhf_backend import PyhfBackend
from heparch.verify import verify

from conftest import ONE_LBB, SHARED
from fast_models import LBB_REFERENCE_AT_LOCAL_MINIMUM

pyhf = pytest.importorskip("pyhf")
from pyhf_reference import multistart_file  # noqa: E402 (needs pyhf)

GOLDEN: dict[str, Any] = json.loads((Path(__file__).parent / "golden" / "corpus_cls.json").read_text())
LBB_REFERENCE: dict[str, Any] = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text())["points"]
VALIDATION = SHARED / "pyhf-validation"
VALIDATION_REFERENCE: dict[str, Any] = json.loads((VALIDATION / "reference_pyhf.json").read_text())["cases"]
#: SModelS workspaces above this size take seconds to build, verify and fit: slow
SMALL_BYTES = 100_000
#: small models whose pyhf values are recomputed live on every run
LIVE = ("ATLAS-SUSY-2018-14-eff/Comb_bkgonly.json", "ATLAS-SUSY-2018-31-eff/simplifiedC.json", "ATLAS-SUSY-2019-09-eff/SR_WH_DFOS_fake_bkgonly.json")
MULTIMODAL = "2bin_2channel_coupledhistosys"
SIMPLIFY = "simplify-examples"
#: the 1Lbb simplify example that holds a signal (three parameters: pyhf live is quick)
SIMPLIFY_WITH_SIGNAL = ("simplified_C1N2_Wh_hbb_700_250.json",)
#: its sample "Signal" is 0 in every bin: q_mu,A = 0, CLs is not defined
SIMPLIFY_ZERO_SIGNAL = "simplified_likelihood.json"


def close(got: list[float], want: list[float]) -> list[str]:
    """The values further apart than max(1e-4, 1e-3 x CLs), named."""
    names = ("CLs_obs", *(f"CLs_exp[{k}]" for k in range(5)))
    return [f"{n}: {g:.6g} vs pyhf {w:.6g}" for n, g, w in zip(names, got, want, strict=True) if abs(g - w) > max(1e-4, 1e-3 * abs(w))]


def reference(entry: dict[str, Any]) -> list[float]:
    return [entry["CLs_obs"], *entry["CLs_exp"]]


def built_and_verified(source: Path, out: Path) -> Path:
    build(source, output=out)
    result = verify(out)
    assert result.valid, [f.one_line() for f in result.report.errors]
    return out


def patchset(spec: dict[str, Any], name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {
            "description": "a signal injected for heparch's corpus test",
            "digests": {"sha256": pyhf.utils.digest(spec)},
            "labels": ["n"],
            "references": {"hepdata": "ins0000000"},  # a placeholder: an injected signal has no publication
        },
        "patches": [{"metadata": {"name": name, "values": [1]}, "patch": ops}],
        "version": "1.0.0",
    }


def fast_cls(bundle: Path, *, likelihood: str | None = None, points: list[str] | None = None) -> dict[str, list[float]]:
    """CLs at mu = 1 from the fast engine on a likelihood read from the bundle (its only one unless
    named): each patch of its patchset (the named ``points``, else all), or the likelihood alone
    (key ``""``) when it has none."""
    with Bundle(bundle) as b:
        if likelihood is None:
            (likelihood,) = b.likelihoods()
        spec = b.read_json(likelihood)
        has_patchset = any(f.likelihood == likelihood for f in b.manifest.by_role("patchset"))
        patches: dict[str, list[Any]] = {p.name: [p.patch] for p in b.patchset(likelihood).patches} if has_patchset else {"": []}
    background = FastBackend().background(spec)
    return {point: values(background.model(patches[point]).cls(1.0)) for point in (points if points is not None else patches)}


def values(r: Any) -> list[float]:
    return [r.observed, *r.expected]


# --- SModelS workspaces with an injected signal ---------------------------------------------------


def smodels_params() -> list[Any]:
    return [pytest.param(rel, id=rel.split("/")[-1], marks=[pytest.mark.slow] if (SMODELS / rel).stat().st_size > SMALL_BYTES else []) for rel in WORKSPACES]


def test_every_smodels_workspace_is_in_the_corpus_and_has_a_golden_value() -> None:
    on_disk = {str(p.relative_to(SMODELS)) for p in SMODELS.rglob("*.json")}
    assert on_disk == set(WORKSPACES)
    assert set(GOLDEN["smodels"]) == set(WORKSPACES)
    assert GOLDEN["settings"]["optimizer"] == "scipy SLSQP, tolerance 1e-10"
    assert GOLDEN["software"]["pyhf"] == "0.7.6"


@pytest.mark.parametrize("rel", smodels_params())
def test_smodels_workspace_builds_verifies_and_fast_equals_pyhf(rel: str, tmp_path: Path) -> None:
    golden = GOLDEN["smodels"][rel]
    spec = json.loads((SMODELS / rel).read_text())
    src = tmp_path / "analysis"
    src.mkdir()
    (src / "BkgOnly.json").write_bytes((SMODELS / rel).read_bytes())
    (src / "patchset.json").write_text(json.dumps(patchset(spec, "injected", injection_patch(spec, golden["fraction"]))))
    bundle = built_and_verified(src, tmp_path / "bundle.zst")
    (got,) = fast_cls(bundle, points=["injected"]).values()
    assert close(got, reference(golden)) == []


@pytest.mark.parametrize("rel", LIVE)
def test_smodels_golden_values_are_what_pyhf_gives_now(rel: str) -> None:
    golden = GOLDEN["smodels"][rel]
    spec = json.loads((SMODELS / rel).read_text())
    r = PyhfBackend().background(spec).model([injection_patch(spec, golden["fraction"])]).cls(1.0)
    assert [r.observed, *r.expected] == pytest.approx(reference(golden), rel=1e-6)


# --- 1Lbb with all its patches --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lbb_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_and_verified(ONE_LBB, tmp_path_factory.mktemp("corpus") / "1lbb.zst")


@pytest.mark.slow
def test_1lbb_every_patch_fast_equals_pyhf(lbb_bundle: Path) -> None:
    got = fast_cls(lbb_bundle, likelihood="BkgOnly.json")
    assert set(got) == set(LBB_REFERENCE)
    bad = {point: problems for point, values in got.items() if (problems := close(values, reference(LBB_REFERENCE[point])))}
    # where the stored pyhf value is a local minimum (tests/test_infer_fast_starts.py shows the lower one)
    # fast differs, as it should; every other point agrees
    assert set(bad) == set(LBB_REFERENCE_AT_LOCAL_MINIMUM)


@pytest.mark.slow
def test_1lbb_simplify_examples_from_the_bundle(lbb_bundle: Path) -> None:
    """The full signal workspace is BkgOnly + patch 700_250 (PROVENANCE.md): the same pyhf value;
    the simplified one with a signal against live pyhf (three parameters)."""
    (full,) = fast_cls(lbb_bundle, likelihood=f"{SIMPLIFY}/full_C1N2_Wh_hbb_700_250.json").values()
    assert close(full, reference(LBB_REFERENCE["C1N2_Wh_hbb_700_250"])) == []
    for name in SIMPLIFY_WITH_SIGNAL:
        (got,) = fast_cls(lbb_bundle, likelihood=f"{SIMPLIFY}/{name}").values()
        assert close(got, live_pyhf(ONE_LBB / SIMPLIFY / name)) == []
    with Bundle(lbb_bundle) as b:  # the background-only and the zero-signal ones are packed too (nothing to compute)
        assert {f"{SIMPLIFY}/simplify_BkgOnly.json", f"{SIMPLIFY}/{SIMPLIFY_ZERO_SIGNAL}"} <= set(b.likelihoods())


@pytest.mark.parametrize("name", SIMPLIFY_WITH_SIGNAL)
def test_1lbb_simplified_likelihoods_fast_equals_live_pyhf(name: str) -> None:
    spec = json.loads((ONE_LBB / SIMPLIFY / name).read_text())
    got = values(FastBackend().background(spec).model().cls(1.0))
    assert close(got, live_pyhf(ONE_LBB / SIMPLIFY / name)) == []


def test_1lbb_simplified_likelihood_with_a_zero_signal_is_degenerate_in_pyhf() -> None:
    spec = json.loads((ONE_LBB / SIMPLIFY / SIMPLIFY_ZERO_SIGNAL).read_text())
    with pytest.raises(DegenerateResult, match=r"q_mu,A = 0 at mu=1"):
        PyhfBackend().background(spec).model().cls(1.0)


def test_1lbb_simplified_likelihood_with_a_zero_signal_is_degenerate_in_fast() -> None:
    spec = json.loads((ONE_LBB / SIMPLIFY / SIMPLIFY_ZERO_SIGNAL).read_text())
    with pytest.raises(DegenerateResult, match=r"q_mu,A"):
        FastBackend().background(spec).model().cls(1.0)


def live_pyhf(path: Path) -> list[float]:
    return values(PyhfBackend().background(json.loads(path.read_text())).model().cls(1.0))


# --- pyhf's validation cases ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(VALIDATION_REFERENCE))
def test_validation_case_builds_verifies_and_fast_equals_pyhf(case: str, tmp_path: Path) -> None:
    bundle = built_and_verified(VALIDATION / VALIDATION_REFERENCE[case]["workspace"], tmp_path / "bundle.zst")
    (got,) = fast_cls(bundle).values()
    want = reference(VALIDATION_REFERENCE[case]["pyhf_defaults"])
    if case == MULTIMODAL:  # pyhf's value is a local minimum; the multistart reference is the truth
        want = values(multistart_file(VALIDATION / VALIDATION_REFERENCE[case]["workspace"], 1.0, Settings()))
    assert close(got, want) == []
