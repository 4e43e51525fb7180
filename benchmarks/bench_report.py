"""Benchmark: rendering the replay report (HTML with its figures) and the exclusion plot alone.

    python benchmarks/bench_report.py [--runs 5] [--json out.json]

Two reports, built from stored values (no fits): the ATLAS 1Lbb patchset's 125 points with
pyhf's reference CLs as the claims and the same values x 1.25 as the replay (so the contours
of claim and replay differ), with upper limits; and a 100 x 100 grid of 10^4 points. For each:
the median wall-clock and CPU time of ``report.html`` (all figures and the table) and of
``plot.write_plot`` for .svg, .pdf and .png, over ``--runs`` runs after one warm-up (which
includes matplotlib's import and font cache), and the page's size. The machine is shared, so
the load average is printed with the times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEPARCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
LBB = SHARED / "atlas-1lbb-ins1755298"

sys.path.insert(0, str(ROOT / "pkg"))

from heparch.replay import plot, report  # noqa: E402
from heparch.replay.outcome import PointOutcome, ReplayReport  # noqa: E402


def outcome(name: str, claimed: dict[str, Any], replayed: dict[str, Any], values: dict[str, float]) -> PointOutcome:
    return PointOutcome(
        key=name, likelihood="BkgOnly.json", point=name, claimed=claimed, replayed=replayed, passed=True, backend="stored", seconds=0.1, values=values
    )


def lbb() -> ReplayReport:
    reference = json.loads((LBB / "reference_pyhf_cls.json").read_text())["points"]
    patchset = json.loads((LBB / "patchset.json").read_text())
    labels = patchset["metadata"]["labels"]
    values = {p["metadata"]["name"]: dict(zip(labels, map(float, p["metadata"]["values"]), strict=True)) for p in patchset["patches"]}
    pts = []
    for name, ref in sorted(reference.items()):
        replayed = {"CLs_obs": min(ref["CLs_obs"] * 1.25, 1.0), "CLs_exp": [min(v * 1.25, 1.0) for v in ref["CLs_exp"]], "mu_up_obs": 0.3 + 3 * ref["CLs_obs"]}
        pts.append(outcome(name, {**ref, "mu_up_obs": replayed["mu_up_obs"]}, replayed, values[name]))
    return ReplayReport("1lbb.zst", "sha256:stored", pts, 1.0, labels=("m1", "m2"), axes={"m1": "m(chargino) [GeV]", "m2": "m(neutralino) [GeV]"})


def grid(n: int = 100) -> ReplayReport:
    pts = []
    for i in range(n):
        for j in range(n):
            c = 10 ** (-(i + j) / (n / 2))
            claimed = {"CLs_obs": c, "CLs_exp": [c * f for f in (0.3, 0.6, 1.0, 1.5, 2.0)]}
            replayed = {"CLs_obs": c * 1.00001, "CLs_exp": [v * 1.00001 for v in claimed["CLs_exp"]]}
            pts.append(outcome(f"pt_{i}_{j}", claimed, replayed, {"m1": 100.0 + 10 * i, "m2": 10.0 * j}))
    return ReplayReport("grid.zst", "sha256:grid", pts, 1.0, labels=("m1", "m2"))


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return {"wall_median_s": round(statistics.median(wall), 3), "cpu_median_s": round(statistics.median(cpu), 3), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import matplotlib

    out: dict[str, Any] = {"python": platform.python_version(), "matplotlib": matplotlib.__version__, "load_average": os.getloadavg(), "reports": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rep in (("1lbb (125 points)", lbb()), ("grid (10^4 points)", grid())):
            row: dict[str, Any] = {"html": timed(lambda rep=rep: report.html(rep), args.runs), "html_bytes": len(report.html(rep).encode())}
            for suffix in plot.PLOT_FORMATS:
                target = Path(tmp) / f"exclusion{suffix}"
                row[f"plot{suffix}"] = timed(lambda rep=rep, target=target: plot.write_plot(rep, target), args.runs)
            out["reports"][name] = row
            print(
                f"{name}: "
                + ", ".join(f"{k} {v['wall_median_s']} s wall / {v['cpu_median_s']} s CPU" for k, v in row.items() if isinstance(v, dict))
                + f"; page {row['html_bytes']} bytes",
                flush=True,
            )
    print(f"load average {out['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
