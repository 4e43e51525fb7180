"""Read a bundle: its decompressed tar stream, strictly, in one pass or by random access."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import BinaryIO

from heparch.errors import InvalidBundle
from heparch.findings import Finding
from heparch.store import tar, zframes


class StreamError(InvalidBundle):
    """The stream breaks the container profile at some point; reading cannot go on."""

    def __init__(self, code: str, location: str, message: str) -> None:
        super().__init__(f"{code} {location}: {message}", findings=[Finding(code, location, message)])
        self.code = code


class RawStream:
    """The decompressed tar stream, frame by frame, with a hard cap on its total length.

    Only the unread rest of the current frame is held: reads that span frames join
    the pieces, and :meth:`read_view` hands out slices of a frame without copying.
    """

    def __init__(self, fh: BinaryIO, *, cap: int | None = None) -> None:
        self._frames = zframes.iter_content(fh)
        self._buf = memoryview(b"")  # the unread rest of the current frame's content
        self._pos = 0  # stream offset of _buf[0]
        self.cap = cap
        self.frame_starts: list[int] = []
        self.frames: list[tuple[zframes.Frame, str]] = []  # every frame read so far, with its sha256
        self.max_frames: int | None = None  # more frames than this is E007 (what frames-sha256.txt lists)
        self._exhausted = False

    def _fill(self) -> bool:
        """Make the next frame current (only called once the current one is used up)."""
        if self._exhausted:
            return False
        self._buf = memoryview(b"")  # drop the used-up frame before decompressing the next
        try:
            frame, data, digest = next(self._frames)
        except StopIteration:
            self._exhausted = True
            return False
        except zframes.FrameError as exc:
            raise StreamError(exc.code, exc.findings[0].location, exc.findings[0].message) from None
        if self.cap is not None and self._pos + len(data) > self.cap:
            raise StreamError("E018", f"stream@{self._pos}", f"decompressed stream exceeds the {self.cap} bytes the manifest implies (bomb or trailing data)")
        if self.max_frames is not None and len(self.frames) >= self.max_frames:
            raise StreamError("E007", f"file@{frame.offset}", f"more frames than the {self.max_frames} frames-sha256.txt and the signature part account for")
        self.frame_starts.append(self._pos)
        self.frames.append((frame, digest))
        self._buf = memoryview(data)
        return True

    def tell(self) -> int:
        return self._pos

    def read_view(self, n: int) -> memoryview:
        """Up to ``n`` bytes from the current frame, without copying; empty only at the end of the stream."""
        if not len(self._buf) and n > 0:
            self._fill()
        out = self._buf[:n]
        self._buf = self._buf[len(out) :]
        self._pos += len(out)
        return out

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the stream."""
        if len(self._buf) >= n:
            out = bytes(self._buf[:n])
            self._buf = self._buf[n:]
            self._pos += n
            return out
        parts = []
        while n > 0:
            piece = self.read_view(n)
            if not piece:
                break
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    def at_boundary(self) -> bool:
        """True when everything read so far ends exactly at the end of a frame."""
        return not len(self._buf)

    def at_end(self) -> bool:
        return not len(self._buf) and not self._fill()


class TarStream:
    """Strict sequential tar entries over a :class:`RawStream`."""

    def __init__(self, raw: RawStream) -> None:
        self.raw = raw

    def next_header(self) -> tuple[str, int] | None:
        """The next entry's (name, size), or None after a correct end of archive."""
        offset = self.raw.tell()
        block = self.raw.read(tar.BLOCK)
        if len(block) < tar.BLOCK:
            raise StreamError("E017", f"stream@{offset}", "archive ends before its end-of-archive blocks (truncated)")
        if block == b"\0" * tar.BLOCK:
            second = self.raw.read(tar.BLOCK)
            if second != b"\0" * tar.BLOCK:
                raise StreamError("E016", f"stream@{offset}", "end of archive is not two zero blocks")
            if not self.raw.at_end():
                raise StreamError("E016", f"stream@{self.raw.tell()}", "data after the end-of-archive blocks")
            return None
        try:
            return tar.parse_header(block)
        except tar.TarHeaderError as exc:
            raise StreamError(exc.code, f"stream@{offset}", str(exc)) from None

    def iter_data(self, name: str, size: int, chunk: int = 1 << 20) -> Iterator[memoryview]:
        """The entry's content in read-only views of at most ``chunk`` bytes (each within one
        frame, not copied), then its zero padding (checked)."""
        left = size
        while left:
            data = self.raw.read_view(min(chunk, left))
            if not data:
                raise StreamError("E017", name, f"archive ends inside {name} (truncated)")
            left -= len(data)
            yield data
            del data  # the consumer may let go of the frame before the next one is decompressed
        pad = tar.padding(size)
        if pad:
            got = self.raw.read(pad)
            if len(got) < pad:
                raise StreamError("E017", name, f"archive ends inside {name} (truncated)")
            if got.count(0) != pad:
                raise StreamError("E016", name, "non-zero bytes in the padding after the entry")

    def read_data(self, name: str, size: int) -> bytes:
        return b"".join(self.iter_data(name, size))


class RandomAccess:
    """Read any byte range of the decompressed stream, decompressing only the frames it spans."""

    def __init__(self, fh: BinaryIO, *, max_frames: int | None = None) -> None:
        """Index the frames of ``fh``; more than ``max_frames`` of them is E007 (a reader passes
        what the checked frames-sha256.txt allows, so the index stays within its cap)."""
        self.fh = fh
        self.frames: list[zframes.Frame] = []
        for frame in zframes.walk_frames(fh):
            if max_frames is not None and len(self.frames) >= max_frames:
                raise StreamError("E007", f"file@{frame.offset}", f"more frames than the {max_frames} frames-sha256.txt and the signature part account for")
            self.frames.append(frame)
        self.starts: list[int] = []
        pos = 0
        for frame in self.frames:
            self.starts.append(pos)
            pos += frame.content_size
        self.size = pos

    def iter_range(self, start: int, length: int) -> Iterator[bytes]:
        end = start + length
        if end > self.size:
            raise StreamError("E017", f"stream@{start}", "range beyond the end of the bundle (truncated)")
        i = bisect.bisect_right(self.starts, start) - 1
        while start < end:
            frame = self.frames[i]
            self.fh.seek(frame.offset)
            data = zframes.decompress_frame(self.fh.read(frame.length), frame)
            lo = start - self.starts[i]
            piece = data[lo : lo + end - start]
            yield piece
            start += len(piece)
            i += 1
