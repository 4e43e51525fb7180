"""``arch init`` writes only what it found, with where from; arch.yaml's unknown fields and YAML errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import heparch

from clihelp import run
from conftest import EXAMPLE, ONE_LBB, SHARED, small_workspace

SMODELS_2018_04 = SHARED / "smodels-db-atlas-pyhf-bkgonly" / "13TeV" / "ATLAS" / "ATLAS-SUSY-2018-04-eff"

SUBMISSION = """\
---
comment: |
  Search for direct production of electroweakinos
  in final states with one lepton.
record_ids:
  - {type: inspire, id: 1755298}
  - {type: arXiv, id: "arXiv:1909.09226"}
additional_resources:
  - {location: BkgOnly.json, description: "background-only workspace", type: HistFactory}
---
name: "Table 1"
description: yields
keywords:
  - {name: cmenergies, values: [13000]}
  - {name: observables, values: [N]}
data_file: table1.yaml
"""


def _analysis_lines(text: str) -> list[str]:
    block = text.split("\nanalysis:\n", 1)[1]
    return [line for line in block.splitlines() if line.startswith("  ")]


def _uncommented(text: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"^  (\w+): (.*?)  # from (.*)$", text, re.M)}


def _build(directory: Path, tmp_path: Path) -> Path:
    out = tmp_path / f"{directory.name}.zst"
    code, _, err = run("build", str(directory), "-o", str(out))
    assert code == 0, err
    return out


def _manifest_analysis(bundle: Path) -> dict:
    with heparch.open(bundle) as b:
        return b.manifest.to_json().get("analysis", {})


def test_init_on_1lbb_writes_only_the_found_hepdata_record(tmp_path: Path) -> None:
    d = tmp_path / "1lbb"
    d.mkdir()
    for name in ("BkgOnly.json", "patchset.json"):
        shutil.copy(ONE_LBB / name, d / name)
    code, _, err = run("init", str(d))
    assert code == 0, err
    text = (d / "arch.yaml").read_text()
    assert _uncommented(text) == {"hepdata": '"ins1755298"'}
    assert "from patchset.json: metadata.references.hepdata" in text
    # nothing invented: license and sqrt(s) only as commented-out examples
    assert "\n  # license: CC-BY-4.0" in text
    assert "\n  # sqrt_s_TeV: 13" in text
    analysis = _manifest_analysis(_build(d, tmp_path))
    assert analysis == {"hepdata": "ins1755298"}


def test_init_reads_a_hepdata_submission(tmp_path: Path) -> None:
    d = tmp_path / "hepdata"
    d.mkdir()
    (d / "BkgOnly.json").write_text(json.dumps(small_workspace()))
    (d / "submission.yaml").write_text(SUBMISSION)
    (d / "table1.yaml").write_text("independent_variables: []\ndependent_variables: []\n")
    assert run("init", str(d))[0] == 0
    text = (d / "arch.yaml").read_text()
    found = _uncommented(text)
    assert found["inspire"] == '"ins1755298"'
    assert found["arxiv"] == '"1909.09226"'  # quoted: YAML would read 1909.09226 as a number
    assert found["sqrt_s_TeV"] == "13"
    assert "submission.yaml: keywords cmenergies (13000 GeV)" in text
    assert found["description"] == '"Search for direct production of electroweakinos in final states with one lepton."'
    assert "luminosity_ifb" not in found  # not stated in the submission: not guessed
    analysis = _manifest_analysis(_build(d, tmp_path))
    assert analysis["arxiv"] == "1909.09226"
    assert analysis["inspire"] == "ins1755298"
    assert analysis["sqrt_s_TeV"] == 13


def test_init_reads_an_smodels_global_info(tmp_path: Path) -> None:
    d = tmp_path / "smodels"
    shutil.copytree(SMODELS_2018_04, d)
    assert run("init", str(d))[0] == 0
    text = (d / "arch.yaml").read_text()
    found = _uncommented(text)
    assert found["sqrt_s_TeV"] == "13"
    assert found["luminosity_ifb"] == "139"
    assert found["arxiv"] == '"1911.06660"'
    assert found["doi"] == '"10.1103/PhysRevD.101.032009"'
    assert 'collaboration: "ATLAS"  # from globalInfo.txt: id, guessed: check it' in text
    _build(d, tmp_path)


def test_every_commented_example_parses_once_uncommented(analysis: Path, tmp_path: Path) -> None:
    assert run("init", str(analysis))[0] == 0
    path = analysis / "arch.yaml"
    path.write_text(re.sub(r"^  # (\w+): ", r"  \1: ", path.read_text(), flags=re.M))
    meta = _manifest_analysis(_build(analysis, tmp_path))
    assert meta["arxiv"] == "1909.09226"
    assert meta["license"] == "CC-BY-4.0"
    assert meta["contacts"][0]["email"] == "a.physicist@example.org"
    assert meta["axes"]["m1"] == "m(chargino) [GeV]"


def test_unknown_fields_warn_and_near_misses_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "a"
    shutil.copytree(EXAMPLE, d)
    text = (d / "arch.yaml").read_text()
    (d / "arch.yaml").write_text(text + "\nfrom_a_newer_heparch: 1\n")
    code, _, err = run("build", str(d), "-o", str(tmp_path / "b.zst"))
    assert code == 0, err
    assert "W001 arch.yaml:from_a_newer_heparch: field not known to this version of heparch; ignored" in err
    # a field further than two edits from any known one may be a newer format's: kept, with a warning
    (d / "arch.yaml").write_text(text.replace("  luminosity_ifb: 139", "  luminosity_ifb: 139\n  luminosity_ifb_err: 2"))
    code, _, err = run("build", str(d), "-o", str(tmp_path / "b.zst"))
    assert code == 0, err
    assert "W001 arch.yaml:analysis.luminosity_ifb_err: field not defined by format 1.0; kept in the manifest" in err
    assert _manifest_analysis(tmp_path / "b.zst")["luminosity_ifb_err"] == 2
    (d / "arch.yaml").write_text(text.replace("  luminosity_ifb: 139", "  luminosty_ifb: 139"))
    code, _, err = run("build", str(d), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert "arch.yaml: analysis.luminosty_ifb: unknown field; did you mean 'luminosity_ifb'?" in err


@pytest.mark.parametrize(("text", "where"), [("name: x\nfiles: [\n  {path: a\n", ":4:1:"), ("name: 'x\n", ":2:1:")])
def test_yaml_errors_name_line_and_column(analysis: Path, tmp_path: Path, text: str, where: str) -> None:
    (analysis / "arch.yaml").write_text(text)
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert f"arch.yaml{where} not valid YAML" in err, err
