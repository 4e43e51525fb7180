"""A bundle opened for reading: its manifest, and hash-checked reads of its files.

The packager's reader, below the domain model (:mod:`heparch.analysis` reads through it what a
bundle holds) and the Python API (:class:`heparch.api.Bundle` adds the bundle's likelihoods as
pyhf objects). Opening checks the container profile, the head and the manifest with ``verify``'s
own head checks and caps (spec section 2.2.2): memory is bounded whatever the bundle declares,
and what opens is what ``arch verify --level structure`` reads. Each read checks the bytes it
returns against the manifest's digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Self

from heparch.errors import InputError, IntegrityError, InvalidBundle
from heparch.spec import strictjson
from heparch.spec.models import FileEntry, Manifest
from heparch.store import layout, tar
from heparch.store.reader import RandomAccess
from heparch.verify import check_head


class OpenBundle:
    """A bundle opened for reading: its manifest, and hash-checked access to any file."""

    def __init__(self, path: str | Path, *, fileobj: BinaryIO | None = None) -> None:
        """Open ``path``; or, with ``fileobj``, read that open file (``path`` only names it in
        messages; closing the bundle leaves ``fileobj`` open for its owner)."""
        self.path = Path(path)
        self._owned = fileobj is None
        self._fh: BinaryIO = _open_file(self.path) if fileobj is None else fileobj
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self._fh.seek(0)
        checked, ts = check_head(self._fh)
        errors = checked.report.errors
        if checked.manifest is None or checked.manifest_bytes is None or errors:
            raise InvalidBundle(f"{self.path}: not a valid bundle (run 'arch verify {self.path}' for the full report)", findings=errors)
        self.signatures: dict[str, bytes] = checked.signatures
        self.manifest_bytes = checked.manifest_bytes
        self.manifest: Manifest = checked.manifest
        self.identity = layout.identity(self.manifest_bytes)
        self._ra = RandomAccess(self._fh, max_frames=ts.raw.max_frames)
        self._offsets = _blob_offsets(self.manifest, ts.raw.tell())

    def close(self) -> None:
        if self._owned:
            self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listing -------------------------------------------------------------------------
    def files(self) -> list[FileEntry]:
        return list(self.manifest.files)

    def entry(self, path: str) -> FileEntry:
        try:
            return self.manifest.file(path)
        except KeyError:
            raise InputError(f"{self.path}: no file {path!r} in the bundle (see 'arch ls {self.path}')") from None

    # --- reading -------------------------------------------------------------------------
    def iter_bytes(self, path: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file's bytes; raises :class:`IntegrityError` at the end if they do not match its digest."""
        entry = self.entry(path)
        offset = self._offsets[entry.hex]
        header = b"".join(self._ra.iter_range(offset, tar.BLOCK))
        if header != tar.header(tar.ROOT + layout.BLOB_DIR + entry.hex, entry.size):
            raise IntegrityError(f"{self.path}: E015 {path}: blob is not where the manifest puts it")
        h = hashlib.sha256()
        for piece in self._ra.iter_range(offset + tar.BLOCK, entry.size):
            h.update(piece)
            yield piece
        if h.hexdigest() != entry.hex:
            raise IntegrityError(f"{self.path}: E053 {path}: content does not match its digest {entry.digest}")

    def read_bytes(self, path: str) -> bytes:
        return b"".join(self.iter_bytes(path))

    def read_json(self, path: str) -> Any:
        try:
            return strictjson.loads(self.read_bytes(path), max_depth=None)
        except strictjson.StrictJSONError as exc:
            raise InvalidBundle(f"{self.path}: {exc.code or 'E060'} {path}: not strict JSON: {exc} (run 'arch verify {self.path}')") from None


def _open_file(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None


def _blob_offsets(manifest: Manifest, first: int) -> dict[str, int]:
    """Where each blob's tar entry starts (by hex digest), the payload starting at ``first``: its
    entries in ascending hex order, each a header block and the padded content."""
    offsets: dict[str, int] = {}
    pos = first
    for hex_, (size, _) in layout.blobs(manifest).items():
        offsets[hex_] = pos
        pos += tar.BLOCK + size + tar.padding(size)
    return offsets
