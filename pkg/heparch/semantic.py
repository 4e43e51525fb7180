"""The semantic checks of ``full`` verification and of ``arch build``, over a set of components.

Components are read one likelihood at a time (its workspace, then its patchsets
and patches), so memory follows the largest likelihood, not the bundle.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from heparch.components import patchset as patchsets
from heparch.components import results as results_mod
from heparch.components import signal_interface, simplified, workspace
from heparch.findings import Finding
from heparch.semantic_stream import ObjectStream
from heparch.spec import limits, strictjson
from heparch.spec.models import FileEntry, Manifest

Loader = Callable[[FileEntry], bytes]


def spool_loader(spool: Path) -> Loader:
    """Read components from a directory of blobs named by their sha256 hex."""
    return lambda entry: (spool / entry.hex).read_bytes()


def _json(entry: FileEntry, load: Callable[[FileEntry], Any], findings: list[Finding]) -> Any:
    data = load(entry)
    if not isinstance(data, bytes):
        return data  # parsed already
    try:
        return strictjson.loads(data)  # nesting capped (64) on the bytes, before the recursive parser
    except strictjson.StrictJSONError as exc:
        findings.append(Finding(exc.code or "E060", entry.path, f"not strict JSON: {exc}"))
        return None


@dataclasses.dataclass
class Costs:
    """What the checks did, to bound their cost by the bundle's distinct content: how many
    times each blob (by sha256 hex) was parsed and checked. A blob referenced n times is
    checked once (issue 11: the same patchset listed 30 times cost 30 checks)."""

    checked: Counter[str] = dataclasses.field(default_factory=Counter)


def relocated(findings: Sequence[Finding], old: str, new: str) -> list[Finding]:
    """``findings`` of the component at ``old`` said of the identical component at ``new``."""
    if old == new:
        return list(findings)
    return [dataclasses.replace(f, location=new + f.location[len(old) :]) if f.location == old or f.location.startswith(old + ":") else f for f in findings]


class _Cache:
    """Results per distinct (blob, role, context): each distinct blob is checked once
    whatever references it, and the other references get the same findings at their paths."""

    def __init__(self, costs: Costs) -> None:
        self.costs = costs
        self._done: dict[tuple[str, ...], tuple[Sequence[str], list[Finding], Any]] = {}

    def get(self, key: tuple[str, ...], paths: Sequence[str]) -> tuple[list[Finding], Any] | None:
        """The cached findings, said of ``paths`` (pairwise for the paths first checked), and
        the cached value; None when ``key`` was not checked yet."""
        if key not in self._done:
            return None
        old_paths, findings, value = self._done[key]
        for old, new in zip(old_paths, paths, strict=True):
            findings = relocated(findings, old, new)
        return findings, value

    def put(self, key: tuple[str, ...], paths: Sequence[str], findings: list[Finding], value: Any) -> None:
        self._done[key] = (tuple(paths), findings, value)

    def checked(self, key: tuple[str, ...], paths: Sequence[str], check: Callable[[], tuple[list[Finding], Any]]) -> tuple[list[Finding], Any]:
        """The findings and value of ``check()`` for ``key``, run only the first time ``key`` is asked for."""
        hit = self.get(key, paths)
        if hit is None:
            hit = check()
            self.put(key, paths, *hit)
        return hit


def check_components(
    manifest: Manifest,
    spool: Path | Loader,
    *,
    parsed: Mapping[str, Any] | None = None,
    costs: Costs | None = None,
) -> list[Finding]:
    """Every schema and semantic check of the bundle's JSON components.

    ``parsed`` holds components already parsed (by logical path), so none is parsed twice.
    Each distinct blob is parsed and checked once in each role (``costs`` counts them).
    """
    read = spool_loader(spool) if isinstance(spool, Path) else spool
    known = parsed or {}
    cache = _Cache(costs if costs is not None else Costs())

    def load(entry: FileEntry) -> Any:
        cache.costs.checked[entry.hex] += 1
        return known[entry.path] if entry.path in known else read(entry)

    seen = _check_likelihoods(manifest, load, cache)
    findings = seen.findings + _check_simplifieds(manifest, load, cache, seen.points)
    findings += _check_results(manifest, load, seen.points, seen.broken)
    if not any(f.severity == "error" for f in findings):  # the derivation needs likelihoods and patches that check
        findings += _check_interfaces(manifest, load, seen.published)
    return findings


#: what a declared signal interface of a likelihood is checked against: the likelihood's workspace
#: and its published patches by point name, as :mod:`heparch.components.signal_interface` reduces them
Published = tuple[dict[str, Any], dict[str, Any]]


@dataclasses.dataclass
class _Likelihoods:
    """What the likelihoods' checks found: the findings, the points of each likelihood that
    parses, the measurements pyhf cannot start a fit from (likelihood -> measurement -> why),
    and what the likelihoods a signal interface names are checked against."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    points: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    broken: dict[str, Mapping[str | None, str]] = dataclasses.field(default_factory=dict)
    published: dict[str, Published] = dataclasses.field(default_factory=dict)

    def add(self, path: str, entries: Sequence[FileEntry], found: list[Finding], value: _Checked | None, *, declared: bool) -> None:
        """The check of the likelihood at ``path`` (its patchset and patch ``entries``); ``declared``: a signal interface names it."""
        self.findings += found
        if value is None:
            return  # the workspace does not parse: not a likelihood results may name
        self.broken[path] = value.broken
        self.points[path] = set(value.names) | _patch_file_points(entries, value.unparsed)
        if declared and value.reduced is not None:
            self.published[path] = _published(value.reduced, entries)


class _Checked(NamedTuple):
    """The cached value of one likelihood's check (:func:`_check_likelihood`)."""

    names: frozenset[str]  # its patchsets' patch names
    unparsed: frozenset[int]  # the indices of its patchset and patch entries that do not parse
    broken: Mapping[str | None, str]  # see _broken_measurements
    reduced: tuple[dict[str, Any], tuple[Any, ...]] | None  # its workspace and entries, reduced; None unless a signal interface names it


def _check_likelihoods(manifest: Manifest, load: Callable[[FileEntry], Any], cache: _Cache) -> _Likelihoods:
    """Each likelihood checked with its patchsets and patches (once per distinct content).

    What a declared signal interface reads of a likelihood and its patches is kept from this
    check (only for the likelihoods one names), so its check parses neither a second time."""
    seen = _Likelihoods()
    likelihoods = [(lk, _patch_entries(manifest, lk)) for lk in manifest.by_role("likelihood")]
    named = {e.likelihood for e in manifest.by_role(signal_interface.ROLE)}
    keep = {_likelihood_key(lk, entries)[0] for lk, entries in likelihoods if lk.path in named}
    for lk, entries in likelihoods:
        key, paths = _likelihood_key(lk, entries)
        found, value = cache.checked(key, paths, functools.partial(_check_likelihood, lk, entries, load, keep=key in keep))
        seen.add(lk.path, entries, found, value, declared=lk.path in named)
    return seen


def _patch_entries(manifest: Manifest, lk: FileEntry) -> list[FileEntry]:
    """The patchsets and patch files of the likelihood ``lk``, in the manifest's order."""
    return [e for e in manifest.files if e.likelihood == lk.path and e.role in ("patchset", "patch")]


def _published(kept: tuple[dict[str, Any], tuple[Any, ...]], entries: Sequence[FileEntry]) -> Published:
    """A likelihood's reduced workspace and its published patches by point name (its patchsets', then its
    patch files', named as the manifest names them), from what its check ``kept`` of its ``entries``."""
    ws, reduced = kept
    patches = signal_interface.published_patches(
        (reduced[i] for i, e in enumerate(entries) if e.role == "patchset"),
        ((e.annotations.get("patch.name", e.path), reduced[i]) for i, e in enumerate(entries) if e.role == "patch"),
    )
    return ws, patches


def _likelihood_key(lk: FileEntry, entries: Sequence[FileEntry]) -> tuple[tuple[str, ...], list[str]]:
    """The cache key of a likelihood with its patchsets and patches (their blobs and roles), and their paths."""
    return (lk.hex, "likelihood", *(f"{e.role}:{e.hex}" for e in entries)), [lk.path, *(e.path for e in entries)]


def _patch_file_points(entries: Sequence[FileEntry], unparsed: frozenset[int]) -> set[str]:
    """The points of a likelihood's patch files that parse (their patch.name, else their path)."""
    return {e.annotations.get("patch.name", e.path) for i, e in enumerate(entries) if e.role == "patch" and i not in unparsed}


def _check_simplifieds(manifest: Manifest, load: Callable[[FileEntry], Any], cache: _Cache, points: dict[str, set[str]]) -> list[Finding]:
    """The findings of each simplified likelihood; the signal points of each that parses go into ``points``."""
    findings: list[Finding] = []
    for sl in manifest.by_role("simplified-likelihood"):
        found, signals = cache.checked((sl.hex, sl.role), [sl.path], functools.partial(_check_simplified, sl, load))
        findings += found
        if signals is not None:
            points[sl.path] = set(signals)
    return findings


def _check_simplified(sl: FileEntry, load: Callable[[FileEntry], Any]) -> tuple[list[Finding], frozenset[str] | None]:
    findings: list[Finding] = []
    obj = _json(sl, load, findings)
    if obj is None:
        return findings, None
    bins = _bins(obj)
    if bins > limits.BINS:
        return [Finding("E018", f"{sl.path}:$", f"{bins} bins, more than the cap of {limits.BINS} (a {limits.BINS} x {limits.BINS} covariance)")], None
    findings += simplified.check_simplified(obj, location=sl.path)
    signals = obj.get("signals") if isinstance(obj, dict) else None
    return findings, frozenset(signals) if isinstance(signals, dict) else None


def _bins(obj: Any) -> int:
    """The most entries any of a simplified likelihood's per-bin arrays has (0 if none)."""
    arrays = [obj.get(key) for key in ("observed", "background", "covariance", "third_moments")] if isinstance(obj, dict) else []
    return max((len(a) for a in arrays if isinstance(a, list)), default=0)


def _check_likelihood(lk: FileEntry, entries: Sequence[FileEntry], load: Callable[[FileEntry], Any], *, keep: bool) -> tuple[list[Finding], _Checked | None]:
    """The findings of one likelihood with its patchsets and patch files, and what its check
    found (:class:`_Checked`; with ``keep``, its workspace and entries reduced to what a declared
    signal interface reads of them); None when the workspace itself does not parse. A patchset
    or patch blob listed several times is checked once."""
    findings: list[Finding] = []
    ws = _json(lk, load, findings)
    if ws is None:
        return findings, None
    problems = workspace.check_workspace(ws, location=lk.path)
    findings += problems
    usable = ws if not any(f.severity == "error" for f in problems) else None
    checker = patchsets.PatchChecker(usable) if usable is not None else None  # validates the workspace once
    reducer = signal_interface.Reducer() if keep and usable is not None else None
    found, names, unparsed, reduced = _check_patch_entries(entries, _PatchContext(load, usable, lk.path, checker, reducer))
    findings += found
    kept = (reducer.workspace(ws), reduced) if reducer is not None else None  # a reducer only where the workspace is usable
    if checker is None or not checker.usable:
        return findings, _Checked(frozenset(names), frozenset(unparsed), {}, kept)
    findings += workspace.notice_findings(workspace.unused_parameters(ws, checker.used), lk.path)  # W011: over the workspace and every patch
    return findings, _Checked(frozenset(names), frozenset(unparsed), _broken_measurements(checker.consistency, ws), kept)


@dataclasses.dataclass(frozen=True)
class _PatchContext:
    """What a likelihood's patchsets and patch files are checked with."""

    load: Callable[[FileEntry], Any]
    usable: Any  # the workspace, where it has no error (else None: the patches are not applied)
    likelihood_location: str
    checker: patchsets.PatchChecker | None  # of ``usable``, shared by its patches
    reducer: signal_interface.Reducer | None  # reduces each patchset and patch file (for a declared signal interface)


class _EntryCheck(NamedTuple):
    """One patchset or patch blob's check: its findings, its patch names (None: it does not
    parse) and, where kept, what a declared signal interface reads of it (else None)."""

    findings: list[Finding]
    names: set[str] | None
    reduced: Any = None


def _check_patch_entries(entries: Sequence[FileEntry], ctx: _PatchContext) -> tuple[list[Finding], set[str], set[int], tuple[Any, ...]]:
    """The findings of a likelihood's patchsets and patch files (the first warning of each code
    among the patch files), its patchsets' patch names, the indices of the entries that do
    not parse, and each entry's reduced form (by the context's reducer; without one None each). A blob listed
    several times in one role is checked once."""
    findings: list[Finding] = []
    names: set[str] = set()
    unparsed: set[int] = set()
    patch_warnings: list[Finding] = []
    reduced: list[Any] = []
    done: dict[tuple[str, str], tuple[str, _EntryCheck]] = {}
    check = functools.partial(_check_patch_entry, ctx=ctx)
    for index, entry in enumerate(entries):
        found, entry_names, entry_reduced = _once(entry, done, check)
        reduced.append(entry_reduced)
        if entry_names is None:
            unparsed.add(index)
        if entry.role == "patchset":
            findings += found
            names.update(entry_names or ())
        else:
            errors, warnings = _errors_and_warnings(found)
            findings += errors
            patch_warnings += warnings
    return findings + _first_of_each_code(patch_warnings), names, unparsed, tuple(reduced)


def _errors_and_warnings(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """A patch file's errors (each reported) and warnings (summarised per code)."""
    return [f for f in findings if f.severity == "error"], [f for f in findings if f.severity == "warning"]


def _once(entry: FileEntry, done: dict[tuple[str, str], tuple[str, _EntryCheck]], check: Callable[[FileEntry], _EntryCheck]) -> _EntryCheck:
    """``check(entry)``, run once per blob and role (``done``): a blob listed again gets the
    findings of its first check, said of its own path."""
    key = (entry.hex, entry.role)
    if key not in done:
        done[key] = (entry.path, check(entry))
    old, first = done[key]
    return first._replace(findings=relocated(first.findings, old, entry.path))


def _broken_measurements(consistency: workspace.Consistency, ws: Any) -> dict[str | None, str]:
    """Measurement name -> the first reason pyhf cannot start a fit with it (the first
    measurement also under None, the default of results that name none)."""
    out: dict[str | None, str] = {}
    for index, (name, found) in enumerate(consistency.measurement_notices(ws).items()):
        if found:
            out[name] = found[0][2]
            if index == 0:
                out[None] = found[0][2]
    return out


def _check_patch_entry(entry: FileEntry, ctx: _PatchContext) -> _EntryCheck:
    """The check of one patchset or patch file (reduced by the context's reducer, if any)."""
    findings: list[Finding] = []
    if entry.role == "patchset":
        return _check_patchset_entry(entry, ctx)
    obj = _json(entry, ctx.load, findings)
    if obj is None:
        return _EntryCheck(findings, None)
    found = patchsets.check_patch_file(obj, ctx.usable, location=entry.path, likelihood_location=ctx.likelihood_location, checker=ctx.checker)
    return _EntryCheck(findings + found, set(), None if ctx.reducer is None else ctx.reducer.ops(obj))


def _check_patchset_entry(entry: FileEntry, ctx: _PatchContext) -> _EntryCheck:
    """The check of one patchset (reduced by the context's reducer, if any). Read from bytes, it
    is parsed and checked one patch at a time (:func:`_streamed_patchset`)."""
    data = ctx.load(entry)
    if isinstance(data, bytes) and ObjectStream.is_object(data):
        return _streamed_patchset(entry, data, ctx)
    findings: list[Finding] = []
    obj = _json(entry, lambda _e: data, findings)
    if obj is None:
        return _EntryCheck(findings, None)
    found = patchsets.check_patchset(obj, ctx.usable, location=entry.path, likelihood_location=ctx.likelihood_location, checker=ctx.checker)
    return _EntryCheck(findings + found, patchsets.patch_names(obj), None if ctx.reducer is None else ctx.reducer.patchset(obj))


def _streamed_patchset(entry: FileEntry, data: bytes, ctx: _PatchContext) -> _EntryCheck:
    """A patchset checked as :class:`ObjectStream` parses it: its text and one patch are alive,
    not the whole tree (issue 11: 1Lbb's 13.8 MiB patchset held ~70 MiB). With a reducer, each
    patch is reduced as it passes (:func:`_reducing`)."""
    kept: list[Any] = []
    try:
        stream = ObjectStream(data, "patches")
        del data  # the text is enough
        found, skeleton = patchsets.check_patchset_stream(
            stream.elements() if ctx.reducer is None else _reducing(stream.elements(), ctx.reducer, kept),
            lambda reduced: {**stream.members, "patches": reduced} if stream.streamed else stream.members,
            ctx.usable,
            location=entry.path,
            likelihood_location=ctx.likelihood_location,
            checker=ctx.checker,
        )
    except strictjson.StrictJSONError as exc:
        return _EntryCheck([Finding(exc.code or "E060", entry.path, f"not strict JSON: {exc}")], None)
    return _EntryCheck(found, patchsets.patch_names(skeleton), None if ctx.reducer is None else {"patches": kept})


def _reducing(patches: Iterator[Any], reducer: signal_interface.Reducer, into: list[Any]) -> Iterator[Any]:
    """``patches``, each one's reduced form (:meth:`signal_interface.Reducer.patch`) appended to ``into`` as it passes."""
    for patch in patches:
        into.append(reducer.patch(patch))
        yield patch


def _measurement_used(obj: Mapping[str, Any], location: str, broken: Mapping[str | None, str]) -> list[Finding]:
    """E081 where a results component's claims use a measurement pyhf cannot start a fit from."""
    settings = obj.get("settings")
    name = settings.get("measurement") if isinstance(settings, Mapping) else None
    if not isinstance(name, str | None) or name not in broken:
        return []
    where = f"{location}:$.settings.measurement" if name is not None else f"{location}:$.settings"
    which = repr(name) if name is not None else "the first measurement (none named)"
    return [Finding(workspace.E_PARAMETER, where, f"the claims use {which} of {obj.get('likelihood')!r}, which pyhf cannot start a fit from: {broken[name]}")]


def _first_of_each_code(warnings: list[Finding]) -> list[Finding]:
    """One finding per code: the first, saying how many more there are and in how many files
    (a published archive's hundreds of patch files each leave the same observations)."""
    by_code: dict[str, list[Finding]] = {}
    for f in warnings:
        by_code.setdefault(f.code, []).append(f)
    return [_first_saying_how_many(same) for same in by_code.values()]


def _first_saying_how_many(same: list[Finding]) -> Finding:
    """The first of findings of one code, saying how many more there are and in how many files."""
    files = {f.location.split(":", 1)[0] for f in same}
    first = same[0]
    more = f" (and {len(same) - 1} more in {len(files)} patch file(s) of this likelihood)" if len(same) > 1 else ""
    return Finding(first.code, first.location, first.message + more, first.expected, first.found)


def _check_results(
    manifest: Manifest, load: Callable[[FileEntry], Any], points: dict[str, set[str]], broken: Mapping[str, Mapping[str | None, str]]
) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for entry in manifest.by_role("results"):
        obj = _json(entry, load, findings)
        if obj is None:
            continue
        target = obj.get("likelihood") if isinstance(obj, dict) else None
        known = points.get(target) if isinstance(target, str) else None
        findings += results_mod.check_results(obj, location=entry.path, known_points=known)
        if isinstance(target, str):
            findings += _target_findings(entry, target, points, seen)
            findings += _measurement_used(obj, entry.path, broken.get(target, {}))
            findings += _annotation_findings(entry, target)
            seen.setdefault(target, entry.path)
    return findings


def _target_findings(entry: FileEntry, target: str, likelihoods: Mapping[str, set[str]], seen: Mapping[str, str]) -> list[Finding]:
    """E069 where a results component names no likelihood of the bundle, or one that already has results (``seen``)."""
    where = f"{entry.path}:$.likelihood"
    if target not in likelihoods:
        return [Finding("E069", where, f"{target!r} is not a likelihood or simplified likelihood of this bundle")]
    if target in seen:
        return [Finding("E069", where, f"{target!r} already has a results component ({seen[target]}); one per likelihood")]
    return []


def _annotation_findings(entry: FileEntry, target: str) -> list[Finding]:
    """E069 where the likelihood a results component names differs from the manifest's annotation."""
    if entry.likelihood is None or entry.likelihood == target:
        return []
    return [Finding("E069", f"{entry.path}:$.likelihood", "differs from the manifest's annotation", expected=entry.likelihood, found=target)]


def _check_interfaces(manifest: Manifest, load: Callable[[FileEntry], Any], published: Mapping[str, Published]) -> list[Finding]:
    """E082/E083/W005 of each declared signal interface, against its likelihood's published
    patches (``published``: kept from the likelihood's check, not parsed again)."""
    findings: list[Finding] = []
    for entry in manifest.by_role(signal_interface.ROLE):
        obj = _json(entry, load, findings)
        against = published.get(entry.likelihood) if entry.likelihood is not None else None
        if obj is not None and against is not None:  # else not strict JSON (E060), or no likelihood named (E037)
            findings += _check_interface(entry, obj, against)
    return findings


def _check_interface(entry: FileEntry, obj: Any, against: Published) -> list[Finding]:
    """E082 where a declared interface names another likelihood than its annotation; else its
    findings against its likelihood's workspace and published patches (``against``)."""
    if isinstance(obj, dict) and obj.get("likelihood") != entry.likelihood:
        return [Finding("E082", f"{entry.path}:$.likelihood", "differs from the manifest's annotation", expected=entry.likelihood, found=obj.get("likelihood"))]
    ws, patches = against
    return signal_interface.check_declared(obj, location=entry.path, workspace=ws, patches=patches)
