"""The fast HistFactory backend against pyhf 0.7.6.

Tolerances (DESIGN.md section 6): CLs within max(1e-4, 1e-3 x CLs); upper limits within
1e-3 relative. Sources of truth:

* the project's pyhf reference for all 125 1Lbb points (../shared/data/atlas-1lbb-ins1755298);
* golden pyhf values on signals injected into SModelS workspaces and pyhf upper limits on
  1Lbb points, written by ``tests/golden/make_smodels_golden.py`` (``tests/golden/smodels_cls.json``);
* pyhf run live on two of those SModelS workspaces and on random small workspaces (hypothesis).
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from heparch.errors import FitError, InferenceInputError
from heparch.infer.base import HISTFACTORY_SETTINGS
from heparch.infer.fast import FastBackend

from conftest import ONE_LBB, SHARED, small_workspace
from fast_models import LBB_REFERENCE_AT_LOCAL_MINIMUM

GOLDEN = json.loads((Path(__file__).parent / "golden" / "smodels_cls.json").read_text())
SMODELS = SHARED / "smodels-db-atlas-pyhf-bkgonly" / "13TeV" / "ATLAS"


def cls_tolerance(ref: float) -> float:
    return max(1e-4, 1e-3 * abs(ref))


def deviations(result: Any, obs: float, exp: list[float]) -> list[float]:
    """|fast - pyhf| / tolerance for observed and the 5 expected values (<= 1 passes)."""
    got = [result.observed, *result.expected]
    want = [obs, *exp]
    return [abs(g - w) / cls_tolerance(w) for g, w in zip(got, want, strict=True)]


def pyhf_cls(pyhf: Any, spec: dict[str, Any]) -> tuple[float, list[float]]:
    ws = pyhf.Workspace(spec)
    model = ws.model()
    obs, exp = pyhf.infer.hypotest(1.0, ws.data(model), model, test_stat="qtilde", return_expected_set=True)
    return float(obs), [float(e) for e in exp]


# --------------------------------------------------------------------------- 1Lbb


@pytest.fixture(scope="module")
def lbb() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The 1Lbb background compiled once, the patches by name and the pyhf reference."""
    bkg = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    patchset = json.loads((ONE_LBB / "patchset.json").read_text())
    reference = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text())["points"]
    background = FastBackend().background(bkg)
    patches = {p["metadata"]["name"]: p["patch"] for p in patchset["patches"]}
    return background, patches, reference


def test_1lbb_every_point_matches_the_pyhf_reference(lbb: Any) -> None:
    background, patches, reference = lbb
    assert len(patches) == 125
    worst = (0.0, "")
    failures, off = [], set()
    for name, patch in patches.items():
        result = background.model([patch]).cls(1.0)
        ref = reference[name]
        dev = deviations(result, ref["CLs_obs"], ref["CLs_exp"])
        if max(dev) > 1.0:
            off.add(name)
            if not result.multimodal:
                failures.append(f"{name}: fast {[result.observed, *result.expected]} pyhf {[ref['CLs_obs'], *ref['CLs_exp']]}")
            continue
        worst = max(worst, (max(dev), name))
    assert not failures, "\n".join(failures)
    assert off == LBB_REFERENCE_AT_LOCAL_MINIMUM  # only where the fits have several minima
    assert worst[0] <= 1.0  # speed lives in benchmarks/bench_fast.py, not here (timed tests fail under load)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_1lbb_reference_at_a_local_minimum_is_above_the_fast_minimum(lbb: Any) -> None:
    """C1N2_Wh_hbb_375_50: the fit at mu = 1 has two minima; pyhf's own -ln L (its logpdf) at the
    fast engine's lowest minimum is 0.146 below the one reached from pyhf's nominal start, which is
    where the reference values come from (they agree with it, not with the lowest minimum)."""
    pyhf = pytest.importorskip("pyhf")
    import jsonpatch

    background, patches, _ = lbb
    (name,) = LBB_REFERENCE_AT_LOCAL_MINIMUM
    model = background.model([patches[name]])
    result = model.cls(1.0)
    assert result.multimodal
    cond = result.starts["fit with the POI fixed at 1.0 to the observed data"]
    assert cond["warm"] < cond["nominal"] - 0.1
    bkg = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    ws = pyhf.Workspace(jsonpatch.apply_patch(bkg, patches[name]))
    pm = ws.model()
    order = [list(model.st.par_names).index(n) for n in pm.config.par_names]
    fits = [f for f in model._fits if f.x[model.st.poi] == 1.0 and f.fun in (cond["warm"], cond["nominal"])]
    pyhf_nll = {f.fun: -float(pm.logpdf(f.x[order], ws.data(pm))[0]) for f in fits}
    assert pyhf_nll[cond["warm"]] == pytest.approx(cond["warm"], abs=1e-8)
    assert pyhf_nll[cond["nominal"]] == pytest.approx(cond["nominal"], abs=1e-8)


def test_1lbb_result_records_settings(lbb: Any) -> None:
    background, patches, _ = lbb
    result = background.model([patches["C1N2_Wh_hbb_1000_0"]]).cls(1.0)
    assert result.backend == "fast"
    for key, value in HISTFACTORY_SETTINGS.items():
        assert result.settings[key] == value
    assert result.settings["minimiser"].startswith("projected Newton")
    assert result.settings["fits_converged"] is True
    assert {"ftol", "xtol", "convergence"} <= set(result.settings)


# 1Lbb upper limits vs pyhf are not stored yet (about 40 pyhf hypotests per point, minutes each):
# upper limits are compared with pyhf on the SModelS workspaces (test_smodels_upper_limits_match_pyhf).


def test_1lbb_patch_reuses_the_background_structure(lbb: Any) -> None:
    """A patch that only adds signal samples compiles only those; one that removes a channel
    rebuilds, and both give what a background compiled from the patched workspace gives."""
    background, patches, _ = lbb
    patch = patches["C1N2_Wh_hbb_500_100"]
    model = background.model([patch])
    assert model.st.nrows == len(background._group.blocks) + 8
    bkg = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    remove = [{"op": "remove", "path": "/channels/7"}, {"op": "remove", "path": "/observations/7"}]
    both = background.model([remove, patch[:7]]).cls(1.0)
    import jsonpatch

    patched = jsonpatch.apply_patch(jsonpatch.apply_patch(bkg, remove), patch[:7])
    fresh = FastBackend().background(patched).model().cls(1.0)
    # equal up to where each fit stopped (different starting points: steps < 1e-5 sigma move
    # a CLs of 2e-6 by ~1e-6 relative), far inside the tolerance max(1e-4, 1e-3 x CLs)
    assert both.observed == pytest.approx(fresh.observed, rel=1e-5, abs=1e-12)
    assert list(both.expected) == pytest.approx(list(fresh.expected), rel=1e-5, abs=1e-12)


def test_1lbb_point_does_not_depend_on_the_points_before_it(lbb: Any) -> None:
    """A point's CLs is the same bit for bit whichever points the background computed before
    it: `arch claim` hands points to its workers in the order they finish, so a warm start
    carried from the previous point made the claimed values (and the bundle's identity) differ
    from run to run and from `arch cls --point` (by ~1e-10 relative on 1Lbb)."""
    _, patches, _ = lbb
    bkg = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    first, second = list(patches)[:2]
    alone = FastBackend().background(bkg).model([patches[first]]).cls(1.0)
    background = FastBackend().background(bkg)
    background.model([patches[second]]).cls(1.0)
    after = background.model([patches[first]]).cls(1.0)
    assert (after.observed, after.expected) == (alone.observed, alone.expected)


# --------------------------------------------------------------------------- SModelS


@pytest.mark.parametrize("rel", sorted(GOLDEN["smodels"]))
def test_smodels_golden(rel: str) -> None:
    entry = GOLDEN["smodels"][rel]
    spec = json.loads((SMODELS / rel).read_text())
    result = FastBackend().background(spec).model([entry["patch"]]).cls(1.0)
    dev = deviations(result, entry["CLs_obs"], entry["CLs_exp"])
    assert max(dev) <= 1.0, (result, entry["CLs_obs"], entry["CLs_exp"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("rel", ["ATLAS-SUSY-2018-14-eff/Comb_bkgonly.json", "ATLAS-SUSY-2018-31-eff/simplifiedC.json"])
def test_smodels_live_pyhf(pyhf_precise: Any, rel: str) -> None:
    import jsonpatch

    entry = GOLDEN["smodels"][rel]
    spec = json.loads((SMODELS / rel).read_text())
    obs, exp = pyhf_cls(pyhf_precise, jsonpatch.apply_patch(spec, entry["patch"]))
    result = FastBackend().background(spec).model([entry["patch"]]).cls(1.0)
    assert max(deviations(result, obs, exp)) <= 1.0


@pytest.mark.parametrize("rel", sorted(GOLDEN.get("smodels_upper_limits", {})))
def test_smodels_upper_limits_match_pyhf(rel: str) -> None:
    entry = GOLDEN["smodels"][rel]
    want = GOLDEN["smodels_upper_limits"][rel]
    spec = json.loads((SMODELS / rel).read_text())
    got = FastBackend().background(spec).model([entry["patch"]]).upper_limit(level=0.05)
    assert got.above_cap == ()
    for g, w in zip([got.observed, *got.expected], [want["mu_up_obs"], *want["mu_up_exp"]], strict=True):
        assert g == pytest.approx(w, rel=1e-3)


def test_golden_file_records_how_it_was_made() -> None:
    assert GOLDEN["software"]["pyhf"] == "0.7.6"
    assert "1e-10" in GOLDEN["settings"]["optimizer"]
    assert GOLDEN["settings"]["calc_base_dist"] == "normal"
    for entry in GOLDEN["smodels"].values():
        assert entry["patch"]
        assert 0 < entry["fraction"] <= 1


# --------------------------------------------------------------------------- random workspaces


@st.composite
def workspaces(draw: Any) -> dict[str, Any]:
    """Small random workspaces: 1-3 channels of 1-4 bins, a signal with the POI mu_SIG in each,
    backgrounds with normsys, histosys, staterror, shapesys, lumi, normfactor, shapefactor,
    and some parameters fixed in the measurement."""
    pos = st.floats(5.0, 60.0)
    channels, observations, params = [], [], [{"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.9, 1.1]], "inits": [1.0]}]
    fixed_names: set[str] = set()
    nch = draw(st.integers(1, 3))
    for c in range(nch):
        nb = draw(st.integers(1, 4))
        samples = [
            {"name": "signal", "data": [draw(st.floats(0.5, 15.0)) for _ in range(nb)], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
        ]
        total = np.array(samples[0]["data"]) * 0.0
        for s in range(draw(st.integers(1, 2))):
            nom = [draw(pos) for _ in range(nb)]
            total += nom
            mods: list[dict[str, Any]] = []
            # free factors (normfactor, shapefactor) only outside channel 0, so that mu_SIG stays
            # constrained: a model where they absorb the signal has q~mu = q~mu,A = 0 up to noise,
            # and pyhf's CLs is then NaN (0/0) or 1 depending on that noise
            allowed = ["normsys", "histosys", "staterror", "shapesys", "lumi"] + (["normfactor", "shapefactor"] if c else [])
            kinds = draw(st.sets(st.sampled_from(allowed), min_size=1, max_size=4))
            if "normsys" in kinds:
                up = draw(st.floats(1.02, 1.4))
                mods.append({"name": f"ns_{s}", "type": "normsys", "data": {"hi": up, "lo": draw(st.floats(0.65, 0.98))}})
            if "histosys" in kinds:
                mods.append(
                    {
                        "name": f"hs_{c}",
                        "type": "histosys",
                        "data": {"hi_data": [x * draw(st.floats(1.01, 1.3)) for x in nom], "lo_data": [x * draw(st.floats(0.7, 0.99)) for x in nom]},
                    }
                )
            if "staterror" in kinds:
                mods.append({"name": f"staterror_ch{c}", "type": "staterror", "data": [x * draw(st.floats(0.02, 0.2)) for x in nom]})
            if "shapesys" in kinds:
                mods.append({"name": f"ss_{c}_{s}", "type": "shapesys", "data": [x * draw(st.floats(0.02, 0.3)) for x in nom]})
            if "lumi" in kinds:
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            if "normfactor" in kinds:
                mods.append({"name": f"nf_{s}", "type": "normfactor", "data": None})
            if "shapefactor" in kinds and nb > 1:
                mods.append({"name": f"sf_{c}", "type": "shapefactor", "data": None})
            for m in mods:
                if m["type"] in ("normsys", "histosys") and draw(st.booleans()) and draw(st.booleans()):
                    fixed_names.add(m["name"])
            samples.append({"name": f"bkg{s}", "data": nom, "modifiers": mods})
        channels.append({"name": f"ch{c}", "samples": samples})
        observations.append({"name": f"ch{c}", "data": [float(round(t * draw(st.floats(0.7, 1.3)))) for t in total]})
    params += [{"name": n, "fixed": True} for n in sorted(fixed_names)]
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "m", "config": {"poi": "mu_SIG", "parameters": params}}],
        "version": "1.0.0",
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
# no shrinking: each example runs pyhf, and shrinking a failure took > 5 minutes
@settings(
    max_examples=15,
    derandomize=True,  # the same examples on every run: CI must not depend on luck
    deadline=datetime.timedelta(seconds=60),  # pyhf on one small workspace takes about a second
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=workspaces())
def test_random_workspaces_match_pyhf(pyhf_precise: Any, spec: dict[str, Any]) -> None:
    try:
        result = FastBackend().background(spec).model().cls(1.0)
    except FitError:  # said so rather than returning a number
        return
    obs, exp = pyhf_cls(pyhf_precise, copy.deepcopy(spec))
    assume(all(math.isfinite(v) for v in (obs, *exp)))
    dev = deviations(result, obs, exp)
    assert max(dev) <= 1.0, ([result.observed, *result.expected], [obs, *exp])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_fit_matches_pyhf_and_covariance_is_the_inverse_hessian(pyhf_precise: Any) -> None:
    spec = small_workspace(obs=7.0)
    spec["channels"][0]["samples"].append({"name": "signal", "data": [2.0, 3.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]})
    model = FastBackend().background(spec).model()
    fit = model.fit()
    assert fit.converged
    ws = pyhf_precise.Workspace(spec)
    pm = ws.model()
    best, twice_nll = pyhf_precise.infer.mle.fit(ws.data(pm), pm, return_fitted_val=True)
    assert fit.twice_nll == pytest.approx(float(twice_nll), abs=1e-6)
    names = list(fit.parameters)
    order = [names.index(n) for n in pm.config.par_names]
    assert np.asarray(fit.bestfit)[order] == pytest.approx(np.asarray(best), abs=1e-4)
    # covariance = inverse of the numerical Hessian of -ln L at the best fit
    x = np.asarray(fit.bestfit)
    free = np.flatnonzero(~model.st.fixed)
    eps = 1e-5
    grad = model.lik.evaluate
    hess = np.array([(grad(x + eps * e, hessian=False)[1] - grad(x - eps * e, hessian=False)[1]) / (2 * eps) for e in np.eye(x.size)])
    cov = np.linalg.inv(hess[np.ix_(free, free)])
    assert np.asarray(fit.covariance)[np.ix_(free, free)] == pytest.approx(cov, rel=1e-5, abs=1e-9)


# --------------------------------------------------------------------------- bad inputs, unsupported


def with_signal(spec: dict[str, Any]) -> dict[str, Any]:
    spec["channels"][0]["samples"].append({"name": "signal", "data": [2.0, 3.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]})
    return spec


def test_nan_yield_is_rejected() -> None:
    spec = with_signal(small_workspace())
    spec["channels"][0]["samples"][0]["data"][1] = math.nan
    with pytest.raises(InferenceInputError, match=r"channels\[0\]\.samples\[0\]\.data\[1\]: nan is not a finite number"):
        FastBackend().background(spec)


def test_nan_in_histosys_is_rejected() -> None:
    spec = with_signal(small_workspace())
    spec["channels"][0]["samples"][0]["modifiers"].append({"name": "h", "type": "histosys", "data": {"hi_data": [11.0, math.nan], "lo_data": [9.0, 4.0]}})
    with pytest.raises(InferenceInputError, match=r"modifiers\[2\]\.data\.hi_data\[1\]: nan is not a finite number"):
        FastBackend().background(spec)


def test_negative_sample_yield_is_computed_as_pyhf_computes_it(pyhf_precise: Any) -> None:
    """pyhf 0.7.6 computes a model with a negative sample yield where the rate stays positive
    (issue 10: heparch refused it); the fast engine agrees with it."""
    spec = with_signal(small_workspace())
    spec["channels"][0]["samples"].append({"name": "fakes", "data": [-1.0, -0.5], "modifiers": []})
    result = FastBackend().background(spec).model().cls(1.0)
    assert max(deviations(result, *pyhf_cls(pyhf_precise, spec))) <= 1.0


def test_negative_signal_yield_in_a_patch_is_computed_as_pyhf_computes_it(pyhf_precise: Any) -> None:
    spec = small_workspace()
    signal = {"name": "signal", "data": [3.0, -0.4], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
    patch = [{"op": "add", "path": "/channels/0/samples/-", "value": signal}]
    result = FastBackend().background(spec).model([patch]).cls(1.0)
    patched = copy.deepcopy(spec)
    patched["channels"][0]["samples"].append(signal)
    assert max(deviations(result, *pyhf_cls(pyhf_precise, patched))) <= 1.0


def test_unknown_modifier_type_is_rejected() -> None:
    spec = with_signal(small_workspace())
    spec["channels"][0]["samples"][0]["modifiers"].append({"name": "x", "type": "magicsys", "data": None})
    with pytest.raises(InferenceInputError, match=r"modifiers\[2\]\.type: unknown modifier type 'magicsys'"):
        FastBackend().background(spec)


def test_a_duplicate_channel_name_is_rejected() -> None:
    spec = with_signal(small_workspace())
    spec["channels"].append(copy.deepcopy(spec["channels"][0]))
    with pytest.raises(InferenceInputError, match=r"channels\[1\]: duplicate channel name 'SR'"):
        FastBackend().background(spec)


def test_nonpositive_normsys_factor_is_rejected() -> None:
    spec = with_signal(small_workspace())
    spec["channels"][0]["samples"][0]["modifiers"][0]["data"]["lo"] = 0.0
    with pytest.raises(InferenceInputError, match=r"normsys factors must be finite and > 0"):
        FastBackend().background(spec)


def test_model_without_poi_says_so() -> None:
    model = FastBackend().background(small_workspace()).model()
    with pytest.raises(InferenceInputError, match="no parameter of interest"):
        model.cls(1.0)


def test_supported_models_have_no_reason() -> None:
    assert FastBackend().unsupported(with_signal(small_workspace())) is None
    assert FastBackend().unsupported(json.loads((ONE_LBB / "BkgOnly.json").read_text())) is None


def test_poi_lower_bound_below_zero_is_supported() -> None:
    """As pyhf 0.7.6 computes it (issue 10): tests against pyhf in test_infer_fast_settings.py."""
    spec = with_signal(small_workspace())
    spec["measurements"][0]["config"]["parameters"] = [{"name": "mu_SIG", "bounds": [[-5.0, 10.0]]}]
    assert FastBackend().unsupported(spec) is None
    result = FastBackend().background(spec).model().cls(1.0)
    assert result.settings["poi_bounds"] == [-5.0, 10.0]


def test_non_normfactor_poi_is_unsupported() -> None:
    spec = small_workspace()
    spec["measurements"][0]["config"]["poi"] = "bkg_norm"
    reason = FastBackend().unsupported(spec)
    assert reason is not None
    assert "normsys" in reason


def test_unknown_interpolation_code_is_refused() -> None:
    with pytest.raises(InferenceInputError, match="code3"):
        FastBackend(normsys="code3")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("normsys", "histosys"), [("code1", "code0"), ("code4", "code2"), ("code1", "code4p")])
def test_other_interpolation_codes_match_pyhf(pyhf_precise: Any, normsys: str, histosys: str) -> None:
    spec = with_signal(small_workspace(obs=9.0))
    spec["channels"][0]["samples"][0]["modifiers"].append({"name": "shape", "type": "histosys", "data": {"hi_data": [12.5, 5.2], "lo_data": [8.9, 4.1]}})
    spec["channels"][0]["samples"][0]["modifiers"][0]["data"] = {"hi": 1.25, "lo": 0.85}
    ws = pyhf_precise.Workspace(spec)
    model = ws.model(modifier_settings={"normsys": {"interpcode": normsys}, "histosys": {"interpcode": histosys}})
    obs, exp = pyhf_precise.infer.hypotest(1.0, ws.data(model), model, test_stat="qtilde", return_expected_set=True)
    result = FastBackend(normsys=normsys, histosys=histosys).background(spec).model().cls(1.0)
    assert result.settings["interpolation"] == {"normsys": normsys, "histosys": histosys}
    assert max(deviations(result, float(obs), [float(e) for e in exp])) <= 1.0
