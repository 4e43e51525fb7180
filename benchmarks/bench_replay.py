"""Benchmark: `arch replay` of all 125 ATLAS 1Lbb points, against pyhf on a sample, in one run.

    /work/venv/bin/python benchmarks/bench_replay.py [--runs 3] [--jobs 2] [--pyhf-sample 5] [--json out.json]

Builds the 1Lbb bundle (BkgOnly.json + patchset.json), claims it with the default backend
(``arch claim``), then times whole ``arch replay`` processes (wall clock, as a user or CI
sees it: start-up, bundle reading, worker processes, every point, the report):

- ``--runs`` replays of all 125 points with the default backend (``fast``), ``--jobs`` processes;
- one replay of ``--pyhf-sample`` randomly sampled points with ``--backend pyhf``.

Printed: the median wall time of the full replays (goal: <= 60 s on the 2-core machine),
pyhf's time per point, and the ratio of pyhf's extrapolated time for 125 points to the
median. The machine is shared: the load average before and after is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "atlas-1lbb-ins1755298"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/atlas-1lbb-ins1755298")
ARCH = [sys.executable, "-m", "heparch"]


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(ARCH + args, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="arch replay on 1Lbb: fast (all points) vs pyhf (a sample)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pyhf-sample", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, claimed = Path(tmp) / "1lbb.zst", Path(tmp) / "claimed.zst"
        for step in (["build", str(DATA), "-o", str(bundle)], ["claim", str(bundle), "-o", str(claimed), "--jobs", str(args.jobs)]):
            seconds, proc = timed(step)
            if proc.returncode:
                sys.stderr.write(proc.stderr)
                return 1
            print(f"arch {step[0]}: {seconds:.1f} s")
        walls = []
        for k in range(args.runs):
            seconds, proc = timed(["replay", str(claimed), "--jobs", str(args.jobs), "--json"])
            summary = json.loads(proc.stdout)["summary"]
            if proc.returncode or summary["passed"] != 125:
                sys.stderr.write(proc.stderr)
                return 1
            walls.append(seconds)
            print(f"replay run {k + 1}: {seconds:.1f} s wall, {summary['passed']}/{summary['total']} passed")
        pyhf_wall, proc = timed(["replay", str(claimed), "--backend", "pyhf", "--sample", str(args.pyhf_sample), "--jobs", str(args.jobs), "--json"])
        doc = json.loads(proc.stdout)
        pyhf_point = statistics.median(p["seconds"] for p in doc["points"].values())
    median = statistics.median(walls)
    extrapolated = pyhf_wall / args.pyhf_sample * 125
    result = {
        "replay_125_fast_wall_s": {"median": median, "runs": walls},
        "pyhf_sample": {"points": args.pyhf_sample, "wall_s": pyhf_wall, "median_point_s": pyhf_point, "passed": doc["summary"]["passed"]},
        "pyhf_125_extrapolated_wall_s": extrapolated,
        "ratio_pyhf_over_fast": extrapolated / median,
        "jobs": args.jobs,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(f"replay of 125 points (fast, {args.jobs} jobs): median {median:.1f} s of {args.runs} runs (goal <= 60 s)")
    print(f"pyhf, {args.pyhf_sample} sampled points: {pyhf_wall:.1f} s wall, median {pyhf_point:.1f} s per point; {doc['summary']['passed']} passed")
    print(f"pyhf for 125 points (extrapolated): {extrapolated:.0f} s = {extrapolated / median:.0f} x the fast replay")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
