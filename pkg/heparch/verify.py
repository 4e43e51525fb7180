"""Verify a bundle in named levels (spec section 5): ``structure``, ``fixity``, ``full``.

One streaming pass reads the head, the signatures and the payload in their fixed
order with bounded memory. ``fixity`` imports neither numpy, scipy nor pyhf;
``full`` spools the components it checks to one unnamed temporary file (nothing is left
behind, even by kill -9) and checks them after the pass, one likelihood at a time.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from heparch import semantic
from heparch.errors import InputError
from heparch.findings import Finding, Report
from heparch.spec import limits
from heparch.spec.manifest_check import parse_manifest
from heparch.spec.models import FileEntry, Manifest
from heparch.store import layout, tar, tmpfiles, zframes
from heparch.store.reader import RawStream, StreamError, TarStream

if TYPE_CHECKING:
    from heparch.signing.check import SignatureCheck
    from heparch.signing.trust import TrustPolicy

Level = Literal["structure", "fixity", "full"]
LEVELS: tuple[Level, ...] = ("structure", "fixity", "full")
_HEAD_CAPS = {
    "bagit.txt": limits.BAGIT_TXT,
    "bag-info.txt": limits.BAG_INFO,
    layout.MANIFEST: limits.MANIFEST,
    "manifest-sha256.txt": limits.MANIFEST_SHA256,
    "manifest-sha512.txt": limits.MANIFEST_SHA512,
}
_CHECKED_ROLES = ("likelihood", "patchset", "patch", "simplified-likelihood", "results", "signal-interface")
_PIECE = zframes.MAX_FRAME_CONTENT  # blobs are hashed a frame at a time, from views of the frame (no copies)


@dataclasses.dataclass
class Verification:
    """What :func:`verify` found."""

    level: Level
    report: Report
    identity: str | None = None
    manifest: Manifest | None = None
    signatures: dict[str, bytes] = dataclasses.field(default_factory=dict)
    agent: str | None = None
    manifest_bytes: bytes | None = None
    trust: TrustPolicy | None = None
    signature_check: SignatureCheck | None = None

    @property
    def valid(self) -> bool:
        return self.report.valid

    def to_json(self) -> dict[str, object]:
        check = self.signature_check
        out: dict[str, object] = {
            "valid": self.valid,
            "identity": self.identity,
            "level": self.level,
            "findings": [f.to_json() for f in self.report.findings],
            "signatures": check.to_json(self.trust) if check is not None else [],
        }
        if self.trust is not None:
            out["trust"] = check.trust.to_json() if check is not None and check.trust is not None else None
        return out


def verify(
    path: Path | str,
    *,
    level: Level = "full",
    trust: TrustPolicy | None = None,
    detached: Sequence[Path | str] = (),
    trust_location: str = "trust policy",
) -> Verification:
    """Check the bundle at ``path``; never raises for a bad bundle, only for an unreadable path.

    Signatures (in the bundle and the ``detached`` envelopes) are checked before any payload
    is hashed: malformed or spliced ones are errors; valid ones count towards the ``trust``
    policy's thresholds (an unmet threshold is E078) or, without a policy, are warnings (W007).
    """
    _check_level(level)
    path = Path(path)
    extra: dict[str, bytes] = {}
    if detached:
        from heparch.signing.check import read_detached  # cryptography: loaded only to check signatures

        extra = read_detached(detached)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    with fh:
        return verify_open(fh, level=level, trust=trust, detached=extra, trust_location=trust_location)


def verify_open(
    fh: BinaryIO,
    *,
    level: Level = "full",
    trust: TrustPolicy | None = None,
    detached: Mapping[str, bytes] | None = None,
    trust_location: str = "trust policy",
) -> Verification:
    """Check the bundle read from the open file ``fh`` (from its current position), as :func:`verify` does.

    For callers that go on reading the same open file after verifying it (``arch extract``): a
    path opened twice may name another file the second time. ``detached`` holds envelopes by
    name, as :func:`heparch.signing.check.read_detached` returns them.
    """
    _check_level(level)
    extra = dict(detached or {})
    result = Verification(level, Report(), trust=trust)
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(Spool()) if level == "full" else None
        try:
            _Pass(result, TarStream(RawStream(fh)), level, spool, detached=extra, trust_location=trust_location).run()
        except StreamError as exc:
            result.report.extend(exc.findings)
            return result
        _check_spooled(result, spool)
    return result


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")


def _check_spooled(result: Verification, spool: Spool | None) -> None:
    """``full``'s semantic checks of the spooled components, once the pass found the bundle valid."""
    if spool is None or result.manifest is None or not result.report.valid:
        return

    result.report.extend(semantic.check_components(result.manifest, spool.read))


def check_head(fh: BinaryIO) -> tuple[Verification, TarStream]:
    """Check the head and the signature part of the bundle read from ``fh`` (from its current
    position) with ``structure``'s checks and caps, reading nothing of the payload.

    For readers that do not verify (``heparch.open()``, ``arch inspect``, ``ls``, ``cat``): memory
    is bounded by the caps of spec section 2.2.2 whatever the bundle declares. Returns the
    findings so far and the stream, positioned at the first payload entry when they are valid.
    """
    result = Verification("structure", Report())
    ts = TarStream(RawStream(fh))
    try:
        _Pass(result, ts, "structure", None, detached={}, trust_location="").run_head()
    except StreamError as exc:
        result.report.extend(exc.findings)
    return result, ts


class Spool:
    """The components ``full`` checks after the pass, one after the other in one unnamed
    temporary file (:func:`heparch.store.tmpfiles.spool`): a kill leaves nothing behind."""

    def __init__(self) -> None:
        self.file = tmpfiles.spool()
        self.where: dict[str, tuple[int, int]] = {}  # sha256 hex -> (offset, length)
        self._open: tuple[str, int] | None = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def begin(self, hex_: str) -> BinaryIO:
        """The file, positioned for ``hex_``'s bytes (the previous blob's extent recorded)."""
        self._close_extent()
        self._open = (hex_, self.file.seek(0, 2))
        return self.file

    def _close_extent(self) -> None:
        if self._open is not None:
            hex_, start = self._open
            self.where[hex_] = (start, self.file.seek(0, 2) - start)
            self._open = None

    def read(self, entry: FileEntry) -> bytes:
        """A spooled component's bytes (semantic's loader)."""
        self._close_extent()
        start, length = self.where[entry.hex]
        self.file.seek(start)
        return self.file.read(length)


def declared_cap_findings(manifest: Manifest) -> list[Finding]:
    """E018 for what the manifest declares beyond the caps of spec section 2.2.2: the number of
    files, the total payload (the distinct blobs' sizes) and the references to one blob."""
    out: list[Finding] = []
    if len(manifest.files) > limits.FILES:
        out.append(Finding("E018", layout.MANIFEST, f"lists {len(manifest.files)} files, more than the cap of {limits.FILES}"))
    payload = sum(size for size, _ in layout.blobs(manifest).values())
    if payload > limits.PAYLOAD:
        out.append(Finding("E018", layout.MANIFEST, f"declares {payload} bytes of payload, more than the cap of {limits.PAYLOAD} (256 GiB)"))
    hex_, count = _most_referenced(manifest)
    if count > limits.REFERENCES:
        out.append(Finding("E018", layout.MANIFEST, f"names blob sha256:{hex_} {count} times, more than the cap of {limits.REFERENCES} references"))
    return out


def _most_referenced(manifest: Manifest) -> tuple[str, int]:
    """The blob the most files name (sha256 hex), and how many do (("", 0) without files)."""
    return collections.Counter(f.hex for f in manifest.files).most_common(1)[0] if manifest.files else ("", 0)


def _is_signature_file(name: str) -> bool:
    """Whether ``name`` is directly under signatures/."""
    return name.startswith(layout.SIGNATURE_DIR) and "/" not in name[len(layout.SIGNATURE_DIR) :]


def _foreign_code(name: str) -> str:
    """The code of an entry met among the signatures that is not one: a blob too early (E020), a
    head entry or the frames listing again (E015), anything else (E019)."""
    if name.startswith(layout.BLOB_DIR):
        return "E020"
    return "E015" if name in layout.HEAD or name == layout.FRAMES else "E019"


class _Listed:
    """The blobs the manifest lists (sha256 hex -> (size, sha512)), met in ascending order as the payload is read."""

    def __init__(self, expected: dict[str, tuple[int, str]]) -> None:
        self._wanted = iter(expected.items())
        self._want = next(self._wanted, None)
        self._missing: list[str] = []

    def take(self, hex_: str) -> tuple[int, str] | None:
        """(size, sha512) of the blob ``hex_``, or None when the manifest does not list it; the
        listed blobs before it are missing."""
        while self._want is not None and self._want[0] < hex_:
            self._missing.append(self._want[0])
            self._want = next(self._wanted, None)
        if self._want is None or self._want[0] != hex_:
            return None
        found, self._want = self._want[1], next(self._wanted, None)
        return found

    def missing(self) -> list[str]:
        """The listed blobs the payload did not hold, once it has been read to its end."""
        rest = [] if self._want is None else [self._want[0]]
        return self._missing + rest + [hex_ for hex_, _ in self._wanted]


class _Pass:
    """The single streaming pass over the entries."""

    def __init__(self, result: Verification, ts: TarStream, level: Level, spool: Spool | None, *, detached: dict[str, bytes], trust_location: str) -> None:
        self.result, self.ts, self.level, self.spool = result, ts, level, spool
        self.detached, self.trust_location = detached, trust_location
        self.report = result.report
        self.pending: tuple[str, int] | None = None

    def _next(self) -> tuple[str, int] | None:
        if self.pending is not None:
            entry, self.pending = self.pending, None
            return entry
        return self.ts.next_header()

    def run(self) -> None:
        parts = self.run_head()
        if parts is None:
            return
        listing, head_frames, manifest = parts
        raw = self.ts.raw
        first_payload = len(raw.frames)
        if manifest is None:
            return
        expected = layout.blobs(manifest)
        raw.cap = raw.tell() + sum(tar.BLOCK + s + tar.padding(s) for s, _ in expected.values()) + len(tar.END)
        self._read_payload(manifest, expected)
        payload_frames = [(f.length, d) for f, d in raw.frames[first_payload:]]
        if listing != layout.frames_listing(head_frames, payload_frames):
            self.report.add("E007", layout.FRAMES, "the compressed frames differ from the digests recorded for them")

    def run_head(self) -> tuple[bytes, list[tuple[int, str]], Manifest | None] | None:
        """The head and the signature part, under the caps of spec section 2.2.2 (nothing of the
        payload is read): (frames listing, head frames, manifest), or None when the head is missing."""
        head = self._read_head()
        if head is None:
            return None
        raw = self.ts.raw
        if not raw.at_boundary():
            raise StreamError("E008", "bagit head", "the head part must end at a frame boundary")
        head_frames = [(f.length, d) for f, d in raw.frames]
        manifest_bytes = head[layout.MANIFEST]
        manifest = self._record_head(head)
        if manifest is not None:
            declared = declared_cap_findings(manifest)
            if declared:  # nothing more is read: the payload it declares is beyond what a reader takes
                self.report.extend(declared)
                return None
            self._compare_head(manifest, head)
        listing = self._signature_part(head, len(head_frames))
        self._check_signatures(manifest_bytes, self.result.signatures)  # before any payload is hashed (DESIGN section 3)
        return listing, head_frames, manifest

    def _record_head(self, head: dict[str, bytes]) -> Manifest | None:
        """The identity, the manifest (its findings reported; None when it does not parse) and the
        writing agent, recorded in the result."""
        manifest_bytes = head[layout.MANIFEST]
        self.result.identity = layout.identity(manifest_bytes)
        self.result.manifest_bytes = manifest_bytes
        manifest, findings = parse_manifest(manifest_bytes)
        self.report.extend(findings)
        self.result.manifest = manifest
        self.result.agent = layout.agent_of(head["bag-info.txt"])
        return manifest

    def _signature_part(self, head: dict[str, bytes], n_head_frames: int) -> bytes:
        """The signature part read (its signatures recorded in the result), its frames checked;
        the payload listing, whose length caps the frames read after it."""
        raw = self.ts.raw
        listing, signatures = self._read_signatures(head)
        # a payload frame beyond those the listing names is E007 when it is read: the frames a
        # reader records stay within what the capped listing holds, whatever the file's size
        raw.max_frames = len(raw.frames) + listing.count(b"\n") - n_head_frames
        self.result.signatures = signatures
        if not raw.at_boundary():
            raise StreamError("E008", layout.TAGMANIFEST, "the signature part must end at a frame boundary")
        if not all(f.stored for f, _ in raw.frames[n_head_frames:]):
            self.report.add("E008", "signature part", "frames of the signature part must hold only raw (stored) blocks")
        return listing

    def _check_signatures(self, manifest_bytes: bytes, signatures: dict[str, bytes]) -> None:
        if not (signatures or self.detached or self.result.trust is not None):
            return
        from heparch.signing.check import check_signatures  # cryptography: loaded only for a signed bundle or a policy

        check = check_signatures(
            identity=layout.identity(manifest_bytes),
            manifest_bytes=manifest_bytes,
            in_bundle=signatures,
            detached=self.detached,
            policy=self.result.trust,
            policy_location=self.trust_location,
        )
        self.result.signature_check = check
        self.report.extend(check.findings)

    def _read_head(self) -> dict[str, bytes] | None:
        head: dict[str, bytes] = {}
        for want in layout.HEAD:
            entry = self._next()
            if entry is None or not entry[0].startswith(tar.ROOT):
                self.report.add("E020", want, "required head entry missing")
                return None
            name, size = entry[0][len(tar.ROOT) :], entry[1]
            if name != want:
                self._misplaced_in_head(name, want, seen=name in head)
                return None
            cap = _HEAD_CAPS[name]
            if size > cap:
                self.report.add("E018", name, f"{size} bytes exceeds the cap of {cap}")
                return None
            head[name] = self.ts.read_data(name, size)
        return head

    def _misplaced_in_head(self, name: str, want: str, *, seen: bool) -> None:
        """The finding for ``name`` where the head needs ``want``: a later part begins early (E020),
        a head entry twice (E014) or out of order (E015), or an entry a bundle may not hold (E019)."""
        if name in (layout.FRAMES, layout.TAGMANIFEST) or name.startswith((layout.SIGNATURE_DIR, layout.BLOB_DIR)):
            self.report.add("E020", want, "required head entry missing", expected=want, found=name)
        elif name in layout.HEAD:
            self.report.add("E014" if seen else "E015", name, f"expected {want} at this point of the head", expected=want, found=name)
        else:
            self.report.add("E019", name, f"entry not allowed in a bundle (expected {want})", expected=want, found=name)

    def _compare_head(self, manifest: Manifest, head: dict[str, bytes]) -> None:
        agent = self.result.agent or ""
        expected = layout.head_files(manifest, head[layout.MANIFEST], agent)
        codes = {"bagit.txt": "E040", "bag-info.txt": "E041", "manifest-sha256.txt": "E042", "manifest-sha512.txt": "E043"}
        for name, code in codes.items():
            if head[name] != expected[name]:
                self.report.add(code, name, "does not match the file regenerated from data/manifest.json")
        if self.result.agent is None:
            self.report.add("E041", "bag-info.txt", "first line must be 'Bag-Software-Agent: <name> <version>', without control characters (CR included)")

    def _read_signatures(self, head: dict[str, bytes]) -> tuple[bytes, dict[str, bytes]]:
        """The signature part: the frames listing, the signature files (sorted, capped), then the tag manifest."""
        listing = self._read_listing()
        signatures: dict[str, bytes] = {}
        while True:
            name, size = self._next_in_signature_part()
            if name == layout.TAGMANIFEST:
                self._check_tag_manifest(size, head, {layout.FRAMES: listing, **signatures})
                return listing, signatures
            self._check_signature_entry(name, size, signatures)
            signatures[name] = self.ts.read_data(name, size)

    def _read_listing(self) -> bytes:
        entry = self._next()
        if entry is None or entry[0] != tar.ROOT + layout.FRAMES:
            raise StreamError("E020", layout.FRAMES, f"{layout.FRAMES} must follow the head")
        if entry[1] > limits.FRAMES_LISTING:
            raise StreamError("E018", layout.FRAMES, f"{entry[1]} bytes exceeds the cap of {limits.FRAMES_LISTING}")
        return self.ts.read_data(layout.FRAMES, entry[1])

    def _next_in_signature_part(self) -> tuple[str, int]:
        entry = self._next()
        if entry is None:
            self.report.add("E020", layout.TAGMANIFEST, "required tag manifest missing")
            raise StreamError("E020", layout.TAGMANIFEST, "archive ends before the tag manifest")
        return entry[0][len(tar.ROOT) :], entry[1]

    def _check_tag_manifest(self, size: int, head: dict[str, bytes], tag_files: dict[str, bytes]) -> None:
        if size > limits.TAGMANIFEST:
            raise StreamError("E018", layout.TAGMANIFEST, f"{size} bytes exceeds the cap of {limits.TAGMANIFEST}")
        data = self.ts.read_data(layout.TAGMANIFEST, size)
        if data != layout.tag_manifest(head, tag_files):
            self.report.add("E044", layout.TAGMANIFEST, "does not match the file regenerated from the tag files and signatures")

    @staticmethod
    def _check_signature_entry(name: str, size: int, signatures: dict[str, bytes]) -> None:
        """A signature file in its place: directly under signatures/, after the previous one, within the caps."""
        if not _is_signature_file(name):
            raise StreamError(_foreign_code(name), name, f"unexpected entry before {layout.TAGMANIFEST}")
        previous = next(reversed(signatures), "")
        if name <= previous:
            raise StreamError("E014" if name == previous else "E015", name, "signature files must be unique and sorted")
        if size > layout.MAX_SIGNATURE_SIZE or len(signatures) >= layout.MAX_SIGNATURES:
            raise StreamError("E018", name, "signature part exceeds its caps")

    def _read_payload(self, manifest: Manifest, expected: dict[str, tuple[int, str]]) -> None:
        spool_hexes = {f.hex for f in manifest.files if f.role in _CHECKED_ROLES} if self.level == "full" else set()
        listed = _Listed(expected)
        previous = ""
        while (entry := self._next()) is not None:
            name, size = entry[0][len(tar.ROOT) :], entry[1]
            hex_ = previous = self._blob_hex(name, previous)
            sha512 = self._listed_sha512(name, size, listed.take(hex_))
            self._blob(name, hex_, size, sha512, spool=hex_ in spool_hexes)
        for hex_ in listed.missing():  # reported only if the pass ends in order (else E015 says it all)
            self.report.add("E050", layout.BLOB_DIR + hex_, "blob listed in the manifest is missing")

    def _blob_hex(self, name: str, previous: str) -> str:
        """The digest a payload entry is named by, after ``previous``'s."""
        hex_ = name[len(layout.BLOB_DIR) :]
        if not name.startswith(layout.BLOB_DIR) or len(hex_) != 64 or hex_.strip("0123456789abcdef"):
            raise StreamError(self._misplaced_code(name), name, "only data/blobs/sha256/<64 hex> entries may follow the tag manifest")
        if hex_ <= previous:
            raise StreamError("E014" if hex_ == previous else "E015", name, "blobs must be unique and in ascending digest order")
        return hex_

    def _listed_sha512(self, name: str, size: int, listed: tuple[int, str] | None) -> str:
        """The sha512 the manifest lists for a blob of this ``size``; E051 or E052 stop the pass."""
        if listed is None:
            self.report.add("E051", name, "blob not listed in the manifest")
            raise StreamError("E051", name, "payload holds an unlisted blob; stopping")
        size_expected, sha512 = listed
        if size != size_expected:
            self.report.add("E052", name, "size differs from the manifest", expected=size_expected, found=size)
            raise StreamError("E052", name, "payload layout no longer matches the manifest; stopping")
        return sha512

    def _misplaced_code(self, name: str) -> str:
        """The code of an entry that is not a blob, met in the payload (spec section 2.2.1): a name seen
        before is a duplicate (E014), a signature file is out of place (E015), anything else is not allowed (E019)."""
        if name in (*layout.HEAD, layout.FRAMES, layout.TAGMANIFEST) or name in self.result.signatures:
            return "E014"
        return "E015" if _is_signature_file(name) else "E019"

    def _blob(self, name: str, hex_: str, size: int, sha512: str, *, spool: bool) -> None:
        chunks = self.ts.iter_data(name, size, _PIECE)
        if self.level == "structure":
            collections.deque(chunks, maxlen=0)  # read and drop, holding no frame while decompressing the next
            return
        out = self.spool.begin(hex_) if spool and self.spool is not None else None
        h256, h512 = _digests(chunks, out)
        if h256 != hex_:
            self.report.add("E053", name, "sha256 of the content differs from its name", expected=hex_, found=h256)
        elif h512 != sha512:
            self.report.add("E054", name, "sha512 of the content differs from the manifest", expected=sha512, found=h512)


def _digests(chunks: Iterator[memoryview], out: BinaryIO | None) -> tuple[str, str]:
    """The sha256 and sha512 hex of a blob's ``chunks``, each written to ``out`` too (if not None)."""
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    for chunk in chunks:
        h256.update(chunk)
        h512.update(chunk)
        if out is not None:
            out.write(chunk)
        # Let go of the frame before the next one is decompressed, so that at most one
        # frame's content is alive (measured: -14 MiB peak RSS, docs/performance.md).
        del chunk
    return h256.hexdigest(), h512.hexdigest()
