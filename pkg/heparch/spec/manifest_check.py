"""Check manifest bytes: strict JSON, canonical form, version, schema, paths, references."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Final

from heparch.findings import Finding
from heparch.identifiers import normalise_analysis
from heparch.spec import schema_check, strictjson, versions
from heparch.spec.containers import check_container_reference
from heparch.spec.models import ROLES, FileEntry, Manifest
from heparch.spec.paths import path_problem, set_problems

M = "data/manifest.json"
#: the analysis fields a bundle should give, each with the warning for its absence
_ANALYSIS_WARNINGS: Final = (("license", "W002"), ("sqrt_s_TeV", "W003"), ("luminosity_ifb", "W004"))
# roles whose components name the likelihood they belong to, and the roles that name may have
_NAMES_LIKELIHOOD = {
    "patchset": ("likelihood",),
    "patch": ("likelihood",),
    "simplified-likelihood": ("likelihood",),
    "results": ("likelihood", "simplified-likelihood"),
    "signal-interface": ("likelihood",),
}


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """A packaged JSON Schema of the current format version."""
    text = resources.files("heparch.spec").joinpath("schemas", versions.SCHEMA_DIR, name).read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema  # jsonschema (~0.5 s): fixity verification runs without it

    return jsonschema.Draft202012Validator(schema(name))


def json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def schema_findings(obj: Any, name: str, code: str, location: str, *, limit: int = 20) -> list[Finding]:
    """Every schema violation of ``obj`` (up to ``limit``), located by JSON path."""

    if schema_check.is_valid(name, obj):  # compiled check; jsonschema only to explain a failure
        return []
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [Finding(code, f"{location}:{json_path(e.absolute_path)}", e.message) for e in errors[:limit]]


def parse_manifest(data: bytes) -> tuple[Manifest | None, list[Finding]]:
    """Parse and check manifest bytes; return the model (None if unusable) and the findings."""
    manifest, findings = _parse_manifest(data)
    return manifest, list(findings)


@functools.lru_cache(maxsize=4)
def _parse_manifest(data: bytes) -> tuple[Manifest | None, tuple[Finding, ...]]:
    manifest, findings = _parse_manifest_uncached(data)
    return manifest, tuple(findings)


def _parse_manifest_uncached(data: bytes) -> tuple[Manifest | None, list[Finding]]:
    try:
        obj = strictjson.loads(data)
    except strictjson.StrictJSONError as exc:
        return None, [Finding(exc.code or "E030", M, str(exc))]
    findings = _canonical_findings(obj, data) + _format_findings(obj)
    if any(f.code == "E033" for f in findings):  # not a manifest this reader may read further
        return None, findings
    problems = schema_findings(obj, "manifest.json", "E032", M)
    if problems:
        return None, findings + problems
    return _model_findings(Manifest.from_json(obj), findings)


def _canonical_findings(obj: Any, data: bytes) -> list[Finding]:
    """E031 when ``data`` is not the canonical form of the manifest ``obj`` it parses to."""
    if strictjson.canonical(obj) == data:
        return []
    return [Finding("E031", M, "not in RFC 8785 canonical form (key order, spacing or number format)")]


def _model_findings(manifest: Manifest, findings: list[Finding]) -> tuple[Manifest, list[Finding]]:
    """The manifest that validates, with ``findings`` and those of its unknown fields and file list."""
    findings += [Finding("W001", f"{M}:{p}", "field not defined by format 1.0; kept and ignored") for p in manifest.unknown_fields("$")]
    findings += check_files(manifest)
    return manifest, findings


def _format_findings(obj: Any) -> list[Finding]:
    """The findings of ``bundleFormat``: its version (:func:`_version_findings`), then its URI (E033)."""
    fmt = obj.get("bundleFormat") if isinstance(obj, dict) else None
    fmt = fmt if isinstance(fmt, dict) else {}
    findings = _version_findings(fmt.get("version"))
    if any(f.code == "E033" for f in findings):
        return findings
    uri = fmt.get("uri")
    if uri != versions.FORMAT_URI:
        findings.append(Finding("E033", f"{M}:$.bundleFormat.uri", "not a heparch bundle manifest", expected=versions.FORMAT_URI, found=uri))
    return findings


def _version_findings(version: Any) -> list[Finding]:
    """E033 for an unknown major version, W006 for a newer minor one (spec section 1.2: a 1.0
    reader reads 1.x); nothing for a version the schema checks refuse."""
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        return []
    major, _, rest = version.partition(".")
    if int(major) != versions.FORMAT_MAJOR:
        return [
            Finding(
                "E033",
                f"{M}:$.bundleFormat.version",
                f"unknown major version {version}; this reader reads {versions.FORMAT_MAJOR}.x",
                expected=f"{versions.FORMAT_MAJOR}.x.y",
                found=version,
            )
        ]
    minor = rest.split(".")[0]
    if minor.isdigit() and int(minor) > int(versions.FORMAT_VERSION.split(".")[1]):
        return [Finding("W006", f"{M}:$.bundleFormat.version", f"written for format {version}, newer than this reader's {versions.FORMAT_VERSION}")]
    return []


def check_files(manifest: Manifest) -> list[Finding]:
    """Logical paths, order, roles, digests and cross-references of the file list."""
    return [*_paths_and_roles(manifest), *_fixity_agrees(manifest), *_likelihood_references(manifest), *_containers_and_metadata(manifest)]


def _paths_and_roles(manifest: Manifest) -> list[Finding]:
    findings = [finding for i, f in enumerate(manifest.files) for finding in _path_and_role(f, f"{M}:$.files[{i}]")]
    paths = [f.path for f in manifest.files]
    findings += [Finding("E034", f"{M}:$.files", f"{p!r} {why}") for p, why in set_problems(paths)]
    if paths != sorted(paths) or len(set(paths)) != len(paths):
        findings.append(Finding("E035", f"{M}:$.files", "files are not sorted by path, or a path appears twice"))
    return findings


def _path_and_role(f: FileEntry, where: str) -> list[Finding]:
    """E034 for a file entry's path that is not a logical path, W001 for a role format 1.0 does not define."""
    findings = []
    problem = path_problem(f.path)
    if problem:
        findings.append(Finding("E034", f"{where}.path", f"{f.path!r}: {problem}"))
    if f.role not in ROLES:
        findings.append(Finding("W001", f"{where}.role", f"role {f.role!r} is not defined by format 1.0; treated as an attachment"))
    return findings


def _fixity_agrees(manifest: Manifest) -> list[Finding]:
    """Files with one sha256 must have one sha512."""
    findings = []
    sha512_of: dict[str, str] = {}
    for i, f in enumerate(manifest.files):
        if sha512_of.setdefault(f.digest, f.fixity.sha512) != f.fixity.sha512:
            findings.append(Finding("E054", f"{M}:$.files[{i}].fixity.sha512", "same sha256 as another file but a different sha512"))
    return findings


def _likelihood_references(manifest: Manifest) -> list[Finding]:
    """Every patchset, patch and results component names a likelihood of the bundle."""
    roles = {f.path: f.role for f in manifest.files}
    return [finding for i, f in enumerate(manifest.files) if f.role in _NAMES_LIKELIHOOD for finding in _likelihood_reference(f, i, roles)]


def _likelihood_reference(f: FileEntry, i: int, roles: dict[str, str]) -> list[Finding]:
    """E037 where the component ``f`` (of a role that names its likelihood) names none, or a file of another role."""
    wanted = _NAMES_LIKELIHOOD[f.role]
    target = f.annotations.get("likelihood")
    if target is None:
        optional = f.role == "simplified-likelihood"
        return [] if optional else [Finding("E037", f"{M}:$.files[{i}].annotations", f"a {f.role} must name its likelihood (annotation 'likelihood')")]
    if roles.get(target) in wanted:
        return []
    return [Finding("E037", f"{M}:$.files[{i}].annotations.likelihood", f"{target!r} is not a {' or '.join(wanted)} of this bundle", found=roles.get(target))]


def _containers_and_metadata(manifest: Manifest) -> list[Finding]:
    findings = []
    for i, c in enumerate(manifest.containers or ()):
        findings += check_container_reference(c.reference, location=f"{M}:$.containers[{i}].reference")
    analysis = manifest.analysis
    findings += [
        Finding(code, f"{M}:$.analysis.{field}", f"no {field} given (add it to arch.yaml under analysis:)")
        for field, code in _ANALYSIS_WARNINGS
        if getattr(analysis, field, None) is None
    ]
    if analysis is not None:  # older bundles' free text and ids newer than the pinned SPDX list: warnings
        findings += normalise_analysis(analysis.model_dump(mode="json", exclude_none=True), f"{M}:$.analysis")[1]
    return findings
