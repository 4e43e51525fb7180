"""arch verify: levels, JSON report, and corruption anywhere in a bundle."""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import tarfile
from pathlib import Path

import pytest

from heparch.build import build
from heparch.store import layout
from heparch.verify import verify

from clihelp import run


@pytest.fixture
def small_bundle(analysis: Path, tmp_path: Path) -> Path:
    return build(analysis, output=tmp_path / "small.zst").output


def _untar(bundle: Path, dest: Path) -> Path:
    dest.mkdir()
    data = subprocess.run(["zstd", "-dc", str(bundle)], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return dest / "bundle"


def test_valid_bundle_json_report(small_bundle: Path) -> None:
    code, out, err = run("verify", str(small_bundle), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["valid"] is True
    assert report["level"] == "full"
    assert report["identity"].startswith("sha256:")
    assert {f["code"] for f in report["findings"]} == {"W002", "W003", "W004"}
    assert set(report["findings"][0]) == {"code", "severity", "location", "message", "expected", "found"}


def test_identity_is_sha256_of_manifest_and_bag_is_valid(small_bundle: Path, tmp_path: Path) -> None:
    import bagit

    bag = _untar(small_bundle, tmp_path / "x")
    manifest = (bag / "data" / "manifest.json").read_bytes()
    code, out, _ = run("inspect", str(small_bundle), "--json")
    assert code == 0
    assert json.loads(out)["identity"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    bagit.Bag(str(bag)).validate()


def test_1lbb_is_a_valid_bag_and_verifies(one_lbb_bundle: Path, tmp_path: Path) -> None:
    import bagit

    bagit.Bag(str(_untar(one_lbb_bundle, tmp_path / "x"))).validate()
    result = verify(one_lbb_bundle)
    assert result.valid, [f.one_line() for f in result.report.errors]


def _expect_invalid(data: bytes, tmp_path: Path, what: str) -> None:
    p = tmp_path / "mut.zst"
    p.write_bytes(data)
    result = verify(p, level="fixity")
    assert not result.valid, what
    assert all(f.code[0] in "EW" and len(f.code) == 4 for f in result.report.findings), what


def test_every_single_byte_flip_is_caught(small_bundle: Path, tmp_path: Path) -> None:
    data = small_bundle.read_bytes()
    for i in range(len(data)):
        mutated = bytearray(data)
        mutated[i] ^= 1 << (i % 8)  # every byte, each bit position in turn
        _expect_invalid(bytes(mutated), tmp_path, f"flip bit {i % 8} at {i}")


def test_every_truncation_is_caught(small_bundle: Path, tmp_path: Path) -> None:
    data = small_bundle.read_bytes()
    for n in range(len(data)):
        _expect_invalid(data[:n], tmp_path, f"truncated to {n}")


def test_insertions_and_deletions_are_caught(small_bundle: Path, tmp_path: Path) -> None:
    data = small_bundle.read_bytes()
    rng = random.Random(7)
    for i in range(len(data) + 1):
        byte = bytes([rng.randrange(256)])
        _expect_invalid(data[:i] + byte + data[i:], tmp_path, f"insert at {i}")
        if i < len(data):
            _expect_invalid(data[:i] + data[i + 1 :], tmp_path, f"delete at {i}")


def test_corrupt_bundle_cli_exit_1_without_traceback(small_bundle: Path, tmp_path: Path) -> None:
    data = bytearray(small_bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.zst"
    bad.write_bytes(bytes(data))
    code, out, err = run("verify", str(bad), "--json")
    assert code == 1
    assert "Traceback" not in err
    assert json.loads(out)["valid"] is False


@pytest.mark.parametrize("level", ["structure", "fixity", "full"])
def test_levels(small_bundle: Path, level: str) -> None:
    assert verify(small_bundle, level=level).valid  # type: ignore[arg-type]


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    code, _, err = run("verify", str(tmp_path / "nope.zst"))
    assert code == 2
    assert "nope.zst" in err


def test_unknown_level_is_usage_error(small_bundle: Path) -> None:
    code, _, err = run("verify", str(small_bundle), "--level", "quick")
    assert code == 2
    assert "structure, fixity, full" in err


def test_fixity_works_without_numpy_scipy_pyhf(small_bundle: Path) -> None:
    code = f"""
import sys
for name in ("numpy", "scipy", "pyhf", "jsonpatch"):
    sys.modules[name] = None
from heparch.verify import verify
import heparch.spec.models, heparch.store.writer, heparch.store.reader
r = verify({str(small_bundle)!r}, level="fixity")
assert r.valid, r.report.findings
assert "numpy" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""
    done = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_python_tarfile_reads_the_stream(small_bundle: Path) -> None:
    import zstandard

    with small_bundle.open("rb") as fh:
        raw = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        names = tf.getnames()
    assert names[:5] == ["bundle/" + n for n in layout.HEAD]
    assert names[5:7] == ["bundle/frames-sha256.txt", "bundle/tagmanifest-sha256.txt"]
    assert all(n.startswith("bundle/data/blobs/sha256/") for n in names[7:])
