"""The ``simplified`` backend against spey 0.2.7 on third-moment (quadratic) simplified likelihoods.

spey 0.2.7 (``default.third_moment_expansion``, asymptotic q~mu, ``aposteriori`` expected band,
SLSQP at tolerance 1e-10) is the field's tool for these models and the conventions heparch follows
(DESIGN.md section 6). The quadratic form is not convex in theta: near the bound m3_i^2 <= 8 m2_ii^3
each bin's background rate A_i + B_i theta_i + C_i theta_i^2 is a parabola with its vertex close to
theta_i = 0, and -ln L can have several minima. A fit from one start can land in a higher one;
spey's SLSQP sometimes stops short of a minimum, too.

The reference (:class:`SpeyReference`) is spey's likelihood and minimiser run from spey's own
start and from the nominal values, the lowest -ln L taken in every fit, and spey's asymptotic
formulae. A reference value is excused only when spey itself shows that it did not converge:
spey's minimiser, started once more (from heparch's parameters of the same fit), reaches a -ln L
lower by more than 1e-6. Never because it disagrees with heparch; at most 5% of the values.
"""

from __future__ import annotations

import datetime
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from heparch.cli.main import flagged
from heparch.errors import InferenceInputError
from heparch.infer.base import Settings
from heparch.infer.simplified import SimplifiedBackend

os.environ.setdefault("SPEY_CHECKUPDATE", "OFF")  # spey asks PyPI for updates on import otherwise
import spey  # after the environment it reads on import
from spey.hypothesis_testing.asymptotic_calculator import compute_asymptotic_confidence_level

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


class SpeyReference:
    """spey 0.2.7's q~mu and CLs, each fit run by spey from its own starts: its default (theta = 1,
    mu = 1) and the nominal values (theta = 0), the lowest -ln L taken (as pyhf is run from a grid
    of starts for the HistFactory reference); the Asimov data are spey's, from the lowest fit at
    mu=0. CLs from spey's own asymptotic formulae."""

    def __init__(self, sl: dict, signal: str = "s") -> None:
        self.stat = spey_model(sl, signal)
        self.starts = [None, [1.0] + [0.0] * len(sl["observed"])]
        nll0, p0 = self._lowest(lambda s: self.stat.likelihood(poi_test=0.0, expected=APOST, init_pars=s, return_parameters=True, tol=TOL))
        self.asimov = np.asarray(self.stat.backend.expected_data(p0, include_auxiliary=False), float)
        self.nll = {"fit0": nll0}
        self.nll["glob"], self.muhat = self._lowest(lambda s: self._free(None, s))
        self.nll["globa"], self.muhat_a = self._lowest(lambda s: self._free(self.asimov, s))

    def _lowest(self, fit):
        return min((fit(None if s is None else list(s)) for s in self.starts), key=lambda r: r[0])

    def _free(self, data, init):
        muhat, nll = self.stat.maximize_likelihood(expected=OBS, allow_negative_signal=False, data=data, init_pars=init, tol=TOL)
        return nll, muhat

    def conditional(self, mu: float, data) -> float:
        return self._lowest(lambda s: (self.stat.likelihood(poi_test=mu, expected=OBS, data=data, init_pars=s, tol=TOL),))[0]

    def cls(self, mu: float) -> tuple[float, list[float]]:
        q = 0.0 if self.muhat > mu else max(2.0 * (self.conditional(mu, None) - self.nll["glob"]), 0.0)
        qa = 0.0 if self.muhat_a > mu else max(2.0 * (self.conditional(mu, self.asimov) - self.nll["globa"]), 0.0)
        if qa == 0.0:  # spey: AsimovTestStatZero, CLs = 1
            return 1.0, [1.0] * 5
        sq, sqa = math.sqrt(q), math.sqrt(qa)
        delta = sq - sqa if sq <= sqa else (q - qa) / (2.0 * sqa)
        (observed,), expected = compute_asymptotic_confidence_level(sqa, delta, "qtilde")
        return float(observed), [float(x) for x in expected]

    def not_converged(self, model, mu: float) -> list[str]:
        """The fits where spey, started once more from heparch's parameters of that fit, reaches a
        -ln L lower (by more than NLL_TOL) than from its own starts: spey did not converge there."""
        fit0, glob, asimov_h, globa = model._prepare()
        start = lambda fit: [float(fit.mu), *map(float, fit.theta)]  # noqa: E731
        lower = lambda nll, ref: nll < ref - NLL_TOL  # noqa: E731
        found = []
        if lower(self.stat.likelihood(poi_test=0.0, expected=APOST, init_pars=start(fit0), tol=TOL), self.nll["fit0"]):
            found.append("fit at mu=0 (observed data)")
        if lower(self._free(None, start(glob))[0], self.nll["glob"]):
            found.append("global fit (observed data)")
        cond = model._conditional("obs", model._obs, mu)
        if lower(self.stat.likelihood(poi_test=mu, expected=OBS, init_pars=start(cond), tol=TOL), self.conditional(mu, None)):
            found.append(f"fit at mu={mu:g} (observed data)")
        # spey's Asimov data (from its lowest fit at mu=0), refitted from heparch's parameters
        if lower(self._free(self.asimov, start(globa))[0], self.nll["globa"]):
            found.append("global fit (Asimov data)")
        cond = model._conditional("asimov", asimov_h, mu)
        if lower(self.stat.likelihood(poi_test=mu, expected=OBS, data=self.asimov, init_pars=start(cond), tol=TOL), self.conditional(mu, self.asimov)):
            found.append(f"fit at mu={mu:g} (Asimov data)")
        return found


# ---------------------------------------------------------------------------------------
# (1) the case a single warm start missed


#: found by a random search: the fit at mu=0 from heparch's (only) start used to end in a minimum
#: 0.72 higher in -ln L than the one spey's start (theta = 1) reaches, so the Asimov data and the
#: whole expected band differed from spey's (by up to 18%: -2 sigma 0.00366 against 0.00434, +1
#: sigma 0.2641 against 0.2793), and CLs_obs too (0.3508 against 0.3538: the global fit is
#: warm-started from that fit)
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
    obs, exp = spey_cls(spey_model(LOCAL_MINIMUM, "s"), mu)  # spey's API from its own start
    assert SpeyReference(LOCAL_MINIMUM).not_converged(model, mu) == []  # its fits are minima
    assert close_cls(r.observed, obs), (r.observed, obs)
    for ours, theirs in zip(r.expected, exp, strict=True):
        assert close_cls(ours, theirs), (r.expected, exp)
    # the fit at mu=0 has two minima: both are reported, the lowest is used
    assert r.multimodal
    starts = r.starts["fit at mu=0 (observed data)"]
    assert max(starts.values()) - min(starts.values()) == pytest.approx(0.7154, abs=1e-3)
    assert r.to_json()["multimodal"] is True


def test_three_bin_negative_skew_matches_spey():
    """The model where the straightforward reference of test_infer_simplified.py stops early."""
    from test_infer_simplified import THREE_BIN_NEGATIVE_SKEW

    sl = {**THREE_BIN_NEGATIVE_SKEW, "signals": {"s": THREE_BIN_NEGATIVE_SKEW["signals"]["p"]}}
    mu = 2.635546362306547
    r = SimplifiedBackend().background(sl).model(signal="s").cls(mu)
    obs, exp = SpeyReference(sl).cls(mu)
    assert close_cls(r.observed, obs), (r.observed, obs)
    for ours, theirs in zip(r.expected, exp, strict=True):
        assert close_cls(ours, theirs), (r.expected, exp)


def test_linear_form_has_one_start():
    """The linear form is convex (-ln L of a Poisson rate linear in theta, Gaussian constraint): one start."""
    sl = {k: v for k, v in LOCAL_MINIMUM.items() if k != "third_moments"}
    model = SimplifiedBackend().background(sl).model(signal="s")
    assert [name for name, _mu, _theta in model._starts(np.zeros(5), 0.0, free_mu=True)] == ["warm"]
    assert not model.cls(1.0).multimodal


def cms_like_model(seed: int, n: int = 22) -> dict:
    """``n`` bins shaped like a CMS search's simplified likelihood: backgrounds from 0.5 to 300
    events (log-uniform), 10-50% uncertainties correlated through three common factors, third
    moments up to 60% of their bound, mostly positive; a signal of 0-15% of the background + 0-2."""
    rng = np.random.default_rng(seed)
    b = np.exp(rng.uniform(np.log(0.5), np.log(300.0), n))
    sd = rng.uniform(0.1, 0.5, n) * b
    factors = rng.normal(size=(n, 3)) * rng.uniform(0.5, 1.0, 3)
    c = factors @ factors.T + np.diag(rng.uniform(0.2, 1.0, n))
    d = np.sqrt(np.diag(c))
    cov = c / np.outer(d, d) * np.outer(sd, sd)
    m3 = rng.uniform(0.0, 0.6, n) * np.sqrt(8 * np.diag(cov) ** 3) * rng.choice([1, 1, 1, -1], n)
    observed = rng.poisson(b).astype(float)
    signal = b * rng.uniform(0.0, 0.15, n) + rng.uniform(0.0, 2.0, n)
    return {
        "observed": observed.tolist(),
        "background": b.tolist(),
        "covariance": cov.tolist(),
        "third_moments": m3.tolist(),
        "signals": {"s": signal.tolist()},
    }


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # spey's autograd probes overflowing steps
@pytest.mark.parametrize("seed", [24])  # 10, 14 and 26 agree too (checked by hand, ~10 s each)
def test_22_bin_correlated_third_moments_match_spey(seed: int) -> None:
    """Many correlated bins (issue 10 saw the +1/+2 sigma band of a real 22-bin CMS likelihood off
    spey by ~2%; the random tests above have 2-4 bins): observed and the whole band agree."""
    sl = cms_like_model(seed)
    r = SimplifiedBackend().background(sl).model(signal="s").cls(1.0)
    obs, exp = SpeyReference(sl).cls(1.0)
    assert close_cls(r.observed, obs), (r.observed, obs)
    for ours, theirs in zip(r.expected, exp, strict=True):
        assert close_cls(ours, theirs), (r.expected, exp)
    assert r.expected[4] > 0.2  # the +2 sigma value is not vacuous


def test_settings_the_engine_cannot_honour_are_refused():
    backend = SimplifiedBackend()
    assert backend.background(LOCAL_MINIMUM, settings=Settings(normsys="code1", poi_bounds=(0.0, 20.0))).form == "quadratic"
    with pytest.raises(InferenceInputError, match=r"^test_stat q: the simplified backend computes qtilde .*; use test_stat=qtilde$") as info:
        backend.background(LOCAL_MINIMUM, settings=Settings(test_stat="q"))
    assert info.value.exit_code == 2
    assert flagged(info.value).startswith("--test-stat q: the simplified backend computes qtilde")  # arch names the flag
    assert flagged(info.value).endswith("; use --test-stat qtilde")
    with pytest.raises(InferenceInputError, match=r"^poi_bounds -10,10: the simplified backend bounds mu below by 0") as bounds:
        backend.background(LOCAL_MINIMUM, settings=Settings(poi_bounds=(-10.0, 10.0)))
    assert flagged(bounds.value).startswith("--poi-bounds -10,10: the simplified backend bounds mu below by 0")


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
        ref = SpeyReference(sl)
        obs, exp = ref.cls(mu)
        if close_cls(r.observed, obs) and all(close_cls(a, b) for a, b in zip(r.expected, exp, strict=True)):
            outcomes.append("agree")
            return
        not_converged = ref.not_converged(model, mu)
        assert not_converged, ("heparch differs from spey, whose fits are minima", r.observed, obs, r.expected, exp)
        outcomes.append("excused: " + ", ".join(not_converged))

    check()
    excused = [o for o in outcomes if o != "agree"]
    assert len(outcomes) >= 20
    assert len(excused) <= 0.05 * len(outcomes), excused


def spey_crossing(ref: SpeyReference, mu_up: float, which: int | None, level: float = 0.05) -> bool:
    """spey's CLs (observed when ``which`` is None, else expected[which]) crosses ``level``
    between mu_up (1 -/+ 1e-3): the limit is within 1e-3 relative of spey's."""
    values = []
    for mu in (mu_up * (1 - 1e-3), mu_up * (1 + 1e-3)):
        obs, exp = ref.cls(mu)
        values.append(obs if which is None else exp[which])
    return values[0] > level > values[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # spey's autograd probes overflowing steps
def test_random_near_bound_upper_limits_match_spey():
    """Observed and the 5 expected upper limits within 1e-3 relative of spey's: spey's CLs crosses
    0.05 between mu_up (1 -/+ 1e-3); excused as above only where spey's second start goes lower."""
    outcomes: list[str] = []

    @settings(
        max_examples=6,
        deadline=datetime.timedelta(seconds=60),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(near_bound_models())
    @example((LOCAL_MINIMUM, 1.0))
    def check(case):
        sl, _mu = case
        try:
            bkg = SimplifiedBackend().background(sl)
        except InferenceInputError:
            assume(False)
        ul = bkg.model(signal="s").upper_limit(level=0.05)
        assume(not ul.above_cap)
        ref = SpeyReference(sl)
        for which, mu_up in [(None, ul.observed), *enumerate(ul.expected)]:
            if spey_crossing(ref, mu_up, which):
                outcomes.append("agree")
                continue
            fresh = bkg.model(signal="s")
            not_converged = ref.not_converged(fresh, mu_up * (1 - 1e-3)) or ref.not_converged(fresh, mu_up * (1 + 1e-3))
            assert not_converged, ("heparch's limit differs from spey's, whose fits are minima", which, mu_up)
            outcomes.append("excused: " + ", ".join(not_converged))

    check()
    excused = [o for o in outcomes if o != "agree"]
    assert len(outcomes) >= 6 * 6
    assert len(excused) <= 0.05 * len(outcomes), excused
