"""Issue 11 item 1: the caps of the resource model (spec section 2.2.2, ``heparch.spec.limits``).

Each cap is exercised by a bundle that exceeds it (its code asserted, at ``verify`` and at
``heparch.open()``), and the caps are checked to admit real analyses. The spec's table of caps
and the constants are compared, so that the text names no cap the code does not enforce.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

import heparch
from heparch.build import AGENT
from heparch.errors import InvalidBundle
from heparch.spec import limits, strictjson
from heparch.spec.manifest_check import parse_manifest
from heparch.spec.models import Manifest
from heparch.store import layout, tar, writer, zframes
from heparch.verify import verify
from test_hardening import manifest_object

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "bundle-v1.md"
Files = dict[str, tuple[bytes, str, dict[str, str]]]


def _head(obj: dict[str, Any]) -> dict[str, bytes]:
    manifest_bytes = strictjson.canonical(obj)
    return layout.head_files(Manifest.from_json(obj), manifest_bytes, AGENT)


def _bundle(
    out: Path,
    obj: dict[str, Any],
    blobs: dict[str, bytes],
    *,
    frame: int = 1 << 23,
    listing: bytes | None = None,
    signatures: dict[str, bytes] | None = None,
) -> Path:
    """A bundle of manifest ``obj`` and ``blobs`` (by hex) whose payload is cut into frames of
    ``frame`` bytes; ``listing`` replaces the correct frames-sha256.txt."""
    head = _head(obj)
    with out.open("wb") as fh, (out.parent / (out.name + ".payload")).open("w+b") as spool:
        hw = writer.FrameWriter(fh)
        writer.write_head(hw, head)
        pw = writer.FrameWriter(spool)
        stream = b"".join(tar.entry(tar.ROOT + layout.BLOB_DIR + h, blobs[h]) for h in sorted(blobs)) + tar.END
        for start in range(0, len(stream), frame):
            pw.write(stream[start : start + frame])
            pw.cut()
        sw = writer.FrameWriter(fh, stored=True)
        sw.write(writer.signature_part(head, listing if listing is not None else layout.frames_listing(hw.frames, pw.frames), signatures or {}))
        sw.cut()
        spool.seek(0)
        fh.write(spool.read())
    return out


def _codes(path: Path, level: str = "structure") -> list[str]:
    return sorted({f.code for f in verify(path, level=level).report.errors})  # type: ignore[arg-type]


def _open_codes(path: Path) -> list[str]:
    with pytest.raises(InvalidBundle) as info:
        heparch.open(path)
    return sorted({f.code for f in info.value.findings})


def _one_file(data: bytes = b"{}", *, copies: int = 1) -> tuple[dict[str, Any], dict[str, bytes]]:
    files: Files = {f"f{i:05d}.json": (data, "attachment", {}) for i in range(copies)}
    obj = manifest_object(files)
    return obj, {hashlib.sha256(data).hexdigest(): data}


# --- what the manifest declares -------------------------------------------------------------


def _declared(count: int) -> dict[str, Any]:
    """A manifest of ``count`` distinct blobs of the largest size a tar entry holds (8 GiB - 1)."""
    obj, _ = _one_file(copies=count)
    for i, entry in enumerate(obj["files"]):
        entry["size"] = MAX_ENTRY
        entry["digest"] = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
    return obj


MAX_ENTRY = 8 * limits.GIB - 1


def test_a_declared_payload_beyond_256_gib_is_E018_before_any_blob_is_read(tmp_path: Path) -> None:
    obj = _declared(limits.PAYLOAD // MAX_ENTRY + 1)
    path = _bundle(tmp_path / "big.zst", obj, {})  # the blobs are absent: the reader must stop first
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]
    finding = next(f for f in verify(path).report.errors)
    assert finding.location == layout.MANIFEST
    assert "payload" in finding.message


def test_a_payload_at_the_cap_is_admitted_by_the_head_checks(tmp_path: Path) -> None:
    obj = _declared(limits.PAYLOAD // MAX_ENTRY)
    path = _bundle(tmp_path / "at.zst", obj, {})
    assert _codes(path) == ["E050"]  # past the head and its caps: the declared blobs are missing


def test_references_to_one_blob_beyond_the_cap_are_E018(tmp_path: Path) -> None:
    obj, blobs = _one_file(copies=limits.REFERENCES + 1)
    path = _bundle(tmp_path / "refs.zst", obj, blobs)
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]
    obj, blobs = _one_file(copies=limits.REFERENCES)
    assert verify(_bundle(tmp_path / "ok.zst", obj, blobs)).valid


def test_files_beyond_the_cap_are_E018(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files: Files = {f"f{i}.json": (str(i).encode(), "attachment", {}) for i in range(6)}
    obj = manifest_object(files)
    blobs = {hashlib.sha256(d).hexdigest(): d for d, _r, _n in files.values()}
    path = _bundle(tmp_path / "files.zst", obj, blobs)
    assert verify(path).valid
    monkeypatch.setattr(limits, "FILES", 5)  # 20,000 real entries take 4 s to parse: the rule is the same
    assert _codes(path) == ["E018"]
    assert "lists 6 files" in verify(path).report.errors[0].message


def test_caps_admit_a_5000_patch_file_analysis() -> None:
    files: Files = {"BkgOnly.json": (b"{}", "likelihood", {})}
    for i in range(5000):
        files[f"patches/patch.C1N2_{i:05d}_150.json"] = (str(i).encode(), "patch", {"likelihood": "BkgOnly.json", "patch.name": f"C1N2_{i:05d}_150"})
    manifest_bytes = strictjson.canonical(manifest_object(files))
    assert len(manifest_bytes) < limits.MANIFEST // 3
    manifest, findings = parse_manifest(manifest_bytes)
    assert manifest is not None
    assert not [f for f in findings if f.severity == "error"]
    head = layout.head_files(manifest, manifest_bytes, AGENT)
    assert len(head["manifest-sha256.txt"]) <= limits.MANIFEST_SHA256
    assert len(head["manifest-sha512.txt"]) <= limits.MANIFEST_SHA512
    assert len(manifest.files) <= limits.FILES // 3


# --- the head and the signature part --------------------------------------------------------


def test_what_a_reader_holds_before_the_payload_is_bounded() -> None:
    """issue 11: the caps allowed ~530 MiB before the payload (16 + 4 x 64 + 256 x 1 MiB)."""
    assert limits.HEAD_BYTES < 24 * limits.MIB
    assert limits.SIGNATURES * limits.SIGNATURE_SIZE == 4 * limits.MIB


def test_the_1lbb_head_is_far_below_the_caps(one_lbb_bundle: Path) -> None:
    from heparch.verify import check_head

    with one_lbb_bundle.open("rb") as fh:
        checked, ts = check_head(fh)
    assert checked.valid
    assert checked.manifest_bytes is not None
    assert checked.manifest is not None
    assert len(checked.manifest_bytes) * 100 < limits.MANIFEST
    assert len(checked.manifest.files) * 100 < limits.FILES
    assert ts.raw.tell() * 100 < limits.HEAD_BYTES  # the whole head and signature part, decompressed


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("bagit.txt", limits.BAGIT_TXT + 1),
        ("bag-info.txt", limits.BAG_INFO + 1),
        (layout.MANIFEST, limits.MANIFEST + 1),
        ("manifest-sha256.txt", limits.MANIFEST_SHA256 + 1),
        ("manifest-sha512.txt", limits.MANIFEST_SHA512 + 1),
    ],
)
def test_head_entries_beyond_their_cap_are_E018(name: str, size: int, tmp_path: Path) -> None:
    obj, _ = _one_file()
    head = _head(obj)
    path = tmp_path / "m.zst"
    with path.open("wb") as fh:
        fw = writer.FrameWriter(fh)
        for entry in layout.HEAD:
            fw.write(tar.entry(tar.ROOT + entry, head[entry] if entry != name else b" " * size))
        fw.write(tar.END)
        fw.cut()
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]


@pytest.mark.parametrize(
    "signatures",
    [
        {"signatures/a.sig": b"x" * (limits.SIGNATURE_SIZE + 1)},
        {f"signatures/s{i:03d}.sig": b"x" for i in range(limits.SIGNATURES + 1)},
    ],
    ids=["one-too-large", "too-many"],
)
def test_signature_part_beyond_its_caps_is_E018(signatures: dict[str, bytes], tmp_path: Path) -> None:
    obj, blobs = _one_file()
    path = _bundle(tmp_path / "s.zst", obj, blobs, signatures=signatures)
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]


def test_tag_manifest_beyond_its_cap_is_E018(tmp_path: Path) -> None:
    obj, _ = _one_file()
    head = _head(obj)
    path = tmp_path / "t.zst"
    with path.open("wb") as fh:
        fw = writer.FrameWriter(fh)
        writer.write_head(fw, head)
        sw = writer.FrameWriter(fh, stored=True)
        sw.write(tar.entry(tar.ROOT + layout.FRAMES, b"") + tar.entry(tar.ROOT + layout.TAGMANIFEST, b" " * (limits.TAGMANIFEST + 1)) + tar.END)
        sw.cut()
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]


def test_frames_listing_beyond_its_cap_is_E018(tmp_path: Path) -> None:
    obj, blobs = _one_file()
    path = _bundle(tmp_path / "l.zst", obj, blobs, listing=b"x" * (limits.FRAMES_LISTING + 1))
    assert _codes(path) == ["E018"]
    assert _open_codes(path) == ["E018"]


def test_frames_beyond_the_listing_stop_the_reader_at_the_first_one(tmp_path: Path) -> None:
    """Frames of one byte each: a reader records no more frames than frames-sha256.txt lists."""
    data = bytes(range(256)) * 8
    obj, blobs = _one_file(data)
    good = _bundle(tmp_path / "good.zst", obj, blobs, frame=512)
    assert verify(good).valid
    with good.open("rb") as fh:
        listing = writer.existing_parts(fh).listing
    short = b"".join(listing.splitlines(keepends=True)[:-3])  # the last three frames unlisted
    bad = _bundle(tmp_path / "bad.zst", obj, blobs, frame=512, listing=short)
    errors = verify(bad).report.errors
    assert [f.code for f in errors] == ["E007"]
    with bad.open("rb") as fh:
        frames = list(zframes.walk_frames(fh))
    assert errors[0].location == f"file@{frames[-3].offset}"
    assert "more frames than" in errors[0].message
    assert _open_codes(bad) == ["E007"]


# --- the spec names exactly the caps the code enforces --------------------------------------

#: row of the spec's table of caps -> the constant that enforces it
SPEC_ROWS = {
    "`bagit.txt`": limits.BAGIT_TXT,
    "`bag-info.txt`": limits.BAG_INFO,
    "`data/manifest.json`": limits.MANIFEST,
    "files listed in the manifest": limits.FILES,
    "`manifest-sha256.txt`": limits.MANIFEST_SHA256,
    "`manifest-sha512.txt`": limits.MANIFEST_SHA512,
    "`frames-sha256.txt`": limits.FRAMES_LISTING,
    "signature entries": limits.SIGNATURES,
    "a signature entry": limits.SIGNATURE_SIZE,
    "`tagmanifest-sha256.txt`": limits.TAGMANIFEST,
    "total payload": limits.PAYLOAD,
    "references to one blob": limits.REFERENCES,
    "patches of a patchset": limits.PATCHES,
    "operations of a patch": limits.OPERATIONS,
    "bins of a simplified likelihood": limits.BINS,
    "JSON values the `copy` operations of one patch add": limits.COPIED_VALUES,
    "JSON nesting depth": limits.DEPTH,
    "`arch.yaml` and trust policies": limits.YAML_BYTES,
}


def _spec_caps() -> dict[str, str]:
    text = SPEC.read_text("utf-8")
    section = text.split('<a id="limits"></a>', 1)[1].split("\n<a id=", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    return {cells[0].strip(): cells[1].strip() for cells in rows if len(cells) >= 2}


def test_the_spec_table_of_caps_is_what_the_code_enforces() -> None:
    table = _spec_caps()
    assert set(table) == set(SPEC_ROWS)
    for row, value in SPEC_ROWS.items():
        numbers = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", table[row])}
        assert value in numbers, (row, table[row], value)


def test_nesting_and_yaml_caps_are_the_limits() -> None:
    from heparch import config

    assert strictjson.MAX_DEPTH == config.MAX_DEPTH == limits.DEPTH
    assert config.MAX_YAML_BYTES == limits.YAML_BYTES
