"""Checking signatures (spec section 6.4): each DSSE envelope and sshsig of a bundle, then the trust policy.

Malformed or spliced signatures are errors (E070-E077, E079 for a reproduction's record) even
without a trust policy; valid ones
are warnings unless the policy trusts their key for their role (W007 without a policy, W008
with one); an unmet threshold is E078. :func:`heparch.verify.verify` runs
:func:`check_signatures` before it hashes any payload.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import re
import struct
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from heparch.errors import InputError, InvalidBundle
from heparch.findings import Finding
from heparch.signing.envelope import (
    ARMOR_BEGIN,
    ARMOR_END,
    DSSE_SUFFIX,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SSHSIG_MAGIC,
    SSHSIG_NAMESPACE,
    STATEMENT_TYPE,
    Kind,
    ReplayRecord,
    pae,
    signature_name,
    sshsig_signed_data,
)
from heparch.signing.keys import KEY_TYPE, KeyFormatError, PublicKey, b64decode, parse_blob, parse_public_key, read_ssh_string
from heparch.signing.trust import KEYID_RE, RoleOutcome, TrustOutcome, TrustPolicy, role_problem
from heparch.spec import strictjson
from heparch.store import layout

_C_SPACE = " \t\n\v\f\r"  # C's isspace(), what OpenSSH's base64 decoder skips
_NAME_RE = re.compile(r"^(?P<role>[a-z0-9][a-z0-9-]{0,23})\.(?P<keyid>[0-9a-f]{64})(?P<suffix>\.dsse\.json|\.sshsig)$")
_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")  # ASCII digits (\d is any Unicode digit)
_SSH_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


class SignatureError(InvalidBundle):
    """A signature is malformed or spliced, or a trust policy is not met (exit 1)."""


@dataclasses.dataclass(frozen=True)
class Signature:
    """A signature that verified (its key is not yet judged by any policy)."""

    location: str
    kind: Kind
    keyid: str
    role: str | None  # None for sshsig
    time: str | None = None
    replay: ReplayRecord | None = None  # the reproduction an envelope records (arch replay --attest)


class _Bad(Exception):
    """Why one signature is refused: its code and the finding's parts."""

    def __init__(self, code: str, message: str, *, expected: Any = None, found: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.expected, self.found = code, message, expected, found

    def finding(self, location: str) -> Finding:
        return Finding(self.code, location, self.message, self.expected, self.found)

    def error(self, location: str) -> SignatureError:
        return SignatureError(f"{self.code} {location}: {self.message}", findings=[self.finding(location)])


def _fields(obj: Any, what: str, required: set[str], *, exact: bool, code: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _Bad(code, f"{what} must be a JSON object")
    missing = sorted(required - set(obj))
    if missing:
        raise _Bad(code, f"{what} has no {missing[0]!r}")
    extra = sorted(set(obj) - required)
    if exact and extra:
        raise _Bad(code, f"{what} has an unknown field {extra[0]!r}")
    return obj


def _strict_json(data: bytes, what: str, code: str) -> Any:
    try:
        return strictjson.loads(data)
    except ValueError as exc:  # StrictJSONError, and json's own ValueError for integers of more than 4300 digits
        raise _Bad(getattr(exc, "code", None) or code, f"{what} is not strict JSON: {exc}") from None


def _is_hex64(value: object) -> TypeGuard[str]:
    """Whether ``value`` is 64 lowercase hex digits (a key id, a sha256 digest)."""
    return isinstance(value, str) and KEYID_RE.fullmatch(value) is not None


def _b64_field(value: object) -> bytes | None:
    return b64decode(value) if isinstance(value, str) else None


def _parse_envelope(data: bytes) -> tuple[bytes, str, bytes]:
    """(payload, keyid, sig) of a well-formed DSSE envelope, else _Bad E071."""
    env = _fields(_strict_json(data, "envelope", "E071"), "envelope", {"payload", "payloadType", "signatures"}, exact=True, code="E071")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise _Bad("E071", "wrong payloadType", expected=PAYLOAD_TYPE, found=env["payloadType"])
    payload = _b64_field(env["payload"])
    if not payload:
        raise _Bad("E071", "payload is not non-empty base64")
    keyid, sig = _envelope_signature(env["signatures"])
    return payload, keyid, sig


def _envelope_signature(sigs: Any) -> tuple[str, bytes]:
    """(keyid, sig) of the envelope's one signature, else _Bad E071."""
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise _Bad("E071", "signatures must be a list of exactly one signature (one envelope per key and role)")
    sig_obj = _fields(sigs[0], "signatures[0]", {"keyid", "sig"}, exact=True, code="E071")
    keyid = sig_obj["keyid"]
    if not _is_hex64(keyid):
        raise _Bad("E071", "signatures[0].keyid must be 64 lowercase hex digits", found=keyid)
    sig = _b64_field(sig_obj["sig"])
    if sig is None or len(sig) != 64:
        raise _Bad("E071", "signatures[0].sig must be the base64 of a 64-byte Ed25519 signature")
    return keyid, sig


def _real_time(text: str) -> bool:
    """Whether ``text`` (of the form YYYY-MM-DDTHH:MM:SSZ) names a real moment, not month 13 or hour 25."""
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class _Statement:
    """The parts of a well-formed statement; ``replay`` is the predicate's member as found (checked later)."""

    digest: str  # the subject's sha256 hex
    role: str
    public: PublicKey
    keyid: str
    time: str
    replay: Any


def _parse_statement(payload: bytes) -> _Statement:
    """The parts of a well-formed statement, else _Bad E072."""
    st = _fields(_strict_json(payload, "payload", "E072"), "statement", {"_type", "subject", "predicateType", "predicate"}, exact=False, code="E072")
    if st["_type"] != STATEMENT_TYPE:
        raise _Bad("E072", "statement _type is not in-toto Statement v1", expected=STATEMENT_TYPE, found=st["_type"])
    if st["predicateType"] != PREDICATE_TYPE:
        raise _Bad("E072", "wrong predicateType", expected=PREDICATE_TYPE, found=st["predicateType"])
    digest = _subject_digest(st["subject"])
    role, public, keyid, time = _parse_predicate(st["predicate"])
    return _Statement(digest, role, public, keyid, time, st["predicate"].get("replay"))


def _subject_digest(subjects: Any) -> str:
    """The sha256 hex of the statement's one subject (the bundle), else _Bad E072."""
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise _Bad("E072", "subject must be a list of exactly one subject (the bundle)")
    subject = _fields(subjects[0], "subject[0]", {"name", "digest"}, exact=False, code="E072")
    digest = _fields(subject["digest"], "subject[0].digest", {"sha256"}, exact=False, code="E072")["sha256"]
    if not isinstance(subject["name"], str) or not _is_hex64(digest):
        raise _Bad("E072", "subject[0] needs a string name and digest.sha256 of 64 lowercase hex digits")
    return digest


def _parse_predicate(obj: Any) -> tuple[str, PublicKey, str, str]:
    """(role, public key, key id, time) of the heparch predicate, else _Bad E072."""
    pred = _fields(obj, "predicate", {"role", "keyid", "publicKey", "time"}, exact=False, code="E072")
    role, keyid, time = pred["role"], pred["keyid"], pred["time"]
    if not isinstance(role, str) or role_problem(role):
        raise _Bad("E072", "predicate.role is not a valid role name", found=role)
    if not _is_hex64(keyid):
        raise _Bad("E072", "predicate.keyid must be 64 lowercase hex digits", found=keyid)
    if not isinstance(time, str) or not _TIME_RE.fullmatch(time) or not _real_time(time):
        raise _Bad("E072", "predicate.time must be UTC YYYY-MM-DDTHH:MM:SSZ", found=time)
    return role, _predicate_key(pred["publicKey"]), keyid, time


def _predicate_key(key_text: object) -> PublicKey:
    if not isinstance(key_text, str) or not key_text.startswith("ssh-ed25519 "):
        raise _Bad("E072", "predicate.publicKey must be an OpenSSH line 'ssh-ed25519 AAAA...'")
    try:
        return parse_public_key(key_text)
    except KeyFormatError as exc:
        raise _Bad("E072", f"predicate.publicKey: {exc}") from None


def check_envelope(data: bytes, *, location: str, identity: str, manifest_bytes: bytes) -> Signature:
    """Check a DSSE envelope for the bundle ``identity`` (whose ``data/manifest.json`` is
    ``manifest_bytes``); raise :class:`SignatureError` when it fails."""
    try:
        return _check_envelope(data, location, identity, manifest_bytes)
    except _Bad as bad:
        raise bad.error(location) from None


def check_sshsig(data: bytes, *, location: str, message: bytes, keyid: str) -> Signature:
    """Check an armored SSH signature over ``message`` by the key ``keyid`` (a detached
    ``.sshsig`` whose name gives the key id); raise :class:`SignatureError` when it fails."""
    try:
        return _check_named_sshsig(data, location, message, keyid)
    except _Bad as bad:
        raise bad.error(location) from None


def _check_named_sshsig(data: bytes, location: str, message: bytes, keyid: str, digests: dict[bytes, bytes] | None = None) -> Signature:
    """An sshsig whose file name gives ``keyid``: E075 when another key made it."""
    sig = _check_sshsig(data, location, message, digests)
    if sig.keyid != keyid:
        raise _Bad("E075", "file name's key id differs from the signing key's", expected=sig.keyid, found=keyid)
    return sig


def _check_envelope(data: bytes, location: str, identity: str, manifest_bytes: bytes) -> Signature:
    payload, env_keyid, sig = _parse_envelope(data)
    st = _parse_statement(payload)
    if st.public.keyid != st.keyid:
        raise _Bad("E073", "predicate.keyid is not the key id of predicate.publicKey", expected=st.public.keyid, found=st.keyid)
    if env_keyid != st.keyid:
        raise _Bad("E073", "signatures[0].keyid is not the signer's key id", expected=st.keyid, found=env_keyid)
    if not st.public.verify(sig, pae(PAYLOAD_TYPE, payload)):
        raise _Bad("E073", "the Ed25519 signature does not verify over the payload with predicate.publicKey")
    if "sha256:" + st.digest != identity:
        raise _Bad("E074", "signed for another bundle: the subject digest is not this bundle's identity", expected=identity, found="sha256:" + st.digest)
    replay = None if st.replay is None else _replay_record(st.replay, manifest_bytes)
    return Signature(location, "dsse", st.keyid, st.role, st.time, replay)


def _replay_record(obj: Any, manifest_bytes: bytes) -> ReplayRecord:
    """A predicate's ``replay`` member, well formed and naming exactly this bundle's results components, else _Bad E079."""
    try:
        record = ReplayRecord.from_json(obj)
    except ValueError as exc:
        raise _Bad("E079", f"predicate.{exc}") from None
    if not _TIME_RE.fullmatch(record.date) or not _real_time(record.date):
        raise _Bad("E079", "predicate.replay.date must be UTC YYYY-MM-DDTHH:MM:SSZ", found=record.date)
    own = dict(results_digests(manifest_bytes))
    if dict(record.results) != own:
        raise _Bad(
            "E079",
            "predicate.replay.results are not this bundle's results components (a record made for another bundle)",
            expected=own,
            found=dict(record.results),
        )
    return record


@functools.lru_cache(maxsize=1)  # once per bundle, not once per envelope
def results_digests(manifest_bytes: bytes) -> Mapping[str, str]:
    """The results components of a bundle's ``data/manifest.json`` (already checked): logical path -> digest (read-only: it is cached)."""
    files = strictjson.loads(manifest_bytes).get("files", [])
    return types.MappingProxyType({f["path"]: f["digest"] for f in files if isinstance(f, dict) and f.get("role") == "results"})


def _armored_body(text: str) -> str:
    """The base64 body of an armored SSH signature, its whitespace removed; E076 unless armored
    exactly as ssh-keygen reads it (nothing but whitespace may follow the END line)."""
    start = _armor_start(text)
    end = text.find("\n" + ARMOR_END, start or 0)
    if start is None or end < 0 or text[end + 1 + len(ARMOR_END) :].strip(_C_SPACE):
        raise _Bad("E076", f"not an armored SSH signature ({ARMOR_BEGIN} ... {ARMOR_END}, each on its own line)")
    return "".join(ch for ch in text[start:end] if ch not in _C_SPACE)


def _armor_start(text: str) -> int | None:
    """Where the body of an armored SSH signature starts: after its BEGIN line ended by LF or CRLF (None: no such line)."""
    return next((len(ARMOR_BEGIN) + len(eol) for eol in ("\n", "\r\n") if text.startswith(ARMOR_BEGIN + eol)), None)


def _check_sshsig(data: bytes, location: str, message: bytes, digests: dict[bytes, bytes] | None = None) -> Signature:
    sig = _parse_sshsig(_sshsig_blob(data))
    if sig.version != 1:
        raise _Bad("E076", "unsupported SSHSIG version", expected=1, found=sig.version)
    if sig.namespace != SSHSIG_NAMESPACE.encode("ascii"):
        raise _Bad("E076", "wrong namespace", expected=SSHSIG_NAMESPACE, found=sig.namespace.decode("ascii", "replace"))
    if sig.hash_alg not in (b"sha512", b"sha256"):
        raise _Bad("E076", "unsupported hash algorithm", expected="sha512", found=sig.hash_alg.decode("ascii", "replace"))
    if not sig.public.verify(sig.signature, sshsig_signed_data(sig.namespace, sig.hash_alg, message, digests)):
        raise _Bad("E077", "the SSH signature does not verify over data/manifest.json")
    return Signature(location, "sshsig", sig.public.keyid, None)


def _sshsig_blob(data: bytes) -> bytes:
    """The SSHSIG blob of an armored signature, else _Bad E076."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _Bad("E076", "not an ASCII-armored SSH signature") from None
    # as strict as ssh-keygen (sshsig_dearmor): the file starts with the BEGIN line ended by LF (or
    # CRLF, as OpenSSH >= 9.3 reads it), the END line follows an LF, and the body is padded standard
    # base64 with only C whitespace between its characters; else heparch would call valid what
    # ssh-keygen cannot read (Python's splitlines() and strip() also split at VT, FF, CR, \x1c-\x1e)
    body = _armored_body(text)
    blob = base64.b64decode(body) if _SSH_B64_RE.fullmatch(body) else None
    if blob is None or not blob.startswith(SSHSIG_MAGIC):
        raise _Bad("E076", "the armored body is not padded standard base64 of an SSHSIG blob")
    return blob


@dataclasses.dataclass(frozen=True)
class _SshSig:
    """The fields of an SSHSIG blob (PROTOCOL.sshsig), not yet checked."""

    version: int
    public: PublicKey
    namespace: bytes
    hash_alg: bytes
    signature: bytes


def _parse_sshsig(blob: bytes) -> _SshSig:
    """The fields of a well-formed SSHSIG blob with an ssh-ed25519 key and signature, else _Bad E076."""
    try:
        pos = len(SSHSIG_MAGIC)
        if len(blob) < pos + 4:
            raise KeyFormatError("truncated")
        (version,) = struct.unpack(">I", blob[pos : pos + 4])
        key_blob, pos = read_ssh_string(blob, pos + 4)
        namespace, pos = read_ssh_string(blob, pos)
        _reserved, pos = read_ssh_string(blob, pos)
        hash_alg, pos = read_ssh_string(blob, pos)
        wrapped, pos = read_ssh_string(blob, pos)
        if pos != len(blob):
            raise KeyFormatError("bytes after the signature")
        return _SshSig(version, parse_blob(key_blob), namespace, hash_alg, _ed25519_signature(wrapped))
    except KeyFormatError as exc:
        raise _Bad("E076", f"malformed SSHSIG blob: {exc}") from None


def _ed25519_signature(wrapped: bytes) -> bytes:
    """The 64 bytes of an SSH signature blob: string "ssh-ed25519", string signature."""
    sig_type, pos = read_ssh_string(wrapped, 0)
    sig, pos = read_ssh_string(wrapped, pos)
    if sig_type != KEY_TYPE or len(sig) != 64 or pos != len(wrapped):
        raise KeyFormatError("the signature is not an ssh-ed25519 signature")
    return sig


@dataclasses.dataclass
class SignatureCheck:
    """Findings about the signatures, the valid ones, and the policy's verdict (when one was given)."""

    findings: list[Finding]
    valid: list[Signature]
    invalid: list[tuple[str, str]]  # (location, code)
    trust: TrustOutcome | None

    def to_json(self, policy: TrustPolicy | None) -> list[dict[str, Any]]:
        out = [_signature_json(s, policy) for s in self.valid]
        out += [{"file": loc, "kind": None, "role": None, "keyid": None, "signer": None, "status": f"invalid ({code})"} for loc, code in self.invalid]
        return sorted(out, key=lambda o: o["file"])


def _signature_json(s: Signature, policy: TrustPolicy | None) -> dict[str, Any]:
    key = policy.key(s.keyid) if policy is not None else None
    out: dict[str, Any] = {
        "file": s.location,
        "kind": s.kind,
        "role": s.role,
        "keyid": s.keyid,
        "signer": key.name if key else None,
        "status": _status(s, policy),
    }
    if s.replay is not None:
        out["replay"] = reproduction_json(s.replay)
    return out


def reproduction_json(record: ReplayRecord) -> dict[str, Any]:
    """What ``arch verify`` and ``arch inspect`` list of a recorded reproduction (its points counted, not listed)."""
    return {
        "date": record.date,
        "heparch": record.heparch,
        "platform": record.platform,
        "backends": record.backends,
        "points": len(record.points),
        "worst_ratio": record.worst_ratio,
    }


def _status(s: Signature, policy: TrustPolicy | None) -> str:
    """unverified (no policy), trusted (a DSSE envelope of a key the policy lets sign for its
    role), trusted-key (an sshsig of a key the policy lists), else untrusted."""
    if policy is None:
        return "unverified"
    if s.kind == "dsse":
        return "trusted" if s.role is not None and policy.trusts(s.keyid, s.role) else "untrusted"
    return "trusted-key" if policy.key(s.keyid) is not None else "untrusted"


def check_signatures(
    *,
    identity: str,
    manifest_bytes: bytes,
    in_bundle: Mapping[str, bytes],
    detached: Mapping[str, bytes] | None = None,
    policy: TrustPolicy | None = None,
    policy_location: str = "trust policy",
) -> SignatureCheck:
    """Check every signature of a bundle (entry name -> bytes) and the detached envelopes
    (location -> bytes), then the trust policy. Malformed or spliced signatures are errors
    (E070-E077); valid ones are warnings unless the policy trusts their key for their role
    (W007 without a policy, W008 with one); an unmet threshold is E078.
    """
    digests: dict[bytes, bytes] = {}  # of manifest_bytes, by hash name: computed once, not once per .sshsig
    checks: list[tuple[str, Callable[[], Signature]]] = [
        (name, functools.partial(_check_in_bundle, name, in_bundle[name], identity, manifest_bytes, digests)) for name in sorted(in_bundle)
    ]
    checks += [(loc, functools.partial(_check_envelope, data, loc, identity, manifest_bytes)) for loc, data in sorted((detached or {}).items())]
    result = _run_checks(checks)
    _judge(result, policy, policy_location)
    return result


def _judge(result: SignatureCheck, policy: TrustPolicy | None, policy_location: str) -> None:
    """Add the policy's verdict to ``result``: W007/W008 for valid signatures that do not count, E078 for unmet roles."""
    result.findings += [f for s in result.valid if (f := _trust_finding(s, policy)) is not None]
    if policy is not None:
        result.trust = policy.evaluate(_roles_signed(result.valid))
        result.findings += [_unmet(r, policy_location) for r in result.trust.roles if not r.met]


def _roles_signed(valid: list[Signature]) -> list[tuple[str, str]]:
    """(role, key id) of each valid DSSE envelope (what a trust policy counts)."""
    return [(s.role, s.keyid) for s in valid if s.kind == "dsse" and s.role is not None]


def _run_checks(checks: list[tuple[str, Callable[[], Signature]]]) -> SignatureCheck:
    """Each signature's check, in order: the valid ones, and a finding for each invalid one."""
    result = SignatureCheck([], [], [], None)
    for location, check in checks:
        try:
            result.valid.append(check())
        except _Bad as exc:
            result.findings.append(exc.finding(location))
            result.invalid.append((location, exc.code))
    return result


def _check_in_bundle(name: str, data: bytes, identity: str, manifest_bytes: bytes, digests: dict[bytes, bytes]) -> Signature:
    """One signature entry of the bundle, checked against its file name; :class:`_Bad` if not valid."""
    base = name.removeprefix(layout.SIGNATURE_DIR)
    m = _NAME_RE.fullmatch(base)
    if m is None:
        raise _Bad("E070", "signature file name must be <role>.<keyid>.dsse.json or <role>.<keyid>.sshsig (role: 1-24 of a-z 0-9 -; keyid: 64 hex)")
    if m["suffix"] == DSSE_SUFFIX:
        sig = _check_envelope(data, name, identity, manifest_bytes)
        if (sig.role, sig.keyid) != (m["role"], m["keyid"]):
            expected = signature_name(sig.role or "", sig.keyid, "dsse")
            raise _Bad("E075", "file name's role and key id differ from the signed predicate's", expected=expected, found=base)
        return sig
    return _check_named_sshsig(data, name, manifest_bytes, m["keyid"], digests)


def _trust_finding(s: Signature, policy: TrustPolicy | None) -> Finding | None:
    """W007 for a valid signature without a policy, W008 where the policy does not count it."""
    what = f"valid {'DSSE envelope' if s.kind == 'dsse' else 'SSH signature'} by key {s.keyid[:16]}..." + (f" for role {s.role}" if s.role else "")
    if policy is None:
        return Finding("W007", s.location, f"{what}: present but not checked against a trust policy (give --trust POLICY)")
    key = policy.key(s.keyid)
    if key is None:
        return Finding("W008", s.location, f"{what}: the key is not in the trust policy, so it does not count")
    if s.kind == "dsse" and s.role not in key.roles:
        return Finding("W008", s.location, f"{what}: the trust policy does not let {key.name} sign for {s.role}, so it does not count")
    return None


def _unmet(r: RoleOutcome, policy_location: str) -> Finding:
    got = f"{len(r.signers)} ({', '.join(r.signers)})" if r.signers else "0"
    return Finding("E078", policy_location, f"role {r.role} needs {r.required} distinct trusted key(s), got {got}", expected=r.required, found=len(r.signers))


def read_capped(path: Path, what: str) -> bytes:
    """The bytes of a signature file, reading no more than the cap (+1) whatever its size (or /dev/zero)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(layout.MAX_SIGNATURE_SIZE + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > layout.MAX_SIGNATURE_SIZE:
        raise InputError(f"{path}: larger than the {layout.MAX_SIGNATURE_SIZE}-byte cap of a signature file")
    return data


def read_detached(paths: Sequence[Path | str]) -> dict[str, bytes]:
    """The bytes of detached envelopes given with ``--signature``, by path."""
    return {str(p): read_capped(Path(p), "the signature") for p in paths}
