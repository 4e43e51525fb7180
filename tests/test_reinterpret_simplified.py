"""arch reinterpret --compare-simplified (issue 15 item 3): new points on the bundle's simplified
likelihood too, its bins mapped to the full likelihood's channels by their observed counts."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from heparch.build import build
from heparch.errors import InputError
from heparch.reinterpret import run as reinterpreting
from heparch.reinterpret.generate import inputs_from_patch
from heparch.reinterpret.signal import SignalPoint, dump
from heparch.reinterpret.simplified import bins_of, signals_for

from clihelp import run
from conftest import EXAMPLE, copy_tree

POINT = "C1N2_700_300"  # claimed CLs_obs 0.30: neither excluded nor far from it


@pytest.fixture(scope="module")
def toy(example_bundle: Path) -> Path:
    return example_bundle


@pytest.fixture(scope="module")
def source(toy: Path) -> reinterpreting.Source:
    return reinterpreting.load(toy, simplified=True)


def _published_point(source: reinterpreting.Source, name: str, new_name: str) -> SignalPoint:
    pub = source.published(None)
    point, _ = inputs_from_patch(pub.interface(source.luminosity_ifb), new_name, pub.patches[name], pub.workspace, pub.values.get(name))
    return point


def test_the_mapped_signals_are_the_published_simplified_signals(source: reinterpreting.Source) -> None:
    """Every published point, read back through the interface and mapped to the simplified
    likelihood's bins, gives the signal 'arch simplify' wrote for it."""
    pub = source.published(None)
    assert pub.simplified is not None
    path, sl = pub.simplified
    bins = bins_of(pub.workspace, sl, path)
    assert len(bins) == len(sl["observed"]) == 90
    assert [c for c, i in bins if i == 0] == ["SR_cat1", "SR_cat2", "SR_cat3"]
    points = [_published_point(source, name, name) for name in pub.patches]
    signals, outside = signals_for(bins, points)
    assert outside == {}
    for name, published in sl["signals"].items():
        assert signals[name] == pytest.approx(published, rel=1e-9, abs=1e-9)


def test_bins_that_no_channel_sequence_gives_are_refused() -> None:
    ws = {"channels": [{"name": "A", "samples": []}, {"name": "B", "samples": []}], "observations": [{"name": "A", "data": [5, 3]}, {"name": "B", "data": [7]}]}
    assert bins_of(ws, {"observed": [5, 3]}, "sl.json") == (("A", 0), ("A", 1))
    with pytest.raises(InputError, match=r"sl.json: its 3 observed counts are not those of any sequence"):
        bins_of(ws, {"observed": [5, 3, 8]}, "sl.json")
    twins = {**ws, "observations": [{"name": "A", "data": [7]}, {"name": "B", "data": [7]}]}
    with pytest.raises(InputError, match=r"more than one sequence of channels \(A and B\)"):
        bins_of(twins, {"observed": [7]}, "sl.json")


def test_regions_outside_the_simplified_likelihood_are_named() -> None:
    from heparch.reinterpret.signal import RegionInput

    p = SignalPoint("new", {"A": RegionInput((1.0, 2.0)), "CR": RegionInput((4.0,))})
    signals, outside = signals_for((("B", 0), ("A", 1), ("A", 0)), [p])
    assert signals == {"new": [0.0, 2.0, 1.0]}
    assert outside == {"new": ["CR"]}


def test_compare_simplified_reports_full_and_simplified_cls(source: reinterpreting.Source, toy: Path, tmp_path: Path) -> None:
    """A new point with the yields of a published one: its simplified CLs is the simplified
    likelihood's own for that point (arch cls on simplified.json), its full CLs the claim."""
    signal = tmp_path / "new.json"
    signal.write_text(dump([_published_point(source, POINT, "again")], "json"))
    code, out, err = run("reinterpret", str(toy), "--signal", str(signal), "--compare-simplified", "--jobs", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)["points"]["again"]
    code, cls_out, err = run("cls", str(EXAMPLE / "simplified.json"), "--point", POINT, "--json")
    assert code == 0, err
    own = json.loads(cls_out)
    assert doc["simplified"]["CLs_obs"] == pytest.approx(own["CLs_obs"], rel=1e-6)
    assert doc["simplified"]["CLs_exp"] == pytest.approx(own["CLs_exp"], rel=1e-6)
    assert doc["simplified"]["difference_CLs_obs"] == pytest.approx(doc["simplified"]["CLs_obs"] - doc["CLs_obs"])
    claimed = json.loads((EXAMPLE / "results.json").read_text())["points"][POINT]["CLs_obs"]
    assert math.isclose(doc["CLs_obs"], claimed, rel_tol=0.01, abs_tol=1e-3)
    assert doc["simplified"]["regions_left_out"] == []
    code, out, _ = run("reinterpret", str(toy), "--signal", str(signal), "--compare-simplified", "--jobs", "1")
    assert f"; simplified CLs_obs {own['CLs_obs']:.4g}" in out


def test_compare_simplified_needs_a_simplified_likelihood_and_a_signal(toy: Path, tmp_path: Path) -> None:
    source = copy_tree(EXAMPLE, tmp_path / "analysis")
    (source / "simplified.json").unlink()
    text = (source / "arch.yaml").read_text()
    entry = re.search(r"  - path: simplified.json\n(    .*\n)+?(?=  - )", text)
    assert entry is not None
    (source / "arch.yaml").write_text(text.replace(entry.group(0), ""))
    bare = build(source, output=tmp_path / "bare.zst").output
    signal = tmp_path / "new.json"
    shutil.copy(_template(toy, tmp_path), signal)
    code, _, err = run("reinterpret", str(bare), "--signal", str(signal), "--compare-simplified")
    assert code == 2
    assert "holds no simplified likelihood derived from BkgOnly.json; drop --compare-simplified" in err
    code, _, err = run("reinterpret", str(toy), "--interface", "--compare-simplified")
    assert code == 2
    assert "give --signal" in err


def _template(toy: Path, tmp_path: Path) -> Path:
    out = tmp_path / "template.json"
    code, _, err = run("reinterpret", str(toy), "--template", "-o", str(out))
    assert code == 0, err
    return out
