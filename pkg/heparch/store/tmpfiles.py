"""Temporary files that a kill leaves nothing of, or that the next run removes.

- An output is written into an unnamed file (``O_TMPFILE``) in its target's directory and
  given a name only to be renamed onto the target: a kill before that leaves nothing.
  Where ``O_TMPFILE`` is missing (not Linux, some file systems) it is a named
  ``.<target>.<random>.tmp`` from the start.
- A staging directory (``arch extract``, ``arch claim``) is ``.<target>.<kind>-<random>``.
- Every named temporary carries an ``flock`` (LOCK_EX) while its process lives; the kernel
  drops it when the process ends, however it ends. Before making its own, a run removes
  the temporaries of the same target whose lock it can take (:func:`sweep`): a killed
  run's, never a live concurrent run's. A temporary is locked before it gets a name that
  :func:`sweep` matches (files: linked from the locked unnamed file; directories: made as
  ``.<target>.new-<random>``, locked, then renamed), so no sweep sees it unlocked.
- Spools (:func:`spool`) are unnamed files in the system temporary directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

#: a ``.new-`` directory older than this whose lock can be taken was left by a kill between
#: its creation and its lock (a few microseconds): removed too
NEW_GRACE_SECONDS: Final = 60.0


def _pattern(target: Path) -> re.Pattern[str]:
    name = re.escape(target.name)
    return re.compile(rf"\.{name}\.(?:[A-Za-z0-9_]{{6,}}\.tmp|(?:staging|claim)-[A-Za-z0-9_]{{6,}}|new-[A-Za-z0-9_]{{6,}})")


def is_temporary_of(target: Path, name: str) -> bool:
    """Whether ``name`` (in ``target``'s directory) is one of heparch's temporaries for ``target``."""
    return _pattern(target).fullmatch(name) is not None


def _lock(fd: int, *, wait: bool) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _remove_if_stale(path: Path) -> bool:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    fd = _open_unfollowed(path, st) if _may_be_stale(path, st) else None
    if fd is None:
        return False
    try:
        if not _lock(fd, wait=False) or os.fstat(fd).st_ino != st.st_ino:
            return False  # alive (its process holds the lock), or replaced meanwhile
        _remove(path, st)
        return True
    finally:
        os.close(fd)


def _may_be_stale(path: Path, st: os.stat_result) -> bool:
    """Whether the temporary ``path`` may be a dead run's: not a symbolic link (never ours:
    heparch makes no symbolic links here), nor a ``.new-`` directory within its grace period."""
    if stat.S_ISLNK(st.st_mode):
        return False
    return not (path.name.split(".")[-1].startswith("new-") and time.time() - st.st_ctime < NEW_GRACE_SECONDS)


def _open_unfollowed(path: Path, st: os.stat_result) -> int | None:
    """A read-only descriptor of the file or directory ``path`` (not following a link), None if it cannot be opened."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0)
    try:
        return os.open(path, flags)
    except OSError:
        return None


def _remove(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(target: Path) -> list[Path]:
    """Remove the stale temporaries of ``target`` (those whose lock can be taken); return them."""
    target = Path(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    removed = []
    for name in names:
        if is_temporary_of(target, name) and _remove_if_stale(target.parent / name):
            removed.append(target.parent / name)
    return removed


class Output:
    """The file being written for ``target``; :meth:`commit` renames it onto the target."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.name: Path | None = None  # its temporary name, once it has one
        try:
            if not os.path.isdir("/proc/self/fd"):  # where an unnamed file is linked from
                raise OSError("no /proc")
            fd = os.open(target.parent, os.O_TMPFILE | os.O_RDWR, 0o600)
        except (AttributeError, OSError):  # no O_TMPFILE here: a named file from the start
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            self.name = Path(name)
        _lock(fd, wait=True)
        self.file: BinaryIO = os.fdopen(fd, "w+b")

    def _link(self) -> Path:
        """Give the unnamed file a (locked, unique) temporary name beside the target."""
        directory = os.open(self.target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while True:
                name = self.target.parent / f".{self.target.name}.{secrets.token_hex(4)}.tmp"
                try:
                    os.link(f"/proc/self/fd/{self.file.fileno()}", name.name, dst_dir_fd=directory, follow_symlinks=True)
                    return name
                except FileExistsError:
                    continue
        finally:
            os.close(directory)

    def commit(self, mode: int) -> None:
        """Flush, sync, set ``mode`` and rename onto the target."""
        self.file.flush()
        os.fsync(self.file.fileno())
        os.fchmod(self.file.fileno(), mode)
        if self.name is None:
            self.name = self._link()
        os.replace(self.name, self.target)
        self.name = None

    def link_new(self, mode: int) -> None:
        """Flush, sync, set ``mode`` and give the file the target's name, which must not exist
        (FileExistsError: nothing is replaced)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        os.fchmod(self.file.fileno(), mode)
        if self.name is None:
            directory = os.open(self.target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{self.file.fileno()}", self.target.name, dst_dir_fd=directory, follow_symlinks=True)
            finally:
                os.close(directory)
        else:
            os.link(self.name, self.target)

    def discard(self) -> None:
        """Close; remove the temporary name if it has one (an unnamed file just vanishes)."""
        with contextlib.suppress(OSError):
            self.file.close()
        if self.name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name)


@contextlib.contextmanager
def output(target: Path) -> Iterator[Output]:
    """An :class:`Output` for ``target``, stale temporaries of the target swept first; it is
    discarded on every exit path, committed or not (an exception, Ctrl-C, SIGTERM)."""
    target = Path(target)
    sweep(target)
    out = Output(target)
    try:
        yield out
    finally:
        out.discard()


@contextlib.contextmanager
def staging_dir(target: Path, kind: str = "staging") -> Iterator[Path]:
    """A fresh locked directory ``.<target>.<kind>-<random>`` beside ``target``, removed on every
    exit path unless the block renamed it away; stale ones of the same target are swept first."""
    target = Path(target)
    sweep(target)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    fd = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _lock(fd, wait=True)
        path = fresh.with_name(f".{target.name}.{kind}-{fresh.name.rsplit('new-', 1)[1]}")
        os.rename(fresh, path)  # mkdtemp's random part is unique in this directory
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)
        shutil.rmtree(fresh, ignore_errors=True)


def spool() -> BinaryIO:
    """An unnamed read-write file in the system temporary directory (``TMPDIR``): nothing
    to remove, even after kill -9 (``O_TMPFILE``, or a name unlinked at creation)."""
    return tempfile.TemporaryFile()
