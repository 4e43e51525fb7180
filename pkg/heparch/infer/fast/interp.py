"""Interpolation codes of pyhf 0.7.6, with first and second derivatives.

Each function takes the nuisance parameter values ``a`` of a set of entries (one entry
per modifier and bin) and returns ``(value, d value/da, d2 value/da2)``, piecewise as
pyhf's fast interpolators compute them (``pyhf/interpolators/code*.py``), including
which side of each boundary a point on the boundary belongs to.

Multiplicative codes (normsys): ``code1`` (piecewise exponential) and ``code4``
(exponential outside [-1, 1], a 6th-order polynomial inside). Additive codes
(histosys): ``code0`` (piecewise linear), ``code2`` (quadratic inside, linear outside,
exactly as pyhf writes it) and ``code4p`` (linear outside, a 6th-order polynomial inside).

>>> import numpy as np
>>> v, d1, d2 = code4(np.array([0.0, 1.0]), np.array([1.1, 1.1]), np.array([0.9, 0.9]))
>>> [round(float(x), 12) for x in v]
[1.0, 1.1]
"""

from __future__ import annotations

from typing import Any

import numpy as np

Arr = Any  # numpy arrays; kept loose so the engine stays free of numpy typing noise
Triple = tuple[Arr, Arr, Arr]

# A^{-1} of pyhf's code4 at alpha0 = 1 (pyhf/interpolators/code4.py), rows a1..a6
_CODE4_AINV = np.array(
    [
        [15.0 / 16, -15.0 / 16, -7.0 / 16, -7.0 / 16, 1.0 / 16, -1.0 / 16],
        [3.0 / 2, 3.0 / 2, -9.0 / 16, 9.0 / 16, 1.0 / 16, 1.0 / 16],
        [-5.0 / 8, 5.0 / 8, 5.0 / 8, 5.0 / 8, -1.0 / 8, 1.0 / 8],
        [-3.0 / 2, -3.0 / 2, 7.0 / 8, -7.0 / 8, -1.0 / 8, -1.0 / 8],
        [3.0 / 16, -3.0 / 16, -3.0 / 16, -3.0 / 16, 1.0 / 16, -1.0 / 16],
        [1.0 / 2, 1.0 / 2, -5.0 / 16, 5.0 / 16, 1.0 / 16, 1.0 / 16],
    ]
)


def code4_coefficients(hi: Arr, lo: Arr) -> Arr:
    """The polynomial coefficients a1..a6 (shape (6, n)) of code4 for factors ``hi``, ``lo``."""
    lhi, llo = np.log(hi), np.log(lo)
    b = np.stack([hi - 1.0, lo - 1.0, lhi * hi, -llo * lo, lhi**2 * hi, llo**2 * lo])
    return _CODE4_AINV @ b


def code4(a: Arr, hi: Arr, lo: Arr, coef: Arr | None = None) -> Triple:
    """pyhf code4: ``hi**a`` for a >= 1, ``lo**-a`` for a <= -1, the polynomial between."""
    if coef is None:
        coef = code4_coefficients(hi, lo)
    a1, a2, a3, a4, a5, a6 = coef
    v = 1.0 + a * (a1 + a * (a2 + a * (a3 + a * (a4 + a * (a5 + a * a6)))))
    d1 = a1 + a * (2 * a2 + a * (3 * a3 + a * (4 * a4 + a * (5 * a5 + a * 6 * a6))))
    d2 = 2 * a2 + a * (6 * a3 + a * (12 * a4 + a * (20 * a5 + a * 30 * a6)))
    out = np.flatnonzero(np.abs(a) >= 1.0)
    if out.size:  # outside (-1, 1): exponential branches
        ao = a[out]
        base = np.where(ao >= 1.0, hi[out], lo[out])
        lb = np.log(base)
        vo = np.exp(np.abs(ao) * lb)
        v[out] = vo
        d1[out] = np.where(ao >= 1.0, vo * lb, -vo * lb)
        d2[out] = vo * lb * lb
    return v, d1, d2


def code1(a: Arr, hi: Arr, lo: Arr, coef: Arr | None = None) -> Triple:
    """pyhf code1: ``hi**a`` for a > 0, ``lo**-a`` otherwise."""
    pos = a > 0
    base = np.where(pos, hi, lo)
    lb = np.log(base)
    v = np.power(base, np.abs(a))
    d1 = np.where(pos, v * lb, -v * lb)
    return v, d1, v * lb**2


def code4p(a: Arr, up: Arr, dn: Arr) -> Triple:
    """pyhf code4p with ``up = hi - nom``, ``dn = nom - lo``."""
    s = 0.5 * (up + dn)
    big_a = 0.0625 * (up - dn)
    a2 = a * a
    v = a * s + a2 * (a2 * (3.0 * a2 - 10.0) + 15.0) * big_a
    d1 = s + big_a * a * (30.0 + a2 * (18.0 * a2 - 40.0))
    d2 = big_a * (30.0 + a2 * (90.0 * a2 - 120.0))
    out = np.flatnonzero(np.abs(a) > 1.0)
    if out.size:  # outside [-1, 1]: linear
        ao = a[out]
        slope = np.where(ao > 1.0, up[out], dn[out])
        v[out] = ao * slope
        d1[out] = slope
        d2[out] = 0.0
    return v, d1, d2


def code0(a: Arr, up: Arr, dn: Arr) -> Triple:
    """pyhf code0: ``a * up`` for a > 0, ``a * dn`` otherwise."""
    slope = np.where(a > 0, up, dn)
    return a * slope, slope, np.zeros_like(a)


def code2(a: Arr, up: Arr, dn: Arr) -> Triple:
    """pyhf code2 exactly as pyhf 0.7.6 computes it: ``(b+2a)(alpha-1)`` above 1,
    ``a alpha^2 + b alpha`` on [-1, 1] and ``(b-2a) alpha`` below -1 (its ``alpha + mask_off``
    adds zero), with a = (I+ + I-)/2 - I0, b = (I+ - I-)/2. Neither branch outside [-1, 1]
    joins the inner one continuously; we reproduce pyhf, not the documented formula."""
    qa = 0.5 * (up - dn)
    qb = 0.5 * (up + dn)
    gt = a > 1.0
    lt = a < -1.0
    v = np.where(gt, (qb + 2 * qa) * (a - 1.0), np.where(lt, (qb - 2 * qa) * a, qa * a * a + qb * a))
    d1 = np.where(gt, qb + 2 * qa, np.where(lt, qb - 2 * qa, 2 * qa * a + qb))
    d2 = np.where(gt | lt, 0.0, 2 * qa)
    return v, d1, d2


def additive_coefficients(code: str, up: Arr, dn: Arr) -> tuple[Arr, Arr]:
    """Each additive code is ``c1 g1(a) + c2 g2(a)``: two basis functions of the parameter alone
    (:func:`additive_basis`) with per-entry coefficients, returned here as (c1, c2). code4p:
    (s, A) of ``a s + A g(a)``; code0: (up, dn); code2: (qa, qb)."""
    if code == "code0":
        return up, dn
    with np.errstate(over="ignore"):  # variations near 1e308: not finite, refused by the fit
        if code == "code4p":
            return 0.5 * (up + dn), 0.0625 * (up - dn)
        return 0.5 * (up - dn), 0.5 * (up + dn)


def additive_basis_values(code: str, a: Arr) -> tuple[Arr, Arr]:
    """The values of the basis functions g1, g2 of :func:`additive_coefficients` at ``a`` (any
    shape): summed with the coefficients they equal :func:`code4p`, :func:`code0` and
    :func:`code2`, with the same branches at the boundaries."""
    if code == "code4p":  # s a + A g(a): g = a^2 (15 - 10 a^2 + 3 a^4) on [-1, 1], 8 |a| outside
        a2 = a * a
        return a, np.where(np.abs(a) > 1.0, 8.0 * np.abs(a), a2 * (a2 * (3.0 * a2 - 10.0) + 15.0))
    if code == "code0":  # up max(a, 0) + dn min(a, 0)
        return np.where(a > 0, a, 0.0), np.where(a > 0, 0.0, a)
    gt, lt = a > 1.0, a < -1.0  # code2: qa g1 + qb g2
    return np.where(gt, 2.0 * (a - 1.0), np.where(lt, -2.0 * a, a * a)), np.where(gt, a - 1.0, a)


def additive_basis(code: str, a: Arr) -> tuple[Triple, Triple]:
    """:func:`additive_basis_values` with their first and second derivatives: ((g1, g1', g1''),
    (g2, g2', g2'')). Evaluated once per parameter rather than once per (modifier, bin) entry."""
    g1, g2 = additive_basis_values(code, a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    if code == "code4p":
        a2 = a * a
        out = np.abs(a) > 1.0
        dg = np.where(out, 8.0 * np.sign(a), a * (30.0 + a2 * (18.0 * a2 - 40.0)))
        ddg = np.where(out, 0.0, 30.0 + a2 * (90.0 * a2 - 120.0))
        return (g1, one, zero), (g2, dg, ddg)
    if code == "code0":
        pos = a > 0
        return (g1, pos.astype(float), zero), (g2, (~pos).astype(float), zero)
    gt, lt = a > 1.0, a < -1.0
    d1 = np.where(gt, 2.0, np.where(lt, -2.0, 2.0 * a))
    return (g1, d1, np.where(gt | lt, 0.0, 2.0)), (g2, one, zero)


MULTIPLICATIVE = {"code1": code1, "code4": code4}
ADDITIVE = {"code0": code0, "code2": code2, "code4p": code4p}
