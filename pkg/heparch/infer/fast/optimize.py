"""Bounded Newton minimisation with the exact Hessian.

A projected Newton method (Bertsekas 1982): parameters at a bound whose gradient
pushes outward are held there; the others take a Newton step, projected onto the box,
with a backtracking Armijo line search. Where the Hessian is not positive definite the step
is saddle-free (its eigenvalues by their absolute values) for a dense Hessian; a sparse one
(models with many parameters and few bins) takes the caller's expected Hessian (Fisher
scoring) or else a Levenberg-Marquardt damped step. Converged means: on the parameters not held at a
bound, the Newton step is below ``xtol`` in units of each parameter's uncertainty
(1/sqrt(H_ii)) and the predicted decrease of -ln L (the Newton decrement) is below
``ftol``; or, when rounding stops all progress, the decrement is below 1e3 ``ftol``. A fit
that does not converge is retried from scipy's L-BFGS-B result, and the message says so;
the caller raises :class:`~heparch.errors.FitError` if it still fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

Arr = Any
Evaluate = Callable[..., tuple[float, Arr, Arr | None]]
Value = Callable[[Arr], float]

SETTINGS: dict[str, Any] = {
    "minimiser": "projected Newton, exact Hessian, Armijo line search (fallback: scipy L-BFGS-B)",
    "ftol": 1e-12,  # predicted decrease of -ln L at convergence
    "xtol": 1e-5,  # largest Newton step in units of the parameter's post-fit uncertainty
    "max_iterations": 200,
}


@dataclasses.dataclass
class Minimum:
    x: Arr
    fun: float
    grad: Arr
    hess: Arr | None
    converged: bool
    iterations: int
    message: str


def is_sparse(H: Arr) -> bool:
    """Whether ``H`` is a scipy sparse matrix (the Hessian of a model with many parameters)."""
    return hasattr(H, "tocsc")


def diagonal(H: Arr) -> Arr:
    """The diagonal of a dense or sparse Hessian."""
    return H.diagonal() if is_sparse(H) else np.diag(H)


def submatrix(H: Arr, idx: Arr) -> Arr:
    """The rows and columns ``idx`` of a dense or sparse Hessian."""
    if is_sparse(H):
        return H[idx][:, idx]
    return H.take(idx, axis=0).take(idx, axis=1)


def _sparse_direction(H: Arr, g: Arr, fallback: Callable[[], Arr] | None = None) -> tuple[Arr, float]:
    """:func:`_newton_direction` for a sparse Hessian: the Jacobi-scaled system is factorised by
    SuperLU with a symmetric ordering and diagonal pivots (an LDL^T: positive definite exactly
    when every pivot is positive); where it is not, Levenberg-Marquardt damping (scaled H + t I,
    t raised tenfold from 1e-3 until it is positive definite) gives a descent direction."""
    import scipy.sparse as sp  # scipy.sparse (~0.4 s): only for a sparse model
    from scipy.sparse.linalg import splu  # scipy.sparse (~0.4 s): only for a sparse model

    diag = np.abs(H.diagonal())
    top = float(diag.max()) if diag.size else 1.0
    dscale = 1.0 / np.sqrt(np.maximum(diag, 1e-30 * max(top, 1e-300)))
    D = sp.diags_array(dscale)
    Hs = sp.csc_array(D @ H @ D)
    gs = g * dscale
    eye = sp.identity(Hs.shape[0], format="csc")
    t = 0.0
    for _ in range(16):
        A = Hs + t * eye if t else Hs
        try:
            lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        except RuntimeError:  # exactly singular
            lu = None
        if lu is not None and np.array_equal(lu.perm_r, lu.perm_c) and np.all(lu.U.diagonal() > 0):
            ds = lu.solve(-gs)
            return ds * dscale, float(-0.5 * gs @ ds)
        if fallback is not None:
            return _sparse_direction(fallback(), g)
        t = 1e-3 if t == 0.0 else 10.0 * t
    ds = -gs  # not reached for a finite Hessian (t = 1e11 dominates it): steepest descent
    return ds * dscale, float(-0.5 * gs @ ds)


def _newton_direction(H: Arr, g: Arr, fallback: Callable[[], Arr] | None = None) -> tuple[Arr, float]:
    """Solve H d = -g by Cholesky of the Jacobi-scaled system D H D (D = |diag(H)|^-1/2, unit
    diagonal): curvatures range over 1e11 on real models (a shapesys with tau ~ 1.9e11 next to
    normsys of curvature ~1), and the scaled system is as well conditioned as the correlations
    allow. Where it is not positive definite, the scaled Hessian's eigenvalues are replaced by
    their absolute values, floored at 1e-8 (a saddle-free Newton step: descent, and full steps
    along the directions of positive curvature). Returns (d, predicted decrease)."""
    if is_sparse(H):
        return _sparse_direction(H, g, fallback)
    from scipy.linalg.lapack import dpotrf, dpotrs  # scipy.linalg: loaded at the first dense Newton step

    diag = np.abs(np.diag(H))
    top = float(diag.max()) if diag.size else 1.0
    dscale = 1.0 / np.sqrt(np.maximum(diag, 1e-30 * max(top, 1e-300)))
    Hs = H * dscale[:, None] * dscale[None, :]
    gs = g * dscale
    # LAPACK directly, as scipy's cho_factor / cho_solve call it (their checks cost more than a
    # 126 x 126 factorisation)
    c, info = dpotrf(Hs, lower=False, clean=True, overwrite_a=False)
    if info == 0:
        ds, _ = dpotrs(c, -gs, lower=False, overwrite_b=False)
    else:
        if fallback is not None:
            return _newton_direction(fallback(), g)
        lam, vec = np.linalg.eigh(Hs)
        ds = -vec @ ((vec.T @ gs) / np.maximum(np.abs(lam), 1e-8))
    return ds * dscale, float(-0.5 * gs @ ds)


def minimize(
    evaluate: Evaluate,
    value: Value,
    x0: Arr,
    lower: Arr,
    upper: Arr,
    free: Arr,
    *,
    ftol: float = SETTINGS["ftol"],
    xtol: float = SETTINGS["xtol"],
    maxiter: int = SETTINGS["max_iterations"],
    fisher: Callable[[Arr], Arr] | None = None,
) -> Minimum:
    """Minimise ``evaluate(x) -> (f, g, H)`` over the ``free`` parameters within [lower, upper];
    where H is not positive definite, ``fisher(x)`` (the expected Hessian) takes its place."""
    x = np.clip(np.asarray(x0, dtype=float).copy(), lower, upper)
    fidx = np.flatnonzero(free)
    f, g, H = evaluate(x)
    if not np.isfinite(f):
        return Minimum(x, f, g, H, False, 0, "-ln L is not finite at the starting point")
    # the engine's hot path: each iteration makes a few Python calls and leaves the work to numpy
    for it in range(1, maxiter + 1):
        gf = g[fidx]
        xf = x[fidx]
        lo, hi = lower[fidx], upper[fidx]
        span = np.maximum(hi - lo, 1.0)
        eps = 1e-12 * span
        at_lo = (xf - lo <= eps) & (gf > 0)
        at_hi = (hi - xf <= eps) & (gf < 0)
        active = at_lo | at_hi
        inact = ~active
        ii = fidx[inact]
        d = np.zeros_like(x)
        dec = 0.0
        if ii.size:
            Hii = submatrix(H, ii)
            fb = (lambda x=x, ii=ii: submatrix(fisher(x), ii)) if fisher is not None else None
            di, dec = _newton_direction(Hii, g[ii], fb)
            d[ii] = di
            sig = 1.0 / np.sqrt(np.maximum(np.abs(Hii.diagonal()), 1e-300))
            step_scaled = float(np.max(np.abs(di) / sig))
        else:
            step_scaled = 0.0
        if dec < ftol and step_scaled < xtol:
            return _converged(value, x, f, g, H, d, fidx, lo, hi, it - 1)
        found = _line_search(value, x, f, g, d, fidx, lo, hi)
        if found is None:
            return _no_descent(x, f, g, H, it, dec < 1e3 * ftol, step_scaled < 1e3 * xtol)
        xn, fn = found
        if fn >= f - 4e-16 * abs(f) and dec < 1e3 * ftol:  # stalled
            return _at_machine_precision(x, f, g, H, it - 1)
        x = xn
        f, g, H = evaluate(x)
    return Minimum(x, f, g, H, False, maxiter, f"no convergence after {maxiter} Newton iterations")


def _converged(value: Value, x: Arr, f: float, g: Arr, H: Arr, d: Arr, fidx: Arr, lo: Arr, hi: Arr, iterations: int) -> Minimum:
    """Converged at ``x``; the last Newton step ``d`` is taken too when it does not raise -ln L: it
    squares the remaining error, so fits from different starts into one minimum end at the same
    point (~1e-10 sigma)."""
    xn = x.copy()
    xn[fidx] = np.clip(x[fidx] + d[fidx], lo, hi)
    fn = value(xn)
    if np.isfinite(fn) and fn <= f:
        x, f = xn, fn
    return Minimum(x, f, g, H, True, iterations, f"converged after {iterations} Newton iterations")


def _line_search(value: Value, x: Arr, f: float, g: Arr, d: Arr, fidx: Arr, lo: Arr, hi: Arr) -> tuple[Arr, float] | None:
    """The first point of the projection arc x + t d (t = 1, 1/2, ...: 60 halvings) where -ln L
    falls by 1e-4 of the predicted decrease (Armijo); None where none does. Only -ln L is
    evaluated: the derivatives are wanted at the accepted point only (``evaluate`` of a
    likelihood reuses the rates ``value`` computed there)."""
    t = 1.0
    for _ in range(60):
        xn = x.copy()
        xn[fidx] = np.clip(x[fidx] + t * d[fidx], lo, hi)
        fn = value(xn)
        pred = float(g @ (xn - x))
        if np.isfinite(fn) and fn <= f + 1e-4 * min(pred, 0.0):
            return xn, fn
        t *= 0.5
    return None


def _no_descent(x: Arr, f: float, g: Arr, H: Arr, it: int, small_decrease: bool, small_step: bool) -> Minimum:
    """The end of a fit whose line search found no lower point: converged at machine precision
    where the Newton step was nearly converged (its predicted decrease or its size within 1e3
    times the tolerance), else failed."""
    if small_decrease or small_step:
        return _at_machine_precision(x, f, g, H, it - 1)
    return Minimum(x, f, g, H, False, it, "line search failed")


def _at_machine_precision(x: Arr, f: float, g: Arr, H: Arr, iterations: int) -> Minimum:
    return Minimum(x, f, g, H, True, iterations, f"converged after {iterations} Newton iterations (at machine precision)")


def minimize_with_fallback(evaluate: Evaluate, value: Value, x0: Arr, lower: Arr, upper: Arr, free: Arr, fisher: Callable[[Arr], Arr] | None = None) -> Minimum:
    """:func:`minimize`, then scipy L-BFGS-B and Newton again from its result if it failed."""
    res = minimize(evaluate, value, x0, lower, upper, free, fisher=fisher)
    if res.converged:
        return res
    from scipy.optimize import minimize as sp_minimize  # scipy.optimize (~1 s): only for a fallback fit

    fidx = np.flatnonzero(free)
    base = res.x.copy() if np.isfinite(res.fun) else np.clip(np.asarray(x0, dtype=float), lower, upper)

    def fg(xf: Arr) -> tuple[float, Arr]:
        x = base.copy()
        x[fidx] = xf
        f, g, _ = evaluate(x, hessian=False)
        if not np.isfinite(f):
            return 1e300, np.zeros(xf.size)
        return f, g[fidx]

    sp = sp_minimize(
        fg,
        base[fidx],
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lower[fidx], upper[fidx], strict=True)),
        options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-10},
    )
    x = base.copy()
    x[fidx] = sp.x
    again = minimize(evaluate, value, x, lower, upper, free, fisher=fisher)
    again.message = f"Newton: {res.message}; L-BFGS-B: {sp.message}; Newton again: {again.message}"
    return again
