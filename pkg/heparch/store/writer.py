"""Write a bundle: tar entries in the fixed order, cut into profile-conforming zstd frames.

A new frame starts at each part boundary (head, signatures, payload) and every
8 MiB, so signing can rewrite the signature part and copy the others byte for
byte. Output goes to a temporary file beside the target and is renamed into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from heparch.errors import IntegrityError
from heparch.store import layout, tar, tmpfiles, zframes
from heparch.store.reader import RawStream, TarStream

CHUNK = 1024 * 1024


class FrameWriter:
    """Buffers a tar stream and writes it as frames of at most 8 MiB; :meth:`cut` ends a part.

    ``stored`` frames hold raw blocks (the signature part); the others are compressed.
    ``frames`` records (compressed length, sha256) of every frame written.
    """

    def __init__(self, out: BinaryIO, *, stored: bool = False) -> None:
        self.out = out
        self.stored = stored
        self.buffer = bytearray()
        self.frames: list[tuple[int, str]] = []

    def _emit(self, data: bytes) -> None:
        frame = zframes.stored_frame(data) if self.stored else zframes.compress_frame(data)
        self.out.write(frame)
        self.frames.append((len(frame), hashlib.sha256(frame).hexdigest()))

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= zframes.MAX_FRAME_CONTENT:
            self._emit(bytes(self.buffer[: zframes.MAX_FRAME_CONTENT]))
            del self.buffer[: zframes.MAX_FRAME_CONTENT]

    def cut(self) -> None:
        if self.buffer:
            self._emit(bytes(self.buffer))
            self.buffer.clear()


def signature_part(head: Mapping[str, bytes], frames_listing: bytes, signatures: Mapping[str, bytes]) -> bytes:
    """The tar bytes of the signature part: frames-sha256.txt, signature files (sorted), the tag manifest."""
    tags = {layout.FRAMES: frames_listing, **signatures}
    out = bytearray(tar.entry(tar.ROOT + layout.FRAMES, frames_listing))
    for name in sorted(signatures):
        out += tar.entry(tar.ROOT + name, signatures[name])
    out += tar.entry(tar.ROOT + layout.TAGMANIFEST, layout.tag_manifest(head, tags))
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
def atomic_output(target: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A new file for ``target``, renamed onto it only if the block succeeds.

    It is unnamed until then (see :mod:`heparch.store.tmpfiles`): an exception, Ctrl-C,
    SIGTERM or kill -9 leaves the old target and no temporary file; stale temporaries of
    the same target (from a kill) are removed first, never a concurrent run's.

    The new file gets ``mode``, by default what the umask gives a new file (0644 under the
    usual umask 022); a rewrite in place passes the old file's mode, so that signing an
    embargoed 0600 bundle does not make it readable by everyone.
    """
    target = Path(target)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with tmpfiles.output(target) as out:
        yield out.file
        out.commit(mode)


def write_bundle(
    target: Path,
    head: Mapping[str, bytes],
    signatures: Mapping[str, bytes],
    blob_sizes: Mapping[str, int],
    open_blob: Callable[[str], Iterator[bytes]],
) -> None:
    """Write a whole bundle atomically. ``open_blob(hex)`` yields a blob's bytes.

    The payload is compressed first (into a temporary file) because the signature
    part, which comes before it, lists the digests of its frames.
    """
    with atomic_output(target) as out, tempfile.TemporaryFile(dir=Path(target).parent) as spool:
        hw = FrameWriter(out)
        write_head(hw, head)
        pw = FrameWriter(spool)
        for hex_ in sorted(blob_sizes):
            write_blob(pw, hex_, blob_sizes[hex_], open_blob(hex_))
        pw.write(tar.END)
        pw.cut()
        sw = FrameWriter(out, stored=True)
        sw.write(signature_part(head, layout.frames_listing(hw.frames, pw.frames), signatures))
        sw.cut()
        spool.seek(0)
        shutil.copyfileobj(spool, out, CHUNK)


@dataclasses.dataclass(frozen=True)
class Parts:
    """The parts of an existing bundle that signing keeps: the head files, the frames listing,
    the signature files, and where the head and payload frames lie in the file."""

    head: dict[str, bytes]
    listing: bytes
    signatures: dict[str, bytes]
    head_frames: list[zframes.Frame]
    payload_frames: list[zframes.Frame]


def existing_parts(fh: BinaryIO) -> Parts:
    """Read the head and the signature part of a (verified) bundle and locate its frames."""
    frames = list(zframes.walk_frames(fh))
    fh.seek(0)
    raw = RawStream(fh)
    ts = TarStream(raw)

    def entry(want: str | None = None) -> tuple[str, bytes]:
        header = ts.next_header()
        if header is None or not header[0].startswith(tar.ROOT) or (want is not None and header[0] != tar.ROOT + want):
            raise IntegrityError(f"the bundle changed while it was being signed (expected {want or 'an entry'})")
        name = header[0][len(tar.ROOT) :]
        return name, ts.read_data(name, header[1])

    head = dict(entry(name) for name in layout.HEAD)
    n_head = len(raw.frames)
    _, listing = entry(layout.FRAMES)
    signatures: dict[str, bytes] = {}
    while True:
        name, data = entry()
        if name == layout.TAGMANIFEST:
            break
        signatures[name] = data
    if not raw.at_boundary():
        raise IntegrityError("the signature part does not end at a frame boundary")
    return Parts(head, listing, signatures, frames[:n_head], frames[len(raw.frames) :])


def _copy_frames(fh: BinaryIO, out: BinaryIO, frames: list[zframes.Frame]) -> list[tuple[int, str]]:
    """Copy ``frames`` byte for byte; return their (length, sha256)."""
    digests = []
    for frame in frames:
        fh.seek(frame.offset)
        h = hashlib.sha256()
        left = frame.length
        while left:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"the bundle ended while its frame at {frame.offset} was copied")
            h.update(chunk)
            out.write(chunk)
            left -= len(chunk)
        digests.append((frame.length, h.hexdigest()))
    return digests


def rewrite_signature_part(target: Path, fh: BinaryIO, parts: Parts, signatures: Mapping[str, bytes]) -> None:
    """Write ``target`` anew (temporary file + rename) with the signature part holding ``signatures``.

    The head and payload frames are copied from ``fh`` byte for byte and checked against
    frames-sha256.txt as they are copied, so the identity and the listing cannot change; only
    the stored frames of the signature part are written again. A kill at any moment leaves
    the old bundle (and at worst a temporary file beside it that the next run removes).
    """
    with atomic_output(target, mode=stat.S_IMODE(os.fstat(fh.fileno()).st_mode)) as out:
        head = _copy_frames(fh, out, parts.head_frames)
        sw = FrameWriter(out, stored=True)
        sw.write(signature_part(parts.head, parts.listing, signatures))
        sw.cut()
        payload = _copy_frames(fh, out, parts.payload_frames)
        if layout.frames_listing(head, payload) != parts.listing:
            raise IntegrityError(f"{target}: the head or payload frames differ from frames-sha256.txt; nothing was written (run 'arch verify {target}')")
