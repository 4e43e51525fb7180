"""What changed between two bundles (``arch diff A B``): components, metadata, patches, claims.

Components are compared by logical path (added, removed, or changed: content, role, media
type or annotations); metadata field by field (``name``, ``created``, ``bundleFormat.version``,
each ``analysis`` field, ``containers``, ``supersedes``); patches by name within the
likelihood they belong to (a patchset's patches and ``patch`` files alike); claimed values by
point within the likelihood their results component names, with the difference ``B - A`` of
each number. A patchset or results component whose content is the same in both is not read.

>>> _difference(0.25, 0.5), _difference([1, 2], [1.5, 2]), _difference(None, 0.5)
(0.25, [0.5, 0], None)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pydantic

from heparch.api import Bundle
from heparch.errors import InvalidBundle
from heparch.spec import strictjson
from heparch.spec.components import Results
from heparch.spec.models import FileEntry

#: the claimed numbers of a point that the diff compares (the rest are marks and provenance)
CLAIMED_FIELDS = ("CLs_obs", "CLs_exp", "mu_up_obs", "mu_up_exp")


@dataclasses.dataclass(frozen=True)
class Names:
    """Names (paths, patch names or points) only in B, only in A, and in both but different."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @classmethod
    def of(cls, a: Mapping[str, Any], b: Mapping[str, Any]) -> Names:
        return cls(tuple(sorted(b.keys() - a.keys())), tuple(sorted(a.keys() - b.keys())), tuple(sorted(k for k in a.keys() & b.keys() if a[k] != b[k])))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}


@dataclasses.dataclass(frozen=True)
class Side:
    """One of the two bundles: where it is and its identity."""

    path: str
    identity: str


@dataclasses.dataclass(frozen=True)
class Claims:
    """The claimed values of one likelihood: the points' values only in B (added) or only in A
    (removed), and per changed point each changed field's ``{"a", "b", "difference"}``."""

    added: dict[str, dict[str, Any]]
    removed: dict[str, dict[str, Any]]
    changed: dict[str, dict[str, dict[str, Any]]]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


@dataclasses.dataclass(frozen=True)
class Diff:
    """The differences of B from A."""

    a: Side
    b: Side
    components: Names
    component_roles: dict[str, str]  # path -> role (B's, else A's) of every listed component
    metadata: dict[str, tuple[Any, Any]]  # field -> (value in A, value in B); None where absent
    patches: dict[str, Names]  # likelihood -> patch names
    claims: dict[str, Claims]  # likelihood -> claimed values

    @property
    def same(self) -> bool:
        return self.a.identity == self.b.identity or not (self.components or self.metadata or self.patches or self.claims)

    def to_json(self) -> dict[str, Any]:
        components = self.components.to_json()
        return {
            "a": dataclasses.asdict(self.a),
            "b": dataclasses.asdict(self.b),
            "same": self.same,
            "components": {k: [{"path": p, "role": self.component_roles[p]} for p in v] for k, v in components.items()},
            "metadata": [{"field": k, "a": a, "b": b} for k, (a, b) in self.metadata.items()],
            "patches": {lk: names.to_json() for lk, names in self.patches.items()},
            "claims": {lk: claims.to_json() for lk, claims in self.claims.items()},
        }


def diff(a: Path | str, b: Path | str) -> Diff:
    """The differences of bundle ``b`` from bundle ``a``."""
    with Bundle(a) as old, Bundle(b) as new:
        components, roles = component_changes(old, new)
        return Diff(
            Side(str(a), old.identity),
            Side(str(b), new.identity),
            components,
            roles,
            metadata_changes(old, new),
            _nonempty({lk: Names.of(pa, pb) for lk, pa, pb in _by_likelihood(old, new, "patch", _patches)}),
            _nonempty({lk: claim_changes(ca, cb) for lk, ca, cb in _by_likelihood(old, new, "results", _claims)}),
        )


def component_changes(a: Bundle, b: Bundle) -> tuple[Names, dict[str, str]]:
    """The components added, removed and changed, and the role of each of them (B's, else A's)."""
    files_a, files_b = _files(a), _files(b)
    names = Names.of(_component_keys(files_a), _component_keys(files_b))
    files = files_a | files_b  # B's entry where both have the path
    return names, {p: files[p].role for p in sorted({*names.added, *names.removed, *names.changed})}


def _files(bundle: Bundle) -> dict[str, FileEntry]:
    return {f.path: f for f in bundle.manifest.files}


def _component_keys(files: Mapping[str, FileEntry]) -> dict[str, tuple[str, str, str, tuple[tuple[str, str], ...]]]:
    """What makes a component changed, by path: its content, role, media type and annotations."""
    return {p: (f.digest, f.role, f.mediaType, tuple(sorted(f.annotations.items()))) for p, f in files.items()}


def _nonempty(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(changes.items()) if v}


def metadata_fields(bundle: Bundle) -> dict[str, Any]:
    """The manifest's metadata as flat fields: ``name``, ``created``, ``bundleFormat.version``,
    ``analysis.<field>``, ``containers``, ``supersedes.<field>`` (and any field a newer 1.x adds)."""
    obj = bundle.manifest.to_json()
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "files":
            continue
        if isinstance(value, dict) and key != "containers":
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def metadata_changes(a: Bundle, b: Bundle) -> dict[str, tuple[Any, Any]]:
    fa, fb = metadata_fields(a), metadata_fields(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)}


def _by_likelihood(a: Bundle, b: Bundle, what: str, read: Any) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(likelihood, A's items, B's items) for each likelihood whose ``what`` components differ
    (by path and content); the others are not read."""
    roles = ("patchset", "patch") if what == "patch" else ("results",)
    entries_a, entries_b = _entries(a, roles), _entries(b, roles)
    for lk in sorted(entries_a.keys() | entries_b.keys()):
        ea, eb = entries_a.get(lk, []), entries_b.get(lk, [])
        if [(e.path, e.digest) for e in ea] != [(e.path, e.digest) for e in eb]:
            yield lk, read(a, ea), read(b, eb)


def _entries(bundle: Bundle, roles: tuple[str, ...]) -> dict[str, list[FileEntry]]:
    out: dict[str, list[FileEntry]] = {}
    for f in bundle.manifest.files:
        if f.role in roles:
            out.setdefault(f.likelihood or "", []).append(f)
    return out


def _patches(bundle: Bundle, entries: list[FileEntry]) -> dict[str, str]:
    """Patch name -> sha256 of the patch's canonical JSON (a patch file: of its content)."""
    out: dict[str, str] = {}
    for entry in entries:
        if entry.role == "patch":
            out[entry.annotations.get("patch.name", entry.path)] = entry.digest
        else:
            out.update(_patchset_patches(bundle.read_json(entry.path)))
    return out


def _patchset_patches(obj: Any) -> dict[str, str]:
    """A patchset's patches by name: the sha256 of each one's canonical JSON."""
    out: dict[str, str] = {}
    for patch in obj.get("patches", []) if isinstance(obj, dict) else []:
        name = patch.get("metadata", {}).get("name") if isinstance(patch, dict) else None
        if isinstance(name, str):
            out[name] = hashlib.sha256(strictjson.canonical(patch)).hexdigest()
    return out


def _claims(bundle: Bundle, entries: list[FileEntry]) -> dict[str, dict[str, Any]]:
    """Point -> its claimed numbers (:data:`CLAIMED_FIELDS`), from the likelihood's results."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        try:
            results = Results.from_json(bundle.read_json(entry.path))
        except pydantic.ValidationError:
            raise InvalidBundle(f"{bundle.path}: E068 {entry.path}: not a valid results component (run 'arch verify {bundle.path}')") from None
        for name, point in results.points.items():
            values = point.to_json()
            out[name] = {k: values[k] for k in CLAIMED_FIELDS if k in values}
    return out


def claim_changes(a: Mapping[str, dict[str, Any]], b: Mapping[str, dict[str, Any]]) -> Claims:
    names = Names.of(a, b)
    changed = {}
    for point in names.changed:
        fields = sorted(a[point].keys() | b[point].keys())
        changed[point] = {
            f: {"a": a[point].get(f), "b": b[point].get(f), "difference": _difference(a[point].get(f), b[point].get(f))}
            for f in fields
            if a[point].get(f) != b[point].get(f)
        }
    return Claims({p: b[p] for p in names.added}, {p: a[p] for p in names.removed}, changed)


def _difference(a: Any, b: Any) -> Any:
    """``b - a`` for numbers, element by element for lists of the same length; else None."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return b - a
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [_difference(x, y) for x, y in zip(a, b, strict=True)]
    return None
