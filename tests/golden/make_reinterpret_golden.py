"""Golden pyhf value for the hand-written new 1Lbb signal of tests/test_reinterpret.py.

Run from the repository root (pyhf takes ~1-3 min on the 1Lbb likelihood):

    .venv/bin/python tests/golden/make_reinterpret_golden.py

Reads the ATLAS 1Lbb background-only workspace from the shared data and the patch written by
hand in ``tests/test_reinterpret/lbb_new_signal_patch.json``, applies it with pyhf's own
``PatchSet``/``Workspace`` and writes ``tests/golden/reinterpret_1lbb.json``: pyhf 0.7.6's
``hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)`` with the numpy
backend and the scipy optimizer (SLSQP) at tolerance 1e-10, with the wall time, the inputs'
sha256 and the software versions. No heparch code computes this value.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import pyhf

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HEPARCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
BKG = SHARED / "atlas-1lbb-ins1755298" / "BkgOnly.json"
PATCH = ROOT / "tests" / "test_reinterpret" / "lbb_new_signal_patch.json"
OUT = ROOT / "tests" / "golden" / "reinterpret_1lbb.json"


def main() -> None:
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    ws = pyhf.Workspace(json.loads(BKG.read_text()))
    patch = pyhf.patchset.Patch({"metadata": {"name": "new_hand_1", "values": [600, 150]}, "patch": json.loads(PATCH.read_text())})
    model = pyhf.Workspace(patch.apply(ws)).model()
    data = ws.data(model)
    start = time.perf_counter()
    obs, exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    seconds = time.perf_counter() - start
    doc = {
        "point": "new_hand_1",
        "CLs_obs": float(obs),
        "CLs_exp": [float(e) for e in exp],
        "seconds": round(seconds, 1),
        "inputs": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (BKG, PATCH)},
        "software": {"pyhf": pyhf.__version__, "python": platform.python_version(), "backend": "numpy", "optimizer": "scipy SLSQP, tolerance 1e-10"},
        "command": "hypotest(1.0, data, model, test_stat='qtilde', return_expected_set=True)",
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
