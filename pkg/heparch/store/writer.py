"""Write a bundle: tar entries in the fixed order, cut into profile-conforming zstd frames.

A new frame starts at each part boundary (head, signatures, payload) and every
8 MiB, so signing can rewrite the signature part and copy the others byte for
byte. Output goes to a temporary file beside the target and is renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from heparch.store import layout, tar, zframes

CHUNK = 1024 * 1024


class FrameWriter:
    """Buffers a tar stream and writes it as frames of at most 8 MiB; :meth:`cut` ends a part."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= zframes.MAX_FRAME_CONTENT:
            self.out.write(zframes.compress_frame(bytes(self.buffer[: zframes.MAX_FRAME_CONTENT])))
            del self.buffer[: zframes.MAX_FRAME_CONTENT]

    def cut(self) -> None:
        if self.buffer:
            self.out.write(zframes.compress_frame(bytes(self.buffer)))
            self.buffer.clear()


def signature_part(head: Mapping[str, bytes], signatures: Mapping[str, bytes]) -> bytes:
    """The tar bytes of the signature part: signature files, sorted, then the tag manifest."""
    out = bytearray()
    for name in sorted(signatures):
        out += tar.entry(tar.ROOT + name, signatures[name])
    out += tar.entry(tar.ROOT + layout.TAGMANIFEST, layout.tag_manifest(head, signatures))
    return bytes(out)


def write_head(fw: FrameWriter, head: Mapping[str, bytes]) -> None:
    for name in layout.HEAD:
        fw.write(tar.entry(tar.ROOT + name, head[name]))
    fw.cut()


def write_blob(fw: FrameWriter, hex_: str, size: int, chunks: Iterator[bytes]) -> None:
    """Write one blob entry from ``chunks`` (which must total ``size`` bytes)."""
    fw.write(tar.header(tar.ROOT + layout.BLOB_DIR + hex_, size))
    written = 0
    for chunk in chunks:
        written += len(chunk)
        fw.write(chunk)
    if written != size:
        raise OSError(f"blob {hex_} changed while it was written ({written} bytes, expected {size})")
    fw.write(b"\0" * tar.padding(size))


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target``, renamed onto it only if the block succeeds."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bundle(
    target: Path,
    head: Mapping[str, bytes],
    signatures: Mapping[str, bytes],
    blob_sizes: Mapping[str, int],
    open_blob: Callable[[str], Iterator[bytes]],
) -> None:
    """Write a whole bundle atomically. ``open_blob(hex)`` yields a blob's bytes."""
    with atomic_output(target) as out:
        fw = FrameWriter(out)
        write_head(fw, head)
        fw.write(signature_part(head, signatures))
        fw.cut()
        for hex_ in sorted(blob_sizes):
            write_blob(fw, hex_, blob_sizes[hex_], open_blob(hex_))
        fw.write(tar.END)
        fw.cut()
