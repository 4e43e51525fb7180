"""Read HEPData archives for ``arch build``: the import profile (spec section 8.1).

A likelihood archive as HEPData serves it (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``; one top
folder, or several ``RegionX/`` folders) is read through a profile for ordinary archives, not
the bundle's strict ustar profile (``heparch.store.tar``): directories, PAX and GNU long names,
any mtime, owner or mode are fine; macOS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``) is
skipped with a warning (W020); links (E091), devices, FIFOs and other special entries (E092),
unsafe names (E090) and duplicate names (E093, also NFC and case-fold twins, and a name that
is both a file and a directory) are refused, and so is an archive that is not readable (E095).
The caps of :mod:`heparch.spec.limits` (``IMPORT_*``) are checked while the archive streams,
on the bytes that come out, never on the sizes headers declare (E094): a gzip or zip bomb
stops at the cap in bounded memory and time.

The members are written into a private temporary directory (removed on every exit path,
Ctrl-C and SIGTERM included: they unwind through ``finally``; after a kill -9, by the next
import, see :data:`SCRATCH`), created with ``O_EXCL|O_NOFOLLOW`` below it; a single top
folder is stripped. A HEPData submission
(``submission.yaml``) may list a likelihood archive among its ``additional_resources``: that
archive (one level of nesting) is read the same way, within the same caps, and its files take
the place of the archive file under the archive's name without its suffix, in an archive and in
a submission directory alike. Logical paths are the paths inside the archive, so an archive and
its unpacked directory build the same bundle.

>>> archive_suffix("HEPData-ins1755298-v3.tar.gz"), archive_suffix("BkgOnly.json")
('.tar.gz', None)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, ClassVar, Final, cast

from heparch.errors import BuildRefused
from heparch.findings import Finding
from heparch.metadata import archive_resources
from heparch.spec import limits
from heparch.store import tmpfiles

ARCHIVE_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar", ".zip")
#: the temporary directories are ``.heparch-import.staging-<random>`` in the system temporary
#: directory, locked while their import runs (:func:`heparch.store.tmpfiles.staging_dir`): the
#: next import removes those a killed one left
SCRATCH: Final = "heparch-import"
_JUNK_DIRS: Final = frozenset({"__MACOSX"})
_JUNK_FILES: Final = frozenset({".DS_Store"})
_CHUNK: Final = 1 << 20


def archive_suffix(name: str) -> str | None:
    """The archive suffix of a file name (lower case), or None for any other file."""
    lower = name.lower()
    return next((s for s in ARCHIVE_SUFFIXES if lower.endswith(s) and len(lower) > len(s)), None)


def _refuse(code: str, where: str, message: str) -> BuildRefused:
    finding = Finding(code, where, message)
    return BuildRefused(finding.one_line(), findings=[finding])


@dataclasses.dataclass
class Source:
    """What ``arch build`` reads: the directory to walk (the source itself, or the unpacked
    archive), and the folders that nested archives became (logical archive path -> directory)."""

    root: Path
    shown: str  # how messages name the source (the archive's or directory's path)
    expanded: dict[str, Path] = dataclasses.field(default_factory=dict)
    warnings: list[Finding] = dataclasses.field(default_factory=list)
    is_archive: bool = False

    def where(self, logical: str) -> str:
        """A logical path as messages show it: inside the archive, or below the directory."""
        return f"{self.shown}:{logical}" if self.is_archive else str(Path(self.shown) / logical)


@dataclasses.dataclass
class _Budget:
    """What one import may still take (shared by an archive and the archives nested in it)."""

    entries: int = 0
    total: int = 0

    def entry(self, where: str) -> None:
        self.entries += 1
        if self.entries > limits.IMPORT_ENTRIES:
            raise _refuse("E094", where, f"more than {limits.IMPORT_ENTRIES} entries (the import cap); split the archive or unpack and prune it")

    def grow(self, n: int, where: str) -> None:
        self.total += n
        if self.total > limits.IMPORT_BYTES:
            raise _refuse("E094", where, f"more than {limits.IMPORT_BYTES} bytes decompressed (the import cap)")


class _Meter:
    """A file-like reader of decompressed bytes that counts them against the compressed bytes
    read so far and refuses a ratio above the cap (a bomb) as the bytes come out."""

    def __init__(self, read: Callable[[int], bytes], consumed: Callable[[], int], where: str) -> None:
        self._read, self._consumed, self.where, self.out = read, consumed, where, 0

    def read(self, n: int = -1) -> bytes:
        data = self._read(_CHUNK if n < 0 else n)
        self.count(len(data))
        return data

    def count(self, n: int) -> None:
        self.out += n
        if self.out > limits.IMPORT_RATIO_FLOOR and self.out > limits.IMPORT_RATIO * max(self._consumed(), 1):
            raise _refuse(
                "E094",
                self.where,
                f"decompresses more than {limits.IMPORT_RATIO} times its compressed size (a decompression bomb?); the import cap is {limits.IMPORT_RATIO}:1",
            )


class _Counted:
    """A raw file that counts the bytes read from it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.count = fh, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.count += len(data)
        return data

    def seek(self, n: int) -> int:  # gzip's protocol; a forward-only read never seeks
        return self.fh.seek(n)


Reader = Callable[[int], bytes]


@dataclasses.dataclass
class _Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, special
    size: int
    open: Callable[[], contextlib.AbstractContextManager[Reader]]  # the entry's bytes, read under the caps


# --- tar ---------------------------------------------------------------------------------

_EXTENDED: Final = frozenset({tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})


class _CappedTarInfo(tarfile.TarInfo):
    """A tar header whose PAX or GNU extension data (read into memory by tarfile) is capped;
    ``archive`` names the archive in messages (a subclass per archive sets it)."""

    archive: ClassVar[str] = "archive"

    def _proc_member(self, tar: tarfile.TarFile) -> Any:
        if self.type == tarfile.GNUTYPE_SPARSE:  # refused before tarfile reads its extended sparse map
            raise _refuse("E092", f"{self.archive}:{self.name}", "a sparse file; only regular files and directories are imported")
        if self.type in _EXTENDED and self.size > limits.IMPORT_HEADER_BYTES:
            raise _refuse("E094", self.archive, f"an extended (PAX or GNU) header of {self.size} bytes, above the cap of {limits.IMPORT_HEADER_BYTES}")
        return super()._proc_member(tar)  # type: ignore[misc]  # tarfile's own parsing (not in the stubs)


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.issparse() or not (info.isreg() or info.isdir()):
        return "special"
    return "dir" if info.isdir() else "file"


def _tar_members(tar: tarfile.TarFile) -> Iterator[_Member]:
    while (info := tar.next()) is not None:
        cast(Any, tar).members.clear()  # stream mode keeps every header otherwise: 10^6 entries must not grow memory
        yield _Member(info.name, _tar_kind(info), info.size, functools.partial(_extracted, tar, info))


@contextlib.contextmanager
def _extracted(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[Reader]:
    fh = tar.extractfile(info)
    if fh is None:  # pragma: no cover - only regular files are opened
        raise _refuse("E092", info.name, "not a regular file")
    with fh:
        yield fh.read


@contextlib.contextmanager
def _open_tar(path: Path, where: str) -> Iterator[Iterator[_Member]]:
    with path.open("rb") as raw:
        counted = _Counted(raw)
        if raw.read(2) != _GZIP_MAGIC:  # a plain tar, whatever its suffix
            raw.seek(0)
            meter = _Meter(counted.read, lambda: counted.count, where)
        else:
            raw.seek(0)
            gz = gzip.GzipFile(fileobj=counted, mode="rb")
            meter = _Meter(gz.read, lambda: counted.count, where)

        class _Info(_CappedTarInfo):
            archive = where

        with tarfile.open(fileobj=meter, mode="r|", tarinfo=_Info) as tar:  # type: ignore[call-overload]  # a file-like with read()
            yield _tar_members(tar)


# --- zip ---------------------------------------------------------------------------------

_EOCD: Final = b"PK\x05\x06"
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")  # a zip starts with an entry, or an empty one with its end record
_GZIP_MAGIC: Final = b"\x1f\x8b"
_EOCD64_LOCATOR: Final = b"PK\x06\x07"


def _zip_directory(fh: IO[bytes], size: int) -> tuple[int, int]:
    """(entries, central directory bytes) as the end records declare them: read before
    :mod:`zipfile` builds an object per entry, so a zip of 10^6 entries is refused first."""
    tail_len = min(size, 22 + 65535)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        return -1, -1
    entries, cd_size = struct.unpack("<xxxxxxxxxxHI", tail[at : at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the locator, 20 bytes before
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator[:4] == _EOCD64_LOCATOR:
            fh.seek(struct.unpack("<Q", locator[8:16])[0])
            record = fh.read(56)
            if len(record) == 56:
                entries, cd_size = struct.unpack("<QQ", record[32:48])
    return entries, cd_size


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    if stat.S_ISLNK(mode):
        return "symlink"
    if info.is_dir():
        return "dir"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # many writers leave the type bits 0
        return "special"
    return "file"


def _zip_members(zf: zipfile.ZipFile, size: int, where: str) -> Iterator[_Member]:
    archive = _Meter(lambda n: b"", lambda: size, where)  # all entries against the file's size (overlapping entries)
    for info in zf.infolist():
        if info.flag_bits & 0x1:
            raise _refuse("E095", f"{where}:{info.filename}", "an encrypted entry; give an archive without a password")
        yield _Member(info.filename, _zip_kind(info), info.file_size, functools.partial(_zip_entry, zf, info, size, archive, where))


@contextlib.contextmanager
def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, archive: _Meter, where: str) -> Iterator[Reader]:
    with zf.open(info) as fh:
        entry = _Meter(fh.read, lambda: min(info.compress_size, size), f"{where}:{info.filename}")

        def read(n: int) -> bytes:
            data = entry.read(n)
            archive.count(len(data))
            return data

        yield read


@contextlib.contextmanager
def _open_zip(path: Path, where: str) -> Iterator[Iterator[_Member]]:
    with path.open("rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        entries, cd_size = _zip_directory(raw, size)
        if entries > limits.IMPORT_ENTRIES or cd_size > limits.IMPORT_ZIP_DIRECTORY:
            raise _refuse(
                "E094",
                where,
                f"declares {entries} entries in a central directory of {cd_size} bytes; the import caps are {limits.IMPORT_ENTRIES} and {limits.IMPORT_ZIP_DIRECTORY}",
            )
        raw.seek(0)
        with zipfile.ZipFile(raw) as zf:
            yield _zip_members(zf, size, where)


# --- the profile -------------------------------------------------------------------------


#: an absolute path or drive letter, a backslash, a control character, a '..' segment
_UNSAFE_NAME: Final = re.compile(r"^/|^[A-Za-z]:|\\|[\x00-\x1f\x7f]|(?:^|/)\.\.(?:/|$)")


def _safe_name(name: str, where: str) -> str | None:
    """The entry's relative POSIX path ('./' and empty segments dropped), or None for the
    archive's root; E090 for anything that could land outside the target."""
    bad = _UNSAFE_NAME.search(name) is not None
    if bad:
        raise _refuse(
            "E090",
            f"{where}:{name!r}",
            "an absolute path, '..' segment, backslash or control character in an entry name; repack the archive with relative names",
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts) if parts else None


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return bool(_JUNK_DIRS.intersection(parts)) or parts[-1] in _JUNK_FILES or parts[-1].startswith("._")


class _Names:
    """The names seen so far, folded (NFC, case), as files and as directories."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()

    def add(self, name: str, is_dir: bool, where: str) -> None:
        key = unicodedata.normalize("NFC", name).casefold()
        parents = ["/".join(key.split("/")[:i]) for i in range(1, key.count("/") + 1)]
        clash = key in self.files or (not is_dir and key in self.dirs) or any(p in self.files for p in parents)
        if clash:
            raise _refuse(
                "E093",
                f"{where}:{name}",
                "a second entry of this name (or of its NFC or case-folded form), or a name that is both a file and a directory; repack the archive with one of them",
            )
        (self.dirs if is_dir else self.files).add(key)
        self.dirs.update(parents)


def _check_kind(member: _Member, where: str) -> None:
    if member.kind in ("symlink", "hardlink"):
        raise _refuse("E091", where, f"a {'symbolic' if member.kind == 'symlink' else 'hard'} link; replace it with a copy of the file it points to")
    if member.kind == "special":
        raise _refuse("E092", where, "a device, FIFO, sparse or other special entry; only regular files and directories are imported")
    if member.size > limits.IMPORT_ENTRY_BYTES:
        raise _refuse("E094", where, f"declares {member.size} bytes, above the per-entry cap of {limits.IMPORT_ENTRY_BYTES}")


def _write(member: _Member, target: Path, where: str, budget: _Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out, member.open() as read:
        while chunk := read(_CHUNK):
            written += len(chunk)
            if written > limits.IMPORT_ENTRY_BYTES:
                raise _refuse("E094", where, f"more than the per-entry cap of {limits.IMPORT_ENTRY_BYTES} bytes")
            budget.grow(len(chunk), where)
            out.write(chunk)


def _unpack(members: Iterator[_Member], dest: Path, where: str, budget: _Budget) -> int:
    """Write the members into ``dest``; the number of macOS metadata entries skipped."""
    names, skipped = _Names(), 0
    for member in members:
        budget.entry(where)
        name = _safe_name(member.name, where)
        if name is None:
            continue
        if _is_junk(name):
            skipped += 1
            continue
        at = f"{where}:{name}"
        _check_kind(member, at)
        names.add(name, member.kind == "dir", where)
        if member.kind == "file":
            _write(member, dest / name, at, budget)
    return skipped


#: what the readers raise on a truncated, corrupt or unsupported archive (a bad CRC is BadZipFile)
_READ_ERRORS: Final = (tarfile.TarError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile, lzma.LZMAError, EOFError, NotImplementedError, struct.error)


def _read_archive(path: Path, dest: Path, where: str, budget: _Budget, warnings: list[Finding]) -> Path:
    """Unpack one archive into ``dest``; the directory to build from (a single top folder stripped)."""
    with path.open("rb") as fh:
        opener = _open_zip if fh.read(4) in _ZIP_MAGIC else _open_tar  # by content: a .zip may be misnamed
    try:
        with opener(path, where) as members:
            skipped = _unpack(members, dest, where, budget)
    except BuildRefused:
        raise
    except _READ_ERRORS as exc:
        raise _refuse("E095", where, f"not a readable archive ({type(exc).__name__}: {exc}); download it again or repack it") from None
    if skipped:
        warnings.append(Finding("W020", where, f"{skipped} macOS metadata entries (__MACOSX/, ._*, .DS_Store) skipped"))
    top = list(dest.iterdir())
    return top[0] if len(top) == 1 and top[0].is_dir() else dest


def _expand_nested(source: Source, scratch: Path, budget: _Budget) -> None:
    """Read the archives a submission.yaml at the root lists as additional resources."""
    submission = source.root / "submission.yaml"
    if not submission.is_file():
        return
    for i, logical in enumerate(archive_resources(submission)):
        suffix = archive_suffix(logical)
        file = source.root / logical
        if suffix is None or file.is_symlink() or not file.is_file():
            continue
        folder = logical[: -len(suffix)]
        if (source.root / folder).exists():
            raise _refuse("E093", source.where(folder), f"both a folder and the archive {logical} that would be unpacked into it; remove one")
        dest = scratch / f"nested-{i}"
        dest.mkdir()
        source.expanded[logical] = _read_archive(file, dest, source.where(logical), budget, source.warnings)


@contextlib.contextmanager
def opened(source: Path) -> Iterator[Source]:
    """The directory ``arch build`` reads for ``source`` (a directory, an archive, or a
    workspace file), with the archives nested in a submission unpacked; the temporary
    directory is removed when the block ends, however it ends."""
    is_archive = source.is_file() and archive_suffix(source.name) is not None
    if not is_archive and not (source.is_dir() and (source / "submission.yaml").is_file()):
        yield Source(source, str(source))
        return
    with tmpfiles.staging_dir(Path(tempfile.gettempdir()) / SCRATCH) as scratch:
        budget = _Budget()
        result = Source(source, str(source), is_archive=is_archive)
        if is_archive:
            (scratch / "top").mkdir()
            result.root = _read_archive(source, scratch / "top", str(source), budget, result.warnings)
        _expand_nested(result, scratch, budget)
        yield result
