"""Validation codes: mirrors ``spec/validation-codes.md`` (a test keeps them equal).

E codes are MUST requirements (an error makes a bundle invalid); W codes are
SHOULD requirements (warnings; the bundle stays valid).
"""

from __future__ import annotations

# code -> (requirement sentence, anchor in spec/bundle-v1.md)
CODES: dict[str, tuple[str, str]] = {
    # container: zstd frames (spec section 2.1)
    "E001": ("A bundle MUST be a sequence of zstd frames; the file MUST start with the zstd magic number and MUST NOT be empty.", "zstd-frames"),
    "E002": (
        "Every frame header MUST follow the frame-header profile: reserved and unused bits zero, Single_Segment set, content checksum flag set, no dictionary ID, minimal Frame_Content_Size field.",
        "zstd-frame-profile",
    ),
    "E003": ("A frame MUST NOT hold more than 8 MiB (8388608 bytes) of decompressed data, and MUST NOT be empty.", "zstd-frame-profile"),
    "E004": ("Every frame MUST decompress without error to exactly its Frame_Content_Size, and its content checksum MUST match.", "zstd-frames"),
    "E005": ("The file MUST NOT end inside a frame (truncation).", "zstd-frames"),
    "E006": ("Skippable frames and any byte after the last frame MUST NOT be present.", "zstd-frames"),
    "E007": ("frames-sha256.txt MUST list the compressed length and sha256 of every frame of the head and payload parts, in order.", "frame-digests"),
    "E008": (
        "Each part (head, signatures, payload) MUST start a new frame, and the signature part's frames MUST hold only raw (stored) blocks.",
        "zstd-frame-profile",
    ),
    # container: tar (spec section 2.2)
    "E010": (
        "Every tar header MUST be a canonical POSIX ustar header (magic, version, checksum, mode 0644, uid/gid 0, empty user/group names, mtime 0, zero padding) exactly as the writer produces it.",
        "tar-profile",
    ),
    "E011": ("Every tar entry MUST be a regular file: no links, devices, FIFOs or directory entries.", "tar-profile"),
    "E012": ("Every entry name MUST be a safe relative name under bundle/: no '..', no absolute path, no backslash, no control character.", "tar-profile"),
    "E013": ("PAX and GNU extension headers MUST NOT be present.", "tar-profile"),
    "E014": ("An entry name MUST NOT appear twice.", "entry-order"),
    "E015": ("Entries MUST appear in the fixed order: head, signatures, tag manifest, payload blobs in ascending digest order.", "entry-order"),
    "E016": ("The tar stream MUST end with exactly two zero blocks and nothing after them; the data between entries MUST be zero padding.", "tar-profile"),
    "E017": ("The tar stream MUST NOT end before its end-of-archive blocks (truncation).", "tar-profile"),
    "E018": ("The archive MUST stay within the reader's caps (entry count, head size, payload length implied by the manifest).", "limits"),
    "E019": ("Only the entries this specification names MUST be present (for example, fetch.txt is forbidden).", "entry-order"),
    "E020": (
        "Every required entry MUST be present (bagit.txt, bag-info.txt, data/manifest.json, manifest-sha256.txt, manifest-sha512.txt, frames-sha256.txt, tagmanifest-sha256.txt).",
        "entry-order",
    ),
    # manifest (spec section 3)
    "E030": ("data/manifest.json MUST be strict JSON: UTF-8 without BOM, no duplicate keys, no NaN or Infinity, within the depth and size caps.", "manifest"),
    "E031": ("data/manifest.json MUST be byte-identical to its RFC 8785 canonical form.", "manifest"),
    "E032": ("data/manifest.json MUST validate against the manifest schema of its format version.", "manifest"),
    "E033": ("The manifest's bundleFormat MUST name this format's URI and major version 1.", "versioning"),
    "E034": (
        "Every logical path MUST be safe and unambiguous: NFC, no control characters, no '.', '..' or empty segments, no trailing dot or space, no Windows device names, no case-fold twins, no file that is also a directory, not reserved.",
        "logical-paths",
    ),
    "E035": ("Manifest files MUST be sorted by logical path and each path MUST appear once.", "manifest"),
    "E036": ("Every container reference MUST be pinned by digest as name@sha256:<64 lowercase hex>.", "containers"),
    "E037": ("Every annotation that names another component (for example likelihood) MUST name a file of the bundle with the right role.", "components"),
    # JSON values of every JSON document (spec section 1.2)
    "E038": (
        "Every JSON document of a bundle (the manifest, every JSON component, every envelope and its payload) MUST hold only integers within +-(2^53 - 1), as I-JSON (RFC 7493) requires and RFC 8785 can write.",
        "json-values",
    ),
    "E039": (
        "A string or object key of any JSON document of a bundle MUST NOT hold a lone surrogate (an unpaired escape in U+D800 to U+DFFF), which UTF-8 cannot encode.",
        "json-values",
    ),
    # BagIt tag files (spec section 2.3)
    "E040": ("bagit.txt MUST equal the regenerated BagIt declaration.", "bagit"),
    "E041": ("bag-info.txt MUST equal the file regenerated from the manifest (Payload-Oxum) and its recorded Bag-Software-Agent.", "bagit"),
    "E042": ("manifest-sha256.txt MUST equal the file regenerated from data/manifest.json.", "bagit"),
    "E043": ("manifest-sha512.txt MUST equal the file regenerated from data/manifest.json.", "bagit"),
    "E044": ("tagmanifest-sha256.txt MUST equal the file regenerated from the tag files and signatures.", "bagit"),
    # payload fixity (spec section 2.4)
    "E050": ("Every file listed in the manifest MUST have its blob in the payload.", "payload"),
    "E051": ("The payload MUST NOT hold a blob that the manifest does not list.", "payload"),
    "E052": ("Every blob MUST have the size the manifest records.", "payload"),
    "E053": ("Every blob's sha256 MUST equal its name and the manifest's digest.", "payload"),
    "E054": ("Every blob's sha512 MUST equal the manifest's fixity.sha512.", "payload"),
    # components (spec section 4)
    "E060": ("Every JSON component MUST be strict UTF-8 JSON.", "components"),
    "E061": (
        "A likelihood MUST validate against pyhf workspace schema 1.0.0 and be internally consistent (bin counts, channel names, parameters of interest).",
        "likelihood",
    ),
    "E062": ("A patchset MUST validate against pyhf PatchSet schema 1.0.0 and name its likelihood.", "patchset"),
    "E063": ("A patchset's metadata.digests MUST match its background-only likelihood.", "patchset"),
    "E064": ("Every patch MUST apply to its likelihood and give a valid workspace.", "patchset"),
    "E065": ("A patch file MUST be a valid RFC 6902 JSON Patch and name its likelihood.", "patchset"),
    "E066": (
        "A simplified likelihood MUST validate against its schema with consistent shapes and a symmetric positive-definite covariance.",
        "simplified-likelihood",
    ),
    "E067": ("Third moments, when present, MUST satisfy m3_i^2 <= 8 m2_ii^3 for every bin.", "simplified-likelihood"),
    "E068": ("A results component MUST validate against its schema.", "results"),
    "E069": ("A results component MUST name a likelihood of the bundle, at most one per likelihood, and only its signal points.", "results"),
    # signatures and trust (spec section 6)
    "E070": (
        "Every signature file MUST be named <role>.<keyid>.dsse.json or <role>.<keyid>.sshsig, with a role of 1-24 characters a-z, 0-9 and '-' and a key id of 64 lowercase hex.",
        "signature-names",
    ),
    "E071": (
        "Every DSSE envelope MUST be strict JSON holding exactly payload (base64), payloadType application/vnd.in-toto+json and one signature {keyid, sig}.",
        "dsse-envelopes",
    ),
    "E072": (
        "Every envelope's payload MUST be an in-toto Statement v1 with one subject, the heparch predicateType and a predicate giving role, keyid, publicKey and time.",
        "dsse-envelopes",
    ),
    "E073": (
        "Every envelope's Ed25519 signature MUST verify over the DSSE pre-authentication encoding of its payload with the predicate's public key, whose key id MUST be the predicate's and the signature's keyid.",
        "dsse-envelopes",
    ),
    "E074": ("Every envelope's subject digest MUST be the identity of the bundle it is verified with.", "dsse-envelopes"),
    "E075": ("A signature file's name MUST give the role and key id of the signature it holds.", "signature-names"),
    "E076": (
        "Every sshsig file MUST be an armored OpenSSH signature (SSHSIG version 1) by an Ed25519 key with namespace heparch-bundle and hash sha512 or sha256.",
        "sshsig",
    ),
    "E077": ("Every sshsig file MUST verify over the exact bytes of data/manifest.json.", "sshsig"),
    "E078": (
        "With a trust policy, every required role MUST be signed by at least the required number of distinct keys that the policy trusts for that role.",
        "trust-policies",
    ),
    "E079": (
        "An envelope's predicate.replay, when present, MUST be a reproduction record of the documented form (heparch, platform, date, backends, results, points with a worst_ratio from 0 to 1) naming exactly the results components of the bundle it is verified with, with their digests.",
        "reproduction-records",
    ),
    # computability of a likelihood (spec section 4.1)
    "E080": (
        "A likelihood's background rate (the sum of the samples not scaled by a parameter of interest, at nominal parameters) MUST be > 0 in every bin, or 0 where nothing is observed, and every observed count MUST be >= 0; pyhf cannot compute the model otherwise.",
        "likelihood",
    ),
    "E081": (
        "A likelihood's measurements MUST configure their parameters so that pyhf can start a fit (every lower bound <= its upper bound, every initial value within its bounds, given or pyhf's defaults, and inits, bounds, auxdata and sigmas for every lumi parameter): at least one of them, and the one its results claim with (named in their settings, else the first).",
        "likelihood",
    ),
    "E082": (
        "A signal-interface component MUST validate against the signal-interface schema and name, in its likelihood field, the likelihood its manifest annotation names.",
        "signal-interface",
    ),
    "E083": (
        "A signal-interface component MUST NOT contradict its likelihood's published signal patches: every region, bin count, staterror, systematic, POI and sample name it declares is what the patches show (it may say less).",
        "signal-interface",
    ),
    # archives imported by arch build (spec section 8.1): input errors, exit 2
    "E090": (
        "An imported archive's entry name MUST be a safe relative path: no absolute path or drive letter, no '..' segment, no backslash, no control character.",
        "import-profile",
    ),
    "E091": ("An imported archive MUST NOT hold symbolic or hard links.", "import-profile"),
    "E092": ("An imported archive MUST hold only regular files and directories: no devices, FIFOs, sparse or other special entries.", "import-profile"),
    "E093": (
        "An imported archive's entry names MUST be unique, also after Unicode NFC normalisation and case folding, and no name MUST be both a file and a directory.",
        "import-profile",
    ),
    "E094": (
        "An imported archive MUST stay within the import caps (entries, total and per-entry decompressed size, compression ratio, header size), checked while it is read.",
        "import-profile",
    ),
    "E095": ("An imported archive MUST be a readable .tar.gz, .tgz, .tar or .zip file (not truncated, corrupt or encrypted).", "import-profile"),
    # signal inputs of arch reinterpret (spec section 8.2)
    "E100": (
        "A signal-inputs file MUST have the documented structure: points with a name and regions, each region with a yield per bin, numbers where numbers are expected, each point and each (point, region, bin) given once.",
        "signal-inputs",
    ),
    "E101": (
        "Every region and systematic a signal input names MUST be one of the signal interface of its likelihood.",
        "signal-inputs",
    ),
    "E102": (
        "Every signal input MUST give one number per bin of its region for yields, mc_unc and variations, and a normsys variation the same number in every bin.",
        "signal-inputs",
    ),
    "E103": (
        "Every number of a signal input MUST be finite (no NaN, no infinity).",
        "signal-inputs",
    ),
    "E104": (
        "A signal input MUST keep the total expected rate (background plus mu times signal) >= 0 in every bin for every mu inside the POI's bounds.",
        "signal-inputs",
    ),
    # warnings
    "W001": ("A reader SHOULD report fields it does not know (from a newer 1.x version) and otherwise accept them.", "versioning"),
    "W002": ("The analysis metadata SHOULD give an SPDX license.", "metadata"),
    "W003": ("The analysis metadata SHOULD give the centre-of-mass energy (sqrt_s_TeV).", "metadata"),
    "W004": ("The analysis metadata SHOULD give the integrated luminosity (luminosity_ifb).", "metadata"),
    "W005": ("A component SHOULD NOT hold fields its schema does not know.", "components"),
    "W006": ("A bundle written by a newer minor version of the format SHOULD be read with a warning.", "versioning"),
    "W007": ("A valid signature checked without a trust policy SHOULD be reported as present but unverified, never as trusted.", "signature-verification"),
    "W008": (
        "A valid signature by a key that the trust policy does not trust for its role SHOULD be reported; it does not count towards any threshold.",
        "trust-policies",
    ),
    # likelihoods pyhf accepts with something unusual (spec section 4.1)
    "W009": (
        "A likelihood SHOULD NOT hold observations that pyhf ignores: of a channel it does not have (as patches that remove a channel leave them), or all but the last of one channel's observations.",
        "likelihood",
    ),
    "W010": ("A sample SHOULD NOT have negative yields; they are accepted where the background rate stays as E080 requires.", "likelihood"),
    "W011": (
        "A measurement SHOULD NOT configure a parameter that no modifier of its likelihood, nor of any patch of it, uses (pyhf ignores it).",
        "likelihood",
    ),
    "W012": (
        "A measurement that pyhf cannot start a fit from (as E081 says) SHOULD NOT be stored where another measurement of the likelihood works; it is accepted when no results claim with it.",
        "likelihood",
    ),
    "W013": (
        "The analysis metadata's identifiers and quantities SHOULD be in their documented form: inspire ins<number>, arxiv an arXiv id (new or old form), doi and hepdata DOIs (hepdata: a HEPData record DOI or an INSPIRE id), every contact's orcid an ORCID iD with a valid ISO 7064 MOD 11-2 check digit, license an SPDX license expression; arch build refuses a value arch.yaml gives in another form.",
        "metadata",
    ),
    "W014": (
        "Every id of the analysis metadata's SPDX license expression SHOULD be in the SPDX License List (heparch reads version 3.29.0); an id a reader's list does not have (maybe a newer one) is reported, and arch build refuses it.",
        "metadata",
    ),
    # arch build of an imported archive or a directory with HEPData metadata (spec section 8.1)
    "W020": ("An imported archive's macOS metadata (__MACOSX/, ._* and .DS_Store entries) SHOULD NOT be imported; it is skipped.", "import-profile"),
    "W021": (
        "Analysis metadata found in the files SHOULD agree with arch.yaml and with each other; arch.yaml's value, else the first found, is kept.",
        "import-profile",
    ),
    "W022": ("A guessed analysis metadata value SHOULD be confirmed in arch.yaml.", "import-profile"),
    # signal inputs of arch reinterpret (spec section 8.2)
    "W030": (
        "A signal input SHOULD NOT have negative yields; one that keeps the total expected rate positive for every mu inside the POI's bounds is accepted.",
        "signal-inputs",
    ),
}

ERROR_CODES = frozenset(c for c in CODES if c.startswith("E"))
WARNING_CODES = frozenset(c for c in CODES if c.startswith("W"))
