"""Benchmark: 100 new 1Lbb signal points from one long-form CSV with ``arch reinterpret --jobs 2``.

    python benchmarks/bench_reinterpret.py [--points 100] [--jobs 2] [--upper-limits] [--json out.json]

Issue 15's target: < 30 s for 100 points with ``--jobs 2``. The points are made from the
published 1Lbb points' inputs (yields, ``mc_unc``, every relative variation, read back from
their patches through the signal interface) with the yields scaled by 0.6-1.4, so each new
point carries the full set of signal systematics; the CSV has every (point, region, bin) row.
The bundle is built once into a temporary directory (not timed). The timed part is the whole
command in a fresh process: start-up, reading the bundle, deriving the interface, checking the
CSV, generating the patches and computing CLs (observed and expected band) with the fast
engine. The machine is shared, so the load average is printed with the time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEPARCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
LBB = SHARED / "atlas-1lbb-ins1755298"

sys.path.insert(0, str(ROOT / "pkg"))

from heparch.build import build  # noqa: E402
from heparch.components.interface import derive  # noqa: E402
from heparch.reinterpret.generate import inputs_from_patch  # noqa: E402
from heparch.reinterpret.signal import SignalPoint, dump  # noqa: E402


def new_points(n: int) -> list[SignalPoint]:
    """``n`` new points: published inputs with scaled yields (the relative variations stay)."""
    ws = json.loads((LBB / "BkgOnly.json").read_text())
    patchset = json.loads((LBB / "patchset.json").read_text())
    patches = {p["metadata"]["name"]: p["patch"] for p in patchset["patches"]}
    values = {p["metadata"]["name"]: p["metadata"]["values"] for p in patchset["patches"]}
    itf = derive(ws, patches, likelihood="BkgOnly.json")
    names = sorted(patches)
    out = []
    for i in range(n):
        name = names[i % len(names)]
        scale = 0.6 + 0.8 * i / max(n - 1, 1)
        labels = dict(zip(["m1", "m2"], map(float, values[name]), strict=True))
        point, _ = inputs_from_patch(itf, f"new_{i:03d}", patches[name], ws, {**labels, "scale": scale})
        regions = {c: dataclasses.replace(r, yields=tuple(y * scale for y in r.yields)) for c, r in point.regions.items()}
        out.append(dataclasses.replace(point, regions=regions))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--upper-limits", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "1lbb.zst"
        build(LBB, output=bundle)
        csv = Path(tmp) / "new.csv"
        points = new_points(args.points)
        csv.write_text(dump(points, "csv"))
        command = [sys.executable, "-m", "heparch", "reinterpret", str(bundle), "--signal", str(csv), "--jobs", str(args.jobs), "--json"]
        if args.upper_limits:
            command.append("--upper-limits")
        load = os.getloadavg()
        wall, cpu0 = time.perf_counter(), os.times()
        done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT / "pkg")})
        wall = time.perf_counter() - wall
        cpu1 = os.times()
        if done.returncode != 0:
            sys.exit(f"arch reinterpret failed (exit {done.returncode}): {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)["summary"]
        cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
        result = {
            "points": args.points,
            "jobs": args.jobs,
            "upper_limits": args.upper_limits,
            "csv_rows": sum(len(r.yields) for p in points for r in p.regions.values()),
            "csv_bytes": csv.stat().st_size,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "computed": summary["computed"],
            "excluded": summary["excluded"],
            "target_seconds": 30.0,
            "load_average": [round(x, 2) for x in load],
            "python": platform.python_version(),
        }
    print(json.dumps(result, indent=1))
    print(f"{args.points} new 1Lbb points, --jobs {args.jobs}: {wall:.1f} s wall ({cpu:.1f} s CPU), target < 30 s, load {load[0]:.1f}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
