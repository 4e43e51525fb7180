"""``arch.yaml``: the analysis description an analyst writes (or ``arch extract`` writes back).

Parsed strictly: YAML 1.2 safe subset, no anchors, aliases or explicit tags
(``!!python/...`` included), duplicate keys refused.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heparch.errors import InputError

FILENAME = "arch.yaml"
MAX_DEPTH = 64  # nesting of mappings and lists; what arch.yaml documents needs 4
MAX_YAML_BYTES = 4 << 20  # arch.yaml and trust policies: real ones are a few kB


def read_capped(path: Path, what: str, cap: int = MAX_YAML_BYTES) -> bytes:
    """At most ``cap`` bytes of ``path`` (reading cap + 1: ``/dev/zero`` or a FIFO cannot make it
    grow); an :class:`InputError` naming the file when it is larger or unreadable."""
    try:
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if len(data) > cap:
        raise InputError(f"{path}: the {what} is larger than {cap} bytes (the cap); a real one is a few kB")
    return data


class FileSpec(BaseModel):
    """One file's declared role (files not listed are discovered)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    role: str
    likelihood: str | None = None
    mediaType: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class ArchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    created: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
    containers: list[dict[str, Any]] = Field(default_factory=list)
    files: list[FileSpec] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


def reject_unsafe_yaml(text: str, where: str) -> None:
    """Refuse anchors, aliases, explicit tags and nesting deeper than MAX_DEPTH, before any YAML is composed
    (for arch.yaml and trust policies alike)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

    depth = 0
    try:
        for event in YAML(typ="rt").parse(io.StringIO(text)):
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            if depth > MAX_DEPTH:  # the composer and the model recurse per level: refuse before they run
                raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1}); flatten it")
            if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
                raise InputError(f"{where}: YAML anchors and aliases are not allowed (line {event.start_mark.line + 1}); write the value out")
            tag = getattr(event, "tag", None)
            implicit = getattr(event, "implicit", True)  # a pair for scalars, a bool for collections
            if tag is not None and not (implicit[0] if isinstance(implicit, tuple) else implicit):
                raise InputError(f"{where}: explicit YAML tag {tag!r} is not allowed (line {event.start_mark.line + 1}); remove it")
    except YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if hasattr(obj, "isoformat"):
        return obj.isoformat().replace("+00:00", "Z")
    return obj


def load(path: Path) -> ArchConfig:
    """Read and check an arch.yaml; raise :class:`InputError` naming the field and the fix."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = read_capped(path, "arch.yaml").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    reject_unsafe_yaml(text, str(path))
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    data = _plain(data) if data is not None else {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a mapping of fields (name, analysis, containers, files, ...)")
    try:
        return ArchConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: {where}: {err['msg']} (see 'arch init' for the documented fields)") from None


_TOP_COMMENTS = {
    "name": "Bundle name; 'arch build' writes ./<name>.zst by default. Enters the manifest.",
    "created": "Creation time (RFC 3339, e.g. 2024-05-01T00:00:00Z). Fixed here so the bundle is reproducible;\nwithout it SOURCE_DATE_EPOCH is used, else it is left out. Never the clock.",
    "analysis": "What the analysis is. All optional; license, sqrt_s_TeV and luminosity_ifb are recommended (warnings when missing).\nKeys: title, collaboration, experiment, description, inspire (e.g. ins1755298), arxiv (e.g. 1909.09226),\nhepdata (record or DOI, e.g. 10.17182/hepdata.90607), doi, sqrt_s_TeV, luminosity_ifb, license (SPDX, e.g. CC-BY-4.0),\nkeywords [..], contacts [{name, email, affiliation}].",
    "containers": "Software environments, pinned by digest: {name, reference: registry/name@sha256:<64 hex>, description}.\nA tag alone (name:latest) is refused: tags move, digests do not.",
    "files": "Roles of files. Files not listed are recognised by content: pyhf workspaces -> likelihood, PatchSets and\npatch.<name>.json / patch_<name>.json -> patchset / patch of the workspace in their directory,\nsimplified likelihoods -> simplified-likelihood, claimed results -> results, code -> code, the rest -> attachment.\nEach entry: {path, role, likelihood (for patchset, patch, simplified-likelihood, results), mediaType, annotations {k: v}}.\nRoles: likelihood, patchset, patch, simplified-likelihood, results, code, attachment.",
    "exclude": "Glob patterns (relative paths) of files to leave out. Dotfiles, __pycache__ and the output are always left out.",
}


def render(data: dict[str, Any]) -> str:
    """An arch.yaml with a comment above every field (kept by ruamel.yaml round-trips)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    doc = CommentedMap()
    for key in _TOP_COMMENTS:
        doc[key] = data.get(key, [] if key in ("containers", "files", "exclude") else {} if key == "analysis" else None)
        if doc[key] is None:
            del doc[key]
    for key in list(doc):
        doc.yaml_set_comment_before_after_key(key, before=_TOP_COMMENTS[key], indent=0)
    doc.yaml_set_start_comment("heparch analysis description (arch.yaml). Every field is optional; see 'arch init --help'.")
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 120
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
