"""The pyhf reference backend: the same numbers as a direct pyhf call, fits, bad inputs."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from heparch.errors import FitError, InferenceInputError
from heparch.infer.base import HISTFACTORY_SETTINGS
from heparch.infer.pyhf_backend import PyhfBackend

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


def test_settings_record_histfactory_settings_optimizer_and_versions(patched: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> None:
    ws, ops, _ = patched
    settings = PyhfBackend().background(ws).model([ops]).cls(1.0).settings
    assert {k: settings[k] for k in HISTFACTORY_SETTINGS} == HISTFACTORY_SETTINGS
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
