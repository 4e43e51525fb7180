"""``arch sign``: add signatures to a bundle in place (or write them beside it), and attach detached ones;
``arch replay --attest``: sign with the record of a reproduction (:func:`attest`).

A bundle is verified in full before it is signed (a signature attests content that passed
every check), locked against concurrent signers, and rewritten with only its signature part
recompressed (:func:`heparch.store.writer.rewrite_signature_part`); the identity never changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from heparch import __version__
from heparch.errors import InputError, InvalidBundle
from heparch.signing.check import check_envelope, check_sshsig, read_capped, results_digests
from heparch.signing.envelope import SSHSIG_SUFFIX, ReplayedPoint, ReplayRecord, make_envelope, make_sshsig, signature_name, signing_time
from heparch.signing.keys import Signer
from heparch.signing.trust import role_problem
from heparch.store import layout, writer
from heparch.verify import verify


@dataclasses.dataclass(frozen=True)
class Signed:
    """What :func:`sign` or :func:`attach` wrote."""

    identity: str
    keyid: str
    role: str
    written: tuple[str, ...]  # entry names added to the bundle, or paths of detached files


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    """The bundle opened and locked (flock) against concurrent signers; reopened if it was replaced meanwhile."""
    import fcntl  # POSIX only: imported where the lock is taken

    for _ in range(100):
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                raise InputError(f"{path}: was removed while waiting for another signer") from None
            if same:
                yield fh
                return
        finally:
            fh.close()
    raise InputError(f"{path}: keeps being replaced by other processes; try again")


def _in_place(bundle: Path | str) -> Path:
    """The file to rewrite: a symlink's target, so that the rename replaces the bundle, not the link."""
    path = Path(bundle)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _bundle_identity(path: Path) -> tuple[str, str, bytes]:
    """Verify the bundle in full (fixity, schemas, semantics, existing signatures): a signature
    attests content that passed every check. (identity, name, manifest bytes)."""

    result = verify(path, level="full")
    if not result.valid or result.identity is None or result.manifest is None:
        errors = result.report.errors
        first = errors[0].one_line() if errors else "no manifest"
        raise InvalidBundle(f"{path}: cannot sign an invalid bundle: {first} (run 'arch verify {path}')", findings=errors)
    return result.identity, result.manifest.name or "bundle", result.manifest_bytes or b""


def _rewrite(path: Path, fh: Any, identity: str, change: Callable[[dict[str, bytes]], None]) -> None:
    parts = writer.existing_parts(fh)
    if layout.identity(parts.head[layout.MANIFEST]) != identity:
        raise InvalidBundle(f"{path}: changed while it was being signed; nothing was written (run 'arch verify {path}' and sign again)")
    signatures = dict(parts.signatures)
    change(signatures)
    if len(signatures) > layout.MAX_SIGNATURES:
        raise InputError(f"{path}: would hold more than {layout.MAX_SIGNATURES} signature files")
    writer.rewrite_signature_part(path, fh, parts, signatures)


def sign(
    bundle: Path | str,
    signer: Signer,
    *,
    role: str,
    ssh: bool = False,
    detached: bool = False,
    time: str | None = None,
    replay: Callable[[str, bytes], ReplayRecord] | None = None,
) -> Signed:
    """Sign ``bundle`` for ``role``: add (or replace) this key's envelope, and with ``ssh`` its sshsig.

    With ``detached`` the files are written beside the bundle (``<bundle>.<role>.<keyid>.dsse.json``)
    and the bundle is left as it is. The identity never changes. ``replay`` makes the record of a
    reproduction from the verified bundle's (identity, manifest bytes), for the predicate's ``replay``.
    """
    path = Path(bundle)
    problem = role_problem(role)
    if problem:
        raise InputError(f"role: {problem}", option="role")
    time = time or signing_time()
    keyid = signer.public.keyid
    target = _in_place(path)
    with _locked(target) as fh:
        identity, name, manifest_bytes = _bundle_identity(target)
        record = replay(identity, manifest_bytes) if replay is not None else None
        files = {signature_name(role, keyid, "dsse"): make_envelope(signer, identity=identity, name=name, role=role, time=time, replay=record)}
        if ssh:
            files[signature_name(role, keyid, "sshsig")] = make_sshsig(signer, manifest_bytes)
        if detached:
            return Signed(identity, keyid, role, _write_beside(path, files))
        _rewrite(target, fh, identity, lambda sigs: sigs.update({layout.SIGNATURE_DIR + n: d for n, d in files.items()}))
        return Signed(identity, keyid, role, tuple(layout.SIGNATURE_DIR + n for n in files))


def _write_beside(path: Path, files: dict[str, bytes]) -> tuple[str, ...]:
    """Each signature file written beside the bundle ``path`` as ``<bundle>.<file name>``; their paths."""
    written = []
    for fname, data in files.items():
        beside = path.with_name(f"{path.name}.{fname}")
        with writer.atomic_output(beside) as out:
            out.write(data)
        written.append(str(beside))
    return tuple(written)


_DETACHED_SSHSIG_RE = re.compile(r"\.(?P<role>[a-z0-9][a-z0-9-]{0,23})\.(?P<keyid>[0-9a-f]{64})\.sshsig$")


def attach(bundle: Path | str, envelope: Path | str) -> Signed:
    """Add a detached DSSE envelope made elsewhere; it must verify and be made for this bundle.

    A detached ``<bundle>.<role>.<keyid>.sshsig`` (from ``--detached --ssh``) is attached too:
    it must verify over this bundle's ``data/manifest.json`` with the key its name gives.
    """
    path, source = _in_place(bundle), Path(envelope)
    data = read_capped(source, "the envelope")
    if source.name.endswith(SSHSIG_SUFFIX):
        return _attach_sshsig(path, source, data)
    with _locked(path) as fh:
        identity, _, manifest_bytes = _bundle_identity(path)
        sig = check_envelope(data, location=str(source), identity=identity, manifest_bytes=manifest_bytes)
        assert sig.role is not None
        name = layout.SIGNATURE_DIR + signature_name(sig.role, sig.keyid, "dsse")
        _rewrite(path, fh, identity, lambda sigs: sigs.update({name: data}))
        return Signed(identity, sig.keyid, sig.role, (name,))


def _attach_sshsig(path: Path, source: Path, data: bytes) -> Signed:
    m = _DETACHED_SSHSIG_RE.search(source.name)
    if m is None:
        raise InputError(f"{source}: a detached SSH signature is named <bundle>.<role>.<keyid>.sshsig (as --detached --ssh writes it)")
    with _locked(path) as fh:
        identity, _, manifest_bytes = _bundle_identity(path)
        sig = check_sshsig(data, location=str(source), message=manifest_bytes, keyid=m["keyid"])
        name = layout.SIGNATURE_DIR + signature_name(m["role"], sig.keyid, "sshsig")
        _rewrite(path, fh, identity, lambda sigs: sigs.update({name: data}))
        return Signed(identity, sig.keyid, m["role"], (name,))


def attest(bundle: Path | str, signer: Signer, *, role: str, identity: str, points: Sequence[ReplayedPoint], time: str | None = None) -> Signed:
    """Sign ``bundle`` in place for ``role`` with the record of a reproduction (spec section 6.2).

    The caller replayed every claimed point of the bundle whose identity was ``identity`` and every
    one agreed with its claim (``points``); a replay that selected points or failed one is never
    attested. The record names this heparch, the platform, the date and the results components
    (with their digests) it reproduced. The identity never changes.
    """
    if not points:
        raise InputError(f"{bundle}: no replayed points to attest; replay every claimed point first")
    date = time or signing_time()

    def record(verified: str, manifest_bytes: bytes) -> ReplayRecord:
        if verified != identity:
            raise InvalidBundle(f"{bundle}: changed since it was replayed ({identity} then, {verified} now); nothing was signed: replay it again")
        made = ReplayRecord(__version__, _platform(), date, results_digests(manifest_bytes), tuple(points))
        try:  # what a reader would refuse (E079) is never signed: e.g. a point outside its tolerance
            return ReplayRecord.from_json(made.to_json())
        except ValueError as exc:
            raise InputError(f"{bundle}: cannot attest this replay: {exc}; nothing was signed") from None

    return sign(bundle, signer, role=role, time=date, replay=record)


def _platform() -> str:
    """The machine a replay ran on, e.g. ``Linux-6.8.0-x86_64-with-glibc2.39; CPython 3.12.3``."""
    return f"{platform.platform()}; {platform.python_implementation()} {platform.python_version()}"
