"""The ``simplified`` backend against spey 0.2.7 on third-moment (quadratic) simplified likelihoods.

spey 0.2.7 (``default.third_moment_expansion``, asymptotic q~mu, ``aposteriori`` expected band,
SLSQP at tolerance 1e-10) is the field's tool for these models and the conventions heparch follows
(DESIGN.md section 6). The quadratic form is not convex in theta: near the bound m3_i^2 <= 8 m2_ii^3
each bin's background rate A_i + B_i theta_i + C_i theta_i^2 is a parabola with its vertex close to
theta_i = 0, and -ln L can have several minima. A fit from one start can land in a higher one;
spey's SLSQP sometimes stops short of a minimum, too.

A spey result is excused only when spey itself shows that it did not converge: spey's own
minimiser, started a second time (from heparch's parameters of the same fit), reaches a -ln L
lower by more than 1e-6. Never because it disagrees with heparch; at most 5% of the examples.
"""

from __future__ import annotations

import datetime
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from heparch.errors import InferenceInputError
from heparch.infer.base import Settings
from heparch.infer.simplified import SimplifiedBackend

os.environ.setdefault("SPEY_CHECKUPDATE", "OFF")  # spey asks PyPI for updates on import otherwise
import spey  # after the environment it reads on import

OBS, APOST = spey.ExpectationType.observed, spey.ExpectationType.aposteriori
TOL = 1e-10  # spey's SLSQP tolerance
NLL_TOL = 1e-6  # a second start lower by more than this shows that the first did not converge


def close_cls(ours: float, ref: float) -> bool:
    return abs(ours - ref) <= max(1e-4, 1e-3 * abs(ref))


def spey_model(sl: dict, signal: str):
    return spey.get_backend("default.third_moment_expansion")(
        signal_yields=np.array(sl["signals"][signal], float),
        background_yields=np.array(sl["background"], float),
        data=np.array(sl["observed"], float),
        covariance_matrix=np.array(sl["covariance"], float),
        third_moment=np.array(sl["third_moments"], float),
    )


def spey_cls(stat, mu: float) -> tuple[float, list[float]]:
    """CLs observed and expected from spey (which reports 1 - CLs)."""
    (obs,) = stat.exclusion_confidence_level(poi_test=mu, expected=OBS, tol=TOL)
    exp = stat.exclusion_confidence_level(poi_test=mu, expected=APOST, tol=TOL)
    return 1.0 - obs, [1.0 - x for x in exp]


def spey_did_not_converge(stat, model, mu: float) -> list[str]:
    """The fits where spey, started a second time from heparch's parameters, reaches a lower
    -ln L than from its own start (empty when spey's fits are minima as far as this shows)."""
    fit0, glob, asimov_h, globa = model._prepare()
    cond_obs = model._conditional("obs", model._obs, mu)
    start = lambda fit: [float(fit.mu), *map(float, fit.theta)]  # noqa: E731
    found = []
    nll0 = stat.likelihood(poi_test=0.0, expected=APOST, tol=TOL)
    if stat.likelihood(poi_test=0.0, expected=APOST, init_pars=start(fit0), tol=TOL) < nll0 - NLL_TOL:
        found.append("fit at mu=0 (observed data)")
    nll = stat.maximize_likelihood(expected=OBS, allow_negative_signal=False, tol=TOL)[1]
    if stat.maximize_likelihood(expected=OBS, allow_negative_signal=False, init_pars=start(glob), tol=TOL)[1] < nll - NLL_TOL:
        found.append("global fit (observed data)")
    if stat.likelihood(poi_test=mu, expected=OBS, init_pars=start(cond_obs), tol=TOL) < stat.likelihood(poi_test=mu, expected=OBS, tol=TOL) - NLL_TOL:
        found.append(f"fit at mu={mu:g} (observed data)")
    if found:
        return found
    # spey's Asimov data (from its fit at mu=0, a minimum as far as this shows), refitted from heparch's starts
    data = np.array(stat.generate_asimov_data(expected=APOST, tol=TOL))[: len(fit0.theta)]
    cond_asimov = model._conditional("asimov", asimov_h, mu)
    nll = stat.maximize_asimov_likelihood(expected=APOST, tol=TOL)[1]
    if stat.maximize_likelihood(expected=OBS, allow_negative_signal=False, data=data, init_pars=start(globa), tol=TOL)[1] < nll - NLL_TOL:
        found.append("global fit (Asimov data)")
    nll = stat.asimov_likelihood(poi_test=mu, expected=APOST, tol=TOL)
    if stat.likelihood(poi_test=mu, expected=OBS, data=data, init_pars=start(cond_asimov), tol=TOL) < nll - NLL_TOL:
        found.append(f"fit at mu={mu:g} (Asimov data)")
    return found


# ---------------------------------------------------------------------------------------
# (1) the case a single warm start missed


#: found by a random search: the fit at mu=0 from heparch's (only) start used to end in a minimum
#: 0.72 higher in -ln L than the one spey's start (theta = 1) reaches, so the Asimov data and the
#: whole expected band differed from spey's (by up to 8%: +1 sigma 0.2641 against 0.2793; the
#: global fit, warm-started from it, too: CLs_obs 0.00366 against 0.00434)
LOCAL_MINIMUM = {
    "observed": [3, 10, 7, 7, 4],
    "background": [2.5801945717904005, 4.519391637452862, 1.9136879539897387, 4.402209597759145, 3.2612347993789332],
    "covariance": [
        [3.8109495908663793, -4.4629045716017455, -1.735815280544145, 0.4363547093299829, -2.6916021388170392],
        [-4.4629045716017455, 15.897082722319553, 2.2640806827392796, -0.5691517290403311, 3.510744764388198],
        [-1.735815280544145, 2.2640806827392796, 1.0760457794881066, -0.22136755388021953, 1.3654794339302305],
        [0.4363547093299829, -0.5691517290403311, -0.22136755388021953, 3.883607903912054, -0.3432585184420733],
        [-2.6916021388170392, 3.510744764388198, 1.3654794339302305, -0.3432585184420733, 2.1951885256256958],
    ],
    "third_moments": [16.89814585197161, 154.12632303095756, 2.5337899662130416, 18.585253469181563, -7.906161798733847],
    "signals": {"s": [1.106489715656274, 2.0701728591283994, 0.5044405257530983, 2.7250975040838363, 2.263563838137973]},
}


def test_expected_band_from_the_lowest_minimum_matches_spey():
    mu = 1.3939870615207532
    model = SimplifiedBackend().background(LOCAL_MINIMUM).model(signal="s")
    r = model.cls(mu)
    stat = spey_model(LOCAL_MINIMUM, "s")
    obs, exp = spey_cls(stat, mu)
    assert spey_did_not_converge(stat, model, mu) == []  # spey's numbers are its minima
    assert close_cls(r.observed, obs), (r.observed, obs)
    for ours, theirs in zip(r.expected, exp, strict=True):
        assert close_cls(ours, theirs), (r.expected, exp)
    # the fit at mu=0 has two minima: both are reported, the lowest is used
    assert r.multimodal
    starts = r.starts["fit at mu=0 (observed data)"]
    assert max(starts.values()) - min(starts.values()) == pytest.approx(0.7154, abs=1e-3)
    assert r.to_json()["multimodal"] is True


def test_linear_form_has_one_start():
    """The linear form is convex (-ln L of a Poisson rate linear in theta, Gaussian constraint): one start."""
    sl = {k: v for k, v in LOCAL_MINIMUM.items() if k != "third_moments"}
    model = SimplifiedBackend().background(sl).model(signal="s")
    assert [name for name, _mu, _theta in model._starts(np.zeros(5), 0.0, free_mu=True)] == ["warm"]
    assert not model.cls(1.0).multimodal


def test_settings_the_engine_cannot_honour_are_refused():
    backend = SimplifiedBackend()
    assert backend.background(LOCAL_MINIMUM, settings=Settings(normsys="code1", poi_bounds=(0.0, 20.0))).form == "quadratic"
    with pytest.raises(InferenceInputError, match=r"^--test-stat q: the simplified backend computes qtilde") as info:
        backend.background(LOCAL_MINIMUM, settings=Settings(test_stat="q"))
    assert info.value.exit_code == 2
    with pytest.raises(InferenceInputError, match=r"^--poi-bounds -10,10: the simplified backend bounds mu below by 0"):
        backend.background(LOCAL_MINIMUM, settings=Settings(poi_bounds=(-10.0, 10.0)))


# ---------------------------------------------------------------------------------------
# (2) random models near the bound


@st.composite
def near_bound_models(draw):
    """2-4 bins, small backgrounds, strong correlations (one or two common factors), |m3| at
    80-99.9% of its bound sqrt(8 m2_ii^3), mostly positive skews."""
    n = draw(st.integers(2, 4))
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    b = np.array([draw(floats(0.5, 10.0)) for _ in range(n)])
    sd = b * np.array([draw(floats(0.2, 0.8)) for _ in range(n)])
    factors = np.array([[draw(floats(-1.0, 1.0)) for _ in range(2)] for _ in range(n)])
    corr = factors @ factors.T + np.eye(n) * draw(floats(0.02, 0.3))
    d = np.sqrt(np.diag(corr))
    corr = corr / np.outer(d, d)
    cov = corr * np.outer(sd, sd)
    m3 = [draw(st.sampled_from([1, 1, 1, -1])) * draw(floats(0.8, 0.999)) * math.sqrt(8 * cov[i, i] ** 3) for i in range(n)]
    sl = {
        "observed": [draw(st.integers(0, int(2 * x) + 3)) for x in b],
        "background": b.tolist(),
        "covariance": cov.tolist(),
        "third_moments": m3,
        "signals": {"s": [draw(floats(0.3, 4.0)) for _ in range(n)]},
    }
    return sl, draw(floats(0.3, 2.5))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # spey's autograd probes overflowing steps
def test_random_near_bound_models_match_spey():
    """CLs observed and the 5 expected values within max(1e-4, 1e-3 CLs) of spey's."""
    outcomes: list[str] = []

    @settings(
        max_examples=25,
        deadline=datetime.timedelta(seconds=60),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(near_bound_models())
    @example((LOCAL_MINIMUM, 1.3939870615207532))
    def check(case):
        sl, mu = case
        try:
            model = SimplifiedBackend().background(sl).model(signal="s")
        except InferenceInputError:  # eq. (2.12) gives a rho that is not positive definite
            assume(False)
        r = model.cls(mu)
        stat = spey_model(sl, "s")
        obs, exp = spey_cls(stat, mu)
        if close_cls(r.observed, obs) and all(close_cls(a, b) for a, b in zip(r.expected, exp, strict=True)):
            outcomes.append("agree")
            return
        not_converged = spey_did_not_converge(stat, model, mu)
        assert not_converged, ("heparch differs from spey, whose fits are minima", r.observed, obs, r.expected, exp)
        outcomes.append("excused: " + ", ".join(not_converged))

    check()
    excused = [o for o in outcomes if o != "agree"]
    assert len(outcomes) >= 20
    assert len(excused) <= 0.05 * len(outcomes), excused
