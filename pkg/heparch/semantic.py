"""The semantic checks of ``full`` verification and of ``arch build``, over a set of components.

Components are read one likelihood at a time (its workspace, then its patchsets
and patches), so memory follows the largest likelihood, not the bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from heparch.components import patchset as patchsets
from heparch.components import results as results_mod
from heparch.components import simplified, workspace
from heparch.findings import Finding
from heparch.spec import strictjson
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


def check_components(manifest: Manifest, spool: Path | Loader, *, parsed: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every schema and semantic check of the bundle's JSON components.

    ``parsed`` holds components already parsed (by logical path), so none is parsed twice.
    """
    read = spool_loader(spool) if isinstance(spool, Path) else spool
    known = parsed or {}

    def load(entry: FileEntry) -> Any:
        return known[entry.path] if entry.path in known else read(entry)

    findings: list[Finding] = []
    points: dict[str, set[str]] = {}
    for lk in manifest.by_role("likelihood"):
        ws = _json(lk, load, findings)
        if ws is None:
            continue
        problems = workspace.check_workspace(ws, location=lk.path)
        findings += problems
        usable = ws if not any(f.severity == "error" for f in problems) else None
        checker = patchsets.PatchChecker(usable) if usable is not None else None  # validates the workspace once
        names = points.setdefault(lk.path, set())
        patch_warnings: list[Finding] = []
        for entry in manifest.files:
            if entry.likelihood != lk.path or entry.role not in ("patchset", "patch"):
                continue
            obj = _json(entry, load, findings)
            if obj is None:
                continue
            if entry.role == "patchset":
                findings += patchsets.check_patchset(obj, usable, location=entry.path, likelihood_location=lk.path, checker=checker)
                names.update(patchsets.patch_names(obj))
            else:
                found = patchsets.check_patch_file(obj, usable, location=entry.path, likelihood_location=lk.path, checker=checker)
                findings += [f for f in found if f.severity == "error"]
                patch_warnings += [f for f in found if f.severity == "warning"]
                names.add(entry.annotations.get("patch.name", entry.path))
        findings += _first_of_each_code(patch_warnings)
        if checker is not None and checker.usable:  # W011: over the workspace and every patch
            findings += workspace.notice_findings(workspace.unused_parameters(ws, checker.used), lk.path)
        del ws, usable, checker
    for sl in manifest.by_role("simplified-likelihood"):
        obj = _json(sl, load, findings)
        if obj is not None:
            findings += simplified.check_simplified(obj, location=sl.path)
            if isinstance(obj, dict) and isinstance(obj.get("signals"), dict):
                points[sl.path] = set(obj["signals"])
    findings += _check_results(manifest, load, points)
    return findings


def _first_of_each_code(warnings: list[Finding]) -> list[Finding]:
    """One finding per code: the first, saying how many more there are and in how many files
    (a published archive's hundreds of patch files each leave the same observations)."""
    out: list[Finding] = []
    for code in dict.fromkeys(f.code for f in warnings):
        same = [f for f in warnings if f.code == code]
        files = {f.location.split(":", 1)[0] for f in same}
        first = same[0]
        more = f" (and {len(same) - 1} more in {len(files)} patch file(s) of this likelihood)" if len(same) > 1 else ""
        out.append(Finding(code, first.location, first.message + more, first.expected, first.found))
    return out


def _check_results(manifest: Manifest, load: Callable[[FileEntry], Any], points: dict[str, set[str]]) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for entry in manifest.by_role("results"):
        obj = _json(entry, load, findings)
        if obj is None:
            continue
        target = obj.get("likelihood") if isinstance(obj, dict) else None
        known = points.get(target) if isinstance(target, str) else None
        findings += results_mod.check_results(obj, location=entry.path, known_points=known)
        if not isinstance(target, str):
            continue
        if target not in points:
            findings.append(Finding("E069", f"{entry.path}:$.likelihood", f"{target!r} is not a likelihood or simplified likelihood of this bundle"))
        elif target in seen:
            findings.append(Finding("E069", f"{entry.path}:$.likelihood", f"{target!r} already has a results component ({seen[target]}); one per likelihood"))
        if entry.likelihood is not None and entry.likelihood != target:
            findings.append(Finding("E069", f"{entry.path}:$.likelihood", "differs from the manifest's annotation", expected=entry.likelihood, found=target))
        seen.setdefault(target, entry.path)
    return findings
