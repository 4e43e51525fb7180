"""A declared signal interface (role ``signal-interface``): its schema, and that it does not
contradict the likelihood's published signal patches.

An analysis may declare how a new signal enters a likelihood (arch.yaml: ``files: - {path:
signal-interface.json, role: signal-interface, likelihood: BkgOnly.json}``). The file is content:
it enters the identity as written. heparch derives the interface of the published patches
(:func:`heparch.components.interface.derive`) and checks the declaration against it: a
declared region, bin count, staterror, systematic, POI or sample name that the patches do not
show is E083; a declaration that says less (fewer regions or systematics, no staterror) is
fine, and ``arch reinterpret`` then follows it (:func:`follow`: what it leaves out is dropped).

>>> ws = {"channels": [{"name": "SR", "samples": [{"name": "b", "data": [4.0, 2.0], "modifiers": []}]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "observations": [], "version": "1.0.0"}
>>> sig = {"name": "sig", "data": [1.0, 0.5], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}
>>> patches = {"p1": [{"op": "add", "path": "/channels/0/samples/1", "value": sig}]}
>>> declared = {"likelihood": "ws.json", "regions": [{"channel": "SR", "bins": 3}]}
>>> [f.one_line() for f in check_declared(declared, location="si.json", workspace=ws, patches=patches)]
["E083 si.json:$.regions[0].bins: the published signals enter 'SR' with 2 bins, not 3 (expected 2, found 3)"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from heparch.components.interface import Dropped, Interface, Ops, Region, Systematic, derive
from heparch.errors import InputError
from heparch.findings import Finding
from heparch.spec import schema_check
from heparch.spec.components import InterfaceRegion, InterfaceSystematic, SignalInterface

SCHEMA: Final = "signal-interface.json"
ROLE: Final = "signal-interface"


def published_patches(patchsets: Iterable[Any], patch_files: Iterable[tuple[str, Any]]) -> dict[str, Ops]:
    """The published signal patches by point name: the patchsets' (first name wins), then the patch files'."""
    found: dict[str, Ops] = {}
    for obj in patchsets:
        for p in obj.get("patches", []) if isinstance(obj, dict) else []:
            found.setdefault(str(p["metadata"]["name"]), p["patch"])
    for name, ops in patch_files:
        found.setdefault(name, ops)
    return found


# ---------------------------------------------------------------------------------------
# what the check reads of a likelihood and its patches
#
# ``full`` verification checks a likelihood's patchsets one patch at a time, keeping none of
# them; a declaration is checked once every component is found valid. So that check does not
# parse the workspace and the patchsets a second time, the likelihood's own check keeps what
# :func:`check_declared` reads of them (:func:`derive` and :func:`_measurement`): the names,
# types and nominal rates, not the systematics' data. Other shapes are reduced to nothing: the
# declaration is checked only on a bundle whose components have no error.

_MODIFIER: Final = ("name", "type")


class Reducer:
    """Reduces a workspace and its patches to what :func:`check_declared` reads of them.

    Equal modifiers (name and type) are one shared object: a published patchset repeats the same
    ~100 modifiers in each of its sample additions (1Lbb: ~100,000 of them, 20 MiB as dicts of
    their own). The reduced forms are read, never changed.
    """

    def __init__(self) -> None:
        self._modifiers: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    def workspace(self, workspace: Mapping[str, Any]) -> dict[str, Any]:
        """A (valid) workspace's measurements, and its channels' names and samples (name, nominal
        data, their modifiers' names and types)."""
        channels = [{"name": c["name"], "samples": [self._picked(s, ("name", "data")) for s in c["samples"]]} for c in workspace["channels"]]
        return {"measurements": workspace["measurements"], "channels": channels}

    def ops(self, ops: Any) -> list[dict[str, Any]]:
        """A patch's RFC 6902 operations (a patch file): each one's op and path, and of an added
        object (a sample) its name and its modifiers' names and types."""
        return [self._op(op) for op in ops] if isinstance(ops, list) else []

    def patch(self, patch: Any) -> dict[str, Any]:
        """A patchset's patch: its name and its operations."""
        if not isinstance(patch, Mapping):
            return {}
        return {"metadata": _picked(patch.get("metadata"), ("name",)), "patch": self.ops(patch.get("patch"))}

    def patchset(self, obj: Any) -> dict[str, Any]:
        """A patchset: its patches (see :meth:`patch`)."""
        patches = obj.get("patches") if isinstance(obj, Mapping) else None
        return {"patches": [self.patch(p) for p in patches] if isinstance(patches, list) else []}

    def _op(self, op: Any) -> dict[str, Any]:
        out = _picked(op, ("op", "path"))
        value = op.get("value") if isinstance(op, Mapping) else None
        if isinstance(value, Mapping):
            out["value"] = self._picked(value, ("name",))
        return out

    def _picked(self, obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        """The members ``keys`` of ``obj`` (a sample) that it has, with its ``modifiers``' names and types."""
        out = _picked(obj, keys)
        modifiers = obj.get("modifiers") if isinstance(obj, Mapping) else None
        if isinstance(modifiers, list):
            out["modifiers"] = [self._modifier(m) for m in modifiers]
        return out

    def _modifier(self, modifier: Any) -> dict[str, Any]:
        picked = _picked(modifier, _MODIFIER)
        try:
            return self._modifiers.setdefault(tuple(picked.items()), picked)
        except TypeError:  # a name or type that is no string (an invalid modifier): not shared
            return picked


def _picked(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The members ``keys`` of ``obj`` that it has (nothing of what is not an object)."""
    return {k: obj[k] for k in keys if k in obj} if isinstance(obj, Mapping) else {}


def check_declared(obj: Any, *, location: str, workspace: Mapping[str, Any], patches: Mapping[str, Ops]) -> list[Finding]:
    """Findings for a declared signal interface: E082 (its schema), W005 (fields it does not
    know), E083 (what it says that the published ``patches`` of ``workspace`` contradict)."""
    findings = schema_check.check(SCHEMA, obj, code="E082", location=location)
    findings.extend(
        Finding("W005", f"{location}:{path}", "field not in the signal-interface schema 1.0.0; it is ignored")
        for path in schema_check.unknown_fields(SCHEMA, obj)
    )
    if any(f.severity == "error" for f in findings):
        return findings
    return findings + _contradiction_findings(SignalInterface.from_json(obj), location, workspace, patches)


def _contradiction_findings(declared: SignalInterface, location: str, workspace: Mapping[str, Any], patches: Mapping[str, Ops]) -> list[Finding]:
    """E083 for what ``declared`` says that the published ``patches`` contradict (or why they cannot be compared)."""
    try:
        derived = derive(workspace, patches, likelihood=declared.likelihood, measurement=_measurement(workspace, declared.poi))
    except InputError as exc:
        return [Finding("E083", location, f"cannot be checked: {exc}")]
    return [Finding("E083", f"{location}:{where}", message, expected, found) for where, message, expected, found in contradictions(declared, derived)]


def _measurement(workspace: Mapping[str, Any], poi: str | None) -> str | None:
    """The first measurement whose POI is ``poi`` (None: the first measurement, pyhf's default)."""
    for m in workspace.get("measurements", []):
        if poi is not None and m.get("config", {}).get("poi") == poi:
            return str(m.get("name"))
    return None


Contradiction = tuple[str, str, Any, Any]  # (JSON path, message, expected, found)


def contradictions(declared: SignalInterface, derived: Interface) -> list[Contradiction]:
    """What ``declared`` says that the ``derived`` interface of the published patches does not show."""
    out = _names(declared, derived)
    for i, region in enumerate(declared.regions):
        out += _region(i, region, derived)
    for i, s in enumerate(declared.systematics or ()):
        out += _systematic(i, s, derived)
    return out


def _names(declared: SignalInterface, derived: Interface) -> list[Contradiction]:
    """The POI and the sample name, where declared."""
    return _poi_contradiction(declared, derived) + _sample_name_contradiction(declared, derived)


def _poi_contradiction(declared: SignalInterface, derived: Interface) -> list[Contradiction]:
    if declared.poi is None or declared.poi == derived.poi:
        return []
    return [("$.poi", f"no measurement of {derived.likelihood} has the POI {declared.poi!r}", derived.poi, declared.poi)]


def _sample_name_contradiction(declared: SignalInterface, derived: Interface) -> list[Contradiction]:
    if declared.sample_name is None or declared.sample_name == derived.sample_name:
        return []
    shown = repr(derived.sample_name) if derived.sample_name else "a sample named after each point"
    return [("$.sample_name", f"the published patches add {shown}", derived.sample_name, declared.sample_name)]


def _systematic(i: int, s: InterfaceSystematic, derived: Interface) -> list[Contradiction]:
    found = derived.systematic(s.key)
    if found is None:
        return [(f"$.systematics[{i}].key", f"no published signal carries a systematic with the input key {s.key!r}", None, s.key)]
    if (found.name, found.type) != (s.name, s.type):
        return [
            (f"$.systematics[{i}]", f"the published signals carry {s.key!r} as {found.type} {found.name!r}", f"{found.type} {found.name}", f"{s.type} {s.name}")
        ]
    return []


def _region(i: int, declared: InterfaceRegion, derived: Interface) -> list[Contradiction]:
    """A declared region: its channel, bins, staterror and systematics."""
    where = f"$.regions[{i}]"
    r = derived.region(declared.channel)
    if r is None:
        what = "no published signal enters" if declared.channel in derived.not_entered else "the likelihood has no channel"
        return [(f"{where}.channel", f"{what} {declared.channel!r}", None, declared.channel)]
    return _bins(where, declared, r) + _staterror(where, declared, r) + _region_systematics(where, declared, r)


def _bins(where: str, declared: InterfaceRegion, r: Region) -> list[Contradiction]:
    if declared.bins == r.bins:
        return []
    return [(f"{where}.bins", f"the published signals enter {r.channel!r} with {r.bins} bins, not {declared.bins}", r.bins, declared.bins)]


def _staterror(where: str, declared: InterfaceRegion, r: Region) -> list[Contradiction]:
    if declared.staterror is None or declared.staterror == r.staterror:
        return []
    shared = "no staterror" if r.staterror is None else repr(r.staterror)
    return [(f"{where}.staterror", f"the published signals in {r.channel!r} share {shared}", r.staterror, declared.staterror)]


def _region_systematics(where: str, declared: InterfaceRegion, r: Region) -> list[Contradiction]:
    """The declared systematics no published signal in the region carries."""
    return [
        (f"{where}.systematics[{j}]", f"no published signal in {r.channel!r} carries the systematic {key!r}", None, key)
        for j, key in enumerate(declared.systematics or ())
        if key not in r.systematics
    ]


def declaration(derived: Interface) -> dict[str, Any]:
    """The declaration that says everything ``derived`` shows (an analyst's starting point: it checks clean)."""
    out: dict[str, Any] = {
        "likelihood": derived.likelihood,
        "poi": derived.poi,
        "regions": [_declared_region(r) for r in derived.regions],
        "systematics": [{"key": s.key, "name": s.name, "type": s.type} for s in derived.systematics],
    }
    if derived.sample_name is not None:
        out["sample_name"] = derived.sample_name
    if derived.luminosity_ifb is not None:
        out["luminosity_ifb"] = derived.luminosity_ifb
    return out


def _declared_region(r: Region) -> dict[str, Any]:
    region: dict[str, Any] = {"channel": r.channel, "bins": r.bins, "systematics": list(r.systematics)}
    if r.staterror is not None:
        region["staterror"] = r.staterror
    return region


# ---------------------------------------------------------------------------------------
# following a declared interface


def follow(derived: Interface, declared: SignalInterface, path: str) -> Interface:
    """The interface a new signal gets when ``declared`` (the component at ``path``, already
    checked: E083) is present: its regions, staterrors and systematics only; what the published
    patches show beyond it is dropped, and listed."""
    keys = _declared_keys(declared)
    dropped = list(derived.dropped)
    regions = tuple(_followed(derived, d, keys, path, dropped) for d in declared.regions if derived.region(d.channel) is not None)
    dropped += _left_out(derived, regions, path)
    systematics = tuple(_in(s, regions) for s in derived.systematics if s.key in keys)
    return dataclasses.replace(
        derived,
        sample_name=declared.sample_name or derived.sample_name,
        regions=regions,
        systematics=systematics,
        dropped=tuple(dropped),
        luminosity_ifb=_luminosity(derived, declared),
        declared=path,
    )


def _luminosity(derived: Interface, declared: SignalInterface) -> float | None:
    """The declared luminosity (in fb^-1), else the derived one."""
    return derived.luminosity_ifb if declared.luminosity_ifb is None else float(declared.luminosity_ifb)


def _declared_keys(declared: SignalInterface) -> set[str]:
    """The systematic input keys the declaration names, at the top or in a region."""
    keys = {s.key for s in declared.systematics or ()}
    for d in declared.regions:
        keys.update(d.systematics or ())
    return keys


def _in(s: Systematic, regions: tuple[Region, ...]) -> Systematic:
    """``s`` applying to those of ``regions`` that keep it."""
    return Systematic(s.key, s.name, s.type, tuple(r.channel for r in regions if s.key in r.systematics))


def _left_out(derived: Interface, followed: tuple[Region, ...], path: str) -> list[Dropped]:
    """The regions published signals enter that the declaration leaves out (not ``followed``)."""
    kept = {r.channel for r in followed}
    why = f"entered by published signals but not in {path}: a new signal does not enter it"
    return [Dropped(r.channel, r.channel, "region", why) for r in derived.regions if r.channel not in kept]


def _followed(derived: Interface, declared: InterfaceRegion, keys: set[str], path: str, dropped: list[Dropped]) -> Region:
    """A derived region cut to what ``declared`` says of it (the cuts appended to ``dropped``)."""
    r = derived.region(declared.channel)
    assert r is not None  # follow() keeps declared regions the patches show
    wanted = keys if declared.systematics is None else keys & set(declared.systematics)
    dropped += [_not_declared(derived, r.channel, key, path) for key in r.systematics if key not in wanted]
    staterror = _followed_staterror(r, declared, path, dropped)
    return dataclasses.replace(r, staterror=staterror, systematics=tuple(k for k in r.systematics if k in wanted))


def _followed_staterror(r: Region, declared: InterfaceRegion, path: str, dropped: list[Dropped]) -> str | None:
    """The region's staterror where the declaration keeps one; else None (a dropped staterror appended to ``dropped``)."""
    if declared.staterror is not None:
        return r.staterror
    if r.staterror is not None:
        dropped.append(Dropped(r.channel, r.staterror, "staterror", f"not in {path}"))
    return None


def _not_declared(derived: Interface, channel: str, key: str, path: str) -> Dropped:
    s = derived.systematic(key)
    return Dropped(channel, s.name if s else key, s.type if s else "systematic", f"not in {path}")
