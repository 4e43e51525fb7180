"""The options that fix how a HistFactory hypothesis test is computed, shared by ``arch cls``,
``arch upper-limit`` and ``arch claim``: one :class:`~heparch.infer.base.Settings` from them."""

from __future__ import annotations

import math

import typer

from heparch.errors import InputError
from heparch.infer.base import Settings

TEST_STAT = typer.Option(
    "qtilde",
    "--test-stat",
    help="The test statistic, pyhf's names: qtilde (q~mu, for a POI bounded below at 0) or q (q_mu, no lower bound). "
    "With qtilde and --poi-bounds below 0 the result is pyhf 0.7.6's, which is not Cowan et al.'s q~mu (a warning says so).",
)
NORMSYS = typer.Option(
    "code4", "--normsys-interp", help="Interpolation of normsys modifiers, pyhf's names: code4 (smooth, pyhf's default) or code1 (exponential)."
)
HISTOSYS = typer.Option(
    "code4p", "--histosys-interp", help="Interpolation of histosys modifiers, pyhf's names: code4p (smooth, pyhf's default), code0 (piecewise linear) or code2."
)
POI_BOUNDS = typer.Option(
    None,
    "--poi-bounds",
    metavar="LO,HI",
    help="Bounds of the parameter of interest in every fit, e.g. --poi-bounds=-10,10. Default: as the workspace's measurement gives them (as pyhf cls does).",
)
MEASUREMENT = typer.Option(None, "--measurement", help="The workspace measurement to use, by name (as pyhf cls). Default: the workspace's first measurement.")


def parse_bounds(text: str | None) -> tuple[float, float] | None:
    """``"LO,HI"`` as two floats; an :class:`InputError` naming ``--poi-bounds`` otherwise."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if math.isnan(lo) or math.isnan(hi):
        raise InputError(f"--poi-bounds {text!r}: give two numbers LO,HI, e.g. --poi-bounds=-10,10")
    return lo, hi


def settings(test_stat: str, normsys: str, histosys: str, poi_bounds: str | None, measurement: str | None) -> Settings:
    """The :class:`Settings` the options give (an :class:`InputError` names a bad one)."""
    return Settings(test_stat=test_stat, normsys=normsys, histosys=histosys, poi_bounds=parse_bounds(poi_bounds), measurement=measurement)
