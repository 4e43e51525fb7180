#!/usr/bin/env python3
"""Generate the heparch bundle format 1.0 conformance vectors.

    python conformance/make_vectors.py            # (re)write conformance/1.0/{valid,invalid,warn}/ and VECTORS.md
    python conformance/make_vectors.py --check    # regenerate into a temporary directory; exit 1 on any difference

Every vector is a directory ``<kind>/<CODE>_<slug>/`` holding ``bundle.zst``, ``README.md``
(what is wrong and which MUST or SHOULD of spec/validation-codes.md it breaks) and
``expected.json`` (``{"codes", "level", "valid"}``, plus ``"identity"`` for valid and warn
vectors). Valid vectors are named ``OK_<slug>``; see conformance/1.0/PROTOCOL.md.

Vectors are built with heparch's own primitives (``heparch.store.tar`` entries, the tag files
of ``heparch.store.layout``, frames of ``heparch.store.zframes``, cut per part like
``heparch.store.writer``; an unaltered bundle is checked to be byte-identical to what
``writer.write_bundle`` writes) and then changed so that exactly the intended rule is broken:
the BagIt tag files, frames-sha256.txt and the tag manifest are regenerated around each
change. Frames that no zstd library writes (reserved bits, dictionary IDs, skippable frames,
oversize content) are put together by hand from raw and RLE blocks (RFC 8878).

The output is deterministic: nothing depends on the clock, the machine or the order of the
file system; the ``.zst`` bytes depend on the zstandard version (pinned by heparch).
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import filecmp
import gzip
import hashlib
import io
import json
import re
import shutil
import struct
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import zstandard

from heparch.components.workspace import pyhf_digest
from heparch.signing import envelope as sigformat
from heparch.signing.check import results_digests
from heparch.signing.keys import Signer
from heparch.spec import limits, strictjson, versions
from heparch.spec.codes import CODES
from heparch.store import layout, tar, writer, zframes

HERE = Path(__file__).resolve().parent
SUITE = HERE / "1.0"
TOOLS = HERE / "tools"
TOOL_PARTS = ("build", "extract", "import", "trust", "README.md")
GENERATED = ("valid", "invalid", "warn", "VECTORS.md")
KINDS = ("valid", "warn", "invalid")
AGENT = "heparch-conformance 1.0.0"
ROOT = tar.ROOT
MIB = 1024 * 1024
MAX_FRAME = zframes.MAX_FRAME_CONTENT

# ---------------------------------------------------------------------------------------
# zstd frames

#: turns the tar bytes of one part into its frames
Framer = Callable[[bytes], list[bytes]]


def chunked(frame: Callable[[bytes], bytes], size: int = MAX_FRAME) -> Framer:
    """Frames of at most ``size`` bytes of content each, as heparch's FrameWriter cuts a part."""
    return lambda data: [frame(data[i : i + size]) for i in range(0, len(data), size)]


def whole(frame: Callable[[bytes], bytes]) -> Framer:
    """The whole part in one frame, whatever its size."""
    return lambda data: [frame(data)] if data else []


COMPRESSED = chunked(zframes.compress_frame)
STORED = chunked(zframes.stored_frame)


def checksum32(content: bytes) -> bytes:
    """The zstd content checksum: the low 4 bytes of XXH64(content, seed 0), little endian."""
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(content)[-4:]


_RUN = re.compile(rb"\x00{64,}")  # zero runs: tar padding, end blocks, zero-filled blobs
_BLOCK_MAX = 128 * 1024


def blocks(content: bytes, *, block_type: int | None = None) -> bytes:
    """Raw blocks, with RLE blocks for runs of 64 or more zero bytes; the last one flagged."""
    segments: list[tuple[int, bytes]] = []
    pos = 0
    for m in _RUN.finditer(content):
        if m.start() > pos:
            segments.append((0, content[pos : m.start()]))
        segments.append((1, m.group()))
        pos = m.end()
    if pos < len(content) or not segments:
        segments.append((0, content[pos:]))
    pieces = [(kind, seg[i : i + _BLOCK_MAX]) for kind, seg in segments for i in range(0, max(len(seg), 1), _BLOCK_MAX)]
    out = bytearray()
    for n, (kind, piece) in enumerate(pieces):
        kind = kind if block_type is None else block_type
        last = n == len(pieces) - 1
        out += (int(last) | kind << 1 | len(piece) << 3).to_bytes(3, "little")
        out += piece[:1] if kind == 1 else piece
    return bytes(out)


def minimal_fcs_flag(size: int) -> int:
    return 0 if size < 256 else 1 if size < 65536 + 256 else 2


def hand_frame(
    content: bytes,
    *,
    single: bool = True,
    window_descriptor: int = 0,
    unused: bool = False,
    reserved: bool = False,
    checksum: bool = True,
    dict_id: int | None = None,
    fcs_flag: int | None = None,
    fcs: int | None = None,
    block_type: int | None = None,
) -> bytes:
    """One zstd frame written by hand from raw and RLE blocks; every header field can be chosen."""
    size = len(content) if fcs is None else fcs
    flag = minimal_fcs_flag(size) if fcs_flag is None else fcs_flag
    if flag == 0:
        fcs_field = size.to_bytes(1, "little") if single else b""
    elif flag == 1:
        fcs_field = (size - 256).to_bytes(2, "little")
    else:
        fcs_field = size.to_bytes(4 if flag == 2 else 8, "little")
    fhd = flag << 6 | int(single) << 5 | int(unused) << 4 | int(reserved) << 3 | int(checksum) << 2 | (0 if dict_id is None else 1)
    window = b"" if single else bytes([window_descriptor])
    dictionary = b"" if dict_id is None else bytes([dict_id])
    header = zframes.MAGIC + bytes([fhd]) + window + dictionary + fcs_field
    return header + blocks(content, block_type=block_type) + (checksum32(content) if checksum else b"")


def digests(frames: list[bytes]) -> list[tuple[int, str]]:
    return [(len(f), hashlib.sha256(f).hexdigest()) for f in frames]


# ---------------------------------------------------------------------------------------
# tar headers


def raw_header(
    name: str | bytes,
    size: int,
    *,
    typeflag: bytes = b"0",
    linkname: bytes = b"",
    mode: bytes = b"0000644\0",
    uid: bytes = b"0000000\0",
    mtime: bytes = b"00000000000\0",
    magic: bytes = b"ustar\x0000",
    uname: bytes = b"",
    devmajor: bytes = b"0000000\0",
    devminor: bytes = b"0000000\0",
    prefix: bytes = b"",
    checksum: bytes | None = None,
    size_field: bytes | None = None,
) -> bytes:
    """A ustar header with every field chosen; by default equal to :func:`heparch.store.tar.header`."""
    raw = name.encode("utf-8") if isinstance(name, str) else name
    block = bytearray(tar.BLOCK)
    block[0 : len(raw)] = raw
    block[100:108] = mode
    block[108:116] = uid
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size if size_field is None else size_field
    block[136:148] = mtime
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    block[265 : 265 + len(uname)] = uname
    block[329:337] = devmajor
    block[337:345] = devminor
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = checksum if checksum is not None else b"%06o\0 " % sum(block)
    return bytes(block)


def raw_entry(name: str | bytes, data: bytes, **fields: Any) -> bytes:
    return raw_header(name, len(data), **fields) + data + b"\0" * tar.padding(len(data))


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return f"{n}{body}".encode()


# ---------------------------------------------------------------------------------------
# components


def jbytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def workspace(obs: float = 5.0, channel: str = "SR") -> dict[str, Any]:
    return {
        "channels": [
            {
                "name": channel,
                "samples": [
                    {
                        "name": "bkg",
                        "data": [10.0, 5.0],
                        "modifiers": [
                            {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                            {"name": f"staterror_{channel}", "type": "staterror", "data": [1.0, 0.5]},
                        ],
                    }
                ],
            }
        ],
        "observations": [{"name": channel, "data": [11.0, obs]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu_SIG", "parameters": []}}],
        "version": "1.0.0",
    }


POINTS = [("pt_300_100", 300, 100), ("pt_400_100", 400, 100)]


def signal_ops(i: int = 0, where: str = "/channels/0/samples/1") -> list[dict[str, Any]]:
    sample = {"name": "signal", "data": [1.0 + i, 2.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
    return [{"op": "add", "path": where, "value": sample}]


def patchset(ws: dict[str, Any], *, digest: str | None = None, where: str = "/channels/0/samples/1") -> dict[str, Any]:
    return {
        "metadata": {
            "description": "conformance toy signal grid",
            "digests": {"sha256": digest or pyhf_digest(ws)},
            "labels": ["m1", "m2"],
            "references": {"hepdata": "ins0000001"},
        },
        "patches": [{"metadata": {"name": name, "values": [m1, m2]}, "patch": signal_ops(i, where)} for i, (name, m1, m2) in enumerate(POINTS)],
        "version": "1.0.0",
    }


def simplified(third_moments: list[float] | None = None, *, derived_from: str | None = None, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "observed": [11, 5],
        "background": [10.0, 5.0],
        "covariance": [[1.0, 0.1], [0.1, 0.25]],
        "signals": {name: [1.0 + i, 2.0] for i, (name, _, _) in enumerate(POINTS)},
        "labels": ["m1", "m2"],
        "values": {name: [m1, m2] for name, m1, m2 in POINTS},
    }
    if third_moments is not None:
        obj["third_moments"] = third_moments
    if derived_from is not None:
        obj["derived_from"] = {"likelihood": derived_from, "method": "asimov"}
    obj.update(extra)
    return obj


def results(likelihood: str, *, points: list[str] | None = None, cls_obs: float = 0.2, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "likelihood": likelihood,
        "backend": "pyhf",
        "settings": {"mu": 1.0, "level": 0.05, "test_stat": "qtilde", "calctype": "asymptotics", "calc_base_dist": "normal", "poi_bounds": [0.0, 10.0]},
        "software": {"pyhf": "0.7.6"},
        "tolerance": {"CLs": {"abs": 0.001, "rel": 0.01}, "mu_up": {"abs": 0.01, "rel": 0.01}},
        "points": {name: {"CLs_obs": cls_obs, "CLs_exp": [0.01, 0.05, 0.2, 0.5, 0.8]} for name in (points or [p for p, _, _ in POINTS])},
    }
    obj.update(extra)
    return obj


@dataclasses.dataclass
class File:
    """A file of the bundle: its logical path, content and manifest fields."""

    path: str
    data: bytes
    role: str = "attachment"
    media: str = "application/octet-stream"
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "role": self.role,
            "mediaType": self.media,
            "digest": "sha256:" + self.hex,
            "size": len(self.data),
            "fixity": {"sha512": hashlib.sha512(self.data).hexdigest()},
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def likelihood(path: str, ws: Any) -> File:
    return File(path, jbytes(ws), "likelihood", "application/json", {"pyhf.digest": "sha256:" + pyhf_digest(ws)})


def component(path: str, obj: Any, role: str, lk: str | None = None, **annotations: str) -> File:
    ann = dict(annotations)
    if lk is not None:
        ann["likelihood"] = lk
    return File(path, obj if isinstance(obj, bytes) else jbytes(obj), role, "application/json", ann)


def text(path: str, content: str | bytes, *, role: str = "attachment", media: str = "text/plain") -> File:
    return File(path, content.encode("utf-8") if isinstance(content, str) else content, role, media)


WS = workspace()
BKG = likelihood("BkgOnly.json", WS)
README = text("README.md", "Conformance toy analysis.\n", media="text/markdown")
ANALYSIS: dict[str, Any] = {
    "title": "Conformance toy analysis",
    "collaboration": "HEPARCH",
    "license": "CC-BY-4.0",
    "sqrt_s_TeV": 13,
    "luminosity_ifb": 139,
}
PINNED = "docker.io/pyhf/pyhf@sha256:" + hashlib.sha256(b"conformance container").hexdigest()


# ---------------------------------------------------------------------------------------
# bundles


def _shim(obj: Any) -> SimpleNamespace:
    """The parts of a manifest heparch.store.layout reads, taken from whatever entries are well formed."""
    files = []
    for f in obj.get("files", []) if isinstance(obj, dict) else []:
        try:
            hex_ = f["digest"].split(":", 1)[1]
            files.append(SimpleNamespace(hex=hex_, size=int(f["size"]), fixity=SimpleNamespace(sha512=f["fixity"]["sha512"])))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            continue
    return SimpleNamespace(files=files)


Edit = Callable[[Any], Any]


class Draft:
    """A bundle under construction: consistent by default; change any layer, then :meth:`build`.

    Each layer is derived from the one before unless a field overrides it:
    ``obj`` (the manifest as a dict) -> ``manifest`` (its bytes: RFC 8785 canonical) ->
    ``head()`` (the five head files, regenerated by heparch.store.layout) -> the tar bytes of
    the three parts (``head_tar``, ``payload_tar``, and the signature part made by
    :meth:`signature_tar` from the frames listing) -> frames (``*_framer``, then
    ``*_frames_edit``). frames-sha256.txt is always computed from the head and payload frames
    as finally written, so a change to frames breaks no other rule by accident.
    """

    def __init__(
        self,
        files: list[File],
        *,
        analysis: dict[str, Any] | None = ANALYSIS,
        top: dict[str, Any] | None = None,
        version: str = versions.FORMAT_VERSION,
    ) -> None:
        self.files = files
        obj: dict[str, Any] = {"bundleFormat": {"uri": versions.FORMAT_URI, "version": version}}
        if analysis:
            obj["analysis"] = dict(analysis)
        obj.update(top or {})
        obj["files"] = [f.entry() for f in sorted(files, key=lambda f: f.path)]
        self.obj = obj
        self.manifest: bytes | None = None
        self.head_override: dict[str, bytes] = {}
        self.omit: set[str] = set()  # head files left out (of the head and the tag manifest)
        self.signatures: dict[str, bytes] = {}
        self.extra_tags: dict[str, bytes] = {}  # more tag files before the tag manifest, listed in it
        self.extra_entries: list[bytes] = []  # raw tar entries before the tag manifest, not listed
        self.tagmanifest_edit: Edit | None = None
        self.listing_edit: Edit | None = None
        self.blobs: dict[str, bytes] = {f.hex: f.data for f in files}
        self.head_tar: bytes | None = None
        self.payload_tar: bytes | None = None
        self.signature_override: Callable[[bytes], bytes] | None = None
        self.head_framer: Framer = COMPRESSED
        self.payload_framer: Framer = COMPRESSED
        self.signature_framer: Framer = STORED
        self.head_frames_edit: Edit | None = None
        self.payload_frames_edit: Edit | None = None

    def plain(self) -> bool:
        """Whether only the manifest object was changed, so heparch's writer makes the same bytes."""
        return (
            self.manifest is None
            and not (self.head_override or self.omit or self.extra_tags or self.extra_entries)
            and self.tagmanifest_edit is self.listing_edit is self.signature_override is None
            and self.head_tar is self.payload_tar is None
            and self.head_framer is self.payload_framer is COMPRESSED
            and self.signature_framer is STORED
            and self.head_frames_edit is self.payload_frames_edit is None
            and self.blobs == {f.hex: f.data for f in self.files}
        )

    def manifest_bytes(self) -> bytes:
        return self.manifest if self.manifest is not None else strictjson.canonical(self.obj)

    def head(self) -> dict[str, bytes]:
        head = layout.head_files(_shim(self.obj), self.manifest_bytes(), AGENT)  # type: ignore[arg-type]
        head.update(self.head_override)
        return {name: data for name, data in head.items() if name not in self.omit}

    def head_entries(self) -> list[bytes]:
        head = self.head()
        return [tar.entry(ROOT + name, head[name]) for name in layout.HEAD if name in head]

    def blob_entries(self) -> list[bytes]:
        return [tar.entry(ROOT + layout.BLOB_DIR + h, d) for h, d in sorted(self.blobs.items())]

    def signature_tar(self, listing: bytes) -> bytes:
        """frames-sha256.txt, signature files (sorted), extra tag files and entries, the tag manifest."""
        if self.signature_override is not None:
            return self.signature_override(listing)
        tags = {layout.FRAMES: listing, **self.signatures, **self.extra_tags}
        tm = layout.tag_manifest(self.head(), tags)
        if self.tagmanifest_edit is not None:
            tm = self.tagmanifest_edit(tm)
        out = [tar.entry(ROOT + layout.FRAMES, listing)]
        out += [tar.entry(ROOT + name, self.signatures[name]) for name in sorted(self.signatures)]
        out += [tar.entry(ROOT + name, data) for name, data in self.extra_tags.items()]
        out += self.extra_entries
        out.append(tar.entry(ROOT + layout.TAGMANIFEST, tm))
        return b"".join(out)

    def parts_tar(self) -> tuple[bytes, bytes]:
        head = self.head_tar if self.head_tar is not None else b"".join(self.head_entries())
        payload = self.payload_tar if self.payload_tar is not None else b"".join(self.blob_entries()) + tar.END
        return head, payload

    def stream(self) -> bytes:
        """The whole tar stream (with the frames listing of the default framing)."""
        head, payload = self.parts_tar()
        listing = layout.frames_listing(digests(self.head_framer(head)), digests(self.payload_framer(payload)))
        return head + self.signature_tar(listing) + payload

    def build(self) -> bytes:
        head, payload = self.parts_tar()
        head_frames = self.head_framer(head)
        if self.head_frames_edit is not None:
            head_frames = self.head_frames_edit(head_frames)
        payload_frames = self.payload_framer(payload)
        if self.payload_frames_edit is not None:
            payload_frames = self.payload_frames_edit(payload_frames)
        listing = layout.frames_listing(digests(head_frames), digests(payload_frames))
        if self.listing_edit is not None:
            listing = self.listing_edit(listing)
        return b"".join([*head_frames, *self.signature_framer(self.signature_tar(listing)), *payload_frames])


def written_by_heparch(d: Draft) -> bytes:
    """The same bundle written by heparch.store.writer.write_bundle (to check :meth:`Draft.build`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b.zst"
        sizes = {h: len(data) for h, data in d.blobs.items()}
        writer.write_bundle(out, d.head(), d.signatures, sizes, lambda h: iter([d.blobs[h]]))
        return out.read_bytes()


# ---------------------------------------------------------------------------------------
# the registry


@dataclasses.dataclass
class Vector:
    kind: str  # valid, invalid, warn
    name: str  # directory name: <CODE>_<slug>
    codes: list[str]
    about: str
    make: Callable[[], tuple[bytes, str | None]]  # bundle bytes, identity (sha256 of the manifest) when known
    trust: dict[str, Any] | None = None  # a trust policy the verifier is given (PROTOCOL.md section 2)


VECTORS: list[Vector] = []


def vector(
    name: str, about: str, *, codes: list[str] | None = None, kind: str | None = None, trust: dict[str, Any] | None = None
) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register a vector; ``make`` returns the bundle bytes or a :class:`Draft` (then written as heparch writes it)."""
    code = name.split("_", 1)[0]
    kind = kind or ("valid" if code == "OK" else "warn" if code.startswith("W") else "invalid")
    expected = sorted(codes if codes is not None else ([] if code == "OK" else [code]))

    def deco(fn: Callable[[], Any]) -> Callable[[], Any]:
        def make() -> tuple[bytes, str | None]:
            out = fn()
            if isinstance(out, Draft):
                data = out.build()
                if out.plain() and data != written_by_heparch(out):
                    raise AssertionError(f"{name}: Draft.build differs from heparch.store.writer.write_bundle")
                return data, layout.identity(out.manifest_bytes())
            return out, None

        VECTORS.append(Vector(kind, name, expected, " ".join(about.split()), make, trust))
        return fn

    return deco


# ---------------------------------------------------------------------------------------
# valid vectors


@vector("OK_minimal_workspace", "The smallest useful bundle: one pyhf workspace (role likelihood) and the analysis metadata.")
def _() -> Draft:
    return Draft([BKG])


@vector("OK_patchset", "A background-only workspace and a pyhf PatchSet whose metadata.digests.sha256 is the workspace's pyhf digest; every patch applies.")
def _() -> Draft:
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), README])


@vector("OK_patch_files", "A workspace and two RFC 6902 patch files (role patch, one signal point each) that apply to it.")
def _() -> Draft:
    patches = [component(f"patches/patch.{name}.json", signal_ops(i), "patch", "BkgOnly.json", **{"patch.name": name}) for i, (name, _, _) in enumerate(POINTS)]
    return Draft([BKG, *patches])


@vector("OK_simplified_likelihood", "A simplified likelihood alone (observed, background, covariance, third moments within m3^2 <= 8 m2^3, signals, labels).")
def _() -> Draft:
    return Draft([component("SL/simplified.json", simplified([0.1, 0.05]), "simplified-likelihood")])


@vector(
    "OK_simplified_derived_with_results",
    "A workspace, a simplified likelihood derived from it (annotation and derived_from both name it) and claimed results for the simplified likelihood's signals.",
)
def _() -> Draft:
    sl = component("simplified.json", simplified([0.1, 0.05], derived_from="BkgOnly.json"), "simplified-likelihood", "BkgOnly.json")
    res = component("results/simplified.json", results("simplified.json"), "results", "simplified.json")
    return Draft([BKG, sl, res])


@vector("OK_results", "A workspace, its patchset and the claimed results (CLs observed and the five expected values) for every patch.")
def _() -> Draft:
    res = component("results.json", results("BkgOnly.json"), "results", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), res])


@vector("OK_code_attachments_containers", "Code (role code, with media types), attachments, a name, a created date and a container pinned by sha256 digest.")
def _() -> Draft:
    files = [
        BKG,
        text("code/fit.py", "import pyhf\nprint(pyhf.__version__)\n", role="code", media="text/x-python"),
        text("code/point.slha", "BLOCK MASS\n  1000022  100.0\n", role="code"),
        File("figures/limit.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "attachment", "image/png"),
        README,
    ]
    return Draft(files, top={"name": "toy-analysis", "created": "2020-01-01T00:00:00Z", "containers": [{"name": "pyhf", "reference": PINNED}]})


@vector("OK_multiple_likelihoods", "Two likelihoods in subdirectories, each with its own patchset and results; patchsets name their likelihood by annotation.")
def _() -> Draft:
    files = []
    for region, obs in (("RegionA", 5.0), ("RegionB", 7.0)):
        ws = workspace(obs, channel=f"SR_{region}")
        lk = f"{region}/BkgOnly.json"
        files += [
            likelihood(lk, ws),
            component(f"{region}/patchset.json", patchset(ws), "patchset", lk),
            component(f"{region}/results.json", results(lk), "results", lk),
        ]
    return Draft(files)


@vector("OK_unicode_nfc_path", "Logical paths with non-ASCII characters in Unicode NFC (the tar entry names stay ASCII: blobs are named by digest).")
def _() -> Draft:
    path = unicodedata.normalize("NFC", "docs/Überblick/résumé.txt")
    return Draft([BKG, text(path, "Zusammenfassung / résumé\n"), text("docs/日本語.md", "# 概要\n", media="text/markdown")])


@vector("OK_dedup_identical_content", "Two logical paths with identical content: the manifest lists both, the payload stores the blob once.")
def _() -> Draft:
    return Draft([BKG, text("a/notes.txt", "same bytes\n"), text("b/notes.txt", "same bytes\n")])


@vector("OK_empty_file", "An empty attachment (size 0): its blob is a tar entry without content or padding.")
def _() -> Draft:
    return Draft([BKG, text("empty.txt", b"")])


@vector("OK_blob_over_8mib", "A 9 MiB blob (zeros) whose entry spans two zstd frames: frames hold at most 8 MiB, and frame boundaries fall inside the blob.")
def _() -> Draft:
    return Draft([BKG, File("data/zeros.bin", b"\0" * (9 * MIB))])


@vector("OK_long_logical_path", "A logical path of 1000 bytes (segments of at most 255 bytes) and a deep directory tree.")
def _() -> Draft:
    path = "/".join(["x" * 200] * 4 + ["y" * 192 + ".txt"])
    assert len(path.encode()) == 1000, len(path)
    deep = "/".join("abcdefghijklmnopqrstuvwxyz") + ".txt"
    return Draft([BKG, text(path, "long\n"), text(deep, "deep\n")])


@vector(
    "OK_full_metadata",
    "Every analysis metadata field of format 1.0 (INSPIRE, arXiv, HEPData, DOI, contacts with an ORCID iD, keywords, an SPDX expression) and a non-integer luminosity.",
)
def _() -> Draft:
    analysis = {
        **ANALYSIS,
        "experiment": "TOY",
        "description": "A toy analysis for the conformance suite.",
        "inspire": "ins0000001",
        "arxiv": "2101.00001v2",
        "hepdata": "10.17182/hepdata.00001.v1/r1",
        "doi": "10.0000/toy",
        "license": "CC-BY-4.0 OR (MIT AND LicenseRef-toy)",
        "luminosity_ifb": 139.5,
        "keywords": ["toy", "conformance"],
        "contacts": [{"name": "Ada Physicist", "email": "ada@example.org", "affiliation": "Nowhere Lab", "orcid": "0000-0002-1825-0097"}],
    }
    return Draft([BKG], analysis=analysis, top={"name": "toy"})


@vector(
    "OK_raw_and_rle_blocks",
    "The head and payload frames are written by hand with raw and RLE blocks only (no compressed blocks): any block encoding within the frame-header profile is valid.",
)
def _() -> Draft:
    d = Draft([BKG, File("zeros.bin", b"\0" * 5000), README])
    d.head_framer = d.payload_framer = chunked(hand_frame)
    return d


@vector(
    "OK_frames_cut_mid_entry",
    "Every part is cut into frames of 700 bytes of content, so frame boundaries fall inside headers, contents and padding (each part still starts a new frame).",
)
def _() -> Draft:
    d = Draft([BKG, README])
    d.head_framer = d.payload_framer = chunked(zframes.compress_frame, 700)
    d.signature_framer = chunked(zframes.stored_frame, 700)
    return d


@vector(
    "OK_payload_level_19",
    "The head and payload frames are compressed at level 19 (heparch writes level 9): the level is not part of the format; frames-sha256.txt lists the frames as written.",
)
def _() -> Draft:
    d = Draft([BKG, README])
    d.head_framer = d.payload_framer = chunked(lambda data: zframes.compress_frame(data, level=19))
    return d


# ---------------------------------------------------------------------------------------
# warning vectors


@vector(
    "W001_unknown_fields_newer_minor",
    "A manifest written for format 1.1.0 with fields format 1.0 does not define (a top-level provenance object and a per-file encoding); a 1.0 reader accepts it and reports both.",
    codes=["W001", "W006"],
)
def _() -> Draft:
    d = Draft([BKG, README], version="1.1.0", top={"provenance": {"tool": "future-writer", "steps": 3}})
    d.obj["files"][0]["encoding"] = "utf-8"
    return d


@vector("W001_unknown_role", "A file whose role (dataset) format 1.0 does not define; it is treated as an attachment and reported.")
def _() -> Draft:
    return Draft([BKG, File("data/events.csv", b"x,y\n1,2\n", "dataset", "text/csv")])


@vector("W002_missing_license", "The analysis metadata gives no SPDX license.")
def _() -> Draft:
    return Draft([BKG], analysis={k: v for k, v in ANALYSIS.items() if k != "license"})


@vector("W003_missing_sqrt_s", "The analysis metadata gives no centre-of-mass energy (sqrt_s_TeV).")
def _() -> Draft:
    return Draft([BKG], analysis={k: v for k, v in ANALYSIS.items() if k != "sqrt_s_TeV"})


@vector("W004_missing_luminosity", "The analysis metadata gives no integrated luminosity (luminosity_ifb).")
def _() -> Draft:
    return Draft([BKG], analysis={k: v for k, v in ANALYSIS.items() if k != "luminosity_ifb"})


@vector("W002_no_analysis_metadata", "No analysis object at all: license, sqrt_s_TeV and luminosity_ifb are all missing.", codes=["W002", "W003", "W004"])
def _() -> Draft:
    return Draft([BKG], analysis=None)


@vector(
    "W013_free_text_identifiers",
    "Identifiers written as free text, as bundles made before they were checked have them: an INSPIRE id, an arXiv id, a DOI, an ORCID iD with a wrong check digit; each is reported, the bundle stays valid.",
)
def _() -> Draft:
    analysis = {
        **ANALYSIS,
        "inspire": "INSPIRE 1755298",
        "arxiv": "arXiv:1909.09226 [hep-ex]",
        "doi": "Phys. Rev. D 101 (2020) 032009",
        "contacts": [{"name": "Ada Physicist", "orcid": "0000-0002-1825-0098"}],
    }
    return Draft([BKG], analysis=analysis)


@vector("W014_license_id_not_in_the_list", "An SPDX license expression naming an id that is not in the SPDX License List the reader has (perhaps a newer one).")
def _() -> Draft:
    return Draft([BKG], analysis={**ANALYSIS, "license": "CC-BY-4.0 OR CC-BY-5.0"})


@vector("W005_results_unknown_field", "A results component with a field its schema does not know (comment); it is reported and ignored.")
def _() -> Draft:
    res = component("results.json", results("BkgOnly.json", comment="made by hand"), "results", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), res])


@vector("W005_simplified_unknown_field", "A simplified likelihood with a field its schema does not know (skewness_model).")
def _() -> Draft:
    return Draft([component("simplified.json", simplified(skewness_model="gamma"), "simplified-likelihood")])


@vector("W006_newer_minor_version", "A manifest that declares format 1.4.2 but uses only 1.0 fields: readable, with a warning.")
def _() -> Draft:
    return Draft([BKG], version="1.4.2")


def with_validation_region() -> dict[str, Any]:
    """:func:`workspace` with a one-bin validation channel VR, as published archives have."""
    ws = workspace()
    ws["channels"].append(
        {"name": "VR", "samples": [{"name": "bkg", "data": [20.0], "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}
    )
    ws["observations"].append({"name": "VR", "data": [21.0]})
    return ws


@vector(
    "W009_patch_leaves_observation",
    "A patch file that removes the validation channel VR but leaves its observation (as the ATLAS SUSY-2018-31 sbottom patches do); pyhf ignores the observation.",
)
def _() -> Draft:
    ops = [{"op": "remove", "path": "/channels/1"}, *signal_ops()]
    return Draft([likelihood("BkgOnly.json", with_validation_region()), component("patch.pt.json", ops, "patch", "BkgOnly.json", **{"patch.name": "pt"})])


@vector("W010_negative_sample_yield", "A sample with a negative yield in a bin whose background rate (10 - 1 = 9) stays positive; pyhf computes the model.")
def _() -> Draft:
    ws = workspace()
    ws["channels"][0]["samples"].append({"name": "fakes", "data": [-1.0, 0.5], "modifiers": []})
    return Draft([likelihood("BkgOnly.json", ws)])


@vector("W011_unused_parameter", "The measurement configures a parameter (bkg_shape) that no modifier of the workspace uses; pyhf ignores it.")
def _() -> Draft:
    ws = workspace()
    ws["measurements"][0]["config"]["parameters"] = [{"name": "bkg_shape", "bounds": [[-3.0, 3.0]]}]
    return Draft([likelihood("BkgOnly.json", ws)])


@vector(
    "W012_broken_measurement",
    "The first measurement starts bkg_norm (a normsys) at 7, outside its bounds [-5, 5]; the second works, and pyhf computes the likelihood with it (--measurement); no results claim with the first.",
)
def _() -> Draft:
    ws = workspace()
    good = copy.deepcopy(ws["measurements"][0])
    ws["measurements"][0]["config"]["parameters"] = [{"name": "bkg_norm", "inits": [7.0]}]
    ws["measurements"].append({**good, "name": "works"})
    return Draft([likelihood("BkgOnly.json", ws)])


# ---------------------------------------------------------------------------------------
# invalid: zstd frames


def base() -> Draft:
    return Draft([BKG, README])


def head_frame(**fields: Any) -> Draft:
    """The base bundle with its head part in one hand-made frame with the given header fields."""
    d = base()
    d.head_framer = whole(lambda data: hand_frame(data, **fields))
    return d


def edit_first_head_frame(edit: Callable[[bytearray], None]) -> Draft:
    def change(frames: list[bytes]) -> list[bytes]:
        first = bytearray(frames[0])
        edit(first)
        return [bytes(first), *frames[1:]]

    d = base()
    d.head_frames_edit = change
    return d


@vector("E001_empty_file", "The file is empty.")
def _() -> bytes:
    return b""


@vector("E001_uncompressed_tar", "The tar stream itself, not compressed into zstd frames: the file does not start with the zstd magic number.")
def _() -> bytes:
    return base().stream()


@vector("E002_reserved_bit", "The head frame's header has the reserved bit (bit 3 of the Frame_Header_Descriptor) set; nothing else changed.")
def _() -> Draft:
    return edit_first_head_frame(lambda f: f.__setitem__(4, f[4] | 0x08))


@vector(
    "E002_unused_bit",
    "The head frame's header has the unused bit (bit 4) set. zstd decoders ignore that bit, so without the profile this byte could change unnoticed.",
)
def _() -> Draft:
    return edit_first_head_frame(lambda f: f.__setitem__(4, f[4] | 0x10))


@vector("E002_no_content_checksum", "The head frame has no content checksum (Content_Checksum_Flag clear, no checksum after the last block).")
def _() -> Draft:
    return head_frame(checksum=False)


@vector("E002_dictionary_id", "The head frame declares a dictionary ID (1-byte Dictionary_ID field = 7).")
def _() -> Draft:
    return head_frame(dict_id=7)


@vector("E002_oversize_window", "The payload frame is not single-segment: its Window_Descriptor asks for a 2 GiB window (and it has no Frame_Content_Size).")
def _() -> Draft:
    d = base()
    d.payload_framer = whole(lambda data: hand_frame(data, single=False, window_descriptor=21 << 3))
    return d


@vector("E002_fcs_not_minimal", "The head frame's Frame_Content_Size uses a 4-byte field where a 2-byte field suffices.")
def _() -> Draft:
    return head_frame(fcs_flag=2)


@vector("E003_frame_content_over_8mib", "The payload (a 9 MiB blob) is one frame whose Frame_Content_Size exceeds 8 MiB (8388608 bytes).")
def _() -> Draft:
    d = Draft([BKG, File("zeros.bin", b"\0" * (9 * MIB))])
    d.payload_framer = whole(hand_frame)
    return d


@vector("E003_empty_frame", "An empty frame (Frame_Content_Size 0) after the head frame, listed in frames-sha256.txt as a head frame.")
def _() -> Draft:
    d = base()
    d.head_frames_edit = lambda frames: [*frames, hand_frame(b"", fcs=0)]
    return d


@vector("E004_checksum_mismatch", "The content checksum of the head frame is wrong (its first byte inverted); the frame decompresses otherwise.")
def _() -> Draft:
    def change(f: bytearray) -> None:
        f[-4] ^= 0xFF

    return edit_first_head_frame(change)


@vector("E004_content_size_mismatch", "The head frame's Frame_Content_Size is one byte larger than the content its blocks hold.")
def _() -> Draft:
    d = base()
    d.head_framer = whole(lambda data: hand_frame(data, fcs=len(data) + 1))
    return d


@vector("E004_reserved_block_type", "The head frame has a block of the reserved block type 3.")
def _() -> Draft:
    return head_frame(block_type=3)


@vector("E005_truncated_mid_frame", "The file is cut in the middle of its last frame's blocks.")
def _() -> bytes:
    data = base().build()
    last = list(zframes.walk_frames(io.BytesIO(data)))[-1]
    return data[: last.offset + last.length // 2]


@vector("E005_truncated_in_checksum", "The file's last two bytes (half of the last frame's content checksum) are missing.")
def _() -> bytes:
    return base().build()[:-2]


@vector("E005_truncated_frame_header", "The file is cut inside the second frame's header (after its magic number and descriptor).")
def _() -> bytes:
    data = base().build()
    second = list(zframes.walk_frames(io.BytesIO(data)))[1]
    return data[: second.offset + 5]


@vector("E006_skippable_frame", "A skippable frame (magic 0x184D2A50) after the head frame, listed in frames-sha256.txt as a head frame.")
def _() -> Draft:
    d = base()
    skippable = b"\x50\x2a\x4d\x18" + (8).to_bytes(4, "little") + b"metadata"
    d.head_frames_edit = lambda frames: [*frames, skippable]
    return d


@vector("E006_trailing_garbage", "Sixteen bytes that are not a zstd frame follow the last frame.")
def _() -> bytes:
    return base().build() + b"NOT A ZSTD FRAME"


# ---------------------------------------------------------------------------------------
# invalid: frame digests and part boundaries


@vector("E007_wrong_frame_digest", "frames-sha256.txt gives a wrong sha256 for the payload frame (the tag manifest covers the listing as written).")
def _() -> Draft:
    d = base()
    d.listing_edit = lambda listing: re.sub(rb"^(payload 0 \d+ )[0-9a-f]{64}", rb"\g<1>" + b"0" * 64, listing, flags=re.M)
    return d


@vector(
    "E007_recompressed_head", "The head frame was recompressed at level 3 after frames-sha256.txt recorded the level-9 frame: same content, other frame bytes."
)
def _() -> bytes:
    d = base()
    head, _ = d.parts_tar()
    d.listing_edit = lambda listing: layout.frames_listing(digests(COMPRESSED(head)), digests(COMPRESSED(d.parts_tar()[1])))
    d.head_framer = chunked(lambda data: zframes.compress_frame(data, level=3))
    data = d.build()
    assert zframes.compress_frame(head, level=3) != zframes.compress_frame(head)
    return data


@vector("E007_unlisted_payload_frame", "frames-sha256.txt leaves out the last payload frame (the payload is cut into two frames).")
def _() -> Draft:
    d = base()
    d.payload_framer = chunked(zframes.compress_frame, 1024)
    d.listing_edit = lambda listing: b"".join(line for line in listing.splitlines(keepends=True) if not line.startswith(b"payload 1 "))
    return d


@vector("E008_single_frame", "The whole tar stream in one compressed frame: the head, signature and payload parts do not start new frames.")
def _() -> bytes:
    return zframes.compress_frame(base().stream())


@vector("E008_compressed_signature_part", "The signature part (frames-sha256.txt, the tag manifest) is in a compressed frame, not raw (stored) blocks.")
def _() -> Draft:
    d = base()
    d.signature_framer = COMPRESSED
    return d


@vector("E008_rle_in_signature_part", "The signature part's frame uses RLE blocks for the zero padding: only raw (stored) blocks are allowed there.")
def _() -> Draft:
    d = base()
    d.signature_framer = whole(hand_frame)
    return d


@vector("E008_signature_and_payload_one_frame", "The signature part and the payload share one stored frame: the payload does not start a new frame.")
def _() -> bytes:
    d = base()
    head, payload = d.parts_tar()
    head_frames = COMPRESSED(head)
    listing = layout.frames_listing(digests(head_frames), [])
    return b"".join(head_frames) + zframes.stored_frame(d.signature_tar(listing) + payload)


# ---------------------------------------------------------------------------------------
# invalid: tar


def with_extra(d: Draft, *entries: bytes) -> Draft:
    """``d`` with raw ``entries`` before the tag manifest (before any length cap applies)."""
    d.extra_entries = list(entries)
    return d


def with_head_entry(d: Draft, name: str, make: Callable[[str, bytes], bytes]) -> Draft:
    """``d`` with head entry ``name`` written by ``make(full_name, data)`` instead of tar.entry."""
    head = d.head()
    d.head_tar = b"".join(make(ROOT + n, head[n]) if n == name else tar.entry(ROOT + n, head[n]) for n in layout.HEAD)
    return d


@vector("E010_bad_header_checksum", "The header of bag-info.txt has a wrong checksum field (one more than the sum of its bytes).")
def _() -> Draft:
    def make(name: str, data: bytes) -> bytes:
        value = int(tar.header(name, len(data))[148:154], 8) + 1
        return raw_header(name, len(data), checksum=b"%06o\0 " % value) + data + b"\0" * tar.padding(len(data))

    return with_head_entry(base(), "bag-info.txt", make)


@vector("E010_nonzero_mtime", "The header of data/manifest.json has mtime 1700000000 instead of 0 (checksum recomputed).")
def _() -> Draft:
    return with_head_entry(base(), layout.MANIFEST, lambda n, data: raw_entry(n, data, mtime=b"%011o\0" % 1700000000))


@vector("E010_executable_mode", "The header of bagit.txt has mode 0755 instead of 0644 (checksum recomputed).")
def _() -> Draft:
    return with_head_entry(base(), "bagit.txt", lambda n, data: raw_entry(n, data, mode=b"0000755\0"))


@vector("E010_owner_name", "The header of manifest-sha256.txt names its owner (uname root) where the profile wants an empty name.")
def _() -> Draft:
    return with_head_entry(base(), "manifest-sha256.txt", lambda n, data: raw_entry(n, data, uname=b"root"))


@vector("E010_gnu_magic", "The header of bagit.txt carries the old GNU magic 'ustar  \\0' instead of POSIX 'ustar\\0' + '00'.")
def _() -> Draft:
    return with_head_entry(base(), "bagit.txt", lambda n, data: raw_entry(n, data, magic=b"ustar  \0"))


@vector(
    "E010_prefix_split",
    "The header of bagit.txt splits its short name into prefix 'bundle' and name 'bagit.txt': the same name, but not the canonical header (names of at most 100 bytes go whole in the name field).",
)
def _() -> Draft:
    return with_head_entry(base(), "bagit.txt", lambda n, data: raw_entry(b"bagit.txt", data, prefix=b"bundle"))


@vector("E011_symlink", "A symbolic link entry bundle/data/passwd -> /etc/passwd before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/passwd", 0, typeflag=b"2", linkname=b"/etc/passwd"))


@vector("E011_hardlink", "A hard link entry bundle/data/link -> bundle/bagit.txt before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/link", 0, typeflag=b"1", linkname=b"bundle/bagit.txt"))


@vector("E011_char_device", "A character device entry bundle/data/null (major 1, minor 3) before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/null", 0, typeflag=b"3", devmajor=b"0000001\0", devminor=b"0000003\0"))


@vector("E011_fifo", "A FIFO entry bundle/data/pipe before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/pipe", 0, typeflag=b"6"))


@vector("E011_directory", "A directory entry bundle/data/ (type 5) before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/", 0, typeflag=b"5", mode=b"0000755\0"))


@vector("E011_contiguous_file", "A contiguous-file entry (type 7, which many tar readers treat as a regular file) before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/signatures/contiguous", b"data\n", typeflag=b"7"))


@vector("E012_dotdot", "A regular file entry named bundle/../evil.txt (traversal with '..').")
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/../evil.txt", b"evil\n"))


@vector("E012_absolute", "A regular file entry with the absolute name /tmp/evil.txt.")
def _() -> Draft:
    return with_extra(base(), raw_entry("/tmp/evil.txt", b"evil\n"))


@vector("E012_backslash", "A regular file entry named bundle\\..\\evil.txt (backslashes, a traversal on Windows).")
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle\\..\\evil.txt", b"evil\n"))


@vector("E012_outside_root", "A regular file entry named other/evil.txt, outside bundle/.")
def _() -> Draft:
    return with_extra(base(), raw_entry("other/evil.txt", b"evil\n"))


@vector("E012_control_character", "A regular file entry whose name holds a newline (bundle/evil\\n.txt).")
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/evil\n.txt", b"evil\n"))


@vector(
    "E012_disallowed_character", "A regular file entry whose name holds a space (bundle/signatures/a b), outside the entry-name characters A-Z a-z 0-9 . _ / -."
)
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/signatures/a b", b"x\n"))


@vector("E013_pax_header", "A PAX extended header (type x) whose path record renames the next entry to ../../evil.txt.")
def _() -> Draft:
    pax = raw_entry("bundle/PaxHeader/evil.txt", pax_record("path", "../../evil.txt"), typeflag=b"x")
    return with_extra(base(), pax, tar.entry("bundle/signatures/evil.txt", b"evil\n"))


@vector("E013_pax_global_header", "A PAX global header (type g) with a comment record at the start of the archive.")
def _() -> Draft:
    d = base()
    d.head_tar = raw_entry("bundle/pax_global_header", pax_record("comment", "made by hand"), typeflag=b"g") + b"".join(d.head_entries())
    return d


@vector("E013_gnu_longname", "A GNU long-name header (type L) giving the next entry a 120-character name.")
def _() -> Draft:
    long_name = "bundle/signatures/" + "n" * 102
    return with_extra(base(), raw_entry("bundle/LongLink", long_name.encode() + b"\0", typeflag=b"L"), tar.entry("bundle/signatures/short", b"x"))


@vector("E014_duplicate_blob", "The payload holds blob A twice; the manifest lists A and B (same size), so the payload length is what the manifest implies.")
def _() -> Draft:
    a, b = sorted([text("one.txt", "first blob\n"), text("two.txt", "other blob\n")], key=lambda f: f.hex)
    d = Draft([BKG, a, b])
    d.payload_tar = (
        b"".join(d.blob_entries()).replace(tar.entry(ROOT + layout.BLOB_DIR + b.hex, b.data), tar.entry(ROOT + layout.BLOB_DIR + a.hex, a.data)) + tar.END
    )
    return d


@vector("E015_head_order", "bag-info.txt comes before bagit.txt in the head.")
def _() -> Draft:
    d = base()
    entries = d.head_entries()
    d.head_tar = b"".join([entries[1], entries[0], *entries[2:]])
    return d


@vector("E015_blob_order", "The payload blobs are in descending digest order.")
def _() -> Draft:
    d = base()
    d.payload_tar = b"".join(reversed(d.blob_entries())) + tar.END
    return d


def signature_part(d: Draft, names: list[str]) -> Callable[[bytes], bytes]:
    """A signature part holding entries ``names`` (with content from d.signatures) in the order given."""

    def make(listing: bytes) -> bytes:
        tm = layout.tag_manifest(d.head(), {layout.FRAMES: listing, **d.signatures})
        entries = [tar.entry(ROOT + layout.FRAMES, listing), *(tar.entry(ROOT + n, d.signatures[n]) for n in names)]
        return b"".join([*entries, tar.entry(ROOT + layout.TAGMANIFEST, tm)])

    return make


@vector("E015_signature_order", "Two signature entries in descending name order (signatures/b.sshsig before signatures/a.sshsig).")
def _() -> Draft:
    d = base()
    d.signatures = {"signatures/a.sshsig": b"a\n", "signatures/b.sshsig": b"b\n"}
    d.signature_override = signature_part(d, ["signatures/b.sshsig", "signatures/a.sshsig"])
    return d


@vector("E014_duplicate_signature", "The same signature entry (signatures/a.sshsig) twice in the signature part.")
def _() -> Draft:
    d = base()
    d.signatures = {"signatures/a.sshsig": b"a\n"}
    d.signature_override = signature_part(d, ["signatures/a.sshsig", "signatures/a.sshsig"])
    return d


@vector("E016_nonzero_padding", "The zero padding after bagit.txt holds a non-zero byte.")
def _() -> Draft:
    return with_head_entry(base(), "bagit.txt", lambda n, data: tar.entry(n, data)[:-1] + b"X")


@vector("E016_nonzero_blob_padding", "The zero padding after a payload blob holds a non-zero byte.")
def _() -> Draft:
    d = base()
    entries = d.blob_entries()
    entries[0] = entries[0][:-1] + b"\x01"
    d.payload_tar = b"".join(entries) + tar.END
    return d


@vector("E016_bad_end_block", "The second end-of-archive block is not zero (same length, so within the length the manifest implies).")
def _() -> Draft:
    d = base()
    d.payload_tar = b"".join(d.blob_entries()) + b"\0" * tar.BLOCK + b"\x01" + b"\0" * (tar.BLOCK - 1)
    return d


def head_cut(cut: Callable[[list[bytes]], int]) -> Draft:
    """The tar stream ends inside the head, at ``cut(head entries)``: no signature part, no payload."""
    d = base()
    d.head_tar = b"".join(d.head_entries())[: cut(d.head_entries())]
    d.signature_override = lambda listing: b""
    d.payload_tar = b""
    return d


@vector("E017_truncated_in_header", "The tar stream ends 100 bytes into the header of manifest-sha256.txt (every frame is intact).")
def _() -> Draft:
    return head_cut(lambda e: len(b"".join(e[:3])) + 100)


@vector("E017_truncated_in_manifest", "The tar stream ends in the middle of data/manifest.json's content (every frame is intact).")
def _() -> Draft:
    return head_cut(lambda e: len(b"".join(e[:2])) + tar.BLOCK + 40)


@vector("E017_truncated_in_blob", "The tar stream ends in the middle of the last blob's content (every frame is intact).")
def _() -> Draft:
    d = base()
    entries = d.blob_entries()
    d.payload_tar = b"".join(entries[:-1]) + entries[-1][: tar.BLOCK + 10]
    return d


@vector("E017_truncated_after_tag_manifest", "The tar stream ends right after the tag manifest: no payload and no end-of-archive blocks.")
def _() -> Draft:
    d = base()
    d.payload_tar = b""
    return d


@vector("E017_no_end_blocks", "The tar stream ends after the last blob, without the two end-of-archive blocks.")
def _() -> Draft:
    d = base()
    d.payload_tar = b"".join(d.blob_entries())
    return d


@vector("E018_trailing_zero_block", "A third zero block follows the end-of-archive blocks: the stream is longer than the manifest implies.")
def _() -> Draft:
    d = base()
    d.payload_tar = b"".join(d.blob_entries()) + tar.END + b"\0" * tar.BLOCK
    return d


@vector("E018_trailing_frame", "A valid extra frame (holding text) follows the frame with the end-of-archive blocks; frames-sha256.txt lists it.")
def _() -> Draft:
    d = base()
    d.payload_frames_edit = lambda frames: [*frames, zframes.compress_frame(b"trailing data after the archive\n")]
    return d


@vector(
    "E018_bomb",
    "Eight more frames of 8 MiB of zeros each (64 MiB from 2 KiB) follow the archive, listed in frames-sha256.txt: a decompression bomb beyond the length the manifest implies.",
)
def _() -> Draft:
    bomb = hand_frame(b"\0" * MAX_FRAME)
    d = base()
    d.payload_frames_edit = lambda frames: [*frames, *[bomb] * 8]
    return d


@vector(
    "E018_entry_count",
    f"{layout.MAX_SIGNATURES + 1} (empty) signature entries before the tag manifest: more than the cap of {layout.MAX_SIGNATURES} (entry-count exhaustion).",
)
def _() -> Draft:
    d = base()
    d.signatures = {f"signatures/s{i:03d}.dsse.json": b"" for i in range(layout.MAX_SIGNATURES + 1)}
    return d


@vector(
    "E018_manifest_too_large",
    f"data/manifest.json is {layout.MAX_MANIFEST >> 20} MiB + 1 byte (the canonical manifest followed by spaces), over the {layout.MAX_MANIFEST >> 20} MiB cap.",
)
def _() -> Draft:
    d = base()
    canonical = strictjson.canonical(d.obj)
    d.manifest = canonical + b" " * (layout.MAX_MANIFEST + 1 - len(canonical))
    return d


@vector("E019_fetch_txt", "A BagIt fetch.txt before the tag manifest (and listed in it): fetch.txt is forbidden.")
def _() -> Draft:
    d = base()
    d.extra_tags = {"fetch.txt": b"https://example.org/blob 11 data/blobs/sha256/" + b"0" * 64 + b"\n"}
    return d


@vector("E019_extra_tag_file", "An extra tag file (tagmanifest-md5.txt) before the tag manifest (and listed in it).")
def _() -> Draft:
    d = base()
    d.extra_tags = {"tagmanifest-md5.txt": b"d41d8cd98f00b204e9800998ecf8427e  bagit.txt\n"}
    return d


@vector("E019_extra_data_file", "An entry data/extra.txt before the tag manifest: under data/ only data/manifest.json and the blobs may appear.")
def _() -> Draft:
    return with_extra(base(), tar.entry(ROOT + "data/extra.txt", b"extra\n"))


@vector("E019_uppercase_blob_name", "A payload entry named with uppercase hex (data/blobs/sha256/<HEX>): blob names are 64 lowercase hex digits.")
def _() -> Draft:
    d = base()
    entries = d.blob_entries()
    hex_ = README.hex
    i = next(i for i, e in enumerate(entries) if hex_.encode() in e[:100])
    entries[i] = tar.entry(ROOT + layout.BLOB_DIR + hex_.upper(), README.data)
    d.payload_tar = b"".join(entries) + tar.END
    return d


@vector("E020_empty_archive", "The tar stream is only the two end-of-archive blocks: no head at all.")
def _() -> bytes:
    return zframes.compress_frame(tar.END)


@vector(
    "E020_missing_manifest_sha512", "The head lacks manifest-sha512.txt (frames-sha256.txt follows manifest-sha256.txt; the tag manifest does not list it)."
)
def _() -> Draft:
    d = base()
    d.omit = {"manifest-sha512.txt"}
    return d


@vector("E020_missing_frames_listing", "The signature part lacks frames-sha256.txt: the tag manifest follows the head directly (and does not list it).")
def _() -> Draft:
    d = base()

    def signature(listing: bytes) -> bytes:
        tm = layout.tag_manifest(d.head(), {})
        return tar.entry(ROOT + layout.TAGMANIFEST, tm)

    d.signature_override = signature
    return d


@vector("E020_missing_tag_manifest", "There is no tagmanifest-sha256.txt: the payload follows frames-sha256.txt directly.")
def _() -> Draft:
    d = base()
    d.signature_override = lambda listing: tar.entry(ROOT + layout.FRAMES, listing)
    return d


# ---------------------------------------------------------------------------------------
# invalid: the manifest


def with_manifest(raw: bytes, files: list[File] | None = None) -> bytes:
    d = Draft(files or [BKG, README])
    d.manifest = raw
    return d.build()


@vector("E030_byte_order_mark", "data/manifest.json starts with a UTF-8 byte-order mark (the rest is the canonical manifest).")
def _() -> bytes:
    return with_manifest(b"\xef\xbb\xbf" + strictjson.canonical(base().obj))


@vector("E030_duplicate_key", "data/manifest.json has the key 'name' twice in its top-level object.")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw[:-1] + b',"name":"a","name":"b"}')


@vector("E030_nan", "data/manifest.json gives luminosity_ifb as NaN, which is not JSON.")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw.replace(b'"luminosity_ifb":139', b'"luminosity_ifb":NaN'))


@vector("E030_not_utf8", "data/manifest.json holds a Latin-1 byte (0xE9) inside a string: not UTF-8.")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw.replace(b'"title":"Conformance toy analysis"', b'"title":"Conformance toy analys\xe9"'))


@vector("E030_too_deep", "data/manifest.json nests arrays 100 deep inside an unknown field (the depth cap is 64).")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw[:-1] + b',"zz":' + b"[" * 100 + b"]" * 100 + b"}")


@vector(
    "E038_manifest_integer_too_large",
    "data/manifest.json gives an unknown field the integer 2^53 (9007199254740992), outside the I-JSON range +-(2^53 - 1); otherwise canonical.",
)
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw[:-1] + b',"zz":9007199254740992}')


@vector("E039_manifest_lone_surrogate", "data/manifest.json's analysis title ends in the escape \\ud800, a lone surrogate (canonical otherwise).")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw.replace(b'"title":"Conformance toy analysis"', b'"title":"Conformance toy analysis\\ud800"'))


@vector("E031_not_canonical", "data/manifest.json is the manifest indented and with unsorted keys, not its RFC 8785 canonical form.")
def _() -> bytes:
    return with_manifest((json.dumps(base().obj, indent=2) + "\n").encode())


@vector("E031_number_form", "data/manifest.json writes sqrt_s_TeV as 13.0 where RFC 8785 writes 13 (otherwise canonical).")
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw.replace(b'"sqrt_s_TeV":13', b'"sqrt_s_TeV":13.0'))


@vector("E032_bad_digest", "A file's digest has uppercase hex (the schema wants sha256:<64 lowercase hex>).")
def _() -> Draft:
    d = base()
    d.obj["files"][0]["digest"] = d.obj["files"][0]["digest"].upper().replace("SHA256", "sha256")
    return d


@vector("E032_missing_files", "The manifest has no files array.")
def _() -> Draft:
    d = base()
    del d.obj["files"]
    return d


@vector("E032_negative_size", "A file's size is -1.")
def _() -> Draft:
    d = base()
    d.obj["files"][1]["size"] = -1
    return d


@vector("E033_major_version_2", "bundleFormat.version is 2.0.0: an unknown major version.")
def _() -> Draft:
    return Draft([BKG, README], version="2.0.0")


@vector("E033_wrong_uri", "bundleFormat.uri names another format (https://example.org/other-format).")
def _() -> Draft:
    d = base()
    d.obj["bundleFormat"]["uri"] = "https://example.org/other-format"
    return d


def paths(*names: str) -> Draft:
    return Draft([BKG, *(text(n, f"content of {n!r}\n") for n in names)])


@vector("E034_nfd_path", "A logical path in Unicode NFD (e + combining acute accent), not NFC.")
def _() -> Draft:
    return paths(unicodedata.normalize("NFD", "résumé.txt"))


@vector("E034_nfc_nfd_twins", "Two logical paths that differ only in Unicode normalisation (NFC and NFD forms of café.txt).")
def _() -> Draft:
    return paths(unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt"))


@vector("E034_case_fold_twins", "Two logical paths that differ only in case (README.txt and readme.txt).")
def _() -> Draft:
    return paths("README.txt", "readme.txt")


@vector("E034_windows_device_name", "A logical path with a Windows device name as a segment (docs/aux.json).")
def _() -> Draft:
    return paths("docs/aux.json")


@vector("E034_trailing_dot", "A logical path segment ending with a dot (notes./a.txt).")
def _() -> Draft:
    return paths("notes./a.txt")


@vector("E034_trailing_space", "A logical path ending with a space ('notes.txt ').")
def _() -> Draft:
    return paths("notes.txt ")


@vector("E034_control_character", "A logical path holding a control character (BEL, U+0007).")
def _() -> Draft:
    return paths("bell\u0007.txt")


@vector("E034_file_and_directory", "Both a and a/b are files: a is also a directory.")
def _() -> Draft:
    return paths("a", "a/b")


@vector("E034_dotdot", "A logical path with a '..' segment (../outside.txt).")
def _() -> Draft:
    return paths("../outside.txt")


@vector("E034_absolute", "An absolute logical path (/etc/passwd).")
def _() -> Draft:
    return paths("/etc/passwd")


@vector("E034_backslash", "A logical path with a backslash (docs\\readme.txt).")
def _() -> Draft:
    return paths("docs\\readme.txt")


@vector("E034_reserved", "The reserved logical path arch.yaml.")
def _() -> Draft:
    return paths("arch.yaml")


@vector("E034_reserved_signatures", "A logical path under the reserved signatures/ directory (signatures/notes.txt).")
def _() -> Draft:
    return paths("signatures/notes.txt")


@vector("E034_tilde", "A logical path starting with ~ (~/notes.txt), which shells expand to a home directory.")
def _() -> Draft:
    return paths("~/notes.txt")


@vector("E034_colon_stream", "A logical path with a colon (notes.txt:hidden, an NTFS alternate data stream).")
def _() -> Draft:
    return paths("notes.txt:hidden")


@vector("E034_bidi_override", "A logical path holding U+202E RIGHT-TO-LEFT OVERRIDE (category Cf), so that report<U+202E>txt.exe displays as reportexe.txt.")
def _() -> Draft:
    return paths("report\u202etxt.exe")


@vector("E034_too_long", "A logical path of 604 characters but 1204 bytes in UTF-8 (the limit is 1024 bytes; the schema's maxLength counts characters).")
def _() -> Draft:
    path = "/".join(["\u00e9" * 120] * 5)
    assert len(path) <= 1024 < len(path.encode()), len(path.encode())
    return paths(path)


@vector("E034_segment_too_long", "A logical path segment of 256 bytes (the limit is 255).")
def _() -> Draft:
    return paths("docs/" + "z" * 252 + ".txt")


@vector("E034_case_fold_sharp_s", "Two logical paths equal under full Unicode case folding but not under lowercasing (Straße.txt and STRASSE.txt).")
def _() -> Draft:
    return paths("STRASSE.txt", "Straße.txt")


@vector("E034_file_and_directory_case", "Data is a file and data/x.txt a file: Data is, after case folding, a directory of another path.")
def _() -> Draft:
    return paths("Data", "data/x.txt")


@vector("E035_unsorted_files", "The manifest's files are not sorted by logical path.")
def _() -> Draft:
    d = base()
    d.obj["files"].reverse()
    return d


@vector("E035_duplicate_path", "The same logical path (notes.txt) is listed twice, with different content.")
def _() -> Draft:
    return Draft([BKG, text("notes.txt", "first\n"), text("notes.txt", "second\n")])


@vector(
    "E032_unpinned_container",
    "A container reference pinned by tag only (docker.io/pyhf/pyhf:0.7.6), no digest. The manifest schema requires the @sha256:<64 hex> ending, so the schema"
    " is violated (E032, which every reader reports); the reference also breaks E036, which a reader may report as well (spec section 3.4).",
)
def _() -> Draft:
    return Draft([BKG], top={"containers": [{"name": "pyhf", "reference": "docker.io/pyhf/pyhf:0.7.6"}]})


@vector("E036_bad_reference", "A container reference with a digest but an invalid name (uppercase path component PyHF).")
def _() -> Draft:
    return Draft([BKG], top={"containers": [{"name": "pyhf", "reference": PINNED.replace("pyhf/pyhf", "PyHF/pyhf")}]})


@vector("E037_dangling_likelihood", "A patchset's likelihood annotation names a file that is not in the bundle (Missing.json).")
def _() -> Draft:
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "Missing.json")])


@vector("E037_missing_likelihood_annotation", "A patchset without a likelihood annotation.")
def _() -> Draft:
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset")])


@vector("E037_wrong_role", "A results component's likelihood annotation names a file whose role is attachment.")
def _() -> Draft:
    return Draft([BKG, README, component("results.json", results("README.md"), "results", "README.md")])


# ---------------------------------------------------------------------------------------
# invalid: BagIt tag files


def with_head_file(name: str, change: Callable[[bytes], bytes]) -> bytes:
    d = base()
    d.head_override[name] = change(d.head()[name])
    return d.build()


@vector("E040_bagit_version", "bagit.txt declares BagIt-Version 0.97 instead of 1.0.")
def _() -> bytes:
    return with_head_file("bagit.txt", lambda b: b.replace(b"1.0", b"0.97"))


@vector("E041_payload_oxum", "bag-info.txt gives a Payload-Oxum one octet larger than the payload.")
def _() -> bytes:
    def change(b: bytes) -> bytes:
        line = re.search(rb"Payload-Oxum: (\d+)\.(\d+)", b)
        assert line
        return b.replace(line.group(0), b"Payload-Oxum: %d.%s" % (int(line.group(1)) + 1, line.group(2)))

    return with_head_file("bag-info.txt", change)


@vector("E041_bundle_identity", "bag-info.txt gives a Bundle-Identity that is not the sha256 of data/manifest.json.")
def _() -> bytes:
    return with_head_file("bag-info.txt", lambda b: re.sub(rb"Bundle-Identity: sha256:[0-9a-f]{64}", b"Bundle-Identity: sha256:" + b"0" * 64, b))


@vector(
    "E041_software_agent_with_cr",
    "bag-info.txt's Bag-Software-Agent holds a CR followed by 'Bundle-Identity: ...' (a forged line for a BagIt reader that splits at CR); the rest is regenerated.",
)
def _() -> bytes:
    return with_head_file(
        "bag-info.txt", lambda b: b.replace(b"Bag-Software-Agent: ", b"Bag-Software-Agent: x\rBundle-Identity: sha256:" + b"0" * 64 + b" ", 1)
    )


@vector("E041_no_software_agent", "bag-info.txt has its three lines, but Bag-Software-Agent is the last one instead of the first.")
def _() -> bytes:
    def change(b: bytes) -> bytes:
        lines = b.splitlines(keepends=True)
        return b"".join([*lines[1:], lines[0]])

    return with_head_file("bag-info.txt", change)


@vector("E042_manifest_sha256_digest", "manifest-sha256.txt gives a wrong sha256 for data/manifest.json.")
def _() -> bytes:
    return with_head_file("manifest-sha256.txt", lambda b: re.sub(rb"^[0-9a-f]{64}(?=  data/manifest.json)", b"f" * 64, b, flags=re.M))


@vector("E042_manifest_sha256_extra_line", "manifest-sha256.txt lists a payload file the manifest does not have.")
def _() -> bytes:
    return with_head_file("manifest-sha256.txt", lambda b: b + b"0" * 64 + b"  data/extra.txt\n")


@vector("E043_manifest_sha512_digest", "manifest-sha512.txt gives a wrong sha512 for a blob.")
def _() -> bytes:
    return with_head_file("manifest-sha512.txt", lambda b: re.sub(rb"^[0-9a-f]{128}(?=  data/blobs)", b"e" * 128, b, count=1, flags=re.M))


@vector("E044_tag_manifest", "tagmanifest-sha256.txt gives a wrong sha256 for bag-info.txt.")
def _() -> Draft:
    d = base()
    d.tagmanifest_edit = lambda tm: re.sub(rb"^[0-9a-f]{64}(?=  bag-info.txt)", b"a" * 64, tm, flags=re.M)
    return d


# ---------------------------------------------------------------------------------------
# invalid: payload fixity


@vector("E050_missing_blob", "The manifest lists README.md but its blob is not in the payload.")
def _() -> Draft:
    d = base()
    del d.blobs[README.hex]
    return d


@vector(
    "E051_unlisted_blob",
    "The payload holds a blob the manifest does not list, in place of a listed blob of the same size (so the payload length is what the manifest implies).",
)
def _() -> Draft:
    listed = text("notes.txt", "listed blob!\n")
    candidates = (text("x", f"unlisted {i:03d}\n") for i in range(1000))
    other = next(c for c in candidates if c.hex < listed.hex and len(c.data) == len(listed.data))
    d = Draft([BKG, listed])
    del d.blobs[listed.hex]
    d.blobs[other.hex] = other.data
    return d


@vector("E052_size_mismatch", "The manifest gives README.md a size 10 bytes larger than its blob (digests are right; the tag files follow the manifest).")
def _() -> Draft:
    d = base()
    d.obj["files"][1]["size"] += 10
    return d


@vector("E053_digest_mismatch", "A blob's content differs (one byte) from the sha256 it is named by and listed with.")
def _() -> Draft:
    d = base()
    d.blobs[README.hex] = README.data.replace(b"toy", b"tox")
    return d


@vector("E054_sha512_mismatch", "The manifest's fixity.sha512 for README.md is wrong (sha256 and content agree).")
def _() -> Draft:
    d = base()
    d.obj["files"][1]["fixity"]["sha512"] = "0" * 128
    return d


@vector(
    "E054_same_digest_two_sha512", "Two files with the same content (and digest) whose manifest entries give different fixity.sha512 (the second one wrong)."
)
def _() -> Draft:
    d = Draft([BKG, text("a/notes.txt", "same bytes\n"), text("b/notes.txt", "same bytes\n")])
    d.obj["files"][2]["fixity"]["sha512"] = "1" * 128
    return d


# ---------------------------------------------------------------------------------------
# invalid: components (level full)


@vector("E060_component_not_json", "The likelihood file is not strict JSON (a duplicate key 'version').")
def _() -> Draft:
    bad = jbytes(WS)[:-2] + b',\n  "version": "1.0.0"\n}\n'
    return Draft([File("BkgOnly.json", bad, "likelihood", "application/json")])


@vector("E060_component_too_deep", "The likelihood holds an unknown field nesting arrays 900 deep (the cap for components is 64, as for the manifest).")
def _() -> Draft:
    bad = jbytes(WS)[:-2] + b',\n  "zz": ' + b"[" * 900 + b"]" * 900 + b"\n}\n"
    return Draft([File("BkgOnly.json", bad, "likelihood", "application/json")])


@vector("E038_component_integer_too_large", "The likelihood's observation holds the integer 10^20, outside the I-JSON range +-(2^53 - 1).")
def _() -> Draft:
    bad = jbytes(WS).replace(b"11.0", b"100000000000000000000", 1)
    assert bad != jbytes(WS)
    return Draft([File("BkgOnly.json", bad, "likelihood", "application/json")])


@vector("E039_component_lone_surrogate", "The likelihood's channel name holds the escape \\udc00, a lone (low) surrogate.")
def _() -> Draft:
    bad = jbytes(WS).replace(b'"SR"', b'"SR\\udc00"')
    assert bad != jbytes(WS)
    return Draft([File("BkgOnly.json", bad, "likelihood", "application/json")])


@vector("E061_workspace_bins", "The workspace's observation has 3 bins where its channel's samples have 2.")
def _() -> Draft:
    ws = workspace()
    ws["observations"][0]["data"] = [11.0, 5.0, 1.0]
    return Draft([likelihood("BkgOnly.json", ws)])


@vector(
    "E080_negative_background_rate",
    "A sample of yield -12 makes the background rate of bin 0 negative (10 - 12) with 11 events observed: pyhf cannot compute it.",
)
def _() -> Draft:
    ws = workspace()
    ws["channels"][0]["samples"].append({"name": "fakes", "data": [-12.0, 0.5], "modifiers": []})
    return Draft([likelihood("BkgOnly.json", ws)])


@vector(
    "E081_initial_value_outside_bounds", "The measurement gives bkg_norm (a normsys, initial value 0) the bounds [1, 3]: pyhf cannot start a fit outside them."
)
def _() -> Draft:
    ws = workspace()
    ws["measurements"][0]["config"]["parameters"] = [{"name": "bkg_norm", "bounds": [[1.0, 3.0]]}]
    return Draft([likelihood("BkgOnly.json", ws)])


@vector("E061_workspace_schema", "The workspace has no channels' samples' modifiers field (pyhf workspace schema 1.0.0 requires it).")
def _() -> Draft:
    ws = workspace()
    del ws["channels"][0]["samples"][0]["modifiers"]
    return Draft([likelihood("BkgOnly.json", ws)])


@vector("E062_patchset_schema", "The patchset has no version field (pyhf PatchSet schema 1.0.0 requires it).")
def _() -> Draft:
    ps = patchset(WS)
    del ps["version"]
    return Draft([BKG, component("patchset.json", ps, "patchset", "BkgOnly.json")])


@vector("E063_patchset_digest", "The patchset's metadata.digests.sha256 is not the pyhf digest of its background-only workspace.")
def _() -> Draft:
    return Draft([BKG, component("patchset.json", patchset(WS, digest="0" * 64), "patchset", "BkgOnly.json")])


@vector("E064_patch_does_not_apply", "The patchset's patches add a sample under /channels/3, which the workspace does not have.")
def _() -> Draft:
    return Draft([BKG, component("patchset.json", patchset(WS, where="/channels/3/samples/1"), "patchset", "BkgOnly.json")])


@vector(
    "E064_patch_file_invalid_result", "A patch file whose signal sample has 3 bins in a 2-bin channel: it applies, but the result is not a valid workspace."
)
def _() -> Draft:
    ops = signal_ops()
    ops[0]["value"]["data"] = [1.0, 2.0, 3.0]
    return Draft([BKG, component("patch.bad.json", ops, "patch", "BkgOnly.json", **{"patch.name": "bad"})])


@vector("E065_patch_file_not_json_patch", "A patch file that is an object, not an RFC 6902 array of operations.")
def _() -> Draft:
    return Draft([BKG, component("patch.obj.json", {"op": "add", "path": "/x", "value": 1}, "patch", "BkgOnly.json", **{"patch.name": "obj"})])


@vector("E066_covariance_not_positive_definite", "The simplified likelihood's covariance [[1, 2], [2, 1]] is symmetric but not positive definite.")
def _() -> Draft:
    sl = simplified()
    sl["covariance"] = [[1.0, 2.0], [2.0, 1.0]]
    return Draft([component("simplified.json", sl, "simplified-likelihood")])


@vector("E066_shape_mismatch", "The simplified likelihood's background has 3 entries for 2 observed bins.")
def _() -> Draft:
    sl = simplified()
    sl["background"] = [10.0, 5.0, 1.0]
    return Draft([component("simplified.json", sl, "simplified-likelihood")])


@vector("E067_third_moment", "Third moment 0.5 in bin 1 with variance 0.25: m3^2 = 0.25 > 8 m2^3 = 0.125.")
def _() -> Draft:
    return Draft([component("simplified.json", simplified([0.1, 0.5]), "simplified-likelihood")])


@vector("E068_results_cls_range", "A claimed CLs_obs of 1.5, outside [0, 1].")
def _() -> Draft:
    res = component("results.json", results("BkgOnly.json", cls_obs=1.5), "results", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), res])


@vector("E069_results_unknown_point", "Claimed results for a point (pt_999_1) that is not a patch of the likelihood.")
def _() -> Draft:
    res = component("results.json", results("BkgOnly.json", points=["pt_300_100", "pt_999_1"]), "results", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), res])


@vector("E069_two_results_one_likelihood", "Two results components for the same likelihood.")
def _() -> Draft:
    ps = component("patchset.json", patchset(WS), "patchset", "BkgOnly.json")
    r1 = component("results/a.json", results("BkgOnly.json"), "results", "BkgOnly.json")
    r2 = component("results/b.json", results("BkgOnly.json"), "results", "BkgOnly.json")
    return Draft([BKG, ps, r1, r2])


def signal_interface(**region: Any) -> dict[str, Any]:
    """A declared signal interface of the toy workspace: a signal enters SR (2 bins) scaled by mu_SIG."""
    return {"likelihood": "BkgOnly.json", "poi": "mu_SIG", "sample_name": "signal", "regions": [{"channel": "SR", "bins": 2, **region}]}


@vector(
    "OK_signal_interface",
    "A workspace, its patchset and a declared signal interface (role signal-interface) that says what the patches show: the signal enters SR's 2 bins, scaled by mu_SIG.",
)
def _() -> Draft:
    itf = component("signal-interface.json", signal_interface(), "signal-interface", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), itf])


@vector(
    "E083_signal_interface_contradicts_patches",
    "A declared signal interface that says the signal enters SR with 3 bins and shares staterror_SR: the published patches add a 2-bin signal without a staterror.",
)
def _() -> Draft:
    itf = component("signal-interface.json", signal_interface(bins=3, staterror="staterror_SR"), "signal-interface", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), itf])


@vector("E082_signal_interface_schema", "A declared signal interface without regions (the schema requires at least one).")
def _() -> Draft:
    obj = {"likelihood": "BkgOnly.json", "regions": []}
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), component("signal-interface.json", obj, "signal-interface", "BkgOnly.json")])


# ---------------------------------------------------------------------------------------
# signatures and trust (spec section 6)

SIGN_TIME = "2024-05-01T00:00:00Z"
#: fixed test keys (never use these seeds for anything real): Ed25519 private seeds from fixed strings
ALICE = Signer.from_seed(hashlib.sha256(b"heparch conformance key: alice").digest())
BOB = Signer.from_seed(hashlib.sha256(b"heparch conformance key: bob").digest())
MALLORY = Signer.from_seed(hashlib.sha256(b"heparch conformance key: mallory").digest())
SIGS = layout.SIGNATURE_DIR


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dsse_name(role: str, signer: Signer) -> str:
    return SIGS + sigformat.signature_name(role, signer.public.keyid, "dsse")


def sshsig_name(role: str, signer: Signer) -> str:
    return SIGS + sigformat.signature_name(role, signer.public.keyid, "sshsig")


def identity_of(d: Draft) -> str:
    return layout.identity(d.manifest_bytes())


def envelope(
    d: Draft,
    signer: Signer,
    role: str = "analysis-team",
    *,
    edit_statement: Callable[[dict[str, Any]], None] | None = None,
    edit_envelope: Callable[[dict[str, Any]], None] | None = None,
    signed_by: Signer | None = None,
    identity: str | None = None,
) -> bytes:
    """A DSSE envelope for ``d`` as heparch writes it, optionally changed before or after signing."""
    st = sigformat.statement(identity=identity or identity_of(d), name="bundle", role=role, public=signer.public, time=SIGN_TIME)
    if edit_statement is not None:
        edit_statement(st)
    payload = strictjson.canonical(st)
    sig = (signed_by or signer).sign(sigformat.pae(sigformat.PAYLOAD_TYPE, payload))
    env: dict[str, Any] = {"payload": b64(payload), "payloadType": sigformat.PAYLOAD_TYPE, "signatures": [{"keyid": signer.public.keyid, "sig": b64(sig)}]}
    if edit_envelope is not None:
        edit_envelope(env)
    return (json.dumps(env, indent=2, sort_keys=True) + "\n").encode("ascii")


def signed(d: Draft, *dsse: tuple[Signer, str], ssh: tuple[Signer, ...] = ()) -> Draft:
    """``d`` with heparch's envelopes (signer, role) and sshsigs (role analysis-team) in its signature part."""
    for signer, role in dsse:
        d.signatures[dsse_name(role, signer)] = envelope(d, signer, role)
    for signer in ssh:
        d.signatures[sshsig_name("analysis-team", signer)] = sigformat.make_sshsig(signer, d.manifest_bytes())
    return d


def with_signature(name: str, data: bytes | Callable[[Draft], bytes]) -> Draft:
    d = base()
    d.signatures[name] = data(d) if callable(data) else data
    return d


def policy(require: dict[str, int], **keys: tuple[Signer, list[str]]) -> dict[str, Any]:
    """A trust policy (its JSON form, which is also YAML) as expected.json carries it."""
    return {
        "keys": [{"name": name, "public_key": f"{s.public.openssh} {name}", "roles": roles} for name, (s, roles) in keys.items()],
        "require": require,
    }


@vector(
    "W007_unverified_signatures",
    "A DSSE envelope (role analysis-team) and an OpenSSH signature, both valid, checked without a trust policy: they are reported as present but"
    " unverified, never as trusted.",
)
def _() -> Draft:
    return signed(base(), (ALICE, "analysis-team"), ssh=(ALICE,))


TWO_ROLES = policy({"analysis-team": 1, "publication-committee": 1}, alice=(ALICE, ["analysis-team"]), bob=(BOB, ["publication-committee"]))


@vector(
    "OK_trusted_signatures",
    "Envelopes by alice (analysis-team) and bob (publication-committee) plus alice's OpenSSH signature; the trust policy trusts each key for its"
    " role and requires one key per role, so it is met and nothing is reported.",
    trust=TWO_ROLES,
)
def _() -> Draft:
    return signed(base(), (ALICE, "analysis-team"), (BOB, "publication-committee"), ssh=(ALICE,))


@vector(
    "W008_untrusted_signatures",
    "Envelopes by alice (analysis-team), bob (publication-committee, a role the policy does not let bob sign for) and mallory (a key not in"
    " the policy): the policy (analysis-team: 1) is met by alice; bob's and mallory's valid envelopes are reported and do not count.",
    trust=policy({"analysis-team": 1}, alice=(ALICE, ["analysis-team"]), bob=(BOB, ["analysis-team"])),
)
def _() -> Draft:
    return signed(base(), (ALICE, "analysis-team"), (BOB, "publication-committee"), (MALLORY, "analysis-team"))


@vector(
    "E078_role_not_signed",
    "Only alice signed (analysis-team); the policy also requires one publication-committee key (bob's), which did not sign.",
    trust=TWO_ROLES,
)
def _() -> Draft:
    return signed(base(), (ALICE, "analysis-team"))


@vector(
    "E078_key_counts_once",
    "The policy requires two distinct keys for analysis-team (alice or bob); only alice signed, with an envelope for analysis-team, another"
    " for publication-committee and an OpenSSH signature. A key counts once per role however many signatures it made, and an sshsig counts"
    " nowhere: 1 of 2.",
    trust=policy({"analysis-team": 2}, alice=(ALICE, ["analysis-team", "publication-committee"]), bob=(BOB, ["analysis-team"])),
)
def _() -> Draft:
    return signed(base(), (ALICE, "analysis-team"), (ALICE, "publication-committee"), ssh=(ALICE,))


@vector("E070_signature_name", "A valid envelope stored as signatures/alice.dsse.json: not <role>.<keyid>.dsse.json.")
def _() -> Draft:
    return with_signature(SIGS + "alice.dsse.json", lambda d: envelope(d, ALICE))


@vector("E070_unknown_suffix", "A valid envelope stored as signatures/analysis-team.<keyid>.sig: neither .dsse.json nor .sshsig.")
def _() -> Draft:
    return with_signature(SIGS + f"analysis-team.{ALICE.public.keyid}.sig", lambda d: envelope(d, ALICE))


@vector("E071_envelope_not_json", "The envelope is not JSON (truncated in the middle).")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE)[:80])


@vector("E071_payload_type", "The envelope's payloadType is application/json instead of application/vnd.in-toto+json (the signature covers it, and verifies).")
def _() -> Draft:
    def make(d: Draft) -> bytes:
        payload = strictjson.canonical(sigformat.statement(identity=identity_of(d), name="bundle", role="analysis-team", public=ALICE.public, time=SIGN_TIME))
        env = {
            "payload": b64(payload),
            "payloadType": "application/json",
            "signatures": [{"keyid": ALICE.public.keyid, "sig": b64(ALICE.sign(sigformat.pae("application/json", payload)))}],
        }
        return json.dumps(env, indent=2, sort_keys=True).encode()

    return with_signature(dsse_name("analysis-team", ALICE), make)


@vector("E071_two_signatures", "The envelope holds two signatures (the same one twice): an envelope holds exactly one, so no key is counted twice through it.")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_envelope=lambda e: e.update(signatures=e["signatures"] * 2)))


@vector("E071_bad_base64", "The envelope's payload is not base64 (it holds '*').")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_envelope=lambda e: e.update(payload="*" + e["payload"])))


@vector("E072_predicate_type", "The statement's predicateType is https://slsa.dev/provenance/v1, not heparch's (the envelope is signed and verifies).")
def _() -> Draft:
    return with_signature(
        dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_statement=lambda st: st.update(predicateType="https://slsa.dev/provenance/v1"))
    )


@vector("E072_no_role", "The predicate has no role (the envelope is signed and verifies).")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_statement=lambda st: st["predicate"].pop("role")))


@vector("E072_statement_type", "The payload's _type is the in-toto Statement v0.1 URI, not https://in-toto.io/Statement/v1.")
def _() -> Draft:
    return with_signature(
        dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_statement=lambda st: st.update(_type="https://in-toto.io/Statement/v0.1"))
    )


@vector("E073_tampered_payload", "The payload was changed after signing (its time moved by a year); the signature no longer verifies.")
def _() -> Draft:
    def make(d: Draft) -> bytes:
        good = json.loads(envelope(d, ALICE))
        payload = base64.b64decode(good["payload"]).replace(b"2024-05-01", b"2025-05-01")
        good["payload"] = b64(payload)
        return (json.dumps(good, indent=2, sort_keys=True) + "\n").encode()

    return with_signature(dsse_name("analysis-team", ALICE), make)


@vector("E073_signed_by_another_key", "The statement names alice's key, but mallory made the signature.")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, signed_by=MALLORY))


@vector("E073_keyid_mismatch", "signatures[0].keyid is bob's key id while the predicate (and the file name) give alice's.")
def _() -> Draft:
    return with_signature(
        dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, edit_envelope=lambda e: e["signatures"][0].update(keyid=BOB.public.keyid))
    )


@vector("E074_other_bundle", "A valid envelope made for another bundle (its subject digest is another identity), spliced into this one.")
def _() -> Draft:
    other = Draft([BKG, text("README.md", "Another analysis.\n", media="text/markdown")], analysis=ANALYSIS)
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope(d, ALICE, identity=identity_of(other)))


def claimed(*, cls_obs: float = 0.2, extra: tuple[File, ...] = ()) -> Draft:
    """A workspace, its patchset and claimed results: a bundle whose claims can be reproduced."""
    res = component("results.json", results("BkgOnly.json", cls_obs=cls_obs), "results", "BkgOnly.json")
    return Draft([BKG, component("patchset.json", patchset(WS), "patchset", "BkgOnly.json"), res, *extra])


def replay_record(d: Draft, **edit: Any) -> dict[str, Any]:
    """The ``replay`` member of ``arch replay --attest``'s predicate for ``d`` (every point agreed), with ``edit`` applied."""
    points = tuple(sigformat.ReplayedPoint("BkgOnly.json", name, "fast", 0.25) for name in sorted(results("BkgOnly.json")["points"]))
    record = sigformat.ReplayRecord("1.0.0", "Linux-x86_64; CPython 3.12", SIGN_TIME, results_digests(d.manifest_bytes()), points).to_json()
    return {**record, **edit}


def attested(d: Draft, signer: Signer = ALICE, *, of: Draft | None = None, **edit: Any) -> bytes:
    """An envelope (role replay-ci) recording a reproduction of ``of`` (default: ``d``), signed for ``d``."""
    member = replay_record(of or d, **edit)
    return envelope(d, signer, "replay-ci", edit_statement=lambda st: st["predicate"].update(replay=member))


REPLAY_CI = policy({"replay-ci": 1}, alice=(ALICE, ["replay-ci"]))


@vector(
    "OK_replay_attestation",
    "Claimed results with an envelope by alice for role replay-ci whose predicate has a replay member (heparch version, platform, date,"
    " backends, each point's worst difference / tolerance, the results components with their digests): the policy requiring replay-ci: 1 is met.",
    trust=REPLAY_CI,
)
def _() -> Draft:
    d = claimed()
    d.signatures[dsse_name("replay-ci", ALICE)] = attested(d)
    return d


@vector(
    "E078_replay_ci_not_signed",
    "Claimed results signed by alice for analysis-team only; the policy requires a replay-ci attestation, which the bundle does not hold.",
    trust=policy({"replay-ci": 1}, alice=(ALICE, ["analysis-team", "replay-ci"])),
)
def _() -> Draft:
    return signed(claimed(), (ALICE, "analysis-team"))


@vector(
    "E079_replay_record_other_bundle",
    "The replay member of another bundle's attestation (its results component differs: other claimed CLs), signed again by alice for this"
    " bundle: the record names results this bundle does not hold.",
)
def _() -> Draft:
    d, other = claimed(), claimed(cls_obs=0.5)
    d.signatures[dsse_name("replay-ci", ALICE)] = attested(d, of=other)
    return d


@vector(
    "E079_replay_record_failed_point",
    "A signed replay record whose point differs from its claim by 1.5 times the tolerance: a failed replay is never attested.",
)
def _() -> Draft:
    d = claimed()
    points = [{**p, "worst_ratio": 1.5} for p in replay_record(d)["points"]]
    d.signatures[dsse_name("replay-ci", ALICE)] = attested(d, points=points)
    return d


@vector("E079_replay_record_no_points", "A signed replay record without its points member.")
def _() -> Draft:
    d = claimed()
    d.signatures[dsse_name("replay-ci", ALICE)] = envelope(
        d, ALICE, "replay-ci", edit_statement=lambda st: st["predicate"].update(replay={k: v for k, v in replay_record(d).items() if k != "points"})
    )
    return d


@vector(
    "E073_replay_record_tampered",
    "An attestation whose replay member was changed after signing (a point's worst_ratio lowered); the signature no longer verifies.",
)
def _() -> Draft:
    def make(d: Draft) -> bytes:
        good = json.loads(attested(d))
        payload = base64.b64decode(good["payload"]).replace(b'"worst_ratio":0.25', b'"worst_ratio":0.01', 1)
        assert payload != base64.b64decode(good["payload"])
        good["payload"] = b64(payload)
        return (json.dumps(good, indent=2, sort_keys=True) + "\n").encode()

    d = claimed()
    d.signatures[dsse_name("replay-ci", ALICE)] = make(d)
    return d


@vector("E074_replay_record_spliced", "A valid attestation made for another bundle (another README, so another identity), spliced into this one.")
def _() -> Draft:
    d, other = claimed(), claimed(extra=(text("README.md", "Another analysis.\n", media="text/markdown"),))
    d.signatures[dsse_name("replay-ci", ALICE)] = attested(other)
    return d


@vector(
    "E074_content_changed_after_signing",
    "README.md was changed after signing and the manifest, tag files and frames recomputed, but the old envelope and OpenSSH signature were"
    " kept: both are for the old identity.",
    codes=["E074", "E077"],
)
def _() -> Draft:
    old = signed(base(), (ALICE, "analysis-team"), ssh=(ALICE,))
    new = Draft([BKG, text("README.md", "Conformance toy analysis, edited.\n", media="text/markdown")])
    new.signatures = dict(old.signatures)
    return new


@vector("E075_renamed_role", "Alice's valid analysis-team envelope stored under publication-committee.<alice's keyid>.dsse.json.")
def _() -> Draft:
    return with_signature(dsse_name("publication-committee", ALICE), lambda d: envelope(d, ALICE, "analysis-team"))


@vector("E075_other_keyid", "Alice's valid envelope stored under analysis-team.<bob's keyid>.dsse.json.")
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", BOB), lambda d: envelope(d, ALICE, "analysis-team"))


@vector("E076_sshsig_namespace", "An OpenSSH signature made with namespace 'file' instead of heparch-bundle.")
def _() -> Draft:
    def make(d: Draft) -> bytes:
        data = sigformat.make_sshsig(ALICE, d.manifest_bytes())
        blob = base64.b64decode(b"".join(data.splitlines()[1:-1]))
        blob = blob.replace(b"\x00\x00\x00\x0eheparch-bundle", b"\x00\x00\x00\x04file")
        body = b64(blob)
        return (
            "\n".join(["-----BEGIN SSH SIGNATURE-----", *(body[i : i + 70] for i in range(0, len(body), 70)), "-----END SSH SIGNATURE-----"]) + "\n"
        ).encode()

    return with_signature(sshsig_name("analysis-team", ALICE), make)


@vector("E076_sshsig_not_armored", "The .sshsig file holds the raw binary SSHSIG blob instead of the armored text.")
def _() -> Draft:
    return with_signature(
        sshsig_name("analysis-team", ALICE), lambda d: base64.b64decode(b"".join(sigformat.make_sshsig(ALICE, d.manifest_bytes()).splitlines()[1:-1]))
    )


@vector("E077_sshsig_other_manifest", "A well-formed OpenSSH signature by alice over other bytes than data/manifest.json.")
def _() -> Draft:
    return with_signature(sshsig_name("analysis-team", ALICE), sigformat.make_sshsig(ALICE, b'{"files":[]}'))


# ---------------------------------------------------------------------------------------
# invalid: sub-cases of the threat list (DESIGN.md section 3) that had no vector (issue 11 item 7)


@vector("E011_block_device", "A block device entry bundle/data/sda (type 4, major 8, minor 0) before the tag manifest.")
def _() -> Draft:
    return with_extra(base(), raw_header("bundle/data/sda", 0, typeflag=b"4", devmajor=b"0000010\0"))


@vector(
    "E011_unknown_typeflag",
    "An entry of type Q, which no tar specification defines (POSIX lets readers extract unknown types as regular files), before the tag manifest.",
)
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/signatures/unknown", b"data\n", typeflag=b"Q"))


@vector(
    "E011_gnu_sparse",
    "An old-GNU sparse file entry (type S) before the tag manifest. Type S is an entry of its own, not an extension header, so the rule it"
    " breaks is that every entry is a regular file (spec section 2.2 lists the extension headers of E013: x, g, L, K, X).",
)
def _() -> Draft:
    return with_extra(base(), raw_entry("bundle/signatures/sparse", b"data\n", typeflag=b"S"))


@vector("E013_gnu_longlink", "A GNU long-link header (type K) giving the next entry a 120-character link name; the next entry is a regular file.")
def _() -> Draft:
    target = "/etc/" + "n" * 115
    return with_extra(base(), raw_entry("bundle/LongLink", target.encode() + b"\0", typeflag=b"K"), tar.entry("bundle/signatures/short", b"x"))


@vector("E013_pax_linkpath", "A PAX extended header (type x) whose linkpath record points the next entry at /etc/passwd; the next entry is a regular file.")
def _() -> Draft:
    pax = raw_entry("bundle/PaxHeader/link", pax_record("linkpath", "/etc/passwd"), typeflag=b"x")
    return with_extra(base(), pax, tar.entry("bundle/signatures/link", b"x\n"))


@vector(
    "E013_pax_gnu_sparse",
    "A PAX extended header (type x) with GNU.sparse.* records (format 1.0: major, minor, name, realsize of 1 GiB) that make the next entry a sparse file.",
)
def _() -> Draft:
    records = [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "bundle/signatures/sparse"), ("GNU.sparse.realsize", str(1 << 30))]
    pax = raw_entry("bundle/PaxHeader/sparse", b"".join(pax_record(k, v) for k, v in records), typeflag=b"x")
    return with_extra(base(), pax, tar.entry("bundle/signatures/GNUSparseFile.0", b"1\n0\n5\n" + b"\0" * 509 + b"data\n"))


def size_field(field: bytes) -> Draft:
    """The base bundle with the size field of bagit.txt's header (54 bytes, octal 66) replaced by ``field`` (checksum recomputed)."""
    assert len(field) == 12
    return with_head_entry(base(), "bagit.txt", lambda n, data: raw_header(n, len(data), size_field=field) + data + b"\0" * tar.padding(len(data)))


@vector("E010_size_not_octal", "The size field of bagit.txt's header is 00000000086: not octal (read as decimal it would be 86, not 54).")
def _() -> Draft:
    return size_field(b"00000000086\0")


@vector("E010_size_base256", "The size field of bagit.txt's header is the GNU base-256 encoding of 54 (0x80, then 54 in 11 big-endian bytes).")
def _() -> Draft:
    return size_field(b"\x80" + (54).to_bytes(11, "big"))


@vector("E010_size_negative_base256", "The size field of bagit.txt's header is the GNU base-256 encoding of -1 (twelve 0xFF bytes).")
def _() -> Draft:
    return size_field(b"\xff" * 12)


@vector("E010_size_negative_octal", "The size field of bagit.txt's header is -0000000066, a negative number that lenient octal parsers accept.")
def _() -> Draft:
    return size_field(b"-0000000066\0")


@vector(
    "E014_duplicate_manifest",
    "A second data/manifest.json (listing BkgOnly.json only) follows the first one in the head, where manifest-sha256.txt belongs: a reader"
    " that kept the last one would check another file list.",
)
def _() -> Draft:
    d = base()
    other = strictjson.canonical({**d.obj, "files": d.obj["files"][:1]})
    entries = d.head_entries()
    d.head_tar = b"".join([*entries[:3], tar.entry(ROOT + layout.MANIFEST, other), *entries[3:]])
    return d


@vector(
    "E020_blob_before_manifest",
    "README.md's blob comes between bag-info.txt and data/manifest.json (and not in the payload). A reader meets a blob where the head"
    " requires data/manifest.json; as for every required entry that is not where it must be, the code every reader reports is E020"
    " (PROTOCOL.md section 3); E015 may be reported too.",
)
def _() -> Draft:
    d = base()
    entries = d.head_entries()
    d.head_tar = b"".join([*entries[:2], tar.entry(ROOT + layout.BLOB_DIR + README.hex, README.data), *entries[2:]])
    del d.blobs[README.hex]
    return d


def in_place_of_a_blob(name: str, data: Callable[[Draft], bytes]) -> Draft:
    """A bundle of BkgOnly.json, README.md and notes.txt whose payload holds entry ``name`` where the blob of
    notes.txt belongs: after the first blob, as many blocks, so the payload has the length the manifest implies."""
    notes = text("notes.txt", "notes\n")
    d = Draft([BKG, README, notes])
    assert min(d.blobs) == README.hex < notes.hex
    content = data(d)
    assert tar.padding(len(content)) + len(content) == tar.padding(len(notes.data)) + len(notes.data)
    misplaced = tar.entry(ROOT + name, content)
    d.payload_tar = b"".join(misplaced if h == notes.hex else e for h, e in zip(sorted(d.blobs), d.blob_entries(), strict=True)) + tar.END
    return d


@vector(
    "E015_signature_after_blob",
    "A valid OpenSSH signature entry (signatures/analysis-team.<keyid>.sshsig) comes after the first payload blob, in place of the blob"
    " of notes.txt (as many blocks, so the payload has the length the manifest implies): signatures belong before the tag manifest.",
)
def _() -> Draft:
    return in_place_of_a_blob(sshsig_name("analysis-team", ALICE), lambda d: sigformat.make_sshsig(ALICE, d.manifest_bytes()))


@vector(
    "E014_tag_manifest_after_blob",
    "A second tagmanifest-sha256.txt (one listing no frames) comes after the first payload blob, in place of the blob of notes.txt: a name"
    " that appeared before is E014 wherever it appears again (PROTOCOL.md section 3).",
)
def _() -> Draft:
    return in_place_of_a_blob(layout.TAGMANIFEST, lambda d: layout.tag_manifest(d.head(), {layout.FRAMES: layout.frames_listing([], [])}))


@vector(
    "E018_bag_info_over_64mib",
    "bag-info.txt is 64 MiB + 1 byte (its three lines followed by zeros, in RLE frames: the file is a few kB): more than 64 MiB before"
    " data/manifest.json, where the cap is 65536 bytes. A reader must refuse it from the size in the header, before holding the content.",
)
def _() -> Draft:
    d = base()
    info = d.head()["bag-info.txt"]
    d.head_override["bag-info.txt"] = info + b"\0" * (64 * MIB + 1 - len(info))
    d.head_framer = chunked(hand_frame)
    return d


def digest_of_readme(value: Callable[[File], str]) -> Draft:
    d = base()
    d.obj["files"][1]["digest"] = value(README)
    return d


@vector("E032_digest_uppercase_algorithm", "README.md's digest is SHA256:<64 hex>: the algorithm name must be lowercase sha256.")
def _() -> Draft:
    return digest_of_readme(lambda f: "SHA256:" + f.hex)


@vector("E032_digest_63_hex", "README.md's digest is sha256: followed by 63 hex digits (the last one dropped).")
def _() -> Draft:
    return digest_of_readme(lambda f: "sha256:" + f.hex[:63])


@vector("E032_digest_md5", "README.md's digest is md5:<32 hex> (the right MD5 of the content): only sha256 is a digest algorithm.")
def _() -> Draft:
    return digest_of_readme(lambda f: "md5:" + hashlib.md5(f.data).hexdigest())


@vector("E040_bagit_byte_order_mark", "bagit.txt starts with a UTF-8 byte-order mark (EF BB BF); the rest is the BagIt declaration.")
def _() -> bytes:
    return with_head_file("bagit.txt", lambda b: b"\xef\xbb\xbf" + b)


def sshsig(signer: Signer, message: bytes, hash_alg: bytes, digest: bytes) -> bytes:
    """An armored OpenSSH signature (PROTOCOL.sshsig) over ``message`` whose hash field and digest are given."""

    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    namespace = sigformat.SSHSIG_NAMESPACE.encode("ascii")
    signed = b"SSHSIG" + string(namespace) + string(b"") + string(hash_alg) + string(digest)
    sig = string(b"ssh-ed25519") + string(signer.sign(signed))
    blob = b"SSHSIG" + struct.pack(">I", 1) + string(signer.public.blob) + string(namespace) + string(b"") + string(hash_alg) + string(sig)
    body = b64(blob)
    lines = ["-----BEGIN SSH SIGNATURE-----", *(body[i : i + 70] for i in range(0, len(body), 70)), "-----END SSH SIGNATURE-----"]
    out = ("\n".join(lines) + "\n").encode("ascii")
    if hash_alg == b"sha512":
        assert out == sigformat.make_sshsig(signer, message), "sshsig() must agree with heparch's make_sshsig"
    return out


@vector("E076_sshsig_hash_sha1", "An OpenSSH signature by alice over data/manifest.json whose hash algorithm is sha1 (the signature verifies over it).")
def _() -> Draft:
    return with_signature(sshsig_name("analysis-team", ALICE), lambda d: sshsig(ALICE, d.manifest_bytes(), b"sha1", hashlib.sha1(d.manifest_bytes()).digest()))


@vector(
    "E076_sshsig_hash_unknown",
    "An OpenSSH signature by alice over data/manifest.json whose hash algorithm is sha3-512, which PROTOCOL.sshsig does not define (the"
    " signature verifies over the SHA3-512 digest).",
)
def _() -> Draft:
    return with_signature(
        sshsig_name("analysis-team", ALICE), lambda d: sshsig(ALICE, d.manifest_bytes(), b"sha3-512", hashlib.sha3_512(d.manifest_bytes()).digest())
    )


def envelope_with(d: Draft, tail: bytes) -> bytes:
    """Alice's valid envelope for ``d`` with ``tail`` (members, JSON text) added to its object."""
    return envelope(d, ALICE)[:-2] + b",\n  " + tail + b"\n}\n"


def envelope_over(d: Draft, tail: bytes) -> bytes:
    """An envelope by alice whose signed payload is heparch's statement with ``tail`` added to its object."""
    st = sigformat.statement(identity=identity_of(d), name="bundle", role="analysis-team", public=ALICE.public, time=SIGN_TIME)
    payload = strictjson.canonical(st)[:-1] + b"," + tail + b"}"
    sig = ALICE.sign(sigformat.pae(sigformat.PAYLOAD_TYPE, payload))
    env = {"payload": b64(payload), "payloadType": sigformat.PAYLOAD_TYPE, "signatures": [{"keyid": ALICE.public.keyid, "sig": b64(sig)}]}
    return (json.dumps(env, indent=2, sort_keys=True) + "\n").encode("ascii")


@vector(
    "E038_envelope_integer_too_large",
    "Alice's DSSE envelope holds a member zz with the integer 2^53 + 1 (9007199254740993), outside the I-JSON range; E071 (a member"
    " the envelope does not define) may be reported too.",
)
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope_with(d, b'"zz": 9007199254740993'))


@vector(
    "E039_envelope_lone_surrogate",
    "Alice's DSSE envelope holds a member zz whose string is the escape \\ud800, a lone surrogate; E071 may be reported too.",
)
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope_with(d, b'"zz": "\\ud800"'))


@vector(
    "E038_statement_integer_too_large",
    "The statement alice signed (the envelope's payload) holds a member zz with the integer 2^53 + 1; the signature verifies over it.",
)
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope_over(d, b'"zz":9007199254740993'))


@vector(
    "E039_statement_lone_surrogate",
    "The statement alice signed (the envelope's payload) holds a member zz whose string is the escape \\udc00, a lone surrogate; the"
    " signature verifies over it.",
)
def _() -> Draft:
    return with_signature(dsse_name("analysis-team", ALICE), lambda d: envelope_over(d, b'"zz":"\\udc00"'))


# ---------------------------------------------------------------------------------------
# cost: bundles whose verification cost is not bounded by their size unless the verifier follows
# the cost model of spec section 5.1 (issue 11). Each must verify in a few seconds.

REFERENCES = limits.REFERENCES  # 1,024: the cap of spec section 2.2.2


@vector(
    "OK_blob_referenced_1024_times",
    f"One patchset blob listed under {REFERENCES} logical paths (grid/ps0000.json ...), the cap, every one a patchset of BkgOnly.json:"
    " each distinct blob is checked once whatever references it (spec section 5.1).",
)
def _() -> Draft:
    ps = jbytes(patchset(WS))
    return Draft([BKG, *(component(f"grid/ps{i:04d}.json", ps, "patchset", "BkgOnly.json") for i in range(REFERENCES))])


@vector(
    "E018_blob_referenced_5000_times",
    "One patchset blob listed under 5,000 logical paths, more than the cap of 1,024 references to one blob (spec section 2.2.2):"
    " refused at the structure level, from the manifest alone, before any blob is read.",
    codes=["E018"],
)
def _() -> Draft:
    ps = jbytes(patchset(WS))
    return Draft([BKG, *(component(f"grid/ps{i:04d}.json", ps, "patchset", "BkgOnly.json") for i in range(5000))])


OPERATIONS = 6000


@vector(
    "E064_patch_of_6000_operations",
    f"A patch file of {OPERATIONS} operations, each adding one bin to the background sample: the patched workspace has a sample of"
    f" {OPERATIONS + 2} bins in a 2-bin channel. The operation to blame is found by bisection over prefixes, O(n log n) (spec section 5.1).",
)
def _() -> Draft:
    ops = [{"op": "add", "path": "/channels/0/samples/0/data/-", "value": 1.0} for _ in range(OPERATIONS)]
    return Draft([BKG, component("patch.sig.json", ops, "patch", "BkgOnly.json", **{"patch.name": "sig"})])


BINS = 1200


@vector(
    "OK_simplified_1200_bins",
    f"A simplified likelihood of {BINS} bins with a dense covariance (2 on the diagonal, 0.5 / (1 + |i - j|) off it): O(n^2) to read, a"
    " Cholesky factorisation to check (spec section 5.1).",
)
def _() -> Draft:
    n = BINS
    cov = [[2.0 if i == j else round(0.5 / (1 + abs(i - j)), 6) for j in range(n)] for i in range(n)]
    sl = {"observed": [5] * n, "background": [4.0] * n, "covariance": cov, "signals": {"A": [1.0] * n}}
    return Draft([component("simplified.json", sl, "simplified-likelihood")])


@vector(
    "OK_zero_blob_64mib",
    "An attachment of 64 MiB of zeros (the bundle is a few kB): its cost is decompression and two digests of the declared payload, in"
    " constant memory; there is no cap on the total payload (spec section 5.1).",
)
def _() -> Draft:
    d = Draft([BKG, File("zeros.bin", b"\0" * (64 * MIB))])
    d.payload_framer = chunked(hand_frame)
    return d


@vector(
    "E017_huge_declared_blob",
    "The manifest lists an attachment of 8589934591 bytes (the largest tar entry); its header declares that size, but the stream ends after"
    " 1 MiB of its zeros. A reader must stream it (never allocate what a header declares) and report the truncation.",
)
def _() -> Draft:
    size = tar.MAX_SIZE
    first = b"\0" * MIB
    huge = File("huge.bin", first)
    d = Draft([BKG, huge])
    entry = next(e for e in d.obj["files"] if e["path"] == huge.path)
    entry.update(digest="sha256:" + "0" * 64, size=size, fixity={"sha512": "0" * 128})  # a digest sorting first: its blob is the first entry
    d.payload_tar = tar.header(ROOT + layout.BLOB_DIR + "0" * 64, size) + first  # then the stream ends
    return d


DEPTH = 100_000


@vector(
    "E060_component_nested_100000",
    f"The likelihood holds an unknown field nesting arrays {DEPTH} deep (200 kB of brackets): the depth is measured on the bytes before"
    " parsing, so the cost is linear and no parser recursion runs (cap 64).",
)
def _() -> Draft:
    bad = jbytes(WS)[:-2] + b',\n  "zz": ' + b"[" * DEPTH + b"]" * DEPTH + b"\n}\n"
    return Draft([File("BkgOnly.json", bad, "likelihood", "application/json")])


@vector(
    "E030_manifest_nested_100000",
    f"data/manifest.json nests arrays {DEPTH} deep inside an unknown field (cap 64): measured on the bytes before parsing.",
)
def _() -> bytes:
    raw = strictjson.canonical(base().obj)
    return with_manifest(raw[:-1] + b',"zz":' + b"[" * DEPTH + b"]" * DEPTH + b"}")


@vector(
    "E042_head_entries_at_caps",
    "manifest-sha256.txt and manifest-sha512.txt each exactly at their cap (the right lines followed by zeros, in RLE frames; the caps"
    " follow from 20,000 files): about 6 MiB of head entries from a bundle of a few kB. A reader holds at most the caps of spec"
    " section 2.2.2 and reports both files as not regenerated from the manifest.",
    codes=["E042", "E043"],
)
def _() -> Draft:
    d = base()
    for name, cap in (("manifest-sha256.txt", limits.MANIFEST_SHA256), ("manifest-sha512.txt", limits.MANIFEST_SHA512)):
        listing = d.head()[name]
        d.head_override[name] = listing + b"\0" * (cap - len(listing))
    d.head_framer = chunked(hand_frame)
    return d


# ---------------------------------------------------------------------------------------
# tool vectors: hostile input to build (arch.yaml) and to extract (its target), which are not
# bundles and so not verify vectors (tools/README.md says how they are run)


@dataclasses.dataclass
class ToolVector:
    command: str  # build, extract or trust (arch verify --trust)
    name: str
    about: str
    stderr: str  # a regular expression the error output must match
    arch_yaml: bytes = b""  # build: the source directory's arch.yaml (beside BkgOnly.json)
    target: str = ""  # extract: what is at the target path before the run (TARGETS)
    policy: Callable[[], bytes] | None = None  # trust: the trust policy's YAML
    archive: Callable[[], tuple[str, bytes]] | None = None  # import: the archive's file name and bytes
    exit: int = 2


#: extract targets a tool vector can prepare, and what the runner checks afterwards
TARGETS = {
    "symlink-to-empty-directory": "a symbolic link to an empty directory elsewhere: the directory stays empty, the link stays a link",
    "dangling-symlink": "a symbolic link to a path that does not exist: nothing is created there, the link stays a link",
    "existing-file": "a regular file: its content is unchanged",
    "non-empty-directory": "a directory holding one file: it holds only that file afterwards",
}
EXTRACT_BUNDLE = "1.0/valid/OK_minimal_workspace/bundle.zst"  # relative to conformance/
TRUST_BUNDLE = "1.0/valid/OK_trusted_signatures/bundle.zst"
TOOL_VECTORS: list[ToolVector] = []
ANCHORS = r"YAML anchors and aliases are not allowed \(line \d+\); write the value out"
TAG = r"explicit YAML tag '[^']+' is not allowed \(line \d+\); remove it"


def tool(command: str, name: str, about: str, stderr: str, **fields: Any) -> None:
    TOOL_VECTORS.append(ToolVector(command, name, " ".join(about.split()), stderr, **fields))


tool(
    "build",
    "yaml_anchor_alias",
    "arch.yaml defines the analysis metadata once with an anchor (&meta) and reuses it with an alias (*meta).",
    ANCHORS,
    arch_yaml=b"analysis: &meta\n  title: Toy\n  license: CC0-1.0\ncontainers:\n  - *meta\n",
)
tool(
    "build",
    "yaml_merge_key",
    "arch.yaml merges an anchored mapping into analysis with the YAML 1.1 merge key (<<: *base).",
    ANCHORS,
    arch_yaml=b"name: toy\nbase: &base {license: CC0-1.0, sqrt_s_TeV: 13}\nanalysis:\n  <<: *base\n  title: Toy\n",
)
tool(
    "build",
    "yaml_billion_laughs",
    "The 'billion laughs' bomb: nine levels of anchors, each a list of ten aliases of the one before (10^9 strings once expanded, 800 bytes"
    " on disk). It must be refused before anything is composed.",
    ANCHORS,
    arch_yaml=b'lol0: &a0 "lol"\n'
    + b"".join(b"lol%d: &a%d [%s]\n" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)) for i in range(1, 10))
    + b"analysis:\n  title: *a9\n",
)
tool(
    "build",
    "yaml_python_tag",
    "arch.yaml's name carries the tag !!python/object/apply:os.system (an unsafe YAML loader would run a command).",
    TAG,
    arch_yaml=b'name: !!python/object/apply:os.system ["touch /tmp/heparch-pwned"]\n',
)
tool(
    "build",
    "yaml_custom_tag",
    "arch.yaml's analysis title carries a local tag !include /etc/passwd (a loader with custom constructors would read the file).",
    TAG,
    arch_yaml=b"analysis:\n  title: !include /etc/passwd\n",
)
tool(
    "build",
    "yaml_core_tag",
    "arch.yaml forces a type with a core-schema tag (luminosity_ifb: !!str 139): explicit tags are refused, even harmless ones.",
    TAG,
    arch_yaml=b"analysis:\n  luminosity_ifb: !!str 139\n",
)
tool(
    "build",
    "yaml_deep_nesting",
    "arch.yaml nests flow sequences 10000 deep under analysis (a bomb by depth: recursive composers and validators overflow the stack); the"
    " cap is 64 levels, counted on the parser's events before anything is composed.",
    r"nested deeper than 64 levels \(line 2\); flatten it",
    arch_yaml=b"analysis:\n  x: " + b"[" * 10000 + b"]" * 10000 + b"\n",
)
for _target, _about in TARGETS.items():
    tool(
        "extract",
        f"target_{_target.replace('-', '_')}",
        f"arch extract of a valid bundle ({EXTRACT_BUNDLE}) with -o naming {_about.split(':')[0]}. Nothing may be written through the"
        f" target or over it: {_about.split(': ', 1)[1]}.",
        r"is a symbolic link; extract into a real directory" if "symlink" in _target else r"exists and is not an empty directory; choose a new directory",
        target=_target,
    )


def alice_line() -> str:
    return f"{ALICE.public.openssh} alice"


tool(
    "trust",
    "policy_alias_counts_a_key_twice",
    "A trust policy that lists alice's key once with an anchor and again through an alias, and requires two analysis-team keys: a"
    " reader that expanded the alias would count alice twice.",
    ANCHORS,
    policy=lambda: (
        f"keys:\n  - &alice {{name: alice, public_key: '{alice_line()}', roles: [analysis-team]}}\n  - *alice\nrequire: {{analysis-team: 2}}\n".encode()
    ),
)
tool(
    "trust",
    "policy_python_tag",
    "A trust policy whose require carries the tag !!python/object/apply:os.system.",
    TAG,
    policy=lambda: (
        f"keys:\n  - {{name: alice, public_key: '{alice_line()}', roles: [analysis-team]}}\nrequire: !!python/object/apply:os.system ['true']\n".encode()
    ),
)
tool(
    "trust",
    "policy_billion_laughs",
    "A trust policy that opens with the 'billion laughs' bomb (nine levels of ten aliases each) before its keys.",
    ANCHORS,
    policy=lambda: (
        b'lol0: &a0 "lol"\n'
        + b"".join(b"lol%d: &a%d [%s]\n" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)) for i in range(1, 10))
        + f"keys:\n  - {{name: alice, public_key: '{alice_line()}', roles: [analysis-team]}}\nrequire: {{analysis-team: 1}}\n".encode()
    ),
)
tool(
    "trust",
    "policy_deep_nesting",
    "A trust policy whose require nests flow sequences 10000 deep (cap 64, as for arch.yaml).",
    r"nested deeper than 64 levels \(line \d+\); flatten it",
    policy=lambda: b"require:\n  x: " + b"[" * 10000 + b"]" * 10000 + b"\n",
)


# import vectors: hostile HEPData-style archives for arch build (spec section 8.1), each a
# deterministic tar.gz (gzip mtime 0, ustar headers of fixed owner and time) or zip (fixed dates)


def _tar_gz(*entries: tuple[str, bytes, dict[str, Any]]) -> tuple[str, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, fields in (("BkgOnly.json", BKG.data, {}), *entries):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            for key, value in fields.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return "archive.tar.gz", out.getvalue()


def _zip(name: str, data: bytes, mode: int = 0o100644) -> tuple[str, bytes]:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry, content, entry_mode in (("BkgOnly.json", BKG.data, 0o100644), (name, data, mode)):
            info = zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr, info.compress_type = 3, entry_mode << 16, zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return "archive.zip", out.getvalue()


def _gzip_bomb() -> tuple[str, bytes]:
    """One tar entry declaring 1 GiB of zeros, as gzip members of 16 MiB each (~16 kB): the reader
    must stop at the ratio cap (200:1 after 64 MiB), not at the declared size."""
    header = tarfile.TarInfo("zeros.bin")
    header.size, header.mtime = 1 << 30, 0
    member = gzip.compress(bytes(16 * MIB), compresslevel=9, mtime=0)
    head = gzip.compress(header.tobuf(tarfile.USTAR_FORMAT), mtime=0)
    return "bomb.tar.gz", head + member * 8  # 128 MiB of the 1 GiB: truncated after the cap, so small


IMPORT_ABOUT = "arch build of a HEPData-style archive (spec section 8.1) whose"
for _name, _code, _about, _archive in (
    ("E090_traversal", "E090", "member ../../evil.json climbs out of the target.", lambda: _tar_gz(("../../evil.json", b"{}", {}))),
    ("E090_absolute", "E090", "member /tmp/evil.json is an absolute path.", lambda: _tar_gz(("/tmp/evil.json", b"{}", {}))),
    ("E090_zip_traversal", "E090", "zip entry ../evil.json climbs out of the target.", lambda: _zip("../evil.json", b"{}")),
    (
        "E091_symlink",
        "E091",
        "member link.json is a symbolic link to /etc/passwd.",
        lambda: _tar_gz(("link.json", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})),
    ),
    ("E091_hardlink", "E091", "member hard.json is a hard link.", lambda: _tar_gz(("hard.json", b"", {"type": tarfile.LNKTYPE, "linkname": "BkgOnly.json"}))),
    ("E091_zip_symlink", "E091", "zip entry link.json has the mode of a symbolic link.", lambda: _zip("link.json", b"/etc/passwd", 0o120777)),
    (
        "E092_char_device",
        "E092",
        "member dev is a character device (1, 3).",
        lambda: _tar_gz(("dev", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})),
    ),
    ("E092_fifo", "E092", "member fifo is a FIFO.", lambda: _tar_gz(("fifo", b"", {"type": tarfile.FIFOTYPE}))),
    ("E093_duplicate", "E093", "BkgOnly.json appears twice.", lambda: _tar_gz(("BkgOnly.json", b"{}", {}))),
    ("E093_case_twin", "E093", "bkgonly.JSON is a case-fold twin of BkgOnly.json.", lambda: _tar_gz(("bkgonly.JSON", b"{}", {}))),
    (
        "E093_nfc_twin",
        "E093",
        "caf\u00e9.txt and cafe\u0301.txt are the same name in NFC.",
        lambda: _tar_gz(("caf\u00e9.txt", b"1", {}), ("cafe\u0301.txt", b"2", {})),
    ),
    ("E093_file_and_directory", "E093", "a is a file and a/b.txt puts a file below it.", lambda: _tar_gz(("a", b"1", {}), ("a/b.txt", b"2", {}))),
    ("E094_gzip_bomb", "E094", "only member declares 1 GiB and its gzip stream expands ~1000:1.", _gzip_bomb),
    ("E095_truncated", "E095", "gzip stream ends half way.", lambda: ("archive.tar.gz", _tar_gz(("big.bin", bytes(range(256)) * 64, {}))[1][:-40])),
):
    tool("import", _name, f"{IMPORT_ABOUT} {_about}", rf"^error: {_code} ", archive=_archive)


def tool_expected(t: ToolVector) -> str:
    obj: dict[str, Any] = {"command": t.command, "exit": t.exit, "stderr": t.stderr}
    if t.command == "extract":
        obj.update(bundle=EXTRACT_BUNDLE, target=t.target)
    if t.command == "trust":
        obj.update(bundle=TRUST_BUNDLE)
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def tool_readme(t: ToolVector) -> str:
    if t.command == "build":
        run = "`arch build source -o OUT` must exit 2 (an input error), write nothing, and print one line matching `stderr` of expected.json"
    elif t.command == "import":
        run = "`arch build ARCHIVE -o OUT` (ARCHIVE: the one archive file beside this README) must exit 2 (an input error), write nothing, and print one line matching `stderr` of expected.json"
    elif t.command == "trust":
        run = "`arch verify BUNDLE --trust policy.yaml` must exit 2 (an input error) and print one line matching `stderr` of expected.json"
    else:
        run = "`arch extract BUNDLE -o TARGET` must exit 2 (an input error), print one line matching `stderr` of expected.json and leave the target as it was"
    return f"# {t.command}/{t.name}\n\n{t.about} {run}.\n"


def tool_index() -> str:
    lines = [
        "# heparch tool vectors: hostile input to build and extract",
        "",
        "Generated by `conformance/make_vectors.py`; do not edit. These are not bundles, so they are not",
        "verify vectors (`conformance/run.py` does not run them); they check DESIGN.md section 3's",
        "'YAML anchors/aliases or !!python tags' and 'symlinks at the extraction target' on heparch's",
        "own `arch build`, `arch extract` and `arch verify --trust`. `tests/test_conformance.py` runs every one.",
        "",
        "- `build/<name>/`: `source/` is an analysis directory (`arch.yaml` and the toy workspace",
        "  `BkgOnly.json`); `arch build source -o OUT` must exit `exit` (2, an input error) with an error",
        "  output matching the regular expression `stderr`, and OUT must not exist afterwards.",
        "- `extract/<name>/`: the runner prepares `target` at the output path (one of the kinds below),",
        "  runs `arch extract <bundle> -o <path>` (`bundle` is relative to `conformance/`) and checks the",
        "  exit code, the error output, that the target is as it was and that no staging directory is left.",
        "- `trust/<name>/`: `arch verify <bundle> --trust policy.yaml` (`bundle` is relative to `conformance/`;",
        "  a validly signed bundle) must exit `exit` (2) with an error output matching `stderr`: a trust",
        "  policy is YAML that verifiers read, with the same rules as arch.yaml.",
        "- `import/<name>/`: one hostile archive (`*.tar.gz` or `*.zip`, spec section 8.1; most hold a toy",
        "  `BkgOnly.json` beside the hostile member); `arch build ARCHIVE -o OUT` must exit `exit` (2) with an error output",
        "  matching `stderr` (the import code first) and write nothing.",
        "",
        "| target | prepared as, and checked afterwards |",
        "|---|---|",
        *(f"| `{k}` | {v} |" for k, v in TARGETS.items()),
        "",
        "| command | vector | exit | what |",
        "|---|---|---|---|",
        *(f"| {t.command} | `{t.name}` | {t.exit} | {t.about} |" for t in TOOL_VECTORS),
        "",
    ]
    return "\n".join(lines)


def generate_tools(out: Path) -> None:
    """Write every tool vector and README.md under ``out`` (removing what an earlier run left)."""
    if out.exists():
        shutil.rmtree(out)
    for t in TOOL_VECTORS:
        folder = out / t.command / t.name
        folder.mkdir(parents=True)
        if t.command == "build":
            (folder / "source").mkdir()
            (folder / "source" / "arch.yaml").write_bytes(t.arch_yaml)
            (folder / "source" / "BkgOnly.json").write_bytes(BKG.data)
        if t.policy is not None:
            (folder / "policy.yaml").write_bytes(t.policy())
        if t.archive is not None:
            name, data = t.archive()
            (folder / name).write_bytes(data)
        (folder / "README.md").write_text(tool_readme(t), encoding="utf-8")
        (folder / "expected.json").write_text(tool_expected(t), encoding="utf-8")
    (out / "README.md").write_text(tool_index(), encoding="utf-8")


# ---------------------------------------------------------------------------------------
# coverage: DESIGN.md section 3's list of inputs a verifier must reject ("the research list", the
# threat list of issue 11), case by case, each with its sub-cases and the vectors that exercise
# them; then the cost classes of issue 11. Vectors are named kind/name, or
# tools/<command>/<name> for the tool vectors. The generator checks that every name exists.

Threat = tuple[str, list[tuple[str, list[str]]]]

THREATS: list[Threat] = [
    (
        "traversal (.., absolute, backslash, outside bundle/)",
        [
            ("'..' in an entry name / a logical path", ["invalid/E012_dotdot", "invalid/E034_dotdot"]),
            ("absolute name / path", ["invalid/E012_absolute", "invalid/E034_absolute"]),
            ("backslash", ["invalid/E012_backslash", "invalid/E034_backslash"]),
            ("outside bundle/", ["invalid/E012_outside_root"]),
            ("control or disallowed character in an entry name", ["invalid/E012_control_character", "invalid/E012_disallowed_character"]),
        ],
    ),
    ("links", [("symbolic link", ["invalid/E011_symlink"]), ("hard link", ["invalid/E011_hardlink"])]),
    (
        "devices and other non-regular entries",
        [
            ("character device", ["invalid/E011_char_device"]),
            ("block device", ["invalid/E011_block_device"]),
            ("FIFO", ["invalid/E011_fifo"]),
            ("contiguous file (type 7)", ["invalid/E011_contiguous_file"]),
            ("unknown typeflag", ["invalid/E011_unknown_typeflag"]),
        ],
    ),
    ("directories", [("directory entry", ["invalid/E011_directory"])]),
    (
        "GNU/PAX extensions beyond path/size",
        [
            ("PAX extended header (path)", ["invalid/E013_pax_header"]),
            ("PAX global header", ["invalid/E013_pax_global_header"]),
            ("PAX linkpath", ["invalid/E013_pax_linkpath"]),
            ("PAX GNU.sparse records", ["invalid/E013_pax_gnu_sparse"]),
            ("GNU long name (L)", ["invalid/E013_gnu_longname"]),
            ("GNU long link (K)", ["invalid/E013_gnu_longlink"]),
            ("GNU sparse entry (S)", ["invalid/E011_gnu_sparse"]),
            ("GNU magic", ["invalid/E010_gnu_magic"]),
        ],
    ),
    (
        "bad header checksums (and non-canonical header fields)",
        [
            ("checksum", ["invalid/E010_bad_header_checksum"]),
            (
                "mode, mtime, owner name, prefix split",
                ["invalid/E010_executable_mode", "invalid/E010_nonzero_mtime", "invalid/E010_owner_name", "invalid/E010_prefix_split"],
            ),
            ("size field not octal", ["invalid/E010_size_not_octal"]),
            ("size field base-256", ["invalid/E010_size_base256"]),
            ("negative size", ["invalid/E010_size_negative_base256", "invalid/E010_size_negative_octal", "invalid/E032_negative_size"]),
        ],
    ),
    (
        "duplicates",
        [
            ("duplicate blob", ["invalid/E014_duplicate_blob"]),
            ("duplicate signature entry", ["invalid/E014_duplicate_signature"]),
            ("duplicate data/manifest.json", ["invalid/E014_duplicate_manifest"]),
            ("duplicate logical path", ["invalid/E035_duplicate_path"]),
            ("duplicate JSON key", ["invalid/E030_duplicate_key", "invalid/E060_component_not_json"]),
        ],
    ),
    (
        "digest mismatch",
        [
            ("sha256 of a blob", ["invalid/E053_digest_mismatch"]),
            ("sha512 of a blob", ["invalid/E054_sha512_mismatch", "invalid/E054_same_digest_two_sha512"]),
            ("digest with uppercase hex", ["invalid/E032_bad_digest"]),
            ("digest SHA256:<hex>", ["invalid/E032_digest_uppercase_algorithm"]),
            ("digest of 63 hex digits", ["invalid/E032_digest_63_hex"]),
            ("digest md5:<hex>", ["invalid/E032_digest_md5"]),
        ],
    ),
    ("missing blobs", [("listed blob absent", ["invalid/E050_missing_blob"]), ("huge declared blob, stream ends early", ["invalid/E017_huge_declared_blob"])]),
    (
        "unlisted blobs",
        [
            ("blob the manifest does not list", ["invalid/E051_unlisted_blob"]),
            ("blob named with uppercase hex", ["invalid/E019_uppercase_blob_name"]),
            ("other entry under data/", ["invalid/E019_extra_data_file"]),
        ],
    ),
    ("size mismatch", [("blob size differs from the manifest", ["invalid/E052_size_mismatch"])]),
    (
        "wrong order",
        [
            ("head entries", ["invalid/E015_head_order"]),
            ("blobs", ["invalid/E015_blob_order"]),
            ("signature entries", ["invalid/E015_signature_order"]),
            ("blob before the manifest", ["invalid/E020_blob_before_manifest"]),
            ("signature after a blob", ["invalid/E015_signature_after_blob"]),
            ("tag manifest again after a blob", ["invalid/E014_tag_manifest_after_blob"]),
            ("part boundaries inside a frame", ["invalid/E008_single_frame", "invalid/E008_signature_and_payload_one_frame"]),
            (
                "required entry missing",
                [
                    "invalid/E020_empty_archive",
                    "invalid/E020_missing_frames_listing",
                    "invalid/E020_missing_manifest_sha512",
                    "invalid/E020_missing_tag_manifest",
                ],
            ),
        ],
    ),
    (
        "truncation anywhere",
        [
            (
                "in a frame header, block or checksum",
                ["invalid/E005_truncated_frame_header", "invalid/E005_truncated_mid_frame", "invalid/E005_truncated_in_checksum"],
            ),
            (
                "in the tar stream",
                [
                    "invalid/E017_truncated_in_header",
                    "invalid/E017_truncated_in_manifest",
                    "invalid/E017_truncated_after_tag_manifest",
                    "invalid/E017_truncated_in_blob",
                    "invalid/E017_no_end_blocks",
                ],
            ),
            ("empty file", ["invalid/E001_empty_file"]),
        ],
    ),
    (
        "trailing data",
        [
            ("bytes after the last frame", ["invalid/E006_trailing_garbage"]),
            ("skippable frame", ["invalid/E006_skippable_frame"]),
            ("extra frame or zero block after the archive", ["invalid/E018_trailing_frame", "invalid/E018_trailing_zero_block"]),
            ("end-of-archive marker or padding not zero", ["invalid/E016_bad_end_block", "invalid/E016_nonzero_padding", "invalid/E016_nonzero_blob_padding"]),
        ],
    ),
    ("oversize zstd window", [("2 GiB window", ["invalid/E002_oversize_window"]), ("frame over 8 MiB", ["invalid/E003_frame_content_over_8mib"])]),
    ("zstd dictionary", [("dictionary ID", ["invalid/E002_dictionary_id"])]),
    (
        "bombs",
        [
            ("decompression bomb after the archive", ["invalid/E018_bomb"]),
            ("> 64 MiB before the manifest", ["invalid/E018_bag_info_over_64mib"]),
            ("manifest over 16 MiB", ["invalid/E018_manifest_too_large"]),
            ("head entries at their caps", ["invalid/E042_head_entries_at_caps"]),
            ("YAML bomb (billion laughs) in arch.yaml", ["tools/build/yaml_billion_laughs"]),
        ],
    ),
    (
        "checksum mismatch",
        [
            ("zstd content checksum and size", ["invalid/E004_checksum_mismatch", "invalid/E004_content_size_mismatch"]),
            ("frame digests", ["invalid/E007_wrong_frame_digest", "invalid/E007_recompressed_head", "invalid/E007_unlisted_payload_frame"]),
            (
                "frame-header profile",
                ["invalid/E002_reserved_bit", "invalid/E002_unused_bit", "invalid/E002_no_content_checksum", "invalid/E002_fcs_not_minimal"],
            ),
        ],
    ),
    (
        "malformed manifest JSON (and other JSON documents)",
        [
            ("byte-order mark, not UTF-8, NaN", ["invalid/E030_byte_order_mark", "invalid/E030_not_utf8", "invalid/E030_nan"]),
            ("too deep", ["invalid/E030_too_deep", "invalid/E030_manifest_nested_100000"]),
            ("not canonical", ["invalid/E031_not_canonical", "invalid/E031_number_form"]),
            (
                "lone surrogate (manifest, component, envelope, statement)",
                [
                    "invalid/E039_manifest_lone_surrogate",
                    "invalid/E039_component_lone_surrogate",
                    "invalid/E039_envelope_lone_surrogate",
                    "invalid/E039_statement_lone_surrogate",
                ],
            ),
            (
                "integer > 2^53 (manifest, component, envelope, statement)",
                [
                    "invalid/E038_manifest_integer_too_large",
                    "invalid/E038_component_integer_too_large",
                    "invalid/E038_envelope_integer_too_large",
                    "invalid/E038_statement_integer_too_large",
                ],
            ),
        ],
    ),
    (
        "schema violations",
        [
            ("manifest", ["invalid/E032_missing_files", "invalid/E032_unpinned_container", "invalid/E036_bad_reference", "invalid/E035_unsorted_files"]),
            ("annotations", ["invalid/E037_dangling_likelihood", "invalid/E037_missing_likelihood_annotation", "invalid/E037_wrong_role"]),
            (
                "components",
                ["invalid/E061_workspace_schema", "invalid/E062_patchset_schema", "invalid/E065_patch_file_not_json_patch", "invalid/E068_results_cls_range"],
            ),
        ],
    ),
    ("unknown major version", [("version 2.0.0", ["invalid/E033_major_version_2"]), ("another format URI", ["invalid/E033_wrong_uri"])]),
    (
        "logical-path attacks",
        [
            ("NFC/NFD twins, NFD path", ["invalid/E034_nfc_nfd_twins", "invalid/E034_nfd_path"]),
            ("case-fold twins", ["invalid/E034_case_fold_twins", "invalid/E034_case_fold_sharp_s"]),
            ("Windows device names, NTFS streams", ["invalid/E034_windows_device_name", "invalid/E034_colon_stream"]),
            ("trailing dot or space", ["invalid/E034_trailing_dot", "invalid/E034_trailing_space"]),
            ("control and format characters", ["invalid/E034_control_character", "invalid/E034_bidi_override"]),
            ("a and a/b both present", ["invalid/E034_file_and_directory", "invalid/E034_file_and_directory_case"]),
            (
                "reserved names, ~, lengths",
                ["invalid/E034_reserved", "invalid/E034_reserved_signatures", "invalid/E034_tilde", "invalid/E034_too_long", "invalid/E034_segment_too_long"],
            ),
        ],
    ),
    (
        "BagIt files that disagree with the manifest",
        [
            ("bagit.txt", ["invalid/E040_bagit_version", "invalid/E040_bagit_byte_order_mark"]),
            (
                "bag-info.txt",
                ["invalid/E041_payload_oxum", "invalid/E041_bundle_identity", "invalid/E041_no_software_agent", "invalid/E041_software_agent_with_cr"],
            ),
            ("payload manifests", ["invalid/E042_manifest_sha256_digest", "invalid/E042_manifest_sha256_extra_line", "invalid/E043_manifest_sha512_digest"]),
            ("tag manifest", ["invalid/E044_tag_manifest"]),
            ("fetch.txt, extra tag files", ["invalid/E019_fetch_txt", "invalid/E019_extra_tag_file"]),
        ],
    ),
    (
        "untrusted signatures",
        [
            ("no trust policy", ["warn/W007_unverified_signatures"]),
            ("key not trusted for the role", ["warn/W008_untrusted_signatures"]),
            ("threshold not met", ["invalid/E078_role_not_signed"]),
            ("trusted and met", ["valid/OK_trusted_signatures"]),
            ("reproduction record required and present", ["valid/OK_replay_attestation"]),
            ("reproduction record required and missing", ["invalid/E078_replay_ci_not_signed"]),
        ],
    ),
    (
        "spliced signatures",
        [
            ("envelope of another bundle", ["invalid/E074_other_bundle", "invalid/E074_content_changed_after_signing"]),
            ("sshsig over other bytes", ["invalid/E077_sshsig_other_manifest"]),
            ("renamed or re-keyed envelope", ["invalid/E075_renamed_role", "invalid/E075_other_keyid", "invalid/E073_keyid_mismatch"]),
            ("tampered or forged", ["invalid/E073_tampered_payload", "invalid/E073_signed_by_another_key"]),
            (
                "forged or spliced reproduction record",
                [
                    "invalid/E079_replay_record_other_bundle",
                    "invalid/E079_replay_record_failed_point",
                    "invalid/E079_replay_record_no_points",
                    "invalid/E073_replay_record_tampered",
                    "invalid/E074_replay_record_spliced",
                ],
            ),
            (
                "malformed signature files",
                [
                    "invalid/E070_signature_name",
                    "invalid/E070_unknown_suffix",
                    "invalid/E071_envelope_not_json",
                    "invalid/E071_payload_type",
                    "invalid/E071_bad_base64",
                ],
            ),
            ("statement fields", ["invalid/E072_predicate_type", "invalid/E072_no_role", "invalid/E072_statement_type"]),
            ("sshsig namespace, armor", ["invalid/E076_sshsig_namespace", "invalid/E076_sshsig_not_armored"]),
            ("sshsig hash algorithm", ["invalid/E076_sshsig_hash_sha1", "invalid/E076_sshsig_hash_unknown"]),
        ],
    ),
    (
        "double-counted signatures",
        [
            ("one key, several signatures", ["invalid/E078_key_counts_once"]),
            ("two signatures in one envelope", ["invalid/E071_two_signatures"]),
            ("one signature entry twice", ["invalid/E014_duplicate_signature"]),
        ],
    ),
    (
        "YAML anchors/aliases or !!python tags (arch.yaml, build side)",
        [
            ("anchor and alias", ["tools/build/yaml_anchor_alias"]),
            ("merge key", ["tools/build/yaml_merge_key"]),
            ("billion laughs", ["tools/build/yaml_billion_laughs"]),
            ("!!python tag", ["tools/build/yaml_python_tag"]),
            ("local and core tags", ["tools/build/yaml_custom_tag", "tools/build/yaml_core_tag"]),
            ("nesting bomb", ["tools/build/yaml_deep_nesting"]),
            (
                "the same in a trust policy (verify side)",
                [
                    "tools/trust/policy_alias_counts_a_key_twice",
                    "tools/trust/policy_python_tag",
                    "tools/trust/policy_billion_laughs",
                    "tools/trust/policy_deep_nesting",
                ],
            ),
        ],
    ),
    ("entry-count exhaustion", [("257 signature entries", ["invalid/E018_entry_count"])]),
    (
        "symlinks at the extraction target (extract side)",
        [
            ("target is a symbolic link to a directory", ["tools/extract/target_symlink_to_empty_directory"]),
            ("target is a dangling symbolic link", ["tools/extract/target_dangling_symlink"]),
            ("target is an existing file", ["tools/extract/target_existing_file"]),
            ("target is a non-empty directory", ["tools/extract/target_non_empty_directory"]),
        ],
    ),
]

#: issue 11's classes of bundles whose cost is not bounded by their size (spec section 5.1)
COST_CLASSES: list[tuple[str, list[str]]] = [
    ("the same blob referenced many times", ["valid/OK_blob_referenced_1024_times", "invalid/E018_blob_referenced_5000_times"]),
    ("a patch with thousands of operations", ["invalid/E064_patch_of_6000_operations"]),
    ("a large simplified-likelihood covariance", ["valid/OK_simplified_1200_bins"]),
    ("a huge declared or zero blob", ["valid/OK_zero_blob_64mib", "invalid/E017_huge_declared_blob", "valid/OK_blob_over_8mib"]),
    (
        "deep nesting",
        ["invalid/E060_component_nested_100000", "invalid/E030_manifest_nested_100000", "invalid/E060_component_too_deep", "tools/build/yaml_deep_nesting"],
    ),
    (
        "many or large head entries",
        ["invalid/E042_head_entries_at_caps", "invalid/E018_bag_info_over_64mib", "invalid/E018_entry_count", "invalid/E018_manifest_too_large"],
    ),
]


def known_vectors() -> set[str]:
    return {f"{v.kind}/{v.name}" for v in VECTORS} | {f"tools/{t.command}/{t.name}" for t in TOOL_VECTORS}


def link(ref: str) -> str:
    return f"[`{ref}`](../{ref})" if ref.startswith("tools/") else f"[`{ref}`]({ref})"


def coverage() -> list[str]:
    """The coverage section of VECTORS.md; raises when a name does not exist."""
    known = known_vectors()
    unknown = sorted(({r for _, subs in THREATS for _, refs in subs for r in refs} | {r for _, refs in COST_CLASSES for r in refs}) - known)
    if unknown:
        raise SystemExit(f"THREATS or COST_CLASSES name vectors that do not exist: {unknown}")
    lines = [
        "## Coverage of the threat list",
        "",
        "DESIGN.md section 3 lists the inputs a verifier must reject (the threat list of issue 11), here one row per case and",
        "sub-case; every sub-case has at least one vector (`tools/...` are the build and extract vectors of `conformance/tools/`).",
        "",
        "| # | case | sub-case | vectors |",
        "|---|---|---|---|",
    ]
    for n, (case, subs) in enumerate(THREATS, 1):
        for i, (sub, refs) in enumerate(subs):
            lines.append(f"| {n if i == 0 else ''} | {case if i == 0 else ''} | {sub} | {', '.join(link(r) for r in refs)} |")
    lines += [
        "",
        "## Cost classes",
        "",
        "Issue 11's bundles whose verification cost is not bounded by their size unless the verifier follows the cost model of",
        "spec section 5.1 (each distinct blob checked once, failing patches located by bisection, O(n^2) reading of a",
        "simplified likelihood, the declared payload streamed in constant memory, nesting measured on the bytes, caps on what",
        "comes before the payload). Each of these verifies in a few seconds.",
        "",
        "| class | vectors |",
        "|---|---|",
        *(f"| {cls} | {', '.join(link(r) for r in refs)} |" for cls, refs in COST_CLASSES),
        "",
    ]
    return lines


# ---------------------------------------------------------------------------------------
# output


def readme(v: Vector) -> str:
    def sentence(code: str) -> str:
        return f"{code}: {CODES[code][0]}"

    if v.kind == "valid":
        tail = "A conforming verifier MUST accept it (exit 0) and report no error (no E code) at level full."
    elif v.kind == "warn":
        tail = "The bundle is valid (exit 0); a conforming verifier reports these SHOULD findings: " + " ".join(sentence(c) for c in v.codes)
    else:
        tail = "A conforming verifier MUST reject it (exit 1) and report " + ", ".join(v.codes) + ". It breaks " + " ".join(sentence(c) for c in v.codes)
    if v.trust is not None:
        tail += " The verifier is given the trust policy in expected.json (member trust, passed as --trust; see PROTOCOL.md section 2)."
    return f"# {v.kind}/{v.name}\n\n{v.about} {tail}\n"


def expected(v: Vector, identity: str | None) -> str:
    obj: dict[str, Any] = {"codes": v.codes, "level": "full", "valid": v.kind != "invalid"}
    if v.trust is not None:
        obj["trust"] = v.trust
    if v.kind != "invalid":
        if identity is None:
            raise SystemExit(f"{v.name}: a valid vector must be made from a Draft (its identity is recorded)")
        obj["identity"] = identity
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def index() -> str:
    lines = [
        "# heparch bundle format 1.0: conformance vectors",
        "",
        "Generated by `conformance/make_vectors.py`; do not edit. See PROTOCOL.md for how to run them.",
        "",
        "| kind | vector | valid | codes | what |",
        "|---|---|---|---|---|",
    ]
    for v in sorted(VECTORS, key=lambda v: (KINDS.index(v.kind), v.name)):
        codes = ", ".join(v.codes) or "-"
        lines.append(f"| {v.kind} | `{v.name}` | {'yes' if v.kind != 'invalid' else 'no'} | {codes} | {v.about.replace('|', '/')} |")
    counts = {k: sum(v.kind == k for v in VECTORS) for k in ("valid", "warn", "invalid")}
    lines += ["", f"{counts['valid']} valid, {counts['warn']} warn, {counts['invalid']} invalid: {len(VECTORS)} vectors.", "", *coverage()]
    return "\n".join(lines)


def generate(out: Path) -> None:
    """Write every vector and VECTORS.md under ``out`` (removing what an earlier run left)."""
    names = [v.name for v in VECTORS]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"duplicate vector names: {sorted(duplicates)}")
    for v in VECTORS:
        unknown = [c for c in v.codes if c not in CODES]
        if unknown:
            raise SystemExit(f"{v.name}: codes not in heparch.spec.codes: {unknown}")
    out.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for v in VECTORS:
        folder = out / v.kind / v.name
        folder.mkdir(parents=True)
        data, identity = v.make()
        (folder / "bundle.zst").write_bytes(data)
        (folder / "README.md").write_text(readme(v), encoding="utf-8")
        (folder / "expected.json").write_text(expected(v, identity), encoding="utf-8")
    (out / "VECTORS.md").write_text(index(), encoding="utf-8")


def differences(a: Path, b: Path, names: tuple[str, ...] = GENERATED) -> list[str]:
    """Relative paths (of the generated parts ``names``) that differ between trees ``a`` and ``b``."""

    def files(root: Path) -> set[str]:
        found = set()
        for name in names:
            p = root / name
            if p.is_file():
                found.add(name)
            elif p.is_dir():
                found.update(str(f.relative_to(root)) for f in p.rglob("*") if f.is_file())
        return found

    fa, fb = files(a), files(b)
    out = sorted(fa ^ fb)
    out += sorted(rel for rel in fa & fb if not filecmp.cmp(a / rel, b / rel, shallow=False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary directory and exit 1 if anything differs from the committed vectors")
    parser.add_argument("--out", type=Path, default=SUITE, help="suite directory (default: conformance/1.0)")
    parser.add_argument("--tools-out", type=Path, default=TOOLS, help="tool vector directory (default: conformance/tools)")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="heparch-vectors-") as tmp:
            generate(Path(tmp) / "suite")
            generate_tools(Path(tmp) / "tools")
            diff = differences(args.out, Path(tmp) / "suite")
            diff += [f"tools/{rel}" for rel in differences(args.tools_out, Path(tmp) / "tools", TOOL_PARTS)]
        if diff:
            print(f"{len(diff)} generated files differ from {args.out} (zstandard {zstandard.__version__}); run conformance/make_vectors.py:", file=sys.stderr)
            for rel in diff:
                print(f"  {rel}", file=sys.stderr)
            return 1
        print(f"{len(VECTORS)} vectors in {args.out} and {len(TOOL_VECTORS)} tool vectors in {args.tools_out} are up to date", file=sys.stderr)
        return 0
    generate(args.out)
    generate_tools(args.tools_out)
    counts = {k: sum(v.kind == k for v in VECTORS) for k in ("valid", "warn", "invalid")}
    print(
        f"wrote {len(VECTORS)} vectors to {args.out}: {counts['valid']} valid, {counts['warn']} warn, {counts['invalid']} invalid;"
        f" {len(TOOL_VECTORS)} tool vectors to {args.tools_out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
