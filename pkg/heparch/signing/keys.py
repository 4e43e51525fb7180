"""Ed25519 keys (spec section 6.1): OpenSSH and PEM public keys, private keys, their key ids.

The only module of heparch that imports ``cryptography``. The key id is the lowercase hex
SHA-256 of the key's OpenSSH public-key blob (the bytes that ``ssh-keygen -l -E sha256``
fingerprints), so it depends on the public key alone. Encodings the ``cryptography`` package
would accept but RFC 8032 refuses (small-order points, non-canonical y, S >= L) are refused here.

>>> point_problem(bytes(32))
'a point of small order'
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import struct
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from heparch.errors import InputError

PASSPHRASE_ENV = "HEPARCH_PASSPHRASE"
KEY_TYPE = b"ssh-ed25519"
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class KeyFormatError(ValueError):
    """A public or private key that heparch cannot use; the message says why."""


def ssh_string(data: bytes) -> bytes:
    """An SSH wire-format string: uint32 length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def read_ssh_string(buf: bytes, pos: int) -> tuple[bytes, int]:
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
        return ssh_string(KEY_TYPE) + ssh_string(self.raw)

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


def parse_blob(blob: bytes) -> PublicKey:
    kind, pos = read_ssh_string(blob, 0)
    if kind != KEY_TYPE:
        raise KeyFormatError(f"key type {kind.decode('ascii', 'replace')!r} is not supported: heparch signs with Ed25519 (ssh-ed25519) keys only")
    raw, pos = read_ssh_string(blob, pos)
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
    blob = b64decode(fields[1])
    if blob is None:
        raise KeyFormatError("the key is not valid base64")
    return parse_blob(blob)


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
    return signer_from_text(data, where=str(path), passphrase=passphrase)


def signer_from_text(data: bytes, *, where: str, passphrase: bytes | None = None) -> Signer:
    """An Ed25519 private key from its text (OpenSSH or PEM PKCS#8), e.g. a CI secret in an
    environment variable; ``where`` names it in the :class:`InputError` that says what is wrong."""
    if data.lstrip().startswith((b"ssh-", b"-----BEGIN PUBLIC KEY")):
        raise InputError(f"{where}: is a public key; give the private key (the file without .pub)")
    key = _private_key(data, where, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{where}: not an Ed25519 key; make one with 'arch keygen -o NAME'")
    try:
        return Signer.from_private(key)
    except KeyFormatError as exc:  # a public key of small order cannot come from a real private key
        raise InputError(f"{where}: {exc}; make a new key with 'arch keygen -o NAME'") from None


def _private_key(data: bytes, path: Path | str, passphrase: bytes | None) -> Any:
    """The private key of an OpenSSH or PEM file (of any algorithm); :class:`InputError` for a
    missing, needless or wrong passphrase, or a file that is not a private key."""
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            return serialization.load_ssh_private_key(data, password=passphrase)
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        if passphrase is None:
            raise InputError(
                f"{path}: the key is encrypted; give its passphrase with passphrase_file=FILE or ${PASSPHRASE_ENV}", option="passphrase_file"
            ) from None
        raise InputError(f"{path}: the key is not encrypted; drop --passphrase-file and unset ${PASSPHRASE_ENV}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "wrong passphrase, or " if passphrase is not None else ""
        raise InputError(f"{path}: cannot load the private key ({hint}not an OpenSSH or PEM Ed25519 key: {exc})") from None


def b64decode(text: str) -> bytes | None:
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
