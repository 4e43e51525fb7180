"""The ``simplified`` backend: simplified likelihoods, linear and quadratic, fast.

Two forms, chosen by the input (DESIGN.md 5b):

- linear (CMS-NOTE-2017-001), when there are no ``third_moments``:
  ``n_i ~ Pois(mu s_i + b_i + sigma_i theta_i)``, ``theta ~ N(0, rho)``, with
  ``sigma_i = sqrt(V_ii)`` and ``rho`` the correlation matrix of ``V`` (equivalent to
  ``b_i + theta'_i`` with ``theta' ~ N(0, V)``);
- quadratic (Buckley et al., JHEP 04 (2019) 064, section 2), with ``third_moments``:
  ``n_i ~ Pois(mu s_i + A_i + B_i theta_i + C_i theta_i^2)``, ``theta ~ N(0, rho)``,
  with ``A, B, C, rho`` from the moments by their eqs. (2.9)-(2.12).

Inference follows spey 0.2.7 (``default.correlated_background`` and
``default.third_moment_expansion``) so numbers compare directly; the conventions are
in :data:`SETTINGS` and in every result's ``settings``:

- q~mu asymptotics (Cowan et al. 2011) with the POI bounded below by 0;
- the expected band from the Asimov data ``lambda(mu=0, theta_hat_0)`` of the
  conditional fit to the observed data at mu = 0, the constraint centres kept at 0
  (spey's ``aposteriori``; pyhf would move them to ``theta_hat_0``);
- the background part of each bin's rate, ``A_i + B_i theta_i + C_i theta_i^2``,
  kept >= 0 in every fit (spey: a ``NonlinearConstraint`` for SLSQP). Here it is the
  interval of ``theta_i`` around the physical branch of the parabola where that holds:
  a box constraint, so fits are a projected Newton method on the exact Hessian;
- the quadratic form is not convex in theta (a parabola per bin, both signs of C), and
  -ln L can have several minima: the fits of the quadratic form that feed q~mu (the fit at
  mu=0 that makes the Asimov data included) start from the warm start, the nominal values
  (theta = 0, mu = 0) and spey's initial values (theta = 1, mu = 1), and the lowest minimum
  is taken; minima that differ by more than 1e-6 in -ln L mark the result ``multimodal``
  with -ln L from each start. Fits at fixed mu follow each start along mu (warm-started from
  its own fit at the nearest mu) for as long as it ends in a minimum of its own; a start
  that reaches the minimum of another is merged into it (this keeps an upper limit's many
  fits at the cost of one line when the likelihood has one minimum). A single warm start
  used to land in a higher minimum where spey's start finds the lower one (on random models
  near the bound the expected band then differed from spey's by up to 21%). The linear form
  is convex: one start.

We report CLs (spey reports 1 - CLs). Where spey 0.2.7 differs (read from its source):
its free fits bound mu above by 10 (heparch does not); it adds 1e-5 to |C_i| in eq. (2.12)
(rho changes by ~1e-5 relative); it sets C_i = 0 for third moments beyond their bound where
heparch refuses the input; its Poisson rates are clipped at 1e-20. Its SLSQP fits (tolerance
1e-10) can stop short of a minimum on the positivity bound, and from its one start can end in
a higher minimum: ``tests/test_infer_simplified_spey.py`` compares with spey run from two starts.

>>> sl = {"observed": [12, 7], "background": [10.0, 5.0],
...       "covariance": [[4.0, 1.0], [1.0, 2.0]], "signals": {"A": [3.0, 2.0]}}
>>> model = SimplifiedBackend().background(sl).model(signal="A")
>>> r = model.cls(1.0)
>>> round(r.observed, 4), r.backend
(0.6093, 'simplified')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs
from scipy.special import gammaln, log_ndtr

from heparch.components.simplified import check_simplified
from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer._checks import finite_vector
from heparch.infer.base import EXPECTED_SIGMAS, CLsResult, FitResult, Settings, UpperLimit
from heparch.infer.limits import upper_limit as _upper_limit

#: the conventions every result of this backend records (spey 0.2.7's)
SETTINGS: Final[dict[str, Any]] = {
    "test_stat": "qtilde",
    "calctype": "asymptotics",
    "calc_base_dist": "normal",
    "poi_lower_bound": 0.0,
    "reported": "CLs (spey reports 1-CLs)",
    "conventions": "spey 0.2.7",
    "expected": "aposteriori: Asimov data lambda(0, theta_hat_0) of the observed data, constraint centres kept at 0",
    "background_positivity": "A_i + B_i theta_i + C_i theta_i^2 >= 0 in every fit (bounds on theta_i)",
    "constraint": "theta ~ N(0, rho)",
    "optimizer": "projected Newton, exact Hessian; converged: free gradient < 1e-7 or Newton decrement < max(1e-11, 64 eps |-ln L|)",
    "starts": "quadratic form: warm start, nominal (theta=0, mu=0) and spey's (theta=1, mu=1), each followed along mu until it reaches another's minimum; the lowest minimum is taken",
    "differences_from_spey": (
        "mu unbounded above in free fits (spey 0.2.7: <= 10); rho by eq. (2.12) without spey's 1e-5 added to |C_i| (~1e-5 relative);"
        " third moments beyond m3_i^2 <= 8 m2_ii^3 refused (spey: C_i = 0 with a warning)"
    ),
}
#: minima from different starts that differ by more than this in -ln L make the result multimodal
MULTIMODAL_TOL: Final = 1e-6
#: a fit has converged when the largest free gradient component is below this
GRAD_TOL: Final = 1e-7
#: ... or when the Newton decrement g.H^-1.g/2 (the predicted decrease of -ln L) is below this
DECREMENT_TOL: Final = 1e-11
#: ... or below this fraction of |-ln L| (64 machine epsilons: what rounding lets f resolve)
F_RESOLUTION: Final = 64 * 2.220446049250313e-16
MAX_ITER: Final = 200


class SimplifiedBackend:
    """The simplified-likelihood backend (``name = "simplified"``)."""

    name = "simplified"

    def unsupported(self, spec: object) -> str | None:
        """Why ``spec`` (any JSON value) is not a simplified likelihood (None when it is)."""
        if not isinstance(spec, Mapping):
            return "not a JSON object"
        missing = [k for k in ("observed", "background", "covariance", "signals") if k not in spec]
        if missing:
            return f"not a simplified likelihood: missing {', '.join(missing)}"
        return None

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> SimplifiedBackground:
        """Check ``spec`` and prepare the background model (raises InferenceInputError).

        Of ``settings``, the test statistic and the POI bounds apply (q~mu with mu >= 0 is
        computed, spey 0.2.7's conventions; anything else raises); the interpolation codes and the
        measurement are HistFactory's and do not apply to a simplified likelihood.
        """
        if settings is not None:
            _check_settings(settings)
        return SimplifiedBackground(spec)


# ---------------------------------------------------------------------------------------
# input checks


def _check_settings(settings: Settings) -> None:
    if settings.test_stat != "qtilde":
        raise InferenceInputError(
            f"test_stat {settings.test_stat}: the simplified backend computes qtilde (spey 0.2.7's conventions); use test_stat=qtilde", option="test_stat"
        )
    if settings.poi_bounds is not None and settings.poi_bounds[0] != 0.0:
        raise InferenceInputError(
            f"poi_bounds {settings.poi_bounds[0]:g},{settings.poi_bounds[1]:g}: the simplified backend bounds mu below by 0 (spey 0.2.7's q~mu); give a lower bound of 0",
            option="poi_bounds",
        )


def _vector(spec: Mapping[str, Any], key: str, path: str) -> np.ndarray:
    return finite_vector(spec[key], path)


def _nonnegative(arr: np.ndarray, path: str, what: str) -> None:
    bad = np.flatnonzero(arr < 0)
    if bad.size:
        raise InferenceInputError(f"{path}[{bad[0]}]: negative {what} {arr[bad[0]]:g}")


def _parse(spec: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Arrays from ``spec``; errors raise with the field named, warnings are returned."""
    if not isinstance(spec, Mapping):
        raise InferenceInputError("simplified likelihood: expected a JSON object")
    for key in ("observed", "background", "covariance", "signals"):
        if key not in spec:
            raise InferenceInputError(f"$.{key}: required field is missing")
    observed = _vector(spec, "observed", "$.observed")
    background = _vector(spec, "background", "$.background")
    _nonnegative(observed, "$.observed", "count")
    _nonnegative(background, "$.background", "rate")
    cov = _covariance(spec["covariance"])
    third = None if spec.get("third_moments") is None else _vector(spec, "third_moments", "$.third_moments")
    signals = _signals(spec["signals"])
    warnings = _checked(spec)
    return {"observed": observed, "background": background, "covariance": cov, "third_moments": third, "signals": signals}, warnings


def _covariance(cov_in: Any) -> np.ndarray:
    if not isinstance(cov_in, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in cov_in):
        raise InferenceInputError("$.covariance: expected a list of rows")
    for i, row in enumerate(cov_in):
        _vector({"r": row}, "r", f"$.covariance[{i}]")
    return np.array(cov_in, dtype=float)


def _signals(signals_in: Any) -> dict[str, np.ndarray]:
    if not isinstance(signals_in, Mapping) or not signals_in:
        raise InferenceInputError("$.signals: expected an object {NAME: [yields]}")
    signals = {}
    for name, yields in signals_in.items():
        path = f"$.signals[{name!r}]"
        arr = _vector({"y": yields}, "y", path)
        _nonnegative(arr, path, "rate")
        signals[str(name)] = arr
    return signals


def _checked(spec: Mapping[str, Any]) -> list[str]:
    """The component checks (shapes, symmetric positive-definite covariance, m3_i^2 <= 8 m2_ii^3,
    unknown fields): the first error raises, the warnings are returned as lines."""

    findings = check_simplified(dict(spec), location="simplified likelihood")
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InferenceInputError(errors[0].one_line(), findings=errors)
    return [f.one_line() for f in findings if f.severity != "error"]


# ---------------------------------------------------------------------------------------
# the model


def quadratic_coefficients(m1: np.ndarray, m2: np.ndarray, m3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``A, B, C, rho`` of Buckley et al. (2019) eqs. (2.9)-(2.12) from the first three moments.

    ``rho`` is evaluated as ``2 m2_ij / (sqrt((B_i B_j)^2 + 8 C_i C_j m2_ij) + B_i B_j)``,
    algebraically eq. (2.12) but finite when ``C_i C_j -> 0`` (spey 0.2.7 adds 1e-5 to
    ``C`` there instead). A negative discriminant is taken by its absolute value as spey does.
    """
    d = np.diag(m2)
    c = np.zeros_like(m1)
    nz = m3**2 > 0  # m3 -> 0 gives C -> 0 (cos(3 pi / 2) = 0)
    with np.errstate(over="ignore"):
        ratio = np.maximum(8.0 * d[nz] ** 3 / m3[nz] ** 2 - 1.0, 0.0)
    c[nz] = -np.sign(m3[nz]) * np.sqrt(2.0 * d[nz]) * np.cos(4.0 * np.pi / 3.0 + np.arctan(np.sqrt(ratio)) / 3.0)
    b = np.sqrt(np.maximum(d - 2.0 * c**2, 0.0))
    a = m1 - c
    bb = np.outer(b, b)
    cc = np.outer(c, c)
    disc = bb**2 + 8.0 * cc * m2
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 2.0 * m2 / (np.sqrt(np.abs(disc)) + bb)
        neg = disc < 0
        if neg.any():  # spey: (sqrt(|disc|) - B_i B_j) / (4 C_i C_j)
            rho[neg] = (np.sqrt(-disc[neg]) - bb[neg]) / (4.0 * cc[neg])
    return a, b, c, rho


def _theta_bounds(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bin, the interval of theta where ``a + b theta + c theta^2 >= 0`` on the rising branch."""
    lo = np.full_like(a, -np.inf)
    hi = np.full_like(a, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):  # rates near 1e308: the fits find no finite -ln L
        disc = b**2 - 4.0 * a * c
    for i in range(a.size):
        lo[i], hi[i] = _bin_interval(a[i], b[i], c[i], disc[i], i)
    return lo, hi


def _bin_interval(a: Any, b: Any, c: Any, disc: Any, i: int) -> tuple[Any, Any]:
    """The interval of :func:`_theta_bounds` for bin ``i`` (numpy scalars, as the arrays hold them)."""
    if c == 0.0:
        return -a / b, np.inf
    if disc < 0.0:
        if c < 0.0:
            raise InferenceInputError(f"$.third_moments[{i}]: the quadratic background rate of bin {i} is negative for every theta")
        return -np.inf, np.inf
    q = -0.5 * (b + math.sqrt(disc))  # roots q/c and a/q (b >= 0)
    if q == 0.0:
        return -np.inf, np.inf
    if c < 0.0:
        return min(a / q, q / c), max(a / q, q / c)
    return a / q, np.inf


def _rate_coefficients(m1: np.ndarray, m2: np.ndarray, m3: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A, B, C of the background rates and the correlation matrix rho: the linear form (C = 0)
    without third moments, else the quadratic one (eq. 2.12); refused where they overflow."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is refused below
        if m3 is None:
            sigma = np.sqrt(np.diag(m2))
            a, b, c, rho = m1.copy(), sigma, np.zeros(m1.size), m2 / np.outer(sigma, sigma)
        else:
            a, b, c, rho = quadratic_coefficients(m1, m2, m3)
    for what, values in (("background rate coefficients A, B, C", (a, b, c)), ("correlation matrix rho", (rho,))):
        if not all(np.all(np.isfinite(v)) for v in values):
            field = "$.third_moments" if m3 is not None else "$.covariance"
            raise InferenceInputError(
                f"{field}: the model's {what} overflow double precision (moments too large for their bins); rescale the inputs or check their units"
            )
    return a, b, c, rho


def _quadratic_warnings(m2: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[str]:
    """What the quadratic form computes but is unusual: a negative discriminant in eq. (2.12)
    (its absolute value is used), a negative background rate at theta = 0."""
    warnings = []
    with np.errstate(over="ignore", invalid="ignore"):
        negative_discriminant = bool(np.any(np.outer(c, c) * m2 * 8.0 + np.outer(b, b) ** 2 < 0))
    if negative_discriminant:
        warnings.append("$.third_moments: eq. (2.12) has a negative discriminant for some bin pairs; its absolute value is used, as spey 0.2.7 does")
    if np.any(a < 0):
        i = int(np.flatnonzero(a < 0)[0])
        warnings.append(f"$.third_moments[{i}]: A_i = m1_i - C_i < 0: the background rate at theta_i = 0 is negative")
    return warnings


def _inverse_and_logdet(rho: np.ndarray) -> tuple[np.ndarray, float]:
    """rho^-1 (symmetrised) and ln det rho, by Cholesky; refused when rho is not positive definite."""
    try:
        factor = scipy.linalg.cho_factor(rho, lower=True)
    except np.linalg.LinAlgError:
        raise InferenceInputError("$.third_moments: the correlation matrix rho of the quadratic form (eq. 2.12) is not positive definite") from None
    inv = np.asarray(scipy.linalg.cho_solve(factor, np.eye(rho.shape[0])))
    return 0.5 * (inv + inv.T), 2.0 * float(np.sum(np.log(np.diag(factor[0]))))


class SimplifiedBackground:
    """A simplified likelihood prepared once: coefficients, constraint, bounds.

    ``warnings`` holds one line per ignored unknown field (and per other warning).
    """

    backend = "simplified"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        parsed, self.warnings = _parse(spec)
        self.observed: np.ndarray = parsed["observed"]
        self.signals: dict[str, np.ndarray] = parsed["signals"]
        m1, m2, m3 = parsed["background"], parsed["covariance"], parsed["third_moments"]
        self.form = "linear" if m3 is None else "quadratic"
        self.a, self.b, self.c, self.rho = _rate_coefficients(m1, m2, m3)
        if m3 is not None:
            self.warnings += _quadratic_warnings(m2, self.a, self.b, self.c)
        self.rho_inv, self.logdet_rho = _inverse_and_logdet(self.rho)
        self.lo, self.hi = _theta_bounds(self.a, self.b, self.c)
        self.n_bins = m1.size
        self.settings = {**SETTINGS, "form": self.form}

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> SimplifiedModel:
        """The model of the named signal point (``patches`` are ignored)."""
        if signal is None:
            if len(self.signals) != 1:
                raise InferenceInputError(f"$.signals: name a signal point; there are {len(self.signals)}: {_names(self.signals)}")
            signal = next(iter(self.signals))
        if signal not in self.signals:
            raise InferenceInputError(f"$.signals: no signal point {signal!r}; there are {_names(self.signals)}")
        return SimplifiedModel(self, signal)


def _names(signals: Mapping[str, Any]) -> str:
    names = list(signals)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(repr(x) for x in names[:5]) + more


class _Fit:
    """A converged (or not) fit: mu, theta, 2 x (-ln L) without constants, and the
    linear predictor ``dtheta/dmu`` used to warm-start fits at nearby mu."""

    __slots__ = ("converged", "dtheta_dmu", "hessian", "iterations", "mu", "theta", "twice_nll")

    def __init__(self, mu: float, theta: np.ndarray, twice_nll: float, converged: bool, iterations: int, hessian: Any, dtheta_dmu: Any = None) -> None:
        self.mu = mu
        self.theta = theta
        self.twice_nll = twice_nll
        self.converged = converged
        self.iterations = iterations
        self.hessian = hessian
        self.dtheta_dmu = dtheta_dmu


class _Data:
    """Counts with what the likelihood needs precomputed."""

    __slots__ = ("all_positive", "n", "positive")

    def __init__(self, n: np.ndarray) -> None:
        self.n = n
        self.positive = n > 0
        self.all_positive = bool(self.positive.all())


class _Point:
    """-ln L at one point with the arrays its gradient and Hessian reuse."""

    __slots__ = ("f", "grad", "lam", "mu", "pieces", "r_theta", "theta")

    def __init__(self, mu: float, theta: np.ndarray, lam: np.ndarray, r_theta: np.ndarray, f: float) -> None:
        self.mu = mu
        self.theta = theta
        self.lam = lam
        self.r_theta = r_theta
        self.f = f
        self.grad: np.ndarray = r_theta
        self.pieces: tuple[np.ndarray, np.ndarray, np.ndarray] = (lam, lam, lam)


class SimplifiedModel:
    """One signal point of a simplified likelihood."""

    backend = "simplified"

    def __init__(self, bkg: SimplifiedBackground, signal: str) -> None:
        self.bkg = bkg
        self.signal_name = signal
        self.s = bkg.signals[signal]
        self.settings = {**bkg.settings, "signal": signal}
        theta0 = np.zeros(bkg.n_bins)
        # start inside the box: theta = 0 unless the background rate is <= 0 there
        low = bkg.lo >= 0.0
        theta0[low] = np.where(np.isfinite(bkg.hi[low]), 0.5 * (bkg.lo[low] + bkg.hi[low]), bkg.lo[low] + 1.0)
        high = bkg.hi <= 0.0
        theta0[high] = 0.5 * (bkg.lo[high] + bkg.hi[high])
        self._theta0 = theta0
        self._obs = _Data(bkg.observed)
        self._prepared: tuple[_Fit, _Fit, _Data, _Fit] | None = None
        self._cond: dict[str, dict[float, _Fit]] = {"obs": {}, "asimov": {}}
        #: lines of fits at fixed mu by data and start, while they end in different minima
        self._lines: dict[str, dict[str, dict[float, _Fit]]] = {"obs": {}, "asimov": {}}
        #: fits whose starts found different minima, by (data, fixed mu or None when free)
        self._modes: dict[tuple[str, float | None], dict[str, Any]] = {}
        self._lo_mu = np.concatenate(([0.0], bkg.lo))
        self._hi_mu = np.concatenate(([np.inf], bkg.hi))

    # ---- likelihood pieces --------------------------------------------------------
    def _point(self, mu: float, theta: np.ndarray, data: _Data) -> _Point | None:
        """-ln L (without constants) and what its derivatives reuse; None outside the domain."""
        bk = self.bkg
        # theta stays in [lo, hi], where the background part is >= 0 in exact arithmetic; at a
        # bound it can round to -1e-16, which is 0 (else a fit ending on the bound fails)
        quad = theta * (bk.b + bk.c * theta)
        lam = mu * self.s + bk.a + quad
        below = bk.a + quad < 0.0
        if below.any():
            lam[below] = mu * self.s[below]
        r_theta = bk.rho_inv @ theta
        if data.all_positive:
            if lam.min() <= 0.0:
                return None
            logs = data.n @ np.log(lam)
        else:
            if lam.min() < 0.0 or np.any((lam == 0.0) & data.positive):
                return None
            p = data.positive
            logs = data.n[p] @ np.log(lam[p])
        return _Point(mu, theta, lam, r_theta, float(lam.sum() - logs + 0.5 * (theta @ r_theta)))

    def _nll(self, mu: float, theta: np.ndarray, data: _Data) -> float:
        """-ln L without constants (inf outside the domain)."""
        point = self._point(mu, theta, data)
        return math.inf if point is None else point.f

    def _constant(self, data: np.ndarray) -> float:
        """The constants of -ln L: log n!, and the Gaussian normalisation."""
        n = self.bkg.n_bins
        return float(np.sum(gammaln(data + 1.0)) + 0.5 * (n * math.log(2 * math.pi) + self.bkg.logdet_rho))

    def _derivatives(self, pt: _Point, data: _Data, with_mu: bool) -> None:
        """Fill the gradient and the Hessian pieces of ``pt`` (per bin: 1 - n/lambda,
        n/lambda^2, dlambda/dtheta)."""
        bk = self.bkg
        dl = bk.b + 2.0 * bk.c * pt.theta
        if data.all_positive:
            r = data.n / pt.lam
            w = r / pt.lam
        else:
            r = np.zeros_like(pt.lam)
            p = data.positive
            r[p] = data.n[p] / pt.lam[p]
            w = np.zeros_like(pt.lam)
            w[p] = r[p] / pt.lam[p]
        one_r = 1.0 - r
        g_t = one_r * dl + pt.r_theta
        pt.pieces = (one_r, w, dl)
        pt.grad = np.concatenate(([float(one_r @ self.s)], g_t)) if with_mu else g_t

    def _hessian(self, pt: _Point, with_mu: bool) -> np.ndarray:
        bk = self.bkg
        one_r, w, dl = pt.pieces
        diag = w * dl * dl + one_r * 2.0 * bk.c
        n = dl.size
        if not with_mu:
            h = bk.rho_inv.copy()
            h.flat[:: n + 1] += diag
            return h
        h = np.empty((n + 1, n + 1))
        h[1:, 1:] = bk.rho_inv
        h.flat[n + 2 :: n + 2] += diag
        h_mt = w * self.s * dl
        h[0, 1:] = h_mt
        h[1:, 0] = h_mt
        h[0, 0] = float(w @ (self.s * self.s))
        return h

    # ---- the minimiser ------------------------------------------------------------
    def _minimise(self, data: _Data, theta0: np.ndarray, mu: float, *, free_mu: bool) -> _Fit:
        """Projected Newton on the box (mu >= 0 when free; theta in [lo, hi]).

        Newton steps on the free variables with the exact Hessian (shifted when not
        positive definite), a backtracking line search on the projected path, and
        convergence when the largest free gradient component is below GRAD_TOL or the
        Newton decrement below DECREMENT_TOL.
        """
        x, lo, hi = self._box(theta0, mu, free_mu=free_mu)

        def point(x: np.ndarray) -> _Point | None:
            return self._point(float(x[0]), x[1:], data) if free_mu else self._point(mu, x, data)

        x = np.minimum(np.maximum(x, lo), hi)
        pt = point(x)
        if pt is None:
            raise FitError(f"simplified likelihood: a fit at mu={mu:g} starts where a bin with data has a zero rate")
        self._derivatives(pt, data, free_mu)
        converged = False
        it = 0
        factor: Any = None
        free = None
        for it in range(1, MAX_ITER + 1):  # noqa: B007 (it is reported)
            g = pt.grad
            active = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
            gmax = float(np.max(np.abs(g[~active]), initial=0.0))
            if gmax < GRAD_TOL:
                converged = True
                break
            factor, d, free = _projected_newton(self._hessian(pt, free_mu), g, x, lo, hi, active)
            # the Newton decrement: f is at its minimum, to within what f can resolve (|f| reaches
            # 1e4 and more with large counts, where 1e-11 is below its rounding)
            if -0.5 * float(g @ d) < max(DECREMENT_TOL, F_RESOLUTION * abs(pt.f)):
                converged = True
                break
            xn, new = _line_search(point, x, pt.f, g, d, lo, hi)
            if new is None or new.f >= pt.f:  # no decrease at machine precision
                converged = gmax < 1e-5
                if new is not None:
                    x, pt = xn, new
                    self._derivatives(pt, data, free_mu)
                break
            x, pt = xn, new
            self._derivatives(pt, data, free_mu)
        if free_mu:  # the Hessian at the minimum, for the post-fit covariance
            return _Fit(float(x[0]), x[1:].copy(), 2.0 * pt.f, converged, it, self._hessian(pt, True))
        return _Fit(mu, x, 2.0 * pt.f, converged, it, None, self._predictor(pt, factor, free, x))

    def _box(self, theta0: np.ndarray, mu: float, *, free_mu: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fit's variables at the start (mu first when it is free; theta) and their bounds."""
        if free_mu:
            return np.concatenate(([max(mu, 0.0)], theta0)), self._lo_mu, self._hi_mu
        return theta0.copy(), self.bkg.lo, self.bkg.hi

    def _predictor(self, pt: _Point, factor: Any, free: np.ndarray | None, x: np.ndarray) -> np.ndarray | None:
        """dtheta/dmu = -H_tt^-1 H_t,mu at the solution (the last factor), to warm-start nearby mu."""
        if factor is None:
            return None
        _one_r, w, dl = pt.pieces
        h_tm = w * self.s * dl
        if free is None:
            return -_solve(factor, h_tm)
        predictor = np.zeros_like(x)
        predictor[free] = -_solve(factor, h_tm[free])
        return predictor

    # ---- fits used by hypothesis tests ----------------------------------------------
    def _check(self, fit: _Fit, what: str) -> _Fit:
        if not fit.converged:
            raise FitError(f"simplified likelihood, signal {self.signal_name!r}: the {what} did not converge ({fit.iterations} iterations)")
        return fit

    def _prepare(self) -> tuple[_Fit, _Fit, _Data, _Fit]:
        """Conditional fit at mu=0, global fit, Asimov data, global Asimov fit (cached)."""
        if self._prepared is None:
            bk = self.bkg
            fit0, lines = self._fits(("obs", 0.0), self._obs, self._starts(self._theta0, 0.0, free_mu=False), free_mu=False)
            glob, _ = self._fits(("obs", None), self._obs, self._starts(fit0.theta, 0.0, free_mu=True), free_mu=True)
            asimov = _Data(np.maximum(bk.a + fit0.theta * (bk.b + bk.c * fit0.theta), 0.0))
            globa, _ = self._fits(("asimov", None), asimov, self._starts(fit0.theta, 0.0, free_mu=True), free_mu=True)
            self._prepared = (fit0, glob, asimov, globa)
            self._cond["obs"][0.0] = fit0
            self._lines["obs"].update((name, {0.0: fit}) for name, fit in lines.items())
        return self._prepared

    def _conditional(self, which: str, data: _Data, mu: float) -> _Fit:
        """The fit at fixed ``mu``: the first one of ``which`` data from every start, the later
        ones from each line of fits (a start followed along mu) that still ends in its own minimum."""
        cache = self._cond[which]
        if mu in cache:
            return cache[mu]
        lines = self._lines[which]
        if lines:
            starts = [(name, mu, self._warm(line, mu, data)) for name, line in lines.items()]
        else:
            warm = self._warm(cache, mu, data) if cache else self._prepare()[0].theta
            starts = self._starts(warm, mu, free_mu=False)
        fit, distinct = self._fits((which, mu), data, starts, free_mu=False)
        for name in [name for name in lines if name not in distinct]:
            del lines[name]  # it reached the minimum of another line (or failed)
        for name, line_fit in distinct.items():
            lines.setdefault(name, {})[mu] = line_fit
        cache[mu] = fit
        return fit

    def _warm(self, fits: Mapping[float, _Fit], mu: float, data: _Data) -> np.ndarray:
        """A start at ``mu`` from the nearest fit in ``fits``: moved along dtheta/dmu where that stays in the domain."""
        near = fits[min(fits, key=lambda m: abs(m - mu))]
        if near.dtheta_dmu is not None:
            start: np.ndarray = np.minimum(np.maximum(near.theta + (mu - near.mu) * near.dtheta_dmu, self.bkg.lo), self.bkg.hi)
            if math.isfinite(self._nll(mu, start, data)):
                return start
        return near.theta

    def _starts(self, warm: np.ndarray, mu: float, *, free_mu: bool) -> list[tuple[str, float, np.ndarray]]:
        """(name, mu, theta) of each start: the warm start; for the quadratic form also the
        nominal values (theta = 0, moved into the box) and spey 0.2.7's (theta = 1, mu = 1);
        mu is ``mu`` in all of them when it is fixed."""
        starts = [("warm", mu, warm)]
        if self.bkg.form == "quadratic":
            spey = np.minimum(np.maximum(np.ones(self.bkg.n_bins), self.bkg.lo), self.bkg.hi)
            for name, mu0, theta0 in (("nominal", 0.0 if free_mu else mu, self._theta0), ("spey", 1.0 if free_mu else mu, spey)):
                if not any(m == mu0 and np.array_equal(t, theta0) for _, m, t in starts):
                    starts.append((name, mu0, theta0))
        return starts

    def _fits(self, key: tuple[str, float | None], data: _Data, starts: list[tuple[str, float, np.ndarray]], *, free_mu: bool) -> tuple[_Fit, dict[str, _Fit]]:
        """The lowest minimum from ``starts`` (``key``: data and fixed mu, None when free), and
        the converged fits by start with those that reached the same minimum as a lower one left
        out; records -ln L from each start when they differ by more than MULTIMODAL_TOL."""
        fits = self._from_starts(data, starts, free_mu=free_mu)
        converged = sorted(((f.twice_nll, name, f) for name, f in fits.items() if f.converged), key=lambda t: t[0])
        if not converged:
            self._check(next(iter(fits.values())), _describe(key))
        nll = {name: 0.5 * f.twice_nll + self._constant(data.n) for _, name, f in converged}
        if max(nll.values()) - min(nll.values()) > MULTIMODAL_TOL:
            self._modes[key] = {"fit": _describe(key), "-lnL": nll}
        return converged[0][2], _distinct([(name, f) for _, name, f in converged])

    def _from_starts(self, data: _Data, starts: list[tuple[str, float, np.ndarray]], *, free_mu: bool) -> dict[str, _Fit]:
        """A fit from each start that can be fitted, by start name; the first start's error when none can."""
        fits: dict[str, _Fit] = {}
        errors: list[FitError] = []
        for name, mu0, theta0 in starts:
            try:
                fits[name] = self._minimise(data, theta0, mu0, free_mu=free_mu)
            except FitError as err:  # this start lies where a bin with data has a zero rate
                errors.append(err)
        if not fits:
            raise errors[0]
        return fits

    def qtilde(self, mu: float) -> tuple[float, float]:
        """q~mu for the observed and for the Asimov data at ``mu``."""
        _fit0, glob, asimov, globa = self._prepare()
        obs = self._obs
        q = 0.0
        if glob.mu <= mu:
            q = max(self._conditional("obs", obs, mu).twice_nll - glob.twice_nll, 0.0)
        qa = 0.0
        if globa.mu <= mu:
            qa = max(self._conditional("asimov", asimov, mu).twice_nll - globa.twice_nll, 0.0)
        return q, qa

    # ---- the Model protocol ---------------------------------------------------------
    def cls(self, mu: float = 1.0) -> CLsResult:
        """CLs observed and expected (-2..+2 sigma) at ``mu`` (asymptotic q~mu)."""
        mu = float(mu)
        if not math.isfinite(mu) or mu < 0:
            raise InferenceInputError(f"mu: {mu} must be a finite number >= 0")
        with np.errstate(over="ignore", invalid="ignore"):  # refused just below
            q, qa = self.qtilde(mu)
        if not (math.isfinite(q) and math.isfinite(qa)):  # rates that overflow: no number to print
            raise DegenerateResult(
                f"simplified likelihood, signal {self.signal_name!r}: the test statistic at mu={mu:g} is not a number (q~mu = {q!r}, q_mu,A = {qa!r}); "
                "no CLs (are the background, covariance and signal within double precision?)"
            )
        observed, expected = cls_from_q(q, qa)
        keys = [("obs", 0.0), ("obs", None), ("asimov", None), ("obs", mu), ("asimov", mu)]
        starts = {self._modes[k]["fit"]: self._modes[k]["-lnL"] for k in keys if k in self._modes}
        return CLsResult(observed=observed, expected=expected, mu=mu, backend="simplified", settings=self.settings, multimodal=bool(starts), starts=starts)

    def upper_limit(self, *, level: float = 0.05) -> UpperLimit:
        """Observed and expected upper limits on mu at CLs = ``level``."""
        return _upper_limit(self.cls, level=level, upper_bound=self._upper_bound_guess(level), backend="simplified", settings=self.settings)

    def _upper_bound_guess(self, level: float) -> float:
        """A POI bound above the +2 sigma expected limit: mu_hat + 5 sigma_mu (Asimov Hessian)."""
        _fit0, glob, _asimov, globa = self._prepare()
        try:
            var = float(np.linalg.inv(globa.hessian)[0, 0])  # Hessian of -ln L
        except np.linalg.LinAlgError:
            return 10.0
        if not math.isfinite(var) or var <= 0:
            return 10.0
        return float(max(glob.mu, 0.0) + 5.0 * math.sqrt(var))

    def fit(self) -> FitResult:
        """The global fit (mu >= 0) with the post-fit covariance (inverse Hessian)."""
        return self._result(self._prepare()[1], fixed_mu=False)

    def profile(self, mu: float) -> FitResult:
        """The fit at fixed ``mu`` to the observed data (mu's covariance row is zero)."""
        return self._result(self._conditional("obs", self._obs, float(mu)), fixed_mu=True)

    def _hessian_at(self, fit: _Fit) -> np.ndarray:
        """The Hessian at the end of ``fit`` (computed here for a conditional fit, which does not keep its own)."""
        if fit.hessian is None:
            data = self._obs
            pt = self._point(fit.mu, fit.theta, data)
            if pt is not None:
                self._derivatives(pt, data, False)
                fit.hessian = self._hessian(pt, False)
        if fit.hessian is None:
            raise FitError(f"simplified likelihood, signal {self.signal_name!r}: the fit ended outside the domain")
        hessian: np.ndarray = fit.hessian
        return hessian

    def _result(self, fit: _Fit, *, fixed_mu: bool) -> FitResult:
        n = self.bkg.n_bins
        names = ("mu", *(f"theta_{i}" for i in range(n)))
        hessian = self._hessian_at(fit)
        return FitResult(
            parameters=names,
            bestfit=np.concatenate(([fit.mu], fit.theta)),
            covariance=_covariance_of(hessian, n, fixed_mu=fixed_mu),
            twice_nll=fit.twice_nll + 2.0 * self._constant(self.bkg.observed),
            converged=fit.converged,
            message=f"projected Newton, {fit.iterations} iterations",
        )


def _covariance_of(hessian: np.ndarray, n: int, *, fixed_mu: bool) -> np.ndarray:
    """The post-fit covariance (mu, theta): the inverse Hessian, mu's row and column zero when it
    was fixed; NaN where the Hessian is singular."""
    h: np.ndarray = hessian[-n:, -n:] if fixed_mu else hessian
    try:
        inv = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        inv = np.full(h.shape, np.nan)
    if not fixed_mu:
        return inv
    cov = np.zeros((n + 1, n + 1))
    cov[1:, 1:] = inv
    return cov


def _distinct(fits: Sequence[tuple[str, _Fit]]) -> dict[str, _Fit]:
    """``fits`` (lowest first) by start, without those that reached the minimum of one before them."""
    distinct: dict[str, _Fit] = {}
    for name, f in fits:
        if not any(_same_minimum(f, g) for g in distinct.values()):
            distinct[name] = f
    return distinct


def _same_minimum(f: _Fit, g: _Fit) -> bool:
    """Two fits ended in the same minimum: -ln L within MULTIMODAL_TOL, parameters within 1e-4."""
    return abs(f.twice_nll - g.twice_nll) <= 2.0 * MULTIMODAL_TOL and abs(f.mu - g.mu) <= 1e-4 and float(np.max(np.abs(f.theta - g.theta))) <= 1e-4


def _describe(key: tuple[str, float | None]) -> str:
    which, mu = key
    data = "observed" if which == "obs" else "Asimov"
    return f"global fit ({data} data)" if mu is None else f"fit at mu={mu:g} ({data} data)"


def _projected_newton(
    h: np.ndarray, g: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, active: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """(factor, step, free variables or None for all) of the Newton step on the variables not held at a bound.

    A variable on its bound whose Newton step points out of the box is held there too (its gradient
    can be ~0 while the step through it is the one that lowers -ln L), else the projected step does
    not descend; at most one pass per variable."""
    factor: Any = None
    d = np.zeros_like(x)
    free = None
    for _ in range(x.size):
        if active.any():
            free = np.flatnonzero(~active)
            d = np.zeros_like(x)
            factor, d[free] = _newton_step(h[np.ix_(free, free)], g[free])
        else:
            free = None
            factor, d = _newton_step(h, g)
        outward = ~active & (((x <= lo) & (d < 0)) | ((x >= hi) & (d > 0)))
        if not outward.any():
            break
        active = active | outward
    return factor, d, free


def _line_search(
    point: Callable[[np.ndarray], Any], x: np.ndarray, f: float, g: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, Any]:
    """Backtracking (Armijo, c = 1e-4) on the projected path x + t d; (x, None) when 60 halvings fail."""
    t = 1.0
    for _ in range(60):
        xn = np.minimum(np.maximum(x + t * d, lo), hi)
        new = point(xn)
        if new is not None and new.f <= f + 1e-4 * float(g @ (xn - x)):
            return xn, new
        t *= 0.5
    return x, None


def _newton_step(h: np.ndarray, g: np.ndarray) -> tuple[Any, np.ndarray]:
    """The Cholesky factor used and -H^-1 g, H shifted by a multiple of the identity until
    it is positive definite (LAPACK potrf/potrs directly: the wrappers cost more than the
    factorisation at this size)."""
    scale = max(float(np.max(np.abs(np.diag(h)))), 1e-12)
    shift = 0.0
    for _ in range(40):
        hh = h if shift == 0.0 else h + shift * np.eye(h.shape[0])
        factor, info = _potrf(hh, lower=1, clean=0)
        if info == 0:
            return factor, -_solve(factor, g)
        shift = 1e-8 * scale if shift == 0.0 else shift * 10.0
    return None, -g / scale


def _solve(factor: Any, v: np.ndarray) -> np.ndarray:
    if factor is None:
        return np.zeros_like(v)
    x, _info = _potrs(factor, v, lower=1)
    return np.asarray(x)


def cls_from_q(q: float, qa: float) -> tuple[float, tuple[float, float, float, float, float]]:
    """CLs observed and expected from q~mu and its Asimov value (Cowan et al. 2011, eq. 66).

    As spey 0.2.7 and pyhf 0.7.6 (``calc_base_dist="normal"``); CLs = 1 when qA = 0.
    """
    if qa <= 0.0:
        return 1.0, (1.0, 1.0, 1.0, 1.0, 1.0)
    sq, sqa = math.sqrt(max(q, 0.0)), math.sqrt(qa)
    delta = sq - sqa if sq <= sqa else (q - qa) / (2.0 * sqa)
    observed = _ratio(-sqa - delta, -delta)
    expected = tuple(_ratio(-sqa - k, -k) for k in (-float(s) for s in EXPECTED_SIGMAS))
    return observed, (expected[0], expected[1], expected[2], expected[3], expected[4])


def _ratio(a: float, b: float) -> float:
    """Phi(a) / Phi(b), in logs so deep tails do not underflow."""
    return float(min(math.exp(float(log_ndtr(a)) - float(log_ndtr(b))), 1.0))
