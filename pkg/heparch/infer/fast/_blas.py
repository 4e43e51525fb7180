"""Run the engine's small dense linear algebra on one BLAS thread.

The matrices here are ~100 x 100: a multi-threaded OpenBLAS spends more time waking and
synchronising threads than computing, 20x slower than one thread on a loaded 2-core
machine (measured: 10 ms vs 0.5 ms for one 126 x 126 solve). :func:`single_thread`
limits every BLAS library this process has loaded (numpy's and scipy's OpenBLAS) to one
thread for the duration of a computation and restores their thread counts afterwards,
with ``threadpoolctl`` (its ``ThreadpoolController``, found once: what it costs per call
and end to end is measured in ``benchmarks/bench_blas.py`` and docs/design.md); where no
BLAS it knows is loaded it does nothing.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.cache
def controller() -> ThreadpoolController:
    """The thread pools of the BLAS libraries loaded with numpy and scipy (found once)."""
    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, which the engine's Cholesky factorisation uses)

    return ThreadpoolController().select(user_api="blas")


def single_thread() -> AbstractContextManager[Any]:
    """Every loaded BLAS on one thread inside the ``with`` block; the thread counts restored after it, also after an error."""
    limiter: AbstractContextManager[Any] = controller().limit(limits=1)
    return limiter
