"""The signature formats (spec section 6.2-6.3): DSSE envelopes and OpenSSH sshsig, as written.

A signature says that the holder of a key approves a bundle, identified by its identity (the
SHA-256 of ``data/manifest.json``), in a role such as ``analysis-team``:

- a DSSE envelope (``signatures/<role>.<keyid>.dsse.json``) whose payload is an in-toto
  Statement v1 with the identity as subject digest and a heparch predicate
  (:data:`PREDICATE_TYPE`: role, key id, public key, time);
- optionally an OpenSSH signature (``signatures/<role>.<keyid>.sshsig``, namespace
  ``heparch-bundle``) over the exact bytes of ``data/manifest.json``, which ``ssh-keygen -Y
  verify`` checks without heparch.

>>> pae("text/plain", b"hi")
b'DSSEv1 10 text/plain 2 hi'
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import struct
from typing import Any, Literal

from heparch.errors import InputError
from heparch.signing.keys import KEY_TYPE, PublicKey, Signer, ssh_string
from heparch.spec import strictjson

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://heparch.org/spec/signature/v1"
SSHSIG_NAMESPACE = "heparch-bundle"
DSSE_SUFFIX = ".dsse.json"
SSHSIG_SUFFIX = ".sshsig"
SSHSIG_MAGIC = b"SSHSIG"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"

Kind = Literal["dsse", "sshsig"]


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


def sshsig_signed_data(namespace: bytes, hash_alg: bytes, message: bytes, digests: dict[bytes, bytes] | None = None) -> bytes:
    """The data an sshsig signs; ``digests`` (hash name -> digest of ``message``) spares hashing a
    16 MiB manifest again for each of up to 256 .sshsig files."""
    digests = {} if digests is None else digests
    if hash_alg not in digests:
        digests[hash_alg] = hashlib.new(hash_alg.decode("ascii"), message).digest()
    digest = digests[hash_alg]
    return SSHSIG_MAGIC + ssh_string(namespace) + ssh_string(b"") + ssh_string(hash_alg) + ssh_string(digest)


def make_sshsig(signer: Signer, message: bytes) -> bytes:
    """An armored OpenSSH signature (PROTOCOL.sshsig, namespace heparch-bundle, sha512) over ``message``."""
    namespace, hash_alg = SSHSIG_NAMESPACE.encode("ascii"), b"sha512"
    sig = signer.sign(sshsig_signed_data(namespace, hash_alg, message))
    blob = (
        SSHSIG_MAGIC
        + struct.pack(">I", 1)
        + ssh_string(signer.public.blob)
        + ssh_string(namespace)
        + ssh_string(b"")
        + ssh_string(hash_alg)
        + ssh_string(ssh_string(KEY_TYPE) + ssh_string(sig))
    )
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return ("\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n").encode("ascii")
