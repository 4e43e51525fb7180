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
        elif isinstance(node, ast.ImportFrom) and node.module == "heparch":  # from heparch import config, __version__
            subs = {f"heparch.{a.name}" for a in node.names}
            out.update(m if _is_module(m) else "heparch" for m in subs)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
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
HEAVY = ("numpy", "scipy", "pyhf", "jsonschema", "cryptography", "matplotlib", "dask", "spey", "ruamel")

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


#: the heavy or optional third-party packages a function may import where it needs them (issue 12
#: item 2); ruamel.yaml is here by measurement: ~0.12 s to import (a third of numpy's ~0.36 s), and
#: neither `arch ls` nor `verify --level fixity` reads YAML
LAZY_OK = frozenset({"numpy", "scipy", "pyhf", "dask", "cryptography", "jsonschema", "matplotlib", "spey", "rich", "ruamel"})
_PRAGMA = re.compile(r"noqa(:\s*[A-Z]+[0-9]+(,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?|fmt:\s*\w+")


def _module_of(file: Path) -> str:
    parts = file.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement loads (``from heparch.x import y`` loads heparch.x.y when y is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    return [base, *(f"{base}.{a.name}" for a in node.names if base.startswith("heparch") and _is_module(f"{base}.{a.name}"))]


def _is_module(name: str) -> bool:
    path = PKG.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: not inside a function, not under ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _function_local(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    nodes = {
        (n.lineno, n.col_offset): n
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(fn)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    return [nodes[k] for k in sorted(nodes)]


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def heavy_heparch_modules() -> frozenset[str]:
    """The heparch modules whose import (module-level imports, transitively, parent packages too)
    loads a package of LAZY_OK: read from the source, so no test imports them."""
    direct: dict[str, set[str]] = {}
    for file in PKG.rglob("*.py"):
        loaded = {m for node in _module_level(ast.parse(file.read_text("utf-8"))) for t in _targets(node) for m in _with_parents(t)}
        direct[_module_of(file)] = loaded
    heavy = {m for m, loaded in direct.items() if {t.split(".")[0] for t in loaded} & LAZY_OK}
    grown = True
    while grown:
        more = {m for m, loaded in direct.items() if m not in heavy and loaded & heavy}
        more |= {m for m in direct if m not in heavy and any(p in heavy for p in _with_parents(m)[:-1])}
        heavy |= more
        grown = bool(more)
    return frozenset(heavy)


def _has_reason(source_lines: list[str], node: ast.Import | ast.ImportFrom) -> bool:
    """A ``#`` comment on one of the statement's lines with words beyond tool pragmas (noqa, type: ignore)."""
    for line in source_lines[node.lineno - 1 : node.end_lineno]:
        _, hash_, comment = line.partition("#")
        if hash_ and re.search(r"[A-Za-z]{2}", _PRAGMA.sub("", comment.replace("#", " "))):
            return True
    return False


def unexplained_local_imports(source: str, heavy_heparch: frozenset[str]) -> list[tuple[int, str]]:
    """(line, text) of each function-local import that loads no LAZY_OK package, no heparch module
    in ``heavy_heparch`` and carries no reason comment."""
    lines = source.splitlines()
    found = []
    for node in _function_local(ast.parse(source)):
        targets = _targets(node)
        if {t.split(".")[0] for t in targets} & LAZY_OK or set(targets) & heavy_heparch or _has_reason(lines, node):
            continue
        found.append((node.lineno, lines[node.lineno - 1].strip()))
    return found


def test_function_local_imports_are_heavy_or_say_why() -> None:
    """Issue 12 item 2, docs/design.md "Layers": an import inside a function hides an arrow of the
    layers, so a function imports locally only (a) a heavy or optional package of LAZY_OK, (b) a
    heparch module whose import loads one (heavy_heparch_modules, read statically from the module-level
    imports), or (c) with a reason in a comment on the import's line (a cycle, a platform module, a
    measured cost: ``# cycle: audit imports this module``). Anything else belongs at the module's top."""
    heavy = heavy_heparch_modules()
    found = set()
    for file in sorted(PKG.rglob("*.py")):
        rel = str(file.relative_to(PKG))
        found |= {(rel, text) for _, text in unexplained_local_imports(file.read_text("utf-8"), heavy)}
    assert sorted(found) == [], "move these to the module's top, or say on the line why they are local"


def test_heavy_heparch_modules_follow_module_level_imports() -> None:
    heavy = heavy_heparch_modules()
    assert {"heparch.infer.fast", "heparch.infer.fast.backend", "heparch.infer.simplified", "heparch.signing.keys", "heparch.sign"} <= heavy
    assert not {"heparch.errors", "heparch.infer.pyhf_backend", "heparch.replay.plot", "heparch.verify", "heparch.spec.schema_check"} & heavy


SYNTHETIC = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from heparch.errors import InputError

def f():
    from heparch.errors import InputError
    import numpy as np
    from heparch.infer import fast
    from heparch.replay import audit  # cycle: audit imports this module
    from heparch.store import tmpfiles  # noqa: F401
    import shutil  # type: ignore[import-untyped]
    from heparch.sign import (  # cryptography
        attach,
    )
    def g():
        import json
"""


def test_the_local_import_rule_can_fail() -> None:
    found = unexplained_local_imports(SYNTHETIC, frozenset({"heparch.infer.fast"}))
    assert found == [
        (7, "from heparch.errors import InputError"),
        (11, "from heparch.store import tmpfiles  # noqa: F401"),
        (12, "import shutil  # type: ignore[import-untyped]"),
        (17, "import json"),
    ]
