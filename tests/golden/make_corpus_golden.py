"""Golden pyhf values for the corpus test (tests/test_corpus.py): every SModelS workspace with a signal.

Run from the repository root (about half an hour on one core: pyhf at tolerance 1e-10 on the
largest SModelS workspaces, 100-330 parameters, takes minutes a point):

    .venv/bin/python tests/golden/make_corpus_golden.py [--only REL ...] [--out PART.json]
    .venv/bin/python tests/golden/make_corpus_golden.py --merge PART.json ...   # parts run in parallel

Writes ``tests/golden/corpus_cls.json`` with, for every background-only workspace under
../shared/data/smodels-db-atlas-pyhf-bkgonly (``WORKSPACES``), a signal injected by the RFC 6902
patch of :func:`injection_patch` (a sample ``signal`` in every channel with ``fraction`` x the
channel's total nominal background per bin and one modifier, the normfactor ``mu_SIG``, the POI
of every one of these workspaces) and the CLs at mu = 1 from

    pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", calctype="asymptotics",
                        calc_base_dist="normal", return_expected_set=True)

with the workspace's own POI bounds, interpolation codes code4 / code4p, on pyhf's numpy
backend with the scipy optimizer at tolerance 1e-10 (heparch's pyhf backend setting). The
fractions are chosen per workspace so that CLs lies away from 0 and 1 (the comparison then
tests something). Software versions, settings and the seconds each point took are recorded.

The 1Lbb points are not recomputed here: ../shared/data/atlas-1lbb-ins1755298/reference_pyhf_cls.json
holds pyhf's CLs for all 125 points (see its PROVENANCE.md), and the validation cases have
theirs in ../shared/data/pyhf-validation/reference_pyhf.json.
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
OUT = Path(__file__).resolve().parent / "corpus_cls.json"
TOLERANCE = 1e-10
POI = "mu_SIG"

#: workspace (relative to the SModelS ATLAS directory) -> injected signal as a fraction of the background
WORKSPACES: dict[str, float] = {
    "ATLAS-SUSY-2018-04-eff/SRcombined.json": 0.3,
    "ATLAS-SUSY-2018-05-ewk-eff/ewk_signal_bkgonly.json": 0.1,
    "ATLAS-SUSY-2018-05-ewk-eff/simplified.json": 0.1,
    "ATLAS-SUSY-2018-14-eff/Comb_bkgonly.json": 0.5,
    "ATLAS-SUSY-2018-14-eff/SRee_bkgonly.json": 2.0,
    "ATLAS-SUSY-2018-14-eff/SRmm_bkgonly.json": 2.0,
    "ATLAS-SUSY-2018-16-eff/EWKinos_bkgonly_SR2lOnly.json": 0.05,
    "ATLAS-SUSY-2018-16-eff/Sleptons_bkgonly.json": 0.05,
    "ATLAS-SUSY-2018-22-multibin-eff/simplified_MB-C_noCR_bkgonly.json": 0.03,
    "ATLAS-SUSY-2018-22-multibin-eff/simplified_MB-GGd_noCR_bkgonly.json": 0.03,
    "ATLAS-SUSY-2018-22-multibin-eff/simplified_MB-SSd_noCR_bkgonly.json": 0.015,
    "ATLAS-SUSY-2018-31-eff/simplifiedA.json": 0.05,
    "ATLAS-SUSY-2018-31-eff/simplifiedB.json": 0.05,
    "ATLAS-SUSY-2018-31-eff/simplifiedC.json": 0.05,
    "ATLAS-SUSY-2018-32-eff/bkgonly_simplified.json": 0.03,
    "ATLAS-SUSY-2019-09-eff/SR_WH_0j_fake_bkgonly.json": 0.1,
    "ATLAS-SUSY-2019-09-eff/SR_WH_DFOS_fake_bkgonly.json": 0.5,
    "ATLAS-SUSY-2019-09-eff/SR_WH_nj_fake_bkgonly.json": 0.05,
    "ATLAS-SUSY-2019-09-eff/bkg_offshell.json": 0.05,
    "ATLAS-SUSY-2019-09-eff/bkg_offshell_simplified.json": 0.02,
    "ATLAS-SUSY-2019-09-eff/bkg_onshell.json": 0.2,
    "ATLAS-SUSY-2019-09-eff/bkg_onshell_simplified.json": 0.02,
}


def injection_patch(spec: dict[str, Any], fraction: float) -> list[dict[str, Any]]:
    """The RFC 6902 patch adding ``fraction`` x total background as a ``mu_SIG`` signal to every channel."""
    ops = []
    for i, ch in enumerate(spec["channels"]):
        nbins = len(ch["samples"][0]["data"])
        total = [sum(s["data"][b] for s in ch["samples"]) for b in range(nbins)]
        sample = {"name": "signal", "data": [fraction * t for t in total], "modifiers": [{"name": POI, "type": "normfactor", "data": None}]}
        ops.append({"op": "add", "path": f"/channels/{i}/samples/-", "value": sample})
    return ops


def hypotest(spec: dict[str, Any], patch: list[dict[str, Any]]) -> tuple[float, list[float], dict[str, Any]]:
    import jsonpatch
    import pyhf

    ws = pyhf.Workspace(jsonpatch.apply_patch(spec, patch))
    model = ws.model(modifier_settings={"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}})
    data = ws.data(model)
    obs, exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", calctype="asymptotics", calc_base_dist="normal", return_expected_set=True)
    info = {"poi": model.config.poi_name, "poi_bounds": list(model.config.suggested_bounds()[model.config.poi_index]), "parameters": model.config.npars}
    return float(obs), [float(e) for e in exp], info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="recompute only these workspaces (keep the rest of the file)")
    ap.add_argument("--out", type=Path, default=OUT, help="write here instead (to run parts in parallel processes)")
    ap.add_argument("--merge", type=Path, nargs="*", default=(), help="add the entries of these files (written with --out) to the output, nothing recomputed")
    args = ap.parse_args(argv)
    out_path: Path = args.out

    import numpy as np
    import pyhf
    import scipy

    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=TOLERANCE))
    old = json.loads(out_path.read_text()) if out_path.exists() else {}
    out: dict[str, Any] = {
        "what": "pyhf golden CLs for tests/test_corpus.py (written by tests/golden/make_corpus_golden.py)",
        "software": {"pyhf": pyhf.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "python": platform.python_version()},
        "settings": {
            "backend": "numpy",
            "optimizer": f"scipy SLSQP, tolerance {TOLERANCE}",
            "test_stat": "qtilde",
            "calctype": "asymptotics",
            "calc_base_dist": "normal",
            "interpolation": {"normsys": "code4", "histosys": "code4p"},
            "poi_bounds": "as each workspace gives them (pyhf's suggested bounds)",
            "mu": 1.0,
            "CLs_exp_order": "-2,-1,0,+1,+2 sigma",
        },
        "injection": "a sample 'signal' added to every channel: data = fraction x total nominal background per bin, modifiers = [normfactor mu_SIG]",
        "smodels": dict(old.get("smodels", {})),
    }
    for part in args.merge:
        other = json.loads(part.read_text())
        if other["software"] != out["software"] or other["settings"] != out["settings"]:
            raise SystemExit(f"{part}: computed with other software or settings; not merged")
        out["smodels"].update(other["smodels"])
    for rel, fraction in WORKSPACES.items():
        if args.merge or (args.only is not None and rel not in args.only):
            continue
        spec = json.loads((SMODELS / rel).read_text())
        patch = injection_patch(spec, fraction)
        t0 = time.perf_counter()
        obs, exp, info = hypotest(spec, patch)
        secs = time.perf_counter() - t0
        out["smodels"][rel] = {"fraction": fraction, **info, "CLs_obs": obs, "CLs_exp": exp, "hypotest_seconds": round(secs, 2)}
        print(rel, obs, exp, f"{secs:.1f} s", file=sys.stderr, flush=True)
        out_path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    out_path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
