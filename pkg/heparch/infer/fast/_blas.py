"""Run the engine's small dense linear algebra on one BLAS thread.

The matrices here are ~100 x 100: a multi-threaded OpenBLAS spends more time waking and
synchronising threads than computing, 20x slower than one thread on a loaded 2-core
machine (measured: 10 ms vs 0.5 ms for one 126 x 126 solve). :func:`single_thread`
sets OpenBLAS's thread count to 1 for the duration of a computation and restores it
afterwards (what ``threadpoolctl`` does, without the dependency); where no OpenBLAS is
loaded it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from typing import Any

_NAMES = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


@functools.cache
def _find() -> list[tuple[Any, Any]]:
    """The (set, get) thread-count functions of every OpenBLAS this process has loaded (found once)."""
    import numpy  # noqa: F401  (loads numpy's BLAS)

    controls = (_thread_controls(path) for path in _loaded_openblas())
    return [c for c in controls if c is not None]


def _loaded_openblas() -> list[str]:
    """The OpenBLAS libraries mapped into this process, from /proc/self/maps (none where it cannot be read)."""
    return sorted({path for path in _mapped_files() if "openblas" in path.lower() and ".so" in path})


def _mapped_files() -> set[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            return {part[-1] for part in map(str.split, fh) if part}
    except OSError:
        return set()


def _thread_controls(path: str) -> tuple[Any, Any] | None:
    """The first pair of :data:`_NAMES` the library at ``path`` exports (None: none, or it does not load)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for set_name, get_name in _NAMES:
        setter = getattr(lib, set_name, None)
        getter = getattr(lib, get_name, None)
        if setter is not None and getter is not None:
            getter.restype = ctypes.c_int
            return setter, getter
    return None


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """OpenBLAS on one thread inside the block."""
    controls = _find()
    before = [int(get()) for _, get in controls]
    for setter, _ in controls:
        setter(1)
    try:
        yield
    finally:
        for (setter, _), n in zip(controls, before, strict=True):
            setter(n)
