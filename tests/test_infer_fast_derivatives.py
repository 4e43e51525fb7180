"""The fast engine's -ln L derivatives against finite differences, the interpolation codes'
per-parameter basis against the codes, and the remembered last evaluation.

The gradient and Hessian are assembled from per-family blocks (histosys through a
per-parameter basis, normsys, linear factors) gathered by flat indices; these tests hold every
term of that assembly to central differences of -ln L, for every interpolation code, on a
model with every modifier type, at points on every branch of the interpolations.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from heparch.infer.fast import FastBackend, interp
from heparch.infer.fast.likelihood import Likelihood
from heparch.infer.fast.structure import Structure


def every_modifier_model() -> dict[str, Any]:
    """Two channels of three bins: a signal (normfactor POI, normsys, histosys shared with the
    background), a background with two normsys, two histosys, staterror and a shapefactor, and a
    second background with a shapesys and a normfactor."""

    def sample(name: str, data: list[float], modifiers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "data": data, "modifiers": modifiers}

    def hs(name: str, nom: list[float], up: float, dn: float) -> dict[str, Any]:
        return {"name": name, "type": "histosys", "data": {"hi_data": [x * up for x in nom], "lo_data": [x * dn for x in nom]}}

    channels = []
    for c, scale in enumerate((1.0, 1.7)):
        sig, bkg, bkg2 = [2.0 * scale, 3.0, 1.0], [30.0 * scale, 20.0, 12.0], [5.0, 8.0 * scale, 4.0]
        bkg_mods = [
            {"name": "ns_a", "type": "normsys", "data": {"hi": 1.08, "lo": 0.95}},
            {"name": "ns_b", "type": "normsys", "data": {"hi": 1.2, "lo": 0.7}},
            hs("hs_a", bkg, 1.05, 0.97),
            hs("hs_b", bkg, 0.96, 1.02),
            {"name": f"stat_{c}", "type": "staterror", "data": [0.1 * x for x in bkg]},
        ]
        if c == 1:
            bkg_mods.append({"name": "sf", "type": "shapefactor", "data": None})
        channels.append(
            {
                "name": f"CH{c}",
                "samples": [
                    sample(
                        "signal",
                        sig,
                        [
                            {"name": "mu", "type": "normfactor", "data": None},
                            hs("hs_a", sig, 1.1, 0.9),
                            {"name": "ns_a", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
                        ],
                    ),
                    sample("bkg", bkg, bkg_mods),
                    sample(
                        "bkg2",
                        bkg2,
                        [{"name": f"shape_{c}", "type": "shapesys", "data": [0.2 * x for x in bkg2]}, {"name": "k", "type": "normfactor", "data": None}],
                    ),
                ],
            }
        )
    observations = [{"name": "CH0", "data": [40.0, 30.0, 16.0]}, {"name": "CH1", "data": [70.0, 35.0, 19.0]}]
    measurements = [{"name": "meas", "config": {"poi": "mu", "parameters": []}}]
    return {"channels": channels, "observations": observations, "measurements": measurements, "version": "1.0.0"}


def structure() -> Structure:
    return FastBackend().background(every_modifier_model()).model().st


def random_point(st: Structure, seed: int) -> Any:
    """Nuisance parameters on every branch of the interpolations, kept 0.1 away from the kinks
    (0 for code0/code1, +-1 for the others) where one-sided differences disagree."""
    rng = np.random.default_rng(seed)
    x = st.inits.copy()
    for k in range(st.npars):
        if st.fixed[k]:
            continue
        if st.inits[k] == 0.0:  # alpha
            x[k] = rng.choice([-1.0, 1.0]) * rng.choice([rng.uniform(0.1, 0.9), rng.uniform(1.1, 1.6)])
        else:
            x[k] = st.inits[k] * rng.uniform(0.8, 1.25)
    return x


def central_gradient(fn: Any, x: Any, h: float = 1e-6) -> Any:
    out = []
    for k in range(x.size):
        step = h * max(1.0, abs(x[k]))
        xp, xm = x.copy(), x.copy()
        xp[k] += step
        xm[k] -= step
        out.append((fn(xp) - fn(xm)) / (2 * step))
    return np.array(out)


@pytest.mark.parametrize(("normsys", "histosys"), [("code4", "code4p"), ("code1", "code0"), ("code4", "code2"), ("code1", "code4p")])
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_and_hessian_equal_finite_differences(normsys: str, histosys: str, seed: int) -> None:
    st = structure()
    lik = Likelihood(st, normsys=normsys, histosys=histosys)
    x = random_point(st, seed)
    f, g, H = lik.evaluate(x)
    assert H is not None
    assert f == pytest.approx(lik.nll(x), rel=1e-15)
    g_num = central_gradient(lik.nll, x)
    np.testing.assert_allclose(g, g_num, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(g).max())))
    H_num = np.array([central_gradient(lambda y, k=k: lik.evaluate(y, hessian=False)[1][k], x) for k in range(x.size)])
    np.testing.assert_allclose(H, H_num, rtol=1e-4, atol=1e-5 * float(np.abs(H).max()))
    np.testing.assert_allclose(H, H.T, rtol=1e-13, atol=1e-13 * float(np.abs(H).max()))
    assert np.array_equal(lik.evaluate(x, hessian=False)[1], g)


@pytest.mark.parametrize("code", ["code4p", "code0", "code2"])
def test_additive_basis_sums_to_the_interpolation_code(code: str) -> None:
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-3.0, 3.0, 500), [-1.0, 1.0, 0.0, -2.0, 2.0, np.nextafter(1.0, 2.0), np.nextafter(-1.0, -2.0)]])
    up, dn = rng.normal(size=a.size), rng.normal(size=a.size)
    c1, c2 = interp.additive_coefficients(code, up, dn)
    b1, b2 = interp.additive_basis(code, a)
    want = interp.ADDITIVE[code](a, up, dn)
    for k in range(3):  # value, first and second derivative, with the codes' branches at the boundaries
        np.testing.assert_allclose(c1 * b1[k] + c2 * b2[k], want[k], rtol=1e-12, atol=1e-12)
    values = interp.additive_basis_values(code, a)
    assert np.array_equal(values[0], b1[0])
    assert np.array_equal(values[1], b2[0])


def test_the_remembered_evaluation_is_of_the_same_point_and_data() -> None:
    """-ln L at a trial point is remembered for the derivatives that follow; another point, or the
    Asimov copy with its own data (``copy.copy`` then ``set_data``), computes afresh."""
    st = structure()
    lik = Likelihood(st)
    x1, x2 = random_point(st, 0), random_point(st, 1)
    fresh = Likelihood(st)
    assert lik.nll(x1) == fresh.nll(x1)
    f2, g2, _ = lik.evaluate(x2)
    assert f2 == Likelihood(st).nll(x2)
    assert np.array_equal(g2, Likelihood(st).evaluate(x2)[1])
    lik.nll(x1)
    asimov = copy.copy(lik)
    main = lik.expected_main(x2)
    g_aux, p_aux = lik.expected_aux(x2)
    asimov.set_data(main, g_aux, p_aux)
    other = Likelihood(st)
    other.set_data(main, g_aux, p_aux)
    assert asimov.nll(x1) == other.nll(x1) != lik.nll(x1)
    x3 = x1.copy()
    lik.nll(x3)
    x3[0] += 0.25  # the caller changes its array after the call: the remembered point is a copy
    assert lik.nll(x3) == fresh.nll(x3)
