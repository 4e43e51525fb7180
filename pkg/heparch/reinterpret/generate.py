"""From a new signal point to the RFC 6902 patch of its likelihood, and back from a published patch.

:func:`patch_for` writes one ``add`` of a signal sample per region the point gives yields for,
with the modifiers the interface says it gets (and the list of those it does not get);
:func:`inputs_from_patch` reads a published patch as the inputs a user would give for it
(yields, ``mc_unc`` from its staterror, relative variations from its systematics; see :func:`varied`), which is
what the leave-one-out self-test and the template feed through :func:`patch_for`.

>>> from heparch.components.interface import Interface, Region
>>> r = Region("SR", 0, 2, 1, (4.0, 2.0), "staterror_SR", (("lumi", "lumi"), ("mu", "normfactor")), (), 3)
>>> itf = Interface("ws.json", "mu", (0.0, 10.0), None, (r,), (), (), (), (), ("a", "b", "c"))
>>> from heparch.reinterpret.signal import RegionInput, SignalPoint
>>> g = patch_for(itf, SignalPoint("new", {"SR": RegionInput((1.0, 0.5), mc_unc=(0.1, 0.1))}))
>>> g.ops[0]["path"], [m["name"] for m in g.ops[0]["value"]["modifiers"]]
('/channels/0/samples/1', ['lumi', 'staterror_SR', 'mu'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from heparch.components.interface import Dropped, Interface, Ops, Region, Systematic, sample_add
from heparch.reinterpret.signal import RegionInput, SignalPoint, Values, Variation


@dataclasses.dataclass(frozen=True)
class Generated:
    """A point's patch and the modifiers of the published signals it does not carry, with why."""

    point: str
    ops: list[dict[str, Any]]
    dropped: tuple[Dropped, ...]


def varied(yields: Values, relative: Values) -> list[float]:
    """The varied yields: ``yield * (1 + relative)`` per bin; in a bin whose yield is 0, where a
    relative change means nothing, the value given is the varied yield itself (in events).

    >>> varied((10.0, 0.0), (0.1, 0.3))
    [11.0, 0.3]
    """
    return [y * (1.0 + r) if y != 0 else r for y, r in zip(yields, relative, strict=True)]


def _systematic_modifier(s: Systematic, yields: Values, v: Variation) -> dict[str, Any]:
    if s.type == "normsys":
        return {"name": s.name, "type": "normsys", "data": {"hi": 1.0 + v.up[0], "lo": 1.0 + v.down[0]}}
    return {"name": s.name, "type": "histosys", "data": {"hi_data": varied(yields, v.up), "lo_data": varied(yields, v.down)}}


def _staterror(r: Region, given: RegionInput) -> tuple[list[dict[str, Any]], list[Dropped]]:
    """The signal's staterror from ``mc_unc`` (none without it, or without one in the region)."""
    if r.staterror is None:
        return [], []
    if given.mc_unc is None:
        return [], [Dropped(r.channel, r.staterror, "staterror", "no mc_unc given: the signal has no MC statistical uncertainty")]
    return [{"name": r.staterror, "type": "staterror", "data": list(given.mc_unc)}], []


def _fixed(r: Region, *, normfactors: bool) -> list[dict[str, Any]]:
    """The region's modifiers without data: its normfactors, or the others."""
    return [{"name": n, "type": t, "data": None} for n, t in r.fixed if (t == "normfactor") == normfactors]


def _systematics(itf: Interface, r: Region, given: RegionInput) -> tuple[list[dict[str, Any]], list[Dropped]]:
    """The modifiers of the region's systematics the point gives variations for; the others, dropped."""
    mods: list[dict[str, Any]] = []
    dropped: list[Dropped] = []
    for key in r.systematics:
        s = itf.systematic(key)
        assert s is not None  # the interface's regions name its own systematics
        if key in given.systematics:
            mods.append(_systematic_modifier(s, given.yields, given.systematics[key]))
        else:
            dropped.append(Dropped(r.channel, s.name, s.type, f"no {key}_up/{key}_down given"))
    return mods, dropped


def _modifiers(itf: Interface, r: Region, given: RegionInput) -> tuple[list[dict[str, Any]], list[Dropped]]:
    """The signal's modifiers in region ``r`` (fixed ones, staterror, systematics, normfactors) and those it does not get."""
    stat, stat_dropped = _staterror(r, given)
    systematics, systematics_dropped = _systematics(itf, r, given)
    mods = _fixed(r, normfactors=False) + stat + systematics + _fixed(r, normfactors=True)
    return mods, [d for d in itf.dropped if d.region == r.channel] + stat_dropped + systematics_dropped


def patch_for(itf: Interface, point: SignalPoint) -> Generated:
    """The patch adding ``point``'s signal to ``itf``'s likelihood (``point`` checked with
    :func:`heparch.reinterpret.signal.check`), in the interface's region order."""
    ops: list[dict[str, Any]] = []
    dropped: list[Dropped] = []
    for r in itf.regions:
        given = point.regions.get(r.channel)
        if given is None:
            continue
        mods, lost = _modifiers(itf, r, given)
        dropped += lost
        sample = {"name": itf.sample_name or point.name, "data": list(given.yields), "modifiers": mods}
        ops.append({"op": "add", "path": f"/channels/{r.index}/samples/{r.insert_at}", "value": sample})
    return Generated(point.name, ops, tuple(dropped))


# ---------------------------------------------------------------------------------------
# back from a published patch


def _relative(data: Sequence[float], yields: Values) -> Values:
    """The inverse of :func:`varied`: ``data / yield - 1`` per bin, ``data`` itself where the yield is 0."""
    return tuple(float(x) / y - 1.0 if y != 0 else float(x) for x, y in zip(data, yields, strict=True))


def _variation_of(mod: Mapping[str, Any], yields: Values) -> Variation:
    data = mod["data"]
    if mod["type"] == "normsys":
        n = len(yields)
        return Variation((float(data["hi"]) - 1.0,) * n, (float(data["lo"]) - 1.0,) * n)
    return Variation(_relative(data["hi_data"], yields), _relative(data["lo_data"], yields))


def _region_inputs(itf: Interface, r: Region, sample: Mapping[str, Any]) -> tuple[RegionInput, list[Dropped]]:
    yields = tuple(float(x) for x in sample["data"])
    mc_unc = None
    systematics: dict[str, Variation] = {}
    dropped: list[Dropped] = []
    by_modifier = {(s.name, s.type): s for s in itf.systematics}
    for mod in sample.get("modifiers", []):
        kind, name = mod.get("type"), str(mod.get("name"))
        s = by_modifier.get((name, str(kind)))
        if kind == "staterror" and name == r.staterror:
            mc_unc = tuple(float(x) for x in mod["data"])
        elif s is not None and s.key in r.systematics:
            systematics[s.key] = _variation_of(mod, yields)
        elif (name, kind) not in r.fixed:
            dropped.append(Dropped(r.channel, name, str(kind), "not in the signal interface of this region (no other published signal carries it here)"))
    return RegionInput(yields, mc_unc, systematics), dropped


def inputs_from_patch(
    itf: Interface, name: str, ops: Ops, workspace: Mapping[str, Any], labels: Mapping[str, float] | None = None
) -> tuple[SignalPoint, list[Dropped]]:
    """The inputs a user would give for the published patch ``ops`` of point ``name``, and what
    of the patch these inputs cannot carry (a region or modifier outside the interface, a
    an operation that is not a signal sample)."""
    regions: dict[str, RegionInput] = {}
    dropped: list[Dropped] = []
    by_index = {r.index: r for r in itf.regions}
    for op in ops:
        index = sample_add(op, workspace)
        r = by_index.get(index) if index is not None else None
        if r is None:
            dropped.append(_not_a_signal_sample(op, index, workspace))
            continue
        regions[r.channel], lost = _region_inputs(itf, r, op["value"])
        dropped += lost
    return SignalPoint(name, regions, dict(labels or {})), dropped


def _not_a_signal_sample(op: Mapping[str, Any], index: int | None, workspace: Mapping[str, Any]) -> Dropped:
    """An operation of a published patch that adds no signal sample to a region of the interface, where it acts."""
    where = str(workspace["channels"][index]["name"]) if index is not None else str(op.get("path"))
    return Dropped(where, str(op.get("path")), str(op.get("op")), "not a signal sample of a region of the interface")
