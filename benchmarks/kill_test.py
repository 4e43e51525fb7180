"""kill -9 at random moments of ``arch build`` and ``arch sign`` (issue 11's acceptance: 90 kills).

Each round restores the old bundle at the destination, starts the command, kills it with
SIGKILL after a random (seeded) fraction of its measured duration, and checks that:

- the destination is never partial: it is the old bundle or the new one, and it verifies;
- after one further run of the same command (to completion), no heparch temporary is
  left, neither beside the destination nor in the system temporary directory (``TMPDIR``
  points at a private directory that must stay empty).

It prints what the kills left behind before the further run (O_TMPFILE outputs leave
nothing; a kill between naming and renaming leaves a locked ``.X.zst.*.tmp`` that the
next run sweeps). ``tests/test_tempfiles.py`` runs a short slice of it.

Usage: python benchmarks/kill_test.py [--kills 90] [--seed 0] [--noise-mib 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-analysis"
EPOCH = "1700000000"


@dataclasses.dataclass
class Stats:
    kills: int = 0
    old: int = 0  # the kill left the old bundle in place
    new: int = 0  # the kill came after the rename
    left_by_kill: int = 0  # temporaries present right after a kill (the further run must sweep them)
    left_after_rerun: int = 0  # must stay 0
    problems: list[str] = dataclasses.field(default_factory=list)


def temporaries(dest: Path, tmpdir: Path) -> list[Path]:
    """heparch's temporaries of ``dest`` beside it, and anything in the private ``TMPDIR``."""
    beside = [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    return beside + list(tmpdir.iterdir())


class Rig:
    """A work directory with an analysis, an old and a new bundle of it, and a signing key."""

    def __init__(self, work: Path, noise_mib: int, seed: int) -> None:
        self.work = work
        self.tmpdir = work / "tmp"
        self.tmpdir.mkdir()
        self.env = {**os.environ, "TMPDIR": str(self.tmpdir), "SOURCE_DATE_EPOCH": EPOCH}
        self.analysis = work / "analysis"
        shutil.copytree(EXAMPLE, self.analysis)
        (self.analysis / "noise.bin").write_bytes(random.Random(seed).randbytes(noise_mib << 20))  # several frames to write
        self.dest = work / "out" / "bundle.zst"
        self.dest.parent.mkdir()
        self.arch("build", str(self.analysis), "-o", str(self.dest))
        self.old_build = self.dest.read_bytes()
        (self.analysis / "NEWS.md").write_text("a change: the next build differs\n")
        self.arch("keygen", "-o", str(work / "key"))
        self.key = work / "key"

    def arch(self, *args: str) -> float:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "heparch", *args], env=self.env, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"arch {' '.join(args)}: exit {done.returncode}: {done.stderr.decode(errors='replace')}")
        return time.monotonic() - start

    def command(self, which: str) -> list[str]:
        if which == "build":
            return ["build", str(self.analysis), "-o", str(self.dest)]
        return ["sign", str(self.dest), "--key", str(self.key), "--role", "analysis-team", "--ssh"]


def _verifies(dest: Path) -> bool:
    from heparch.verify import verify

    return verify(dest, level="fixity").valid


def run(work: Path, *, kills: int, seed: int, noise_mib: int = 8) -> Stats:
    """``kills`` rounds alternating build and sign; returns what happened."""
    rig = Rig(work, noise_mib, seed)
    rng = random.Random(seed)
    stats = Stats()
    expected: dict[str, tuple[bytes, bytes, float]] = {}
    for which in ("build", "sign"):
        old = rig.old_build if which == "build" else _built_new(rig)
        rig.dest.write_bytes(old)
        duration = rig.arch(*rig.command(which))
        expected[which] = (old, rig.dest.read_bytes(), duration)
    for i in range(kills):
        which = ("build", "sign")[i % 2]
        old, new, duration = expected[which]
        rig.dest.write_bytes(old)
        proc = subprocess.Popen([sys.executable, "-m", "heparch", *rig.command(which)], env=rig.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * rng.uniform(0.05, 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stats.kills += 1
        now = rig.dest.read_bytes()
        if now not in (old, new):
            stats.problems.append(f"kill {i} ({which}): the destination is neither the old nor the new bundle")
        elif not _verifies(rig.dest):
            stats.problems.append(f"kill {i} ({which}): the destination does not verify")
        stats.old += now == old
        stats.new += now == new
        stats.left_by_kill += len(temporaries(rig.dest, rig.tmpdir))
        rig.dest.write_bytes(old)
        rig.arch(*rig.command(which))  # the further run
        left = temporaries(rig.dest, rig.tmpdir)
        stats.left_after_rerun += len(left)
        if left:
            stats.problems.append(f"kill {i} ({which}): left after a further run: {sorted(p.name for p in left)}")
    return stats


def _built_new(rig: Rig) -> bytes:
    """The bundle sign starts from: the new build (so build's and sign's outputs differ)."""
    rig.arch(*rig.command("build"))
    return rig.dest.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-mib", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill-test-") as tmp:
        stats = run(Path(tmp), kills=args.kills, seed=args.seed, noise_mib=args.noise_mib)
    doc = dataclasses.asdict(stats)
    print(json.dumps(doc, indent=1))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    sys.exit(1 if stats.problems else 0)


if __name__ == "__main__":
    main()
