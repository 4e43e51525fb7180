"""Benchmark ``full`` verification of issue 11's four "cost not bounded by size" bundles.

Run on demand, never in the test suite::

    python benchmarks/bench_hostile.py [--atlas DIR] [--references 30] [--operations 6000] [--bins 1200] [--zero-gib 2]

Builds, inside one ``tempfile.TemporaryDirectory()``, with the writer (correct hashes, no checks):

1. ``references``: the 1Lbb workspace (``--atlas``) with its 13.8 MiB patchset listed
   ``--references`` times by the manifest (one blob); also the same bundle with one reference,
   the baseline the many-reference one should match;
2. ``operations``: a small workspace with one patch file of ``--operations`` operations whose
   every operation adds a bin to a sample (the patch fails; the checks name the operation);
3. ``bins``: a simplified likelihood of ``--bins`` bins with a dense covariance;
4. ``zero``: an attachment of ``--zero-gib`` GiB of zeros (the bundle is a few hundred kB).

For each it prints the bundle's size, the decompressed payload, the wall time of
``heparch.verify.verify(bundle)`` (level ``full``), whether it is valid, its error codes and
the cost counters (blobs checked, prefixes of a failing patch applied). Targets (issue 11):
``full`` <= 2 s + 1 s per MiB of decompressed components; the zero blob costs its
decompression and two digests (spec section 5.1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from heparch import semantic
from heparch.build import AGENT
from heparch.components import patchset as patchsets
from heparch.spec import strictjson, versions
from heparch.spec.models import Manifest
from heparch.store import layout, writer
from heparch.verify import verify

ROOT = Path(__file__).resolve().parent.parent
ATLAS = ROOT.parent / "shared" / "data" / "atlas-1lbb-ins1755298"
MIB = 1 << 20

#: path -> (size, sha256 hex, sha512 hex, role, annotations, chunks)
Files = dict[str, tuple[int, str, str, str, dict[str, str], Callable[[], Iterator[bytes]]]]


def _data(path: str, data: bytes, role: str, notes: dict[str, str] | None = None) -> Files:
    return {path: (len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest(), role, notes or {}, lambda: iter([data]))}


def _write(out: Path, files: Files) -> Path:
    entries: list[dict[str, Any]] = []
    for path, (size, h256, h512, role, notes, _chunks) in sorted(files.items()):
        media = "application/json" if path.endswith(".json") else "application/octet-stream"
        entry: dict[str, Any] = {"path": path, "role": role, "mediaType": media, "digest": "sha256:" + h256, "size": size, "fixity": {"sha512": h512}}
        if notes:
            entry["annotations"] = notes
        entries.append(entry)
    obj = {"bundleFormat": {"uri": versions.FORMAT_URI, "version": versions.FORMAT_VERSION}, "files": entries, "analysis": {"license": "CC0-1.0"}}
    manifest_bytes = strictjson.canonical(obj)
    head = layout.head_files(Manifest.from_json(obj), manifest_bytes, AGENT)
    by_hex = {h256: (size, chunks) for size, h256, _h512, _r, _n, chunks in files.values()}
    writer.write_bundle(out, head, {}, {h: s for h, (s, _c) in by_hex.items()}, lambda h: by_hex[h][1]())
    return out


def _small_workspace() -> dict[str, Any]:
    sample = {"name": "bkg", "data": [10.0, 5.0], "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}
    return {
        "channels": [{"name": "SR", "samples": [sample]}],
        "observations": [{"name": "SR", "data": [11.0, 5.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "bkg_norm", "parameters": []}}],
        "version": "1.0.0",
    }


def references(atlas: Path, copies: int) -> Files:
    files = _data("BkgOnly.json", (atlas / "BkgOnly.json").read_bytes(), "likelihood")
    patchset = (atlas / "patchset.json").read_bytes()
    for i in range(copies):
        files.update(_data(f"patchset{i:05d}.json", patchset, "patchset", {"likelihood": "BkgOnly.json"}))
    return files


def operations(count: int) -> Files:
    patch = [{"op": "add", "path": "/channels/0/samples/0/data/-", "value": 1.0} for _ in range(count)]
    files = _data("BkgOnly.json", json.dumps(_small_workspace()).encode(), "likelihood")
    files.update(_data("patch.sig.json", json.dumps(patch).encode(), "patch", {"likelihood": "BkgOnly.json", "patch.name": "sig"}))
    return files


def bins(n: int) -> Files:
    cov = [[round(2.0 if i == j else 0.5 / (1 + abs(i - j)), 6) for j in range(n)] for i in range(n)]
    sl = {"observed": [5] * n, "background": [4.0] * n, "covariance": cov, "signals": {"A": [1.0] * n}}
    return _data("sl.json", json.dumps(sl).encode(), "simplified-likelihood")


def zero(gib: float) -> Files:
    size = int(gib * 1024) * MIB
    piece = bytes(MIB)
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    for _ in range(size // MIB):
        h256.update(piece)
        h512.update(piece)
    return {"zero.bin": (size, h256.hexdigest(), h512.hexdigest(), "attachment", {}, lambda: (piece for _ in range(size // MIB)))}


def measure(name: str, bundle: Path, files: Files) -> None:
    costs = semantic.Costs()
    prefixes = [0]
    real_check, real_first = semantic.check_components, patchsets.PatchChecker._has_issue

    def counted(*args: Any, **kwargs: Any) -> list[Any]:
        return real_check(*args, **{**kwargs, "costs": costs})

    def counted_prefix(self: patchsets.PatchChecker, *args: Any) -> bool:
        prefixes[0] += 1
        return real_first(self, *args)

    semantic.check_components = counted  # type: ignore[assignment]
    patchsets.PatchChecker._has_issue = counted_prefix  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        result = verify(bundle)
        seconds = time.perf_counter() - start
    finally:
        semantic.check_components = real_check  # type: ignore[assignment]
        patchsets.PatchChecker._has_issue = real_first  # type: ignore[method-assign]
    distinct = {h: s for s, h, _x, _r, _n, _c in files.values()}
    errors = sorted({f.code for f in result.report.findings if f.severity == "error"})
    print(
        f"{name:22s} bundle {bundle.stat().st_size / 1024:9.1f} kB  payload {sum(distinct.values()) / MIB:8.1f} MiB  "
        f"full {seconds:7.2f} s  valid {result.valid!s:5s}  errors {','.join(errors) or '-':10s}  "
        f"blobs checked {sum(costs.checked.values())} (max {max(costs.checked.values(), default=0)} per blob)  prefixes {prefixes[0]}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas", type=Path, default=ATLAS)
    parser.add_argument("--references", type=int, default=30)
    parser.add_argument("--operations", type=int, default=6000)
    parser.add_argument("--bins", type=int, default=1200)
    parser.add_argument("--zero-gib", type=float, default=2.0)
    args = parser.parse_args(argv)
    cases: list[tuple[str, Callable[[], Files]]] = [
        ("references x1", lambda: references(args.atlas, 1)),
        (f"references x{args.references}", lambda: references(args.atlas, args.references)),
        (f"operations {args.operations}", lambda: operations(args.operations)),
        (f"bins {args.bins}", lambda: bins(args.bins)),
        (f"zero {args.zero_gib:g} GiB", lambda: zero(args.zero_gib)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, make) in enumerate(cases):
            files = make()
            measure(name, _write(Path(tmp) / f"case{index}.zst", files), files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
