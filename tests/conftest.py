"""Shared test fixtures: paths to ../shared/data and a small analysis directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
ONE_LBB = SHARED / "atlas-1lbb-ins1755298"
EXAMPLE = ROOT / "fixtures" / "example-analysis"


def small_workspace(obs: float = 5.0) -> dict:
    """A valid two-bin pyhf workspace with a background normsys and staterror."""
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "bkg",
                        "data": [10.0, 5.0],
                        "modifiers": [
                            {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                            {"name": "staterror_SR", "type": "staterror", "data": [1.0, 0.5]},
                        ],
                    }
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [11.0, obs]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu_SIG", "parameters": []}}],
        "version": "1.0.0",
    }


def small_patchset(ws: dict) -> dict:
    import pyhf

    patches = []
    for i, (m1, m2) in enumerate([(300, 100), (400, 100), (500, 200)]):
        sample = {"name": "signal", "data": [1.0 + i, 2.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
        patches.append({"metadata": {"name": f"pt_{m1}_{m2}", "values": [m1, m2]}, "patch": [{"op": "add", "path": "/channels/0/samples/1", "value": sample}]})
    return {
        "metadata": {"description": "test", "digests": {"sha256": pyhf.utils.digest(ws)}, "labels": ["m1", "m2"], "references": {"hepdata": "ins0000001"}},
        "patches": patches,
        "version": "1.0.0",
    }


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    """A small analysis directory without arch.yaml: one workspace, its patchset, a README."""
    src = tmp_path / "ana"
    src.mkdir()
    ws = small_workspace()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(small_patchset(ws)))
    (src / "README.md").write_text("toy\n")
    return src


@pytest.fixture(scope="session")
def one_lbb_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1Lbb likelihood built once per session."""
    from heparch.build import build

    out = tmp_path_factory.mktemp("lbb") / "1lbb.zst"
    build(ONE_LBB, output=out)
    return out


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
