"""Benchmark the resource model (spec section 5.1, issue 11 item 1): time and peak memory of
``full`` verification, ``arch inspect`` / ``ls`` / ``cat`` and ``heparch.open()`` against the targets.

Run on demand, never in the test suite::

    python benchmarks/bench_resources.py [--atlas DIR] [--only NAME ...] [--commands verify,inspect,ls,cat,open]

Builds, inside one ``tempfile.TemporaryDirectory()``, the bundles of ``bench_hostile.py``
(1Lbb with its patchset listed once and 30 times, a 6,000-operation patch, a 2 GiB zero blob),
1Lbb as ``arch build`` writes it, a 2,000-bin dense simplified likelihood, a patchset of 5,000
patches and 5,000 patch files. Each command runs in a fresh subprocess (one at a time), which
reports the wall and CPU seconds of the call and its peak RSS (``VmHWM``, imports included).

Targets (issue 11): ``full`` <= 2 s + 1 s per MiB of decompressed components (*C*), plus the
payload's decompression and digests, about 4 s per GiB of payload (*D*, spec section 5.1);
peak RSS <= 64 MiB + 8 x the largest component.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_hostile import ATLAS, MIB, Files, _data, _small_workspace, _write, bins, operations, references, zero

GIB = 1 << 30
COMPONENT_ROLES = ("likelihood", "patchset", "patch", "simplified-likelihood", "results")

_CHILD = r"""
import contextlib, io, json, re, sys, time
command, path, member = sys.argv[1:4]
import heparch, heparch.verify, heparch.inspect, heparch.semantic
from heparch.cli.main import main
start, cpu = time.perf_counter(), time.process_time()
out = {}
if command == "verify":
    result = heparch.verify.verify(path)
    out = {"valid": result.valid, "errors": sorted({f.code for f in result.report.errors})}
elif command == "open":
    with heparch.open(path) as b:
        out = {"files": len(b.files())}
else:
    args = {"inspect": ["inspect", path, "--json"], "ls": ["ls", "-l", path], "cat": ["cat", path, member]}[command]
    sink = io.TextIOWrapper(io.BytesIO()) if command != "cat" else None
    with open("/dev/null", "wb") as null, contextlib.redirect_stdout(sink or io.TextIOWrapper(null)):
        try:
            main(args)
        except SystemExit as exc:
            out = {"exit": exc.code}
out["wall"] = time.perf_counter() - start
out["cpu"] = time.process_time() - cpu
out["rss_mib"] = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
print(json.dumps(out), file=sys.stderr)
"""


def one_lbb(atlas: Path, out: Path) -> Path:
    from heparch.build import build

    build(atlas, output=out)
    return out


def patchset_of(count: int) -> Files:
    """The small workspace and one patchset of ``count`` patches that each add a signal."""
    ws = _small_workspace()
    patches = []
    for i in range(count):
        signal = {"name": "signal", "data": [1.0 + i % 7, 2.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
        patches.append({"metadata": {"name": f"p{i:05d}", "values": [i]}, "patch": [{"op": "add", "path": "/channels/0/samples/1", "value": signal}]})
    meta = {"description": "bench", "digests": {"sha256": _pyhf_digest(ws)}, "labels": ["m"], "references": {"hepdata": "ins0000001"}}
    ps = {"metadata": meta, "patches": patches, "version": "1.0.0"}
    files = _data("BkgOnly.json", json.dumps(ws).encode(), "likelihood")
    files.update(_data("patchset.json", json.dumps(ps).encode(), "patchset", {"likelihood": "BkgOnly.json"}))
    return files


def patch_files(count: int) -> Files:
    """The small workspace and ``count`` RFC 6902 patch files."""
    files = _data("BkgOnly.json", json.dumps(_small_workspace()).encode(), "likelihood")
    for i in range(count):
        signal = {"name": "signal", "data": [1.0 + i, 2.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
        patch = [{"op": "add", "path": "/channels/0/samples/1", "value": signal}]
        files.update(_data(f"patches/patch.p{i:05d}.json", json.dumps(patch).encode(), "patch", {"likelihood": "BkgOnly.json", "patch.name": f"p{i:05d}"}))
    return files


def dense_bins(n: int) -> Files:
    """A simplified likelihood of ``n`` bins with a dense covariance of 6-digit floats."""
    return bins(n)


def _pyhf_digest(ws: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(ws, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _sizes(bundle: Path) -> tuple[int, int, int, str]:
    """(components C, largest component, payload D) in bytes, and the path of the largest file."""
    import heparch

    with heparch.open(bundle) as b:
        distinct = {f.digest: f for f in b.files()}
        comps = [f for f in distinct.values() if f.role in COMPONENT_ROLES]
        largest = max(b.files(), key=lambda f: f.size)
        return sum(f.size for f in comps), max((f.size for f in comps), default=0), sum(f.size for f in distinct.values()), largest.path


def run(command: str, bundle: Path, member: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, command, str(bundle), member], capture_output=True, text=True, timeout=3600, check=False)
    try:
        return dict(json.loads(proc.stderr.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"crash": proc.stderr[-300:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas", type=Path, default=ATLAS)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--commands", default="verify,inspect,ls,cat,open")
    args = parser.parse_args(argv)
    commands = args.commands.split(",")
    cases: list[tuple[str, Callable[[Path], Path]]] = [
        ("1lbb-build", lambda p: one_lbb(args.atlas, p)),
        ("1lbb-references-x30", lambda p: _write(p, references(args.atlas, 30))),
        ("operations-6000", lambda p: _write(p, operations(6000))),
        ("bins-2000", lambda p: _write(p, dense_bins(2000))),
        ("patchset-5000", lambda p: _write(p, patchset_of(5000))),
        ("patch-files-5000", lambda p: _write(p, patch_files(5000))),
        ("zero-2GiB", lambda p: _write(p, zero(2.0))),
    ]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in cases:
            if args.only and name not in args.only:
                continue
            bundle = make(Path(tmp) / f"{name}.zst")
            comps, largest, payload, member = _sizes(bundle)
            target_s = 2 + comps / MIB + 4 * payload / GIB
            target_rss = 64 + 8 * largest / MIB
            print(
                f"{name}: bundle {bundle.stat().st_size / 1024:.0f} kB, C {comps / MIB:.1f} MiB (largest {largest / MIB:.1f}), D {payload / MIB:.1f} MiB; "
                f"targets {target_s:.1f} s, {target_rss:.0f} MiB",
                flush=True,
            )
            for command in commands:
                out = run(command, bundle, member)
                rest = {k: v for k, v in out.items() if k not in ("wall", "cpu", "rss_mib")}
                # the targets are for the idle machine: on a loaded one, CPU seconds stand for the wall time
                ok = out.get("rss_mib", 1e9) <= target_rss and (command != "verify" or out.get("cpu", 1e9) <= target_s)
                print(
                    f"  {command:8s} wall {out.get('wall', float('nan')):7.2f} s  cpu {out.get('cpu', float('nan')):7.2f} s  "
                    f"rss {out.get('rss_mib', float('nan')):7.1f} MiB  {'within' if ok else 'BEYOND'} (cpu, rss)  {json.dumps(rest)}",
                    flush=True,
                )
            bundle.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
