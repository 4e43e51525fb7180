"""Imports flow one way (docs/design.md "Layers"): a module never imports from a higher layer,
not even lazily inside a function."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from heparch.build import build

from conftest import EXAMPLE

PKG = Path(__file__).resolve().parent.parent / "pkg" / "heparch"

#: the layer of each top-level module or package of heparch (docs/design.md)
LAYER = {
    "errors": 0,
    "findings": 0,
    "signals": 0,
    "identifiers": 0,
    "spec": 1,
    "store": 2,
    "components": 3,
    "semantic": 3,
    "semantic_stream": 3,
    "config": 3,
    "metadata": 3,
    "importer": 4,  # above metadata (it reads submission.yaml's resources), below build
    "infer": 4,  # the engines: below the packager, they never open a bundle
    "signing": 5,  # keys, envelopes, their checking, trust policies
    "verify": 6,  # checks signatures (heparch.signing.check) before hashing any payload
    "bundle": 7,  # a bundle opened for reading: verify's head checks, hash-checked reads
    "analysis": 8,  # the domain model: a bundle's likelihoods, points and claims (read through heparch.bundle)
    "__init__": 9,  # heparch.open
    "api": 9,  # heparch.bundle's reader with the likelihoods as pyhf objects (what they are: heparch.analysis)
    "build": 9,
    "extract": 9,
    "inspect": 9,
    "diff": 9,
    "init": 9,
    "sign": 9,  # verifies a bundle before it signs it
    "replay": 10,
    "claim": 10,
    "simplify": 10,
    "export": 10,
    "reinterpret": 11,  # above replay: it runs new points with replay's executor and report
    "cli": 12,
    "__main__": 13,
}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(file: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "heparch":  # from heparch import config, ...
                out.update(f"heparch.{a.name}" for a in node.names)
    return {m for m in out if m == "heparch" or m.startswith("heparch.")}


def test_every_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PKG.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert tops <= set(LAYER), f"give these a layer: {sorted(tops - set(LAYER))}"


def test_imports_flow_one_way() -> None:
    upward = []
    for file in sorted(PKG.rglob("*.py")):
        module = ".".join(file.relative_to(PKG.parent).with_suffix("").parts)
        mine = LAYER[_top(module)]
        for imported in _imports(file):
            theirs = LAYER.get(_top(imported))
            if theirs is not None and theirs > mine:
                upward.append(f"{module} imports {imported}")
    assert upward == []


#: what the light commands must not import (each costs 0.1-1 s of start-up; `arch ls` of a
#: bundle and `verify --level fixity` read bytes and JSON only)
HEAVY = ("numpy", "scipy", "pyhf", "jsonschema", "cryptography", "matplotlib", "dask", "spey")

PROBE = """
import sys
from heparch.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[0].split(",")))
print(code, " ".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("command", [("verify", "--level", "fixity"), ("ls",)], ids=" ".join)
def test_light_commands_import_no_heavy_dependency(command: tuple[str, ...], tmp_path: Path) -> None:
    bundle = tmp_path / "toy.zst"
    build(EXAMPLE, output=bundle)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))), *command, str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    code, _, heavy = proc.stderr.strip().splitlines()[-1].partition(" ")
    assert code == "0", proc.stderr
    assert heavy == "", f"arch {' '.join(command)} imported {heavy}"


#: the modules above the domain model that ask what a bundle holds: they ask heparch.analysis
DOMAIN_CONSUMERS = (
    "infer",
    "replay",
    "claim",
    "simplify",
    "reinterpret",
    "export",
    "cli/cmd_claim.py",
    "cli/cmd_cls.py",
    "cli/cmd_export.py",
    "cli/cmd_reinterpret.py",
    "cli/cmd_replay.py",
    "cli/cmd_simplify.py",
)
#: reads of the manifest's file list or of a results component's points
DIRECT_READS = re.compile(r"""\.by_role\(|manifest\.files\b|\.files\(\)|\[["']files["']\]|\[["']points["']\]|results\.points\b""")
#: lines that match but read something else: (file, text in the line, why)
NOT_THE_MANIFEST = (
    ("replay/outcome.py", 'out["points"]', "the audit summary it writes"),
    ("replay/core.py", 'obj["points"]', "the --resume state file"),
    ("reinterpret/signal.py", 'data["points"]', "the user's signal file of new points"),
)


def test_only_the_domain_model_reads_files_and_points() -> None:
    """import-linter cannot see attribute reads: this holds that only heparch.analysis reads the
    manifest's ``files`` and a results component's ``points`` (issue 12)."""
    found = []
    for top in DOMAIN_CONSUMERS:
        root = PKG / top
        for file in sorted(root.rglob("*.py") if root.is_dir() else [root.with_suffix(".py") if not root.suffix else root]):
            for n, line in enumerate(file.read_text("utf-8").splitlines(), 1):
                allowed = any(str(file.relative_to(PKG)) == f and text in line for f, text, _ in NOT_THE_MANIFEST)
                if DIRECT_READS.search(line) and not allowed:
                    found.append(f"{file.relative_to(PKG)}:{n}: {line.strip()}")
    assert found == []


def test_the_direct_read_pattern_sees_a_read() -> None:
    assert DIRECT_READS.search('for e in bundle.manifest.by_role("results"):')
    assert DIRECT_READS.search('points = obj["points"]')
    assert not DIRECT_READS.search("for p in report.points:")
