"""``arch extract``: a verified bundle -> a directory that ``arch build`` turns back into the same identity.

Nothing is written until the whole bundle has verified; files are created with
O_EXCL|O_NOFOLLOW in a fresh staging directory beside the target and the staging
directory is renamed into place at the end, so a failure leaves nothing behind (a kill -9
leaves the locked staging directory, which the next extract to that target removes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from heparch import config
from heparch.api import Bundle
from heparch.errors import InputError, InvalidBundle
from heparch.spec.models import FileEntry, Manifest
from heparch.spec.paths import path_problem
from heparch.store import tmpfiles
from heparch.verify import Verification, verify_open

_DERIVED = {"pyhf.digest", "likelihood"}


def arch_yaml_data(manifest: Manifest) -> dict[str, object]:
    """Everything of the manifest that arch.yaml must carry for a rebuild to give the same identity."""
    obj = manifest.to_json()
    data: dict[str, object] = {k: obj[k] for k in ("name", "created", "deposit", "analysis", "containers") if k in obj}
    if manifest.supersedes is not None:  # the lineage, as arch.yaml says it
        data["supersedes"] = manifest.supersedes.identity
        data.update(_given(version_note=manifest.supersedes.note))
    data["files"] = [_file_spec(f) for f in manifest.files]
    return data


def _file_spec(f: FileEntry) -> dict[str, object]:
    """A file's arch.yaml entry: its role, likelihood and media type, and the annotations a build does not derive."""
    extra = {k: v for k, v in f.annotations.items() if k not in _DERIVED}
    return {"path": f.path, "role": f.role, **_given(likelihood=f.likelihood), "mediaType": f.mediaType, **_given(annotations=extra)}


def _given(**fields: object) -> dict[str, object]:
    """The ``fields`` that have a value (not None, not empty)."""
    return {key: value for key, value in fields.items() if value}


def _write_contents(staging: Path, b: Bundle) -> None:
    """The bundle's files by logical path, its signatures and the arch.yaml that rebuilds it."""
    for f in b.files():
        if path_problem(f.path):
            raise InvalidBundle(f"E034 {f.path}: unsafe logical path")
        _write_new(staging, f.path, b.iter_bytes(f.path))
    for name, data in sorted(b.signatures.items()):
        _write_new(staging, name, [data])
    _write_new(staging, config.FILENAME, [config.render(arch_yaml_data(b.manifest)).encode("utf-8")])


def _write_new(root: Path, logical: str, chunks: object) -> None:
    target = root.joinpath(*logical.split("/"))
    if root.resolve() not in target.resolve().parents:
        raise InvalidBundle(f"E034 {logical}: would be written outside the target directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        for chunk in chunks:  # type: ignore[attr-defined]
            fh.write(chunk)


def extract(bundle: Path | str, out_dir: Path | str) -> Path:
    """Verify ``bundle`` fully, then write its files, arch.yaml and signatures/ into ``out_dir``."""
    bundle, out = Path(bundle), _check_target(Path(out_dir))
    try:
        fh = bundle.open("rb")
    except OSError as exc:
        raise InputError(f"{bundle}: cannot open: {exc.strerror}") from None
    with fh:  # one open file for verifying and extracting: renaming another file onto the path changes nothing
        verified = _verified(bundle, fh)
        _stage_and_commit(bundle, fh, verified, out)
    return out


def _check_target(out: Path) -> Path:
    """``out``, refused unless it is a new or empty real directory in an existing one."""
    if out.is_symlink():
        raise InputError(f"{out}: is a symbolic link; extract into a real directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty directory; choose a new directory")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: parent directory does not exist")
    return out


def _verified(bundle: Path, fh: BinaryIO) -> Verification:
    result = verify_open(fh, level="full")
    if not result.valid:
        raise InvalidBundle(f"{bundle}: does not verify; nothing extracted (run 'arch verify {bundle}')", findings=result.report.errors)
    return result


def _stage_and_commit(bundle: Path, fh: BinaryIO, verified: Verification, out: Path) -> None:
    """Write what was verified into a staging directory, then rename it to ``out``.

    The file may still be rewritten in place between verification and reading: the manifest and
    signatures read again must equal the verified ones, and every file is hash-checked against
    that manifest as it is read (IntegrityError), so only verified bytes are ever committed.
    """
    with tmpfiles.staging_dir(out) as staging:  # removed on every exit path; a killed run's by the next one
        with Bundle(bundle, fileobj=fh) as b:
            if b.identity != verified.identity or b.signatures != verified.signatures:
                raise InvalidBundle(f"{bundle}: changed while it was being extracted; nothing extracted (verify it and extract again)")
            _write_contents(staging, b)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
