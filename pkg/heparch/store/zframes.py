"""zstd frames under heparch's frame-header profile (spec section 2.1).

A bundle is a sequence of zstd frames, each with Single_Segment set, the
content checksum flag set, no dictionary ID, a minimal Frame_Content_Size field
and at most 8 MiB of content. The profile leaves no header bit free, so any
flipped byte is noticed. Frames are walked from their headers and block headers
alone; each frame is then decompressed on its own (bounded memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from heparch.errors import InvalidBundle
from heparch.findings import Finding

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_FRAME_CONTENT = 8 * 1024 * 1024
LEVEL = 9  # measured: 0.11 s per 8 MiB of JSON (level 19: 6.8 s) for 92% of its size
_BLOCK_MAX = 128 * 1024


class FrameError(InvalidBundle):
    """A frame breaks the profile or does not decode."""

    def __init__(self, code: str, offset: int, message: str) -> None:
        location = f"file@{offset}"
        super().__init__(f"{code} {location}: {message}", findings=[Finding(code, location, message)])
        self.code = code


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where one frame lies in the file and in the decompressed stream."""

    offset: int  # in the compressed file
    length: int  # compressed bytes, header to checksum
    content_size: int
    stored: bool = False  # every block is a raw (stored) block


def _fcs_bytes(size: int) -> tuple[int, bytes]:
    """The minimal Frame_Content_Size field for a single-segment frame: (flag, bytes)."""
    if size < 256:
        return 0, size.to_bytes(1, "little")
    if size < 65536 + 256:
        return 1, (size - 256).to_bytes(2, "little")
    return 2, size.to_bytes(4, "little")


def compress_frame(data: bytes, *, level: int = LEVEL) -> bytes:
    """One profile-conforming frame holding ``data`` (1 byte to 8 MiB)."""
    if not 0 < len(data) <= MAX_FRAME_CONTENT:
        raise ValueError(f"frame content must be 1..{MAX_FRAME_CONTENT} bytes, got {len(data)}")
    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        source_size=len(data),
        window_log=max(10, (len(data) - 1).bit_length()),  # window >= content: Single_Segment
        write_checksum=True,
        write_content_size=True,
        write_dict_id=False,
        threads=0,
    )
    frame = zstandard.ZstdCompressor(compression_params=params).compress(data)
    _parse_header(frame, 0, len(frame))  # our own output must meet the profile
    return frame


def _parse_header(buf: bytes, offset: int, file_size: int) -> tuple[int, int]:
    """Check the frame header at ``buf[0:]`` (``offset`` in the file); return (header length, content size)."""
    _check_magic(buf, offset)
    if len(buf) < 5:
        raise FrameError("E005", offset, "file ends inside a frame header (truncated)")
    fhd = buf[4]
    problems = _descriptor_problems(fhd)
    if problems:
        raise FrameError("E002", offset, "frame header breaks the profile: " + ", ".join(problems))
    fcs_flag = fhd >> 6
    fcs_len = {0: 1, 1: 2, 2: 4}[fcs_flag]
    if len(buf) < 5 + fcs_len:
        raise FrameError("E005", offset, "file ends inside a frame header (truncated)")
    raw = int.from_bytes(buf[5 : 5 + fcs_len], "little")
    size = raw + 256 if fcs_flag == 1 else raw
    if _fcs_bytes(size)[0] != fcs_flag:
        raise FrameError("E002", offset, f"Frame_Content_Size field is not minimal for {size} bytes")
    if not 0 < size <= MAX_FRAME_CONTENT:
        raise FrameError("E003", offset, f"frame content size {size} outside 1..{MAX_FRAME_CONTENT}")
    return 5 + fcs_len, size


def _check_magic(buf: bytes, offset: int) -> None:
    """E005 for a truncated magic number, E006 for a skippable frame, E001/E006 for anything else but zstd's."""
    if len(buf) < 4:
        raise FrameError("E005", offset, "file ends inside a frame header (truncated)")
    magic = buf[:4]
    if magic == MAGIC:
        return
    if 0x50 <= magic[0] <= 0x5F and magic[1:] == b"\x2a\x4d\x18":
        raise FrameError("E006", offset, "skippable frames are not allowed")
    raise FrameError("E001" if offset == 0 else "E006", offset, f"not a zstd frame (magic {magic.hex()})")


def _descriptor_problems(fhd: int) -> list[str]:
    """How a Frame_Header_Descriptor breaks the profile (DESIGN section 2), in the order they are reported."""
    checks = (
        (not fhd & 0x20, "Single_Segment flag not set"),
        (bool(fhd & 0x18), "unused or reserved bit set"),
        (not fhd & 0x04, "content checksum flag not set"),
        (bool(fhd & 0x03), "dictionary ID present"),
        (fhd >> 6 == 3, "8-byte Frame_Content_Size field"),
    )
    return [message for broken, message in checks if broken]


def _frame_length(fh: BinaryIO, offset: int, header_len: int, content_size: int, file_size: int) -> tuple[int, bool]:
    """Walk block headers from the end of the frame header; return (compressed length, all blocks raw)."""
    pos = offset + header_len
    stored = True
    last = False
    while not last:
        last, btype, bsize = _block_header(fh, pos, content_size)
        stored = stored and btype == 0
        pos += 3 + (1 if btype == 1 else bsize)
        if pos > file_size:
            raise FrameError("E005", offset, "file ends inside a frame (truncated)")
    pos += 4  # content checksum
    if pos > file_size:
        raise FrameError("E005", offset, "file ends inside a frame checksum (truncated)")
    return pos - offset, stored


def _block_header(fh: BinaryIO, pos: int, content_size: int) -> tuple[bool, int, int]:
    """(last block, block type, block size) of the block header at ``pos``; E004 for a reserved type or a block too large."""
    fh.seek(pos)
    bh = fh.read(3)
    if len(bh) < 3:
        raise FrameError("E005", pos, "file ends inside a frame (truncated)")
    value = int.from_bytes(bh, "little")
    last, btype, bsize = bool(value & 1), (value >> 1) & 3, value >> 3
    if btype == 3:
        raise FrameError("E004", pos, "reserved block type")
    if bsize > _BLOCK_MAX or (btype == 0 and bsize > content_size):
        raise FrameError("E004", pos, f"block size {bsize} too large")
    return last, btype, bsize


def walk_frames(fh: BinaryIO) -> Iterator[Frame]:
    """Yield every frame of the file, checking each header against the profile."""
    fh.seek(0, 2)
    file_size = fh.tell()
    if file_size == 0:
        raise FrameError("E001", 0, "empty file: not a bundle")
    offset = 0
    while offset < file_size:
        fh.seek(offset)
        head = fh.read(18)
        header_len, content_size = _parse_header(head, offset, file_size)
        length, stored = _frame_length(fh, offset, header_len, content_size, file_size)
        yield Frame(offset, length, content_size, stored)
        offset += length


_DCTX = zstandard.ZstdDecompressor(max_window_size=MAX_FRAME_CONTENT)


def decompress_frame(data: bytes, frame: Frame) -> bytes:
    """Decompress one frame's bytes, checking content size and checksum."""
    try:
        out = _DCTX.decompress(data, max_output_size=frame.content_size)
    except zstandard.ZstdError as exc:
        raise FrameError("E004", frame.offset, f"frame does not decode: {exc}") from None
    if len(out) != frame.content_size:
        raise FrameError("E004", frame.offset, f"frame decodes to {len(out)} bytes, header says {frame.content_size}")
    return out


def iter_content(fh: BinaryIO) -> Iterator[tuple[Frame, bytes, str]]:
    """Yield (frame, decompressed content, sha256 hex of the compressed frame) for every frame, in order."""
    for frame in walk_frames(fh):
        fh.seek(frame.offset)
        raw = fh.read(frame.length)
        digest = hashlib.sha256(raw).hexdigest()
        data = decompress_frame(raw, frame)
        del raw  # hold at most one frame's bytes while the consumer works (bounded memory)
        yield frame, data, digest
        del data


def stored_frame(data: bytes) -> bytes:
    """A profile-conforming frame of raw (stored) blocks: every byte is significant.

    zstd's compressed blocks contain bits the decoder ignores (seen: 12 of 9,128
    single-bit flips of a compressed frame decode to the same content), so parts
    that cannot be covered by a digest elsewhere are stored, not compressed.
    The content checksum is the one zstd computes for the same content.
    """
    if not 0 < len(data) <= MAX_FRAME_CONTENT:
        raise ValueError(f"frame content must be 1..{MAX_FRAME_CONTENT} bytes, got {len(data)}")
    flag, fcs = _fcs_bytes(len(data))
    out = bytearray(MAGIC + bytes([flag << 6 | 1 << 5 | 1 << 2]) + fcs)
    for start in range(0, len(data), _BLOCK_MAX):
        block = data[start : start + _BLOCK_MAX]
        last = int(start + _BLOCK_MAX >= len(data))
        out += (last | len(block) << 3).to_bytes(3, "little") + block
    out += compress_frame(data, level=1)[-4:]
    return bytes(out)
