"""The ``fast`` backend: heparch's own HistFactory engine (numpy/scipy, analytic gradients
and Hessians, the background-only structure compiled once and reused across patches).

>>> from heparch.infer.fast import FastBackend
>>> FastBackend().name
'fast'
"""

from __future__ import annotations

from heparch.infer.fast.backend import FastBackend, FastBackground, FastModel

__all__ = ["FastBackend", "FastBackground", "FastModel"]
