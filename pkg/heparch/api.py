"""The Python API: ``heparch.open(path)`` -> :class:`Bundle`.

Example (``toy.zst`` built from ``fixtures/example-analysis``)::

    with heparch.open("toy.zst") as b:
        b.likelihoods()          # ['BkgOnly.json']
        ws = b.workspace()       # pyhf.Workspace
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from heparch.errors import InputError, IntegrityError, InvalidBundle
from heparch.spec import strictjson
from heparch.spec.models import FileEntry, Manifest
from heparch.store import layout, tar
from heparch.store.reader import RandomAccess

if TYPE_CHECKING:
    import pyhf


class Bundle:
    """A bundle opened for reading: its manifest, and hash-checked access to any file.

    Opening checks the container profile, the head and the manifest; each read
    checks the bytes it returns against the manifest's digest.
    """

    def __init__(self, path: str | Path, *, fileobj: BinaryIO | None = None) -> None:
        """Open ``path``; or, with ``fileobj``, read that open file (``path`` only names it in
        messages; closing the bundle leaves ``fileobj`` open for its owner)."""
        self.path = Path(path)
        self._owned = fileobj is None
        if fileobj is not None:
            self._fh: BinaryIO = fileobj
            fileobj.seek(0)
        else:
            try:
                self._fh = self.path.open("rb")
            except OSError as exc:
                raise InputError(f"{self.path}: cannot open: {exc.strerror}") from None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        from heparch.verify import check_head

        self._fh.seek(0)
        # verify's own head checks and caps (spec section 2.2.2): memory is bounded whatever the
        # bundle declares, and what open() accepts is what 'arch verify --level structure' reads
        checked, ts = check_head(self._fh)
        errors = checked.report.errors
        if checked.manifest is None or checked.manifest_bytes is None or errors:
            raise InvalidBundle(f"{self.path}: not a valid bundle (run 'arch verify {self.path}' for the full report)", findings=errors)
        self.signatures: dict[str, bytes] = checked.signatures
        self.manifest_bytes = checked.manifest_bytes
        self.manifest: Manifest = checked.manifest
        self.identity = layout.identity(self.manifest_bytes)
        self._ra = RandomAccess(self._fh, max_frames=ts.raw.max_frames)
        pos = ts.raw.tell()
        self._offsets: dict[str, int] = {}
        for hex_, (size, _) in layout.blobs(self.manifest).items():
            self._offsets[hex_] = pos
            pos += tar.BLOCK + size + tar.padding(size)

    def close(self) -> None:
        if self._owned:
            self._fh.close()

    def __enter__(self) -> Bundle:
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

    def likelihoods(self) -> list[str]:
        """Logical paths of the likelihood components."""
        return [f.path for f in self.manifest.by_role("likelihood")]

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

    def _likelihood(self, likelihood: str | None) -> str:
        names = self.likelihoods()
        if likelihood is not None:
            if likelihood not in names:
                raise InputError(f"{self.path}: {likelihood!r} is not a likelihood of the bundle; it has {names}")
            return likelihood
        if len(names) != 1:
            raise InputError(f"{self.path}: holds {len(names)} likelihoods {names}; name one (likelihood=...)")
        return names[0]

    def workspace(self, likelihood: str | None = None) -> pyhf.Workspace:
        """The likelihood as a ``pyhf.Workspace``."""
        import pyhf

        return pyhf.Workspace(self.read_json(self._likelihood(likelihood)))

    def patchset(self, likelihood: str | None = None) -> pyhf.PatchSet:
        """The likelihood's patchset as a ``pyhf.PatchSet``."""
        import pyhf

        name = self._likelihood(likelihood)
        sets = [f for f in self.manifest.by_role("patchset") if f.likelihood == name]
        if len(sets) != 1:
            raise InputError(f"{self.path}: likelihood {name!r} has {len(sets)} patchsets; expected one")
        return pyhf.PatchSet(self.read_json(sets[0].path))
