#!/usr/bin/env python3
"""The per-call cost of putting the fast engine's BLAS on one thread: threadpoolctl vs ctypes.

    python benchmarks/bench_blas.py [--repeat 7] [--inner 2000] [--point C1N2_Wh_hbb_1000_0] [--json out.json]

``heparch.infer.fast._blas.single_thread`` limits every loaded BLAS library to one thread with
threadpoolctl (a ``ThreadpoolController`` found once, ``limit(limits=1)``); until it did, it was
~50 hand-written lines that found OpenBLAS's ``openblas_get/set_num_threads`` with ctypes and
called them directly. This times one ``with`` block (enter and exit, nothing inside) of:

- ``threadpoolctl``: ``_blas.single_thread()`` as the engine calls it;
- ``ctypes``: what the hand-written code did per block, reproduced below (per library one
  ``get_num_threads``, one ``set_num_threads(1)`` and one ``set_num_threads(before)``, through
  ctypes, on the same libraries);
- ``threadpool_limits``: ``threadpoolctl.threadpool_limits(1, user_api="blas")``, which looks
  for the libraries again on every call (for reference: the form not to use per call).

Each is timed ``--inner`` times per run, ``--repeat`` runs, alternated; reported are the median
per-call microseconds and the ratio to ctypes. The engine enters the block a few times per
signal point: with ``--point`` (a 1Lbb patch, when the data is present) the blocks of one
model + CLs at mu = 1 are counted and the point's CPU time measured, so the extra cost per
point is given as a fraction of it. End to end: ``benchmarks/bench_fast.py`` on both versions
(docs/design.md, "Hand-written code, and why").
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "atlas-1lbb-ins1755298"
# the symbol pairs the hand-written version looked for (scipy-openblas wheels prefix them; 64-bit ints suffix 64_)
NAMES = [(f"{pre}openblas_set_num_threads{suf}", f"{pre}openblas_get_num_threads{suf}") for pre in ("scipy_", "") for suf in ("64_", "")]


def ctypes_pairs(paths: list[str]) -> list[tuple[Any, Any]]:
    """The (set, get) thread-count functions of each OpenBLAS at ``paths``, as the hand-written version found them."""
    pairs = []
    for path in paths:
        lib = ctypes.CDLL(path)
        found = [(getattr(lib, s), getattr(lib, g)) for s, g in NAMES if hasattr(lib, s) and hasattr(lib, g)]
        if found:
            found[0][1].restype = ctypes.c_int
            pairs.append(found[0])
    return pairs


def ctypes_single_thread(pairs: list[tuple[Any, Any]]) -> Callable[[], contextlib.AbstractContextManager[None]]:
    @contextlib.contextmanager
    def single_thread() -> Iterator[None]:
        before = [int(get()) for _, get in pairs]
        for setter, _ in pairs:
            setter(1)
        try:
            yield
        finally:
            for (setter, _), n in zip(pairs, before, strict=True):
                setter(n)

    return single_thread


def per_call_us(block: Callable[[], Any], inner: int) -> float:
    def run() -> None:
        with block():
            pass

    return timeit.timeit(run, number=inner) / inner * 1e6


def per_point(point: str) -> dict[str, Any]:
    """The ``single_thread`` blocks and CPU seconds of one 1Lbb point's model + CLs at mu = 1 (second run: warm)."""
    from heparch.infer.fast import FastBackend, backend
    from heparch.infer.fast._blas import single_thread as original

    bkg = json.loads((DATA / "BkgOnly.json").read_text())
    patchset = json.loads((DATA / "patchset.json").read_text())
    patch = next(p["patch"] for p in patchset["patches"] if p["metadata"]["name"] == point)
    calls = [0]

    def counted() -> contextlib.AbstractContextManager[Any]:
        calls[0] += 1
        return original()

    background = FastBackend().background(bkg)
    background.model([patch]).cls(1.0)
    backend.single_thread = counted  # type: ignore[attr-defined]
    try:
        c0 = time.process_time()
        background.model([patch]).cls(1.0)
        cpu = time.process_time() - c0
    finally:
        backend.single_thread = original  # type: ignore[attr-defined]
    return {"point": point, "blocks_per_point": calls[0], "point_cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--inner", type=int, default=2000)
    ap.add_argument("--point", default="C1N2_Wh_hbb_1000_0", help="a 1Lbb patch to count the blocks of ('' for none)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import threadpoolctl

    from heparch.infer.fast import _blas

    controlled = _blas.controller().info()
    pairs = ctypes_pairs([lib["filepath"] for lib in controlled if lib["internal_api"] == "openblas"])
    blocks: dict[str, tuple[Callable[[], Any], int]] = {
        "threadpoolctl": (_blas.single_thread, args.inner),
        "ctypes": (ctypes_single_thread(pairs), args.inner),
        "threadpool_limits": (lambda: threadpoolctl.threadpool_limits(1, user_api="blas"), max(1, args.inner // 50)),
    }
    runs: dict[str, list[float]] = {name: [] for name in blocks}
    for _ in range(args.repeat):
        for name, (block, inner) in blocks.items():
            runs[name].append(per_call_us(block, inner))
    med = {name: statistics.median(times) for name, times in runs.items()}
    out: dict[str, Any] = {
        "command": "python benchmarks/bench_blas.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "threadpoolctl": threadpoolctl.__version__,
        "libraries": [f"{lib['internal_api']} {lib['version']} {os.path.basename(lib['filepath'])}" for lib in controlled],
        "ctypes_libraries": len(pairs),
        "load_average": list(os.getloadavg()),
        "median_us_per_block": med,
        "runs_us_per_block": runs,
        "ratio_threadpoolctl_to_ctypes": med["threadpoolctl"] / med["ctypes"],
        "extra_us_per_block": med["threadpoolctl"] - med["ctypes"],
    }
    if args.point and DATA.is_dir():
        point = per_point(args.point)
        extra = point["blocks_per_point"] * out["extra_us_per_block"] * 1e-6
        out |= {"per_point": point, "extra_fraction_of_point_cpu": extra / point["point_cpu_s"]}
    text = json.dumps(out, indent=1, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
