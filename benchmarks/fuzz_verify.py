"""Fuzz ``full`` verification (issue 11 item 8): seeded mutations of three bundles, one forked child per case.

Run on demand (the test suite runs a fixed slice, ``tests/test_fuzz_slice.py``)::

    python benchmarks/fuzz_verify.py [--cases 10000] [--seed 0] [--cache DIR] [--data DIR]
        [--timeout 30] [--memory-mib 1024] [--json OUT] [--save-failures DIR] [--case N ...]

The three bundles, built once into ``--cache`` (default: ``heparch-fuzz`` in the system temporary
directory) and checked valid at ``full`` before any mutation: ``plain`` (``fixtures/example-analysis``),
``1lbb`` (``--data``/atlas-1lbb-ins1755298, the workspace with its 125-patch patchset) and ``signed``
(``plain`` signed with ``arch keygen`` + ``arch sign``: two DSSE envelopes and one sshsig).

Case ``i`` mutates bundle ``i % 3`` with ``random.Random(f"{seed}:{i}")``, so a case is reproduced by
its seed and index alone (``--seed S --case i``). Mutations (``OPS``):

* ``flip``, ``insert``, ``delete``, ``truncate``: bytes of the file;
* ``splice``: a run of frames replaced by (or a frame inserted from, or duplicated from) a run of frames of
  any of the three bundles, or dropped; ``swap``: two frames exchanged;
* ``reframe``: one frame's content written again as other frames (stored blocks cut elsewhere, split in
  two, or compressed at another level): the "re-compressed identical content" of spec 2.1.2 and 2.5;
* ``rewrite``: the container re-assembled consistently (frames, ``frames-sha256.txt`` and the tag manifest
  regenerated) around one change: another ``Bag-Software-Agent``, a signature added or removed, or one byte
  changed in a head file, a signature file or the payload; so the content checks, not the frame digests,
  must catch it.

Each case runs in a child made by ``os.fork()`` (heparch is imported once, in the parent) under an
``RLIMIT_AS``/``RLIMIT_DATA`` cap of ``--memory-mib`` above what the parent holds; the child calls
``heparch.verify.verify(path, level="full")`` and reports its verdict, exit code (as ``arch verify``
would give it), finding codes, wall time and maximum RSS through a pipe; the parent kills it after
``--timeout`` seconds.

A mutant that verifies as valid is **accepted**. The harness explains it with its own decoder
(python-zstandard and a minimal tar reader, not heparch's): the manifest (so the identity) and every
blob are byte-identical to the original's, the other entries are the same, and the only differences are
those the spec allows outside the identity: signatures added or removed (a signature present in both is
byte-identical), the ``Bag-Software-Agent`` text, and frames that hold identical content, with
``frames-sha256.txt`` and ``tagmanifest-sha256.txt`` equal to what the mutant's own frames and tag files
regenerate. Failures: an accepted mutant it cannot explain, exit 3 (or a ``MemoryError``), exit 2 (a bad
bundle is exit 1), a timeout, a child that dies. Each is listed with its reproducer, and written to
``--save-failures DIR`` as ``<seed>-<case>-<bundle>-<op>.zst``. Exit status: 0 when there is no failure.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one thread per forked child
os.environ.setdefault("OMP_NUM_THREADS", "1")

import zstandard

from heparch import __version__
from heparch.errors import HeparchError
from heparch.store import layout, tar, writer, zframes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-analysis"
DATA = ROOT.parent / "shared" / "data"
BUNDLES = ("plain", "1lbb", "signed")
MIB = 1 << 20
PIECE = zframes.MAX_FRAME_CONTENT
STREAM_ROOT = tar.ROOT  # "bundle/"


# ----------------------------------------------------------------------------------------------
# The three bundles


def _arch(*args: str | Path) -> None:
    """Run the ``arch`` command (``python -m heparch``); raise with its stderr when it fails."""
    done = subprocess.run([sys.executable, "-m", "heparch", *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"arch {' '.join(map(str, args))}: exit {done.returncode}: {done.stderr.strip()}")


def build_corpus(cache: Path, data: Path = DATA) -> dict[str, Path]:
    """The three bundles in ``cache`` (built when missing): plain, 1lbb, signed."""
    from heparch.build import build

    cache.mkdir(parents=True, exist_ok=True)
    paths = {name: cache / f"{name}-{__version__}.zst" for name in BUNDLES}
    if not paths["plain"].exists():
        build(EXAMPLE, output=paths["plain"])
    if not paths["1lbb"].exists():
        build(data / "atlas-1lbb-ins1755298", output=paths["1lbb"])
    if not paths["signed"].exists():
        staging = cache / f"signed-{os.getpid()}.zst"
        shutil.copyfile(paths["plain"], staging)
        for who, role, extra in (("alice", "analysis-team", ["--ssh"]), ("bob", "publication-committee", [])):
            key = cache / f"{who}-{os.getpid()}"
            _arch("keygen", "-o", key)
            _arch("sign", staging, "--key", key, "--role", role, *extra)
            key.unlink()
            key.with_name(key.name + ".pub").unlink()
        staging.replace(paths["signed"])
    return paths


# ----------------------------------------------------------------------------------------------
# An independent decoder: frames by python-zstandard, entries by a minimal tar reader


@dataclasses.dataclass
class Decoded:
    """What a bundle holds, read without heparch: its frames and its tar entries."""

    frames: list[tuple[bytes, bytes]]  # (compressed bytes, content), in file order
    entries: dict[str, bytes]  # entry name without "bundle/" -> content, in stream order
    starts: dict[str, int]  # entry name -> stream offset of its header
    stream: bytes

    def canonical(self) -> bool:
        """Is the stream exactly the canonical tar of its entries, end blocks included, nothing after?"""
        return self.stream == b"".join(tar.entry(STREAM_ROOT + name, data) for name, data in self.entries.items()) + tar.END

    def parts_at_frame_ends(self) -> bool:
        """Do the signature part and the payload start where frames start?"""
        ends = {0}
        for _raw, content in self.frames:
            ends.add(max(ends) + len(content))
        return self.starts[layout.FRAMES] in ends and _payload_start(self) in ends


def split_frames(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every zstd frame of ``data`` with its content; ValueError when ``data`` is not frames end to end."""
    frames = []
    pos = 0
    dctx = zstandard.ZstdDecompressor()
    while pos < len(data):
        dobj = dctx.decompressobj()
        content = dobj.decompress(data[pos:])
        if not dobj.eof:
            raise ValueError(f"frame at {pos} does not end")
        used = len(data) - pos - len(dobj.unused_data)
        frames.append((data[pos : pos + used], content))
        pos += used
    return frames


def decode(data: bytes) -> Decoded:
    """Frames and tar entries of a bundle; ValueError when it cannot be read."""
    frames = split_frames(data)
    stream = b"".join(content for _raw, content in frames)
    entries: dict[str, bytes] = {}
    starts: dict[str, int] = {}
    pos = 0
    while pos + tar.BLOCK <= len(stream):
        header = stream[pos : pos + tar.BLOCK]
        if header == bytes(tar.BLOCK):
            break
        name = header[:100].rstrip(b"\0").decode("ascii")
        prefix = header[345:500].rstrip(b"\0").decode("ascii")
        full = f"{prefix}/{name}" if prefix else name
        size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        if not full.startswith(STREAM_ROOT) or full[len(STREAM_ROOT) :] in entries:
            raise ValueError(f"entry {full!r} out of place")
        key = full[len(STREAM_ROOT) :]
        starts[key] = pos
        entries[key] = stream[pos + tar.BLOCK : pos + tar.BLOCK + size]
        pos += tar.BLOCK + size + tar.padding(size)
    return Decoded(frames, entries, starts, stream)


def _payload_start(dec: Decoded) -> int:
    size = len(dec.entries[layout.TAGMANIFEST])
    return dec.starts[layout.TAGMANIFEST] + tar.BLOCK + size + tar.padding(size)


def _listing(dec: Decoded) -> bytes:
    """frames-sha256.txt regenerated from the frames: head frames end where frames-sha256.txt starts,
    payload frames start where the signature part ends."""
    sig_start = dec.starts[layout.FRAMES]
    payload_start = _payload_start(dec)
    head: list[tuple[int, str]] = []
    payload: list[tuple[int, str]] = []
    offset = 0
    for raw, content in dec.frames:
        if offset < sig_start:
            head.append((len(raw), hashlib.sha256(raw).hexdigest()))
        elif offset >= payload_start:
            payload.append((len(raw), hashlib.sha256(raw).hexdigest()))
        offset += len(content)
    return layout.frames_listing(head, payload)


def _tag_manifest(dec: Decoded) -> bytes:
    tags = {name: data for name, data in dec.entries.items() if name not in (layout.TAGMANIFEST, layout.MANIFEST) and not name.startswith(layout.BLOB_DIR)}
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(tags.items())).encode("ascii")


def explain(original_bytes: bytes, mutant_bytes: bytes) -> tuple[list[str], list[str]]:
    """Why an accepted mutant is equivalent to ``original`` as the spec states: (reasons, problems).

    An empty ``problems`` means explained. Reasons name each allowed difference.
    """
    original = decode(original_bytes)
    try:
        mutant = decode(mutant_bytes)
        required = (layout.FRAMES, layout.TAGMANIFEST, layout.MANIFEST)
        if any(name not in mutant.entries for name in required):
            return [], ["a required entry is missing"]
    except (ValueError, UnicodeDecodeError, zstandard.ZstdError) as exc:
        return [], [f"the harness cannot decode it: {exc}"]
    reasons: list[str] = []
    problems: list[str] = []
    if not mutant.canonical():
        problems.append("the stream is not the canonical tar of its entries (headers, padding, end blocks, trailing bytes)")
    if not mutant.parts_at_frame_ends():
        problems.append("a part does not start a frame")
    plain = [n for n in original.entries if not n.startswith(layout.SIGNATURE_DIR)]
    if [n for n in mutant.entries if not n.startswith(layout.SIGNATURE_DIR)] != plain:
        problems.append("entries other than signatures differ in names or order")
    derived = {layout.FRAMES: _listing(mutant), layout.TAGMANIFEST: _tag_manifest(mutant)}
    for name in plain:
        old, new = original.entries[name], mutant.entries.get(name)
        if new == old:
            continue
        if new is None:
            continue  # reported above
        if name == "bag-info.txt" and new.split(b"\n", 1)[1:] == old.split(b"\n", 1)[1:] and new.startswith(b"Bag-Software-Agent: "):
            reasons.append("Bag-Software-Agent text")
        elif name in derived and new == derived[name]:
            continue  # follows from the other differences, checked there
        else:
            problems.append(f"{name} differs" + (" (and is not what the mutant's frames and tag files give)" if name in derived else ""))
    old_sigs = {n for n in original.entries if n.startswith(layout.SIGNATURE_DIR)}
    new_sigs = {n for n in mutant.entries if n.startswith(layout.SIGNATURE_DIR)}
    reasons += [f"signature removed: {n}" for n in sorted(old_sigs - new_sigs)]
    reasons += [f"signature added: {n}" for n in sorted(new_sigs - old_sigs)]
    problems += [f"{n} differs" for n in sorted(old_sigs & new_sigs) if original.entries[n] != mutant.entries[n]]
    if [raw for raw, _ in mutant.frames] != [raw for raw, _ in original.frames] and not reasons:
        reasons.append("identical content in other frames")
    return reasons or ["identical"], problems


# ----------------------------------------------------------------------------------------------
# Mutations


@dataclasses.dataclass
class Base:
    """One bundle to mutate: its bytes, its frames, its head files and signatures.

    The parent keeps no more than this (the children inherit it and their RSS counts it).
    """

    name: str
    data: bytes
    frames: list[zframes.Frame]
    head: dict[str, bytes]
    signatures: dict[str, bytes]
    payload: list[zframes.Frame]

    @classmethod
    def load(cls, name: str, path: Path) -> Base:
        with path.open("rb") as fh:
            frames = list(zframes.walk_frames(fh))
            parts = writer.existing_parts(fh)
        return cls(name, path.read_bytes(), frames, parts.head, parts.signatures, parts.payload_frames)

    def frame(self, i: int) -> bytes:
        f = self.frames[i]
        return self.data[f.offset : f.offset + f.length]

    def payload_frames(self) -> list[bytes]:
        return [self.data[f.offset : f.offset + f.length] for f in self.payload]


@dataclasses.dataclass
class Mutant:
    op: str
    detail: str
    data: bytes


Mutator = Callable[[random.Random, Base, Sequence[Base]], Mutant]


def _pos(rng: random.Random, base: Base) -> int:
    """A position, half the time inside the first 4 KiB or the frames' headers (where most structure lies)."""
    if rng.random() < 0.5:
        frame = rng.choice(base.frames)
        return min(len(base.data) - 1, frame.offset + rng.randrange(min(frame.length, 4096)))
    return rng.randrange(len(base.data))


def flip(rng: random.Random, base: Base, _donors: Sequence[Base]) -> Mutant:
    data = bytearray(base.data)
    spots = []
    for _ in range(rng.choice((1, 1, 1, 2, 4, 16))):
        p = _pos(rng, base)
        mask = 1 << rng.randrange(8) if rng.random() < 0.6 else rng.randrange(1, 256)
        data[p] ^= mask
        spots.append(f"{p}^{mask:#04x}")
    return Mutant("flip", " ".join(spots), bytes(data))


def insert(rng: random.Random, base: Base, _donors: Sequence[Base]) -> Mutant:
    p = _pos(rng, base) if rng.random() < 0.9 else len(base.data)
    if rng.random() < 0.5:
        src = rng.randrange(len(base.data))
        chunk = base.data[src : src + rng.randrange(1, 1024)]
        what = f"copy of {len(chunk)} bytes from {src}"
    else:
        chunk = rng.randbytes(rng.choice((1, 2, 4, 17, 512)))
        what = f"{len(chunk)} random bytes"
    return Mutant("insert", f"{what} at {p}", base.data[:p] + chunk + base.data[p:])


def delete(rng: random.Random, base: Base, _donors: Sequence[Base]) -> Mutant:
    p = _pos(rng, base)
    n = min(len(base.data) - p, rng.choice((1, 2, 3, 4, 8, 512, 4096, rng.randrange(1, 65536))))
    return Mutant("delete", f"{n} bytes at {p}", base.data[:p] + base.data[p + n :])


def truncate(rng: random.Random, base: Base, _donors: Sequence[Base]) -> Mutant:
    if rng.random() < 0.5:  # near a frame boundary
        f = rng.choice(base.frames)
        n = max(0, min(len(base.data) - 1, f.offset + rng.choice((0, 1, 4, 5, 6, 7, f.length - 4, f.length - 1))))
    else:
        n = rng.randrange(len(base.data))
    return Mutant("truncate", f"to {n} bytes", base.data[:n])


def _run(rng: random.Random, base: Base) -> tuple[int, int]:
    a = rng.randrange(len(base.frames))
    return a, rng.randint(a + 1, len(base.frames))


def splice(rng: random.Random, base: Base, donors: Sequence[Base]) -> Mutant:
    donor = rng.choice(donors)
    frames = [base.frame(i) for i in range(len(base.frames))]
    a, b = _run(rng, base)
    c, d = _run(rng, donor)
    mode = rng.choice(("replace", "replace", "insert", "drop", "duplicate"))
    if mode == "replace":
        frames[a:b] = [donor.frame(j) for j in range(c, d)]
        detail = f"frames {a}..{b - 1} replaced by {donor.name} frames {c}..{d - 1}"
    elif mode == "insert":
        frames[a:a] = [donor.frame(c)]
        detail = f"{donor.name} frame {c} inserted before frame {a}"
    elif mode == "drop":
        del frames[a:b]
        detail = f"frames {a}..{b - 1} dropped"
    else:
        frames[b:b] = frames[a:b]
        detail = f"frames {a}..{b - 1} repeated"
    return Mutant("splice", detail, b"".join(frames))


def swap(rng: random.Random, base: Base, donors: Sequence[Base]) -> Mutant:
    if len(base.frames) < 2:
        return splice(rng, base, donors)
    i, j = sorted(rng.sample(range(len(base.frames)), 2))
    frames = [base.frame(k) for k in range(len(base.frames))]
    frames[i], frames[j] = frames[j], frames[i]
    return Mutant("swap", f"frames {i} and {j}", b"".join(frames))


def _stored_blocks(content: bytes, cut: int) -> bytes:
    """A profile-conforming frame of raw blocks of ``cut`` bytes (the last shorter)."""
    flag, fcs = zframes._fcs_bytes(len(content))
    out = bytearray(zframes.MAGIC + bytes([flag << 6 | 1 << 5 | 1 << 2]) + fcs)
    for start in range(0, len(content), cut):
        block = content[start : start + cut]
        out += (int(start + cut >= len(content)) | len(block) << 3).to_bytes(3, "little") + block
    return bytes(out + zframes.stored_frame(content)[-4:])


def reframe(rng: random.Random, base: Base, _donors: Sequence[Base]) -> Mutant:
    i = rng.randrange(len(base.frames))
    frame = base.frames[i]
    content = zframes.decompress_frame(base.frame(i), frame)
    mode = rng.choice(("blocks", "split", "level"))
    if mode == "split" and len(content) > 1:
        at = rng.randrange(1, len(content))
        make = zframes.stored_frame if frame.stored else zframes.compress_frame
        new = make(content[:at]) + make(content[at:])
        detail = f"frame {i} split at {at} of {len(content)}"
    elif mode == "level" or not frame.stored:
        level = rng.choice((1, 3, 19))
        new = zframes.compress_frame(content, level=level) if rng.random() < 0.8 or frame.stored else zframes.stored_frame(content)
        detail = f"frame {i} compressed again (level {level} or stored)"
    else:
        cut = rng.randint(1, 131072)
        new = _stored_blocks(content, cut)
        detail = f"frame {i} stored in blocks of {cut}"
    return Mutant("reframe", detail, base.data[: frame.offset] + new + base.data[frame.offset + frame.length :])


def _assemble(head: dict[str, bytes], signatures: dict[str, bytes], payload_frames: list[bytes]) -> bytes:
    """A bundle around these head files, signatures and payload frames, with the frame listing and
    the tag manifest regenerated from them."""
    head_stream = b"".join(tar.entry(STREAM_ROOT + name, head[name]) for name in layout.HEAD)
    head_frames = [zframes.compress_frame(head_stream[i : i + PIECE], level=1) for i in range(0, len(head_stream), PIECE)]
    digests = [(len(f), hashlib.sha256(f).hexdigest()) for f in head_frames]
    listing = layout.frames_listing(digests, [(len(f), hashlib.sha256(f).hexdigest()) for f in payload_frames])
    sig_stream = writer.signature_part(head, listing, signatures)
    sig_frames = [zframes.stored_frame(sig_stream[i : i + PIECE]) for i in range(0, len(sig_stream), PIECE)]
    return b"".join(head_frames + sig_frames + payload_frames)


def _flip_one(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    p = rng.randrange(len(data))
    mask = 1 << rng.randrange(8)
    return data[:p] + bytes([data[p] ^ mask]) + data[p + 1 :], f"byte {p}^{mask:#04x}"


def rewrite(rng: random.Random, base: Base, donors: Sequence[Base]) -> Mutant:
    head, sigs, payload = dict(base.head), dict(base.signatures), base.payload_frames()
    others = {n: d for donor in donors for n, d in donor.signatures.items() if donor.head[layout.MANIFEST] == head[layout.MANIFEST]}
    mode = rng.choice(("agent", "signature", "head", "signature-byte", "payload"))
    if mode == "agent":
        agent = "".join(rng.choice("abcXYZ 0.9-_/()é\u2028\t\r") for _ in range(rng.randint(0, 40)))
        head["bag-info.txt"] = ("Bag-Software-Agent: " + agent + "\n").encode() + head["bag-info.txt"].split(b"\n", 1)[1]
        detail = f"Bag-Software-Agent {agent!r}"
    elif mode == "signature" and (sigs or others):
        name = rng.choice(sorted(set(sigs) | set(others)))
        if name in sigs:
            del sigs[name]
            detail = f"removed {name}"
        else:
            sigs[name] = others[name]
            detail = f"added {name}"
    elif mode == "signature-byte" and sigs:
        name = rng.choice(sorted(sigs))
        sigs[name], where = _flip_one(rng, sigs[name])
        detail = f"{name} {where}"
    elif mode == "payload":
        stream = b"".join(zframes.decompress_frame(f, zframes.Frame(0, len(f), _content_size(f))) for f in payload)
        stream, where = _flip_one(rng, stream)
        payload = [zframes.compress_frame(stream[i : i + PIECE], level=1) for i in range(0, len(stream), PIECE)]
        detail = f"payload stream {where}"
    else:
        mode = "head"
        name = rng.choice(layout.HEAD)
        head[name], where = _flip_one(rng, head[name])
        detail = f"{name} {where}"
    return Mutant(f"rewrite-{mode}", detail, _assemble(head, sigs, payload))


def _content_size(frame: bytes) -> int:
    return zstandard.get_frame_parameters(frame).content_size


OPS: dict[str, tuple[float, Mutator]] = {
    "flip": (0.25, flip),
    "insert": (0.1, insert),
    "delete": (0.1, delete),
    "truncate": (0.1, truncate),
    "splice": (0.15, splice),
    "swap": (0.05, swap),
    "reframe": (0.1, reframe),
    "rewrite": (0.15, rewrite),
}


def mutate(seed: int, index: int, bases: Sequence[Base]) -> tuple[Base, Mutant]:
    """Case ``index`` of run ``seed``: which bundle, and its mutant: never the unchanged bytes, nor a
    splice that is wholly another bundle of the corpus with another identity (valid, and no mutant)."""
    rng = random.Random(f"{seed}:{index}")
    base = bases[index % len(bases)]
    names = list(OPS)
    weights = [OPS[n][0] for n in names]
    others = [b.data for b in bases if b.head[layout.MANIFEST] != base.head[layout.MANIFEST]]
    for _ in range(20):
        mutant = OPS[rng.choices(names, weights)[0]][1](rng, base, bases)
        if mutant.data != base.data and mutant.data not in others:
            return base, mutant
    raise RuntimeError(f"case {seed}:{index}: twenty mutations left the bundle unchanged")


# ----------------------------------------------------------------------------------------------
# One case in a forked child


@dataclasses.dataclass
class Outcome:
    exit: int | None  # as 'arch verify' would exit; None when the child gave no answer
    codes: list[str]
    seconds: float
    rss: int  # maximum resident set of the child, bytes (what it shares with the parent included)
    status: str  # "ok", "timeout", "memory", "died"
    error: str = ""
    growth: int = 0  # the maximum resident set beyond what the child had when forked, bytes
    cpu: float = 0.0  # CPU seconds of the verification (wall time depends on the machine's load)


def _vm(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmSize, VmData)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(path: Path, tmp: Path, memory: int, out: int) -> None:
    """In the forked child: cap memory, verify, write the answer as JSON to ``out``."""
    import heparch.verify

    tempfile.tempdir = str(tmp)
    for limit, field in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        cap = _vm(field) + memory
        resource.setrlimit(limit, (cap, resource.getrlimit(limit)[1]))
    answer: dict[str, Any] = {"codes": [], "status": "ok", "error": "", "rss_start": _vm("VmRSS")}
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = heparch.verify.verify(path, level="full")
        answer["exit"] = 0 if result.valid else 1
        answer["codes"] = sorted({f.code for f in result.report.findings})
    except MemoryError:
        answer.update(exit=3, status="memory", error="MemoryError")
    except HeparchError as exc:
        answer.update(exit=exc.exit_code, error=exc.message[:300])
    except OSError as exc:
        answer.update(exit=2, error=f"OSError: {exc}"[:300])
    except Exception as exc:  # an internal error: what arch verify exits 3 for
        answer.update(exit=3, error=f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=-3)[-900:]}")
    answer["seconds"] = time.perf_counter() - start
    answer["cpu"] = time.process_time() - cpu
    answer["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    os.write(out, json.dumps(answer).encode())


def run_case(path: Path, tmp: Path, *, timeout: float, memory: int) -> Outcome:
    """Verify ``path`` in a forked child; the parent enforces ``timeout``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        try:
            _child(path, tmp, memory, w)
        finally:
            os._exit(0)
    os.close(w)
    start = time.perf_counter()
    chunks = []
    timed_out = False
    while True:
        left = timeout - (time.perf_counter() - start)
        if left <= 0 or not select.select([r], [], [], left)[0]:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    rss = usage.ru_maxrss * 1024
    if timed_out:
        return Outcome(None, [], time.perf_counter() - start, rss, "timeout", f"killed after {timeout} s")
    try:
        answer = json.loads(b"".join(chunks))
    except ValueError:
        return Outcome(None, [], time.perf_counter() - start, rss, "died", f"wait status {status}")
    growth = max(0, answer["rss"] - answer["rss_start"])
    return Outcome(answer.get("exit"), answer["codes"], answer["seconds"], answer["rss"], answer["status"], answer["error"], growth, answer["cpu"])


# ----------------------------------------------------------------------------------------------
# The run


@dataclasses.dataclass
class Tally:
    """Everything the run prints and writes with --json."""

    seed: int
    tried: int = 0
    accepted: int = 0
    explained: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    exits: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    codes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    ops: dict[str, collections.Counter[str]] = dataclasses.field(default_factory=lambda: collections.defaultdict(collections.Counter))
    max_time: tuple[float, str] = (0.0, "")
    max_cpu: tuple[float, str] = (0.0, "")
    max_rss: tuple[int, str] = (0, "")
    max_growth: tuple[int, str] = (0, "")
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, index: int, base: Base, mutant: Mutant, outcome: Outcome) -> dict[str, Any] | None:
        """Count one case; return its failure record, if it is one."""
        self.tried += 1
        where = f"case {index} ({base.name} {mutant.op}: {mutant.detail})"
        exit_key = str(outcome.exit) if outcome.status == "ok" else outcome.status
        self.exits[exit_key] += 1
        self.codes.update(outcome.codes)
        self.ops[mutant.op][exit_key] += 1
        if outcome.seconds > self.max_time[0] and outcome.status != "timeout":
            self.max_time = (outcome.seconds, where)
        if outcome.cpu > self.max_cpu[0]:
            self.max_cpu = (outcome.cpu, where)
        if outcome.rss > self.max_rss[0]:
            self.max_rss = (outcome.rss, where)
        if outcome.growth > self.max_growth[0]:
            self.max_growth = (outcome.growth, where)
        why = ""
        if outcome.status != "ok":
            why = f"{outcome.status}: {outcome.error}"
        elif outcome.exit in (2, 3):
            why = f"exit {outcome.exit}: {outcome.error}"
        elif outcome.exit == 0:
            self.accepted += 1
            reasons, problems = explain(base.data, mutant.data)
            if problems:
                why = "accepted, unexplained: " + "; ".join(problems)
            else:
                self.explained.update(r.split(":")[0] for r in reasons)
        if not why:
            return None
        record = {"seed": self.seed, "case": index, "bundle": base.name, "op": mutant.op, "detail": mutant.detail, "failure": why, "codes": outcome.codes}
        self.failures.append(record)
        return record

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "tried": self.tried,
            "accepted": self.accepted,
            "explained": dict(self.explained),
            "unexplained_accepted": sum(1 for f in self.failures if f["failure"].startswith("accepted")),
            "exit_codes": dict(self.exits),
            "timeouts": self.exits.get("timeout", 0),
            "exit_3": self.exits.get("3", 0) + self.exits.get("memory", 0),
            "finding_codes": dict(sorted(self.codes.items())),
            "by_op": {op: dict(c) for op, c in sorted(self.ops.items())},
            "max_seconds": round(self.max_time[0], 3),
            "max_seconds_case": self.max_time[1],
            "max_cpu_seconds": round(self.max_cpu[0], 3),
            "max_cpu_case": self.max_cpu[1],
            "max_rss_mib": round(self.max_rss[0] / MIB, 1),
            "max_rss_case": self.max_rss[1],
            "max_rss_growth_mib": round(self.max_growth[0] / MIB, 1),
            "max_rss_growth_case": self.max_growth[1],
            "failures": self.failures,
        }

    def report(self) -> str:
        data = self.to_json()
        lines = [
            f"tried {self.tried}; accepted {self.accepted} (explained: {dict(self.explained) or 'none'}; unexplained {data['unexplained_accepted']})",
            "exit codes: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.exits.items())),
            f"max verify time {self.max_time[0]:.2f} s wall ({self.max_time[1]}), {self.max_cpu[0]:.2f} s CPU ({self.max_cpu[1]})",
            f"max RSS {self.max_rss[0] / MIB:.1f} MiB ({self.max_rss[1]}); max growth over the fork {self.max_growth[0] / MIB:.1f} MiB ({self.max_growth[1]})",
            "per operation: " + "; ".join(f"{op} {dict(c)}" for op, c in sorted(self.ops.items())),
            f"failures: {len(self.failures)}",
        ]
        lines += [f"  seed {f['seed']} case {f['case']} {f['bundle']} {f['op']} ({f['detail']}): {f['failure']}" for f in self.failures]
        return "\n".join(lines)


def load_bases(paths: dict[str, Path], tmp: Path, *, timeout: float, memory: int) -> list[Base]:
    """The bundles to mutate, each checked valid at ``full`` (in a child, like the cases)."""
    bases = []
    for name in BUNDLES:
        outcome = run_case(paths[name], tmp, timeout=timeout, memory=memory)
        if outcome.exit != 0:
            raise SystemExit(f"{paths[name]}: the unmutated {name} bundle does not verify ({outcome}); remove it from the cache to rebuild")
        bases.append(Base.load(name, paths[name]))
    return bases


def fuzz(
    bases: Sequence[Base],
    cases: Sequence[int],
    work: Path,
    *,
    seed: int,
    timeout: float,
    memory: int,
    save: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Tally:
    """Run ``cases`` (indices) of run ``seed`` against ``bases``."""
    tally = Tally(seed)
    mutant_path = work / "mutant.zst"
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    for n, index in enumerate(cases):
        base, mutant = mutate(seed, index, bases)
        mutant_path.write_bytes(mutant.data)
        outcome = run_case(mutant_path, tmp, timeout=timeout, memory=memory)
        failure = tally.add(index, base, mutant, outcome)
        if failure is not None and save is not None:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{seed}-{index}-{base.name}-{mutant.op}.zst").write_bytes(mutant.data)
        if failure is not None and progress is not None:
            progress(f"FAILURE seed {seed} case {index}: {failure['failure']}")
        if progress is not None and (n + 1) % 500 == 0:
            progress(
                f"{n + 1}/{len(cases)}: accepted {tally.accepted}, failures {len(tally.failures)}, max {tally.max_time[0]:.2f} s ({tally.max_cpu[0]:.2f} s CPU), {tally.max_rss[0] / MIB:.0f} MiB"
            )
        for leftover in tmp.iterdir():  # what a killed child's verify left behind
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    return tally


def warm(path: Path) -> None:
    """Import what ``full`` verification imports, once, in the parent (the children share it), by
    verifying ``path``. What it caches are pure functions of their input (schemas, parsed manifests)."""
    import heparch.verify

    heparch.verify.verify(path, level="full")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", type=int, action="append", help="run only these case indices (reproduce a failure)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "heparch-fuzz")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data directory holding atlas-1lbb-ins1755298")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case before the child is killed")
    parser.add_argument("--memory-mib", type=int, default=1024, help="address space and data the child may add to what it inherits")
    parser.add_argument("--json", type=Path, help="write the summary as JSON here")
    parser.add_argument("--save-failures", type=Path, metavar="DIR", help="write each failing mutant here")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    memory = args.memory_mib * MIB
    with tempfile.TemporaryDirectory(prefix="heparch-fuzz-") as w:
        work = Path(w)
        (work / "tmp").mkdir()
        paths = build_corpus(args.cache, args.data)
        warm(paths["plain"])
        bases = load_bases(paths, work / "tmp", timeout=args.timeout, memory=memory)
        for b in bases:
            print(f"{b.name}: {len(b.data)} bytes, {len(b.frames)} frames, {len(b.signatures)} signatures", file=sys.stderr)
        cases = args.case or range(args.cases)
        start = time.perf_counter()
        tally = fuzz(
            bases, cases, work, seed=args.seed, timeout=args.timeout, memory=memory, save=args.save_failures, progress=lambda s: print(s, file=sys.stderr)
        )
        wall = time.perf_counter() - start
    print(tally.report())
    print(f"wall {wall:.0f} s; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    if args.json:
        summary = {
            **tally.to_json(),
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_seconds": round(wall, 1),
            "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(), "python": platform.python_version()},
            "heparch": __version__,
            "bundles": {b.name: {"bytes": len(b.data), "frames": len(b.frames), "signatures": sorted(b.signatures)} for b in bases},
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
