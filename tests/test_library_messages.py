"""The library's messages speak of the library; the CLI maps them to flags (issue 12, item 4).

A library error about a parameter names the parameter (``backend 'x': ...``, ``use backend=pyhf``)
and carries ``option="backend"``; ``arch``'s one error handler names the flag instead
(``--backend 'x': ...``, ``use --backend pyhf``). A ratchet holds the line on the flags still
written in library string literals (outside ``heparch.cli``).
"""

from __future__ import annotations

import ast
import collections
import re

import pytest

from heparch.cli.main import flag_of, flagged
from heparch.errors import InputError
from heparch.infer import backends
from heparch.infer.base import Settings

from conftest import ROOT

PKG = ROOT / "pkg" / "heparch"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-o )")

#: Library files that still write command-line flags in string literals (docstrings not counted), with
#: at most this many literals each. Lower a number when you convert a message; never raise one.
#: What is left: hints naming boolean flags (--force, --allow-failures, --compare-simplified, 'drop
#: --passphrase-file', --detached --ssh) or other commands' flags ('arch verify --help', 'arch keygen -o',
#: --template, --interface), which the parameter form (``name=value``) cannot say; hints naming several
#: parameters, since one error maps one parameter (analysis.py's 'add --backend simplified (or --likelihood
#: ...)' on a point not found; backends.py's list of the HistFactory settings a simplified likelihood
#: refuses; pyhf_backend.py's 'did you forget --patch or --point?' and 'give the signal with --patch or
#: --patchset and --point'); texts that are recorded results, not errors the CLI rewrites (pyhf_backend.py's
#: q~mu note in claims and replay reports; verify's findings W007 'give --trust POLICY' and W012's
#: '(--measurement)', part of the conformance vectors' expected output); arch.yaml's commented template
#: (config.py), which documents the CLI on purpose.
REMAINING: dict[str, int] = {
    "analysis.py": 1,
    "claim.py": 1,
    "components/workspace.py": 1,
    "config.py": 4,
    "infer/backends.py": 1,
    "infer/pyhf_backend.py": 3,
    "init.py": 1,
    "reinterpret/run.py": 1,
    "reinterpret/signal.py": 4,
    "reinterpret/simplified.py": 2,
    "replay/core.py": 1,
    "sign.py": 1,
    "signing/check.py": 1,
    "signing/keys.py": 3,
    "signing/trust.py": 1,
}


def _docstrings(tree: ast.Module) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }


def flag_literals() -> collections.Counter[str]:
    """Per library file (relative to pkg/heparch), how many string literals outside docstrings name a flag."""
    counts: collections.Counter[str] = collections.Counter()
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs and FLAG.search(node.value):
                counts[rel.as_posix()] += 1
    return counts


def test_library_string_literals_name_no_more_flags_than_the_ratchet_allows() -> None:
    over = {name: n for name, n in flag_literals().items() if n > REMAINING.get(name, 0)}
    assert not over, f"library messages name CLI flags; name the parameter and pass option= instead: {over}"


def test_the_ratchet_finds_a_flag_it_does_not_allow() -> None:
    assert FLAG.search("use --backend pyhf")
    assert FLAG.search("e.g. -o out.zst")
    assert not FLAG.search("use backend=pyhf")
    assert not FLAG.search("a pre-fit, x--y")
    assert sum(flag_literals().values()) > 0  # it reads the library (a ratchet that finds nothing checks nothing)


@pytest.mark.parametrize(
    ("option", "flag"),
    [("backend", "--backend"), ("poi_bounds", "--poi-bounds"), ("out", "-o"), ("normsys", "--normsys-interp"), ("histosys", "--histosys-interp")],
)
def test_flag_of_a_parameter(option: str, flag: str) -> None:
    assert flag_of(option) == flag


def test_the_cli_names_the_flag_where_the_library_names_the_parameter() -> None:
    exc = InputError("backend fast: cannot handle this model: odd; use backend=pyhf", option="backend")
    assert str(exc) == "backend fast: cannot handle this model: odd; use backend=pyhf"
    assert flagged(exc) == "--backend fast: cannot handle this model: odd; use --backend pyhf"
    where = InputError("ps.json: point 'x' is not a patch; valid names: 'y'", option="point")
    assert flagged(where) == "ps.json: --point 'x' is not a patch; valid names: 'y'"  # after a location too
    out = InputError("out d: is a directory; give the output file name, e.g. out=d/claimed.zst", option="out")
    assert flagged(out) == "-o d: is a directory; give the output file name, e.g. -o d/claimed.zst"


def test_the_cli_leaves_other_words_alone() -> None:
    assert flagged(InputError("x.json: backend 'y' layout=z")) == "x.json: backend 'y' layout=z"  # no option: unchanged
    exc = InputError("out: a layout=flat checkout", option="out")
    assert flagged(exc) == "-o: a layout=flat checkout"  # only the word itself, not 'layout=' or 'checkout'
    assert flagged(InputError("backends: none", option="backend")) == "backends: none"  # 'backends' is not 'backend'
    # a path or value that is the parameter's own word stays as written: only the parameter's place is the flag
    assert flagged(InputError("out: out exists and is a directory", option="out")) == "-o: out exists and is a directory"


def test_library_errors_name_the_parameter_not_the_flag() -> None:
    with pytest.raises(InputError) as unknown:
        backends.get("nope")
    assert unknown.value.option == "backend"
    assert unknown.value.message.startswith("backend 'nope': unknown backend; choose one of ")
    assert flagged(unknown.value).startswith("--backend 'nope': unknown backend")
    with pytest.raises(InputError) as bounds:
        Settings(poi_bounds=(1.0, 0.0))
    assert (bounds.value.option, bounds.value.message) == ("poi_bounds", "poi_bounds 1,0: need two finite numbers, lower < upper")
