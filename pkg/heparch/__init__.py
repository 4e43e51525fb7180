"""heparch: the preservation archive format and validating packager for published particle-physics results.

>>> import heparch
>>> isinstance(heparch.__version__, str)
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "open"]

if TYPE_CHECKING:
    from pathlib import Path

    from heparch.api import Bundle  # cycle: heparch.api's modules import this package first


def open(path: str | Path) -> Bundle:
    """Open a bundle for reading (see :class:`heparch.api.Bundle`)."""
    from heparch.api import Bundle  # cycle: heparch.api's modules import this package first

    return Bundle(path)
