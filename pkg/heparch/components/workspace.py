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
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
#: one finding of the rate and observation checks: code, JSON path parts and message
Notice = tuple[str, Path, str]

#: observations of channels the workspace does not have, or a channel observed twice
#: (pyhf ignores the first and uses the last)
W_OBSERVATION: Final = "W009"
#: a sample with a negative yield where the background rate stays computable
W_NEGATIVE: Final = "W010"
#: a measurement configures a parameter that no modifier uses (pyhf ignores it)
W_UNUSED: Final = "W011"
#: a measurement pyhf cannot start a fit from, where another measurement of the likelihood works
W_MEASUREMENT: Final = "W012"
#: a bin whose background rate is negative, or zero with events observed, or a negative count
E_RATE: Final = "E080"
#: a parameter configuration pyhf cannot start a fit from (bounds, inits, lumi settings)
E_PARAMETER: Final = "E081"
#: the codes of models pyhf cannot compute
E_MODEL: Final = frozenset({E_RATE, E_PARAMETER})

#: pyhf 0.7.6's default (init, (lower, upper)) per parameter kind (:data:`PARAMETER_KIND`);
#: lumi has none (it must be configured)
KIND_DEFAULTS: Final[Mapping[str, tuple[float, tuple[float, float]]]] = {
    "normal, scalar": (0.0, (-5.0, 5.0)),  # histosys, normsys
    "free, scalar": (1.0, (0.0, 10.0)),  # normfactor
    "free, per bin": (1.0, (0.0, 10.0)),  # shapefactor
    "poisson, per bin": (1.0, (1e-10, 10.0)),  # shapesys
    "normal, per bin": (1.0, (1e-10, 10.0)),  # staterror
}
LUMI_KEYS: Final = ("inits", "bounds", "auxdata", "sigmas")


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

    What pyhf 0.7.6 builds and computes is accepted, with a warning where it is unusual:
    observations of channels the workspace does not have or a channel observed twice (W009),
    samples with negative yields where the background rate stays positive (W010). What it
    cannot compute is an error (E080, E081; W012 for a measurement pyhf cannot start a fit from
    where another works): see :meth:`Consistency.likelihood_notices`. Measurement parameters that
    name no modifier are reported by :func:`unused_parameters` (W011), by the caller that
    knows the patches: published background-only workspaces configure ``mu_SIG`` or ``lumi``
    that only the signal adds. Consistency is only checked on a workspace that passes the
    schema.
    """
    findings = schema_check.check(SCHEMA, obj, code="E061", location=location)
    if findings:
        return findings
    checker = Consistency()
    findings = [Finding("E061", f"{location}:{schema_check.json_path(path)}", message) for path, message in checker.issues(obj, require_poi=require_poi)]
    notices = observation_notices(obj) + ([] if findings else checker.likelihood_notices(obj))
    return findings + notice_findings(notices, location)


def notice_findings(notices: Sequence[Notice], location: str) -> list[Finding]:
    """:data:`Notice` s as findings located in ``location``."""
    return [Finding(code, f"{location}:{schema_check.json_path(path)}", message) for code, path, message in notices]


def measurement_index(ws: Mapping[str, Any], name: str | None) -> int:
    """The index of the measurement named ``name`` (None: 0, pyhf's default); ValueError when
    the workspace has no such measurement (:func:`measurement_names` lists them)."""
    if name is None:
        return 0
    for index, measurement in enumerate(ws["measurements"]):
        if measurement["name"] == name:
            return index
    raise ValueError(f"no measurement {name!r}")


def measurement_names(ws: Mapping[str, Any]) -> list[str]:
    return [str(m["name"]) for m in ws["measurements"]]


def samples_of(ws: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every sample of every channel of a schema-valid workspace, in order."""
    return [sample for channel in ws["channels"] for sample in channel["samples"]]


def identities(objects: Iterable[Any]) -> frozenset[int]:
    """The identities (``id``) of ``objects``: what a patched workspace shares with its original is the same object."""
    return frozenset(map(id, objects))


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
    #: (modifier index, name, kind, the kind it had first) of names reused for another kind in this sample
    clashes: tuple[tuple[int, str, str, str], ...] = ()


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
    clashes: list[tuple[int, str, str, str]] = []
    for index, modifier in enumerate(sample["modifiers"]):
        kind = PARAMETER_KIND[modifier["type"]]
        first = kinds.setdefault(modifier["name"], kind)
        if first != kind:
            clashes.append((index, modifier["name"], kind, first))
    return SampleSummary(sample["name"], {k: tuple(v) for k, v in lengths.items()}, kinds, tuple(clashes))


@dataclasses.dataclass
class _Baseline:
    """The unpatched workspace's sample objects, modifier kinds and issues."""

    sample_ids: frozenset[int]
    kinds: dict[str, tuple[str, Path]]
    issues: frozenset[Issue]
    channel_ids: frozenset[int] = frozenset()
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)  # modifier name -> kind


class Consistency:
    """Consistency checks with per-sample memos, so patched workspaces cost little.

    Samples are memoised by object identity (the memo keeps the object alive, so an id
    is never reused while it is in the memo). :meth:`set_baseline` records the unpatched
    workspace; :meth:`new_issues` then reports only what a patch broke.
    """

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Any, SampleSummary]] = {}
        self._baseline: _Baseline | None = None
        # (id(channel), id(observed data), POIs) -> (channel, data, notices without the channel index)
        self._rates: dict[tuple[int, int, frozenset[str]], tuple[Any, Any, list[Notice]]] = {}

    def summary(self, sample: Mapping[str, Any]) -> SampleSummary:
        """The memoised summary of ``sample``."""
        hit = self._memo.get(id(sample))
        if hit is not None and hit[0] is sample:
            return hit[1]
        found = summarize(sample)
        self._memo[id(sample)] = (sample, found)
        return found

    def forget_except_baseline(self) -> None:
        """Drop memo entries of samples and channels that are not in the baseline."""
        keep = self._baseline.sample_ids if self._baseline else frozenset()
        self._memo = {k: v for k, v in self._memo.items() if k in keep}
        channels = self._baseline.channel_ids if self._baseline else frozenset()
        self._rates = {k: v for k, v in self._rates.items() if k[0] in channels}

    def rate_notices(self, ws: Mapping[str, Any]) -> list[Notice]:
        """The rate checks of every channel of a consistent workspace (see :func:`channel_rates`),
        memoised per channel and observation object."""
        pois = frozenset(m["config"]["poi"] for m in ws["measurements"])
        observed = {o["name"]: o["data"] for o in ws["observations"]}  # pyhf: the last one counts
        out = _negative_counts(ws)
        for ci, channel in enumerate(ws["channels"]):
            data = observed.get(channel["name"])
            if data is None:
                continue
            out.extend((code, ("channels", ci, *path), message) for code, path, message in self._channel_rates(channel, data, pois))
        return out

    def _channel_rates(self, channel: Mapping[str, Any], data: Sequence[float], pois: frozenset[str]) -> list[Notice]:
        """:func:`channel_rates`, memoised per channel and observation object (the objects kept alive with the entry)."""
        key = (id(channel), id(data), pois)
        hit = self._rates.get(key)
        if hit is None or hit[0] is not channel or hit[1] is not data:
            signal = [self.scaled_by(sample, pois) for sample in channel["samples"]]
            hit = (channel, data, channel_rates(channel, data, signal))
            self._rates[key] = hit
        return hit[2]

    def scaled_by(self, sample: Mapping[str, Any], pois: frozenset[str]) -> bool:
        """Whether a normfactor named as one of ``pois`` scales ``sample``."""
        kinds = self.summary(sample).kinds
        return any(kinds.get(poi) == PARAMETER_KIND["normfactor"] for poi in pois)

    def model_notices(self, ws: Mapping[str, Any], *, measurement: str | None = None) -> list[Notice]:
        """What pyhf cannot compute with the measurement named ``measurement`` (None: the first,
        the one pyhf's ``Workspace.model()`` uses): E080 rates, E081 parameters; and W010. Of a
        consistent workspace. For what inference computes; see :meth:`likelihood_notices`
        for the verdict on a stored likelihood."""
        return self.rate_notices(ws) + self.parameter_notices(ws, measurement=measurement_index(ws, measurement))

    def likelihood_notices(self, ws: Mapping[str, Any]) -> list[Notice]:
        """What pyhf cannot compute (E080 rates, E081 parameters) and W010, W012 of a consistent
        likelihood, over all its measurements: pyhf computes a workspace with any measurement
        that lets it start a fit (``pyhf cls --measurement NAME``), so a measurement that does
        not is an error (E081) only when no measurement of the workspace does; otherwise a
        warning (W012) naming the ones that work. Results that use it are checked elsewhere
        (:func:`broken_measurements`)."""
        by_measurement = self.measurement_notices(ws)
        working = [name for name, found in by_measurement.items() if not found]
        out = self.rate_notices(ws)
        for found in by_measurement.values():
            out.extend(_measurement_verdict(found, working))
        return out

    def measurement_notices(self, ws: Mapping[str, Any]) -> dict[str, list[Notice]]:
        """Measurement name -> its E081 notices (empty: pyhf can start a fit with it)."""
        return {m["name"]: self.parameter_notices(ws, measurement=i) for i, m in enumerate(ws["measurements"])}

    def parameter_notices(self, ws: Mapping[str, Any], *, measurement: int = 0) -> list[Notice]:
        """E081 for the measurement at index ``measurement``, by default the first (the one pyhf's
        ``Workspace.model()`` uses): every fit starts from the initial values, which pyhf requires
        within the bounds, and a lumi parameter has no defaults."""
        types = self.modifier_kinds(ws)  # one kind per name: the workspace is consistent
        chosen = ws["measurements"][measurement]
        label = chosen["name"]
        configured = {p["name"]: (pi, p) for pi, p in enumerate(chosen["config"]["parameters"])}
        where = ("measurements", measurement, "config", "parameters")
        out = _lumi_notices(types, configured, measurement, label)
        for name, (pi, parameter) in configured.items():
            problems = _configured_problems(name, parameter, types.get(name))
            out.extend((E_PARAMETER, (*where, pi), f"measurement {label!r}: {message}") for message in problems)
        return out

    def used_names(self, ws: Mapping[str, Any]) -> set[str]:
        """The names of every modifier of ``ws`` (memoised per sample)."""
        return set(self.modifier_kinds(ws))

    def modifier_kinds(self, ws: Mapping[str, Any]) -> dict[str, str]:
        """Modifier name -> parameter kind over ``ws`` (the last kind where a name has two).
        A patched workspace that keeps every baseline sample costs only its new samples."""
        out, samples = self._from_baseline(samples_of(ws))
        for sample in samples:
            out.update(self.summary(sample).kinds)
        return out

    def _from_baseline(self, samples: list[Mapping[str, Any]]) -> tuple[dict[str, str], list[Mapping[str, Any]]]:
        """(the baseline's modifier kinds, the samples not in the baseline) when ``samples`` hold
        every baseline sample; else (nothing, all of them)."""
        base = self._baseline
        if base is not None and base.names and identities(samples) >= base.sample_ids:
            return dict(base.names), [s for s in samples if id(s) not in base.sample_ids]
        return {}, samples

    def set_baseline(self, ws: Mapping[str, Any], *, require_poi: bool = False) -> list[Issue]:
        """Check the unpatched ``ws``, remember it, and return its issues."""
        issues = self.issues(ws, require_poi=require_poi)
        kinds: dict[str, tuple[str, Path]] = {}
        self._kind_issues(ws, kinds, only_new=False)
        names = {name: kind for name, (kind, _path) in kinds.items()}
        self._baseline = _Baseline(identities(samples_of(ws)), kinds, frozenset(issues), identities(ws["channels"]), names)
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
        only_new = identities(samples_of(ws)) >= base.sample_ids  # only additions: check new samples against the baseline
        kinds = dict(base.kinds) if only_new else {}
        out.extend(self._kind_issues(ws, kinds, only_new=only_new))
        out.extend(_poi_issues(ws, kinds, require_poi=require_poi))
        return [issue for issue in out if issue not in base.issues]

    # -- the checks ----------------------------------------------------------------------
    def _channel_issues(self, ws: Mapping[str, Any]) -> list[Issue]:
        out: list[Issue] = []
        observed = _observations(ws)
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
            what = "the length of its observation" if n_obs is not None else "the length of its first sample"
            yield from _length_issues(summary, ("channels", ci, "samples", si), f"channel {name!r} has {n_bins} ({what})", n_bins)

    def _kind_issues(self, ws: Mapping[str, Any], kinds: dict[str, tuple[str, Path]], *, only_new: bool) -> list[Issue]:
        """Modifier names used for two kinds of parameters; fills ``kinds``."""
        out: list[Issue] = []
        skip = self._baseline.sample_ids if only_new and self._baseline else frozenset()
        for ci, channel in enumerate(ws["channels"]):
            for si, sample in enumerate(channel["samples"]):
                if id(sample) in skip:
                    continue
                out.extend(_sample_kind_issues(self.summary(sample), ("channels", ci, "samples", si), kinds))
        return out


def _length_issues(summary: SampleSummary, where: Path, expected: str, n_bins: int) -> Iterator[Issue]:
    """The data arrays of the sample at ``where`` whose length is not the channel's ``n_bins`` (``expected`` says why)."""
    for length, paths in summary.lengths.items():
        if length != n_bins:
            yield from (((*where, *path), f"has {length} bins, but {expected}") for path in paths)


def _sample_kind_issues(summary: SampleSummary, where: Path, kinds: dict[str, tuple[str, Path]]) -> list[Issue]:
    """Modifier names of the sample at ``where`` used for two kinds of parameters, in it or
    with the kind ``kinds`` recorded first (which it fills)."""
    out: list[Issue] = [
        ((*where, "modifiers", mi), f"modifier {modifier_name!r} is a {kind} parameter here but a {first_kind} parameter earlier in this sample")
        for mi, modifier_name, kind, first_kind in summary.clashes
    ]
    for modifier_name, kind in summary.kinds.items():
        first = kinds.setdefault(modifier_name, (kind, where))
        if first[0] != kind:
            out.append(
                (
                    (*where, "modifiers"),
                    f"modifier {modifier_name!r} is a {kind} parameter here but a {first[0]} parameter at {schema_check.json_path(first[1])}",
                )
            )
    return out


def _measurement_verdict(found: list[Notice], working: list[str]) -> list[Notice]:
    """A measurement's E081 notices (``found``) where no measurement works; else one W012 naming
    the ``working`` ones (nothing for a measurement that works)."""
    if not found or not working:
        return found
    _code, path, message = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    use = ", ".join(repr(n) for n in working)
    return [(W_MEASUREMENT, path, f"{message}{more}: pyhf computes this likelihood only with measurement {use} (--measurement)")]


def _observations(ws: Mapping[str, Any]) -> dict[str, int]:
    """Observation name -> number of bins of the last observation of that name (pyhf's
    ``Workspace`` keeps the last; :func:`observation_notices` warns about the others)."""
    return {obs["name"]: len(obs["data"]) for obs in ws["observations"]}


def observation_notices(ws: Mapping[str, Any]) -> list[Notice]:
    """W009 for observations pyhf ignores: of channels the workspace does not have (patches of
    published archives remove validation regions but leave their observations) and all but
    the last of one channel's observations."""
    channels = _channel_names(ws)
    last = _last_observations(ws)
    out: list[Notice] = []
    for oi, obs in enumerate(ws["observations"]):
        name = obs["name"]
        if name not in channels:
            out.append((W_OBSERVATION, ("observations", oi, "name"), f"observation {name!r} names no channel; pyhf ignores it"))
        elif last[name] != oi:
            out.append((W_OBSERVATION, ("observations", oi, "name"), f"channel {name!r} is observed again at $.observations[{last[name]}]; pyhf uses that one"))
    return out


def unused_parameters(ws: Mapping[str, Any], used: set[str]) -> list[Notice]:
    """W011 for measurement parameter configurations that name none of the ``used`` modifiers.

    The configuration of a measurement's own POI is not reported: a background-only
    workspace configures the POI that its signal adds (a model without its POI is refused
    elsewhere: E064 for a patch, exit 2 for inference)."""
    out: list[Notice] = []
    for mi, measurement in enumerate(ws["measurements"]):
        for pi, parameter in enumerate(measurement["config"]["parameters"]):
            if parameter["name"] not in used and parameter["name"] != measurement["config"]["poi"]:
                out.append(
                    (
                        W_UNUSED,
                        ("measurements", mi, "config", "parameters", pi, "name"),
                        f"measurement {measurement['name']!r} configures {parameter['name']!r}, which no modifier uses; pyhf ignores it",
                    )
                )
    return out


def _lumi_notices(types: Mapping[str, str], configured: Mapping[str, tuple[int, Mapping[str, Any]]], index: int, label: str) -> list[Notice]:
    """E081 for each lumi parameter the measurement at ``index`` does not configure fully: pyhf has no defaults for it."""
    out: list[Notice] = []
    for name in sorted(n for n, kind in types.items() if kind == "lumi"):
        out.extend(_lumi_notice(name, configured.get(name), index, label))
    return out


def _lumi_notice(name: str, configured: tuple[int, Mapping[str, Any]] | None, index: int, label: str) -> list[Notice]:
    """E081 when the lumi parameter ``name`` lacks a setting in the measurement at ``index`` (``configured``: its place and configuration there)."""
    pi, parameter = configured or (None, {})
    missing = [k for k in LUMI_KEYS if k not in parameter]
    if not missing:
        return []
    path = ("measurements", index, "config", "parameters", pi) if pi is not None else ("measurements", index, "config")
    return [(E_PARAMETER, path, f"lumi parameter {name!r} needs {', '.join(missing)} in measurement {label!r}; pyhf has no defaults for them")]


def _configured_problems(name: str, parameter: Mapping[str, Any], kind: str | None) -> list[str]:
    """Why pyhf cannot start a fit from a configured parameter of modifier ``kind`` (None: no
    modifier uses it; a lumi parameter is checked once it is complete)."""
    if kind is None:
        return []
    if kind != "lumi":
        return _start_problems(name, parameter, KIND_DEFAULTS[kind])
    if all(k in parameter for k in LUMI_KEYS):
        return _start_problems(name, parameter, (0.0, (0.0, 0.0)))
    return []


def _start_problems(name: str, parameter: Mapping[str, Any], default: tuple[float, tuple[float, float]]) -> list[str]:
    """Why pyhf cannot start a fit from ``parameter``'s configuration (given or default
    initial values and bounds, element by element); only numeric lists are compared."""
    init_list = _numeric_inits(parameter.get("inits")) or [default[0]]
    bound_list = _numeric_bounds(parameter.get("bounds")) or [default[1]]
    out = [f"parameter {name!r}: lower bound {lo!r} is above upper bound {hi!r}" for lo, hi in bound_list if lo > hi]
    return out or _outside_bounds(name, init_list, bound_list)


def _outside_bounds(name: str, init_list: Sequence[float], bound_list: Sequence[tuple[float, float]]) -> list[str]:
    """The first initial value outside its bounds (element by element, the shorter list's last entry repeated)."""
    for k in range(max(len(init_list), len(bound_list))):
        init, (lo, hi) = init_list[min(k, len(init_list) - 1)], bound_list[min(k, len(bound_list) - 1)]
        if not lo <= init <= hi:
            return [f"parameter {name!r}: initial value {init!r} lies outside its bounds [{lo!r}, {hi!r}]; pyhf cannot start a fit there"]
    return []


def _numeric_inits(inits: Any) -> list[float]:
    """The finite numbers of a parameter's ``inits`` (others are the schema's to report)."""
    return [float(x) for x in inits if _number(x)] if isinstance(inits, list) else []


def _numeric_bounds(bounds: Any) -> list[tuple[float, float]]:
    """The ``[lo, hi]`` pairs of finite numbers of a parameter's ``bounds``."""
    if not isinstance(bounds, list):
        return []
    return [(float(b[0]), float(b[1])) for b in bounds if isinstance(b, list) and len(b) == 2 and all(map(_number, b))]


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _negative_counts(ws: Mapping[str, Any]) -> list[Notice]:
    """E080 for negative counts in the observation pyhf uses for each channel."""
    channels = _channel_names(ws)
    out: list[Notice] = []
    for name, oi in _last_observations(ws).items():
        if name in channels:
            out.extend(_negative_count(name, oi, ws["observations"][oi]["data"]))
    return out


def _negative_count(name: str, oi: int, data: Sequence[float]) -> list[Notice]:
    """E080 for the first negative count of channel ``name``'s observation at index ``oi``."""
    b = next((b for b, n in enumerate(data) if n < 0), None)
    if b is None:
        return []
    return [(E_RATE, ("observations", oi, "data", b), f"channel {name!r} bin {b}: observed count {data[b]!r} is negative; a Poisson count is >= 0")]


def _channel_names(ws: Mapping[str, Any]) -> set[str]:
    return {channel["name"] for channel in ws["channels"]}


def _last_observations(ws: Mapping[str, Any]) -> dict[str, int]:
    """Observation name -> index of its last observation (the one pyhf uses)."""
    return {obs["name"]: oi for oi, obs in enumerate(ws["observations"])}


def channel_rates(channel: Mapping[str, Any], observed: Sequence[float], signal: Sequence[bool]) -> list[Notice]:
    """The rate checks of one channel (paths relative to the channel); ``signal`` says which
    samples a parameter of interest scales.

    The background rate of a bin is the sum of the samples not scaled by a parameter of
    interest, at nominal parameters. pyhf 0.7.6 computes a model whose background rate is
    > 0 in every bin, or = 0 where nothing is observed; it fails (log of a rate <= 0) where
    the rate is < 0, or = 0 with events observed, and on negative counts. Those are errors
    (E080); negative sample yields in a model it computes are a warning (W010).
    """
    name = channel["name"]
    out = _background_rate_errors(channel, observed, signal)
    if out:
        return out
    for si, sample in enumerate(channel["samples"]):
        out.extend(_negative_yields(si, sample, name))
    return out


def _negative_yields(si: int, sample: Mapping[str, Any], channel: str) -> list[Notice]:
    """W010 for a sample (at index ``si`` of ``channel``) with negative yields."""
    negative = [b for b, y in enumerate(sample["data"]) if y < 0]
    if not negative:
        return []
    return [
        (
            W_NEGATIVE,
            ("samples", si, "data", negative[0]),
            f"sample {sample['name']!r} of channel {channel!r} has negative yields in {len(negative)} bin(s); accepted because the background rate stays > 0 (or 0 where nothing is observed)",
        )
    ]


def _background_rate_errors(channel: Mapping[str, Any], observed: Sequence[float], signal: Sequence[bool]) -> list[Notice]:
    """E080 for each bin whose background rate is < 0, or 0 with events observed."""
    name = channel["name"]
    out: list[Notice] = []
    for b, (rate, n) in enumerate(zip(_background_rates(channel, observed, signal), observed, strict=True)):
        if rate < 0 or (rate == 0 and n > 0):
            out.append(
                (
                    E_RATE,
                    ("samples",),
                    f"channel {name!r} bin {b}: the background rate (samples not scaled by the POI, at nominal parameters) is {rate!r}"
                    f" with {n!r} observed; pyhf cannot compute it (a rate must be > 0, or 0 where nothing is observed)",
                )
            )
    return out


def _background_rates(channel: Mapping[str, Any], observed: Sequence[float], signal: Sequence[bool]) -> list[float]:
    """The background rate per bin: the sum of the samples not scaled by a parameter of interest (``signal``), at nominal parameters."""
    columns = zip(*(s["data"] for s, is_signal in zip(channel["samples"], signal, strict=True) if not is_signal), strict=True)
    return [math.fsum(column) for column in columns] or [0.0] * len(observed)


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
