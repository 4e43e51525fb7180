"""Benchmark ``arch verify`` against ``zstd -dc bundle.zst | sha256sum``.

Run on demand, never in the test suite::

    /work/venv/bin/python benchmarks/bench_verify.py [--size-mb 300] [--repeat 5] [--build-repeat 3] [--breakdown]

What it does, all inside one ``tempfile.TemporaryDirectory()``:

1. builds an empty analysis (its row measures start-up time and the memory floor), then
   writes a synthetic analysis directory (fixed seed: the same bytes every run) of
   ``--size-mb`` MiB: workspace- and patchset-shaped JSON with random floats rounded to 4
   decimals (55% and 20%; without ``observations``/``measurements`` or ``metadata``/``version``
   so they are packed as attachments: the semantic checks of 40 MB workspaces are not what is
   measured here), random bytes like a ROOT file (15%) and float64 arrays like an ``.npy``
   (10%), and builds it with ``heparch.build.build``;
2. builds the real ATLAS 1Lbb analysis (``--atlas``, default
   ``/work/shared/data/atlas-1lbb-ins1755298``);
3. per repeat, interleaved so that all feel the same machine load, times the reference
   ``zstd -q -dc B | sha256sum`` (bash pipeline, ``pipefail``), ``python -m heparch verify
   --level L B`` as a fresh subprocess, and the in-process ``heparch.verify.verify(B, level=L)``;
   peak RSS comes from ``os.wait4`` in a small wrapper process (see ``_MEASURE``);
4. times ``python -m heparch build`` of both sources (informative) and checks that the CLI's
   bundle is byte-identical to the in-process one;
5. with ``--breakdown``, times each stage of a fixity check alone (where the time goes) and
   the reference's two halves.

Prints medians; ratio = reference time / heparch time (goal for ``fixity``: >= 0.8; peak RSS
goal <= 64 MiB). Exit 0 unless a bundle fails verification or a command fails.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zstandard

import heparch
import heparch.build
import heparch.verify
from heparch.store import zframes

MiB = 1 << 20
DEFAULT_ATLAS = Path("/work/shared/data/atlas-1lbb-ins1755298")
SEED = 20240501
JSON_FILE_TARGET = 40 * MiB  # each synthetic JSON file is about this big


# ---------------------------------------------------------------------------------------
# the synthetic analysis


def _floats(rng: np.random.Generator, n: int, scale: float) -> list[float]:
    """Falling, positive, 6-significant-digit-ish numbers like histogram contents."""
    x = scale * rng.exponential(1.0, n) + 1e-3
    values: list[float] = np.round(x, 4).tolist()
    return values


def _sample(rng: np.random.Generator, name: str, channel: str, bins: int) -> dict[str, object]:
    nominal = _floats(rng, bins, 50.0)
    return {
        "data": nominal,
        "modifiers": [
            {"data": _floats(rng, bins, 2.0), "name": f"staterror_{channel}", "type": "staterror"},
            {"data": {"hi_data": _floats(rng, bins, 50.0), "lo_data": _floats(rng, bins, 50.0)}, "name": f"{name}_shape", "type": "histosys"},
            {"data": {"hi": 1.05, "lo": 0.95}, "name": f"{name}_xsec", "type": "normsys"},
        ],
        "name": name,
    }


def _write_workspace_like(path: Path, rng: np.random.Generator, target: int) -> None:
    """A pyhf-workspace-shaped document (channels/samples/modifiers) without 'observations'
    or 'measurements', so heparch packs it as an attachment."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"channels": [\n')
        written, i = 0, 0
        while written < target:
            channel = f"SR_{i:04d}"
            samples = [_sample(rng, f"bkg{j}", channel, 400) for j in range(8)]
            text = json.dumps({"name": channel, "samples": samples}, sort_keys=True)
            fh.write((",\n" if i else "") + text)
            written += len(text) + 2
            i += 1
        fh.write('\n], "version": "1.0.0"}\n')


def _write_patchset_like(path: Path, rng: np.random.Generator, target: int) -> None:
    """A pyhf-patchset-shaped document ('patches' only, no 'metadata'/'version': an attachment)."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"patches": [\n')
        written, i = 0, 0
        while written < target:
            m1, m2 = 100 + 25 * (i % 60), 25 * (i // 60)
            ops = [{"op": "add", "path": f"/channels/{c}/samples/8", "value": _sample(rng, "signal", f"SR_{c:04d}", 400)} for c in range(4)]
            text = json.dumps({"metadata": {"name": f"C1N2_{m1}_{m2}", "values": [m1, m2]}, "patch": ops}, sort_keys=True)
            fh.write((",\n" if i else "") + text)
            written += len(text) + 2
            i += 1
        fh.write("\n]}\n")


def make_analysis(root: Path, size: int, seed: int) -> None:
    """About ``size`` bytes: 55% workspace-like JSON, 20% patchset-like JSON, 15% random
    bytes, 10% float64 arrays. Deterministic for a given (size, seed)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    parts = {"ws": int(size * 0.55), "ps": int(size * 0.20), "root": int(size * 0.15), "npy": int(size * 0.10)}
    n_ws = max(1, round(parts["ws"] / JSON_FILE_TARGET))
    (root / "regions").mkdir()
    for k in range(n_ws):
        _write_workspace_like(root / f"regions/ws_{k:02d}.json", rng, parts["ws"] // n_ws)
    n_ps = max(1, round(parts["ps"] / JSON_FILE_TARGET))
    (root / "signals").mkdir()
    for k in range(n_ps):
        _write_patchset_like(root / f"signals/grid_{k:02d}.json", rng, parts["ps"] // n_ps)
    (root / "ntuples").mkdir()
    (root / "ntuples/skim.root").write_bytes(rng.bytes(parts["root"]))
    arr = np.round(rng.normal(100.0, 15.0, parts["npy"] // 8), 3)
    with (root / "ntuples/toys.npy").open("wb") as fh:
        np.save(fh, arr)
    (root / "README.md").write_text("# synthetic benchmark analysis\n\nGenerated by benchmarks/bench_verify.py.\n")


# ---------------------------------------------------------------------------------------
# timing


# A fresh child's peak RSS must be read by a small parent: Linux carries the RSS high-water
# mark of the process that forks into the child's ru_maxrss at exec, so measuring straight from
# this (large) process would report our own size. The wrapper is about 10 MiB, far below any
# command measured here, and it times the child alone (not its own start-up).
_MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status))
"""


def run_child(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd`` as a fresh child; return (wall seconds, its peak RSS in MiB, its CPU seconds). Exit on failure."""
    done = subprocess.run([sys.executable, "-S", "-c", _MEASURE, *cmd], capture_output=True, text=True, check=True)
    elapsed, maxrss_kib, cpu, code = done.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{done.stderr}")
    return float(elapsed), int(maxrss_kib) / 1024, float(cpu)  # Linux: ru_maxrss is in KiB


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reference_cmd(bundle: Path) -> list[str]:
    return ["bash", "-o", "pipefail", "-c", 'zstd -q -dc -- "$1" | sha256sum >/dev/null', "_", str(bundle)]


def verify_cmd(bundle: Path, level: str) -> list[str]:
    return [sys.executable, "-m", "heparch", "verify", "--level", level, str(bundle)]


def in_process(bundle: Path, level: str) -> None:
    result = heparch.verify.verify(bundle, level=level)  # type: ignore[arg-type]
    if not result.valid:
        raise SystemExit(f"{bundle}: invalid at level {level}: {[f.to_json() for f in result.report.errors]}")


def stream_size(bundle: Path) -> int:
    out = subprocess.run(["bash", "-o", "pipefail", "-c", 'zstd -q -dc -- "$1" | wc -c', "_", str(bundle)], check=True, capture_output=True, text=True)
    return int(out.stdout)


def bench_verify(name: str, bundle: Path, level: str, repeat: int) -> dict[str, object]:
    ref, ref_rss, cli, rss, inproc = [], [], [], [], []
    in_process(bundle, level)  # warm-up: imports and the page cache, not timed
    for _ in range(repeat):
        t, r, _ = run_child(reference_cmd(bundle))
        ref.append(t)
        ref_rss.append(r)
        t, r, _ = run_child(verify_cmd(bundle, level))
        cli.append(t)
        rss.append(r)
        inproc.append(time_call(lambda: in_process(bundle, level)))
    med = statistics.median
    return {
        "case": name,
        "level": level,
        "bundle_mb": bundle.stat().st_size / MiB,
        "stream_mb": stream_size(bundle) / MiB,
        "reference_s": med(ref),
        "cli_s": med(cli),
        "inproc_s": med(inproc),
        "ratio_cli": med(ref) / med(cli),
        "ratio_inproc": med(ref) / med(inproc),
        "rss_mib": max(rss),
        "ref_rss_mib": max(ref_rss),
        "runs": {"reference": ref, "cli": cli, "inproc": inproc, "cli_rss_mib": rss, "reference_rss_mib": ref_rss},
    }


def breakdown(bundle: Path, work: Path, repeat: int) -> list[tuple[str, float, float, float]]:
    """Where the time of a fixity check goes: (stage, wall s, CPU s, MiB/s of content), each stage
    alone on one thread (medians of ``repeat``), then the whole in-process check and the reference's parts."""
    med = statistics.median
    rows: list[tuple[str, float, float, float]] = []

    def stage(label: str, fn: Callable[[], object], mib: float) -> None:
        walls, cpus = [], []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.thread_time()
            fn()
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - wall)
        rows.append((label, med(walls), med(cpus), mib / med(walls)))

    with bundle.open("rb") as fh:
        frames = list(zframes.walk_frames(fh))
        raws = []
        for frame in frames:
            fh.seek(frame.offset)
            raws.append(fh.read(frame.length))
    contents = [zframes.decompress_frame(raw, frame) for raw, frame in zip(raws, frames, strict=True)]
    content_mib = sum(map(len, contents)) / MiB

    def walk() -> None:
        with bundle.open("rb") as fh:
            for _ in zframes.walk_frames(fh):
                pass

    stage("heparch: walk frame headers", walk, content_mib)

    def decompress() -> None:
        for raw, frame in zip(raws, frames, strict=True):
            zframes.decompress_frame(raw, frame)  # dropped at once, as in verify: memory is reused

    stage("heparch: zstandard decompress", decompress, content_mib)
    stage("heparch: sha256 of compressed frames", lambda: [hashlib.sha256(r).digest() for r in raws], content_mib)
    stage("heparch: sha256 of content", lambda: [hashlib.sha256(c).digest() for c in contents], content_mib)
    stage("heparch: sha512 of content", lambda: [hashlib.sha512(c).digest() for c in contents], content_mib)
    walls, cpus = [], []
    for _ in range(repeat):
        before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        in_process(bundle, "fixity")
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    rows.append(("heparch: verify(B, level='fixity'), in-process", med(walls), med(cpus), content_mib / med(walls)))
    stream = work / "stream.tar"
    subprocess.run(["zstd", "-q", "-f", "-d", str(bundle), "-o", str(stream)], check=True)
    for label, cmd in (
        ("reference: zstd -q -dc B > /dev/null", ["zstd", "-q", "-dc", str(bundle)]),
        ("reference: sha256sum (coreutils) of the stream", ["sha256sum", str(stream)]),
        ("reference: sha512sum (coreutils) of the stream", ["sha512sum", str(stream)]),
        ("other: openssl dgst -sha256 of the stream", ["openssl", "dgst", "-sha256", str(stream)]),
        ("other: zstd -q -dc B | openssl dgst -sha256", ["bash", "-o", "pipefail", "-c", 'zstd -q -dc -- "$1" | openssl dgst -sha256', "_", str(bundle)]),
    ):
        if shutil.which(cmd[0] if cmd[0] != "bash" else "openssl") is None:
            continue
        runs = [run_child(cmd) for _ in range(repeat)]
        rows.append((label, med(r[0] for r in runs), med(r[2] for r in runs), content_mib / med(r[0] for r in runs)))
    stream.unlink()
    return rows


def bench_build(name: str, source: Path, reference_bundle: Path, out: Path, repeat: int) -> dict[str, object]:
    times = []
    for _ in range(repeat):
        out.unlink(missing_ok=True)
        times.append(run_child([sys.executable, "-m", "heparch", "build", str(source), "-o", str(out)])[0])
        if out.read_bytes() != reference_bundle.read_bytes():
            raise SystemExit(f"{name}: 'arch build' wrote different bytes from heparch.build.build: not deterministic")
    size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    return {"case": name, "source_mb": size / MiB, "bundle_mb": out.stat().st_size / MiB, "build_s": statistics.median(times), "runs": times}


# ---------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))

    zstd_cli = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}); Python {sys.version.split()[0]}; zstandard {zstandard.__version__} "
        f"(libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}); {zstd_cli}; heparch {heparch.__version__}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=300, help="synthetic payload size in MiB (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case; medians are printed (default 5)")
    parser.add_argument("--build-repeat", type=int, default=1, help="timed 'arch build' runs per source (default 1)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the synthetic analysis (default {SEED})")
    parser.add_argument("--atlas", type=Path, default=DEFAULT_ATLAS, help="the ATLAS 1Lbb analysis directory (skipped if missing)")
    parser.add_argument("--breakdown", action="store_true", help="also time each stage of a fixity check alone (where the time goes)")
    parser.add_argument("--json", type=Path, help="also write every run's numbers to this JSON file")
    args = parser.parse_args()
    if shutil.which("zstd") is None:
        raise SystemExit("the reference needs the zstd command line tool")

    rows: list[dict[str, object]] = []
    builds: list[dict[str, object]] = []
    stages: list[tuple[str, float, float, float]] = []
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="heparch-bench-") as tmp:
        work = Path(tmp)
        empty = work / "empty"
        empty.mkdir()
        empty_bundle = work / "empty.zst"
        heparch.build.build(empty, output=empty_bundle)
        rows.append(bench_verify("empty (start-up)", empty_bundle, "fixity", args.repeat))
        synth = work / "synthetic"
        t = time_call(lambda: make_analysis(synth, int(args.size_mb * MiB), args.seed))
        print(f"generated {args.size_mb:g} MiB synthetic analysis in {t:.1f} s", file=sys.stderr)
        synth_bundle = work / "synthetic.zst"
        t = time_call(lambda: heparch.build.build(synth, output=synth_bundle))
        print(f"built it in-process in {t:.1f} s", file=sys.stderr)
        rows.append(bench_verify(f"synthetic {args.size_mb:g} MiB", synth_bundle, "fixity", args.repeat))
        if args.breakdown:
            stages = breakdown(synth_bundle, work, args.repeat)
        builds.append(bench_build(f"synthetic {args.size_mb:g} MiB", synth, synth_bundle, work / "synthetic-cli.zst", args.build_repeat))
        (work / "synthetic-cli.zst").unlink()
        if args.atlas.is_dir():
            atlas_bundle = work / "atlas.zst"
            heparch.build.build(args.atlas, output=atlas_bundle)
            rows.append(bench_verify("ATLAS 1Lbb", atlas_bundle, "fixity", args.repeat))
            rows.append(bench_verify("ATLAS 1Lbb", atlas_bundle, "full", args.repeat))
            builds.append(bench_build("ATLAS 1Lbb", args.atlas, atlas_bundle, work / "atlas-cli.zst", args.build_repeat))
        else:
            print(f"{args.atlas}: not found, ATLAS rows skipped", file=sys.stderr)

    print(machine())
    print(f"{load_before} at start, {load()} at end")
    print(f"verify: medians of {args.repeat} runs; ratio = reference s / heparch s (goal >= 0.8 for fixity); peak RSS goal <= 64 MiB")
    print("reference: zstd -q -dc B | sha256sum; CLI: python -m heparch verify --level L B; in-proc: heparch.verify.verify(B, level=L)")
    head = (
        f"{'case':<22} {'level':<7} {'bundle MiB':>10} {'stream MiB':>10} {'ref s':>7} {'CLI s':>7} {'ratio':>6} "
        f"{'in-proc s':>9} {'ratio':>6} {'CLI RSS MiB':>11} {'ref RSS MiB':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['case']:<22} {r['level']:<7} {r['bundle_mb']:>10.1f} {r['stream_mb']:>10.1f} {r['reference_s']:>7.2f} {r['cli_s']:>7.2f} "
            f"{r['ratio_cli']:>6.2f} {r['inproc_s']:>9.2f} {r['ratio_inproc']:>6.2f} {r['rss_mib']:>11.1f} {r['ref_rss_mib']:>11.1f}"
        )
    print(
        f"\n{'arch build':<22} {'source MiB':>10} {'bundle MiB':>10} {'build s':>8}   (median of {args.build_repeat}; CLI output byte-identical to heparch.build.build)"
    )
    for b in builds:
        print(f"{b['case']:<22} {b['source_mb']:>10.1f} {b['bundle_mb']:>10.1f} {b['build_s']:>8.2f}")
    if stages:
        print(f"\n{'where the time goes (synthetic bundle, each stage alone)':<52} {'wall s':>7} {'CPU s':>7} {'MiB/s':>7}")
        for label, wall, cpu, rate in stages:
            print(f"{label:<52} {wall:>7.2f} {cpu:>7.2f} {rate:>7.0f}")
    if args.json:
        args.json.write_text(json.dumps({"verify": rows, "build": builds, "stages": stages}, indent=1) + "\n")


if __name__ == "__main__":
    main()
