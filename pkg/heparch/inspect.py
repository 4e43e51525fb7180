"""A summary of a bundle for ``arch inspect`` (identity, analysis, lineage, components, patch counts, sizes)."""

from __future__ import annotations

import collections
from typing import Any

from heparch.api import Bundle
from heparch.errors import InvalidBundle
from heparch.semantic_stream import ObjectStream
from heparch.signing.check import check_signatures, reproduction_json
from heparch.spec import strictjson
from heparch.spec.models import FileEntry

#: a patchset larger than this is not parsed by inspect: its patch count is left out (null)
MAX_COUNTED = 64 << 20


def count_patches(bundle: Bundle, entry: FileEntry) -> int | None:
    """How many patches the patchset ``entry`` holds, read one patch at a time (its text and one
    patch in memory, issue 11: the whole tree was ~5x the blob); 0 when it is malformed (inspect
    does not verify: see 'arch verify'), None when it is larger than :data:`MAX_COUNTED`."""
    if entry.size > MAX_COUNTED:
        return None
    data = bundle.read_bytes(entry.path)
    if not ObjectStream.is_object(data):
        return 0
    try:
        stream = ObjectStream(data, "patches")  # nesting capped (64) as in verify
        del data
        count = sum(1 for _ in stream.elements())
    except strictjson.StrictJSONError as exc:
        raise InvalidBundle(f"{bundle.path}: {exc.code or 'E060'} {entry.path}: not strict JSON: {exc} (run 'arch verify {bundle.path}')") from None
    return count if stream.streamed else 0


def lineage(bundle: Bundle) -> dict[str, Any]:
    """Where the bundle comes from: the bundle it supersedes (identity and change note, from the
    manifest) and the bundles its claims were computed from (each results component's parent)."""
    m = bundle.manifest
    parents: dict[str, list[str]] = {}
    for entry in m.by_role("results"):
        parent = _parent_identity(bundle, entry)
        if parent is not None:
            parents.setdefault(parent, []).append(entry.path)
    return {
        "supersedes": m.supersedes.model_dump(mode="json", exclude_none=True) if m.supersedes else None,
        "claimed_from": [{"identity": k, "results": v} for k, v in sorted(parents.items())],
    }


def _parent_identity(bundle: Bundle, entry: FileEntry) -> str | None:
    """The identity of the bundle a results component's claims were computed from (its ``parent``),
    if it says (one larger than :data:`MAX_COUNTED` is not read)."""
    obj = bundle.read_json(entry.path) if entry.size <= MAX_COUNTED else None
    parent = obj.get("parent") if isinstance(obj, dict) else None
    identity = parent.get("identity") if isinstance(parent, dict) else None
    return identity if isinstance(identity, str) else None


def summary(bundle: Bundle) -> dict[str, Any]:
    """What ``arch inspect`` prints: identity, analysis, containers, files, points per likelihood, signatures, sizes."""
    m = bundle.manifest
    files = [_file_item(f) for f in m.files]
    patches = _patch_counts(bundle, files)
    return {
        "identity": bundle.identity,
        "bundleFormat": m.bundleFormat.version,
        "name": m.name,
        "created": m.created,
        "analysis": m.analysis.model_dump(mode="json", exclude_none=True) if m.analysis else {},
        "containers": [c.model_dump(mode="json", exclude_none=True) for c in (m.containers or ())],
        "lineage": lineage(bundle),
        "files": files,
        "likelihoods": {lk: {"points": patches.get(lk, 0)} for lk in bundle.likelihoods()},
        "signatures": sorted(bundle.signatures),
        "reproductions": reproductions(bundle),
        "size": _sizes(bundle),
    }


def _sizes(bundle: Bundle) -> dict[str, int]:
    """The number of files, the bytes of their distinct contents and the size of the bundle file."""
    unique = {f.digest: f.size for f in bundle.manifest.files}
    return {"files": len(bundle.manifest.files), "payload_bytes": sum(unique.values()), "bundle_bytes": bundle.path.stat().st_size}


def reproductions(bundle: Bundle) -> list[dict[str, Any]]:
    """The reproductions recorded in the bundle's envelopes that verify (``arch replay --attest``), by file;
    a signature that does not verify is not listed ('arch verify' reports it)."""
    if not bundle.signatures:
        return []
    check = check_signatures(identity=bundle.identity, manifest_bytes=bundle.manifest_bytes, in_bundle=bundle.signatures)
    return [
        {"file": s.location, "role": s.role, "keyid": s.keyid, **reproduction_json(s.replay)}
        for s in sorted(check.valid, key=lambda s: s.location)
        if s.replay is not None
    ]


def _file_item(f: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"path": f.path, "role": f.role, "mediaType": f.mediaType, "digest": f.digest, "size": f.size}
    if f.annotations:
        item["annotations"] = dict(f.annotations)
    return item


def _patch_counts(bundle: Bundle, files: list[dict[str, Any]]) -> dict[str, int]:
    """The patches of each likelihood (patch files, and the patches of its patchsets); each
    patchset's ``item`` gets its own count (null when too large to count)."""
    _count_patchsets(bundle, files)
    patches: collections.Counter[str] = collections.Counter()
    for f, item in zip(bundle.manifest.files, files, strict=True):
        if f.role in ("patchset", "patch"):
            patches[f.likelihood or ""] += (item["patches"] or 0) if f.role == "patchset" else 1
    return dict(patches)


def _count_patchsets(bundle: Bundle, files: list[dict[str, Any]]) -> None:
    """Give each patchset's ``item`` its patch count (:func:`count_patches`)."""
    counted: dict[str, int | None] = {}  # by digest: a blob listed n times is read once
    for f, item in zip(bundle.manifest.files, files, strict=True):
        if f.role == "patchset":
            if f.digest not in counted:
                counted[f.digest] = count_patches(bundle, f)
            item["patches"] = counted[f.digest]
