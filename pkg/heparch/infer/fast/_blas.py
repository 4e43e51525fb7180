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
from collections.abc import Iterator
from typing import Any

_NAMES = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_controls: list[tuple[Any, Any]] | None = None


def _find() -> list[tuple[Any, Any]]:
    global _controls
    if _controls is not None:
        return _controls
    import numpy  # noqa: F401  (loads numpy's BLAS)

    found: list[tuple[Any, Any]] = []
    paths: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                part = line.split()
                if part and "openblas" in part[-1].lower() and ".so" in part[-1]:
                    paths.add(part[-1])
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _NAMES:
            setter = getattr(lib, set_name, None)
            getter = getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    _controls = found
    return found


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
