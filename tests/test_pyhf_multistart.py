"""The pyhf backend's second starts (issue 10 item 3, never a silent wrong number).

Every fit of pyhf's asymptotic hypotest runs from pyhf's nominal start and from a second one
(and, on small models, a third); the lowest -ln L is taken, the nominal fit kept where the
others are not lower by more than 1e-6, so on a likelihood with one minimum the numbers are
pyhf's bit for bit. On ``2bin_2channel_coupledhistosys`` (several minima) the result is the
multistart reference of :mod:`pyhf_reference` (pyhf run from a grid of starts), marked
``multimodal`` with -ln L from each start, and both HistFactory backends agree.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from clihelp import run
from conftest import SHARED

pytest.importorskip("pyhf")

from heparch.infer.base import Settings
from heparch.infer.pyhf_backend import FREE_ASIMOV, FREE_OBS, NOMINAL_START, Hypotest, PyhfBackend
from pyhf_reference import multistart_file, plain_cls

VALIDATION = SHARED / "pyhf-validation"
COUPLED = VALIDATION / "2bin_2channel_coupledhistosys.json"
FILE_SETTINGS = Settings(test_stat="q", normsys="code1", histosys="code0")
#: the reference's fit names -> the pyhf backend's, at mu = 1
FITS = {
    "fixed_mu_observed": "fit with the POI fixed at 1 to the observed data",
    "free_observed": FREE_OBS,
    "asimov_mu0": "fit with the POI fixed at 0 to the observed data",
    "fixed_mu_asimov": "fit with the POI fixed at 1 to the Asimov data",
    "free_asimov": FREE_ASIMOV,
}


def small() -> dict[str, Any]:
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {"name": "sig", "data": [3.0, 1.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {
                        "name": "bkg",
                        "data": [10.0, 4.0],
                        "modifiers": [
                            {"name": "n", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}},
                            {"name": "h", "type": "histosys", "data": {"hi_data": [11.0, 4.5], "lo_data": [9.5, 3.6]}},
                            {"name": "st", "type": "staterror", "data": [1.0, 0.8]},
                        ],
                    },
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [12.0, 3.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def values(result: Any) -> list[float]:
    return [result.observed, *result.expected]


@pytest.mark.parametrize(
    ("settings", "mu"),
    [(Settings(), 1.0), (FILE_SETTINGS, 1.5), (Settings(test_stat="q", poi_bounds=(-10.0, 10.0)), 0.5), (Settings(poi_bounds=(-10.0, 10.0)), 2.0)],
)
def test_one_minimum_gives_pyhfs_numbers_bit_for_bit(settings: Settings, mu: float) -> None:
    got = PyhfBackend().background(small(), settings=settings).model().cls(mu)
    obs, exp = plain_cls(small(), mu, settings)
    assert values(got) == [obs, *exp]
    assert not got.multimodal
    assert all(len(by_start) >= 2 for by_start in got.starts.values())  # every fit ran from a second start


@pytest.mark.parametrize(("settings", "which"), [(Settings(), "defaults"), (FILE_SETTINGS, "file")])
def test_coupledhistosys_takes_the_lowest_minimum_in_every_fit(settings: Settings, which: str) -> None:
    ref = multistart_file(COUPLED, 1.0, settings)
    got = PyhfBackend().background(json.loads(COUPLED.read_text()), settings=settings).model().cls(1.0)
    assert got.multimodal
    assert values(got) == pytest.approx([ref.observed, *ref.expected], rel=1e-3)
    for name, label in FITS.items():
        lowest = min(v for v in got.starts[label].values() if isinstance(v, float))
        assert lowest <= ref.fits[name].nll + 1e-6, (which, name)
    nominal = got.starts[NOMINAL_START]  # what pyhf's own hypotest gives: a local minimum
    assert [nominal["CLs_obs"], *nominal["CLs_exp"]] == list(plain_cls(json.loads(COUPLED.read_text()), 1.0, settings)[:1]) + list(
        plain_cls(json.loads(COUPLED.read_text()), 1.0, settings)[1]
    )
    assert not math.isclose(nominal["CLs_obs"], got.observed, rel_tol=0.1)


def test_arch_cls_with_the_pyhf_backend_reports_the_minima_and_agrees_with_fast() -> None:
    ref = multistart_file(COUPLED, 1.0, Settings())
    out = {}
    for backend in ("pyhf", "fast"):
        code, stdout, err = run("cls", str(COUPLED), "--backend", backend, "--json")
        assert code == 0, err
        assert "several minima; the lowest was taken" in err
        out[backend] = json.loads(stdout)
        assert out[backend]["multimodal"] is True
        assert [out[backend]["CLs_obs"], *out[backend]["CLs_exp"]] == pytest.approx([ref.observed, *ref.expected], rel=1e-3)
    assert out["pyhf"]["CLs_obs"] == pytest.approx(0.114, abs=1e-3)
    assert out["pyhf"]["starts"][FREE_OBS]["nominal"] == pytest.approx(15.40, abs=0.01)  # pyhf's start: a local minimum
    assert min(out["pyhf"]["starts"][FREE_OBS].values()) == pytest.approx(14.67, abs=0.01)


def test_without_second_starts_it_is_pyhfs_hypotest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Hypotest, "second_starts", False)
    got = PyhfBackend().background(json.loads(COUPLED.read_text())).model().cls(1.0)
    obs, exp = plain_cls(json.loads(COUPLED.read_text()), 1.0, Settings())
    assert values(got) == [obs, *exp]
    assert got.observed == pytest.approx(0.2778, abs=1e-3)
    assert not got.multimodal


def _failing(monkeypatch: pytest.MonkeyPatch, fails: Any) -> None:
    """Make ``Hypotest._fit`` raise pyhf's FailedMinimization (and log it, as pyhf does) where ``fails(self, x0, poi)``."""
    import pyhf
    from scipy.optimize import OptimizeResult

    original = Hypotest._fit

    def fit(self: Hypotest, data: Any, x0: Any, poi: float | None) -> Any:
        if fails(self, list(x0), poi):
            logging.getLogger("pyhf.optimize.mixins").error("a failed fit (test)")
            raise pyhf.exceptions.FailedMinimization(OptimizeResult(message="failed on purpose (test)", success=False))
        return original(self, data, x0, poi)

    monkeypatch.setattr(Hypotest, "_fit", fit)


def test_a_second_start_that_fails_is_recorded_and_the_nominal_fit_kept(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _failing(monkeypatch, lambda self, x0, poi: poi is None and x0 != self.init)  # every second start of the free fits
    model = PyhfBackend().background(small()).model()
    with caplog.at_level(logging.WARNING):
        got = model.cls(1.0)
    assert [r for r in caplog.records if r.name.startswith("pyhf.optimize")] == []  # silenced for the second starts
    assert got.starts[FREE_OBS]["warm"] == "did not converge"
    assert got.starts[FREE_ASIMOV]["warm"] == "did not converge"
    obs, exp = plain_cls(small(), 1.0, Settings())
    assert values(got) == [obs, *exp]
    assert got.notes == ()


def test_a_nominal_fit_that_fails_is_replaced_by_the_other_starts_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing(monkeypatch, lambda self, x0, poi: poi is None and x0 == self.init)  # pyhf's own free fits
    got = PyhfBackend().background(small()).model().cls(1.0)
    assert got.starts[FREE_OBS]["nominal"] == "did not converge"
    assert any("from the nominal start did not converge" in note for note in got.notes)
    obs, exp = plain_cls(small(), 1.0, Settings())
    assert values(got) == pytest.approx([obs, *exp], rel=1e-6)  # one minimum: the same, from the other starts


def test_when_every_start_fails_it_is_a_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from heparch.errors import FitError

    _failing(monkeypatch, lambda self, x0, poi: poi is None)
    with pytest.raises(FitError, match=r"pyhf: a fit for CLs at mu=1 did not converge: failed on purpose \(test\)"):
        PyhfBackend().background(small()).model().cls(1.0)


def test_the_free_fit_after_a_cls_is_the_lower_minimum() -> None:
    """The audit compares -ln L of the free fit after the CLs: pyhf's nominal start alone gives a
    local minimum on coupledhistosys (15.40); after a CLs the fit also starts where that found the
    lowest free fit (14.67), so the audit does not hold the fast engine's lower minimum against it."""
    spec = json.loads(COUPLED.read_text())
    alone = PyhfBackend().background(spec).model().fit()
    assert alone.twice_nll / 2 == pytest.approx(15.40, abs=0.01)
    model = PyhfBackend().background(spec).model()
    model.cls(1.0)
    after = model.fit()
    assert after.twice_nll / 2 == pytest.approx(14.67, abs=0.01)
    assert "lower of two minima" in after.message
    one = PyhfBackend().background(small()).model()
    first = one.fit()
    one.cls(1.0)
    assert one.fit().twice_nll == first.twice_nll  # one minimum: the nominal fit, unchanged
