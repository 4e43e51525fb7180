"""heparch.infer.fast._blas: the engine's linear algebra on one OpenBLAS thread, restored afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from heparch.infer.fast import _blas

NUMPY_BLAS = str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])


@pytest.mark.skipif("openblas" not in NUMPY_BLAS, reason=f"numpy is built on {NUMPY_BLAS}, not OpenBLAS: nothing to find")
def test_the_openblas_numpy_uses_is_found() -> None:
    assert any("openblas" in p.lower() for p in _blas._loaded_openblas())
    assert _blas._find()  # numpy's OpenBLAS exports one of the thread-count pairs


def test_single_thread_sets_one_thread_and_restores_the_count() -> None:
    controls = _blas._find()
    before = [int(get()) for _, get in controls]
    with _blas.single_thread():
        assert [int(get()) for _, get in controls] == [1] * len(controls)
    assert [int(get()) for _, get in controls] == before


def test_single_thread_restores_the_count_after_an_error() -> None:
    controls = _blas._find()
    before = [int(get()) for _, get in controls]
    try:
        with _blas.single_thread():
            raise KeyError("inside")
    except KeyError:
        pass
    assert [int(get()) for _, get in controls] == before
