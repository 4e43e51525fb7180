"""The Python API (heparch.api.Bundle): the packager's reader with a bundle's likelihoods as pyhf
objects, which likelihoods and patchsets there are being heparch.analysis's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import heparch
from heparch.analysis import Analysis
from heparch.api import Bundle
from heparch.build import build
from heparch.bundle import OpenBundle
from heparch.errors import InputError

from conftest import EXAMPLE, small_patchset, small_workspace


def test_the_example_through_the_api(example_bundle: Path) -> None:
    with heparch.open(example_bundle) as b:
        assert isinstance(b, Bundle)
        assert isinstance(b, OpenBundle)
        assert b.likelihoods() == ["BkgOnly.json"]  # the simplified likelihood is not a pyhf workspace
        assert b.likelihoods() == Analysis.of(b).names("workspace")
        assert b.workspace().channels == sorted(c["name"] for c in json.loads((EXAMPLE / "BkgOnly.json").read_text())["channels"])
        names = [p.name for p in b.patchset().patches]
    assert names == [p["metadata"]["name"] for p in json.loads((EXAMPLE / "patchset.json").read_text())["patches"]]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of two workspaces: A.json with its patchset, B.json without one."""
    src = tmp_path_factory.mktemp("two") / "ana"
    src.mkdir()
    ws = small_workspace()
    (src / "A.json").write_text(json.dumps(ws))
    (src / "A_patchset.json").write_text(json.dumps(small_patchset(ws)))
    (src / "B.json").write_text(json.dumps(small_workspace(7.0)))
    return build(src, output=src.parent / "two.zst").output


def test_a_likelihood_is_picked_by_the_one_selection_rule(two: Path) -> None:
    with heparch.open(two) as b:
        assert b.likelihoods() == ["A.json", "B.json"]
        with pytest.raises(InputError, match=r": holds 2 likelihoods; pick one with likelihood=NAME: 'A\.json', 'B\.json'$") as several:
            b.workspace()
        assert several.value.option == "likelihood"
        with pytest.raises(InputError, match=r": likelihood 'A\.jsn' is not a likelihood of the bundle; it has 'A\.json', 'B\.json'; did you mean 'A\.json'"):
            b.patchset("A.jsn")
        assert b.workspace("B.json").observations["SR"] == [11.0, 7.0]
        assert [p.name for p in b.patchset("A.json").patches] == ["pt_300_100", "pt_400_100", "pt_500_200"]
        with pytest.raises(InputError, match=r": likelihood 'B\.json' has 0 patchsets; expected one$"):
            b.patchset("B.json")
