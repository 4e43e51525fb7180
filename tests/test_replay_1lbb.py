"""Acceptance on the ATLAS 1Lbb likelihood: claim with the default backend, replay all 125
points against pyhf's reference values, and catch one claim raised by 5%."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import heparch
from heparch.build import build
from heparch.extract import extract

from clihelp import run
from conftest import ONE_LBB
from fast_models import LBB_REFERENCE_AT_LOCAL_MINIMUM

POINT = "C1N2_Wh_hbb_700_250"


@pytest.fixture(scope="module")
def claimed_1lbb(one_lbb_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lbb-claimed") / "claimed.zst"
    code, _, err = run("claim", str(one_lbb_bundle), "-o", str(out), "--jobs", "2", "--audit", "0")
    assert code == 0, err
    return out


def test_all_125_points_replay_and_match_pyhf(claimed_1lbb: Path, tmp_path: Path) -> None:
    page = tmp_path / "replay.html"
    code, out, err = run("replay", str(claimed_1lbb), "--jobs", "2", "--json", "--html", str(page))
    assert code == 0, err
    # the report of the claimed bundle (its figures are tested in test_replay_report.py): every contour, claimed and replayed
    html = page.read_text(encoding="utf-8")
    for kind in ("obs-contour", "exp-contour", "exp-band"):
        for which in ("replayed", "claimed"):
            assert f'id="{kind}-{which}-r0"' in html
    doc = json.loads(out)
    assert doc["summary"]["total"] == 125
    assert doc["summary"]["passed"] == 125
    reference = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text())["points"]
    assert set(doc["points"]) == set(reference)
    worst = 0.0
    for name, point in doc["points"].items():
        if name in LBB_REFERENCE_AT_LOCAL_MINIMUM:  # the reference is pyhf at a local minimum (test_infer_fast.py)
            continue
        ref = reference[name]
        got = point["replayed"]
        for mine, theirs in zip([got["CLs_obs"], *got["CLs_exp"]], [ref["CLs_obs"], *ref["CLs_exp"]], strict=True):
            tol = max(1e-4, 1e-3 * theirs)
            worst = max(worst, abs(mine - theirs) / tol)
    assert worst <= 1.0, f"worst difference from pyhf is {worst:.2f} x the tolerance"


def test_raised_claim_fails_exactly_that_point(claimed_1lbb: Path, tmp_path: Path) -> None:
    tree = extract(claimed_1lbb, tmp_path / "tree")
    results = tree / "results" / "BkgOnly.json"
    obj = json.loads(results.read_text())
    assert obj["points"][POINT]["CLs_obs"] == pytest.approx(0.063, abs=5e-4)
    obj["points"][POINT]["CLs_obs"] *= 1.05
    results.write_text(json.dumps(obj, indent=1, sort_keys=True))
    edited = tmp_path / "edited.zst"
    build(tree, output=edited)
    junit = tmp_path / "replay.xml"
    code, out, err = run("replay", str(edited), "--jobs", "2", "--json", "--junit", str(junit))
    assert code == 1, err
    doc = json.loads(out)
    assert [k for k, v in doc["points"].items() if not v["pass"]] == [POINT]
    cases = ET.parse(junit).findall(".//testcase")
    assert len(cases) == 125
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(ET.parse(junit).findall(".//failure")) == 1
    assert failed[0].get("name") == POINT


def test_diff_of_1lbb_and_its_claimed_version_lists_only_the_results_and_the_claims(one_lbb_bundle: Path, claimed_1lbb: Path) -> None:
    """Issue 14 acceptance: arch diff of the 1Lbb bundle and its claimed version lists exactly the
    added results component and the claims (every point added, with its values; nothing else)."""
    code, out, err = run("diff", str(one_lbb_bundle), str(claimed_1lbb), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["components"] == {"added": [{"path": "results/BkgOnly.json", "role": "results"}], "removed": [], "changed": []}
    assert d["metadata"] == []
    assert d["patches"] == {}
    assert list(d["claims"]) == ["BkgOnly.json"]
    claims = d["claims"]["BkgOnly.json"]
    assert claims["removed"] == {}
    assert claims["changed"] == {}
    with heparch.open(claimed_1lbb) as b:
        recorded = b.read_json("results/BkgOnly.json")["points"]
    assert len(claims["added"]) == len(recorded) == 125
    assert claims["added"][POINT] == {k: recorded[POINT][k] for k in ("CLs_obs", "CLs_exp")}
    code, out, err = run("inspect", str(claimed_1lbb), "--json")
    assert code == 0, err
    assert json.loads(out)["lineage"] == {"supersedes": None, "claimed_from": [{"identity": d["a"]["identity"], "results": ["results/BkgOnly.json"]}]}
