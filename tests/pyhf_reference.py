"""A multistart pyhf 0.7.6 reference for tests: the lowest minimum in every fit feeding the test statistic.

pyhf's ``hypotest`` runs five fits per point (asymptotic calculator, in this order): the
fixed-mu and the free fit on the observed data, the fixed fit at mu=0 that makes the Asimov
data, then the fixed-mu and the free fit on the Asimov data. Each starts from the nominal
initial values, so on a likelihood with several minima pyhf may report a local one (its
validation case ``2bin_2channel_coupledhistosys`` does). :func:`multistart_cls` runs pyhf's
own ``hypotest`` with each of those fits replaced by pyhf's fit from every start of a grid
(:func:`starts`), keeping the lowest -ln L; everything else (test statistic, Asimov data,
asymptotic formulae) is pyhf's code. It returns CLs and, per fit, -ln L from each start, so
a test can hold a backend's fits to ``-ln L <= reference + 1e-6``.

:func:`plain_cls` is pyhf as ``pyhf cls`` runs it (nominal start), for comparison.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyhf
import pyhf.infer.calculators
import pyhf.infer.test_statistics

from heparch.infer.base import Settings

TOLERANCE = 1e-10
#: the fits of one asymptotic hypotest, in the order pyhf 0.7.6 runs them
FIT_NAMES = ("fixed_mu_observed", "free_observed", "asimov_mu0", "fixed_mu_asimov", "free_asimov")
#: fractions of each free parameter's bounds used as grid starts (beside its nominal value)
GRID = (0.3, 0.7)
#: a full grid for up to this many free parameters; beyond, axis starts plus seeded random ones
FULL_GRID_MAX = 3
RANDOM_STARTS = 8


@dataclasses.dataclass(frozen=True)
class Fit:
    """One fit of the test statistic: -ln L from every start that converged, and the lowest."""

    name: str
    mu: float | None  # the fixed POI value, None for a free fit
    nll_by_start: tuple[float, ...]

    @property
    def nll(self) -> float:
        return min(self.nll_by_start)

    @property
    def spread(self) -> float:
        """How far the highest minimum found lies above the lowest (0: one minimum)."""
        return max(self.nll_by_start) - self.nll


@dataclasses.dataclass(frozen=True)
class Reference:
    observed: float
    expected: tuple[float, ...]
    fits: Mapping[str, Fit]

    @property
    def multimodal(self) -> bool:
        return any(f.spread > 1e-6 for f in self.fits.values())


def model_and_data(ws: Mapping[str, Any], settings: Settings) -> tuple[Any, Any]:
    w = pyhf.Workspace(dict(ws))
    codes = {"normsys": {"interpcode": settings.normsys}, "histosys": {"interpcode": settings.histosys}}
    model = w.model(measurement_name=settings.measurement, modifier_settings=codes)
    return model, w.data(model)


def par_bounds(model: Any, settings: Settings, mu: float) -> list[tuple[float, float]]:
    """The workspace's bounds (POI's from ``settings`` when given), the POI's upper bound at least ``mu``."""
    bounds = [(float(lo), float(hi)) for lo, hi in model.config.suggested_bounds()]
    poi = model.config.poi_index
    lo, hi = settings.poi_bounds or bounds[poi]
    bounds[poi] = (lo, max(hi, mu))
    return bounds


def starts(init: Sequence[float], bounds: Sequence[tuple[float, float]], fixed: Sequence[bool]) -> list[np.ndarray]:
    """The nominal start first, then a grid over the free parameters (their bounds at :data:`GRID`).

    Up to :data:`FULL_GRID_MAX` free parameters the grid is complete; beyond, each parameter is
    moved alone (axis starts) and :data:`RANDOM_STARTS` seeded uniform starts are added.
    """
    nominal = np.asarray(init, dtype=float)
    free = [i for i, f in enumerate(fixed) if not f]
    values = {i: [nominal[i], *(bounds[i][0] + g * (bounds[i][1] - bounds[i][0]) for g in GRID)] for i in free}
    out = [nominal]
    if len(free) <= FULL_GRID_MAX:
        combos: Iterator[Sequence[float]] = itertools.product(*(values[i] for i in free))
        for combo in itertools.islice(combos, 1, None):  # the first combination is the nominal start
            x = nominal.copy()
            x[free] = combo
            out.append(x)
    else:
        for i in free:
            for v in values[i][1:]:
                x = nominal.copy()
                x[i] = v
                out.append(x)
        rng = np.random.default_rng(20261206)
        for _ in range(RANDOM_STARTS):
            x = nominal.copy()
            x[free] = [rng.uniform(*bounds[i]) for i in free]
            out.append(x)
    return out


class _Recorder:
    """Replaces pyhf's fits inside its test statistics with multistart fits, recording each."""

    def __init__(self, original_fit: Any) -> None:
        self._fit = original_fit  # a fixed-mu fit is this fit with the POI fixed at mu, as in pyhf
        self.fits: list[Fit] = []

    def _best(self, name: str, mu: float | None, data: Any, pdf: Any, init: Any, bounds: Any, fixed: Any, **kwargs: Any) -> tuple[Any, float]:
        fixed = list(fixed if fixed is not None else pdf.config.suggested_fixed())
        if mu is not None:
            fixed[pdf.config.poi_index] = True
        bounds = bounds if bounds is not None else pdf.config.suggested_bounds()
        init = init if init is not None else pdf.config.suggested_init()
        results = []
        for x0 in starts(init, bounds, fixed):
            if mu is not None:
                x0 = x0.copy()
                x0[pdf.config.poi_index] = mu
            with contextlib.suppress(pyhf.exceptions.FailedMinimization):
                pars, twice_nll = self._fit(data, pdf, x0.tolist(), bounds, fixed, return_fitted_val=True, **kwargs)
                results.append((float(twice_nll) / 2, pars))
        if not results:
            raise RuntimeError(f"multistart reference: no start of the {name} fit converged")
        self.fits.append(Fit(name, mu, tuple(nll for nll, _ in results)))
        nll, pars = min(results, key=lambda r: r[0])
        return pars, 2 * nll

    def _name(self) -> str:
        return FIT_NAMES[len(self.fits) % len(FIT_NAMES)]

    def fit(self, data: Any, pdf: Any, init_pars: Any = None, par_bounds: Any = None, fixed_params: Any = None, **kwargs: Any) -> Any:
        want_val = kwargs.pop("return_fitted_val", False)
        pars, twice_nll = self._best(self._name(), None, data, pdf, init_pars, par_bounds, fixed_params, **kwargs)
        return (pars, twice_nll) if want_val else pars

    def fixed_poi_fit(self, poi_val: float, data: Any, pdf: Any, init_pars: Any = None, par_bounds: Any = None, fixed_params: Any = None, **kwargs: Any) -> Any:
        want_val = kwargs.pop("return_fitted_val", False)
        pars, twice_nll = self._best(self._name(), float(poi_val), data, pdf, init_pars, par_bounds, fixed_params, **kwargs)
        return (pars, twice_nll) if want_val else pars


@contextlib.contextmanager
def _multistart_fits() -> Iterator[_Recorder]:
    recorder = _Recorder(pyhf.infer.mle.fit)
    saved = (pyhf.infer.test_statistics.fit, pyhf.infer.test_statistics.fixed_poi_fit, pyhf.infer.calculators.fixed_poi_fit)
    pyhf.infer.test_statistics.fit = recorder.fit
    pyhf.infer.test_statistics.fixed_poi_fit = recorder.fixed_poi_fit
    pyhf.infer.calculators.fixed_poi_fit = recorder.fixed_poi_fit
    try:
        yield recorder
    finally:
        pyhf.infer.test_statistics.fit, pyhf.infer.test_statistics.fixed_poi_fit, pyhf.infer.calculators.fixed_poi_fit = saved


@contextlib.contextmanager
def _numpy_backend(tolerance: float) -> Iterator[None]:
    """pyhf's numpy backend with the scipy optimizer at ``tolerance``; the previous backend restored after."""
    previous = pyhf.get_backend()
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=tolerance))
    try:
        yield
    finally:
        pyhf.set_backend(*previous)


def _hypotest(ws: Mapping[str, Any], mu: float, settings: Settings, tolerance: float) -> tuple[float, tuple[float, ...]]:
    with _numpy_backend(tolerance):
        return _hypotest_now(ws, mu, settings)


def _hypotest_now(ws: Mapping[str, Any], mu: float, settings: Settings) -> tuple[float, tuple[float, ...]]:
    model, data = model_and_data(ws, settings)
    obs, exp = pyhf.infer.hypotest(
        mu,
        data,
        model,
        par_bounds=par_bounds(model, settings, mu),
        test_stat=settings.test_stat,
        calctype=settings.calctype,
        calc_base_dist=settings.calc_base_dist,
        return_expected_set=True,
    )
    return float(obs), tuple(float(e) for e in exp)


def plain_cls(ws: Mapping[str, Any], mu: float, settings: Settings, *, tolerance: float = TOLERANCE) -> tuple[float, tuple[float, ...]]:
    """pyhf 0.7.6 from its nominal start, as ``pyhf cls`` runs it (CLs observed, expected band)."""
    return _hypotest(ws, mu, settings, tolerance)


def multistart_cls(ws: Mapping[str, Any], mu: float, settings: Settings, *, tolerance: float = TOLERANCE) -> Reference:
    """pyhf 0.7.6's hypotest with the lowest minimum over :func:`starts` taken in every fit."""
    with _multistart_fits() as recorder:
        obs, exp = _hypotest(ws, mu, settings, tolerance)
    return Reference(obs, exp, {f.name: f for f in recorder.fits})


@functools.cache
def multistart_file(path: Path, mu: float, settings: Settings) -> Reference:
    """:func:`multistart_cls` of the workspace in ``path``, computed once per test session."""
    return multistart_cls(json.loads(path.read_text()), mu, settings)
