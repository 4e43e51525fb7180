"""The ``pyhf`` reference backend: pyhf 0.7.6's hypotest, with our checks and records.

CLs come from ``pyhf.infer.hypotest(mu, data, model, test_stat=..., calctype="asymptotics",
calc_base_dist="normal", return_expected_set=True)`` on pyhf's numpy backend with the scipy
(SLSQP) optimizer at tolerance 1e-10: pyhf's default tolerance stops after one iteration on
a real ATLAS likelihood. :class:`~heparch.infer.base.Settings` choose the test statistic
(``qtilde`` or ``q``), the normsys and histosys interpolation codes (pyhf's
``modifier_settings``), the measurement and the POI bounds. The POI bounds are the ones the
workspace gives (pyhf's suggested bounds, as ``pyhf cls`` uses them) unless the settings set
them; only the upper bound is widened to include ``mu`` when ``mu`` lies above it, which
leaves q and q~mu unchanged (both are 0 whenever the free fit's mu-hat is at or above
``mu``). With q~mu and a POI lower bound other than 0 the numbers are exactly pyhf's (its
fits use the given bounds, so mu-hat may be negative) and the result carries a note that
this is not Cowan et al.'s q~mu.

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
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer.base import CLsResult, FitResult, Settings, UpperLimit
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
    import pyhf.exceptions as ex

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
def _numpy_backend(tolerance: float) -> Iterator[None]:
    """pyhf's numpy backend with the scipy optimizer at ``tolerance``; the previous backend restored after."""
    import pyhf

    previous = pyhf.get_backend()
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=tolerance))
    try:
        yield
    finally:
        pyhf.set_backend(*previous)


def record(settings: Settings, *, tolerance: float = TOLERANCE, poi_bounds: tuple[float, float], measurement: str) -> dict[str, Any]:
    """What a pyhf result records: the settings as used (POI bounds and measurement resolved),
    the optimizer, its tolerance and the software versions."""
    import numpy
    import pyhf
    import scipy

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
    if not (math.isfinite(qmu_a) and qmu_a > 0.0):
        raise DegenerateResult(
            f"{backend}: the Asimov test statistic q_mu,A = {qmu_a:g} at mu={mu:g}: the expected data do not depend on mu "
            "(mu = 0, a signal of zero yield, or fits stopped at a POI bound), so CLs is not defined there"
        )
    bad = [f"{name} = {v!r}" for name, v in zip(CLS_NAMES, values, strict=True) if not math.isfinite(v)]
    if bad:
        raise DegenerateResult(f"{backend}: CLs at mu={mu:g} is not a number ({', '.join(bad)}; q_mu,A = {qmu_a:g})")
    return tuple(name for name, v in zip(CLS_NAMES, values, strict=True) if v == 0.0)


def underflow_note(names: Sequence[str], qmu_a: float) -> str:
    return f"{', '.join(names)} underflow double precision (reported as 0): q_mu,A = {qmu_a:.6g}, the Asimov data exclude mu by {math.sqrt(qmu_a):.1f} sigma"


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
            raise InferenceInputError(f"mu={mu:g} is below the POI's lower bound {lo:g}: choose mu inside the bounds or set --poi-bounds")
        bounds[self._poi] = (lo, hi if mu is None else max(hi, float(mu)))
        return bounds

    @property
    def poi_upper_bound(self) -> float:
        return self.poi_bounds[1]

    # --- inference ---------------------------------------------------------------------
    def cls(self, mu: float = 1.0) -> CLsResult:
        """CLs observed and expected (-2..+2 sigma) at POI value ``mu``."""
        import pyhf

        with _numpy_backend(self.tolerance):
            try:
                obs, exp, calc = pyhf.infer.hypotest(
                    float(mu),
                    self.data,
                    self.pdf,
                    init_pars=self.pdf.config.suggested_init(),
                    par_bounds=self.bounds(mu),
                    fixed_params=self.pdf.config.suggested_fixed(),
                    test_stat=self.config.test_stat,
                    calctype=self.config.calctype,
                    calc_base_dist=self.config.calc_base_dist,
                    return_expected_set=True,
                    return_calculator=True,
                )
            except pyhf.exceptions.FailedMinimization as exc:
                raise FitError(f"pyhf: a fit for CLs at mu={mu:g} did not converge: {_one_line(exc.result.message)}") from None
        return self._result(float(mu), float(obs), [float(e) for e in exp], float(calc.sqrtqmuA_v) ** 2)

    def _result(self, mu: float, observed: float, expected: Sequence[float], qmu_a: float) -> CLsResult:
        underflow = checked_cls(mu, [observed, *expected], qmu_a, backend=self.backend)
        notes = self.notes + ((underflow_note(underflow, qmu_a),) if underflow else ())
        settings = {**self.settings, "qmu_A": qmu_a}
        band = (expected[0], expected[1], expected[2], expected[3], expected[4])
        return CLsResult(observed, band, mu, self.backend, settings, underflow=underflow, notes=notes)

    def upper_limit(self, *, level: float = 0.05) -> UpperLimit:
        """Observed and expected upper limits at CLs = ``level`` (shared root finder, rtol 1e-4)."""
        from heparch.infer.limits import NAMES, upper_limit

        ul = upper_limit(self.cls, level=level, upper_bound=self.poi_upper_bound, backend=self.backend, settings=self.settings)
        # a limit above the cap is inf and named in above_cap (reported as '> cap'); any other non-finite value is not a number
        values = (ul.observed, *ul.expected)
        bad = [f"{name} = {v!r}" for name, v in zip(NAMES, values, strict=True) if not math.isfinite(v) and not (math.isinf(v) and name in ul.above_cap)]
        if bad:
            raise DegenerateResult(f"pyhf: the upper limit is not a number ({', '.join(bad)})")
        return ul

    def fit(self) -> FitResult:
        """The free maximum-likelihood fit (POI within its bounds) with its post-fit covariance.

        pyhf's scipy optimizer gives no Hessian, so the covariance is the inverse of half
        the central finite-difference Hessian of -2 ln L at the best fit (zero rows and
        columns for fixed parameters).
        """
        import numpy as np
        import pyhf

        fixed = list(self.pdf.config.suggested_fixed())
        with _numpy_backend(self.tolerance):
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
            x = np.asarray(pars, dtype=float)
            free = [i for i, f in enumerate(fixed) if not f]
            cov, message = self._covariance(x, free)
        return FitResult(
            parameters=tuple(self.pdf.config.par_names),
            bestfit=x,
            covariance=cov,
            twice_nll=float(twice_nll),
            converged=True,
            message=message,
        )

    def _twice_nll(self, x: Any) -> float:
        return float(-2.0 * self.pdf.logpdf(x, self.data)[0])

    def _covariance(self, x: Any, free: Sequence[int]) -> tuple[Any, str]:
        import numpy as np

        n = len(x)
        h = np.array([HESSIAN_STEP * max(1.0, abs(x[i])) for i in range(n)])
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
        cov = np.zeros((n, n))
        message = "covariance: inverse of the finite-difference Hessian of -ln L"
        if not np.all(np.isfinite(hess)):
            return cov * np.nan, "covariance unavailable: -ln L is not finite near the best fit"
        try:
            np.linalg.cholesky(hess)
        except np.linalg.LinAlgError:
            message = "covariance: the Hessian of -ln L is not positive definite at the best fit (a parameter at its bound?); pseudo-inverse used"
            inv = np.linalg.pinv(hess / 2)
        else:
            inv = np.linalg.inv(hess / 2)
        cov[np.ix_(free, free)] = (inv + inv.T) / 2
        return cov, message


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
        import pyhf

        if signal is not None:
            raise InferenceInputError(f"the pyhf backend takes RFC 6902 patches, not a named signal ({signal!r}): use a simplified-likelihood backend")
        doc = _patched(self.spec, patches)
        errors = _pyhf_errors()
        with _numpy_backend(self.tolerance):
            try:
                ws = pyhf.Workspace(doc)
                name = _measurement_name(ws, self.measurement)
                require_measurement(doc, name, "the workspace")  # E081: pyhf's fits would raise ValueError
                model = ws.model(measurement_name=name, modifier_settings=modifier_settings(self.settings))
                data = ws.data(model)
            except errors as exc:
                hint = " (a background-only workspace? give the signal with --patch or --patchset and --point)" if "parameter of interest" in str(exc) else ""
                raise InferenceInputError(f"pyhf refuses the workspace: {_one_line(exc)}{hint}") from None
        return PyhfModel(model, data, tolerance=self.tolerance, settings=self.settings, measurement=name)


def _patched(spec: Mapping[str, Any], patches: Sequence[Sequence[Mapping[str, Any]]]) -> Any:
    from heparch.components.patchset import PatchFailure, apply_patch

    doc: Any = spec
    for k, ops in enumerate(patches):
        try:
            doc, _ = apply_patch(doc, list(ops))
        except PatchFailure as exc:
            raise InferenceInputError(f"patch {k + 1}: operation {exc.index} does not apply to the workspace: {exc.reason}") from None
    return doc


def _measurement_name(ws: Any, wanted: str | None) -> str:
    """The measurement to use: ``wanted`` when the workspace has it, else the first (pyhf's default)."""
    names = list(ws.measurement_names)
    if wanted is None:
        if not names:
            raise InferenceInputError("the workspace has no measurement: pyhf needs one naming the parameter of interest")
        return str(names[0])
    if wanted not in names:
        raise InferenceInputError(f"--measurement {wanted!r}: the workspace's measurements are {', '.join(map(repr, names))}")
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
