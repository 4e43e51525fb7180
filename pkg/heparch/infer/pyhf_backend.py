"""The ``pyhf`` reference backend: pyhf 0.7.6's hypotest, with second starts, our checks and records.

CLs are those of ``pyhf.infer.hypotest(mu, data, model, test_stat=..., calctype="asymptotics",
calc_base_dist="normal", return_expected_set=True)`` on pyhf's numpy backend with the scipy
(SLSQP) optimizer at tolerance 1e-10 (pyhf's default tolerance stops after one iteration on
a real ATLAS likelihood), computed by :class:`Hypotest` with pyhf's own fits and formulae but
every fit also run from a second start (the best fit of a related fit; the two fits at ``mu``,
and every fit of a model of at most :data:`MIRROR_MAX_FREE` free parameters, also from a
third), the lowest -ln L taken: on a likelihood with one minimum the numbers are pyhf's bit for
bit; where fits from different starts find minima more than 1e-6 apart in -ln L the result is
``multimodal``, with -ln L from each start and pyhf's own nominal-start values in ``starts``.
On the 1Lbb point C1N2_Wh_hbb_1000_0 (one minimum) this costs 1.9x pyhf's hypotest (108.6 s
CPU against 57.4 s, on a loaded machine); on C1N2_Wh_hbb_375_50, where the third start finds
a lower minimum of the fit at mu = 1, 3.2x (pyhf's own hypotest is then run too, for
``starts``). See docs/performance.md.

:class:`~heparch.infer.base.Settings` choose the test statistic (``qtilde`` or ``q``), the
normsys and histosys interpolation codes (pyhf's ``modifier_settings``), the measurement and
the POI bounds. The POI bounds are the ones the workspace gives (pyhf's suggested bounds, as
``pyhf cls`` uses them) unless the settings set them; only the upper bound is widened to
include ``mu`` when ``mu`` lies above it, which leaves q and q~mu unchanged (both are 0
whenever the free fit's mu-hat is at or above ``mu``). With q~mu and a POI lower bound other
than 0 the numbers are exactly pyhf's (its fits use the given bounds, so mu-hat may be
negative) and the result carries a note that this is not Cowan et al.'s q~mu.

A result that is not a number is an error, never a value: a non-finite CLs or upper limit,
or a degenerate Asimov test statistic (q_mu,A = 0, where pyhf divides by sqrt(q_mu,A)),
raises :class:`~heparch.errors.DegenerateResult` naming the cause. CLs values that
underflow double precision (exact zeros, when the Asimov data exclude ``mu`` by dozens of
sigma) are named in ``CLsResult.underflow``, with q_mu,A in the notes.

Upper limits use the shared root finder of :mod:`heparch.infer.limits`, so every backend
finds its limits the same way (rtol 1e-4). pyhf's global backend is set for each call and
restored afterwards.

>>> ws = {"channels": [{"name": "SR", "samples": [
...         {"name": "sig", "data": [2.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...         {"name": "bkg", "data": [5.0], "modifiers": []}]}],
...       "observations": [{"name": "SR", "data": [5.0]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> r = PyhfBackend().background(ws).model().cls(1.0)
>>> round(r.observed, 4), r.backend
(0.4254, 'pyhf')
>>> round(PyhfBackend().background(ws, settings=Settings(test_stat="q")).model().cls(1.0).observed, 4)
0.4254
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer import limits
from heparch.infer.base import CLsResult, FitResult, Settings, UpperLimit, apply_patches
from heparch.infer.inputs import require_measurement

#: SLSQP tolerance of every pyhf fit (pyhf's default stops too early on real likelihoods)
TOLERANCE: Final = 1e-10
#: finite-difference step (relative, at least absolute 1e-4) of the post-fit Hessian
HESSIAN_STEP: Final = 1e-4
CLS_NAMES: Final = ("CLs_obs", "CLs_exp[0]", "CLs_exp[1]", "CLs_exp[2]", "CLs_exp[3]", "CLs_exp[4]")


def modifier_settings(settings: Settings) -> dict[str, dict[str, str]]:
    """pyhf's ``modifier_settings`` for the interpolation codes of ``settings``."""
    return {"normsys": {"interpcode": settings.normsys}, "histosys": {"interpcode": settings.histosys}}


def _pyhf_errors() -> tuple[type[Exception], ...]:
    import pyhf.exceptions as ex  # pyhf: only when this backend runs

    return (
        ex.InvalidSpecification,
        ex.InvalidModel,
        ex.InvalidWorkspaceOperation,
        ex.InvalidNameReuse,
        ex.InvalidModifier,
        ex.InvalidMeasurement,
        ex.UnspecifiedPOI,
        ex.InvalidPdfData,
        ex.InvalidPdfParameters,
        ex.InvalidInterpCode,
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


@contextlib.contextmanager
def _quiet_pyhf() -> Iterator[None]:
    """pyhf's optimizer logs a failed fit as an error (with its traceback): silenced, heparch says it in one line."""

    logger = logging.getLogger("pyhf.optimize.mixins")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _numpy_backend(tolerance: float) -> Iterator[None]:
    """pyhf's numpy backend with the scipy optimizer at ``tolerance``; the previous backend restored after.

    pyhf logs a failed fit with its traceback and numpy warns of overflows on extreme inputs;
    neither reaches stderr: a fit that fails is one error line (FitError), a number not finite
    is refused where it is used."""
    import pyhf  # pyhf: only when this backend runs

    previous = pyhf.get_backend()
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=tolerance))
    try:
        with _quiet_pyhf(), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        pyhf.set_backend(*previous)


def record(settings: Settings, *, tolerance: float = TOLERANCE, poi_bounds: tuple[float, float], measurement: str) -> dict[str, Any]:
    """What a pyhf result records: the settings as used (POI bounds and measurement resolved),
    the optimizer, its tolerance and the software versions."""
    import numpy  # numpy: only when this backend runs
    import pyhf  # pyhf: only when this backend runs
    import scipy  # scipy: only when this backend runs

    used = dataclasses.replace(settings, poi_bounds=poi_bounds, measurement=measurement)
    return {
        **used.to_json(),
        "poi_bounds_from": "settings" if settings.poi_bounds is not None else "workspace",
        "tensorlib": "numpy",
        "optimizer": "scipy SLSQP",
        "tolerance": tolerance,
        "versions": {"pyhf": pyhf.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__},
    }


def qtilde_note(lower: float) -> str:
    """The note a q~mu result carries when the POI's lower bound is not 0."""
    return (
        f"q~mu with the POI lower bound {lower:g} (not 0): computed as pyhf 0.7.6 computes it (fits within the given bounds, "
        "so mu-hat may be negative), which is not Cowan et al.'s q~mu (use --test-stat q, or --poi-bounds with lower bound 0)"
    )


def checked_cls(mu: float, values: Sequence[float], qmu_a: float, *, backend: str = "pyhf") -> tuple[str, ...]:
    """The names of the CLs ``values`` (observed, then the expected band) that underflow to 0.

    Raises :class:`DegenerateResult` when q_mu,A is 0 or not finite (pyhf divides by its
    square root) or when a CLs value is not finite.
    """
    _require_asimov_statistic(mu, qmu_a, backend)
    bad = [f"{name} = {v!r}" for name, v in zip(CLS_NAMES, values, strict=True) if not math.isfinite(v)]
    if bad:
        raise DegenerateResult(f"{backend}: CLs at mu={mu:g} is not a number ({', '.join(bad)}; q_mu,A = {qmu_a:g})")
    return tuple(name for name, v in zip(CLS_NAMES, values, strict=True) if v == 0.0)


def _require_asimov_statistic(mu: float, qmu_a: float, backend: str) -> None:
    """q_mu,A must be finite and > 0: pyhf divides by its square root."""
    if not (math.isfinite(qmu_a) and qmu_a > 0.0):
        raise DegenerateResult(
            f"{backend}: the Asimov test statistic q_mu,A = {qmu_a:g} at mu={mu:g}: the expected data do not depend on mu "
            "(mu = 0, a signal of zero yield, or fits stopped at a POI bound), so CLs is not defined there"
        )


def underflow_note(names: Sequence[str], qmu_a: float) -> str:
    return f"{', '.join(names)} underflow double precision (reported as 0): q_mu,A = {qmu_a:.6g}, the Asimov data exclude mu by {math.sqrt(qmu_a):.1f} sigma"


#: minima from two starts that differ by more than this in -ln L are different minima (as in the fast engine)
MULTIMODAL_NLL: Final = 1e-6
#: models with at most this many free parameters get the mirror start in every fit (cheap for them)
MIRROR_MAX_FREE: Final = 20
FREE_OBS: Final = "free fit to the observed data"
BKG_OBS: Final = "fit with the POI fixed at 0 to the observed data"
FREE_ASIMOV: Final = "free fit to the Asimov data"
#: the name, in a multimodal result's ``starts``, of pyhf's own hypotest (every fit from the nominal start)
NOMINAL_START: Final = "pyhf from its nominal start"


@dataclasses.dataclass(frozen=True)
class Minimum:
    """One pyhf fit: the best-fit parameters (pyhf's tensor) and -2 ln L there."""

    pars: Any
    twice_nll: Any

    @property
    def nll(self) -> float:
        return float(self.twice_nll) / 2.0


class Hypotest:
    """pyhf 0.7.6's ``hypotest`` (asymptotic calculator) with a second start in every fit.

    pyhf runs five fits, each from the nominal initial values: with the POI fixed at ``mu``
    and free on the observed data, with the POI fixed at 0 (whose best fit makes the Asimov
    data), then fixed at ``mu`` and free on the Asimov data. Each is run here from that nominal
    start, as pyhf does, and from a second start, the best fit of a related fit (as the fast
    engine's warm starts): the fit at 0 from the free fit's values, the free fit from the fit
    at 0, the fit at ``mu`` from the free fit, the fit at ``mu`` on the Asimov data from the
    one on the observed data, and the free fit on the Asimov data from the fit at 0 (the
    Asimov data's own minimum, where it converges at once). The two fits at ``mu`` (and every
    fit of a model of at most :data:`MIRROR_MAX_FREE` free parameters) get a third start, the
    nominal minimum reflected through the initial values, where a fit from the nominal start
    does not go: it finds the lower fixed-mu minima of ``2bin_2channel_coupledhistosys`` with
    the file's settings and of the 1Lbb point ``C1N2_Wh_hbb_375_50`` (-ln L 117.392 against
    117.538 from pyhf's start), which the second starts miss; each costs a full fit. The lowest -ln L
    is taken; where no other start is lower by more than :data:`MULTIMODAL_NLL` the nominal fit
    is kept, so on a likelihood with one minimum every number is bit for bit pyhf's. Minima that differ
    by more are recorded in :attr:`starts` (-ln L by fit and start) and :attr:`multimodal`.
    The test statistics and CLs are then computed with pyhf's own code and arithmetic.
    """

    #: run the second starts (False only to measure their cost, or to claim as pyhf's hypotest does in tests)
    second_starts = True

    def __init__(self, pdf: Any, data: Any, mu: float, bounds: Sequence[tuple[float, float]], *, test_stat: str, base_dist: str) -> None:
        self.pdf, self.data, self.mu, self.bounds = pdf, data, mu, list(bounds)
        self.test_stat, self.base_dist = test_stat, base_dist
        self.init = list(pdf.config.suggested_init())
        self.fixed = list(pdf.config.suggested_fixed())
        self.poi = pdf.config.poi_index
        self.starts: dict[str, dict[str, Any]] = {}
        self.multimodal: set[str] = set()
        #: the lowest free fit to the observed data (set by :meth:`run`)
        self.free_best: Minimum | None = None
        #: the third (mirror) start in every fit, not only the fits at mu: models with at most MIRROR_MAX_FREE free parameters
        self.mirror = sum(not f for f in self.fixed) <= MIRROR_MAX_FREE
        self.notes: list[str] = []

    # --- fits ----------------------------------------------------------------------------
    def _fit(self, data: Any, x0: Sequence[float], poi: float | None) -> Minimum:
        from pyhf.infer.mle import fit, fixed_poi_fit  # pyhf: only when this backend runs

        if poi is None:
            pars, twice_nll = fit(data, self.pdf, list(x0), self.bounds, self.fixed, return_fitted_val=True)
        else:
            pars, twice_nll = fixed_poi_fit(poi, data, self.pdf, list(x0), self.bounds, self.fixed, return_fitted_val=True)
        return Minimum(pars, twice_nll)

    def _start(self, values: Any, poi: float | None) -> list[float]:
        """A second start: ``values`` (another fit's best fit) within the bounds, fixed parameters
        at their initial values, the POI at ``poi`` when it is fixed."""
        x = [min(max(float(v), lo), hi) for v, (lo, hi) in zip(values, self.bounds, strict=True)]
        for i, is_fixed in enumerate(self.fixed):
            if is_fixed:
                x[i] = self.init[i]
        if poi is not None:
            x[self.poi] = poi
        return x

    def _try(self, data: Any, x0: Sequence[float], poi: float | None) -> Minimum | Exception:
        """The fit from ``x0``, or pyhf's FailedMinimization when it does not converge."""
        import pyhf  # pyhf: only when this backend runs

        try:
            return self._fit(data, x0, poi)
        except pyhf.exceptions.FailedMinimization as exc:
            failed: Exception = exc
            return failed

    def lowest(self, what: str, data: Any, poi: float | None, warm: Any, nominal: Minimum | Exception | None = None, *, mirror: bool = False) -> Minimum:
        """The lowest of the nominal fit (``nominal``, or run here when None), the fit from
        ``warm`` (another fit's best-fit values) and, with ``mirror`` or on a small model, from
        the mirror start."""
        found: dict[str, Minimum | Exception] = {"nominal": nominal if nominal is not None else self._try(data, self.init, poi)}
        tried: list[list[float]] = [self._start(self.init, poi)]
        for label, x0 in self._other_starts(found["nominal"], poi, warm, mirror=mirror).items():
            if x0 not in tried:
                tried.append(x0)
                with _quiet_pyhf():  # a start that fails is recorded, not logged by pyhf as an error
                    found[label] = self._try(data, x0, poi)
        return self._keep(what, found)

    def _other_starts(self, first: Minimum | Exception, poi: float | None, warm: Any, *, mirror: bool) -> dict[str, list[float]]:
        """The starts after the nominal one, by label: ``warm``; the mirror of the nominal minimum
        ``first`` with ``mirror`` or on a small model; none without second starts."""
        if not self.second_starts:
            return {}
        others = {"warm": self._start(warm, poi)}
        if isinstance(first, Minimum) and (mirror or self.mirror):
            others["mirror"] = self._start(self._mirrored(first.pars), poi)
        return others

    def _mirrored(self, pars: Any) -> list[float]:
        """The nominal minimum reflected through the initial values (where a fit from the
        nominal start does not go); halfway from the initial value to a bound it would cross."""
        out = []
        for init, x, (lo, hi) in zip(self.init, pars, self.bounds, strict=True):
            y = 2 * init - float(x)
            out.append(y if lo <= y <= hi else init + ((lo if y < lo else hi) - init) / 2)
        return out

    def _keep(self, what: str, found: Mapping[str, Minimum | Exception]) -> Minimum:
        """The lowest minimum of ``found`` (the nominal one unless another is lower by more than
        :data:`MULTIMODAL_NLL`), recorded; the nominal start's error when none converged."""
        converged = [m for m in found.values() if isinstance(m, Minimum)]
        if not converged:
            error = found["nominal"]
            assert isinstance(error, Exception)
            raise error
        first = found["nominal"]
        best = _lowest(first if isinstance(first, Minimum) else converged[0], converged)
        self._record(what, found, converged)
        return best

    def _record(self, what: str, found: Mapping[str, Minimum | Exception], converged: list[Minimum]) -> None:
        """Each start's -ln L (or that it did not converge), whether the minima differ by more than
        :data:`MULTIMODAL_NLL`, and a note when the nominal start's fit was not the one kept."""
        self.starts[what] = {label: (m.nll if isinstance(m, Minimum) else "did not converge") for label, m in found.items()}
        if max(m.nll for m in converged) - min(m.nll for m in converged) > MULTIMODAL_NLL:
            self.multimodal.add(what)
        if not isinstance(found["nominal"], Minimum):  # the number differs from what pyhf's own hypotest gives (it raises)
            self.notes.append(f"pyhf: the {what} from the nominal start did not converge; the lowest minimum of the other starts was taken")

    # --- pyhf's calculator ---------------------------------------------------------------
    def _qmu_like(self, fixed: Minimum, free: Minimum) -> Any:
        """pyhf's ``_qmu_like`` from its two fits (test_statistics.py, 0.7.6)."""
        import pyhf  # pyhf: only when this backend runs

        tensorlib, _ = pyhf.get_backend()
        tmu = tensorlib.astensor(tensorlib.clip(fixed.twice_nll - free.twice_nll, 0.0, max_value=None))
        return tensorlib.where(free.pars[self.poi] > self.mu, tensorlib.astensor(0.0), tmu)

    def _observed_fits(self) -> tuple[Minimum, Minimum, Minimum]:
        """The fits at mu, free, and at 0 on the observed data, nominal ones in pyhf's order."""
        mu, data = self.mu, self.data
        at_mu, free, at_0 = self._try(data, self.init, mu), self._try(data, self.init, None), self._try(data, self.init, 0.0)
        bkg = self.lowest(BKG_OBS, data, 0.0, free.pars if isinstance(free, Minimum) else self.init, at_0)
        best = self.lowest(FREE_OBS, data, None, bkg.pars, free)
        self.free_best = best
        conditional = self.lowest(f"fit with the POI fixed at {mu:g} to the observed data", data, mu, best.pars, at_mu, mirror=True)
        return conditional, best, bkg

    def run(self) -> tuple[float, list[float], float]:
        """(CLs observed, the expected band -2..+2 sigma, q_mu,A) as pyhf's hypotest computes them."""
        import pyhf  # pyhf: only when this backend runs
        from pyhf.infer.calculators import AsymptoticCalculator  # pyhf: only when this backend runs

        tensorlib, _ = pyhf.get_backend()
        at_mu, free, at_0 = self._observed_fits()
        sqrtqmu_v = tensorlib.sqrt(self._qmu_like(at_mu, free))
        asimov = self.pdf.expected_data(at_0.pars)
        at_mu_a = self.lowest(f"fit with the POI fixed at {self.mu:g} to the Asimov data", asimov, self.mu, at_mu.pars, mirror=True)
        free_a = self.lowest(FREE_ASIMOV, asimov, None, at_0.pars)
        calc = AsymptoticCalculator(self.data, self.pdf, self.init, self.bounds, self.fixed, test_stat=self.test_stat, calc_base_dist=self.base_dist)
        calc.sqrtqmuA_v = tensorlib.sqrt(self._qmu_like(at_mu_a, free_a))
        teststat = self._teststat(sqrtqmu_v, calc.sqrtqmuA_v)
        sb, b = calc.distributions(self.mu)
        _clsb, _clb, cls_obs = calc.pvalues(teststat, sb, b)
        _clsb_exp, _clb_exp, cls_exp = calc.expected_pvalues(sb, b)
        qmu_a = float(calc.sqrtqmuA_v) ** 2
        return float(tensorlib.astensor(cls_obs)), [float(tensorlib.astensor(v)) for v in cls_exp], qmu_a

    def _teststat(self, sqrtqmu_v: Any, sqrtqmua_v: Any) -> Any:
        """``AsymptoticCalculator.teststatistic``'s last step (calculators.py, 0.7.6)."""
        import pyhf  # pyhf: only when this backend runs

        tensorlib, _ = pyhf.get_backend()
        if self.test_stat == "q":
            return tensorlib.astensor(sqrtqmu_v - sqrtqmua_v)
        if sqrtqmu_v <= sqrtqmua_v:
            return tensorlib.astensor(sqrtqmu_v - sqrtqmua_v)
        qmu, qmu_a = tensorlib.power(sqrtqmu_v, 2), tensorlib.power(sqrtqmua_v, 2)
        return tensorlib.astensor((qmu - qmu_a) / (2 * sqrtqmua_v))


class PyhfModel:
    """One signal point as a pyhf model and its observed data (+ auxiliary data)."""

    backend = "pyhf"

    def __init__(self, model: Any, data: Any, *, tolerance: float = TOLERANCE, settings: Settings | None = None, measurement: str = "") -> None:
        self.pdf = model
        self.data = data
        self.tolerance = tolerance
        self.config = settings if settings is not None else Settings()
        if model.config.poi_index is None:
            raise InferenceInputError("the model has no parameter of interest: the measurement's 'poi' names no modifier (did you forget --patch or --point?)")
        self._poi = model.config.poi_index
        self.poi_bounds = self._given_poi_bounds()
        self.settings = record(self.config, tolerance=tolerance, poi_bounds=self.poi_bounds, measurement=measurement)
        lower = self.poi_bounds[0]
        self.notes: tuple[str, ...] = (qtilde_note(lower),) if self.config.test_stat == "qtilde" and lower != 0.0 else ()
        #: the lowest free fit of the last :meth:`cls` (a second start for :meth:`fit`)
        self._free_minimum: Any = None

    # --- configuration -----------------------------------------------------------------
    def _given_poi_bounds(self) -> tuple[float, float]:
        if self.config.poi_bounds is not None:
            return self.config.poi_bounds
        lo, hi = self.pdf.config.suggested_bounds()[self._poi]
        return float(lo), float(hi)

    def bounds(self, mu: float | None = None) -> list[tuple[float, float]]:
        """Suggested bounds with the POI's as given (settings, else workspace), its upper bound at least ``mu``."""
        bounds = [(float(lo), float(hi)) for lo, hi in self.pdf.config.suggested_bounds()]
        lo, hi = self.poi_bounds
        if mu is not None and mu < lo:
            raise InferenceInputError(
                f"mu={mu:g} is below the POI's lower bound {lo:g}: choose mu inside the bounds or set poi_bounds=LOWER,UPPER", option="poi_bounds"
            )
        bounds[self._poi] = (lo, hi if mu is None else max(hi, float(mu)))
        return bounds

    @property
    def poi_upper_bound(self) -> float:
        return self.poi_bounds[1]

    # --- inference ---------------------------------------------------------------------
    def cls(self, mu: float = 1.0) -> CLsResult:
        """CLs observed and expected (-2..+2 sigma) at POI value ``mu``: pyhf 0.7.6's asymptotic
        hypotest with each of its five fits also run from a second start (:class:`Hypotest`).
        Where the likelihood has several minima, ``starts`` also holds what pyhf's own hypotest
        gives from its nominal start (:data:`NOMINAL_START`), a local minimum a claim may have used."""
        import pyhf  # pyhf: only when this backend runs

        with _numpy_backend(self.tolerance):
            test = Hypotest(self.pdf, self.data, float(mu), self.bounds(mu), test_stat=self.config.test_stat, base_dist=self.config.calc_base_dist)
            try:
                obs, exp, qmu_a = test.run()
            except pyhf.exceptions.FailedMinimization as exc:
                raise FitError(f"pyhf: a fit for CLs at mu={mu:g} did not converge: {_one_line(exc.result.message)}") from None
            self._free_minimum = test.free_best.pars if test.free_best is not None else None
            starts: dict[str, Any] = dict(test.starts)
            if test.multimodal:
                starts[NOMINAL_START] = self._nominal_hypotest(float(mu))
        result = self._result(float(mu), obs, exp, qmu_a)
        return dataclasses.replace(result, multimodal=bool(test.multimodal), starts=starts, notes=result.notes + tuple(test.notes))

    def _nominal_hypotest(self, mu: float) -> dict[str, Any] | str:
        """pyhf's ``hypotest`` as ``pyhf cls`` runs it (every fit from the nominal start)."""
        import pyhf  # pyhf: only when this backend runs

        try:
            with _quiet_pyhf():
                obs, exp = pyhf.infer.hypotest(
                    mu,
                    self.data,
                    self.pdf,
                    init_pars=self.pdf.config.suggested_init(),
                    par_bounds=self.bounds(mu),
                    fixed_params=self.pdf.config.suggested_fixed(),
                    test_stat=self.config.test_stat,
                    calctype=self.config.calctype,
                    calc_base_dist=self.config.calc_base_dist,
                    return_expected_set=True,
                )
        except pyhf.exceptions.FailedMinimization:
            return "did not converge"
        return {"CLs_obs": float(obs), "CLs_exp": [float(e) for e in exp]}

    def _result(self, mu: float, observed: float, expected: Sequence[float], qmu_a: float) -> CLsResult:
        underflow = checked_cls(mu, [observed, *expected], qmu_a, backend=self.backend)
        notes = self.notes + ((underflow_note(underflow, qmu_a),) if underflow else ())
        settings = {**self.settings, "qmu_A": qmu_a}
        band = (expected[0], expected[1], expected[2], expected[3], expected[4])
        return CLsResult(observed, band, mu, self.backend, settings, underflow=underflow, notes=notes)

    def upper_limit(self, *, level: float = 0.05) -> UpperLimit:
        """Observed and expected upper limits at CLs = ``level`` (shared root finder, rtol 1e-4)."""
        ul = limits.upper_limit(self.cls, level=level, upper_bound=self.poi_upper_bound, backend=self.backend, settings=self.settings)
        # a limit above the cap is inf and named in above_cap (reported as '> cap'); any other non-finite value is not a number
        values = (ul.observed, *ul.expected)
        bad = [f"{name} = {v!r}" for name, v in zip(limits.NAMES, values, strict=True) if not math.isfinite(v) and not (math.isinf(v) and name in ul.above_cap)]
        if bad:
            raise DegenerateResult(f"pyhf: the upper limit is not a number ({', '.join(bad)})")
        return ul

    def _nominal_fit(self, fixed: list[bool]) -> tuple[Any, Any]:
        """pyhf's free fit from its suggested start (parameters, -2 ln L); FitError when it does not converge."""
        import pyhf  # pyhf: only when this backend runs

        try:
            pars, twice_nll, result = pyhf.infer.mle.fit(
                self.data,
                self.pdf,
                init_pars=self.pdf.config.suggested_init(),
                par_bounds=self.bounds(),
                fixed_params=fixed,
                return_fitted_val=True,
                return_result_obj=True,
            )
        except pyhf.exceptions.FailedMinimization as exc:
            raise FitError(f"pyhf: the maximum-likelihood fit did not converge: {_one_line(exc.result.message)}") from None
        if not result.success:  # pyhf raises first; kept in case it stops doing so
            raise FitError(f"pyhf: the maximum-likelihood fit did not converge: {_one_line(result.message)}")
        return pars, twice_nll

    def fit(self) -> FitResult:
        """The free maximum-likelihood fit (POI within its bounds) with its post-fit covariance.

        pyhf's scipy optimizer gives no Hessian, so the covariance is the inverse of half
        the central finite-difference Hessian of -2 ln L at the best fit (zero rows and
        columns for fixed parameters).
        """
        import numpy as np  # numpy: only when this backend runs

        fixed = list(self.pdf.config.suggested_fixed())
        with _numpy_backend(self.tolerance):
            pars, twice_nll = self._nominal_fit(fixed)
            pars, twice_nll, lower = self._lower_free_fit(pars, twice_nll)
            x = np.asarray(pars, dtype=float)
            free = [i for i, f in enumerate(fixed) if not f]
            cov, message = self._covariance(x, free)
            if lower:
                message += "; the best fit is the lower of two minima (pyhf's nominal start and the lowest free fit of the last CLs)"
        return FitResult(
            parameters=tuple(self.pdf.config.par_names),
            bestfit=x,
            covariance=cov,
            twice_nll=float(twice_nll),
            converged=True,
            message=message,
        )

    def _lower_free_fit(self, pars: Any, twice_nll: Any) -> tuple[Any, Any, bool]:
        """The free fit from the lowest free fit of the last :meth:`cls` (the second start that
        found it), when that is lower than the nominal fit's by more than :data:`MULTIMODAL_NLL`."""
        import pyhf  # pyhf: only when this backend runs

        if self._free_minimum is None:
            return pars, twice_nll, False
        bounds = self.bounds()
        x0 = [min(max(float(v), lo), hi) for v, (lo, hi) in zip(self._free_minimum, bounds, strict=True)]
        try:
            with _quiet_pyhf():
                other, other_twice = pyhf.infer.mle.fit(
                    self.data, self.pdf, init_pars=x0, par_bounds=bounds, fixed_params=self.pdf.config.suggested_fixed(), return_fitted_val=True
                )
        except pyhf.exceptions.FailedMinimization:
            return pars, twice_nll, False
        if float(other_twice) / 2 < float(twice_nll) / 2 - MULTIMODAL_NLL:
            return other, other_twice, True
        return pars, twice_nll, False

    def _twice_nll(self, x: Any) -> float:
        return float(-2.0 * self.pdf.logpdf(x, self.data)[0])

    def _covariance(self, x: Any, free: Sequence[int]) -> tuple[Any, str]:
        """The post-fit covariance at ``x`` (zero rows and columns for fixed parameters) and how it was found."""
        import numpy as np  # numpy: only when this backend runs

        hess = self._hessian(x, free)
        cov = np.zeros((len(x), len(x)))
        if not np.all(np.isfinite(hess)):
            return cov * np.nan, "covariance unavailable: -ln L is not finite near the best fit"
        inv, message = _inverse_half(hess)
        cov[np.ix_(free, free)] = (inv + inv.T) / 2
        return cov, message

    def _hessian(self, x: Any, free: Sequence[int]) -> Any:
        """The central finite-difference Hessian of -2 ln L at ``x`` in the ``free`` parameters
        (steps :data:`HESSIAN_STEP` relative, at least absolute)."""
        import numpy as np  # numpy: only when this backend runs

        h = np.array([HESSIAN_STEP * max(1.0, abs(x[i])) for i in range(len(x))])
        f0 = self._twice_nll(x)

        def f(shifts: Mapping[int, float]) -> float:
            y = x.copy()
            for i, s in shifts.items():
                y[i] += s * h[i]
            return self._twice_nll(y)

        m = len(free)
        hess = np.zeros((m, m))
        for a, i in enumerate(free):
            hess[a, a] = (f({i: 1}) - 2 * f0 + f({i: -1})) / h[i] ** 2
            for b in range(a):
                j = free[b]
                hess[a, b] = hess[b, a] = (f({i: 1, j: 1}) - f({i: 1, j: -1}) - f({i: -1, j: 1}) + f({i: -1, j: -1})) / (4 * h[i] * h[j])
        return hess


def _inverse_half(hess: Any) -> tuple[Any, str]:
    """The inverse of half the Hessian of -2 ln L (the pseudo-inverse where it is not positive definite), and which."""
    import numpy as np  # numpy: only when this backend runs

    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        message = "covariance: the Hessian of -ln L is not positive definite at the best fit (a parameter at its bound?); pseudo-inverse used"
        return np.linalg.pinv(hess / 2), message
    return np.linalg.inv(hess / 2), "covariance: inverse of the finite-difference Hessian of -ln L"


class PyhfBackground:
    """A background-only workspace; each signal point is built by pyhf from the patched spec."""

    def __init__(self, spec: Mapping[str, Any], *, measurement: str | None = None, tolerance: float = TOLERANCE, settings: Settings | None = None) -> None:
        self.spec = spec
        self.settings = settings if settings is not None else Settings()
        if measurement is not None and self.settings.measurement is None:
            self.settings = dataclasses.replace(self.settings, measurement=measurement)
        self.measurement = self.settings.measurement
        self.tolerance = tolerance

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> PyhfModel:
        """The pyhf model of the workspace with the RFC 6902 ``patches`` applied in order."""
        import pyhf  # pyhf: only when this backend runs

        if signal is not None:
            raise InferenceInputError(f"the pyhf backend takes RFC 6902 patches, not a named signal ({signal!r}): use a simplified-likelihood backend")
        doc = apply_patches(self.spec, patches)
        errors = _pyhf_errors()
        with _numpy_backend(self.tolerance):
            try:
                ws = pyhf.Workspace(doc)
                name = _measurement_name(ws, self.measurement)
                require_measurement(doc, name, "the workspace", valid=True)  # E081: pyhf's fits would raise ValueError
                model = ws.model(measurement_name=name, modifier_settings=modifier_settings(self.settings))
                data = ws.data(model)
            except errors as exc:
                hint = " (a background-only workspace? give the signal with --patch or --patchset and --point)" if "parameter of interest" in str(exc) else ""
                raise InferenceInputError(f"pyhf refuses the workspace: {_one_line(exc)}{hint}") from None
        return PyhfModel(model, data, tolerance=self.tolerance, settings=self.settings, measurement=name)


def _measurement_name(ws: Any, wanted: str | None) -> str:
    """The measurement to use: ``wanted`` when the workspace has it, else the first (pyhf's default)."""
    names = list(ws.measurement_names)
    if wanted is None:
        if not names:
            raise InferenceInputError("the workspace has no measurement: pyhf needs one naming the parameter of interest")
        return str(names[0])
    if wanted not in names:
        raise InferenceInputError(f"measurement {wanted!r}: the workspace's measurements are {', '.join(map(repr, names))}", option="measurement")
    return wanted


class PyhfBackend:
    """pyhf 0.7.6 as the reference HistFactory backend."""

    name = "pyhf"

    def __init__(self, *, tolerance: float = TOLERANCE) -> None:
        self.tolerance = tolerance

    def unsupported(self, spec: Mapping[str, Any]) -> str | None:
        """pyhf handles every valid workspace and every :class:`Settings`."""
        return None

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> PyhfBackground:
        return PyhfBackground(spec, measurement=measurement, tolerance=self.tolerance, settings=settings)


def _lowest(preferred: Minimum, converged: list[Minimum]) -> Minimum:
    """``preferred`` unless another minimum is lower by more than :data:`MULTIMODAL_NLL`."""
    best = preferred
    for m in converged:
        if m.nll < best.nll - MULTIMODAL_NLL:
            best = m
    return best
