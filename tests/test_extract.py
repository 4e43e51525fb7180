"""arch extract, the Python API, inspect/ls/cat and init."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import heparch
from heparch.build import build
from heparch.errors import InputError, IntegrityError
from heparch.extract import extract

from clihelp import run
from conftest import EXAMPLE


@pytest.fixture
def bundle(analysis: Path, tmp_path: Path) -> Path:
    (analysis / "arch.yaml").write_text(
        "name: toy\ncreated: '2024-01-02T03:04:05Z'\n"
        "deposit: {doi: 10.5281/zenodo.1234567, publisher: Zenodo, year: 2026}\n"
        "analysis: {title: A toy, license: CC-BY-4.0, sqrt_s_TeV: 13, luminosity_ifb: 139.0}\n"
        "containers: [{name: env, reference: 'docker.io/pyhf/pyhf@sha256:" + "a" * 64 + "'}]\n"
        "files: [{path: README.md, role: attachment, annotations: {note: kept}}]\n"
    )
    (analysis / "code").mkdir()
    (analysis / "code" / "fit.py").write_text("print('fit')\n")
    return build(analysis, output=tmp_path / "toy.zst").output


def test_extract_then_build_keeps_identity(bundle: Path, tmp_path: Path) -> None:
    out = extract(bundle, tmp_path / "x")
    assert (out / "arch.yaml").is_file()
    assert "deposit:\n  doi: 10.5281/zenodo.1234567\n  publisher: Zenodo\n  year: 2026\n" in (out / "arch.yaml").read_text()
    assert (out / "code" / "fit.py").read_text() == "print('fit')\n"
    rebuilt = build(out, output=tmp_path / "again.zst")
    with heparch.open(bundle) as b:
        assert rebuilt.identity == b.identity
    assert (tmp_path / "again.zst").read_bytes() == bundle.read_bytes()


def test_extract_1lbb_round_trip(one_lbb_bundle: Path, tmp_path: Path) -> None:
    out = extract(one_lbb_bundle, tmp_path / "x")
    with heparch.open(one_lbb_bundle) as b:
        assert build(out, output=tmp_path / "again.zst").identity == b.identity


def test_extract_refuses_non_empty_target_and_symlink(bundle: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(InputError, match="not an empty directory"):
        extract(bundle, busy)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="symbolic link"):
        extract(bundle, link)


def test_extract_of_corrupt_bundle_writes_nothing(bundle: Path, tmp_path: Path) -> None:
    data = bytearray(bundle.read_bytes())
    data[-100] ^= 0x10
    bad = tmp_path / "bad.zst"
    bad.write_bytes(bytes(data))
    code, _, err = run("extract", str(bad), "-o", str(tmp_path / "out"))
    assert code == 1
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
    assert "Traceback" not in err


def test_api(bundle: Path) -> None:
    with heparch.open(bundle) as b:
        assert b.likelihoods() == ["BkgOnly.json"]
        ws = b.workspace()
        assert ws.channels == ["SR"]
        ps = b.patchset()
        assert len(ps.patches) == 3
        assert b.read_bytes("code/fit.py") == b"print('fit')\n"
        assert b.manifest.name == "toy"
        with pytest.raises(InputError, match="no file"):
            b.read_bytes("nope")


def test_api_checks_hash_of_returned_bytes(bundle: Path, tmp_path: Path) -> None:
    from heparch.store import reader

    with heparch.open(bundle) as b:
        real = reader.RandomAccess.iter_range

        def tampered(self, start, length):  # type: ignore[no-untyped-def]
            for piece in real(self, start, length):
                yield piece.replace(b"fit", b"fix")

        reader.RandomAccess.iter_range = tampered  # type: ignore[method-assign]
        try:
            with pytest.raises(IntegrityError, match="E053"):
                b.read_bytes("code/fit.py")
        finally:
            reader.RandomAccess.iter_range = real  # type: ignore[method-assign]


def test_inspect_ls_cat(bundle: Path) -> None:
    code, out, _ = run("inspect", str(bundle), "--json")
    assert code == 0
    info = json.loads(out)
    assert {f["path"] for f in info["files"]} == {"BkgOnly.json", "patchset.json", "README.md", "code/fit.py"}
    assert all({"path", "role", "mediaType", "digest", "size"} <= set(f) for f in info["files"])
    assert info["likelihoods"] == {"BkgOnly.json": {"points": 3}}
    code, out, _ = run("inspect", str(bundle))
    assert code == 0
    assert "3 signal points" in out
    code, out, _ = run("ls", str(bundle))
    assert out.split() == ["BkgOnly.json", "README.md", "code/fit.py", "patchset.json"]
    code, out, _ = run("cat", str(bundle), "code/fit.py")
    assert (code, out) == (0, "print('fit')\n")
    code, _, err = run("cat", str(bundle), "missing.txt")
    assert code == 2
    assert "missing.txt" in err


def test_init_writes_commented_yaml_that_builds_and_round_trips(analysis: Path, tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    code, _, err = run("init", str(analysis))
    assert code == 0, err
    text = (analysis / "arch.yaml").read_text()
    assert "# Roles of files" in text
    assert "role: patchset" in text
    yaml = YAML(typ="rt")
    doc = yaml.load(text)
    doc["name"] = "renamed"
    import io

    buf = io.StringIO()
    yaml.dump(doc, buf)
    assert "# Roles of files" in buf.getvalue()  # comments survive a round trip
    assert run("init", str(analysis))[0] == 2  # no overwrite without --force
    assert run("build", str(analysis), "-o", str(tmp_path / "b.zst"))[0] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x 1\nb: *x\n", "anchors"),
        ("name: !!python/object:os.system x\n", "tag"),
        ("files: !!set {a}\n", "tag"),  # a tag on a collection (crashed with TypeError)
        ("exclude: !!seq [a]\n", "tag"),
        ("name: [unclosed\n", "not valid YAML"),
        ("exclud: [a]\n", "exclud: unknown field; did you mean 'exclude'?"),
        ("analysis: {luminosty_ifb: 139}\n", "analysis.luminosty_ifb: unknown field; did you mean 'luminosity_ifb'?"),
    ],
)
def test_unsafe_or_wrong_arch_yaml_is_refused(analysis: Path, tmp_path: Path, text: str, message: str) -> None:
    (analysis / "arch.yaml").write_text(text)
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert message in err
    assert "arch.yaml" in err


def test_unpinned_container_is_refused(analysis: Path, tmp_path: Path) -> None:
    (analysis / "arch.yaml").write_text("containers: [{name: env, reference: 'docker.io/pyhf/pyhf:latest'}]\n")
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert "sha256" in err


def test_source_date_epoch(analysis: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert build(analysis, output=tmp_path / "b.zst").manifest.created == "1970-01-02T00:00:00Z"


def test_example_analysis_builds_verifies_and_round_trips(tmp_path: Path) -> None:
    out = build(EXAMPLE, output=tmp_path / "toy.zst")
    assert run("verify", str(out.output))[0] == 0
    assert build(extract(out.output, tmp_path / "x"), output=tmp_path / "again.zst").identity == out.identity


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert out.strip() == f"heparch {heparch.__version__}"


def test_console_script_help() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "heparch", "build", "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0
    assert "arch.yaml" in done.stdout


def test_cat_writes_nothing_when_the_hash_does_not_match(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heparch.api import Bundle

    def corrupt(self: Bundle, path: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        yield b"tampered bytes that reach the end of the file, "
        raise IntegrityError(f"{self.path}: E053 {path}: content does not match its digest")

    monkeypatch.setattr(Bundle, "iter_bytes", corrupt)
    code, out, err = run("cat", str(bundle), "code/fit.py")
    assert code == 1
    assert out == ""
    assert "E053" in err


@pytest.mark.parametrize("command", [("cat", "big.txt"), ("ls",)], ids=lambda c: c[0])
def test_a_reader_that_goes_away_is_not_an_error(command: tuple[str, ...], analysis: Path, tmp_path: Path) -> None:
    """`arch cat b.zst big.txt | head -c 10`, `arch ls b.zst | head -1`: exit 0, nothing on stderr."""
    import subprocess
    import sys

    (analysis / "big.txt").write_text("".join(f"line {i} {'x' * 80}\n" for i in range(50_000)))
    for i in range(2000):  # enough names that `ls` outgrows the pipe's buffer
        (analysis / "many" / f"f{i:04d}.txt").parent.mkdir(exist_ok=True)
        (analysis / "many" / f"f{i:04d}.txt").write_text(str(i))
    bundle = tmp_path / "b.zst"
    build(analysis, output=bundle)
    verb, *rest = command
    with subprocess.Popen([sys.executable, "-m", "heparch", verb, str(bundle), *rest], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert len(proc.stdout.read(10)) == 10
        proc.stdout.close()  # the reader goes away
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, err
    assert err == b""


def test_every_command_has_json(analysis: Path, tmp_path: Path) -> None:
    """--json on init, ls, extract and keygen (the others had it): one JSON document on stdout."""
    code, out, err = run("init", str(analysis), "--json")
    assert code == 0, err
    assert json.loads(out) == {"path": str(analysis / "arch.yaml")}
    bundle = tmp_path / "b.zst"
    build(analysis, output=bundle)
    code, out, err = run("ls", str(bundle), "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert [f["path"] for f in listing] == sorted(f["path"] for f in listing)
    assert {f["role"] for f in listing} >= {"likelihood", "patchset"}
    assert all(f["digest"].startswith("sha256:") and f["size"] > 0 for f in listing)
    code, out, err = run("extract", str(bundle), "-o", str(tmp_path / "x"), "--json")
    assert code == 0, err
    assert json.loads(out) == {"bundle": str(bundle), "output": str(tmp_path / "x")}
    code, out, err = run("keygen", "-o", str(tmp_path / "k"), "--json")
    assert code == 0, err
    key = json.loads(out)
    assert (key["private"], key["public"], key["encrypted"]) == (str(tmp_path / "k"), str(tmp_path / "k.pub"), False)
    assert len(key["keyid"]) == 64


def test_help_lists_json_on_every_command() -> None:
    from typer.main import get_command

    from heparch.cli.main import app

    group = get_command(app)
    missing = [name for name, cmd in group.commands.items() if "--json" not in {o for p in cmd.params for o in p.opts}]  # type: ignore[attr-defined]
    assert missing == []
