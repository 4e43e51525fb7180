"""The ``pyhf`` reference backend: pyhf 0.7.6's hypotest, with our checks and records.

CLs come from ``pyhf.infer.hypotest(mu, data, model, test_stat="qtilde",
calctype="asymptotics", calc_base_dist="normal", return_expected_set=True)`` on pyhf's
numpy backend with the scipy (SLSQP) optimizer at tolerance 1e-10: pyhf's default
tolerance stops after one iteration on a real ATLAS likelihood. The POI's lower bound is
0 (q~mu); its upper bound is widened to include ``mu`` when ``mu`` lies above it, which
leaves q~mu unchanged (q~mu is 0 whenever the free fit's mu-hat is at or above ``mu``).
Upper limits use the shared root finder of :mod:`heparch.infer.limits`, so every backend
finds its limits the same way (rtol 1e-4).

pyhf's global backend is set for each call and restored afterwards.

>>> ws = {"channels": [{"name": "SR", "samples": [
...         {"name": "sig", "data": [2.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...         {"name": "bkg", "data": [5.0], "modifiers": []}]}],
...       "observations": [{"name": "SR", "data": [5.0]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> r = PyhfBackend().background(ws).model().cls(1.0)
>>> round(r.observed, 4), r.backend
(0.4254, 'pyhf')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from heparch.errors import FitError, InferenceInputError
from heparch.infer.base import HISTFACTORY_SETTINGS, CLsResult, FitResult, Settings, UpperLimit

#: SLSQP tolerance of every pyhf fit (pyhf's default stops too early on real likelihoods)
TOLERANCE: Final = 1e-10
#: finite-difference step (relative, at least absolute 1e-4) of the post-fit Hessian
HESSIAN_STEP: Final = 1e-4
MODIFIER_SETTINGS: Final[Mapping[str, Mapping[str, str]]] = {
    "normsys": {"interpcode": HISTFACTORY_SETTINGS["interpolation"]["normsys"]},
    "histosys": {"interpcode": HISTFACTORY_SETTINGS["interpolation"]["histosys"]},
}


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


def settings(tolerance: float = TOLERANCE) -> dict[str, Any]:
    """What a pyhf result records: the q~mu settings, optimizer, tolerance and versions."""
    import numpy
    import pyhf
    import scipy

    return {
        **HISTFACTORY_SETTINGS,
        "tensorlib": "numpy",
        "optimizer": "scipy SLSQP",
        "tolerance": tolerance,
        "versions": {"pyhf": pyhf.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__},
    }


class PyhfModel:
    """One signal point as a pyhf model and its observed data (+ auxiliary data)."""

    backend = "pyhf"

    def __init__(self, model: Any, data: Any, *, tolerance: float = TOLERANCE) -> None:
        self.pdf = model
        self.data = data
        self.tolerance = tolerance
        self.settings = settings(tolerance)
        if model.config.poi_index is None:
            raise InferenceInputError("the model has no parameter of interest: the measurement's 'poi' names no modifier (did you forget --patch or --point?)")
        self._poi = model.config.poi_index

    # --- configuration -----------------------------------------------------------------
    def bounds(self, mu: float = 0.0) -> list[tuple[float, float]]:
        """Suggested bounds with the POI's lower bound 0 and its upper bound at least ``mu``."""
        bounds = [tuple(map(float, b)) for b in self.pdf.config.suggested_bounds()]
        hi = bounds[self._poi][1]
        bounds[self._poi] = (0.0, max(hi, float(mu)))
        return bounds  # type: ignore[return-value]

    @property
    def poi_upper_bound(self) -> float:
        return float(self.pdf.config.suggested_bounds()[self._poi][1])

    # --- inference ---------------------------------------------------------------------
    def cls(self, mu: float = 1.0) -> CLsResult:
        """CLs observed and expected (-2..+2 sigma) at POI value ``mu``."""
        import pyhf

        with _numpy_backend(self.tolerance):
            try:
                obs, exp = pyhf.infer.hypotest(
                    float(mu),
                    self.data,
                    self.pdf,
                    init_pars=self.pdf.config.suggested_init(),
                    par_bounds=self.bounds(mu),
                    fixed_params=self.pdf.config.suggested_fixed(),
                    test_stat=HISTFACTORY_SETTINGS["test_stat"],
                    calctype=HISTFACTORY_SETTINGS["calctype"],
                    calc_base_dist=HISTFACTORY_SETTINGS["calc_base_dist"],
                    return_expected_set=True,
                )
            except pyhf.exceptions.FailedMinimization as exc:
                raise FitError(f"pyhf: a fit for CLs at mu={mu:g} did not converge: {_one_line(exc.result.message)}") from None
        expected = tuple(float(e) for e in exp)
        return CLsResult(float(obs), expected, float(mu), self.backend, self.settings)  # type: ignore[arg-type]

    def upper_limit(self, *, level: float = 0.05) -> UpperLimit:
        """Observed and expected upper limits at CLs = ``level`` (shared root finder, rtol 1e-4)."""
        from heparch.infer.limits import upper_limit

        return upper_limit(self.cls, level=level, upper_bound=self.poi_upper_bound, backend=self.backend, settings=self.settings)

    def fit(self) -> FitResult:
        """The free maximum-likelihood fit (POI >= 0) with its post-fit covariance.

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

    def __init__(self, spec: Mapping[str, Any], *, measurement: str | None = None, tolerance: float = TOLERANCE) -> None:
        self.spec = spec
        self.measurement = measurement
        self.tolerance = tolerance

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> PyhfModel:
        """The pyhf model of the workspace with the RFC 6902 ``patches`` applied in order."""
        import pyhf

        from heparch.components.patchset import PatchFailure, apply_patch

        if signal is not None:
            raise InferenceInputError(f"the pyhf backend takes RFC 6902 patches, not a named signal ({signal!r}): use a simplified-likelihood backend")
        doc: Any = self.spec
        for k, ops in enumerate(patches):
            try:
                doc, _ = apply_patch(doc, list(ops))
            except PatchFailure as exc:
                raise InferenceInputError(f"patch {k + 1}: operation {exc.index} does not apply to the workspace: {exc.reason}") from None
        errors = _pyhf_errors()
        with _numpy_backend(self.tolerance):
            try:
                ws = pyhf.Workspace(doc)
                kwargs: dict[str, Any] = {"modifier_settings": {k: dict(v) for k, v in MODIFIER_SETTINGS.items()}}
                if self.measurement is not None:
                    kwargs["measurement_name"] = self.measurement
                model = ws.model(**kwargs)
                data = ws.data(model)
            except errors as exc:
                hint = " (a background-only workspace? give the signal with --patch or --patchset and --point)" if "parameter of interest" in str(exc) else ""
                raise InferenceInputError(f"pyhf refuses the workspace: {_one_line(exc)}{hint}") from None
        return PyhfModel(model, data, tolerance=self.tolerance)


class PyhfBackend:
    """pyhf 0.7.6 as the reference HistFactory backend."""

    name = "pyhf"

    def __init__(self, *, tolerance: float = TOLERANCE) -> None:
        self.tolerance = tolerance

    def unsupported(self, spec: Mapping[str, Any]) -> str | None:
        """pyhf handles every valid workspace."""
        return None

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> PyhfBackground:
        if settings is not None:  # signature shim (issue 10): the measurement honoured, other non-default settings refused
            if settings != Settings(measurement=settings.measurement):
                raise InferenceInputError(f"settings {settings.to_json()}: not supported by this backend yet")
            measurement = measurement or settings.measurement
        return PyhfBackground(spec, measurement=measurement, tolerance=self.tolerance)
