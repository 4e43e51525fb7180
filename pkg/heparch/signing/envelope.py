"""The signature formats (spec section 6.2-6.3): DSSE envelopes and OpenSSH sshsig, as written.

A signature says that the holder of a key approves a bundle, identified by its identity (the
SHA-256 of ``data/manifest.json``), in a role such as ``analysis-team``:

- a DSSE envelope (``signatures/<role>.<keyid>.dsse.json``) whose payload is an in-toto
  Statement v1 with the identity as subject digest and a heparch predicate
  (:data:`PREDICATE_TYPE`: role, key id, public key, time);
- optionally, in the same predicate, a ``replay`` member (:class:`ReplayRecord`): the envelope
  then also records a reproduction, a replay of every claimed point that agreed with the claims
  (``arch replay --attest``); readers that do not know the member ignore it;
- optionally an OpenSSH signature (``signatures/<role>.<keyid>.sshsig``, namespace
  ``heparch-bundle``) over the exact bytes of ``data/manifest.json``, which ``ssh-keygen -Y
  verify`` checks without heparch.

>>> pae("text/plain", b"hi")
b'DSSEv1 10 text/plain 2 hi'
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Mapping
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


@dataclasses.dataclass(frozen=True)
class ReplayedPoint:
    """One point of a recorded reproduction: its likelihood, the backend that replayed it, and
    ``worst_ratio``, the largest |replayed - claimed| / tolerance over its compared values (<= 1)."""

    likelihood: str
    point: str
    backend: str
    worst_ratio: float | None

    def to_json(self) -> dict[str, Any]:
        return {"likelihood": self.likelihood, "point": self.point, "backend": self.backend, "worst_ratio": self.worst_ratio}


@dataclasses.dataclass(frozen=True)
class ReplayRecord:
    """The ``replay`` member of a predicate (spec section 6.2): a replay of every claimed point that agreed.

    ``results`` maps each results component of the bundle (logical path) to its digest, which
    binds the record to the claims it reproduced; ``date`` is when it ran (UTC).
    """

    heparch: str
    platform: str
    date: str
    results: Mapping[str, str]
    points: tuple[ReplayedPoint, ...]

    @property
    def backends(self) -> list[str]:
        return sorted({p.backend for p in self.points})

    @property
    def worst_ratio(self) -> float | None:
        """The largest ``worst_ratio`` of the points (None when none has one)."""
        return max((p.worst_ratio for p in self.points if p.worst_ratio is not None), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "heparch": self.heparch,
            "platform": self.platform,
            "date": self.date,
            "backends": self.backends,
            "results": dict(sorted(self.results.items())),
            "points": [p.to_json() for p in self.points],
        }

    @classmethod
    def from_json(cls, obj: Any) -> ReplayRecord:
        """The record of a predicate's ``replay`` member; ValueError says which field is wrong."""
        rec = _members(obj, "replay", ("heparch", "platform", "date", "backends", "results", "points"))
        for key in ("heparch", "platform", "date"):
            if not isinstance(rec[key], str) or not rec[key]:
                raise ValueError(f"replay.{key} must be a non-empty string")
        record = cls(rec["heparch"], rec["platform"], rec["date"], _record_results(rec["results"]), _replayed_points(rec["points"]))
        if rec["backends"] != record.backends:
            raise ValueError("replay.backends must list, sorted, the backends of replay.points")
        return record


def _members(obj: Any, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` as a JSON object holding ``required`` (others are ignored: a later version may add some)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object")  # a ValueError: the checker maps it to its code
    missing = [k for k in required if k not in obj]
    if missing:
        raise ValueError(f"{what} has no {missing[0]!r}")
    return obj


def _record_results(results: Any) -> dict[str, str]:
    if not isinstance(results, dict) or not results or not all(isinstance(v, str) for v in results.values()):
        raise ValueError("replay.results must map each results component's logical path to its digest")
    return results


def _replayed_points(points: Any) -> tuple[ReplayedPoint, ...]:
    if not isinstance(points, list) or not points:
        raise ValueError("replay.points must be a non-empty list")
    return tuple(_replayed_point(p, i) for i, p in enumerate(points))


def _replayed_point(obj: Any, i: int) -> ReplayedPoint:
    p = _members(obj, f"replay.points[{i}]", ("likelihood", "point", "backend", "worst_ratio"))
    if not all(isinstance(p[k], str) and p[k] for k in ("likelihood", "point", "backend")):
        raise ValueError(f"replay.points[{i}]: likelihood, point and backend must be non-empty strings")
    return ReplayedPoint(p["likelihood"], p["point"], p["backend"], _worst_ratio(p["worst_ratio"], i))


def _worst_ratio(ratio: Any, i: int) -> float | None:
    """A replayed point's ``worst_ratio``: null, or a number from 0 to 1."""
    if ratio is None:
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not math.isfinite(ratio) or not 0 <= ratio <= 1:
        raise ValueError(f"replay.points[{i}].worst_ratio must be null or a number from 0 to 1 (a point that agreed with its claim)")
    return float(ratio)


def statement(*, identity: str, name: str, role: str, public: PublicKey, time: str, replay: ReplayRecord | None = None) -> dict[str, Any]:
    """The in-toto Statement v1 that a DSSE envelope signs (with ``replay``, a reproduction's record)."""
    predicate: dict[str, Any] = {"role": role, "keyid": public.keyid, "publicKey": public.openssh, "time": time}
    if replay is not None:
        predicate["replay"] = replay.to_json()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": identity.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def make_envelope(signer: Signer, *, identity: str, name: str, role: str, time: str, replay: ReplayRecord | None = None) -> bytes:
    """A DSSE envelope (JSON, keys sorted, 2-space indent, final newline) over the statement."""
    payload = strictjson.canonical(statement(identity=identity, name=name, role=role, public=signer.public, time=time, replay=replay))
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
