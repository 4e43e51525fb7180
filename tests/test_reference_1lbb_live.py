"""One point of the stored 1Lbb pyhf reference is recomputed live with pyhf (about 60-120 s CPU with the second starts),
through heparch's pyhf backend, so the reference the fast engine is tested against is itself
checked on this machine."""

from __future__ import annotations

import json

import pytest

from heparch.infer.pyhf_backend import PyhfBackend

from conftest import ONE_LBB

POINT = "C1N2_Wh_hbb_700_250"  # CLs_obs 0.063, near the exclusion boundary


@pytest.mark.slow  # pyhf's five fits, each also from a second start (and a third for the two at mu): ~2x pyhf's hypotest
def test_pyhf_backend_reproduces_a_stored_1lbb_reference_point() -> None:
    reference = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text())["points"][POINT]
    bkg = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    patchset = json.loads((ONE_LBB / "patchset.json").read_text())
    patch = next(p["patch"] for p in patchset["patches"] if p["metadata"]["name"] == POINT)
    got = PyhfBackend().background(bkg).model([patch]).cls(1.0)
    for g, w in zip([got.observed, *got.expected], [reference["CLs_obs"], *reference["CLs_exp"]], strict=True):
        assert g == pytest.approx(w, abs=max(1e-4, 1e-3 * w))
