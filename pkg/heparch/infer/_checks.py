"""Input checks shared by the inference engines."""

from __future__ import annotations

from typing import Any

import numpy as np

from heparch.errors import InferenceInputError


def finite_vector(values: Any, where: str, *, nonnegative: bool = False) -> np.ndarray:
    """``values`` as a 1-d float array; InferenceInputError naming ``where`` (a JSON path) otherwise."""
    arr = _flat_numbers(values, where)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InferenceInputError(f"{where}[{bad[0]}]: {float(arr[bad[0]])!r} is not a finite number")
    if nonnegative:
        _refuse_negative(arr, where)
    return arr


def _refuse_negative(arr: np.ndarray, where: str) -> None:
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise InferenceInputError(f"{where}[{neg[0]}]: negative rate {float(arr[neg[0]])!r}")


def _flat_numbers(values: Any, where: str) -> np.ndarray:
    """``values`` (a non-empty JSON list) as a flat float array."""
    if not isinstance(values, (list, tuple)) or not values:
        raise InferenceInputError(f"{where}: expected a non-empty list of numbers")
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise InferenceInputError(f"{where}: expected a list of numbers") from None
    if arr.ndim != 1:
        raise InferenceInputError(f"{where}: expected a flat list of numbers")
    return arr
