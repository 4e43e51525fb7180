"""Benchmark heparch's ``simplified`` backend against spey 0.2.7's
``default.third_moment_expansion`` on the 90-bin toy of Buckley et al. (2019).

Run on demand, never in the test suite::

    /work/venv/bin/python benchmarks/bench_simplified.py [--repeat 3] [--sl PATH]

spey is needed only here (``pip install spey==0.2.7``; it is not a dependency of
heparch). Both run in this one process, interleaved per repeat so they feel the same
machine load; each repeat starts from a fresh model (spey caches its fits per model
instance, heparch per model), so every timing includes the global fits:

- CLs at mu = 1, observed and the five expected values: heparch ``model.cls(1.0)``;
  spey ``exclusion_confidence_level(poi_test=1.0, expected="all")``;
- upper limits at CLs = 0.05: heparch ``model.upper_limit()`` (observed and five
  expected); spey ``poi_upper_limit()`` (observed only), and with
  ``--spey-expected-limits`` for the same six numbers as heparch additionally
  ``poi_upper_limit(expected=aposteriori, expected_pvalue="2sigma")`` on the same
  instance (slow: minutes).

Prints medians and the ratios spey / heparch, then the numbers of both and their
differences (spey reports 1 - CLs; converted to CLs here). Also times building the
background model once (parsing and checks, coefficients, rho^-1), not part of the per-point
timings. Exit 0; 2 when spey is missing (heparch's timings are still printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from heparch.infer.simplified import SimplifiedBackend

DEFAULT_SL = Path("/work/shared/data/sl-toy-90bin-buckley2019/sl.json")


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repeats for each measurement (spey takes seconds each)")
    parser.add_argument("--inner", type=int, default=10, help="heparch runs per repeat (it takes milliseconds)")
    parser.add_argument("--sl", type=Path, default=DEFAULT_SL)
    parser.add_argument("--signal", default="toy")
    parser.add_argument("--spey-expected-limits", action="store_true", help="also time spey's five expected limits (minutes)")
    args = parser.parse_args(argv)
    sl = json.loads(args.sl.read_text())
    signal = sl["signals"][args.signal]

    try:
        import spey
    except ImportError:
        spey = None
        print("spey is not installed: pip install spey==0.2.7   (heparch's timings only)", file=sys.stderr)
    else:
        logging.getLogger("Spey").setLevel(logging.ERROR)
        if spey.__version__ != "0.2.7":
            print(f"note: spey {spey.__version__} installed; the comparison is meant for spey==0.2.7", file=sys.stderr)

    backend = SimplifiedBackend()
    t_bkg = []
    for _ in range(args.repeat):
        dt, bkg = _timed(lambda: backend.background(sl))
        t_bkg.append(dt)
    med = statistics.median
    ours_cls: list[float] = []
    ours_ul: list[float] = []
    spey_cls: list[float] = []
    spey_ul_obs: list[float] = []
    spey_ul_all: list[float] = []
    r_ours = ul_ours = None
    r_spey = ul_spey_obs = ul_spey_exp = None
    for _ in range(args.repeat):
        for _ in range(args.inner):
            dt, r_ours = _timed(lambda: bkg.model(signal=args.signal).cls(1.0))
            ours_cls.append(dt)
            dt, ul_ours = _timed(lambda: bkg.model(signal=args.signal).upper_limit(level=0.05))
            ours_ul.append(dt)
        if spey is None:
            continue
        pdf = spey.get_backend("default.third_moment_expansion")

        def make(pdf: Any = pdf) -> Any:
            return pdf(
                signal_yields=signal,
                background_yields=sl["background"],
                data=sl["observed"],
                covariance_matrix=sl["covariance"],
                third_moment=sl["third_moments"],
            )

        cls_model = make()
        dt, r_spey = _timed(lambda m=cls_model: m.exclusion_confidence_level(poi_test=1.0, expected="all"))
        spey_cls.append(dt)
        ul_model = make()
        dt, ul_spey_obs = _timed(lambda m=ul_model: m.poi_upper_limit(confidence_level=0.95))
        spey_ul_obs.append(dt)
        if args.spey_expected_limits:
            aposteriori = spey.ExpectationType.aposteriori
            dt2, ul_spey_exp = _timed(lambda m=ul_model, e=aposteriori: m.poi_upper_limit(expected=e, confidence_level=0.95, expected_pvalue="2sigma"))
            spey_ul_all.append(dt + dt2)
        print(
            f"repeat: heparch cls {med(ours_cls[-args.inner :]) * 1e3:.1f} ms, ul {med(ours_ul[-args.inner :]) * 1e3:.1f} ms; "
            f"spey cls {spey_cls[-1]:.2f} s, ul obs {spey_ul_obs[-1]:.2f} s",
            file=sys.stderr,
            flush=True,
        )

    print(f"model: {args.sl} signal {args.signal!r}, {len(sl['observed'])} bins, form {bkg.form}")
    print(f"heparch background build (parse, checks, coefficients, rho^-1): {med(t_bkg) * 1e3:8.1f} ms (once per file)")
    print(f"heparch CLs obs+exp at mu=1:          {med(ours_cls) * 1e3:8.1f} ms   (goal <= 20 ms)")
    print(f"heparch upper limits obs+5 exp:       {med(ours_ul) * 1e3:8.1f} ms   (goal <= 100 ms)")
    if spey is None:
        return 2
    print(f"spey    CLs obs+exp at mu=1:          {med(spey_cls) * 1e3:8.1f} ms   ratio {med(spey_cls) / med(ours_cls):6.1f}x")
    print(f"spey    upper limit observed:         {med(spey_ul_obs) * 1e3:8.1f} ms   ratio {med(spey_ul_obs) / med(ours_ul):6.1f}x (vs heparch obs+5 exp)")
    if spey_ul_all:
        print(f"spey    upper limits obs+5 exp:       {med(spey_ul_all) * 1e3:8.1f} ms   ratio {med(spey_ul_all) / med(ours_ul):6.1f}x")
    print()
    if r_ours is None or ul_ours is None or r_spey is None:
        return 1
    obs_spey = 1.0 - float(r_spey[0][0])
    exp_spey = [1.0 - float(x) for x in r_spey[1]]
    print("CLs at mu=1          heparch          spey             difference")
    rows = [("observed", r_ours.observed, obs_spey)]
    rows += [(f"expected {k:+d} sigma", a, b) for k, a, b in zip((-2, -1, 0, 1, 2), r_ours.expected, exp_spey, strict=True)]
    for name, a, b in rows:
        print(f"  {name:18s} {a:.8e}   {b:.8e}   {a - b:+.2e} ({(a - b) / b:+.1e} rel)")
    print("upper limit (CLs=0.05)")
    urows = [("observed", ul_ours.observed, float(ul_spey_obs))]
    if ul_spey_exp is not None:
        urows += [(f"expected {k:+d} sigma", a, float(b)) for k, a, b in zip((-2, -1, 0, 1, 2), ul_ours.expected, ul_spey_exp, strict=True)]
    for name, a, b in urows:
        print(f"  {name:18s} {a:.8f}       {b:.8f}       {a - b:+.2e} ({(a - b) / b:+.1e} rel)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
