"""The pyhf reference backend: the same numbers as a direct pyhf call, fits, bad inputs."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest

from heparch.cli.main import flagged
from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer.base import Settings, UpperLimit
from heparch.infer.limits import NAMES
from heparch.infer.pyhf_backend import CLS_NAMES, PyhfBackend, checked_cls

from conftest import small_patchset, small_workspace

pyhf = pytest.importorskip("pyhf")


def one_bin(obs: float = 6.0, *, bkg: float = 4.0, sig: float = 2.0, fixed_bkg: bool = False) -> dict[str, Any]:
    """One bin: signal (POI mu) + background with a normsys, optionally fixed."""
    params = [{"name": "bkg_norm", "fixed": True}] if fixed_bkg else []
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {"name": "sig", "data": [sig], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [bkg], "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}}]},
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [obs]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": params}}],
        "version": "1.0.0",
    }


def direct_hypotest(ws: dict[str, Any], mu: float) -> tuple[float, list[float]]:
    """pyhf 0.7.6 called the documented way, outside heparch."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    w = pyhf.Workspace(ws)
    model = w.model()
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, bounds[model.config.poi_index][1])
    obs, exp = pyhf.infer.hypotest(
        mu, w.data(model), model, par_bounds=bounds, test_stat="qtilde", calctype="asymptotics", calc_base_dist="normal", return_expected_set=True
    )
    return float(obs), [float(e) for e in exp]


@pytest.fixture(scope="module")
def patched() -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    ws = small_workspace()
    ops = small_patchset(ws)["patches"][0]["patch"]
    full = copy.deepcopy(ws)
    full["channels"][0]["samples"].append(ops[0]["value"])
    return ws, ops, full


@pytest.mark.parametrize("mu", [0.5, 1.0, 3.0])
def test_cls_equals_direct_pyhf(patched: tuple[dict[str, Any], list[Any], dict[str, Any]], mu: float) -> None:
    ws, ops, full = patched
    got = PyhfBackend().background(ws).model([ops]).cls(mu)
    obs, exp = direct_hypotest(full, mu)
    assert got.observed == pytest.approx(obs, rel=1e-9, abs=1e-12)
    assert list(got.expected) == pytest.approx(exp, rel=1e-9, abs=1e-12)
    assert got.mu == mu
    assert got.backend == "pyhf"


def test_settings_record_the_settings_used_optimizer_and_versions(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    settings = PyhfBackend().background(ws).model([ops]).cls(1.0).settings
    used = Settings.from_json(settings)
    assert used == Settings(poi_bounds=(0.0, 10.0), measurement="meas")  # the defaults, bounds and measurement resolved
    assert settings["poi_bounds_from"] == "workspace"
    assert settings["qmu_A"] > 0
    assert settings["tolerance"] == 1e-10
    assert settings["optimizer"] == "scipy SLSQP"
    assert settings["versions"]["pyhf"] == pyhf.__version__
    assert set(settings["versions"]) == {"pyhf", "numpy", "scipy"}


def test_pyhf_global_backend_is_restored(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    pyhf.set_backend("numpy", "scipy")  # default tolerance
    before = pyhf.get_backend()[1]
    PyhfBackend().background(ws).model([ops]).cls(1.0)
    assert pyhf.get_backend()[1] is before


def test_patches_apply_in_order_without_touching_the_background(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    snapshot = copy.deepcopy(ws)
    extra = [{"op": "replace", "path": "/observations/0/data/1", "value": 9.0}]
    model = PyhfBackend().background(ws).model([ops, extra])
    assert list(model.data[:2]) == [11.0, 9.0]
    assert ws == snapshot


def test_upper_limit_uses_shared_root_finder_and_hits_the_level() -> None:
    ws = one_bin()
    ws["channels"][0]["samples"][1]["modifiers"] = []  # the POI alone: quick fits
    model = PyhfBackend().background(ws).model()
    ul = model.upper_limit(level=0.05)
    assert ul.backend == "pyhf"
    assert ul.settings["rtol"] == 1e-4
    assert ul.expected[0] < ul.expected[2] < ul.expected[4]
    assert model.cls(ul.observed).observed == pytest.approx(0.05, abs=2e-4)
    assert model.cls(ul.expected[2]).expected[2] == pytest.approx(0.05, abs=2e-4)


def test_mu_above_the_poi_bound_widens_it() -> None:
    model = PyhfBackend().background(one_bin(obs=60.0, bkg=4.0, sig=0.5)).model()
    assert model.poi_upper_bound == 10.0
    r = model.cls(50.0)  # pyhf alone refuses a fixed POI outside its bounds
    assert 0.0 < r.observed <= 1.0


def test_fit_matches_pyhf_and_the_analytic_covariance() -> None:
    # bkg fixed: -ln L = s mu + b - n ln(s mu + b); mu_hat = (n - b)/s, var(mu) = n/s^2
    ws = one_bin(obs=10.0, bkg=4.0, sig=2.0, fixed_bkg=True)
    fit = PyhfBackend().background(ws).model().fit()
    assert fit.converged
    assert sorted(fit.parameters) == ["bkg_norm", "mu"]
    i = fit.parameters.index("mu")
    assert fit.bestfit[i] == pytest.approx(3.0, rel=1e-6)
    assert fit.covariance[i, i] == pytest.approx(10.0 / 4.0, rel=1e-4)
    j = fit.parameters.index("bkg_norm")
    assert fit.covariance[j].tolist() == [0.0, 0.0]  # fixed: zero row
    assert fit.covariance[:, j].tolist() == [0.0, 0.0]
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    w = pyhf.Workspace(ws)
    m = w.model()
    bounds = m.config.suggested_bounds()
    bounds[m.config.poi_index] = (0.0, bounds[m.config.poi_index][1])
    best, twice_nll = pyhf.infer.mle.fit(w.data(m), m, par_bounds=bounds, fixed_params=m.config.suggested_fixed(), return_fitted_val=True)
    assert fit.twice_nll == pytest.approx(float(twice_nll), rel=1e-9)
    assert fit.bestfit == pytest.approx(best, rel=1e-6, abs=1e-8)


def test_fit_covariance_is_symmetric_and_positive(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    fit = PyhfBackend().background(ws).model([ops]).fit()
    cov = fit.covariance
    assert cov.shape == (4, 4)
    assert (cov == cov.T).all()
    assert all(cov[k, k] > 0 for k in range(4))


def test_a_fit_that_does_not_converge_is_a_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Result:
        message = "Iteration limit reached"
        success = False

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise pyhf.exceptions.FailedMinimization(Result())

    model = PyhfBackend().background(one_bin()).model()
    monkeypatch.setattr(pyhf.infer.mle, "fit", refuse)
    with pytest.raises(FitError, match="did not converge: Iteration limit reached"):
        model.fit()
    with pytest.raises(FitError, match=r"CLs at mu=1 did not converge"):
        model.cls(1.0)


def test_unsupported_is_always_none() -> None:
    assert PyhfBackend().unsupported({"anything": 1}) is None
    assert PyhfBackend.name == "pyhf"


def test_unknown_modifier_type_is_an_inference_input_error() -> None:
    ws = one_bin()
    ws["channels"][0]["samples"][1]["modifiers"][0]["type"] = "magicsys"
    with pytest.raises(InferenceInputError, match="pyhf refuses the workspace"):
        PyhfBackend().background(ws).model()


def test_patch_that_does_not_apply_names_the_operation() -> None:
    bad = [{"op": "remove", "path": "/channels/5"}]
    with pytest.raises(InferenceInputError, match=r"patch 1: operation 0 does not apply"):
        PyhfBackend().background(one_bin()).model([bad])


def test_model_without_poi_or_with_a_signal_name_is_refused() -> None:
    with pytest.raises(InferenceInputError, match=r"parameter of interest .* give the signal with --patch"):
        PyhfBackend().background(small_workspace()).model()
    with pytest.raises(InferenceInputError, match="not a named signal"):
        PyhfBackend().background(one_bin()).model(signal="A")


def test_cls_values_are_probabilities(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    r = PyhfBackend().background(ws).model([ops]).cls(2.0)
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in (r.observed, *r.expected))
    assert list(r.expected) == sorted(r.expected)


# --- Settings: test statistic, interpolation codes, POI bounds, measurement ------------------


def shapes(obs: tuple[float, float] = (9.0, 4.0), *, poi_bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Two bins with an asymmetric normsys and histosys, so the interpolation codes matter."""
    params = [{"name": "mu", "bounds": [list(poi_bounds)]}] if poi_bounds is not None else []
    bkg_mods = [
        {"name": "norm", "type": "normsys", "data": {"hi": 1.3, "lo": 0.95}},
        {"name": "shape", "type": "histosys", "data": {"hi_data": [7.0, 3.5], "lo_data": [5.8, 2.2]}},
    ]
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {"name": "sig", "data": [2.0, 1.5], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [6.0, 3.0], "modifiers": bkg_mods},
                ],
            }
        ],
        "observations": [{"name": "SR", "data": list(obs)}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": params}}],
        "version": "1.0.0",
    }


def pyhf_cls(ws: dict[str, Any], mu: float, settings: Settings) -> tuple[float, list[float]]:
    """pyhf 0.7.6 as ``pyhf cls`` calls it: the workspace's POI bounds unless ``settings`` give them."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    w = pyhf.Workspace(ws)
    codes = {"normsys": {"interpcode": settings.normsys}, "histosys": {"interpcode": settings.histosys}}
    model = w.model(measurement_name=settings.measurement, modifier_settings=codes)
    bounds = model.config.suggested_bounds()
    if settings.poi_bounds is not None:
        bounds[model.config.poi_index] = settings.poi_bounds
    obs, exp = pyhf.infer.hypotest(mu, w.data(model), model, par_bounds=bounds, test_stat=settings.test_stat, return_expected_set=True)
    return float(obs), [float(e) for e in exp]


SETTINGS = [
    Settings(),
    Settings(test_stat="q"),
    Settings(normsys="code1", histosys="code0"),
    Settings(test_stat="q", normsys="code1", histosys="code2"),
    Settings(poi_bounds=(0.0, 5.0)),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.test_stat}-{s.normsys}-{s.histosys}-{s.poi_bounds}")
def test_settings_give_what_pyhf_gives_with_them(settings: Settings) -> None:
    ws = shapes()
    got = PyhfBackend().background(ws, settings=settings).model().cls(1.0)
    obs, exp = pyhf_cls(ws, 1.0, settings)
    assert got.observed == pytest.approx(obs, rel=1e-9)
    assert list(got.expected) == pytest.approx(exp, rel=1e-9)
    assert Settings.from_json(got.settings) == dataclasses.replace(settings, poi_bounds=settings.poi_bounds or (0.0, 10.0), measurement="m")
    assert got.notes == ()


def test_interpolation_codes_and_test_statistic_change_the_numbers() -> None:
    """The settings reach pyhf: each choice moves CLs on this model (so the test above can fail)."""
    ws = shapes((5.0, 2.0))
    default = PyhfBackend().background(ws).model().cls(1.0).observed
    for settings in (Settings(test_stat="q"), Settings(normsys="code1"), Settings(histosys="code0"), Settings(histosys="code2")):
        other = PyhfBackend().background(ws, settings=settings).model().cls(1.0).observed
        assert other != pytest.approx(default, rel=1e-4), settings


def test_poi_bounds_as_the_workspace_gives_them_not_clamped_at_zero() -> None:
    """A measurement likelihood with POI bounds [-10, 10] and an underfluctuation: mu-hat < 0."""
    ws = shapes((4.0, 1.0), poi_bounds=(-10.0, 10.0))
    got = {}
    for settings in (Settings(), Settings(test_stat="q")):
        got[settings.test_stat] = PyhfBackend().background(ws, settings=settings).model().cls(1.0)
        obs, exp = pyhf_cls(ws, 1.0, settings)
        assert got[settings.test_stat].observed == pytest.approx(obs, rel=1e-9)
        assert list(got[settings.test_stat].expected) == pytest.approx(exp, rel=1e-9)
        assert got[settings.test_stat].settings["poi_bounds"] == [-10.0, 10.0]
    clamped = PyhfBackend().background(ws, settings=Settings(poi_bounds=(0.0, 10.0))).model().cls(1.0)
    assert clamped.observed == pytest.approx(pyhf_cls(ws, 1.0, Settings(poi_bounds=(0.0, 10.0)))[0], rel=1e-9)
    assert clamped.observed > 2 * got["qtilde"].observed  # the old silent clamp: 0.105 where pyhf gives 0.043


def test_qtilde_with_a_lower_bound_other_than_zero_says_it_is_not_cowans() -> None:
    ws = shapes((4.0, 1.0), poi_bounds=(-10.0, 10.0))
    (note,) = PyhfBackend().background(ws).model().cls(1.0).notes
    assert "lower bound -10" in note
    assert "not Cowan et al.'s q~mu" in note
    assert PyhfBackend().background(ws, settings=Settings(test_stat="q")).model().cls(1.0).notes == ()
    assert PyhfBackend().background(shapes()).model().cls(1.0).notes == ()


def test_mu_below_the_poi_lower_bound_is_an_input_error() -> None:
    model = PyhfBackend().background(shapes(), settings=Settings(poi_bounds=(0.5, 10.0))).model()
    with pytest.raises(InferenceInputError, match=r"mu=0.2 is below the POI's lower bound 0.5: .* or set poi_bounds=LOWER,UPPER$") as info:
        model.cls(0.2)
    assert flagged(info.value).endswith("or set --poi-bounds LOWER,UPPER")  # arch names the flag


def two_measurements() -> dict[str, Any]:
    ws = shapes()
    ws["measurements"] = [
        {"name": "loose", "config": {"poi": "mu", "parameters": []}},
        {"name": "fixed_norm", "config": {"poi": "mu", "parameters": [{"name": "norm", "fixed": True}]}},
    ]
    return ws


def test_measurement_chosen_by_name() -> None:
    ws = two_measurements()
    for name in ("loose", "fixed_norm"):
        got = PyhfBackend().background(ws, settings=Settings(measurement=name)).model().cls(1.0)
        assert got.observed == pytest.approx(pyhf_cls(ws, 1.0, Settings(measurement=name))[0], rel=1e-9)
        assert got.settings["measurement"] == name
    first = PyhfBackend().background(ws).model().cls(1.0)
    older_spelling = PyhfBackend().background(ws, measurement="fixed_norm").model().cls(1.0)
    assert first.settings["measurement"] == "loose"
    assert older_spelling.settings["measurement"] == "fixed_norm"
    assert first.observed != pytest.approx(older_spelling.observed, rel=1e-4)


def test_unknown_measurement_names_the_ones_there() -> None:
    with pytest.raises(InferenceInputError, match=r"measurement 'nope': the workspace's measurements are 'loose', 'fixed_norm'"):
        PyhfBackend().background(two_measurements(), settings=Settings(measurement="nope")).model()


def test_upper_limit_honours_the_settings() -> None:
    ws = one_bin()
    ws["channels"][0]["samples"][1]["modifiers"] = []  # the POI alone: quick fits
    for settings in (Settings(test_stat="q"), Settings(poi_bounds=(0.0, 4.0))):
        model = PyhfBackend().background(ws, settings=settings).model()
        ul = model.upper_limit(level=0.05)
        assert Settings.from_json(ul.settings).test_stat == settings.test_stat
        obs, _ = pyhf_cls(ws, ul.observed, dataclasses.replace(settings, poi_bounds=(0.0, max(10.0, ul.observed))))
        assert obs == pytest.approx(0.05, abs=2e-4)
    assert ul.settings["poi_bounds"] == [0.0, 4.0]
    assert ul.settings["poi_upper_bound_initial"] == 4.0


# --- results that are not numbers ----------------------------------------------------------


def test_zero_signal_is_a_degenerate_asimov_test_statistic() -> None:
    model = PyhfBackend().background(one_bin(sig=0.0)).model()
    with pytest.raises(DegenerateResult, match=r"q_mu,A = 0 at mu=1: the expected data do not depend on mu"):
        model.cls(1.0)


def test_mu_zero_is_a_degenerate_asimov_test_statistic() -> None:
    with pytest.raises(DegenerateResult, match=r"q_mu,A = 0 at mu=0"):
        PyhfBackend().background(one_bin()).model().cls(0.0)


@pytest.mark.parametrize("test_stat", ["qtilde", "q"])
def test_asimov_data_excluding_mu_by_dozens_of_sigma_underflow(test_stat: str) -> None:
    r = PyhfBackend().background(one_bin(obs=1.0, bkg=1.0, sig=1000.0), settings=Settings(test_stat=test_stat)).model().cls(1.0)
    assert (r.observed, *r.expected) == (0.0,) * 6
    assert r.underflow == ("CLs_obs", "CLs_exp[0]", "CLs_exp[1]", "CLs_exp[2]", "CLs_exp[3]", "CLs_exp[4]")
    (note,) = r.notes
    assert f"q_mu,A = {r.settings['qmu_A']:.6g}" in note
    assert "exclude mu by 44.6 sigma" in note
    assert r.to_json()["underflow"] == list(r.underflow)


def test_a_partial_underflow_names_only_the_zeros() -> None:
    r = PyhfBackend().background(one_bin(obs=1.0, bkg=1.0, sig=700.0)).model().cls(1.0)
    zeros = tuple(name for name, v in zip(CLS_NAMES, (r.observed, *r.expected), strict=True) if v == 0.0)
    assert zeros == r.underflow
    assert 0 < len(zeros) < 6  # this signal sits at the edge: some values are tiny but not zero


def test_non_finite_values_are_degenerate_results() -> None:
    assert checked_cls(1.0, [0.5, 0.1, 0.2, 0.3, 0.4, 0.5], 2.0) == ()
    with pytest.raises(DegenerateResult, match=r"CLs at mu=1 is not a number \(CLs_obs = nan; q_mu,A = 2\)"):
        checked_cls(1.0, [math.nan, 0.1, 0.2, 0.3, 0.4, 0.5], 2.0)
    with pytest.raises(DegenerateResult, match=r"CLs_exp\[4\] = inf"):
        checked_cls(1.0, [0.5, 0.1, 0.2, 0.3, 0.4, math.inf], 2.0)
    with pytest.raises(DegenerateResult, match=r"q_mu,A = nan"):
        checked_cls(1.0, [0.5] * 6, math.nan)


def test_a_non_finite_upper_limit_is_a_degenerate_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import heparch.infer.limits as limits

    def nan_limit(*args: Any, **kwargs: Any) -> UpperLimit:
        return UpperLimit(math.nan, (1.0, 1.0, 1.0, 1.0, 1.0), 0.05, "pyhf")

    def unnamed_inf(*args: Any, **kwargs: Any) -> UpperLimit:
        return UpperLimit(math.inf, (1.0, 1.0, math.inf, 1.0, math.inf), 0.05, "pyhf", above_cap=("observed", "expected_+2"))

    model = PyhfBackend().background(one_bin()).model()
    monkeypatch.setattr(limits, "upper_limit", nan_limit)
    with pytest.raises(DegenerateResult, match=r"upper limit is not a number \(observed = nan\)"):
        model.upper_limit()
    monkeypatch.setattr(limits, "upper_limit", unnamed_inf)
    with pytest.raises(DegenerateResult, match=r"not a number \(expected_0 = inf\)$"):
        model.upper_limit()


def test_limits_above_the_cap_are_reported_not_refused() -> None:
    ws = one_bin(obs=5.0, bkg=5.0, sig=1e-3)
    ws["channels"][0]["samples"][1]["modifiers"] = []
    ul = PyhfBackend().background(ws).model().upper_limit()
    assert ul.above_cap
    assert all(math.isinf(v) for name, v in zip(NAMES, (ul.observed, *ul.expected), strict=True) if name in ul.above_cap)
