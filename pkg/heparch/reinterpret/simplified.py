"""New signal points on a bundle's simplified likelihood too (``arch reinterpret --compare-simplified``).

A simplified likelihood (DESIGN.md 5b) does not name its bins: ``arch simplify`` takes the bins
of the full likelihood's channels (all of them in the model's order, or those of
``--channels`` in the order given) and writes their observed counts. :func:`bins_of` finds that
mapping again: the one sequence of distinct channels of the full likelihood whose observed
counts, concatenated, are the simplified likelihood's. A new point's simplified signal is then
its yield in each of those (channel, bin) pairs, 0 in bins it gives no yield for
(:func:`signals_for`); regions of the point that the simplified likelihood does not hold are
reported. The yields are nominal: ``arch simplify``'s published signals are the rates at the
background-only best fit, which also scale the signal's lumi and staterror modifiers.

>>> ws = {"channels": [{"name": "A", "samples": []}, {"name": "B", "samples": []}],
...       "observations": [{"name": "A", "data": [5, 3]}, {"name": "B", "data": [7]}]}
>>> bins_of(ws, {"observed": [7, 5, 3]}, "sl.json")
(('B', 0), ('A', 0), ('A', 1))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from heparch.errors import InputError
from heparch.reinterpret.signal import SignalPoint

Bin = tuple[str, int]


def _observations(workspace: Mapping[str, Any]) -> dict[str, list[float]]:
    """The observed counts of each channel of ``workspace`` (the last observation of a channel, as pyhf takes it)."""
    channels = {c["name"] for c in workspace.get("channels", [])}
    return {o["name"]: [float(x) for x in o["data"]] for o in workspace.get("observations", []) if o["name"] in channels}


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


def _sequences(observed: Sequence[float], channels: Mapping[str, list[float]], used: tuple[str, ...], found: list[tuple[str, ...]]) -> None:
    """Append to ``found`` the channel sequences (extending ``used``) whose counts are ``observed``; stop at two."""
    if not observed:
        found.append(used)
        return
    for name, counts in channels.items():
        if len(found) > 1:
            return
        if name not in used and _same(observed[: len(counts)], counts):
            _sequences(observed[len(counts) :], channels, (*used, name), found)


def bins_of(workspace: Mapping[str, Any], sl: Mapping[str, Any], where: str) -> tuple[Bin, ...]:
    """The (channel, bin) of the full likelihood behind each bin of the simplified likelihood
    ``sl``; :class:`InputError` when no sequence of channels, or more than one, gives its counts."""
    observed = [float(x) for x in sl.get("observed", [])]
    channels = {name: counts for name, counts in sorted(_observations(workspace).items()) if counts}
    found: list[tuple[str, ...]] = []
    _sequences(observed, channels, (), found)
    return tuple((name, i) for name in _only_sequence(found, len(observed), where) for i in range(len(channels[name])))


def _only_sequence(found: Sequence[tuple[str, ...]], n: int, where: str) -> tuple[str, ...]:
    """The one sequence of channels found; :class:`InputError` for none or several (``n``: the simplified likelihood's bins)."""
    if not found:
        raise InputError(
            f"{where}: its {n} observed counts are not those of any sequence of the full likelihood's channels, so the bins "
            "a new signal enters cannot be mapped to it; drop --compare-simplified (or re-derive it with 'arch simplify')"
        )
    if len(found) > 1:
        raise InputError(
            f"{where}: its observed counts are those of more than one sequence of channels ({', '.join(found[0])} and {', '.join(found[1])}), "
            "so the bins a new signal enters are ambiguous; drop --compare-simplified"
        )
    return found[0]


def signals_for(bins: Sequence[Bin], points: Sequence[SignalPoint]) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """(each point's signal in the simplified likelihood's ``bins``, each point's regions that it does not hold)."""
    held = {channel for channel, _ in bins}
    signals = {}
    missing = {}
    for p in points:
        signals[p.name] = [p.regions[c].yields[i] if c in p.regions else 0.0 for c, i in bins]
        outside = sorted(set(p.regions) - held)
        if outside:
            missing[p.name] = outside
    return signals, missing


def with_signals(sl: Mapping[str, Any], signals: Mapping[str, list[float]]) -> dict[str, Any]:
    """``sl`` with ``signals`` in place of its published ones (and without their label values)."""
    spec = {k: v for k, v in sl.items() if k not in ("signals", "labels", "values")}
    spec["signals"] = dict(signals)
    return spec
