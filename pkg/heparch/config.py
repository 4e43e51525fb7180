"""``arch.yaml``: the analysis description an analyst writes (or ``arch extract`` writes back).

Parsed strictly: YAML 1.2 safe subset, no anchors, aliases or explicit tags
(``!!python/...`` included), duplicate keys refused.
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heparch.errors import InputError
from heparch.findings import Finding
from heparch.spec.models import Analysis

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


class DepositSpec(BaseModel):
    """``deposit:``: what a repository assigned at deposit (manifest ``deposit``; ``arch export datacite`` uses it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    doi: str | None = Field(default=None, pattern=r"^10\.[0-9]{4,9}/\S+$")
    publisher: str | None = Field(default=None, min_length=1, max_length=200)
    year: int | None = Field(default=None, ge=1000, le=9999, strict=True)


class ArchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    created: str | None = None
    supersedes: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    version_note: str | None = Field(default=None, min_length=1, max_length=10000)
    deposit: DepositSpec | None = None
    analysis: dict[str, Any] = Field(default_factory=dict)
    containers: list[dict[str, Any]] = Field(default_factory=list)
    files: list[FileSpec] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


def reject_unsafe_yaml(text: str, where: str) -> None:
    """Refuse anchors, aliases, explicit tags and nesting deeper than MAX_DEPTH, before any YAML is composed
    (for arch.yaml and trust policies alike)."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when YAML is read or written
    from ruamel.yaml.error import YAMLError  # ruamel.yaml (~0.1 s): only when YAML is read or written
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent  # ruamel.yaml (~0.1 s): only when YAML is read or written

    depth = 0
    try:
        for event in YAML(typ="rt").parse(io.StringIO(text)):
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            unsafe = _unsafe_event(event, depth)
            if unsafe is not None:
                problem, fix = unsafe
                raise InputError(f"{where}: {problem} (line {event.start_mark.line + 1}); {fix}")
    except YAMLError as exc:
        raise yaml_error(where, exc) from None


def _unsafe_event(event: Any, depth: int) -> tuple[str, str] | None:
    """What makes a parser event unsafe, and its fix, at ``depth`` levels of collections: too deep
    (the composer and the model recurse per level: refused before they run), an anchor or alias,
    an explicit tag."""
    from ruamel.yaml.events import AliasEvent, NodeEvent  # ruamel.yaml (~0.1 s): only when YAML is read or written

    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels", "flatten it"
    if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
        return "YAML anchors and aliases are not allowed", "write the value out"
    tag = getattr(event, "tag", None)
    implicit = getattr(event, "implicit", True)  # a pair for scalars, a bool for collections
    if tag is not None and not (implicit[0] if isinstance(implicit, tuple) else implicit):
        return f"explicit YAML tag {tag!r} is not allowed", "remove it"
    return None


def yaml_error(where: str, exc: Exception) -> InputError:
    """``FILE:LINE:COLUMN: not valid YAML: PROBLEM`` from a ruamel.yaml error (its mark is 0-based)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
    return InputError(f"{at}: not valid YAML: {problem}")


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
    return load_checked(path)[0]


def load_checked(path: Path) -> tuple[ArchConfig, list[Finding]]:
    """:func:`load`, with warnings (W001) for the fields this version does not know: ignored at
    the top level, kept in the manifest under ``analysis`` (a newer bundle's extracted arch.yaml
    still builds). A field one letter or so from a known one is an error with a suggestion."""
    data, warnings = _unknown_fields(_fields(path), path)
    try:
        return ArchConfig.model_validate(data), warnings
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: {where}: {err['msg']} (see 'arch init' for the documented fields)") from None


def _fields(path: Path) -> dict[str, Any]:
    """arch.yaml's fields as plain values (dates as text), the empty ones left out; refused when
    it is not UTF-8, unsafe or not valid YAML, or not a mapping."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when YAML is read or written
    from ruamel.yaml.error import YAMLError  # ruamel.yaml (~0.1 s): only when YAML is read or written

    try:
        text = read_capped(path, "arch.yaml").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    reject_unsafe_yaml(text, str(path))
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise yaml_error(str(path), exc) from None
    data = _plain(data) if data is not None else {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a mapping of fields (name, analysis, containers, files, ...)")
    return {k: v for k, v in data.items() if v is not None}  # `analysis:` with only comments under it


def _unknown_fields(data: dict[str, Any], path: Path) -> tuple[dict[str, Any], list[Finding]]:
    """``data`` without the unknown top-level fields, and a warning for each unknown field."""

    warnings = _unknown_in(data, ArchConfig.model_fields, "", path, "field not known to this version of heparch; ignored")
    analysis = data.get("analysis")
    if isinstance(analysis, dict):
        warnings += _unknown_in(analysis, Analysis.model_fields, "analysis.", path, "field not defined by format 1.0; kept in the manifest and ignored")
    return {k: v for k, v in data.items() if k in ArchConfig.model_fields}, warnings


def _unknown_in(fields: dict[str, Any], known: dict[str, Any], prefix: str, path: Path, note: str) -> list[Finding]:
    """A W001 warning (saying ``note``) for each of ``fields`` not ``known``, at ``<prefix><field>``; a near miss is refused."""
    warnings = []
    for key in sorted(set(fields) - set(known)):
        _refuse_near_miss(key, prefix + key, known, path)
        warnings.append(Finding("W001", f"{FILENAME}:{prefix}{key}", note))
    return warnings


def _refuse_near_miss(key: str, where: str, known: Any, path: Path) -> None:
    """A typo (at most two edits from a known field, e.g. ``luminosty_ifb``) is an error; a
    field further away may be a newer format's (``luminosity_ifb_err``) and only warns, so an
    arch.yaml that ``arch extract`` wrote from a newer bundle still builds."""
    close = [k for k in difflib.get_close_matches(key, list(known), n=3, cutoff=0.6) if _edits(key, k) <= 2]
    if close:
        raise InputError(f"{path}: {where}: unknown field; did you mean {close[0]!r}?")


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two short keys."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


_TOP_COMMENTS = {
    "name": "Bundle name; 'arch build' writes ./<name>.zst by default. Enters the manifest.",
    "created": "Creation time (RFC 3339, e.g. 2024-05-01T00:00:00Z). Fixed here so the bundle is reproducible;\nwithout it SOURCE_DATE_EPOCH is used, else it is left out. Never the clock.",
    "supersedes": "Identity (sha256:<64 hex>) of the bundle this one is a new version of ('arch build --supersedes OLD.zst' reads it\nfrom the old bundle). Enters the manifest; 'arch inspect' shows it and 'arch diff OLD.zst NEW.zst' lists the changes.",
    "version_note": "What changed since the bundle this one supersedes (also 'arch build --note TEXT').",
    "deposit": "What the repository assigned at deposit, recorded in the manifest: {doi: 10.5281/zenodo.123 (bare, no https://doi.org/),\npublisher: Zenodo, year: 2026}. 'arch export datacite' uses them where --doi, --publisher, --year are not given.",
    "analysis": 'What the analysis is. All optional; license, sqrt_s_TeV and luminosity_ifb are recommended (warnings when missing).\nKeys: title, collaboration, experiment, description, inspire (e.g. ins1755298), arxiv (e.g. 1909.09226),\nhepdata (record DOI or INSPIRE id, e.g. 10.17182/hepdata.90607.v3), doi, sqrt_s_TeV (13 or "13 TeV"),\nluminosity_ifb (139, "139/fb" or "139 fb^-1"), license (SPDX expression, e.g. CC-BY-4.0),\nkeywords [..], contacts [{name, email, affiliation, orcid (e.g. 0000-0002-1825-0097)}],\naxes {label: axis title} for the replay report, e.g. {m1: "m(chargino) [GeV]"}.',
    "containers": "Software environments, pinned by digest: {name, reference: registry/name@sha256:<64 hex>, description}.\nA tag alone (name:latest) is refused: tags move, digests do not.",
    "files": "Roles of files. Files not listed are recognised by content: pyhf workspaces -> likelihood, PatchSets and\npatch.<name>.json / patch_<name>.json -> patchset / patch of the workspace in their directory,\nsimplified likelihoods -> simplified-likelihood, claimed results -> results, code -> code, the rest -> attachment.\nEach entry: {path, role, likelihood (for patchset, patch, simplified-likelihood, results, signal-interface), mediaType, annotations {k: v}}.\nRoles: likelihood, patchset, patch, simplified-likelihood, results, signal-interface (a declared signal interface:\nonly when listed here; checked against the likelihood's patches), code, attachment.",
    "exclude": "Glob patterns (relative paths) of files to leave out. Dotfiles, __pycache__ and the output are always left out.",
}


_EMPTY: dict[str, Any] = {"analysis": {}, "containers": [], "files": [], "exclude": []}  # written when not given


def render(data: dict[str, Any]) -> str:
    """An arch.yaml with a comment above every field (kept by ruamel.yaml round-trips)."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when YAML is read or written
    from ruamel.yaml.comments import CommentedMap  # ruamel.yaml (~0.1 s): only when YAML is read or written

    doc = CommentedMap()
    for key in _TOP_COMMENTS:
        value = data.get(key, _EMPTY.get(key))
        if value is not None:
            doc[key] = value
    for key in list(doc):
        doc.yaml_set_comment_before_after_key(key, before=_TOP_COMMENTS[key], indent=0)
    doc.yaml_set_start_comment("heparch analysis description (arch.yaml). Every field is optional; see 'arch init --help'.")
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 120
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
