"""Likelihoods: pyhf HistFactory JSON workspaces (schema 1.0.0) and their consistency.

>>> ws = {"channels": [{"name": "SR", "samples": [{"name": "bkg", "data": [5.0, 2.0],
...       "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}]}],
...       "observations": [{"name": "SR", "data": [6.0]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
...       "version": "1.0.0"}
>>> looks_like_workspace(ws)
True
>>> [f.one_line() for f in check_workspace(ws, location="ws.json")]
["E061 ws.json:$.channels[0].samples[0].data: has 2 bins, but channel 'SR' has 1 (the length of its observation)"]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

from heparch.findings import Finding
from heparch.spec import schema_check

SCHEMA: Final = "workspace.json"

#: modifier type -> kind of parameter set; pyhf refuses one name used with two kinds
#: (``InvalidNameReuse``); histosys and normsys share one (both constrained by a normal).
PARAMETER_KIND: Final[Mapping[str, str]] = {
    "histosys": "normal, scalar",
    "normsys": "normal, scalar",
    "lumi": "lumi",
    "normfactor": "free, scalar",
    "shapefactor": "free, per bin",
    "shapesys": "poisson, per bin",
    "staterror": "normal, per bin",
}

Path = tuple[str | int, ...]
#: one consistency problem: JSON path parts and message
Issue = tuple[Path, str]


def looks_like_workspace(obj: Any) -> bool:
    """A dict with ``channels`` and ``observations`` or ``measurements``."""
    return isinstance(obj, dict) and "channels" in obj and ("observations" in obj or "measurements" in obj)


def pyhf_digest(obj: Any, algorithm: str = "sha256") -> str:
    """pyhf's digest of a JSON object, exactly as ``pyhf.utils.digest`` computes it.

    That is ``json.dumps(obj, sort_keys=True, ensure_ascii=False)`` encoded as UTF-8
    (default separators), hashed with ``hashlib``'s ``algorithm``.

    >>> pyhf_digest({"a": 2.0, "b": 3.0, "c": 1.0})
    'a38f6093800189b79bc22ef677baf90c75705af2cfc7ff594159eca54eaa7928'
    """
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def check_workspace(obj: Any, *, location: str, require_poi: bool = False) -> list[Finding]:
    """Schema (E061) and consistency (E061) findings for one workspace.

    Consistency: channel names unique, one observation per channel and one channel per
    observation, every data array of a channel (sample data, histosys ``hi_data`` and
    ``lo_data``, shapesys and staterror data) as long as the channel's observation,
    sample names unique within a channel, and no modifier name used for two kinds of
    parameters. With ``require_poi`` every measurement's POI must name a modifier: leave
    it off for a background-only workspace, whose signal (with the POI's normfactor) is
    added by patches.

    Measurement parameters that name no modifier are accepted, as pyhf does: published
    background-only workspaces configure ``mu_SIG`` or ``lumi`` that only the signal adds.
    Consistency is only checked on a workspace that passes the schema.
    """
    findings = schema_check.check(SCHEMA, obj, code="E061", location=location)
    if findings:
        return findings
    checker = Consistency()
    return [Finding("E061", f"{location}:{schema_check.json_path(path)}", message) for path, message in checker.issues(obj, require_poi=require_poi)]


# ---------------------------------------------------------------------------------------
# consistency, memoised per sample object (patched workspaces share the unpatched ones)


@dataclasses.dataclass(frozen=True)
class SampleSummary:
    """What the consistency checks need from one sample.

    ``lengths`` maps each distinct data-array length to the paths (relative to the sample)
    of the arrays that have it; ``kinds`` maps modifier name to parameter kind.
    """

    name: str
    lengths: Mapping[int, tuple[Path, ...]]
    kinds: Mapping[str, str]


def _arrays(sample: Mapping[str, Any]) -> Iterator[tuple[Path, int]]:
    """``(relative path, length)`` of every per-bin array of a (schema-valid) sample."""
    yield ("data",), len(sample["data"])
    for index, modifier in enumerate(sample["modifiers"]):
        kind, data = modifier["type"], modifier["data"]
        if kind == "histosys":
            yield ("modifiers", index, "data", "hi_data"), len(data["hi_data"])
            yield ("modifiers", index, "data", "lo_data"), len(data["lo_data"])
        elif kind in ("shapesys", "staterror"):
            yield ("modifiers", index, "data"), len(data)


def summarize(sample: Mapping[str, Any]) -> SampleSummary:
    """The :class:`SampleSummary` of a schema-valid sample."""
    lengths: dict[int, list[Path]] = {}
    for path, length in _arrays(sample):
        lengths.setdefault(length, []).append(path)
    kinds: dict[str, str] = {}
    for modifier in sample["modifiers"]:
        kinds.setdefault(modifier["name"], PARAMETER_KIND[modifier["type"]])
    return SampleSummary(sample["name"], {k: tuple(v) for k, v in lengths.items()}, kinds)


@dataclasses.dataclass
class _Baseline:
    """The unpatched workspace's sample objects, modifier kinds and issues."""

    sample_ids: frozenset[int]
    kinds: dict[str, tuple[str, Path]]
    issues: frozenset[Issue]


class Consistency:
    """Consistency checks with per-sample memos, so patched workspaces cost little.

    Samples are memoised by object identity (the memo keeps the object alive, so an id
    is never reused while it is in the memo). :meth:`set_baseline` records the unpatched
    workspace; :meth:`new_issues` then reports only what a patch broke.
    """

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, SampleSummary]] = {}
        self._baseline: _Baseline | None = None

    def summary(self, sample: Mapping[str, Any]) -> SampleSummary:
        """The memoised summary of ``sample``."""
        hit = self._memo.get(id(sample))
        if hit is not None and hit[0] is sample:
            return hit[1]
        found = summarize(sample)
        self._memo[id(sample)] = (sample, found)
        return found

    def forget_except_baseline(self) -> None:
        """Drop memo entries of samples that are not in the baseline."""
        keep = self._baseline.sample_ids if self._baseline else frozenset()
        self._memo = {k: v for k, v in self._memo.items() if k in keep}

    def set_baseline(self, ws: Mapping[str, Any], *, require_poi: bool = False) -> list[Issue]:
        """Check the unpatched ``ws``, remember it, and return its issues."""
        issues = self.issues(ws, require_poi=require_poi)
        ids = frozenset(id(s) for c in ws["channels"] for s in c["samples"])
        kinds: dict[str, tuple[str, Path]] = {}
        self._kind_issues(ws, kinds, only_new=False)
        self._baseline = _Baseline(ids, kinds, frozenset(issues))
        return issues

    def issues(self, ws: Mapping[str, Any], *, require_poi: bool = False) -> list[Issue]:
        """Every consistency issue of a schema-valid workspace."""
        out = self._channel_issues(ws)
        kinds: dict[str, tuple[str, Path]] = {}
        out.extend(self._kind_issues(ws, kinds, only_new=False))
        out.extend(_poi_issues(ws, kinds, require_poi=require_poi))
        return out

    def new_issues(self, ws: Mapping[str, Any], *, require_poi: bool) -> list[Issue]:
        """Issues of a patched workspace that the baseline does not have."""
        base = self._baseline
        if base is None:
            return self.issues(ws, require_poi=require_poi)
        out = self._channel_issues(ws)
        present = {id(s) for c in ws["channels"] for s in c["samples"] if id(s) in base.sample_ids}
        if present == base.sample_ids:  # only additions: check new samples against the baseline
            kinds = dict(base.kinds)
            out.extend(self._kind_issues(ws, kinds, only_new=True))
        else:
            kinds = {}
            out.extend(self._kind_issues(ws, kinds, only_new=False))
        out.extend(_poi_issues(ws, kinds, require_poi=require_poi))
        return [issue for issue in out if issue not in base.issues]

    # -- the checks ----------------------------------------------------------------------
    def _channel_issues(self, ws: Mapping[str, Any]) -> list[Issue]:
        out: list[Issue] = []
        observed = _observations(ws, out)
        seen: set[str] = set()
        for ci, channel in enumerate(ws["channels"]):
            name = channel["name"]
            if name in seen:
                out.append((("channels", ci, "name"), f"channel name {name!r} is used twice"))
                continue
            seen.add(name)
            if name not in observed:
                out.append((("channels", ci), f"channel {name!r} has no observation"))
            out.extend(self._bin_issues(ci, channel, observed.get(name)))
        for oi, obs in enumerate(ws["observations"]):
            if obs["name"] not in seen:
                out.append((("observations", oi, "name"), f"observation {obs['name']!r} names no channel"))
        return out

    def _bin_issues(self, ci: int, channel: Mapping[str, Any], n_obs: int | None) -> Iterator[Issue]:
        name = channel["name"]
        names: set[str] = set()
        n_bins = n_obs
        for si, sample in enumerate(channel["samples"]):
            summary = self.summary(sample)
            if summary.name in names:
                yield (
                    ("channels", ci, "samples", si, "name"),
                    f"sample name {summary.name!r} is used twice in channel {name!r}",
                )
            names.add(summary.name)
            if n_bins is None:  # no observation: the first sample sets the bin count
                n_bins = len(sample["data"])
            for length, paths in summary.lengths.items():
                if length == n_bins:
                    continue
                what = "the length of its observation" if n_obs is not None else "the length of its first sample"
                for path in paths:
                    yield (
                        ("channels", ci, "samples", si, *path),
                        f"has {length} bins, but channel {name!r} has {n_bins} ({what})",
                    )

    def _kind_issues(self, ws: Mapping[str, Any], kinds: dict[str, tuple[str, Path]], *, only_new: bool) -> list[Issue]:
        """Modifier names used for two kinds of parameters; fills ``kinds``."""
        out: list[Issue] = []
        skip = self._baseline.sample_ids if only_new and self._baseline else frozenset()
        for ci, channel in enumerate(ws["channels"]):
            for si, sample in enumerate(channel["samples"]):
                if id(sample) in skip:
                    continue
                for modifier_name, kind in self.summary(sample).kinds.items():
                    first = kinds.setdefault(modifier_name, (kind, ("channels", ci, "samples", si)))
                    if first[0] != kind:
                        where = schema_check.json_path(first[1])
                        out.append(
                            (
                                ("channels", ci, "samples", si, "modifiers"),
                                f"modifier {modifier_name!r} is a {kind} parameter here but a {first[0]} parameter at {where}",
                            )
                        )
        return out


def _observations(ws: Mapping[str, Any], out: list[Issue]) -> dict[str, int]:
    """Observation name -> number of bins; duplicate names are issues."""
    observed: dict[str, int] = {}
    for oi, obs in enumerate(ws["observations"]):
        if obs["name"] in observed:
            out.append((("observations", oi, "name"), f"observation name {obs['name']!r} is used twice"))
            continue
        observed[obs["name"]] = len(obs["data"])
    return observed


def _poi_issues(ws: Mapping[str, Any], kinds: Mapping[str, tuple[str, Path]], *, require_poi: bool) -> list[Issue]:
    if not require_poi:
        return []
    out: list[Issue] = []
    for mi, measurement in enumerate(ws["measurements"]):
        poi = measurement["config"]["poi"]
        if poi not in kinds:
            out.append(
                (
                    ("measurements", mi, "config", "poi"),
                    f"parameter of interest {poi!r} of measurement {measurement['name']!r} is not a modifier of any sample",
                )
            )
    return out
