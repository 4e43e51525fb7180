"""Build a bundle from an analysis directory, a directory without arch.yaml, one workspace JSON,
or a HEPData archive or submission (read through :mod:`heparch.importer`).

The identity depends only on the files' content, their logical paths (relative to
the source) and the declared metadata: never on the source's own name or path,
the clock, mtimes or the order the file system lists files in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from heparch import __version__, config, importer, semantic
from heparch.api import Bundle
from heparch.components import patchset as patchsets
from heparch.components import results as results_mod
from heparch.components import simplified, workspace
from heparch.errors import BuildRefused, InputError
from heparch.findings import Finding
from heparch.identifiers import normalise_analysis
from heparch.metadata import Found, discover_files
from heparch.spec import strictjson, versions
from heparch.spec.manifest_check import check_files, schema_findings
from heparch.spec.models import ROLES, Manifest
from heparch.spec.paths import path_problem
from heparch.store import layout, writer

AGENT = f"heparch {__version__}"
SKIP_DIRS = {"__pycache__"}
_CODE_SUFFIXES = {".py", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".sh", ".ipynb", ".slha", ".onnx", ".jl", ".r", ".cwl"}
MEDIA_TYPES = {
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".py": "text/x-python",
    ".c": "text/x-c",
    ".cc": "text/x-c++",
    ".cpp": "text/x-c++",
    ".cxx": "text/x-c++",
    ".h": "text/x-c",
    ".hpp": "text/x-c++",
    ".sh": "text/x-shellscript",
    ".ipynb": "application/x-ipynb+json",
    ".slha": "text/plain",
    ".onnx": "application/onnx",
    ".root": "application/x-root",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".zst": "application/zstd",
}


@dataclasses.dataclass
class Source:
    """One input file: where it is and what it becomes."""

    path: str  # logical path
    file: Path
    size: int
    sha256: str
    sha512: str
    role: str = "attachment"
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    media_type: str = "application/octet-stream"
    obj: Any = None  # parsed JSON, for checked components


@dataclasses.dataclass
class BuildResult:
    output: Path
    identity: str
    manifest: Manifest
    warnings: list[Finding]


def _hash(path: Path) -> tuple[int, str, str]:
    h256, h512, size = hashlib.sha256(), hashlib.sha512(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(writer.CHUNK):
            h256.update(chunk)
            h512.update(chunk)
            size += len(chunk)
    return size, h256.hexdigest(), h512.hexdigest()


def _walk(root: Path, skip: set[Path], exclude: list[str], prefix: str = "") -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        _refuse_linked_dirs(here, dirnames)
        for name in sorted(filenames):
            file = here / name
            logical = prefix + file.relative_to(root).as_posix()
            if _left_out(logical, file, skip, exclude):
                continue
            if file.is_symlink() or not file.is_file():
                raise InputError(f"{file}: only regular files are packed (symbolic link or special file); replace it with a copy or exclude it")
            yield logical, file


def _refuse_linked_dirs(here: Path, dirnames: list[str]) -> None:
    """A symbolic link to a directory is refused, not followed."""
    for d in dirnames:
        if (here / d).is_symlink():
            raise InputError(f"{here / d}: symbolic links are not packed; replace it with a copy or exclude it")


def _left_out(logical: str, file: Path, skip: set[Path], exclude: list[str]) -> bool:
    """A file the walk does not pack: hidden, skipped by the caller, excluded in arch.yaml,
    arch.yaml itself or a detached signature."""
    if file.name.startswith(".") or file.resolve() in skip or any(fnmatch.fnmatchcase(logical, pat) for pat in exclude):
        return True
    return logical == config.FILENAME or logical.startswith("signatures/")


def _load_json(src: Source, findings: list[Finding]) -> Any:
    try:
        return strictjson.loads(src.file.read_bytes())
    except strictjson.StrictJSONError as exc:
        findings.append(Finding(exc.code or "E060", src.path, f"not strict JSON: {exc}"))
        return None


def _classify(src: Source, findings: list[Finding]) -> None:
    """Give a discovered file its role by name and content."""
    suffix = Path(src.path).suffix.lower()
    src.media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    patch_name = patchsets.looks_like_patch_file(Path(src.path).name)
    if suffix != ".json":
        src.role = "code" if suffix in _CODE_SUFFIXES else "attachment"
        return
    if patch_name is not None:
        src.role, src.obj = "patch", _load_json(src, findings)
        src.annotations["patch.name"] = patch_name
        return
    _classify_json(src, findings)


# the component a JSON file is, by its content, in the order they are tried
_COMPONENT_TESTS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("likelihood", workspace.looks_like_workspace),
    ("patchset", patchsets.looks_like_patchset),
    ("simplified-likelihood", simplified.looks_like_simplified),
    ("results", results_mod.looks_like_results),
)


def _classify_json(src: Source, findings: list[Finding]) -> None:
    """A .json file (not a patch) by its content: a component, or else an attachment; refused when it is not strict JSON."""
    data = src.file.read_bytes() if src.size <= 2 << 30 else b"null"
    try:
        obj = strictjson.loads(data, max_depth=None)  # an attachment may nest deeper than a component
    except strictjson.StrictJSONError as exc:  # a corrupted BkgOnly.json must not slip in as an attachment
        findings.append(Finding(exc.code or "E060", src.path, f"a .json file that is not strict JSON: {exc}; fix it, or rename it or exclude it in arch.yaml"))
        return
    for role, test in _COMPONENT_TESTS:
        if test(obj):
            src.role, src.obj = role, obj
            depth = strictjson.nesting(data)
            if depth > strictjson.MAX_DEPTH:
                findings.append(Finding("E060", src.path, f"not strict JSON: nesting {depth} deep, deeper than {strictjson.MAX_DEPTH}"))
            return


def _attach(sources: list[Source], findings: list[Finding]) -> None:
    """Name the likelihood of every patchset, patch, simplified likelihood and results component."""
    likelihoods = [s.path for s in sources if s.role == "likelihood"]
    by_digest = {workspace.pyhf_digest(s.obj): s.path for s in sources if s.role == "likelihood" and s.obj is not None}
    for s in sources:
        if not _needs_likelihood(s, likelihoods):
            continue
        target = _likelihood_of(s, likelihoods, by_digest)
        if isinstance(target, str):
            s.annotations["likelihood"] = target
        else:
            findings.append(
                Finding(
                    "E037", s.path, f"cannot tell which likelihood this {s.role} belongs to; name it in arch.yaml (files: - path: {s.path}, likelihood: ...)"
                )
            )


def _needs_likelihood(s: Source, likelihoods: list[str]) -> bool:
    """A file that belongs to a likelihood and has none named yet; a simplified likelihood only
    when it says it was derived from one of the bundle's (else it stands on its own)."""
    if s.role not in ("patchset", "patch", "simplified-likelihood", "results", "signal-interface") or "likelihood" in s.annotations:
        return False
    return s.role != "simplified-likelihood" or _derived_from(s) in likelihoods


def _likelihood_of(s: Source, likelihoods: list[str], by_digest: dict[str, str]) -> Any:
    """The likelihood a file names or is found to belong to (any JSON value: the caller checks it is a path)."""
    if s.role == "simplified-likelihood":
        return _derived_from(s)
    if s.role in ("results", "signal-interface"):
        return s.obj.get("likelihood") if isinstance(s.obj, dict) else None
    return _likelihood_by_digest_or_folder(s, likelihoods, by_digest)


def _derived_from(s: Source) -> Any:
    """The likelihood a simplified likelihood says it was derived from (any JSON value)."""
    derived = s.obj.get("derived_from") if isinstance(s.obj, dict) else None
    return derived.get("likelihood") if isinstance(derived, dict) else None


def _likelihood_by_digest_or_folder(s: Source, likelihoods: list[str], by_digest: dict[str, str]) -> str | None:
    """A patchset's likelihood by the pyhf digest in its metadata; else (and for a patch) the
    only likelihood in its folder, or the only one of the bundle."""
    target = by_digest.get(_pyhf_digest_named(s))
    if target is not None:
        return target
    folder = Path(s.path).parent
    candidates = [x for x in likelihoods if Path(x).parent == folder] or likelihoods
    return candidates[0] if len(candidates) == 1 else None


def _pyhf_digest_named(s: Source) -> str:
    """The pyhf digest of the workspace a patchset names in ``metadata.digests.sha256`` ('' for none, and for a patch)."""
    metadata = s.obj.get("metadata") if isinstance(s.obj, dict) and s.role == "patchset" else None
    digests = metadata.get("digests") if isinstance(metadata, dict) else None  # a malformed one: E062 from the schema
    return str(digests.get("sha256", "")) if isinstance(digests, dict) else ""


def _created(cfg: config.ArchConfig) -> str | None:
    if cfg.created:
        return cfg.created
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise InputError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    return None


def _infer_metadata(cfg: config.ArchConfig, sources: list[Source], findings: list[Finding]) -> dict[str, Any]:
    """arch.yaml's analysis fields, plus what the files say (:func:`heparch.metadata.discover_files`:
    a patchset's HEPData reference, a HEPData submission.yaml, an SModelS globalInfo.txt).
    arch.yaml wins; a file that disagrees with it or with an earlier file is W021, a guessed
    value W022 (both appended to ``findings``)."""
    analysis = {k: v for k, v in cfg.analysis.items() if v not in (None, "")}
    found, conflicts = discover_files((s.path, s.file, s.obj if s.role == "patchset" else None) for s in sorted(sources, key=lambda s: s.path))
    findings += _differing(analysis, found, conflicts)
    findings += _fill_in(analysis, found)
    return analysis


def _differing(declared: dict[str, Any], found: dict[str, Found], conflicts: list[Found]) -> list[Finding]:
    """W021 for each value found in the files that differs from the one kept (arch.yaml's, else the first found)."""
    notes = []
    for f in [*found.values(), *conflicts]:
        kept = declared.get(f.field, found[f.field].value)
        if kept != f.value:
            notes.append(
                Finding("W021", f.source, f"analysis.{f.field} {f.value!r} differs from the value kept, {kept!r} (arch.yaml wins, else the first file)")
            )
    return notes


def _fill_in(analysis: dict[str, Any], found: dict[str, Found]) -> list[Finding]:
    """Give ``analysis`` the found value of each field it lacks; W022 for each guessed one."""
    notes = []
    for field, f in found.items():
        if field not in analysis:
            analysis[field] = f.value
            if f.guessed:
                notes.append(Finding("W022", f.source, f"analysis.{field} {f.value!r} is guessed; confirm it (or correct it) in arch.yaml"))
    return notes


_UNSAFE_IN_NAME = re.compile(r"[^\w.+-]+")  # separators, '~', spaces, control and other characters
_MAX_NAME = 200  # characters of the stem; a file name stays within 255 bytes for ASCII names


def safe_file_stem(name: str, *, fallback: str = "bundle") -> str:
    """One safe file name (without suffix) made from ``name``, which may come from a bundle's
    manifest or an extracted arch.yaml and must never choose where a file is written.

    >>> safe_file_stem("../../x"), safe_file_stem("/etc/passwd"), safe_file_stem("~"), safe_file_stem("a\\x00b c")
    ('x', 'etc_passwd', 'bundle', 'a_b_c')
    """
    stem = _UNSAFE_IN_NAME.sub("_", unicodedata.normalize("NFC", name))
    stem = stem.strip("._-")[:_MAX_NAME].rstrip("._-")  # no hidden file, no '.' or '..', no trailing dot
    if not stem or path_problem(f"{stem}.zst") is not None:  # e.g. a Windows device name such as 'con'
        return fallback
    return stem


def default_output(source: Path, cfg: config.ArchConfig | None = None) -> Path:
    """``./<name>.zst`` in the current directory: the arch.yaml name, else the source's own
    name, made one safe file name (:func:`safe_file_stem`)."""
    suffix = importer.archive_suffix(source.name) if source.is_file() else None
    stem = source.name[: -len(suffix)] if suffix else source.stem
    name = (cfg.name if cfg else None) or (stem if source.is_file() else source.resolve().name)
    return Path.cwd() / f"{safe_file_stem(name)}.zst"


def _pairs(opened: importer.Source, skip: set[Path], exclude: list[str]) -> list[tuple[str, Path]]:
    """The files of the source by logical path; an archive nested in a submission is replaced by
    the files it holds, under its name without the suffix."""
    pairs = [(logical, file) for logical, file in _walk(opened.root, skip, exclude) if logical not in opened.expanded]
    for logical, folder in opened.expanded.items():
        prefix = logical[: -len(importer.archive_suffix(logical) or "")] + "/"
        pairs += _walk(folder, set(), exclude, prefix)
    return sorted(pairs)


def _load_config(cfg_file: Path, opened: importer.Source) -> tuple[config.ArchConfig, list[Finding]]:
    """arch.yaml of the source; its errors name it inside an archive, not in the temporary directory."""
    if not cfg_file.is_file():
        return config.ArchConfig(), []
    try:
        return config.load_checked(cfg_file)
    except InputError as exc:
        if not opened.is_archive:
            raise
        raise InputError(exc.message.replace(str(cfg_file), opened.where(config.FILENAME)), findings=exc.findings, option=exc.option) from None


def collect(source: Path, *, output: Path | None = None, opened: importer.Source | None = None) -> tuple[config.ArchConfig, list[Source], list[Finding]]:
    """Read the source into a config and classified files; findings say what is wrong.
    ``opened``: the source as :func:`heparch.importer.opened` gives it (an archive unpacked)."""
    if not source.exists():
        raise InputError(f"{source}: no such file or directory")
    opened = opened or importer.Source(source, str(source))
    findings: list[Finding] = list(opened.warnings)
    cfg, pairs = _config_and_files(source, opened, {output.resolve()} if output else set(), findings)
    sources = _sources(pairs, cfg, opened, findings)
    if opened.root.is_file() and sources[0].role != "likelihood":
        raise InputError(f"{source}: not a pyhf workspace (needs 'channels' and 'observations'/'measurements')")
    _attach(sources, findings)
    return cfg, sources, findings


def _sources(pairs: list[tuple[str, Path]], cfg: config.ArchConfig, opened: importer.Source, findings: list[Finding]) -> list[Source]:
    """Each file as discovered and as arch.yaml's ``files`` declare it; refused when an entry names no file of the source."""
    declared = {f.path: f for f in cfg.files}
    sources = [_declared_as(_discovered(logical, file, opened, findings), declared.pop(logical, None), opened, findings) for logical, file in pairs]
    for missing in declared:
        raise InputError(f"{opened.where(config.FILENAME)}: files: {missing}: no such file in the source; fix the path or remove the entry")
    return sources


def _config_and_files(source: Path, opened: importer.Source, skip: set[Path], findings: list[Finding]) -> tuple[config.ArchConfig, list[tuple[str, Path]]]:
    """The source's arch.yaml (none for a single workspace file) and its files to pack (logical path, file)."""
    root = opened.root
    if not root.is_file():
        cfg, more = _load_config(root / config.FILENAME, opened)
        findings += more
        return cfg, _pairs(opened, skip, cfg.exclude)
    if source.suffix.lower() != ".json":
        raise InputError(
            f"{source}: a single-file source must be a workspace JSON or an archive ({', '.join(importer.ARCHIVE_SUFFIXES)}); pass a directory for anything else"
        )
    return config.ArchConfig(), [(source.name, source)]


def _discovered(logical: str, file: Path, opened: importer.Source, findings: list[Finding]) -> Source:
    """A file as found: its logical path checked, hashed and classified by name and content."""
    problem = path_problem(logical)
    if problem:
        raise InputError(f"{opened.where(logical)}: cannot be packed: {problem}; rename it")
    size, h256, h512 = _hash(file)
    src = Source(logical, file, size, h256, h512)
    _classify(src, findings)
    return src


def _declared_as(src: Source, spec: config.FileSpec | None, opened: importer.Source, findings: list[Finding]) -> Source:
    """``src`` with what arch.yaml's ``files`` entry says of it (role, annotations, likelihood, media type)."""
    if spec is None:
        return src
    if spec.role not in ROLES:
        raise InputError(f"{opened.where(config.FILENAME)}: files: {src.path}: unknown role {spec.role!r}; use one of {', '.join(ROLES)}")
    if spec.role != src.role and spec.role in ("likelihood", "patchset", "patch", "simplified-likelihood", "results", "signal-interface"):
        src.obj = _load_json(src, findings)
    src.role = spec.role
    src.annotations.update(spec.annotations)
    if spec.likelihood:
        src.annotations["likelihood"] = spec.likelihood
    if spec.mediaType:
        src.media_type = spec.mediaType
    return src


def _manifest_obj(cfg: config.ArchConfig, sources: list[Source], findings: list[Finding]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "bundleFormat": {"uri": versions.FORMAT_URI, "version": versions.FORMAT_VERSION},
        "files": [_file_entry(s) for s in sorted(sources, key=lambda s: s.path)],
    }
    created = _created(cfg)  # before the metadata: a bad SOURCE_DATE_EPOCH is the first error
    analysis = _typed_analysis(cfg, _infer_metadata(cfg, sources, findings))
    deposit = cfg.deposit.model_dump(exclude_none=True) if cfg.deposit is not None else None
    optional = {"name": cfg.name, "created": created, "analysis": analysis, "containers": cfg.containers, "supersedes": _supersedes(cfg), "deposit": deposit}
    obj.update((key, value) for key, value in optional.items() if value)
    return obj


def _supersedes(cfg: config.ArchConfig) -> dict[str, str] | None:
    """The manifest's ``supersedes``: the identity of the bundle this one is a new version of, and the change note if there is one."""
    if not cfg.supersedes:
        return None
    return {"identity": cfg.supersedes} | ({"note": cfg.version_note} if cfg.version_note else {})


def _file_entry(s: Source) -> dict[str, Any]:
    """A file's manifest entry; a likelihood's annotations gain its pyhf digest."""
    annotations = dict(s.annotations)
    if s.role == "likelihood" and s.obj is not None:
        annotations["pyhf.digest"] = "sha256:" + workspace.pyhf_digest(s.obj)
    entry: dict[str, Any] = {
        "path": s.path,
        "role": s.role,
        "mediaType": s.media_type,
        "digest": "sha256:" + s.sha256,
        "size": s.size,
        "fixity": {"sha512": s.sha512},
    }
    if annotations:
        entry["annotations"] = annotations
    return entry


def _typed_analysis(cfg: config.ArchConfig, analysis: dict[str, Any]) -> dict[str, Any]:
    """The identifiers and quantities in their normal form (:mod:`heparch.identifiers`): a bad
    value arch.yaml gives refuses the build; one found in the files (a patchset's reference) is
    kept as it is, and verification warns about it (W013)."""
    declared, problems = normalise_analysis({k: v for k, v in analysis.items() if k in cfg.analysis}, f"{config.FILENAME}:analysis")
    _refuse_on(problems)
    found, _ = normalise_analysis({k: v for k, v in analysis.items() if k not in cfg.analysis}, "")
    return {**found, **declared}


def _with_lineage(cfg: config.ArchConfig, supersedes: Path | None, note: str | None) -> config.ArchConfig:
    """``cfg`` with the predecessor (``--supersedes OLD.zst``: its identity, read from the old
    bundle) and the change note (``--note``); the options win over arch.yaml's fields."""

    if supersedes is not None:
        with Bundle(supersedes) as old:
            cfg = cfg.model_copy(update={"supersedes": old.identity})
    if note is not None:
        cfg = cfg.model_copy(update={"version_note": note.strip() or None})
    if cfg.version_note and not cfg.supersedes:
        raise InputError("a change note needs the bundle it changes: add supersedes=OLD.zst (or supersedes: IDENTITY in arch.yaml)", option="supersedes")
    return cfg


def build(
    source: Path | str,
    *,
    output: Path | str | None = None,
    signatures_dir: Path | None = None,
    supersedes: Path | str | None = None,
    note: str | None = None,
) -> BuildResult:
    """Build ``source`` into a bundle at ``output``; raise :class:`BuildRefused` listing every problem.
    ``source`` may be an archive (:mod:`heparch.importer`), unpacked into a temporary directory
    that is removed when the build ends. ``supersedes``: the bundle this one is a new version of,
    ``note``: what changed."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: no such file or directory")
    with importer.opened(source) as opened:
        lineage = (Path(supersedes) if supersedes is not None else None, note)
        return _build(source, opened, output=output, signatures_dir=signatures_dir, lineage=lineage)


def _build(
    source: Path, opened: importer.Source, *, output: Path | str | None, signatures_dir: Path | None, lineage: tuple[Path | None, str | None]
) -> BuildResult:
    out = Path(output) if output is not None else None
    cfg, sources, findings = collect(source, output=out, opened=opened)
    cfg = _with_lineage(cfg, lineage[0], lineage[1])
    out = _check_output(out or default_output(source, cfg))
    obj = _manifest_obj(cfg, sources, findings)
    manifest, manifest_bytes, findings = _checked_manifest(obj, sources, findings)
    head = layout.head_files(manifest, manifest_bytes, AGENT)
    signatures = _kept_signatures(signatures_dir or (source / "signatures" if source.is_dir() else None), manifest_bytes, source)
    writer.write_bundle(out, head, signatures, {s.sha256: s.size for s in sources}, _blob_reader(sources))
    return BuildResult(out, layout.identity(manifest_bytes), manifest, [f for f in findings if f.severity == "warning"])


def _check_output(out: Path) -> Path:
    if out.is_dir():
        raise InputError(f"output {out}: is a directory; give the output file name, e.g. output={out / 'bundle.zst'}", option="output")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: output directory does not exist")
    return out


def _checked_manifest(obj: dict[str, Any], sources: list[Source], findings: list[Finding]) -> tuple[Manifest, bytes, list[Finding]]:
    """The manifest, its canonical bytes and all findings; :class:`BuildRefused` on any error
    (of the schema, the files' rules, the components' semantics or strict JSON)."""
    _refuse_on(schema_findings(obj, "manifest.json", "E032", config.FILENAME))
    manifest = Manifest.from_json(obj)
    findings = [*findings, *check_files(manifest), *_component_findings(manifest, sources)]
    _refuse_on([f for f in findings if f.severity == "error"])
    return manifest, _canonical(obj), findings


def _refuse_on(errors: list[Finding]) -> None:
    """:class:`BuildRefused` naming the first of ``errors`` and listing them all; nothing when there are none."""
    if errors:
        raise BuildRefused(errors[0].one_line(), findings=errors)


def _component_findings(manifest: Manifest, sources: list[Source]) -> list[Finding]:
    """The components' schema and semantic findings (:func:`heparch.semantic.check_components`)."""

    by_path = {s.path: s for s in sources}
    parsed = {s.path: s.obj for s in sources if s.obj is not None}  # parsed once, at discovery
    return semantic.check_components(manifest, lambda e: by_path[e.path].file.read_bytes(), parsed=parsed)


def _canonical(obj: dict[str, Any]) -> bytes:
    """The manifest's canonical bytes; refused when a value of arch.yaml is one no reader may accept."""
    try:
        return strictjson.canonical(obj, where="manifest")
    except strictjson.StrictJSONError as exc:
        problem = Finding(exc.code or "E030", config.FILENAME, f"{exc}; change the value")
        raise BuildRefused(problem.one_line(), findings=[problem]) from None


def _blob_reader(sources: list[Source]) -> Callable[[str], Iterator[bytes]]:
    """The chunks of a blob by its hex digest, read from the source file that holds it."""
    files_by_hex = {s.sha256: s.file for s in sources}

    def open_blob(hex_: str) -> Iterator[bytes]:
        with files_by_hex[hex_].open("rb") as fh:
            while chunk := fh.read(writer.CHUNK):
                yield chunk

    return open_blob


def _kept_signatures(folder: Path | None, manifest_bytes: bytes, source: Path) -> dict[str, bytes]:
    """The signatures kept beside the source (:func:`read_signatures`), checked to sign this bundle."""
    signatures = read_signatures(folder)
    if signatures:
        _check_kept_signatures(signatures, manifest_bytes, source)
    return signatures


def _check_kept_signatures(signatures: dict[str, bytes], manifest_bytes: bytes, source: Path) -> None:
    """Refuse signatures (kept by ``arch extract``) that do not sign the bundle being built:
    after an edit the identity changes, and packing them would make a bundle that fails
    verification (E074, E077)."""
    from heparch.signing.check import check_signatures  # cryptography: only for a source with kept signatures

    check = check_signatures(identity=layout.identity(manifest_bytes), manifest_bytes=manifest_bytes, in_bundle=signatures)
    errors = [f for f in check.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        raise BuildRefused(
            f"{source / first.location}: {first.code} {first.message}; the content changed since it was signed: "
            f"remove {source / 'signatures'} and sign the new bundle (arch sign)",
            findings=errors,
        )


def read_signatures(folder: Path | None) -> dict[str, bytes]:
    """Signature files kept beside an extracted bundle, by their entry name."""
    if folder is None or not folder.is_dir():
        return {}
    return {layout.SIGNATURE_DIR + f.name: f.read_bytes() for f in sorted(folder.iterdir()) if _is_signature_file(f)}


def _is_signature_file(file: Path) -> bool:
    """A regular file (not a link) named like a DSSE envelope or an sshsig signature."""
    return file.name.endswith((".dsse.json", ".sshsig")) and file.is_file() and not file.is_symlink()
