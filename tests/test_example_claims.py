"""Every claimed point of the example analysis (computed with pyhf) comes out again with the fast backend."""

from __future__ import annotations

import json

import pytest

from heparch.infer.fast import FastBackend

from conftest import EXAMPLE


def test_fast_backend_reproduces_every_claim_of_the_example() -> None:
    ws = json.loads((EXAMPLE / "BkgOnly.json").read_text())
    patchset = json.loads((EXAMPLE / "patchset.json").read_text())
    results = json.loads((EXAMPLE / "results.json").read_text())
    tol = results["tolerance"]["CLs"]
    background = FastBackend().background(ws)
    patches = {p["metadata"]["name"]: p["patch"] for p in patchset["patches"]}
    assert set(results["points"]) == set(patches)
    for name, claimed in results["points"].items():
        got = background.model([patches[name]]).cls(results["settings"]["mu"])
        for g, w in zip([got.observed, *got.expected], [claimed["CLs_obs"], *claimed["CLs_exp"]], strict=True):
            assert g == pytest.approx(w, abs=max(tol["abs"], tol["rel"] * abs(w))), name
