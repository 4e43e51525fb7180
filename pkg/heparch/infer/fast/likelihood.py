"""-ln L of a compiled model with its analytic gradient and Hessian.

    -ln L = sum_b [lam_b - n_b ln lam_b + lnGamma(n_b + 1)]                  (main, continuous Poisson)
          + sum_g [(theta_g - a_g)^2 / (2 sigma_g^2) + ln sigma_g + ln(2 pi)/2]  (Gaussian constraints)
          + sum_p [tau_p theta_p - a_p ln(tau_p theta_p) + lnGamma(a_p + 1)]  (Poisson constraints)

which is exactly pyhf 0.7.6's ``-model.logpdf(pars, data)``. Each cell's rate is
r = S * N * L (histosys sum, normsys product, product of linear factors); derivatives of
S and log N are sums of one-parameter terms, derivatives of L are products of the other
factors (computed by prefix/suffix products, so a factor at exactly zero, such as the POI
at mu = 0, is handled exactly).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.special import gammaln, xlogy

from heparch.infer.fast import interp
from heparch.infer.fast.structure import Structure

Arr = Any
LOG_2PI_HALF = 0.5 * np.log(2 * np.pi)
#: from this many parameters, a Hessian with < 10% nonzero entries is held as a sparse matrix
SPARSE_FROM = 1000


def _u_minus_log1p(u: Arr) -> Arr:
    """u - ln(1 + u) to full relative precision, also where |u| is tiny (a Taylor series there)."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 0.1
    us = np.where(small, u, 0.0)
    series = np.zeros_like(us)
    for k in range(18, 1, -1):  # u^2/2 - u^3/3 + ... : 17 terms, rel. error < 1e-17 at |u| = 0.1
        series = us * (series + (1.0 if k % 2 == 0 else -1.0) / k)
    series *= us
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = u - np.log1p(u)
    return np.where(small, series, direct)


def poisson_deviance(rate: Arr, aux: Arr) -> Arr:
    """rate - aux ln(rate) - poisson_offset(aux): the Poisson constraint term minus a constant,
    written as ``aux (x - 1 - ln x)`` with x = rate / aux. The plain form sums terms of size
    aux ln(aux) ~ 5e12 for a shapesys with tau ~ 1.9e11 (an absolute uncertainty of 0.001 on
    435) to a result of order 1, losing every digit a fit needs; this form keeps them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = aux > 0
        safe = np.where(pos, aux, 1.0)
        u = rate / safe - 1.0
        dev = np.where(pos, safe * _u_minus_log1p(u), rate)
    return np.where(rate > 0, dev, np.where((rate == 0) & ~pos, 0.0, np.nan))


def poisson_deviance_slope(theta: Arr, tau: Arr, aux: Arr) -> Arr:
    """d/dtheta of :func:`poisson_deviance` at rate = tau theta: tau - aux / theta, computed as
    aux (x - 1) / theta (x = tau theta / aux) so that it does not cancel for large tau."""
    pos = aux > 0
    safe = np.where(pos, aux, 1.0)
    return np.where(pos, safe * (tau * theta / safe - 1.0) / theta, tau)


def poisson_offset(aux: Arr) -> Arr:
    """aux - aux ln(aux) + lnGamma(aux + 1), the constant that :func:`poisson_deviance` leaves out
    (pyhf's term is their sum). For large aux, Stirling's series: 0.5 ln(2 pi aux) + 1/(12 aux)
    - 1/(360 aux^3), where the plain form would cancel ~1e12-sized terms."""
    aux = np.asarray(aux, dtype=float)
    big = aux > 1e4
    a = np.where(big, aux, 1e4)
    stirling = 0.5 * np.log(2 * np.pi * a) + 1.0 / (12.0 * a) - 1.0 / (360.0 * a**3)
    b = np.where(big, 1.0, aux)
    plain = b - xlogy(b, b) + gammaln(b + 1.0)
    return np.where(big, stirling, plain)


class Likelihood:
    """Evaluates -ln L, its gradient and Hessian for one structure and one dataset."""

    def __init__(self, st: Structure, *, normsys: str = "code4", histosys: str = "code4p") -> None:
        self.st = st
        self.P = st.npars
        self.C = int(st.nominal.size)
        self.B = int(st.observed.size)
        self._mul = interp.MULTIPLICATIVE[normsys]
        self.codes = (normsys, histosys)  # the interpolation codes, for :meth:`expected_main_many`
        self._many: tuple[Arr, ...] | None = None  # its matrices, built on first use
        self._coef = interp.code4_coefficients(st.n_hi, st.n_lo) if normsys == "code4" else None
        self.R = int(st.nrows)
        self._Ph, h_loc = np.unique(st.h_par, return_inverse=True)
        self._Pn, n_loc = np.unique(st.n_par, return_inverse=True)
        self._h_loc = h_loc.reshape(-1)
        self._h_flat = st.h_cell * self._Ph.size + self._h_loc
        # histosys: coefficients of the two basis functions per entry, and as (C, Ph) matrices
        # for dense models (built on first use): S = nominal + H1 g1(a) + H2 g2(a)
        self._h_coef = interp.additive_coefficients(histosys, st.h_up, st.h_dn)
        self._h_mats: tuple[Arr, Arr] | None = None
        self._n_flat = st.n_row * self._Pn.size + n_loc.reshape(-1)
        lin = st.lin_slots
        self._Pl = np.unique(lin[lin < self.P])
        lookup = np.full(self.P + 1, self._Pl.size, dtype=np.int64)
        lookup[self._Pl] = np.arange(self._Pl.size)
        self._m = lin.shape[1]
        self._l_flat = (np.arange(self.C)[:, None] * (self._Pl.size + 1) + lookup[lin]).ravel()
        self._pairs = list(itertools.combinations(range(self._m), 2))
        if self._pairs:
            self._index_pairs()
        self._index_dense_terms()
        # bin summation matrix (B, C)
        self._binmat = np.zeros((self.B, self.C))
        self._binmat[st.cell_bin, np.arange(self.C)] = 1.0
        #: the Hessian as a sparse matrix (many parameters, few of them in each bin), else dense
        self.sparse = False
        if self.P >= SPARSE_FROM and self._hessian_density() < 0.1:
            self.use_sparse()
        self.set_data(st.observed, st.g_aux, st.p_aux)

    def _flat(self, a: Arr, b: Arr) -> tuple[Arr, Arr]:
        """The flat indices of the (P, P) entries (a_i, b_j) and of their transposes (b_j, a_i)."""
        P = self.P
        return (a[:, None] * P + b[None, :]).ravel(), (a[:, None] + b[None, :] * P).ravel()

    def _index_pairs(self) -> None:
        """For every pair of a cell's linear-factor slots: the parameters (or P for none) in the
        pair, the slots the product of the others keeps, and the pair's flat Hessian indices."""
        m, st = self._m, self.st
        ii = np.array([p[0] for p in self._pairs])
        jj = np.array([p[1] for p in self._pairs])
        self._pair_i = st.lin_slots[:, ii]  # (C, npairs)
        self._pair_j = st.lin_slots[:, jj]
        mask = np.ones((len(self._pairs), m), dtype=bool)
        for k, (i, j) in enumerate(self._pairs):
            mask[k, i] = mask[k, j] = False
        self._pair_keep = mask
        valid = (self._pair_i < self.P) & (self._pair_j < self.P)
        self._pair_valid = valid
        self._pair_flat_ij = (self._pair_i * self.P + self._pair_j)[valid]
        self._pair_flat_ji = (self._pair_j * self.P + self._pair_i)[valid]

    def _index_dense_terms(self) -> None:
        """Dense models: the Jacobian's columns by family (histosys, normsys, linear factors) and the
        Hessian's terms besides J^T W J (diagonal, normsys pairs, cross-family products, pairs of
        linear factors), each gathered by one bincount over these flat indices."""
        P, flat = self.P, self._flat
        self._j_idx = np.concatenate([flat(np.arange(self.B), fam)[0] for fam in (self._Ph, self._Pn, self._Pl)])
        cross = (*flat(self._Ph, self._Pn), *flat(self._Ph, self._Pl), *flat(self._Pn, self._Pl))
        sym = [np.arange(P) * (P + 1), flat(self._Pn, self._Pn)[0], *cross]
        self._sym_idx = np.concatenate(sym + ([self._pair_flat_ij, self._pair_flat_ji] if self._pairs else []))

    def use_sparse(self) -> None:
        """Hold the Hessian as a sparse matrix (chosen by the constructor for models with many
        parameters and few of them in each bin; callable on any model, as the tests do).
        Builds the index arrays of the sparse derivatives: every (normsys entry, cell of its
        row) pair, and every (cell, linear-factor slot) that names a parameter."""
        self.sparse = True
        st = self.st
        order = np.argsort(st.cell_row, kind="stable")
        count = np.bincount(st.cell_row, minlength=self.R)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        reps = count[st.n_row]
        self._ne = np.repeat(np.arange(st.n_row.size), reps)
        offset = np.arange(self._ne.size) - np.repeat(np.cumsum(reps) - reps, reps)
        self._nc = order[first[st.n_row[self._ne]] + offset]
        self._lc, self._lk = np.nonzero(st.lin_slots < self.P)
        self._lp = st.lin_slots[self._lc, self._lk]

    def _hessian_density(self) -> float:
        """The fraction of the Hessian's entries that can be nonzero: pairs of parameters that
        act on one bin (every term of the Hessian couples only those)."""
        import scipy.sparse as sp  # scipy.sparse (~0.4 s): only for a sparse model

        st = self.st
        P, C = self.P, self.C
        ones = np.ones
        cells = sp.coo_array((ones(st.h_cell.size), (st.h_cell, st.h_par)), shape=(C, P)).tocsr()
        cell_row = sp.csr_array((ones(C), (np.arange(C), st.cell_row)), shape=(C, self.R))
        cells += cell_row @ sp.csr_array((ones(st.n_par.size), (st.n_row, st.n_par)), shape=(self.R, P))
        lin_c, lin_k = np.nonzero(st.lin_slots < P)
        cells += sp.csr_array((ones(lin_c.size), (lin_c, st.lin_slots[lin_c, lin_k])), shape=(C, P))
        bins = sp.csr_array(self._binmat) @ cells
        bins.data[:] = 1.0
        return float((bins.T @ bins).nnz + P) / float(P * P)

    def set_data(self, main: Arr, g_aux: Arr, p_aux: Arr) -> None:
        self._memo: tuple[Arr, tuple[Arr, ...], Arr, float] | None = None  # see :meth:`_value`
        self.n = np.asarray(main, dtype=float)
        self.g_aux = np.asarray(g_aux, dtype=float)
        self.p_aux = np.asarray(p_aux, dtype=float)
        st = self.st
        self._const = float(np.sum(gammaln(self.n + 1.0)) + np.sum(np.log(st.g_sigma)) + LOG_2PI_HALF * st.g_idx.size + np.sum(poisson_offset(self.p_aux)))

    # ------------------------------------------------------------------ rates
    def _histosys_matrices(self) -> tuple[Arr, Arr]:
        if self._h_mats is None:
            size, shape = self.C * self._Ph.size, (self.C, self._Ph.size)
            c1, c2 = self._h_coef
            self._h_mats = (
                np.bincount(self._h_flat, weights=c1, minlength=size).reshape(shape),
                np.bincount(self._h_flat, weights=c2, minlength=size).reshape(shape),
            )
        return self._h_mats

    def _histosys_entries(self, basis: Arr, k: int) -> Arr:
        """The k-th derivative (0: value) of every histosys entry, from the per-parameter basis."""
        c1, c2 = self._h_coef
        return c1 * basis[0][k][self._h_loc] + c2 * basis[1][k][self._h_loc]

    def _parts(self, theta: Arr) -> tuple[Arr, ...]:
        st = self.st
        hb = interp.additive_basis(self.codes[1], theta[self._Ph])
        if self.sparse:
            S = st.nominal + np.bincount(st.h_cell, weights=self._histosys_entries(hb, 0), minlength=self.C)
        else:
            H1, H2 = self._histosys_matrices()
            S = st.nominal + H1 @ hb[0][0] + H2 @ hb[1][0]
        b = theta[st.n_par]
        nv, nd1, nd2 = self._mul(b, st.n_hi, st.n_lo, self._coef)
        with np.errstate(divide="ignore", invalid="ignore"):
            logn = np.log(nv)
        # a normsys factor <= 0 (code4's polynomial dips below 0 for very asymmetric hi/lo)
        # puts the point outside the domain (NaN): pyhf's fits do not go there either (checked on
        # ATLAS-SUSY-2018-04 SRcombined); a minimum on that border fails the convergence check
        N = np.exp(np.bincount(st.n_row, weights=logn, minlength=self.R))[st.cell_row]
        ext = np.append(theta, 1.0)
        V = ext[st.lin_slots]
        L = np.prod(V, axis=1)
        return S, N, L, V, hb, (nv, nd1, nd2)

    def expected_main(self, theta: Arr) -> Arr:
        S, N, L, *_ = self._parts(theta)
        return np.bincount(self.st.cell_bin, weights=S * N * L, minlength=self.B)

    def expected_main_many(self, thetas: Arr) -> Arr:
        """:meth:`expected_main` at every row of ``thetas`` (shape (K, P)): rates of shape (K, B).

        Row by row it equals :meth:`expected_main` up to rounding (the sums are taken in
        another order). Each histosys code is a sum of two basis functions of the parameter
        with coefficients per cell (code4p: ``s a + A g(a)``; code0: ``up max(a, 0) + dn
        min(a, 0)``; code2: ``qa g(a) + qb h(a)``), so the histosys part of all cells is two
        (K, P_h) x (P_h, C) products; normsys factors are evaluated per entry (K x entries)
        and their logarithms summed per sample by a sparse product. Memory is a few arrays
        of K x (normsys entries) and K x (cells x linear factors) numbers: evaluate large
        K in chunks.
        """
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        st = self.st
        h1, h2, ph, n_sum, n_log_hi, n_log_lo, bin_sum = self._many_matrices()
        normsys, histosys = self.codes
        g1, g2 = interp.additive_basis_values(histosys, thetas[:, ph])
        S = st.nominal + np.asarray(h1.T @ g1.T).T + np.asarray(h2.T @ g2.T).T
        b = thetas[:, st.n_par]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if normsys == "code4":  # hi^a for a >= 1, lo^-a for a <= -1, the polynomial between
                assert self._coef is not None
                a1, a2_, a3, a4, a5, a6 = self._coef
                poly = 1.0 + b * (a1 + b * (a2_ + b * (a3 + b * (a4 + b * (a5 + b * a6)))))
                logn = np.where(b >= 1.0, b * n_log_hi, np.where(b <= -1.0, -b * n_log_lo, np.log(poly)))
            else:  # code1: hi^a for a > 0, lo^-a otherwise
                logn = np.where(b > 0, b * n_log_hi, -b * n_log_lo)
            N = np.exp(np.asarray(n_sum.T @ logn.T).T)[:, st.cell_row]
        ext = np.concatenate([thetas, np.ones((thetas.shape[0], 1))], axis=1)
        L = np.prod(ext[:, st.lin_slots], axis=2)
        return np.asarray(bin_sum.T @ (S * N * L).T).T

    def _many_matrices(self) -> tuple[Arr, ...]:
        if self._many is None:
            import scipy.sparse  # scipy.sparse (~0.4 s): only for a sparse model

            st = self.st
            ph = self._Ph
            loc = self._h_loc
            c1, c2 = self._h_coef
            shape = (ph.size, self.C)
            h1 = scipy.sparse.csr_array((c1, (loc, st.h_cell)), shape=shape)
            h2 = scipy.sparse.csr_array((c2, (loc, st.h_cell)), shape=shape)
            ne = st.n_par.size
            n_sum = scipy.sparse.csr_array((np.ones(ne), (np.arange(ne), st.n_row)), shape=(ne, self.R))
            with np.errstate(divide="ignore"):
                n_log_hi, n_log_lo = np.log(st.n_hi), np.log(st.n_lo)
            bin_sum = scipy.sparse.csr_array((np.ones(self.C), (np.arange(self.C), st.cell_bin)), shape=(self.C, self.B))
            self._many = (h1, h2, ph, n_sum, n_log_hi, n_log_lo, bin_sum)
        return self._many

    def expected_aux(self, theta: Arr) -> tuple[Arr, Arr]:
        st = self.st
        return theta[st.g_idx].copy(), theta[st.p_idx] * st.p_tau

    # ------------------------------------------------------------------ -ln L
    def nll(self, theta: Arr) -> float:
        return self._value(theta)[2]

    def _value(self, theta: Arr) -> tuple[tuple[Arr, ...], Arr, float]:
        """(parts, bin rates, -ln L) at ``theta``, remembered for the last ``theta`` only: the
        minimiser's line search asks for the value at a trial point first and for the
        derivatives only when the point is accepted, which then reuse the rates."""
        memo = self._memo
        if memo is not None and np.array_equal(memo[0], theta):
            return memo[1], memo[2], memo[3]
        parts = self._parts(theta)
        S, N, L = parts[:3]
        lam = np.bincount(self.st.cell_bin, weights=S * N * L, minlength=self.B)
        f = float("nan") if np.any(parts[5][0] <= 0) else self._total(theta, lam)
        self._memo = (np.array(theta, dtype=float), parts, lam, f)
        return parts, lam, f

    def _total(self, theta: Arr, lam: Arr) -> float:
        st = self.st
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # rates near 1e308: not finite, refused by the fit
            main = np.sum(lam - xlogy(self.n, lam))
            z = (theta[st.g_idx] - self.g_aux) / st.g_sigma
            pois = np.sum(poisson_deviance(theta[st.p_idx] * st.p_tau, self.p_aux)) if st.p_idx.size else 0.0
        # like pyhf, a negative rate is allowed where nothing is observed (xlogy(0, lam) = 0)
        # and gives NaN elsewhere
        return float(main + 0.5 * np.dot(z, z) + pois + self._const)

    def evaluate(self, theta: Arr, *, hessian: bool = True) -> tuple[float, Arr, Arr | None]:
        """(-ln L, gradient, Hessian or None) at ``theta`` (dense, or sparse for :attr:`sparse`)."""
        parts, lam, f = self._value(theta)
        if not np.isfinite(f):
            return float("nan"), np.full(self.P, np.nan), None
        with np.errstate(divide="ignore", invalid="ignore"):
            nl = self.n / lam
        nl = np.where(self.n == 0, 0.0, nl)
        w = (1.0 - nl)[self.st.cell_bin]  # d(-lnL)/d r_c
        if self.sparse:
            grad, H = self._sparse_derivatives(theta, lam, w, parts, hessian)
        else:
            grad, H = self._dense_derivatives(theta, parts, lam, nl, w, hessian)
        return f, grad, H

    def _leave_one_out(self, V: Arr) -> Arr:
        """Each cell's product of its linear factors but one, for every slot (prefix and suffix
        products: exact where a factor is 0)."""
        C, m = self.C, self._m
        pre = np.ones((C, m + 1))
        suf = np.ones((C, m + 1))
        pre[:, 1:] = np.cumprod(V, axis=1)
        suf[:, :-1] = np.cumprod(V[:, ::-1], axis=1)[:, ::-1]
        return pre[:, :m] * suf[:, 1:]

    def _constraint_gradient(self, theta: Arr, grad: Arr) -> None:
        st = self.st
        np.add.at(grad, st.g_idx, (theta[st.g_idx] - self.g_aux) / st.g_sigma**2)
        if st.p_idx.size:
            np.add.at(grad, st.p_idx, poisson_deviance_slope(theta[st.p_idx], st.p_tau, self.p_aux))

    def _dense_derivatives(self, theta: Arr, parts: tuple[Arr, ...], lam: Arr, nl: Arr, w: Arr, hessian: bool) -> tuple[Arr, Arr | None]:
        """Gradient and dense Hessian. The cells' rate derivatives are held per family on the
        parameters it touches (histosys ``Ph``, normsys ``Pn``, linear factors ``Pl``), summed
        into bins before they are scattered into parameters, and every Hessian term besides
        J^T W J is gathered by one bincount (few, larger numpy calls: their per-call overhead
        is most of the cost at ~100 parameters)."""
        st = self.st
        P, B = self.P, self.B
        S, N, L, V, hb, (nv, nd1, nd2) = parts
        r = S * N * L
        H1, H2 = self._histosys_matrices()
        DS = H1 * hb[0][1] + H2 * hb[1][1]
        gn1 = nd1 / nv
        nn, nq = self._Pn.size, self._Pl.size
        GNr = np.bincount(self._n_flat, weights=gn1, minlength=self.R * nn).reshape(self.R, nn)
        GN = GNr[st.cell_row]
        DL = np.bincount(self._l_flat, weights=self._leave_one_out(V).ravel(), minlength=self.C * (nq + 1)).reshape(self.C, nq + 1)[:, :nq]
        per_bin = [self._binmat @ X for X in (DS * (N * L)[:, None], GN * r[:, None], DL * (S * N)[:, None])]
        J = np.bincount(self._j_idx, weights=np.concatenate([X.ravel() for X in per_bin]), minlength=B * P).reshape(B, P)
        grad = (1.0 - nl) @ J
        self._constraint_gradient(theta, grad)
        if not hessian:
            return grad, None
        self._jacobian = (theta.copy(), J, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            wl = np.where(self.n == 0, 0.0, self.n / lam**2)
        H = J.T @ (J * wl[:, None])
        diag, wr_row = self._hessian_diagonal(theta, w, S, N, L, r, hb, nv, nd1, nd2, gn1)
        DN = GN * N[:, None]
        terms = [diag, (GNr.T @ (GNr * wr_row[:, None])).ravel()]
        for A, Bw in ((DS, DN * (w * L)[:, None]), (DS, DL * (w * N)[:, None]), (DN, DL * (w * S)[:, None])):
            X = (A.T @ Bw).ravel()
            terms += [X, X]
        if self._pairs:
            pv = self._pair_values(V, w * S * N)
            terms += [pv, pv]
        H += np.bincount(self._sym_idx, weights=np.concatenate(terms), minlength=P * P).reshape(P, P)
        return grad, H

    def fisher(self, theta: Arr) -> Arr:
        """The expected Hessian (Fisher information) at ``theta``: J^T diag(1/lambda) J over the
        bins plus the constraints' Hessian; positive semi-definite everywhere, which makes it
        the Newton minimiser's matrix where the exact Hessian is indefinite (Fisher scoring).
        Reuses the Jacobian of the last :meth:`evaluate` with the Hessian at ``theta``."""
        cached = getattr(self, "_jacobian", None)
        if cached is None or not np.array_equal(cached[0], theta):
            self.evaluate(theta)
            cached = self._jacobian
        _, J, lam = cached
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(lam > 0, 1.0 / lam, 0.0)
        st = self.st
        diag = np.zeros(self.P)
        diag[st.g_idx] += 1.0 / st.g_sigma**2
        np.add.at(diag, st.p_idx, self.p_aux / theta[st.p_idx] ** 2)
        if self.sparse:
            import scipy.sparse as sp  # scipy.sparse (~0.4 s): only for a sparse model

            return sp.csr_array(J.T @ (J * inv[:, None]) + sp.diags_array(diag))
        H = J.T @ (J * inv[:, None])
        H[np.diag_indices(self.P)] += diag
        return H

    def _hessian_diagonal(self, theta: Arr, w: Arr, S: Arr, N: Arr, L: Arr, r: Arr, hb: Arr, nv: Arr, nd1: Arr, nd2: Arr, gn1: Arr) -> tuple[Arr, Arr]:
        """The Hessian's diagonal terms (second derivatives of one-parameter factors, weighted by
        w, and the constraints) and the per-row weights w r of the normsys terms."""
        st = self.st
        P = self.P
        diag = np.zeros(P)
        wnl = w * N * L
        if self.sparse:
            diag[self._Ph] = np.bincount(self._h_loc, weights=wnl[st.h_cell] * self._histosys_entries(hb, 2), minlength=self._Ph.size)
        else:
            H1, H2 = self._histosys_matrices()
            diag[self._Ph] = (wnl @ H1) * hb[0][2] + (wnl @ H2) * hb[1][2]
        hn = nd2 / nv - gn1**2
        wr_row = np.bincount(st.cell_row, weights=w * r, minlength=self.R)
        diag += np.bincount(st.n_par, weights=wr_row[st.n_row] * hn, minlength=P)
        diag[st.g_idx] += 1.0 / st.g_sigma**2
        np.add.at(diag, st.p_idx, self.p_aux / theta[st.p_idx] ** 2)
        return diag, wr_row

    def _pair_values(self, V: Arr, wsn: Arr) -> Arr:
        """Second derivatives of the cells' products of linear factors, one per valid pair."""
        keep = self._pair_keep  # (npairs, m)
        prods = np.prod(np.where(keep[None, :, :], V[:, None, :], 1.0), axis=2)  # (C, npairs)
        return (prods * wsn[:, None])[self._pair_valid]

    def _sparse_derivatives(self, theta: Arr, lam: Arr, w: Arr, parts: tuple[Arr, ...], hessian: bool) -> tuple[Arr, Arr | None]:
        """Gradient and Hessian (a scipy CSR matrix) for models with many parameters and few bins
        (``sparse``): the same terms as the dense :meth:`evaluate`, built from the nonzero
        derivatives of the cell rates directly (histosys entries, (normsys entry, cell) pairs,
        linear-factor slots), so the cost follows their number, not cells x parameters."""
        import scipy.sparse as sp  # scipy.sparse (~0.4 s): only for a sparse model

        S, N, L, V, hb, (nv, nd1, nd2) = parts
        hd1 = self._histosys_entries(hb, 1)
        st = self.st
        P, C = self.P, self.C
        r = S * N * L
        gn1 = nd1 / nv
        ne, nc, lc, lp = self._ne, self._nc, self._lc, self._lp
        loo = self._leave_one_out(V)[lc, self._lk]
        # d r_c / d theta_p, entry by entry: (cell, parameter, value)
        cells = (st.h_cell, nc, lc)
        pars = (st.h_par, st.n_par[ne], lp)
        vals = (hd1 * (N * L)[st.h_cell], gn1[ne] * r[nc], loo * (S * N)[lc])
        grad = np.zeros(P)
        for c_, p_, v_ in zip(cells, pars, vals, strict=True):
            grad += np.bincount(p_, weights=w[c_] * v_, minlength=P)
        self._constraint_gradient(theta, grad)
        if not hessian:
            return grad, None
        bins = st.cell_bin[np.concatenate(cells)]
        J = sp.csr_array((np.concatenate(vals), (bins, np.concatenate(pars))), shape=(self.B, P))
        self._jacobian = (theta.copy(), J, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            wl = np.where(self.n == 0, 0.0, self.n / lam**2)
        blocks = [sp.coo_array(J.T @ (J * wl[:, None]))]
        diag, wr_row = self._hessian_diagonal(theta, w, S, N, L, r, hb, nv, nd1, nd2, gn1)
        blocks.append(sp.coo_array((diag, (np.arange(P), np.arange(P))), shape=(P, P)))
        G = sp.csr_array((gn1, (st.n_row, st.n_par)), shape=(self.R, P))
        blocks.append(sp.coo_array(G.T @ (G * wr_row[:, None])))

        def per_cell(c_: Arr, p_: Arr, v_: Arr) -> Arr:
            return sp.csr_array((v_, (c_, p_)), shape=(C, P))

        DS = per_cell(st.h_cell, st.h_par, hd1)
        DN = per_cell(nc, st.n_par[ne], gn1[ne] * N[nc])
        DL = per_cell(lc, lp, loo)
        for A, Bw in ((DS, DN * (w * L)[:, None]), (DS, DL * (w * N)[:, None]), (DN, DL * (w * S)[:, None])):
            X = sp.coo_array(A.T @ sp.csr_array(Bw))
            blocks += [X, X.T]
        if self._pairs:
            pv = self._pair_values(V, w * S * N)
            ij = (self._pair_i[self._pair_valid], self._pair_j[self._pair_valid])
            blocks += [sp.coo_array((pv, ij), shape=(P, P)), sp.coo_array((pv, ij[::-1]), shape=(P, P))]
        rows = np.concatenate([b.coords[0] for b in blocks])
        cols = np.concatenate([b.coords[1] for b in blocks])
        data = np.concatenate([b.data for b in blocks])
        return grad, sp.csr_array((data, (rows, cols)), shape=(P, P))
