"""heparch.infer.fast._blas: the engine's linear algebra on one BLAS thread, restored afterwards.

The thread counts are read with a fresh ``threadpoolctl.threadpool_info()`` (not the module's
cached controller), and every test starts from 3 threads per library, so "restored" cannot
pass by the count having been 1 all along (as under ``OPENBLAS_NUM_THREADS=1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import scipy
from threadpoolctl import threadpool_info, threadpool_limits

from heparch.infer.fast import _blas

NUMPY_BLAS = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
SCIPY_BLAS = str(scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
BEFORE = 3
pytestmark = pytest.mark.skipif(
    "openblas" not in NUMPY_BLAS or "openblas" not in SCIPY_BLAS,
    reason=f"numpy and scipy are built on {NUMPY_BLAS} and {SCIPY_BLAS}: the tests set thread counts of OpenBLAS",
)


def _blas_threads() -> dict[str, int]:
    """Each loaded BLAS library's thread count, by file."""
    return {str(lib["filepath"]): int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def three_threads() -> Iterator[None]:
    """Every BLAS library at :data:`BEFORE` threads for the test (the process's counts restored after it)."""
    _blas.controller()  # numpy's and scipy's BLAS loaded
    with threadpool_limits(limits=BEFORE, user_api="blas"):
        yield


def test_every_blas_loaded_is_controlled() -> None:
    controlled = [lib["filepath"] for lib in _blas.controller().info()]
    assert controlled == list(_blas_threads())  # numpy's and scipy's (the fixture has loaded both)


def test_single_thread_sets_one_thread_and_restores_the_count() -> None:
    before = _blas_threads()
    assert before
    assert set(before.values()) == {BEFORE}
    with _blas.single_thread():
        assert _blas_threads() == dict.fromkeys(before, 1)
        with _blas.single_thread():  # nested, as upper_limit's calls of cls
            pass
        assert _blas_threads() == dict.fromkeys(before, 1)
    assert _blas_threads() == before


def test_single_thread_restores_the_count_after_an_error() -> None:
    before = _blas_threads()
    inside: list[dict[str, int]] = []

    def fails() -> None:
        with _blas.single_thread():
            inside.append(_blas_threads())
            raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        fails()
    assert inside == [dict.fromkeys(before, 1)]
    assert _blas_threads() == before
