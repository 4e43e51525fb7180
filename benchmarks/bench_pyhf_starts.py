#!/usr/bin/env python3
"""The cost of the pyhf backend's second starts on one 1Lbb point (CPU seconds, in-process).

    python benchmarks/bench_pyhf_starts.py [POINT] [--data DIR]

Runs the pyhf backend's CLs at mu = 1 (pyhf's five hypotest fits, each also from a second
start), timing every fit, then ``pyhf.infer.hypotest`` itself on the same model, and checks
that the numbers are the same (1Lbb has one minimum per fit, so they must be bit for bit).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pyhf

from heparch.infer import pyhf_backend as pb

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "atlas-1lbb-ins1755298"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("point", nargs="?", default="C1N2_Wh_hbb_1000_0")
    parser.add_argument("--data", type=Path, default=DATA, help="the 1Lbb directory (BkgOnly.json, patchset.json)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    ws = json.loads((args.data / "BkgOnly.json").read_text())
    patchset = json.loads((args.data / "patchset.json").read_text())
    ops = next(p["patch"] for p in patchset["patches"] if p["metadata"]["name"] == args.point)
    times: list[float] = []
    original = pb.Hypotest._fit

    def timed(self: pb.Hypotest, data: Any, x0: Any, poi: float | None) -> Any:
        t = time.process_time()
        try:
            return original(self, data, x0, poi)
        finally:
            times.append(time.process_time() - t)

    pb.Hypotest._fit = timed  # type: ignore[method-assign]
    model = pb.PyhfBackend().background(ws).model([ops])
    t = time.process_time()
    ours = model.cls(1.0)
    with_starts = time.process_time() - t
    print(
        f"{args.point}: pyhf backend (second starts) {with_starts:.1f} s CPU, fits {[round(x, 1) for x in times]}, multimodal {ours.multimodal}, CLs_obs {ours.observed:.6g}"
    )
    with pb._numpy_backend(pb.TOLERANCE):
        t = time.process_time()
        obs, exp = pyhf.infer.hypotest(
            1.0,
            model.data,
            model.pdf,
            init_pars=model.pdf.config.suggested_init(),
            par_bounds=model.bounds(1.0),
            fixed_params=model.pdf.config.suggested_fixed(),
            return_expected_set=True,
        )
        plain = time.process_time() - t
    same = [float(obs), *(float(e) for e in exp)] == [ours.observed, *ours.expected]
    print(f"pyhf.infer.hypotest {plain:.1f} s CPU, CLs_obs {float(obs):.6g}; ratio {with_starts / plain:.2f}; the same numbers bit for bit: {same}")


if __name__ == "__main__":
    main()
