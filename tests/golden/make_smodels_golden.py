"""Golden pyhf values for the fast backend's accuracy tests (tests/test_infer_fast.py).

Run from the repository root (takes a while: pyhf is slow on the 1Lbb upper limits):

    /work/venv/bin/python tests/golden/make_smodels_golden.py [--skip-upper-limits]

Writes ``tests/golden/smodels_cls.json`` with

* ``smodels``: CLs (observed and expected -2..+2 sigma) at mu = 1 from
  ``pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)``
  for a signal injected into a named subset of the SModelS background-only workspaces
  (../shared/data/smodels-db-atlas-pyhf-bkgonly). The injection is an RFC 6902 patch
  adding to every channel a sample ``signal`` whose yields are ``fraction`` times the
  channel's total nominal background in each bin, with one modifier, the normfactor
  ``mu_SIG`` (the measurement's POI). The patch itself is stored with each entry.
* ``smodels_upper_limits``: pyhf's ``pyhf.infer.intervals.upper_limits.upper_limit``
  (toms748 scan, level 0.05, rtol 1e-4) on the same injected signals;
* ``upper_limits``: the same on named 1Lbb points (BkgOnly.json + patchset.json); slow
  (``--only-1lbb-upper-limits`` computes just these, keeping the rest of the file).

pyhf runs with the numpy backend and the scipy optimizer at tolerance 1e-10 for the
SModelS CLs values (pyhf's default SLSQP tolerance stops early on real ATLAS
likelihoods). The 1Lbb upper limits use pyhf's default optimizer tolerance, like the
project's 1Lbb CLs reference: at 1e-10 one 1Lbb hypotest took 231 s here, and a limit
needs ~40 of them. Software versions and settings are recorded in the file.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else ROOT.parent / "shared" / "data"
SMODELS = DATA / "smodels-db-atlas-pyhf-bkgonly" / "13TeV" / "ATLAS"
LBB = DATA / "atlas-1lbb-ins1755298"
OUT = Path(__file__).resolve().parent / "smodels_cls.json"

#: workspace (relative to the SModelS ATLAS directory) -> signal fraction of the background
SUBSET: dict[str, float] = {
    "ATLAS-SUSY-2018-14-eff/Comb_bkgonly.json": 0.5,
    "ATLAS-SUSY-2018-31-eff/simplifiedC.json": 0.05,
    "ATLAS-SUSY-2018-22-multibin-eff/simplified_MB-C_noCR_bkgonly.json": 0.03,
    "ATLAS-SUSY-2018-04-eff/SRcombined.json": 0.3,
}
UPPER_LIMIT_POINTS = ("C1N2_Wh_hbb_300_150", "C1N2_Wh_hbb_700_0")
UL_POI_BOUND = 100.0
UPPER_LIMIT_SMODELS = (
    "ATLAS-SUSY-2018-14-eff/Comb_bkgonly.json",
    "ATLAS-SUSY-2018-31-eff/simplifiedC.json",
    "ATLAS-SUSY-2018-22-multibin-eff/simplified_MB-C_noCR_bkgonly.json",
)
TOLERANCE = 1e-10


def injection_patch(spec: dict[str, Any], fraction: float) -> list[dict[str, Any]]:
    """The RFC 6902 patch adding ``fraction`` x total background as a ``mu_SIG`` signal to every channel."""
    ops = []
    for i, ch in enumerate(spec["channels"]):
        nbins = len(ch["samples"][0]["data"])
        total = [sum(s["data"][b] for s in ch["samples"]) for b in range(nbins)]
        ops.append(
            {
                "op": "add",
                "path": f"/channels/{i}/samples/-",
                "value": {"name": "signal", "data": [fraction * t for t in total], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]},
            }
        )
    return ops


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-1lbb-upper-limits", action="store_true")
    ap.add_argument("--only-1lbb-upper-limits", action="store_true")
    args = ap.parse_args(argv)

    import jsonpatch
    import numpy as np
    import pyhf
    import scipy

    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=TOLERANCE))
    out: dict[str, Any] = {
        "what": "pyhf golden values for tests/test_infer_fast.py (written by tests/golden/make_smodels_golden.py)",
        "software": {"pyhf": pyhf.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()},
        "settings": {
            "backend": "numpy",
            "optimizer": f"scipy SLSQP, tolerance {TOLERANCE}",
            "test_stat": "qtilde",
            "calctype": "asymptotics",
            "calc_base_dist": "normal",
            "interpolation": {"normsys": "code4", "histosys": "code4p"},
            "mu": 1.0,
            "CLs_exp_order": "-2,-1,0,+1,+2 sigma",
            "upper_limit": "pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.05) (toms748, rtol 1e-4)",
            "smodels_upper_limit_poi_bounds": "[0, 100] for the scan (pyhf cannot widen the bound itself)",
            "upper_limit_optimizer": "scipy SLSQP, pyhf default tolerance (1e-10 takes ~4 min per 1Lbb hypotest)",
        },
        "injection": "a sample 'signal' added to every channel: data = fraction x total nominal background per bin, modifiers = [normfactor mu_SIG]",
        "smodels": {},
        "smodels_upper_limits": {},
        "upper_limits": {},
    }
    if OUT.exists():  # keep what this run does not recompute
        old = json.loads(OUT.read_text())
        out["upper_limits"] = old.get("upper_limits", {})
        if args.only_1lbb_upper_limits:
            out["smodels"] = old.get("smodels", {})
            out["smodels_upper_limits"] = old.get("smodels_upper_limits", {})
    for rel, fraction in SUBSET.items() if not args.only_1lbb_upper_limits else ():
        spec = json.loads((SMODELS / rel).read_text())
        patch = injection_patch(spec, fraction)
        ws = pyhf.Workspace(jsonpatch.apply_patch(spec, patch))
        model = ws.model()
        data = ws.data(model)
        t0 = time.perf_counter()
        obs, exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
        secs = time.perf_counter() - t0
        out["smodels"][rel] = {
            "fraction": fraction,
            "patch": patch,
            "CLs_obs": float(obs),
            "CLs_exp": [float(e) for e in exp],
            "hypotest_seconds": round(secs, 2),
        }
        print(rel, float(obs), [float(e) for e in exp], f"{secs:.1f} s", file=sys.stderr, flush=True)
        if rel in UPPER_LIMIT_SMODELS:
            t0 = time.perf_counter()
            # pyhf widens the scan beyond the POI's upper bound but then refuses to fix the POI
            # there, so the scan runs with the POI bounded by UL_POI_BOUND
            bounds = model.config.suggested_bounds()
            bounds[model.config.poi_index] = (0.0, UL_POI_BOUND)
            obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.05, par_bounds=bounds)
            secs = time.perf_counter() - t0
            out["smodels_upper_limits"][rel] = {"mu_up_obs": float(obs), "mu_up_exp": [float(e) for e in exp], "seconds": round(secs, 1)}
            print(rel, "upper limit", float(obs), [float(e) for e in exp], f"{secs:.1f} s", file=sys.stderr, flush=True)
    if not args.skip_1lbb_upper_limits:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        bkg = json.loads((LBB / "BkgOnly.json").read_text())
        patchset = pyhf.PatchSet(json.loads((LBB / "patchset.json").read_text()))
        for name in UPPER_LIMIT_POINTS:
            ws = patchset.apply(pyhf.Workspace(bkg), name)
            model = ws.model()
            data = ws.data(model)
            t0 = time.perf_counter()
            obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=None, level=0.05)
            secs = time.perf_counter() - t0
            out["upper_limits"][name] = {"mu_up_obs": float(obs), "mu_up_exp": [float(e) for e in exp], "seconds": round(secs, 1)}
            print(name, float(obs), [float(e) for e in exp], f"{secs:.0f} s", file=sys.stderr, flush=True)
            OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
