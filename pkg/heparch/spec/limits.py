"""The caps of the format (spec section 2.2.2), in one place.

Each cap is a finding with a code when a bundle exceeds it (E018, or E030/E060 for nesting),
or an input error (exit 2) for the files read beside a bundle. The caps admit real analyses
(1Lbb's head and signature part are 14 kB; a 5,000-patch-file analysis has a 2 MiB manifest; simplified
likelihoods of 2,000 bins; payloads of tens of GB) and bound what a reader holds before the
payload to 23 MiB (:data:`HEAD_BYTES`), whatever a bundle declares.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1 << 10
MIB: Final = 1 << 20
GIB: Final = 1 << 30

# --- the head and the signature part (structure level, E018) -------------------------------
BAGIT_TXT: Final = 4 * KIB
BAG_INFO: Final = 64 * KIB
MANIFEST: Final = 8 * MIB  # 20,000 entries of ~400 bytes; 1Lbb's is 4 kB
#: files the manifest lists (5,000 patch files and their likelihood are 5,001)
FILES: Final = 20_000
#: manifest-sha256.txt and manifest-sha512.txt: one fixed-length line per distinct blob and one
#: for data/manifest.json, so their size follows from FILES
_SHA256_LINE, _SHA512_LINE, _MANIFEST_PATH, _BLOB_PATH = 64 + 2 + 1, 128 + 2 + 1, len("data/manifest.json"), len("data/blobs/sha256/") + 64
MANIFEST_SHA256: Final = _SHA256_LINE + _MANIFEST_PATH + FILES * (_SHA256_LINE + _BLOB_PATH)
MANIFEST_SHA512: Final = _SHA512_LINE + _MANIFEST_PATH + FILES * (_SHA512_LINE + _BLOB_PATH)
#: frames-sha256.txt: about 44,000 frames (340 GiB of payload in 8 MiB frames); a payload
#: frame beyond those it lists is E007 as soon as it is read
FRAMES_LISTING: Final = 4 * MIB
SIGNATURES: Final = 64
SIGNATURE_SIZE: Final = 64 * KIB  # an Ed25519 DSSE envelope or SSH signature is about 1 kB
#: tagmanifest-sha256.txt: one line per tag file (4), frames-sha256.txt and each signature
#: file (a name of at most 255 bytes under signatures/)
TAGMANIFEST: Final = (5 + SIGNATURES) * (_SHA256_LINE + len("signatures/") + 255)
#: everything a reader holds before the payload, at most
HEAD_BYTES: Final = BAGIT_TXT + BAG_INFO + MANIFEST + MANIFEST_SHA256 + MANIFEST_SHA512 + FRAMES_LISTING + SIGNATURES * SIGNATURE_SIZE + TAGMANIFEST

# --- what the manifest declares (structure level, E018 at data/manifest.json) ---------------
PAYLOAD: Final = 256 * GIB  # the sum of the sizes of the distinct blobs
REFERENCES: Final = 1024  # file entries naming one blob

# --- components (full level, E018 at the component) -----------------------------------------
PATCHES: Final = 100_000  # patches of one patchset
OPERATIONS: Final = 100_000  # operations of one patch (in a patchset or a patch file)
BINS: Final = 5_000  # bins of a simplified likelihood (its covariance is BINS x BINS)
#: JSON values the ``copy`` operations of one patch may add, or as many as the patched document
#: holds when that is more (a patch that copies more does not apply: E064/E065)
COPIED_VALUES: Final = 1_000_000

# --- nesting (E030 for the manifest, E060 for components) and files beside a bundle ---------
DEPTH: Final = 64
YAML_BYTES: Final = 4 * MIB  # arch.yaml and trust policies (an input error, exit 2)

# --- archives imported by arch build (the import profile, spec section 8.1; E094, exit 2) ---
#: entries of one imported archive, directories and skipped macOS metadata included (HEPData
#: likelihood archives hold a few hundred files, 5,000 patch files at most seen; a bundle lists
#: at most FILES)
IMPORT_ENTRIES: Final = 25_000
#: bytes decompressed from one import, nested archives included
IMPORT_BYTES: Final = 32 * GIB
#: bytes of one entry: the largest file a bundle holds (a ustar entry, section 3.1)
IMPORT_ENTRY_BYTES: Final = 8 * GIB - 1
#: decompressed bytes per compressed byte of one archive, checked while streaming once more than
#: IMPORT_RATIO_FLOOR bytes came out (pyhf JSON compresses 10-25:1; deflate's limit is ~1032:1)
IMPORT_RATIO: Final = 200
IMPORT_RATIO_FLOOR: Final = 64 * MIB
#: one PAX or GNU long-name header of a tar archive, and a zip's central directory
IMPORT_HEADER_BYTES: Final = 1 * MIB
IMPORT_ZIP_DIRECTORY: Final = 16 * MIB
