"""arch build of HEPData archives (issue 14 item 1): the import profile (spec section 8.1).

An archive and its unpacked directory build the same bundle; submission.yaml gives the
metadata; hostile archives are refused with their codes before anything is written, and
the temporary directory is gone afterwards, also after an interrupt.
"""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heparch import importer
from heparch.build import build
from heparch.errors import BuildRefused, InputError
from heparch.identifiers import parse_hepdata
from heparch.metadata import archive_resources, from_global_info, from_submission
from heparch.spec import limits
from heparch.spec.codes import CODES

from clihelp import run
from conftest import ONE_LBB, small_patchset, small_workspace

# --- making archives -----------------------------------------------------------------------


def _sbottom_dir(root: Path) -> Path:
    """Three regions, each a background-only workspace and its patchset, as the sbottom archive."""
    for i, region in enumerate("ABC"):
        folder = root / f"Region{region}"
        folder.mkdir(parents=True)
        ws = small_workspace(obs=5.0 + i)
        (folder / "BkgOnly.json").write_text(json.dumps(ws))
        (folder / "patchset.json").write_text(json.dumps(small_patchset(ws)))
    long = root / "RegionA" / "docs" / ("a-very-long-file-name-" * 6 + ".md")  # > 100 bytes: a PAX/GNU long name
    long.parent.mkdir()
    long.write_text("notes\n")
    return root


def _tar_gz(src: Path, out: Path, *, top: str | None = None, junk: bool = False, fmt: int = tarfile.PAX_FORMAT) -> Path:
    """``src`` as an ordinary tar.gz: directory entries, odd owners, modes and mtimes."""

    def odd(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname, info.mtime, info.mode = 1234, 99, "physicist", "atlas", 1_600_000_000, 0o775
        return info

    with tarfile.open(out, "w:gz", format=fmt) as tf:
        for path in sorted(src.rglob("*")):
            name = path.relative_to(src).as_posix()
            tf.add(path, arcname=f"{top}/{name}" if top else name, recursive=False, filter=odd)
        if junk:
            for name, data in (("__MACOSX/RegionA/._BkgOnly.json", b"\0\5\26\7"), ("RegionA/.DS_Store", b"Bud1"), ("RegionB/._patchset.json", b"x")):
                _add(tf, name, data)
    return out


def _zip(src: Path, out: Path, *, top: str | None = None) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            name = path.relative_to(src).as_posix()
            zf.write(path, f"{top}/{name}" if top else name)
    return out


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _identity(source: Path, out: Path) -> str:
    return build(source, output=out).identity


# --- identity: archive == unpacked directory ------------------------------------------------


def test_sbottom_style_archive_builds_like_its_directory(tmp_path: Path) -> None:
    src = _sbottom_dir(tmp_path / "sbottom")
    expected = build(src, output=tmp_path / "dir.zst")
    tgz = _tar_gz(src, tmp_path / "sbottom-likelihoods.tar.gz", junk=True)
    got = build(tgz, output=tmp_path / "tgz.zst")
    assert got.identity == expected.identity
    assert (tmp_path / "tgz.zst").read_bytes() == (tmp_path / "dir.zst").read_bytes()
    paths = [f.path for f in got.manifest.files]
    assert "RegionB/BkgOnly.json" in paths
    assert not any("MACOSX" in p or "/._" in p for p in paths)
    assert {f.annotations.get("likelihood") for f in got.manifest.files if f.role == "patchset"} == {f"Region{r}/BkgOnly.json" for r in "ABC"}
    w020 = [w for w in got.warnings if w.code == "W020"]
    assert len(w020) == 1
    assert "3 macOS metadata entries" in w020[0].message
    assert w020[0].location == str(tgz)
    # one top folder (GNU long names this time), a .tgz and a .zip: the same bundle
    assert _identity(_tar_gz(src, tmp_path / "x.tgz", top="HEPData-ins1748602-v2", fmt=tarfile.GNU_FORMAT), tmp_path / "b.zst") == expected.identity
    assert _identity(_zip(src, tmp_path / "x.zip", top="sbottom"), tmp_path / "c.zst") == expected.identity


def test_provenance_names_paths_inside_the_archive(tmp_path: Path) -> None:
    src = _sbottom_dir(tmp_path / "s")
    tgz = _tar_gz(src, tmp_path / "secret-download-name.tar.gz")
    result = build(tgz, output=tmp_path / "o.zst")
    text = json.dumps(result.manifest.to_json())
    assert "secret-download-name" not in text
    assert "heparch-import" not in text
    assert str(tmp_path) not in text
    assert result.output == tmp_path / "o.zst"


def test_default_output_is_named_after_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = _tar_gz(_sbottom_dir(tmp_path / "s"), tmp_path / "sbottom.tar.gz")
    monkeypatch.chdir(tmp_path)
    assert build(tgz).output == tmp_path / "sbottom.zst"


@pytest.mark.slow  # two builds of the 20 MB likelihood with its 125 patches
def test_1lbb_zipped_as_hepdata_serves_it_builds_like_the_directory(tmp_path: Path) -> None:
    zipped = _zip(ONE_LBB, tmp_path / "HEPData-ins1755298-v3-1Lbb_likelihoods.zip", top="1Lbb-likelihoods-hepdata")
    assert _identity(zipped, tmp_path / "zip.zst") == _identity(ONE_LBB, tmp_path / "dir.zst")


# --- submissions and metadata ---------------------------------------------------------------

SUBMISSION = """\
---
comment: |
  Search for bottom squarks
  in final states with b-jets.
record_ids:
  - {type: inspire, id: 1748602}
  - {type: arXiv, id: "arXiv:1908.03122"}
hepdata_doi: 10.17182/hepdata.89408.v3
additional_resources:
  - {location: ./Likelihoods.tar.gz, description: "Archive of full likelihoods in the HistFactory JSON format"}
  - {location: "https://github.com/example/code", description: code}
---
name: Table 1
description: Observed limit
keywords:
  - {name: cmenergies, values: [13000]}
table_doi: 10.17182/hepdata.89408.v3/t1
data_file: table1.yaml
"""

TABLE = """\
independent_variables:
  - header: {name: "m(b1)", units: GeV}
    values: [{value: 800}]
dependent_variables:
  - header: {name: CLs}
    qualifiers:
      - {name: SQRT(S), units: GeV, value: 13000}
      - {name: LUMINOSITY, units: "fb$^{-1}$", value: 139}
    values: [{value: 0.01}]
"""


def _submission_dir(root: Path) -> Path:
    root.mkdir()
    (root / "submission.yaml").write_text(SUBMISSION)
    (root / "table1.yaml").write_text(TABLE)
    likelihoods = _sbottom_dir(root.parent / "likelihoods-src")
    _tar_gz(likelihoods, root / "Likelihoods.tar.gz", top="sbottom-likelihoods")
    return root


def test_submission_zip_with_a_nested_likelihood_archive(tmp_path: Path) -> None:
    sub = _submission_dir(tmp_path / "submission")
    zipped = _zip(sub, tmp_path / "HEPData-ins1748602-v3-yaml.zip", top="HEPData-ins1748602-v3-yaml")
    result = build(zipped, output=tmp_path / "zip.zst")
    analysis = result.manifest.to_json()["analysis"]
    assert analysis["inspire"] == "ins1748602"
    assert analysis["arxiv"] == "1908.03122"
    assert analysis["description"] == "Search for bottom squarks in final states with b-jets."
    assert analysis["sqrt_s_TeV"] == 13
    assert analysis["luminosity_ifb"] == 139
    assert analysis["hepdata"] == "10.17182/hepdata.89408.v3"
    paths = {f.path: f.role for f in result.manifest.files}
    assert paths["Likelihoods/RegionC/BkgOnly.json"] == "likelihood"
    assert paths["Likelihoods/RegionC/patchset.json"] == "patchset"
    assert "Likelihoods.tar.gz" not in paths
    assert paths["submission.yaml"] == "attachment"
    # the submission directory (the nested archive in it) gives the same identity
    assert _identity(sub, tmp_path / "dir.zst") == result.identity


def test_submission_metadata_reader(tmp_path: Path) -> None:
    (tmp_path / "submission.yaml").write_text(
        "record_ids:\n  - {type: hepdata, id: 10.17182/hepdata.89408.v3/r2}\n"
        "additional_resources:\n  - {location: a/./b.tgz}\n  - {location: ../x.zip}\n  - {location: /etc/y.zip}\n  - {location: 'https://x.org/z.zip'}\n"
        "---\nname: t\nkeywords: [{name: cmenergies, values: [8000]}]\ndata_file: t.yaml\n"
    )
    found = {f.field: f for f in from_submission(tmp_path / "submission.yaml", "submission.yaml")}
    assert found["hepdata"].value == "10.17182/hepdata.89408.v3"
    assert found["hepdata"].source == "submission.yaml: record_ids (hepdata)"
    assert found["sqrt_s_TeV"].value == 8
    assert "luminosity_ifb" not in found  # t.yaml is missing: nothing stated, nothing guessed
    assert archive_resources(tmp_path / "submission.yaml") == ["a/b.tgz"]


def test_submission_hepdata_record_number_is_the_records_doi(tmp_path: Path) -> None:
    """A bare number under ``type: hepdata`` is the HEPData record's number, not an INSPIRE id."""
    (tmp_path / "submission.yaml").write_text("record_ids:\n  - {type: hepdata, id: 89408}\n---\nname: t\n")
    found = {f.field: f for f in from_submission(tmp_path / "submission.yaml", "submission.yaml")}
    assert found["hepdata"].value == "10.17182/hepdata.89408"
    assert parse_hepdata(found["hepdata"].value) == "10.17182/hepdata.89408"  # what arch build records


def test_submission_metadata_is_read_with_the_identifiers_parsers(tmp_path: Path) -> None:
    """The record ids, energies and luminosities of a submission go through heparch.identifiers;
    what is not of a field's form (or not a list where one belongs) is passed over."""
    (tmp_path / "submission.yaml").write_text(
        "record_ids:\n  - {type: INSPIRE, id: ins1748602}\n  - {type: arXiv, id: 'arXiv:1908.03122v3'}\n  - {type: arxiv, id: 1913.12345}\n"
        "---\nkeywords: 5\ndata_file: t.yaml\n---\nkeywords: [{name: cmenergies, values: [2760, true, -1]}]\ndata_file: u.yaml\n"
    )
    (tmp_path / "t.yaml").write_text("dependent_variables:\n  - qualifiers: [{name: Luminosity, value: 20300, units: 'pb$^{-1}$'}]\n")
    (tmp_path / "u.yaml").write_text("dependent_variables:\n  - qualifiers: [{name: LUMINOSITY, value: '20.3 fb^{-1}'}, {name: lumi, value: 139}]\n")
    found = {f.field: f.value for f in from_submission(tmp_path / "submission.yaml", "submission.yaml")}
    assert found == {"inspire": "ins1748602", "arxiv": "1908.03122", "sqrt_s_TeV": 2.76, "luminosity_ifb": 20.3}


def test_submission_and_global_info_values_beyond_a_double_are_passed_over(tmp_path: Path) -> None:
    """An energy or luminosity no double holds (.inf, 1e999, a 400-digit integer) is not of its
    field's form: passed over as any other, never an OverflowError (arch build's exit 3)."""
    (tmp_path / "submission.yaml").write_text(
        "comment: c\n---\nkeywords: [{name: cmenergies, values: [.inf]}]\n---\nkeywords: [{name: cmenergies, values: [1" + "0" * 400 + "]}]\n"
        "---\nkeywords: [{name: cmenergies, values: 13000}]\n"
    )
    assert [f.field for f in from_submission(tmp_path / "submission.yaml", "submission.yaml")] == ["description"]
    (tmp_path / "globalInfo.txt").write_text("sqrts: 1e999*TeV\nlumi: 1e306/ab\n")
    assert list(from_global_info(tmp_path / "globalInfo.txt", "globalInfo.txt")) == []
    (tmp_path / "globalInfo.txt").write_text("sqrts: 1" + "0" * 400 + "*TeV\n")
    assert list(from_global_info(tmp_path / "globalInfo.txt", "globalInfo.txt")) == []


def test_global_info_values_in_publishers_links(tmp_path: Path) -> None:
    (tmp_path / "globalInfo.txt").write_text(
        "id: CMS-EXO-20-004\nsqrts: 13*TeV\nlumi: 20300/pb\narxiv: https://arxiv.org/abs/2107.13021v2\npublicationDOI: http:/doi.org/10.1007/JHEP11(2021)153\n"
    )
    found = {f.field: f.value for f in from_global_info(tmp_path / "globalInfo.txt", "globalInfo.txt")}
    assert found == {
        "sqrt_s_TeV": 13,
        "luminosity_ifb": 20.3,
        "arxiv": "2107.13021",
        "doi": "10.1007/JHEP11(2021)153",
        "title": "CMS-EXO-20-004",
        "collaboration": "CMS",
    }
    (tmp_path / "globalInfo.txt").write_text("sqrts: 13\nlumi: .5.5/fb\n")  # a bare number is not taken to be TeV
    assert list(from_global_info(tmp_path / "globalInfo.txt", "globalInfo.txt")) == []


def test_arch_yaml_wins_over_the_archive_with_a_warning(tmp_path: Path) -> None:
    sub = _submission_dir(tmp_path / "submission")
    (sub / "arch.yaml").write_text("analysis:\n  sqrt_s_TeV: 8\n  license: CC-BY-4.0\n")
    result = build(sub, output=tmp_path / "o.zst")
    assert result.manifest.to_json()["analysis"]["sqrt_s_TeV"] == 8
    w021 = [w for w in result.warnings if w.code == "W021"]
    assert any("sqrt_s_TeV 13" in w.message and w.location.startswith("submission.yaml: keywords cmenergies") for w in w021), w021
    # the patchsets' reference ins0000001 disagrees with the record's DOI: reported, the first kept
    assert any(w.location.startswith("Likelihoods/RegionA/patchset.json") and "hepdata" in w.message for w in w021), w021


def test_guessed_metadata_is_marked(tmp_path: Path) -> None:
    src = tmp_path / "smodels"
    src.mkdir()
    (src / "BkgOnly.json").write_text(json.dumps(small_workspace()))
    (src / "globalInfo.txt").write_text("id: ATLAS-SUSY-2018-31\nsqrts: 13*TeV\nlumi: 139/fb\n")
    result = build(src, output=tmp_path / "o.zst")
    analysis = result.manifest.to_json()["analysis"]
    assert analysis["collaboration"] == "ATLAS"
    assert analysis["luminosity_ifb"] == 139
    assert [w.location for w in result.warnings if w.code == "W022"] == ["globalInfo.txt: id"]


# --- hostile archives -----------------------------------------------------------------------

Maker = Callable[[Path], Path]


def _tar_with(*entries: tuple[str, bytes, dict[str, object]]) -> Maker:
    def make(tmp: Path) -> Path:
        out = tmp / "hostile.tar.gz"
        with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tf:
            _add(tf, "BkgOnly.json", json.dumps(small_workspace()).encode())
            for name, data, kw in entries:
                _add(tf, name, data, **kw)
        return out

    return make


def _zip_with(name: str, data: bytes = b"x", mode: int | None = None) -> Maker:
    def make(tmp: Path) -> Path:
        out = tmp / "hostile.zip"
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("BkgOnly.json", json.dumps(small_workspace()))
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.create_system, info.external_attr = 3, mode << 16
            zf.writestr(info, data)
        return out

    return make


def _truncated(tmp: Path) -> Path:
    whole = _tar_with(("big.bin", bytes(range(256)) * 4000, {}))(tmp)
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])
    return whole


def _corrupt_lzma_zip(tmp: Path) -> Path:
    out = tmp / "lzma.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_LZMA) as zf:
        zf.writestr("x.bin", bytes(range(256)) * 64)
    data = bytearray(out.read_bytes())
    data[60:80] = b"\xff" * 20  # inside the compressed stream, after the 35-byte local header
    out.write_bytes(bytes(data))
    return out


def _gzip_bomb(tmp: Path) -> Path:
    """A tar.gz of one 1 GiB entry of zeros in 1 MiB: multi-member gzip, each member 16 MiB of
    zeros compressed once (~1000:1)."""
    size, piece = 1 << 30, 16 << 20
    header = tarfile.TarInfo("zeros.bin")
    header.size = size
    member = gzip.compress(bytes(piece), compresslevel=9)
    out = tmp / "bomb.tar.gz"
    with out.open("wb") as fh:
        fh.write(gzip.compress(header.tobuf(tarfile.USTAR_FORMAT)))
        for _ in range(size // piece):
            fh.write(member)
        fh.write(gzip.compress(bytes(1024)))
    assert out.stat().st_size < 2 << 20
    return out


def _zip_bomb(tmp: Path) -> Path:
    """A zip of one deflated entry of 128 MiB of zeros (~1000:1)."""
    out = tmp / "bomb.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w", force_zip64=True) as fh:
        for _ in range(8):
            fh.write(bytes(16 << 20))
    return out


def _million_entries(tmp: Path, count: int) -> Path:
    """A tar.gz of ``count`` (10^6) empty files with distinct names, written as a stream: one
    ustar header template with the name and checksum patched in."""
    template = bytearray(tarfile.TarInfo("f0000000").tobuf(tarfile.USTAR_FORMAT))
    template[148:156] = b" " * 8
    base = sum(template) - sum(b"f0000000")
    out = tmp / "million.tar.gz"
    with gzip.open(out, "wb", compresslevel=1) as gz:
        batch = bytearray()
        for i in range(count):
            name = b"f%07d" % i
            block = bytearray(template)
            block[0:8] = name
            block[148:156] = b"%06o\0 " % (base + sum(name))
            batch += block
            if len(batch) >= 4 << 20:
                gz.write(batch)
                batch.clear()
        gz.write(batch + bytes(1024))
    return out


def _big_pax(tmp: Path) -> Path:
    out = tmp / "pax.tar.gz"
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("BkgOnly.json")
        info.pax_headers = {"comment": "x" * (limits.IMPORT_HEADER_BYTES + 10)}
        tf.addfile(info, io.BytesIO(b""))
    return out


HOSTILE: list[tuple[str, Maker, str]] = [
    ("traversal", _tar_with(("../../evil.json", b"{}", {})), "E090"),
    ("traversal-inside", _tar_with(("RegionA/../../evil.json", b"{}", {})), "E090"),
    ("absolute", _tar_with(("/tmp/evil.json", b"{}", {})), "E090"),
    ("backslash", _tar_with(("..\\evil.json", b"{}", {})), "E090"),
    ("control-character", _tar_with(("a\nb.json", b"{}", {})), "E090"),
    ("zip-traversal", _zip_with("../evil.json"), "E090"),
    ("symlink", _tar_with(("link.json", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})), "E091"),
    ("hardlink", _tar_with(("hard.json", b"", {"type": tarfile.LNKTYPE, "linkname": "BkgOnly.json"})), "E091"),
    ("zip-symlink", _zip_with("link.json", b"/etc/passwd", mode=0o120777), "E091"),
    ("char-device", _tar_with(("dev", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})), "E092"),
    ("fifo", _tar_with(("fifo", b"", {"type": tarfile.FIFOTYPE})), "E092"),
    ("gnu-sparse", _tar_with(("sparse.bin", b"", {"type": tarfile.GNUTYPE_SPARSE})), "E092"),
    ("duplicate", _tar_with(("BkgOnly.json", b"{}", {})), "E093"),
    ("case-twin", _tar_with(("bkgonly.JSON", b"{}", {})), "E093"),
    ("nfc-twin", _tar_with(("caf\u00e9.txt", b"1", {}), ("cafe\u0301.txt", b"2", {})), "E093"),
    ("file-and-directory", _tar_with(("a", b"1", {}), ("a/b.txt", b"2", {})), "E093"),
    ("big-pax-header", _big_pax, "E094"),
    ("gzip-bomb", _gzip_bomb, "E094"),
    ("zip-bomb", _zip_bomb, "E094"),
    ("truncated", _truncated, "E095"),
    ("corrupt-lzma-zip", _corrupt_lzma_zip, "E095"),
    ("not-an-archive", lambda tmp: (tmp / "x.tar.gz").write_bytes(b"not gzip") and tmp / "x.tar.gz", "E095"),
]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The system temporary directory, so a test sees what an import leaves in it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@pytest.mark.parametrize(("maker", "code"), [(m, c) for _, m, c in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_hostile_archives_are_refused_with_their_code(maker: Maker, code: str, tmp_path: Path, private_tmp: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = maker(work)
    out = tmp_path / "out" / "b.zst"
    out.parent.mkdir()
    with pytest.raises(BuildRefused) as err:
        build(archive, output=out)
    assert err.value.findings[0].code == code, err.value.diagnostics()
    assert err.value.findings[0].location.startswith(str(archive))  # the archive as given, never the temporary directory
    assert err.value.message.startswith(code)
    assert "\n" not in err.value.message
    assert not out.exists()
    assert list(out.parent.iterdir()) == []
    assert list(private_tmp.iterdir()) == []  # the temporary directory is gone
    assert sorted(p.name for p in work.iterdir()) == [archive.name]
    assert not (tmp_path.parent / "evil.json").exists()


@pytest.mark.slow  # ~7 s to write 10^6 headers, ~5-10 s to read up to the cap (25,000 files created)
def test_ten_to_the_six_entries_stop_at_the_entry_cap(tmp_path: Path, private_tmp: Path) -> None:
    archive = _million_entries(tmp_path, 1_000_000)
    with pytest.raises(BuildRefused, match=rf"^E094 .*more than {limits.IMPORT_ENTRIES} entries"):
        build(archive, output=tmp_path / "b.zst")
    assert list(private_tmp.iterdir()) == []


def test_the_entry_cap_counts_while_streaming(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism of the test above at a cap of 300 (fast enough for every run)."""
    monkeypatch.setattr(limits, "IMPORT_ENTRIES", 300)
    with pytest.raises(BuildRefused, match=r"^E094 .*more than 300 entries"):
        build(_million_entries(tmp_path, 2_000), output=tmp_path / "b.zst")
    assert list(private_tmp.iterdir()) == []


def test_a_zip_declaring_too_many_entries_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    archive = _zip_with("x.txt")(tmp_path)
    data = bytearray(archive.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = (0xFFFE).to_bytes(2, "little") * 2  # entries on this disk and in total
    archive.write_bytes(bytes(data))
    with pytest.raises(BuildRefused, match=r"^E094 .*declares 65534 entries"):
        build(archive, output=tmp_path / "b.zst")


def test_an_interrupt_removes_the_temporary_directory(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar_gz(_sbottom_dir(tmp_path / "s"), tmp_path / "s.tar.gz")
    real = importer._write

    def interrupted(*args: object, **kw: object) -> None:
        real(*args, **kw)  # type: ignore[arg-type]
        assert list(private_tmp.iterdir()) != []
        raise KeyboardInterrupt

    monkeypatch.setattr(importer, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(archive, output=tmp_path / "b.zst")
    assert list(private_tmp.iterdir()) == []


def test_a_killed_import_is_swept_by_the_next(tmp_path: Path, private_tmp: Path) -> None:
    """A temporary directory whose lock nobody holds (its import was killed) is removed by the
    next import; one whose lock is held (a live import) is left."""
    stale = private_tmp / ".heparch-import.staging-abc123"
    (stale / "top").mkdir(parents=True)
    (stale / "top" / "BkgOnly.json").write_text("{}")
    live = private_tmp / ".heparch-import.staging-def456"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        build(_tar_gz(_sbottom_dir(tmp_path / "s"), tmp_path / "s.tar.gz"), output=tmp_path / "b.zst")
        assert [p.name for p in private_tmp.iterdir()] == [live.name]
    finally:
        os.close(fd)


def test_cli_refuses_a_hostile_archive_in_one_line(tmp_path: Path) -> None:
    archive = HOSTILE[0][1](tmp_path)
    code, out, err = run("build", str(archive), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert out == ""
    assert err.strip().startswith(f"error: E090 {archive}:'../../evil.json'")
    assert "Traceback" not in err


def test_every_import_code_is_exercised() -> None:
    profile = {c for c, (_, anchor) in CODES.items() if anchor == "import-profile"}
    assert {c for _, _, c in HOSTILE} | {"W020", "W021", "W022"} == profile


def test_a_directory_without_submission_is_not_copied(tmp_path: Path) -> None:
    src = _sbottom_dir(tmp_path / "s")
    with importer.opened(src) as opened:
        assert opened.root == src
        assert opened.expanded == {}
        assert not opened.is_archive


@pytest.mark.parametrize("name", ["x.tar.gz", "X.TGZ", "x.zip", "x.tar"])
def test_archive_suffixes(name: str) -> None:
    assert importer.archive_suffix(name) is not None
    assert importer.archive_suffix(".tar.gz") is None
    assert importer.archive_suffix("x.json") is None


def test_nested_archive_beside_its_folder_is_refused(tmp_path: Path) -> None:
    sub = _submission_dir(tmp_path / "submission")
    (sub / "Likelihoods").mkdir()
    (sub / "Likelihoods" / "x.txt").write_text("x")
    with pytest.raises(BuildRefused, match=r"^E093 .*Likelihoods"):
        build(sub, output=tmp_path / "b.zst")
    shutil.rmtree(sub / "Likelihoods")


def test_a_bomb_stops_in_bounded_memory(tmp_path: Path) -> None:
    """The 1 GiB gzip bomb, built in a fresh process: it ends with E094 having held far less
    than the bomb. The peak is the process's VmHWM (its own address space's high-water mark):
    getrusage's ru_maxrss would carry the RSS of the forking pytest process across exec."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("VmHWM needs Linux's /proc")
    bomb = _gzip_bomb(tmp_path)
    script = (
        "import re\n"
        "from pathlib import Path\n"
        "from heparch.build import build\n"
        "from heparch.errors import BuildRefused\n"
        "try:\n"
        f"    build({str(bomb)!r}, output={str(tmp_path / 'b.zst')!r})\n"
        "except BuildRefused as exc:\n"
        "    peak = re.search(r'VmHWM:\\s+(\\d+) kB', Path('/proc/self/status').read_text()).group(1)\n"
        "    print(exc.findings[0].code, peak)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    code, peak_kib = done.stdout.split()
    assert code == "E094"
    assert int(peak_kib) < 200 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"  # measured: 46 MiB, as much as importing heparch


def test_archive_type_is_read_from_the_content(tmp_path: Path) -> None:
    src = _sbottom_dir(tmp_path / "s")
    misnamed = _zip(src, tmp_path / "x.zip").rename(tmp_path / "x.tar.gz")
    assert build(misnamed, output=tmp_path / "a.zst").identity == build(src, output=tmp_path / "b.zst").identity


def test_an_arch_yaml_error_names_it_inside_the_archive(tmp_path: Path) -> None:
    src = _sbottom_dir(tmp_path / "s")
    (src / "arch.yaml").write_text("name: [unclosed\n")
    archive = _tar_gz(src, tmp_path / "x.tar.gz")
    with pytest.raises(InputError, match=rf"^{re.escape(str(archive))}:arch.yaml") as err:
        build(archive, output=tmp_path / "b.zst")
    assert "heparch-import" not in err.value.diagnostics()


def test_a_table_file_named_by_many_tables_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """300 tables naming one data file (a 14 kB submission.yaml) read it once, not 300 times
    (each read parses its YAML: 300 x 1.4 s for a 47 kB table)."""
    from heparch import metadata

    docs = ["comment: toy\n", *(f"name: T{i}\ndescription: t\ndata_file: t.yaml\n" for i in range(300))]
    (tmp_path / "submission.yaml").write_text("---\n".join(docs))
    (tmp_path / "t.yaml").write_text("dependent_variables:\n- header: {name: X}\n  qualifiers:\n  - name: LUMINOSITY\n    value: 139\n    units: 'fb$^{-1}$'\n")
    reads: list[str] = []
    real = metadata._yaml_docs

    def counted(path: Path, what: str) -> list[dict[str, object]]:
        reads.append(path.name)
        return real(path, what)

    monkeypatch.setattr(metadata, "_yaml_docs", counted)
    found = {f.field: f.value for f in from_submission(tmp_path / "submission.yaml", "submission.yaml")}
    assert found["luminosity_ifb"] == 139
    assert reads.count("t.yaml") == 1
