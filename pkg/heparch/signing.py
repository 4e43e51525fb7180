"""Signatures of bundles (spec section 6): Ed25519 keys, DSSE envelopes, OpenSSH sshsig.

The only module that imports ``cryptography``. A signature says that the holder of a key
approves a bundle, identified by its identity (the SHA-256 of ``data/manifest.json``), in a
role such as ``analysis-team``:

- a DSSE envelope (``signatures/<role>.<keyid>.dsse.json``) whose payload is an in-toto
  Statement v1 with the identity as subject digest and a heparch predicate
  (:data:`PREDICATE_TYPE`: role, key id, public key, time);
- optionally an OpenSSH signature (``signatures/<role>.<keyid>.sshsig``, namespace
  ``heparch-bundle``) over the exact bytes of ``data/manifest.json``, which ``ssh-keygen -Y
  verify`` checks without heparch.

The key id is the lowercase hex SHA-256 of the key's OpenSSH public-key blob (the bytes
that ``ssh-keygen -l -E sha256`` fingerprints), so it depends on the public key alone.

>>> pae("text/plain", b"hi")
b'DSSEv1 10 text/plain 2 hi'
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from heparch.errors import InputError, InvalidBundle
from heparch.findings import Finding
from heparch.spec import strictjson
from heparch.store import layout, writer
from heparch.trust import KEYID_RE, RoleOutcome, TrustOutcome, TrustPolicy, role_problem

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://heparch.org/spec/signature/v1"
SSHSIG_NAMESPACE = "heparch-bundle"
PASSPHRASE_ENV = "HEPARCH_PASSPHRASE"
DSSE_SUFFIX = ".dsse.json"
SSHSIG_SUFFIX = ".sshsig"
_KEY_TYPE = b"ssh-ed25519"
_SSHSIG_MAGIC = b"SSHSIG"
_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_C_SPACE = " \t\n\v\f\r"  # C's isspace(), what OpenSSH's base64 decoder skips
_NAME_RE = re.compile(r"^(?P<role>[a-z0-9][a-z0-9-]{0,23})\.(?P<keyid>[0-9a-f]{64})(?P<suffix>\.dsse\.json|\.sshsig)$")
_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")  # ASCII digits (\d is any Unicode digit)
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
_SSH_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")

Kind = Literal["dsse", "sshsig"]


class SignatureError(InvalidBundle):
    """A signature is malformed or spliced, or a trust policy is not met (exit 1)."""


class KeyFormatError(ValueError):
    """A public or private key that heparch cannot use; the message says why."""


# ---------------------------------------------------------------------------------------
# keys


def _string(data: bytes) -> bytes:
    """An SSH wire-format string: uint32 length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise KeyFormatError("truncated")
    (n,) = struct.unpack(">I", buf[pos : pos + 4])
    if pos + 4 + n > len(buf):
        raise KeyFormatError("truncated")
    return buf[pos + 4 : pos + 4 + n], pos + 4 + n


# Ed25519 encodings heparch checks itself (the cryptography package accepts A = identity,
# R = identity, S = 0 for any message, and a non-canonical A with y >= p): RFC 8032 section 5.1.7
# with the small-order blocklist of libsodium and ed25519-speccheck.
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
SMALL_ORDER: Final = frozenset(
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # the identity (order 1)
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2 (y = -1)
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4 (y = 0)
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0100000000000000000000000000000000000000000000000000000000000080",  # x = 0 with the sign bit set
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    )
)


def point_problem(encoded: bytes) -> str | None:
    """Why a 32-byte Ed25519 point encoding (a public key A, or R of a signature) is refused:
    a non-canonical y (y >= p) or a point of small order; None when it is acceptable."""
    if len(encoded) != 32:
        return f"{len(encoded)} bytes, not 32"
    if int.from_bytes(encoded, "little") & ((1 << 255) - 1) >= _P:
        return "non-canonical encoding (y >= p)"
    if encoded in SMALL_ORDER:
        return "a point of small order"
    return None


def signature_problem(sig: bytes) -> str | None:
    """Why a 64-byte Ed25519 signature R || S is refused before any curve arithmetic
    (R non-canonical or of small order, S >= L); None when its encoding is acceptable."""
    if len(sig) != 64:
        return f"{len(sig)} bytes, not 64"
    problem = point_problem(sig[:32])
    if problem is not None:
        return f"R is {problem}"
    if int.from_bytes(sig[32:], "little") >= _L:
        return "S is not reduced (S >= L)"
    return None


@dataclasses.dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (its 32 raw bytes): a canonical encoding of a point not of small
    order (:class:`KeyFormatError` otherwise), whoever constructs it."""

    raw: bytes

    def __post_init__(self) -> None:
        problem = point_problem(self.raw)
        if problem is not None:
            raise KeyFormatError(f"not an acceptable Ed25519 public key: {problem}")

    @property
    def blob(self) -> bytes:
        """The OpenSSH wire-format public key: string "ssh-ed25519", string key."""
        return _string(_KEY_TYPE) + _string(self.raw)

    @property
    def keyid(self) -> str:
        """Lowercase hex SHA-256 of :attr:`blob` (spec section 6.1)."""
        return hashlib.sha256(self.blob).hexdigest()

    @property
    def openssh(self) -> str:
        """The OpenSSH public-key line without comment: ``ssh-ed25519 AAAA...``."""
        return "ssh-ed25519 " + base64.b64encode(self.blob).decode("ascii")

    def verify(self, signature: bytes, data: bytes) -> bool:
        if signature_problem(signature) is not None:  # checked here, not left to the cryptography package
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


def _parse_blob(blob: bytes) -> PublicKey:
    kind, pos = _read_string(blob, 0)
    if kind != _KEY_TYPE:
        raise KeyFormatError(f"key type {kind.decode('ascii', 'replace')!r} is not supported: heparch signs with Ed25519 (ssh-ed25519) keys only")
    raw, pos = _read_string(blob, pos)
    if len(raw) != 32 or pos != len(blob):
        raise KeyFormatError("not a well-formed ssh-ed25519 public key blob")
    return PublicKey(raw)


def parse_public_key(text: str) -> PublicKey:
    """An Ed25519 public key from an OpenSSH line (``ssh-ed25519 AAAA... comment``) or a PEM block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            raise KeyFormatError("not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFormatError("the PEM public key is not an Ed25519 key: heparch signs with Ed25519 keys only")
        return PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    fields = text.split()
    if len(fields) < 2:
        raise KeyFormatError("expected an OpenSSH public-key line 'ssh-ed25519 AAAA... [comment]' or a PEM public key")
    if fields[0] != "ssh-ed25519":
        raise KeyFormatError(f"key type {fields[0]!r} is not supported: heparch signs with Ed25519 (ssh-ed25519) keys only")
    blob = _b64decode(fields[1])
    if blob is None:
        raise KeyFormatError("the key is not valid base64")
    return _parse_blob(blob)


@dataclasses.dataclass(frozen=True)
class Signer:
    """A private signing key and its public key."""

    private: Ed25519PrivateKey
    public: PublicKey

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> Signer:
        return cls(private, PublicKey(private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)))

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        """The key whose 32-byte private seed is ``seed`` (for reproducible test vectors only)."""
        return cls.from_private(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def read_passphrase(passphrase_file: Path | None) -> bytes | None:
    """The passphrase from ``passphrase_file`` (its first line) or ``$HEPARCH_PASSPHRASE``; None if neither."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_bytes()
        except OSError as exc:
            raise InputError(f"{passphrase_file}: cannot read the passphrase file: {exc.strerror}") from None
        line = text.split(b"\n", 1)[0].rstrip(b"\r")
        if not line:
            raise InputError(f"{passphrase_file}: the passphrase file is empty; write the passphrase on its first line")
        return line
    env = os.environ.get(PASSPHRASE_ENV)
    return env.encode("utf-8") if env else None


def generate_key(*, passphrase: bytes | None = None, comment: str = "") -> tuple[bytes, bytes]:
    """A new Ed25519 key: (OpenSSH private key, encrypted when a passphrase is given; public-key line)."""
    private = Ed25519PrivateKey.generate()
    signer = Signer.from_private(private)  # its PublicKey checks the encoding (never small order for a real key)
    encryption: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    comment = "".join(c if c.isprintable() else "_" for c in comment)  # one line, whatever the file name holds
    line = signer.public.openssh + (f" {comment}" if comment else "") + "\n"
    return pem, line.encode("utf-8")


def load_signer(path: Path, *, passphrase: bytes | None = None) -> Signer:
    """Read an Ed25519 private key (OpenSSH or PEM PKCS#8); :class:`InputError` says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the key: {exc.strerror}") from None
    if data.lstrip().startswith((b"ssh-", b"-----BEGIN PUBLIC KEY")):
        raise InputError(f"{path}: is a public key; give the private key file (the one without .pub)")
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key: Any = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise InputError(f"{path}: the key is encrypted; give its passphrase with --passphrase-file or ${PASSPHRASE_ENV}") from None
        raise InputError(f"{path}: the key is not encrypted; drop --passphrase-file and unset ${PASSPHRASE_ENV}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "wrong passphrase, or " if passphrase is not None else ""
        raise InputError(f"{path}: cannot load the private key ({hint}not an OpenSSH or PEM Ed25519 key: {exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key; make one with 'arch keygen -o NAME'")
    try:
        return Signer.from_private(key)
    except KeyFormatError as exc:  # a public key of small order cannot come from a real private key
        raise InputError(f"{path}: {exc}; make a new key with 'arch keygen -o NAME'") from None


# ---------------------------------------------------------------------------------------
# making signatures


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of (payloadType, payload)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def signing_time() -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` from ``SOURCE_DATE_EPOCH`` when set (reproducible), else the clock."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None:
        problem = f"SOURCE_DATE_EPOCH={env!r}: must be a whole number of seconds since 1970-01-01 UTC"
        if not re.fullmatch(r"[0-9]{1,12}", env.strip()):  # str.isdigit() accepts '²', which int() refuses
            raise InputError(problem)
        try:
            moment = datetime.datetime.fromtimestamp(int(env), tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            raise InputError(f"{problem}, before the year 10000") from None
        if moment.year > 9999:
            raise InputError(f"{problem}, before the year 10000")
    else:
        moment = datetime.datetime.now(tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signature_name(role: str, keyid: str, kind: Kind) -> str:
    """The file name of a signature: ``<role>.<keyid>.dsse.json`` or ``<role>.<keyid>.sshsig``."""
    return f"{role}.{keyid}{DSSE_SUFFIX if kind == 'dsse' else SSHSIG_SUFFIX}"


def statement(*, identity: str, name: str, role: str, public: PublicKey, time: str) -> dict[str, Any]:
    """The in-toto Statement v1 that a DSSE envelope signs."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": identity.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"role": role, "keyid": public.keyid, "publicKey": public.openssh, "time": time},
    }


def make_envelope(signer: Signer, *, identity: str, name: str, role: str, time: str) -> bytes:
    """A DSSE envelope (JSON, keys sorted, 2-space indent, final newline) over the statement."""
    payload = strictjson.canonical(statement(identity=identity, name=name, role=role, public=signer.public, time=time))
    sig = signer.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": signer.public.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode("ascii")


def _sshsig_signed_data(namespace: bytes, hash_alg: bytes, message: bytes, digests: dict[bytes, bytes] | None = None) -> bytes:
    """The data an sshsig signs; ``digests`` (hash name -> digest of ``message``) spares hashing a
    16 MiB manifest again for each of up to 256 .sshsig files."""
    digests = {} if digests is None else digests
    if hash_alg not in digests:
        digests[hash_alg] = hashlib.new(hash_alg.decode("ascii"), message).digest()
    digest = digests[hash_alg]
    return _SSHSIG_MAGIC + _string(namespace) + _string(b"") + _string(hash_alg) + _string(digest)


def make_sshsig(signer: Signer, message: bytes) -> bytes:
    """An armored OpenSSH signature (PROTOCOL.sshsig, namespace heparch-bundle, sha512) over ``message``."""
    namespace, hash_alg = SSHSIG_NAMESPACE.encode("ascii"), b"sha512"
    sig = signer.sign(_sshsig_signed_data(namespace, hash_alg, message))
    blob = (
        _SSHSIG_MAGIC
        + struct.pack(">I", 1)
        + _string(signer.public.blob)
        + _string(namespace)
        + _string(b"")
        + _string(hash_alg)
        + _string(_string(_KEY_TYPE) + _string(sig))
    )
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return ("\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n").encode("ascii")


# ---------------------------------------------------------------------------------------
# checking signatures


@dataclasses.dataclass(frozen=True)
class Signature:
    """A signature that verified (its key is not yet judged by any policy)."""

    location: str
    kind: Kind
    keyid: str
    role: str | None  # None for sshsig
    time: str | None = None


class _Bad(Exception):
    def __init__(self, code: str, message: str, *, expected: Any = None, found: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.expected, self.found = code, message, expected, found


def _b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64 (DSSE allows both); None when it is not valid base64."""
    if _B64_RE.fullmatch(text):
        alphabet = text
    elif _B64URL_RE.fullmatch(text):
        alphabet = text.replace("-", "+").replace("_", "/")
    else:
        return None
    padded = alphabet + "=" * (-len(alphabet) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except ValueError:
        return None


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


def _parse_envelope(data: bytes) -> tuple[bytes, str, bytes]:
    """(payload, keyid, sig) of a well-formed DSSE envelope, else _Bad E071."""
    try:
        obj = strictjson.loads(data)
    except ValueError as exc:  # StrictJSONError, and json's own ValueError for integers of more than 4300 digits
        raise _Bad(getattr(exc, "code", None) or "E071", f"envelope is not strict JSON: {exc}") from None
    env = _fields(obj, "envelope", {"payload", "payloadType", "signatures"}, exact=True, code="E071")
    if env["payloadType"] != PAYLOAD_TYPE:
        raise _Bad("E071", "wrong payloadType", expected=PAYLOAD_TYPE, found=env["payloadType"])
    payload = _b64decode(env["payload"]) if isinstance(env["payload"], str) else None
    if not payload:
        raise _Bad("E071", "payload is not non-empty base64")
    sigs = env["signatures"]
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise _Bad("E071", "signatures must be a list of exactly one signature (one envelope per key and role)")
    sig_obj = _fields(sigs[0], "signatures[0]", {"keyid", "sig"}, exact=True, code="E071")
    keyid = sig_obj["keyid"]
    if not isinstance(keyid, str) or not KEYID_RE.fullmatch(keyid):
        raise _Bad("E071", "signatures[0].keyid must be 64 lowercase hex digits", found=keyid)
    sig = _b64decode(sig_obj["sig"]) if isinstance(sig_obj["sig"], str) else None
    if sig is None or len(sig) != 64:
        raise _Bad("E071", "signatures[0].sig must be the base64 of a 64-byte Ed25519 signature")
    return payload, keyid, sig


def _real_time(text: str) -> bool:
    """Whether ``text`` (of the form YYYY-MM-DDTHH:MM:SSZ) names a real moment, not month 13 or hour 25."""
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def _parse_statement(payload: bytes) -> tuple[str, str, PublicKey, str, str]:
    """(subject sha256 hex, role, public key, key id, time) of a well-formed statement, else _Bad E072."""
    try:
        obj = strictjson.loads(payload)
    except ValueError as exc:  # StrictJSONError, and json's own ValueError for integers of more than 4300 digits
        raise _Bad(getattr(exc, "code", None) or "E072", f"payload is not strict JSON: {exc}") from None
    st = _fields(obj, "statement", {"_type", "subject", "predicateType", "predicate"}, exact=False, code="E072")
    if st["_type"] != STATEMENT_TYPE:
        raise _Bad("E072", "statement _type is not in-toto Statement v1", expected=STATEMENT_TYPE, found=st["_type"])
    if st["predicateType"] != PREDICATE_TYPE:
        raise _Bad("E072", "wrong predicateType", expected=PREDICATE_TYPE, found=st["predicateType"])
    subjects = st["subject"]
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise _Bad("E072", "subject must be a list of exactly one subject (the bundle)")
    subject = _fields(subjects[0], "subject[0]", {"name", "digest"}, exact=False, code="E072")
    digest = _fields(subject["digest"], "subject[0].digest", {"sha256"}, exact=False, code="E072")["sha256"]
    if not isinstance(subject["name"], str) or not isinstance(digest, str) or not KEYID_RE.fullmatch(digest):
        raise _Bad("E072", "subject[0] needs a string name and digest.sha256 of 64 lowercase hex digits")
    pred = _fields(st["predicate"], "predicate", {"role", "keyid", "publicKey", "time"}, exact=False, code="E072")
    role, keyid, key_text, time = pred["role"], pred["keyid"], pred["publicKey"], pred["time"]
    if not isinstance(role, str) or role_problem(role):
        raise _Bad("E072", "predicate.role is not a valid role name", found=role)
    if not isinstance(keyid, str) or not KEYID_RE.fullmatch(keyid):
        raise _Bad("E072", "predicate.keyid must be 64 lowercase hex digits", found=keyid)
    if not isinstance(time, str) or not _TIME_RE.fullmatch(time) or not _real_time(time):
        raise _Bad("E072", "predicate.time must be UTC YYYY-MM-DDTHH:MM:SSZ", found=time)
    if not isinstance(key_text, str) or not key_text.startswith("ssh-ed25519 "):
        raise _Bad("E072", "predicate.publicKey must be an OpenSSH line 'ssh-ed25519 AAAA...'")
    try:
        public = parse_public_key(key_text)
    except KeyFormatError as exc:
        raise _Bad("E072", f"predicate.publicKey: {exc}") from None
    return digest, role, public, keyid, time


def check_envelope(data: bytes, *, location: str, identity: str) -> Signature:
    """Check a DSSE envelope for the bundle ``identity``; raise :class:`SignatureError` when it fails."""
    try:
        return _check_envelope(data, location, identity)
    except _Bad as bad:
        raise SignatureError(f"{bad.code} {location}: {bad.message}", findings=[Finding(bad.code, location, bad.message, bad.expected, bad.found)]) from None


def _check_envelope(data: bytes, location: str, identity: str) -> Signature:
    payload, env_keyid, sig = _parse_envelope(data)
    digest, role, public, keyid, time = _parse_statement(payload)
    if public.keyid != keyid:
        raise _Bad("E073", "predicate.keyid is not the key id of predicate.publicKey", expected=public.keyid, found=keyid)
    if env_keyid != keyid:
        raise _Bad("E073", "signatures[0].keyid is not the signer's key id", expected=keyid, found=env_keyid)
    if not public.verify(sig, pae(PAYLOAD_TYPE, payload)):
        raise _Bad("E073", "the Ed25519 signature does not verify over the payload with predicate.publicKey")
    if "sha256:" + digest != identity:
        raise _Bad("E074", "signed for another bundle: the subject digest is not this bundle's identity", expected=identity, found="sha256:" + digest)
    return Signature(location, "dsse", keyid, role, time)


def _armored_body(text: str) -> str:
    """The base64 body of an armored SSH signature, its whitespace removed; E076 unless armored
    exactly as ssh-keygen reads it (nothing but whitespace may follow the END line)."""
    start = next((len(_ARMOR_BEGIN) + len(eol) for eol in ("\n", "\r\n") if text.startswith(_ARMOR_BEGIN + eol)), None)
    end = text.find("\n" + _ARMOR_END, start or 0)
    if start is None or end < 0 or text[end + 1 + len(_ARMOR_END) :].strip(_C_SPACE):
        raise _Bad("E076", f"not an armored SSH signature ({_ARMOR_BEGIN} ... {_ARMOR_END}, each on its own line)")
    return "".join(ch for ch in text[start:end] if ch not in _C_SPACE)


def _check_sshsig(data: bytes, location: str, message: bytes, digests: dict[bytes, bytes] | None = None) -> Signature:
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
    if blob is None or not blob.startswith(_SSHSIG_MAGIC):
        raise _Bad("E076", "the armored body is not padded standard base64 of an SSHSIG blob")
    try:
        pos = len(_SSHSIG_MAGIC)
        if len(blob) < pos + 4:
            raise KeyFormatError("truncated")
        (version,) = struct.unpack(">I", blob[pos : pos + 4])
        key_blob, pos = _read_string(blob, pos + 4)
        namespace, pos = _read_string(blob, pos)
        _reserved, pos = _read_string(blob, pos)
        hash_alg, pos = _read_string(blob, pos)
        wrapped, pos = _read_string(blob, pos)
        if pos != len(blob):
            raise KeyFormatError("bytes after the signature")
        public = _parse_blob(key_blob)
        sig_type, spos = _read_string(wrapped, 0)
        sig, spos = _read_string(wrapped, spos)
        if sig_type != _KEY_TYPE or len(sig) != 64 or spos != len(wrapped):
            raise KeyFormatError("the signature is not an ssh-ed25519 signature")
    except KeyFormatError as exc:
        raise _Bad("E076", f"malformed SSHSIG blob: {exc}") from None
    if version != 1:
        raise _Bad("E076", "unsupported SSHSIG version", expected=1, found=version)
    if namespace != SSHSIG_NAMESPACE.encode("ascii"):
        raise _Bad("E076", "wrong namespace", expected=SSHSIG_NAMESPACE, found=namespace.decode("ascii", "replace"))
    if hash_alg not in (b"sha512", b"sha256"):
        raise _Bad("E076", "unsupported hash algorithm", expected="sha512", found=hash_alg.decode("ascii", "replace"))
    if not public.verify(sig, _sshsig_signed_data(namespace, hash_alg, message, digests)):
        raise _Bad("E077", "the SSH signature does not verify over data/manifest.json")
    return Signature(location, "sshsig", public.keyid, None)


@dataclasses.dataclass
class SignatureCheck:
    """Findings about the signatures, the valid ones, and the policy's verdict (when one was given)."""

    findings: list[Finding]
    valid: list[Signature]
    invalid: list[tuple[str, str]]  # (location, code)
    trust: TrustOutcome | None

    def to_json(self, policy: TrustPolicy | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in self.valid:
            key = policy.key(s.keyid) if policy is not None else None
            if policy is None:
                status = "unverified"
            elif s.kind == "dsse" and s.role is not None and policy.trusts(s.keyid, s.role):
                status = "trusted"
            elif s.kind == "sshsig" and key is not None:
                status = "trusted-key"
            else:
                status = "untrusted"
            out.append({"file": s.location, "kind": s.kind, "role": s.role, "keyid": s.keyid, "signer": key.name if key else None, "status": status})
        out += [{"file": loc, "kind": None, "role": None, "keyid": None, "signer": None, "status": f"invalid ({code})"} for loc, code in self.invalid]
        return sorted(out, key=lambda o: o["file"])


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
    findings: list[Finding] = []
    valid: list[Signature] = []
    invalid: list[tuple[str, str]] = []
    digests: dict[bytes, bytes] = {}  # of manifest_bytes, by hash name: computed once, not once per .sshsig
    checks: list[tuple[str, Callable[[], Signature]]] = [
        (name, functools.partial(_check_in_bundle, name, in_bundle[name], identity, manifest_bytes, digests)) for name in sorted(in_bundle)
    ]
    checks += [(loc, functools.partial(_check_envelope, data, loc, identity)) for loc, data in sorted((detached or {}).items())]
    for location, check in checks:
        try:
            valid.append(check())
        except _Bad as exc:
            findings.append(Finding(exc.code, location, exc.message, exc.expected, exc.found))
            invalid.append((location, exc.code))
    findings += [f for s in valid if (f := _trust_finding(s, policy)) is not None]
    outcome = None
    if policy is not None:
        outcome = policy.evaluate((s.role, s.keyid) for s in valid if s.kind == "dsse" and s.role is not None)
        findings += [_unmet(r, policy_location) for r in outcome.roles if not r.met]
    return SignatureCheck(findings, valid, invalid, outcome)


def _check_in_bundle(name: str, data: bytes, identity: str, manifest_bytes: bytes, digests: dict[bytes, bytes]) -> Signature:
    """One signature entry of the bundle, checked against its file name; :class:`_Bad` if not valid."""
    base = name.removeprefix(layout.SIGNATURE_DIR)
    m = _NAME_RE.fullmatch(base)
    if m is None:
        raise _Bad("E070", "signature file name must be <role>.<keyid>.dsse.json or <role>.<keyid>.sshsig (role: 1-24 of a-z 0-9 -; keyid: 64 hex)")
    if m["suffix"] == DSSE_SUFFIX:
        sig = _check_envelope(data, name, identity)
        if (sig.role, sig.keyid) != (m["role"], m["keyid"]):
            expected = signature_name(sig.role or "", sig.keyid, "dsse")
            raise _Bad("E075", "file name's role and key id differ from the signed predicate's", expected=expected, found=base)
        return sig
    sig = _check_sshsig(data, name, manifest_bytes, digests)
    if sig.keyid != m["keyid"]:
        raise _Bad("E075", "file name's key id differs from the signing key's", expected=sig.keyid, found=m["keyid"])
    return sig


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


# ---------------------------------------------------------------------------------------
# signing a bundle


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
    import fcntl

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
    from heparch.verify import verify

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
) -> Signed:
    """Sign ``bundle`` for ``role``: add (or replace) this key's envelope, and with ``ssh`` its sshsig.

    With ``detached`` the files are written beside the bundle (``<bundle>.<role>.<keyid>.dsse.json``)
    and the bundle is left as it is. The identity never changes.
    """
    path = Path(bundle)
    problem = role_problem(role)
    if problem:
        raise InputError(f"--role: {problem}")
    time = time or signing_time()
    keyid = signer.public.keyid
    target = _in_place(path)
    with _locked(target) as fh:
        identity, name, manifest_bytes = _bundle_identity(target)
        files = {signature_name(role, keyid, "dsse"): make_envelope(signer, identity=identity, name=name, role=role, time=time)}
        if ssh:
            files[signature_name(role, keyid, "sshsig")] = make_sshsig(signer, manifest_bytes)
        if detached:
            written = []
            for fname, data in files.items():
                beside = path.with_name(f"{path.name}.{fname}")
                with writer.atomic_output(beside) as out:
                    out.write(data)
                written.append(str(beside))
            return Signed(identity, keyid, role, tuple(written))
        _rewrite(target, fh, identity, lambda sigs: sigs.update({layout.SIGNATURE_DIR + n: d for n, d in files.items()}))
        return Signed(identity, keyid, role, tuple(layout.SIGNATURE_DIR + n for n in files))


_DETACHED_SSHSIG_RE = re.compile(r"\.(?P<role>[a-z0-9][a-z0-9-]{0,23})\.(?P<keyid>[0-9a-f]{64})\.sshsig$")


def attach(bundle: Path | str, envelope: Path | str) -> Signed:
    """Add a detached DSSE envelope made elsewhere; it must verify and be made for this bundle.

    A detached ``<bundle>.<role>.<keyid>.sshsig`` (from ``--detached --ssh``) is attached too:
    it must verify over this bundle's ``data/manifest.json`` with the key its name gives.
    """
    path, source = _in_place(bundle), Path(envelope)
    data = _read_capped(source, "the envelope")
    if source.name.endswith(SSHSIG_SUFFIX):
        return _attach_sshsig(path, source, data)
    with _locked(path) as fh:
        identity, _, _ = _bundle_identity(path)
        sig = check_envelope(data, location=str(source), identity=identity)
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
        try:
            sig = _check_sshsig(data, str(source), manifest_bytes)
            if sig.keyid != m["keyid"]:
                raise _Bad("E075", "file name's key id differs from the signing key's", expected=sig.keyid, found=m["keyid"])
        except _Bad as bad:
            raise SignatureError(
                f"{bad.code} {source}: {bad.message}", findings=[Finding(bad.code, str(source), bad.message, bad.expected, bad.found)]
            ) from None
        name = layout.SIGNATURE_DIR + signature_name(m["role"], sig.keyid, "sshsig")
        _rewrite(path, fh, identity, lambda sigs: sigs.update({name: data}))
        return Signed(identity, sig.keyid, m["role"], (name,))


def _read_capped(path: Path, what: str) -> bytes:
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
    return {str(p): _read_capped(Path(p), "the signature") for p in paths}
