"""arch build: discovery, determinism, refusals."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from heparch.build import build
from heparch.errors import BuildRefused, InputError
from heparch.verify import verify

from clihelp import first_line, run
from conftest import ONE_LBB, SHARED, small_workspace


def test_discovery_roles_and_inferred_metadata(analysis: Path, tmp_path: Path) -> None:
    (analysis / ".hidden").write_text("x")
    (analysis / "__pycache__").mkdir()
    (analysis / "__pycache__" / "x.pyc").write_bytes(b"\0")
    result = build(analysis, output=tmp_path / "b.zst")
    roles = {f.path: (f.role, f.annotations.get("likelihood")) for f in result.manifest.files}
    assert roles == {
        "BkgOnly.json": ("likelihood", None),
        "patchset.json": ("patchset", "BkgOnly.json"),
        "README.md": ("attachment", None),
    }
    assert result.manifest.analysis is not None
    assert result.manifest.analysis.hepdata == "ins0000001"
    assert {w.code for w in result.warnings} >= {"W002", "W003", "W004"}


def test_output_inside_source_is_not_packed(analysis: Path) -> None:
    build(analysis, output=analysis / "out.zst")
    again = build(analysis, output=analysis / "out.zst")
    assert "out.zst" not in {f.path for f in again.manifest.files}


def test_same_inputs_other_path_and_mtimes_give_identical_bytes(analysis: Path, tmp_path: Path) -> None:
    first = build(analysis, output=tmp_path / "a.zst")
    other = shutil.copytree(analysis, tmp_path / "elsewhere" / "renamed")
    for f in other.iterdir():
        os.utime(f, (1_000_000, 1_000_000))
    second = build(other, output=tmp_path / "b.zst")
    assert first.identity == second.identity
    assert (tmp_path / "a.zst").read_bytes() == (tmp_path / "b.zst").read_bytes()


def test_1lbb_builds_deterministically_at_another_path(tmp_path: Path, one_lbb_bundle: Path) -> None:
    copy = shutil.copytree(ONE_LBB, tmp_path / "copy", copy_function=shutil.copy)  # new mtimes
    os.utime(copy / "BkgOnly.json", (12345, 12345))
    out = build(copy, output=tmp_path / "again.zst").output
    assert out.read_bytes() == one_lbb_bundle.read_bytes()
    assert verify(one_lbb_bundle).valid


def test_digest_mismatch_is_refused_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ONE_LBB, src)
    ws = json.loads((src / "BkgOnly.json").read_text())
    ws["observations"][0]["data"][0] += 1
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    code, _, err = run("build", str(src), "-o", str(tmp_path / "x.zst"))
    assert code == 2
    first = first_line(err)
    assert "E063" in first
    assert "patchset.json" in first
    assert "Traceback" not in err
    assert not (tmp_path / "x.zst").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.zst")]


def test_schema_error_names_file_and_json_path(tmp_path: Path) -> None:
    ws = small_workspace()
    ws["measurements"][0]["config"]["parameters"] = [{"name": "bkg_norm", "fixed": "true"}]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(ws))
    code, _, err = run("build", str(src), "-o", str(tmp_path / "x.zst"))
    assert code == 2
    first = first_line(err)
    assert "bad.json" in first
    assert "$.measurements[0].config.parameters[0].fixed" in first
    assert "Traceback" not in err


@pytest.mark.parametrize("metadata", ["x", [], {"digests": "x"}, {"digests": {"sha256": ["x"]}}])
def test_a_patchset_whose_metadata_is_malformed_is_a_schema_error(tmp_path: Path, metadata: object) -> None:
    """The pyhf digest a patchset names is looked up whatever its metadata's shape: the schema
    (E062) reports a malformed one, never an AttributeError (exit 3)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "BkgOnly.json").write_text(json.dumps(small_workspace()))
    (src / "patchset.json").write_text(json.dumps({"version": "1.0.0", "metadata": metadata, "patches": []}))
    code, _, err = run("build", str(src), "-o", str(tmp_path / "x.zst"))
    assert code == 2
    assert "Traceback" not in err
    assert first_line(err).startswith("error: E062 patchset.json:")


def test_workspace_shaped_but_invalid_is_an_error_not_an_attachment(analysis: Path, tmp_path: Path) -> None:
    (analysis / "broken.json").write_text(json.dumps({"channels": [{"name": 3}], "observations": []}))
    with pytest.raises(BuildRefused, match=r"broken\.json"):
        build(analysis, output=tmp_path / "x.zst")


def test_single_file_must_be_a_workspace(tmp_path: Path) -> None:
    f = tmp_path / "notes.json"
    f.write_text("{}")
    with pytest.raises(InputError, match="not a pyhf workspace"):
        build(f, output=tmp_path / "x.zst")


def test_default_output_is_in_cwd(analysis: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, _ = run("build", str(analysis))
    assert code == 0
    assert (work / "ana.zst").is_file()


def test_an_output_directory_is_refused_naming_the_parameter_or_the_flag(analysis: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        build(analysis, output=tmp_path)
    assert (refused.value.option, refused.value.message) == (
        "output",
        f"output {tmp_path}: is a directory; give the output file name, e.g. output={tmp_path / 'bundle.zst'}",
    )
    code, _, err = run("build", str(analysis), "-o", str(tmp_path))
    assert (code, err.strip()) == (2, f"error: --output {tmp_path}: is a directory; give the output file name, e.g. --output {tmp_path / 'bundle.zst'}")


def test_symlink_in_source_is_refused(analysis: Path, tmp_path: Path) -> None:
    (analysis / "link.json").symlink_to("/etc/hostname")
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "x.zst"))
    assert code == 2
    assert "link.json" in err


@pytest.mark.parametrize("path", sorted((SHARED / "smodels-db-atlas-pyhf-bkgonly").rglob("*.json")), ids=lambda p: p.name)
def test_smodels_workspaces_build_and_verify(path: Path, tmp_path: Path) -> None:
    out = build(path, output=tmp_path / "b.zst").output
    result = verify(out)
    assert result.valid, [f.one_line() for f in result.report.errors]
