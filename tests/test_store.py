"""The container layers: zstd frame profile and strict ustar."""

from __future__ import annotations

import io
import tarfile

import pytest

from heparch.store import tar, zframes


@pytest.mark.parametrize("size", [1, 255, 256, 65791, 65792, 1 << 20, zframes.MAX_FRAME_CONTENT])
def test_frames_meet_profile_and_round_trip(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    frame = zframes.compress_frame(data, level=3)
    frames = list(zframes.iter_content(io.BytesIO(frame)))
    assert len(frames) == 1
    assert frames[0][1] == data
    assert (frame[4] & 0b00111111) == 0b00100100  # single segment, checksum; no dict id, reserved/unused 0


def test_empty_and_oversize_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="frame content"):
        zframes.compress_frame(b"")
    with pytest.raises(ValueError, match="frame content"):
        zframes.compress_frame(b"x" * (zframes.MAX_FRAME_CONTENT + 1))


@pytest.mark.parametrize(
    ("bit", "code"),
    [(0x08, "E002"), (0x10, "E002"), (0x04, "E002"), (0x01, "E002"), (0x20, "E002")],
)
def test_any_header_bit_flip_is_caught(bit: int, code: str) -> None:
    frame = bytearray(zframes.compress_frame(b"hello world" * 100))
    frame[4] ^= bit
    with pytest.raises(zframes.FrameError) as info:
        list(zframes.iter_content(io.BytesIO(bytes(frame))))
    assert info.value.code in {code, "E004", "E005"}


def test_skippable_frame_and_garbage() -> None:
    frame = zframes.compress_frame(b"abc")
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"junk"
    with pytest.raises(zframes.FrameError, match="skippable"):
        list(zframes.iter_content(io.BytesIO(frame + skippable)))
    with pytest.raises(zframes.FrameError) as info:
        list(zframes.iter_content(io.BytesIO(b"PK\x03\x04")))
    assert info.value.code == "E001"


def test_tar_header_is_canonical_and_python_reads_it() -> None:
    data = tar.entry("bundle/bagit.txt", b"hi\n") + tar.entry("bundle/signatures/" + "r" * 24 + "." + "k" * 64 + ".dsse.json", b"{}") + tar.END
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
    assert next((m.name, m.size, m.mode, m.mtime, m.uname, m.uid) for m in members) == ("bundle/bagit.txt", 3, 0o644, 0, "", 0)
    assert members[1].name.endswith(".dsse.json")
    assert tar.parse_header(data[:512]) == ("bundle/bagit.txt", 3)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.__setitem__(slice(156, 157), b"2"), "E011"),  # symlink type
        (lambda b: b.__setitem__(slice(156, 157), b"x"), "E013"),  # PAX
        (lambda b: b.__setitem__(slice(136, 137), b"1"), "E010"),  # mtime changed -> checksum
        (lambda b: b.__setitem__(slice(0, 20), b"bundle/../etc/passwd"), "E010"),
    ],
)
def test_tar_header_mutations(mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    block = bytearray(tar.header("bundle/data/manifest.json", 10))
    mutate(block)
    with pytest.raises(tar.TarHeaderError) as info:
        tar.parse_header(bytes(block))
    assert info.value.code == code


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


@pytest.mark.parametrize(
    ("name", "code"),
    [("bundle/../x", "E012"), ("/etc/passwd", "E012"), ("bundle\\x", "E012"), ("other/x", "E012"), ("bundle/a\x01b", "E012")],
)
def test_tar_unsafe_names(name: str, code: str) -> None:
    block = bytearray(tar.header("bundle/x", 1))
    block[0:100] = name.encode().ljust(100, b"\0")
    with pytest.raises(tar.TarHeaderError) as info:
        tar.parse_header(_with_checksum(block))
    assert info.value.code == code


def test_non_canonical_mode_is_refused() -> None:
    block = bytearray(tar.header("bundle/x", 1))
    block[100:108] = b"0000755\0"
    with pytest.raises(tar.TarHeaderError, match="not canonical"):
        tar.parse_header(_with_checksum(block))


@pytest.mark.parametrize(
    "field",
    [b"-0000000066\0", b"+0000000066\0", b" 0000000066\0", b"000000000_66"[:11] + b"\0", b"00000000086\0", b"\x80" + (54).to_bytes(11, "big"), b"\xff" * 12],
    ids=["minus", "plus", "space", "underscore", "not-octal", "base256", "base256-negative"],
)
def test_size_field_other_than_11_octal_digits_is_E010(field: bytes) -> None:
    """A negative size (``-0000000066``, which int(x, 8) reads) was an internal error (exit 3), found by conformance/E010_size_negative_octal."""
    block = bytearray(tar.header("bundle/bagit.txt", 54))
    block[124:136] = field
    with pytest.raises(tar.TarHeaderError, match="size field") as info:
        tar.parse_header(_with_checksum(block))
    assert info.value.code == "E010"
