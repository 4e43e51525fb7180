"""Golden pyhf values for the fast engine on generated models (tests/test_infer_fast_conditioning.py).

Run from the repository root (pyhf is slow on these models: minutes to hours per case):

    .venv/bin/python tests/golden/make_fast_golden.py [--only NAME ...]

Writes (merging into) ``tests/golden/fast_generated.json``: for each case, the generator in
``tests/fast_models.py`` and its arguments, and pyhf 0.7.6's
``hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)`` with the numpy
backend and the scipy optimizer (SLSQP) at tolerance 1e-10, with the wall time and software
versions; each case records its own backend and optimizer.

``many_normsys`` (3,301 parameters) is out of SLSQP's reach (its quadratic subproblem is dense:
O(n^3) per iteration) and of finite-difference gradients (3,301 evaluations per gradient), so
it is computed with pyhf's JAX backend (exact gradients, ``do_grad``; jax installed into the
venv that runs this script, not a project dependency) and scipy's L-BFGS-B, the fixed
parameters (the POI in the fits at fixed mu) pinned by equal bounds (pyhf passes them to SLSQP
as equality constraints, which L-BFGS-B does not take), ``ftol`` 1e-15 and ``gtol`` 1e-9
(the projected gradient's largest component); an ABNORMAL end of its line search (rounding stops
progress) restarts it from where it stopped, up to 3 times, then is accepted when the projected
gradient is below 1e-4 (said on stderr; the stored many_normsys run ended normally).
``--only many_histosys --lbfgsb`` checks this optimizer against the SLSQP value of a case SLSQP
can compute, stored under ``lbfgsb_crosscheck`` (on many_histosys: 2.2e-7 relative at most, one
fit accepted at the precision limit with projected gradient 4.9e-5).

``tau_limit`` is ``tiny_tau_model`` with the 0.001 uncertainty set to 0, i.e. that gamma fixed at
1 (pyhf fixes shapesys bins with zero uncertainty): pyhf cannot compute the tau ~ 1.9e11 model
itself in double precision (its Poisson constraint is a difference of terms of size 5e12, so
its -ln L carries noise of ~1e-3 and its finite-difference gradients are meaningless; its
fits stop up to 0.02 above the minimum, measured). A gamma with sigma 2.3e-6 is fixed for all
purposes, so the two models' CLs agree far below the test tolerance; the test checks that
heparch's values on both agree, and both with this pyhf value.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import fast_models  # noqa: E402  (tests/fast_models.py, put on the path above)

OUT = HERE / "fast_generated.json"
TOLERANCE = 1e-10

#: case -> (generator, keyword arguments, edit applied to the spec or None)
CASES: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "tau_limit": ("tiny_tau_model", {"seed": 0}, "shapesys_fakes[0] uncertainty 0.001 -> 0 (gamma fixed at 1)"),
    "many_histosys": ("many_histosys_model", {"seed": 0}, None),
    "many_normsys": ("many_normsys_model", {"seed": 0}, None),
}
#: cases computed with the JAX backend and L-BFGS-B (see above)
LBFGSB_CASES = frozenset({"many_normsys"})
#: L-BFGS-B's ABNORMAL end (no decrease in its line search), after 3 restarts from where it stopped,
#: is accepted when the largest projected gradient component is below this
ABNORMAL_GRADIENT = 1e-4
LBFGSB_OPTIONS = {"maxiter": 100000, "maxfun": 200000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 30}


def lbfgsb_optimizer() -> Any:
    """pyhf's scipy optimizer running L-BFGS-B, fixed parameters pinned by equal bounds."""
    import numpy as np
    import pyhf
    import scipy.optimize

    class PinnedLBFGSB(pyhf.optimize.scipy_optimizer):  # type: ignore[misc, name-defined]
        def _minimize(self, minimizer: Any, func: Any, x0: Any, do_grad: bool = False, bounds: Any = None, fixed_vals: Any = None, options: Any = None) -> Any:
            bounds = [tuple(b) for b in bounds]
            for idx, value in fixed_vals or []:
                bounds[idx] = (value, value)
                x0[idx] = value
            res = scipy.optimize.minimize(func, x0, method="L-BFGS-B", jac=do_grad, bounds=bounds, options=dict(LBFGSB_OPTIONS))
            for _ in range(3):  # ABNORMAL: its line search found no decrease (ftol below what rounding allows)
                if res.success or res.status != 2:
                    break
                res = scipy.optimize.minimize(func, res.x, method="L-BFGS-B", jac=do_grad, bounds=bounds, options=dict(LBFGSB_OPTIONS))
            if not res.success and res.status == 2:
                lo, hi = np.array(bounds, dtype=float).T
                g = np.where((res.x <= lo) & (res.jac > 0) | (res.x >= hi) & (res.jac < 0), 0.0, res.jac)
                if float(np.max(np.abs(g))) < ABNORMAL_GRADIENT:
                    print(f"L-BFGS-B stopped at the precision limit (projected gradient {np.max(np.abs(g)):.2g}): accepted", file=sys.stderr)
                    res.success = True
            return res

    return PinnedLBFGSB()


def configure(name: str, lbfgsb: bool) -> dict[str, str]:
    """Set pyhf's backend for case ``name``; returns what was set (recorded with the case)."""
    import pyhf

    if lbfgsb or name in LBFGSB_CASES:
        pyhf.set_backend("jax", lbfgsb_optimizer(), precision="64b")
        return {"backend": "jax (64-bit, exact gradients)", "optimizer": f"scipy L-BFGS-B {LBFGSB_OPTIONS}, fixed parameters pinned by bounds"}
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=TOLERANCE))
    return {"backend": "numpy (finite-difference gradients)", "optimizer": f"scipy SLSQP, tolerance {TOLERANCE:g}"}


def build(name: str) -> dict[str, Any]:
    """The workspace of case ``name`` (also used by the tests)."""
    generator, kwargs, edit = CASES[name]
    spec = getattr(fast_models, generator)(**kwargs)
    if edit is not None and name == "tau_limit":
        spec["channels"][0]["samples"][2]["modifiers"][0]["data"][0] = 0.0
    return spec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=sorted(CASES))
    ap.add_argument("--lbfgsb", action="store_true", help="every case with JAX and L-BFGS-B (printed, not stored: a cross-check)")
    args = ap.parse_args(argv)

    import numpy as np
    import pyhf
    import scipy

    doc = json.loads(OUT.read_text()) if OUT.exists() else {"cases": {}}
    doc["about"] = __doc__
    doc["software"] = {"pyhf": pyhf.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()}
    doc["settings"] = {
        "optimizer": f"scipy SLSQP, tolerance {TOLERANCE:g} (a case naming its own optimizer: that one)",
        "backend": "numpy (a case naming its own backend: that one)",
        "test_stat": "qtilde",
        "mu": 1.0,
        "calc_base_dist": "normal",
    }
    for name in args.only:
        how = configure(name, args.lbfgsb)
        spec = build(name)
        ws = pyhf.Workspace(spec)
        model = ws.model()
        t0 = time.perf_counter()
        obs, exp = pyhf.infer.hypotest(1.0, ws.data(model), model, test_stat="qtilde", return_expected_set=True)
        seconds = round(time.perf_counter() - t0, 1)
        if args.lbfgsb and name not in LBFGSB_CASES:  # the cross-check: stored beside the SLSQP value
            got = [float(obs), *(float(e) for e in exp)]
            stored = doc["cases"][name]
            want = [stored["CLs_obs"], *stored["CLs_exp"]]
            doc.setdefault("lbfgsb_crosscheck", {})[name] = {
                **how,
                "CLs_obs": got[0],
                "CLs_exp": got[1:],
                "max_relative_difference_to_the_slsqp_value": max(abs(g - w) / abs(w) for g, w in zip(got, want, strict=True)),
                "pyhf_seconds": seconds,
            }
            print(name, doc["lbfgsb_crosscheck"][name], file=sys.stderr, flush=True)
            OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            continue
        generator, kwargs, edit = CASES[name]
        doc["cases"][name] = {
            "generator": f"fast_models.{generator}",
            "kwargs": kwargs,
            "edit": edit,
            "parameters": len(model.config.par_names),
            "CLs_obs": float(obs),
            "CLs_exp": [float(e) for e in exp],
            "pyhf_seconds": seconds,
            **({"jax": version("jax")} if name in LBFGSB_CASES else {}),
            **how,
        }
        print(name, doc["cases"][name], file=sys.stderr, flush=True)
        OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
