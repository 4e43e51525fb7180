"""The signal interface of a likelihood, derived on demand from its published signal patches.

It says where a new signal enters (channels and bins, control regions included), which
modifiers the published signal samples carry and how a new signal gets each one:

- the POI normfactor and ``lumi``: always;
- ``staterror`` (per bin, shared with the backgrounds): from given per-bin MC uncertainties
  (``mc_unc``, absolute, in events), else none;
- signal systematics (``histosys``, ``normsys``): from given relative up/down variations
  (``<key>_up``, ``<key>_down``: +0.05 is +5 %; in a bin whose yield is 0 the varied yield
  itself, in events), else dropped, and the generated point says which were dropped;
- anything else (``shapesys``, a normfactor only some points carry): dropped, listed.

Patches that do more than add one sample per channel (remove channels, change
backgrounds) are described, and what a new signal cannot express is listed.

The derived interface is never stored in a bundle: it is heparch's derivation, so storing it
would put heparch's code into the identity (DESIGN.md section 1). An analysis may declare one
(a ``signal-interface`` component, :mod:`heparch.components.signal_interface`): that file is
content, checked against this derivation at build and verify, and ``arch reinterpret`` follows it.
It lives with the components (not in ``heparch.reinterpret``) because those checks need it.

>>> ws = {"channels": [{"name": "SR", "samples": [{"name": "b", "data": [4.0, 2.0], "modifiers": []}]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "observations": [], "version": "1.0.0"}
>>> sig = {"name": "p1", "data": [1.0, 0.5], "modifiers": [{"name": "mu", "type": "normfactor", "data": None},
...        {"name": "jes", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}
>>> itf = derive(ws, {"p1": [{"op": "add", "path": "/channels/0/samples/1", "value": sig}]}, likelihood="ws.json")
>>> [(r.channel, r.bins) for r in itf.regions], [s.key for s in itf.systematics], itf.adds_sample_only
([('SR', 2)], ['jes'], True)
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from heparch.errors import InputError

#: the modifier types a new signal gets from relative up/down variations
SYSTEMATIC_TYPES: Final = ("histosys", "normsys")
#: pyhf's default POI bounds, used when the measurement gives none
DEFAULT_POI_BOUNDS: Final = (0.0, 10.0)
_SAMPLE_ADD = re.compile(r"^/channels/(0|[1-9][0-9]*)/samples/(0|[1-9][0-9]*|-)$")
Ops = Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Region:
    """One channel a published signal enters.

    ``index`` is its place in the workspace's channels and ``insert_at`` the sample index a
    new signal is added at; ``background`` the nominal rate per bin of the samples not scaled
    by the POI; ``staterror`` the name of the staterror modifier a signal shares with the
    backgrounds (None: the published signals have none here); ``fixed`` the modifiers without
    data every published signal here carries (the POI normfactor, ``lumi``); ``systematics``
    the input keys that apply here; ``points`` how many published points enter it.
    """

    channel: str
    index: int
    bins: int
    insert_at: int
    background: tuple[float, ...]
    staterror: str | None
    fixed: tuple[tuple[str, str], ...]
    systematics: tuple[str, ...]
    points: int

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "bins": self.bins,
            "points": self.points,
            "staterror": self.staterror,
            "fixed": [{"name": n, "type": t} for n, t in self.fixed],
            "systematics": list(self.systematics),
        }


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A modifier of a published signal that a new signal does not get, and why."""

    region: str
    name: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.type} {self.name!r} in {self.region}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Systematic:
    """A signal systematic: the modifier ``name`` of ``type``, given as ``<key>_up``/``<key>_down``."""

    key: str
    name: str
    type: str
    regions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "type": self.type, "regions": list(self.regions)}


@dataclasses.dataclass(frozen=True)
class Interface:
    """What a new signal of one likelihood gives and gets (see the module docs)."""

    likelihood: str
    poi: str
    poi_bounds: tuple[float, float]
    sample_name: str | None  # the published signals' one sample name; None: each point's own name
    regions: tuple[Region, ...]
    systematics: tuple[Systematic, ...]
    not_entered: tuple[str, ...]  # channels no published signal enters
    dropped: tuple[Dropped, ...]  # modifiers of the published signals a new signal cannot get, and why
    unexpressed: tuple[str, ...]  # patch operations beyond adding a signal sample, with how many patches do them
    points: tuple[str, ...]  # the published points it was derived from
    luminosity_ifb: float | None = None
    declared: str | None = None  # the signal-interface component this one follows (the declared one wins); None: derived

    @property
    def source(self) -> str:
        """Which interface this is: the declared one (checked against the patches) or the derived one."""
        if self.declared is not None:
            return f"declared in {self.declared} (checked against {len(self.points)} published signal patches)"
        return f"derived from {len(self.points)} published signal patches"

    @property
    def adds_sample_only(self) -> bool:
        """Every published patch only adds a signal sample: a new signal is fully expressible."""
        return not self.unexpressed

    def region(self, channel: str) -> Region | None:
        return next((r for r in self.regions if r.channel == channel), None)

    def systematic(self, key: str) -> Systematic | None:
        return next((s for s in self.systematics if s.key == key), None)

    def units(self) -> str:
        lumi = f"{self.luminosity_ifb:g} fb^-1" if self.luminosity_ifb is not None else "the analysis's luminosity (not recorded in the bundle)"
        return f"expected signal events at {lumi}: cross-section x efficiency x luminosity; mc_unc in events; variations relative (+0.05 = +5 %)"

    def to_json(self) -> dict[str, Any]:
        return {
            "likelihood": self.likelihood,
            "source": self.source,
            "declared": self.declared,
            "poi": self.poi,
            "poi_bounds": list(self.poi_bounds),
            "sample_name": self.sample_name,
            "units": self.units(),
            "luminosity_ifb": self.luminosity_ifb,
            "regions": [r.to_json() for r in self.regions],
            "systematics": [s.to_json() for s in self.systematics],
            "not_entered": list(self.not_entered),
            "dropped": [str(d) for d in self.dropped],
            "adds_sample_only": self.adds_sample_only,
            "unexpressed": list(self.unexpressed),
            "points": len(self.points),
            "rules": {
                "fixed": "always added (the POI normfactor, lumi)",
                "staterror": "from mc_unc (absolute per-bin MC uncertainty), else none",
                "systematics": "from <key>_up and <key>_down (relative; the varied yield in events in a bin whose yield is 0; a normsys takes one value per channel), else dropped",
            },
        }


# ---------------------------------------------------------------------------------------
# derivation


@dataclasses.dataclass
class _Seen:
    """What the published signals of one channel carry."""

    points: int = 0
    names: set[str] = dataclasses.field(default_factory=set)
    modifiers: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)
    order: dict[tuple[str, str], None] = dataclasses.field(default_factory=dict)


def _poi(workspace: Mapping[str, Any], measurement: str | None, likelihood: str) -> tuple[str, tuple[float, float]]:
    """The POI of the measurement (named, else the first) and its bounds."""
    config = _measurement_config(workspace, measurement, likelihood)
    poi = str(config.get("poi"))
    return poi, _poi_bounds(config, poi)


def _measurement_config(workspace: Mapping[str, Any], measurement: str | None, likelihood: str) -> Mapping[str, Any]:
    """The ``config`` of the measurement named ``measurement`` (None: the first); InputError when there is none."""
    measurements = workspace.get("measurements", [])
    found = next((m for m in measurements if measurement is None or m.get("name") == measurement), None)
    if found is None:
        have = [m.get("name") for m in measurements]
        raise InputError(f"{likelihood}: measurement {measurement!r} is not in the workspace; it has {have}")
    config: Mapping[str, Any] = found.get("config", {})
    return config


def _poi_bounds(config: Mapping[str, Any], poi: str) -> tuple[float, float]:
    """The bounds a measurement's ``config`` gives ``poi``, else pyhf's default."""
    for par in config.get("parameters", []):
        if par.get("name") == poi and par.get("bounds"):
            lo, hi = par["bounds"][0]
            return float(lo), float(hi)
    return DEFAULT_POI_BOUNDS


def _scaled_by(sample: Mapping[str, Any], poi: str) -> bool:
    return any(m.get("type") == "normfactor" and m.get("name") == poi for m in sample.get("modifiers", []))


def _background(channel: Mapping[str, Any], poi: str) -> tuple[float, ...]:
    """The nominal rate per bin of the samples not scaled by ``poi``."""
    samples = [s for s in channel.get("samples", []) if not _scaled_by(s, poi)]
    bins = len(channel["samples"][0]["data"]) if channel.get("samples") else 0
    return tuple(float(sum(s["data"][b] for s in samples)) for b in range(bins))


def sample_add(op: Mapping[str, Any], workspace: Mapping[str, Any]) -> int | None:
    """The channel index an ``add`` of a whole sample at the end of a channel targets; None for any other operation."""
    m = _SAMPLE_ADD.match(str(op.get("path", "")))
    if op.get("op") != "add" or m is None or not isinstance(op.get("value"), Mapping):
        return None
    index = int(m.group(1))
    channels = workspace.get("channels", [])
    if index >= len(channels):
        return None
    at = m.group(2)
    return index if at == "-" or int(at) == len(channels[index].get("samples", [])) else None


def _named(items: Sequence[Any], index: str) -> Any:
    """The ``name`` of ``items[index]`` (None when the index is not one of them)."""
    i = int(index) if index.isdigit() else -1
    return items[i].get("name") if 0 <= i < len(items) else None


def _target(parts: Sequence[str], workspace: Mapping[str, Any]) -> str:
    """What a JSON pointer's ``parts`` (after ``/channels``) point at, by name."""
    channels = workspace.get("channels", [])
    what = f"channel {_named(channels, parts[0])!r}"
    if len(parts) >= 3 and parts[1] == "samples" and parts[0].isdigit() and int(parts[0]) < len(channels):
        sample = _named(channels[int(parts[0])].get("samples", []), parts[2])
        return f"{what} sample {sample!r}" + (f" {'/'.join(parts[3:])}" if len(parts) > 3 else "")
    return what if len(parts) == 1 else f"{what}, {'/'.join(parts[1:])}"


def _describe(op: Mapping[str, Any], workspace: Mapping[str, Any]) -> str:
    """An operation that does more than add a signal sample, in words."""
    path = str(op.get("path", ""))
    parts = path.split("/")
    in_channel = len(parts) >= 3 and parts[1] == "channels" and parts[2].isdigit()
    what = _target(parts[2:], workspace) if in_channel else "/".join(parts[1:2])
    return f"{op.get('op')} {path} ({what})" if what else f"{op.get('op')} {path}"


def _scan(workspace: Mapping[str, Any], patches: Mapping[str, Ops]) -> tuple[dict[int, _Seen], collections.Counter[str]]:
    """Per channel index, what the signals added there carry; and the other operations, counted by patch."""
    seen: dict[int, _Seen] = collections.defaultdict(_Seen)
    other: collections.Counter[str] = collections.Counter()
    for ops in patches.values():
        described = set()
        for op in ops:
            index = sample_add(op, workspace)
            if index is None:
                described.add(_describe(op, workspace))
                continue
            s = seen[index]
            s.points += 1
            s.names.add(str(op["value"].get("name")))
            for mod in op["value"].get("modifiers", []):
                key = (str(mod.get("name")), str(mod.get("type")))
                s.modifiers[key] += 1
                s.order.setdefault(key, None)
        other.update(described)
    return seen, other


def _keys(seen: Mapping[int, _Seen]) -> dict[tuple[str, str], str]:
    """The input key of every signal systematic: its name, or ``<name>_norm`` for a normsys
    whose name a histosys also has (HistFitter splits a systematic into shape and norm parts)."""
    pairs = {k for s in seen.values() for k in s.modifiers if k[1] in SYSTEMATIC_TYPES}
    names = collections.Counter(name for name, _ in pairs)
    return {(n, t): _key(n, t, names[n]) for n, t in pairs}


def _key(name: str, kind: str, uses: int) -> str:
    """The input key of the systematic ``name`` of ``kind`` (``uses``: how many kinds carry the name)."""
    return f"{name}_norm" if uses > 1 and kind == "normsys" else name


#: how a new signal gets a modifier, by the modifier's type, where the type alone decides
_ROLE_OF_TYPE: Final[Mapping[str, str]] = {"staterror": "staterror", "lumi": "fixed", **dict.fromkeys(SYSTEMATIC_TYPES, "systematic")}


def _classify(key: tuple[str, str], count: int, s: _Seen, poi: str) -> str:
    """``fixed``, ``staterror``, ``systematic`` or ``dropped``."""
    name, kind = key
    if kind in _ROLE_OF_TYPE:
        return _ROLE_OF_TYPE[kind]
    carried_by_all = kind in ("normfactor", "shapefactor") and count == s.points
    return "fixed" if carried_by_all or (kind == "normfactor" and name == poi) else "dropped"


def _dropped(key: tuple[str, str], count: int, s: _Seen, channel: str) -> Dropped:
    name, kind = key
    if kind in ("normfactor", "shapefactor"):
        return Dropped(channel, name, kind, f"carried by {count} of {s.points} published signals, so not added")
    return Dropped(channel, name, kind, f"a new signal has no input for a {kind}; not added")


def _region(index: int, channel: Mapping[str, Any], s: _Seen, poi: str, keys: Mapping[tuple[str, str], str], dropped: list[Dropped]) -> Region:
    fixed, systematics, staterror = [], [], None
    for key in s.order:
        kind = _classify(key, s.modifiers[key], s, poi)
        if kind == "fixed":
            fixed.append(key)
        elif kind == "staterror":
            staterror = key[0]
        elif kind == "systematic":
            systematics.append(keys[key])
        else:
            dropped.append(_dropped(key, s.modifiers[key], s, str(channel["name"])))
    background = _background(channel, poi)
    return Region(
        str(channel["name"]), index, len(background), len(channel.get("samples", [])), background, staterror, tuple(fixed), tuple(systematics), s.points
    )


def _systematics(keys: Mapping[tuple[str, str], str], regions: Sequence[Region]) -> tuple[Systematic, ...]:
    """Every signal systematic by key, with the regions it applies to."""
    ordered = sorted(keys, key=lambda k: keys[k])
    return tuple(Systematic(keys[k], k[0], k[1], tuple(r.channel for r in regions if keys[k] in r.systematics)) for k in ordered)


def _fixed_sample_name(seen: Mapping[int, _Seen], used: Mapping[str, Ops]) -> str | None:
    """The signal sample's name when every patch gives it the same one (not each point's own name)."""
    names = {n for s in seen.values() for n in s.names}
    return next(iter(names)) if len(names) == 1 and not names & set(used) else None


def _unexpressed(other: Mapping[str, int], n_patches: int) -> tuple[str, ...]:
    """What the patches do besides adding a signal sample, each with how many do it."""
    return tuple(f"{what}: in {n} of {n_patches} patches; a new signal cannot express it" for what, n in sorted(other.items()))


def derive(
    workspace: Mapping[str, Any],
    patches: Mapping[str, Ops],
    *,
    likelihood: str,
    measurement: str | None = None,
    luminosity_ifb: float | None = None,
    exclude: Iterable[str] = (),
) -> Interface:
    """The interface of ``workspace`` from its signal ``patches`` (point name -> RFC 6902
    operations), leaving out the points in ``exclude`` (the leave-one-out self-test)."""
    left_out = set(exclude)
    used = {k: v for k, v in patches.items() if k not in left_out}
    if not used:
        raise InputError(f"{likelihood}: no published signal patch to derive a signal interface from")
    poi, bounds = _poi(workspace, measurement, likelihood)
    seen, other = _scan(workspace, used)
    keys = _keys(seen)
    dropped: list[Dropped] = []
    channels = workspace.get("channels", [])
    regions = tuple(_region(i, channels[i], seen[i], poi, keys, dropped) for i in sorted(seen))
    return Interface(
        likelihood=likelihood,
        poi=poi,
        poi_bounds=bounds,
        sample_name=_fixed_sample_name(seen, used),
        regions=regions,
        systematics=_systematics(keys, regions),
        not_entered=_not_entered(channels, seen),
        dropped=tuple(dropped),
        unexpressed=_unexpressed(other, len(used)),
        points=tuple(used),
        luminosity_ifb=luminosity_ifb,
    )


def _not_entered(channels: Sequence[Mapping[str, Any]], seen: Mapping[int, _Seen]) -> tuple[str, ...]:
    """The names of the channels no published signal enters."""
    return tuple(str(c["name"]) for i, c in enumerate(channels) if i not in seen)


def _region_line(r: Region) -> str:
    stat = f"staterror {r.staterror} from mc_unc, else none" if r.staterror else "no staterror"
    fixed = ", ".join(f"{n} ({t})" for n, t in r.fixed) or "none"
    return f"    {r.channel}: {r.bins} bin(s), entered by {r.points} point(s); always: {fixed}; {stat}; {len(r.systematics)} systematic(s)"


def _section(title: str, items: Sequence[object]) -> list[str]:
    """A titled list (nothing when ``items`` is empty)."""
    return [title, *(f"    {x}" for x in items)] if items else []


def describe(itf: Interface) -> str:
    """The interface in words, for a terminal."""
    lines = [
        f"likelihood {itf.likelihood}: {itf.source}",
        f"  POI {itf.poi} in [{itf.poi_bounds[0]:g}, {itf.poi_bounds[1]:g}]; units: {itf.units()}",
        f"  signal sample name: {itf.sample_name or 'the point name'}",
        "  regions a signal enters (give 'yield' per bin; 'mc_unc' per bin for the staterror):",
        *(_region_line(r) for r in itf.regions),
    ]
    if itf.not_entered:
        lines.append(f"  channels no published signal enters: {', '.join(itf.not_entered)}")
    lines.append(f"  signal systematics ({len(itf.systematics)}): from <key>_up/<key>_down (relative), else dropped:")
    lines += [f"    {s.key}: {s.type} {s.name!r} in {', '.join(s.regions)}" for s in itf.systematics]
    lines += _section("  modifiers a new signal does not get:", itf.dropped)
    lines += _section("  the published patches do more than add a signal sample; a new signal cannot express:", itf.unexpressed)
    return "\n".join(lines)
