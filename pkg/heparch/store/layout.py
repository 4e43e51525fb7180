"""What a bundle holds besides its blobs: the BagIt tag files, all derived from the manifest.

There is one source of truth, ``data/manifest.json``: the writer derives every
tag file from it and the verifier regenerates them and compares bytes.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping

from heparch.spec import limits
from heparch.spec.models import Manifest

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
HEAD = ("bagit.txt", "bag-info.txt", "data/manifest.json", "manifest-sha256.txt", "manifest-sha512.txt")
TAGMANIFEST = "tagmanifest-sha256.txt"
FRAMES = "frames-sha256.txt"
BLOB_DIR = "data/blobs/sha256/"
SIGNATURE_DIR = "signatures/"
MANIFEST = "data/manifest.json"
MAX_MANIFEST = limits.MANIFEST
MAX_SIGNATURES = limits.SIGNATURES
MAX_SIGNATURE_SIZE = limits.SIGNATURE_SIZE


def identity(manifest_bytes: bytes) -> str:
    """The bundle identity: ``sha256:`` + hex sha256 of the manifest bytes."""
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def blobs(manifest: Manifest) -> dict[str, tuple[int, str]]:
    """Unique blobs by sha256 hex: (size, sha512 hex), in ascending hex order."""
    out: dict[str, tuple[int, str]] = {}
    for f in manifest.files:
        out.setdefault(f.hex, (f.size, f.fixity.sha512))
    return dict(sorted(out.items()))


def bag_info(manifest: Manifest, manifest_bytes: bytes, agent: str) -> bytes:
    """bag-info.txt: the writing software (outside the identity), the identity and Payload-Oxum."""
    problem = agent_problem(agent)
    if problem is not None:
        raise ValueError(f"Bag-Software-Agent {agent!r} {problem}")
    unique = blobs(manifest)
    octets = len(manifest_bytes) + sum(size for size, _ in unique.values())
    lines = [
        f"Bag-Software-Agent: {agent}",
        f"Bundle-Identity: {identity(manifest_bytes)}",
        f"Payload-Oxum: {octets}.{len(unique) + 1}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def payload_manifest(manifest: Manifest, manifest_bytes: bytes, algorithm: str) -> bytes:
    """manifest-sha256.txt or manifest-sha512.txt for the payload (manifest.json and blobs)."""
    entries = {MANIFEST: hashlib.new(algorithm, manifest_bytes).hexdigest()}
    for hex_, (_, sha512) in blobs(manifest).items():
        entries[BLOB_DIR + hex_] = hex_ if algorithm == "sha256" else sha512
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items())).encode("ascii")


def head_files(manifest: Manifest, manifest_bytes: bytes, agent: str) -> dict[str, bytes]:
    """The five head entries in their fixed order."""
    return {
        "bagit.txt": BAGIT_TXT,
        "bag-info.txt": bag_info(manifest, manifest_bytes, agent),
        MANIFEST: manifest_bytes,
        "manifest-sha256.txt": payload_manifest(manifest, manifest_bytes, "sha256"),
        "manifest-sha512.txt": payload_manifest(manifest, manifest_bytes, "sha512"),
    }


def frames_listing(head: list[tuple[int, str]], payload: list[tuple[int, str]]) -> bytes:
    """frames-sha256.txt: the compressed length and sha256 of every frame of the head and payload parts."""
    lines = [f"{part} {i} {length} {digest}\n" for part, frames in (("head", head), ("payload", payload)) for i, (length, digest) in enumerate(frames)]
    return "".join(lines).encode("ascii")


def tag_manifest(head: Mapping[str, bytes], tags: Mapping[str, bytes]) -> bytes:
    """tagmanifest-sha256.txt over the head tag files, frames-sha256.txt and the signature files."""
    entries = {name: hashlib.sha256(data).hexdigest() for name, data in head.items() if name != MANIFEST}
    entries.update({name: hashlib.sha256(data).hexdigest() for name, data in tags.items()})
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries.items())).encode("ascii")


def agent_problem(agent: str) -> str | None:
    """Why ``agent`` cannot be a Bag-Software-Agent value (a control character, CR included, or
    a line or paragraph separator: another BagIt reader would see a forged line), or None."""
    bad = next((c for c in agent if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    return None if bad is None else f"holds the control or line-break character U+{ord(bad):04X}"


def agent_of(bag_info_bytes: bytes) -> str | None:
    """The Bag-Software-Agent recorded in a bag-info.txt, if its first line has an acceptable one."""
    first = bag_info_bytes.split(b"\n", 1)[0].decode("utf-8", "replace")
    prefix = "Bag-Software-Agent: "
    if not first.startswith(prefix) or agent_problem(first[len(prefix) :]) is not None:
        return None
    return first[len(prefix) :]
