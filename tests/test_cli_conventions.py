"""The CLI's conventions (issue 13 item 4): results to stdout and progress/diagnostics to stderr,
--json on every command with stdout holding only the JSON document, and help texts that show
metavars rather than Python types (--json on every command: tests/test_extract.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from heparch.build import build
from heparch.cli.main import command

from clihelp import run

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example-analysis"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conventions") / "toy.zst"
    build(EXAMPLE, output=out)
    return out


def _commands() -> list[str]:
    return sorted(command().commands)


@pytest.mark.parametrize("name", ["", *_commands()])
def test_help_shows_metavars_not_python_types(name: str) -> None:
    code, out, err = run(*([name] if name else []), "--help")
    assert code == 0, err
    assert out.startswith("Usage: ")
    types = re.findall(r"<(?:bool|str|int|float|path|list\[[^>]*\]|int range|float range)>", out)
    assert types == [], f"arch {name} --help shows Python types: {types}"


def test_verify_verdict_goes_to_stdout(bundle: Path) -> None:
    """`arch verify b.zst > log` captures the verdict; with --json stdout is the JSON alone."""
    code, out, err = run("verify", str(bundle))
    assert code == 0, err
    assert out.startswith(f"{bundle}: valid at level full (0 errors, 0 warnings); identity sha256:")
    assert "valid" not in err
    code, out, err = run("verify", str(bundle), "--json")
    assert code == 0, err
    assert json.loads(out)["valid"] is True
    assert f"{bundle}: valid at level full" in err


def test_results_on_stdout_json_alone_with_json(bundle: Path, tmp_path: Path) -> None:
    """build, cls, keygen, extract: the result line on stdout; with --json it moves to stderr."""
    code, out, err = run("build", str(EXAMPLE), "-o", str(tmp_path / "b.zst"))
    assert code == 0, err
    assert out.splitlines()[0] == f"built {tmp_path / 'b.zst'} (6 files)"
    code, out, err = run("build", str(EXAMPLE), "-o", str(tmp_path / "b.zst"), "--json")
    assert code == 0, err
    assert json.loads(out)["output"] == str(tmp_path / "b.zst")
    assert f"built {tmp_path / 'b.zst'}" in err
    args = ("cls", str(bundle), "--point", "C1N2_700_0", "--likelihood", "BkgOnly.json", "--backend", "fast")
    code, out, err = run(*args)
    assert code == 0, err
    assert re.match(r"\S+ point C1N2_700_0: CLs at mu=1 \(fast backend\): observed [0-9.e-]+, expected \[", out)
    code, out, err = run(*args, "--json")
    assert code == 0, err
    assert 0 < json.loads(out)["CLs_obs"] < 1
    assert "CLs at mu=1 (fast backend)" in err


def test_cat_json_gives_the_entry_after_checking_it(bundle: Path) -> None:
    code, out, err = run("cat", str(bundle), "patchset.json", "--json")
    assert code == 0, err
    listed = {f["path"]: f for f in json.loads(run("ls", str(bundle), "--json")[1])}
    assert json.loads(out) == listed["patchset.json"]
    code, out, err = run("cat", str(bundle), "nope.json", "--json")
    assert code == 2
    assert out == ""
    assert "no file 'nope.json' in the bundle" in err
