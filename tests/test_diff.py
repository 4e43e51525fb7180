"""arch build --supersedes / --note, arch diff and the lineage arch inspect shows (issue 14 item 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from heparch.build import build
from heparch.diff import diff
from heparch.errors import InputError
from heparch.extract import extract
from heparch.verify import verify

from clihelp import first_line, run
from conftest import EXAMPLE


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example analysis (v1) and a v2 that changes one claim, drops one patch (and its claim), adds a file,
    changes the license and supersedes v1 with a note."""
    root = tmp_path_factory.mktemp("versions")
    v1 = build(shutil.copytree(EXAMPLE, root / "v1"), output=root / "v1.zst").output
    src = shutil.copytree(EXAMPLE, root / "v2")
    results = json.loads((src / "results.json").read_text())
    results["points"]["C1N2_200_100"]["CLs_obs"] = 0.25
    results["points"]["C1N2_200_100"]["CLs_exp"][2] = 0.5
    del results["points"]["C1N2_200_0"]
    (src / "results.json").write_text(json.dumps(results))
    patchset = json.loads((src / "patchset.json").read_text())
    patchset["patches"] = [p for p in patchset["patches"] if p["metadata"]["name"] != "C1N2_200_0"]
    (src / "patchset.json").write_text(json.dumps(patchset))
    (src / "NOTES.md").write_text("v2\n")
    (src / "arch.yaml").write_text((src / "arch.yaml").read_text().replace("license: CC0-1.0", "license: CC-BY-4.0"))
    v2 = build(src, output=root / "v2.zst", supersedes=v1, note="dropped C1N2_200_0; refitted C1N2_200_100").output
    return v1, v2


def test_supersedes_records_the_predecessor_and_the_note(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    checked = verify(v2)
    assert checked.valid
    assert checked.manifest is not None
    assert checked.manifest.supersedes is not None
    assert checked.manifest.supersedes.identity == verify(v1).identity
    assert checked.manifest.supersedes.note == "dropped C1N2_200_0; refitted C1N2_200_100"
    code, out, _ = run("inspect", str(v2), "--json")
    assert code == 0
    assert json.loads(out)["lineage"]["supersedes"] == {"identity": verify(v1).identity, "note": "dropped C1N2_200_0; refitted C1N2_200_100"}
    code, out, _ = run("inspect", str(v2))
    assert f"supersedes {verify(v1).identity}" in out
    assert "  note: dropped C1N2_200_0; refitted C1N2_200_100" in out


def test_diff_lists_each_kind_of_change(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    d = diff(v1, v2)
    assert not d.same
    assert (d.components.added, d.components.removed, d.components.changed) == (("NOTES.md",), (), ("patchset.json", "results.json"))
    assert d.metadata == {
        "analysis.license": ("CC0-1.0", "CC-BY-4.0"),
        "supersedes.identity": (None, verify(v1).identity),
        "supersedes.note": (None, "dropped C1N2_200_0; refitted C1N2_200_100"),
    }
    patches = d.patches["BkgOnly.json"]
    assert (patches.added, patches.removed, patches.changed) == ((), ("C1N2_200_0",), ())
    claims = d.claims["BkgOnly.json"]
    assert claims.added == {}
    assert list(claims.removed) == ["C1N2_200_0"]
    assert claims.removed["C1N2_200_0"]["CLs_obs"] == json.loads((EXAMPLE / "results.json").read_text())["points"]["C1N2_200_0"]["CLs_obs"]
    changed = claims.changed["C1N2_200_100"]
    assert set(changed) == {"CLs_obs", "CLs_exp"}
    assert changed["CLs_obs"]["b"] == 0.25
    assert changed["CLs_obs"]["difference"] == pytest.approx(0.25 - changed["CLs_obs"]["a"])
    assert changed["CLs_exp"]["difference"][2] == pytest.approx(0.5 - changed["CLs_exp"]["a"][2])
    assert changed["CLs_exp"]["difference"][0] == 0


def test_diff_cli_json_and_text(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    code, out, _ = run("diff", str(v1), str(v2), "--json")
    assert code == 0
    obj = json.loads(out)
    assert obj["components"]["added"] == [{"path": "NOTES.md", "role": "attachment"}]
    assert obj["patches"] == {"BkgOnly.json": {"added": [], "removed": ["C1N2_200_0"], "changed": []}}
    assert list(obj["claims"]["BkgOnly.json"]["changed"]) == ["C1N2_200_100"]
    assert obj["same"] is False
    code, out, _ = run("diff", str(v1), str(v2))
    assert code == 0
    assert "+ component NOTES.md (attachment)" in out
    assert "- patch BkgOnly.json: C1N2_200_0" in out
    assert '~ metadata analysis.license: "CC0-1.0" -> "CC-BY-4.0"' in out
    assert "~ claim BkgOnly.json: C1N2_200_100 CLs_obs: " in out


def test_diff_of_a_bundle_with_itself_and_reversed(versions: tuple[Path, Path]) -> None:
    v1, v2 = versions
    assert diff(v1, v1).same
    code, out, _ = run("diff", str(v1), str(v1))
    assert code == 0
    assert out.strip().endswith("no differences")
    back = diff(v2, v1)
    assert back.components.removed == ("NOTES.md",)
    assert back.patches["BkgOnly.json"].added == ("C1N2_200_0",)


def test_extract_and_rebuild_keeps_the_lineage(versions: tuple[Path, Path], tmp_path: Path) -> None:
    _, v2 = versions
    tree = extract(v2, tmp_path / "tree")
    assert build(tree, output=tmp_path / "again.zst").identity == verify(v2).identity


def test_a_note_without_a_predecessor_and_a_bad_predecessor_are_refused(tmp_path: Path) -> None:
    src = shutil.copytree(EXAMPLE, tmp_path / "src")
    with pytest.raises(InputError, match=r"needs the bundle it changes: add supersedes=OLD\.zst") as refused:
        build(src, output=tmp_path / "b.zst", note="fixed")
    assert refused.value.option == "supersedes"  # the library names the parameter, arch the flag:
    code, _, err = run("build", str(src), "-o", str(tmp_path / "b.zst"), "--note", "fixed")
    assert (code, err.strip()) == (2, "error: a change note needs the bundle it changes: add --supersedes OLD.zst (or supersedes: IDENTITY in arch.yaml)")
    code, _, err = run("build", str(src), "-o", str(tmp_path / "b.zst"), "--supersedes", str(tmp_path / "missing.zst"))
    assert code == 2
    assert "missing.zst" in err
    (src / "arch.yaml").write_text((src / "arch.yaml").read_text() + "supersedes: sha256:1234\n")
    code, _, err = run("build", str(src), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert "supersedes" in first_line(err)
    assert not (tmp_path / "b.zst").exists()
