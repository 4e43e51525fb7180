"""A summary of a bundle for ``arch inspect`` (identity, analysis, components, patch counts, sizes)."""

from __future__ import annotations

from typing import Any

from heparch.api import Bundle


def patch_count(obj: Any) -> int:
    """How many patches a patchset holds; 0 when it is malformed (inspect does not verify: see 'arch verify')."""
    patches = obj.get("patches") if isinstance(obj, dict) else None
    return len(patches) if isinstance(patches, list) else 0


def summary(bundle: Bundle) -> dict[str, Any]:
    m = bundle.manifest
    files = []
    patches: dict[str, int] = {}
    for f in m.files:
        item: dict[str, Any] = {"path": f.path, "role": f.role, "mediaType": f.mediaType, "digest": f.digest, "size": f.size}
        if f.annotations:
            item["annotations"] = dict(f.annotations)
        if f.role == "patchset":
            item["patches"] = patch_count(bundle.read_json(f.path))
            patches[f.likelihood or ""] = patches.get(f.likelihood or "", 0) + item["patches"]
        elif f.role == "patch":
            patches[f.likelihood or ""] = patches.get(f.likelihood or "", 0) + 1
        files.append(item)
    unique = {f.digest: f.size for f in m.files}
    return {
        "identity": bundle.identity,
        "bundleFormat": m.bundleFormat.version,
        "name": m.name,
        "created": m.created,
        "analysis": m.analysis.model_dump(mode="json", exclude_none=True) if m.analysis else {},
        "containers": [c.model_dump(mode="json", exclude_none=True) for c in (m.containers or ())],
        "files": files,
        "likelihoods": {lk: {"points": patches.get(lk, 0)} for lk in bundle.likelihoods()},
        "signatures": sorted(bundle.signatures),
        "size": {"files": len(m.files), "payload_bytes": sum(unique.values()), "bundle_bytes": bundle.path.stat().st_size},
    }
