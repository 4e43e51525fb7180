"""Issue 11: hostile or malformed inputs end with exit 1 (artifact) or 2 (input) and a code, never exit 3.

One test per reproduction of the issue: integers beyond 2^53 and lone surrogates (E038, E039) in
manifests, components, arch.yaml and command options; malformed patchsets; overflowing third
moments; non-UTF-8 or deeply nested arch.yaml; a corrupted .json file in an analysis directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from heparch.build import AGENT
from heparch.components.simplified import breaks_moment_condition, check_simplified
from heparch.spec import strictjson, versions
from heparch.spec.models import Manifest
from heparch.store import layout, writer

from clihelp import run
from conftest import small_workspace

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "conformance" / "1.0" / "invalid"
SAFE = 2**53 - 1


# --- the strict JSON parser (E038, E039) ----------------------------------------------


@pytest.mark.parametrize("value", [SAFE, -SAFE, 0, -0, 2**52])
def test_integers_within_the_safe_range_parse(value: int) -> None:
    assert strictjson.loads(json.dumps({"n": value}).encode()) == {"n": value}


@pytest.mark.parametrize("text", [str(SAFE + 1), str(-SAFE - 1), "1" + "0" * 20, "-" + "9" * 5000])
def test_integers_beyond_2_53_are_E038(text: str) -> None:
    with pytest.raises(strictjson.StrictJSONError, match=r"outside \+-\(2\^53 - 1\)") as info:
        strictjson.loads(b'{"n": ' + text.encode() + b"}")
    assert info.value.code == "E038"


def test_large_floats_are_not_integers() -> None:
    assert strictjson.loads(b"[1e300, 9007199254740993.0]") == [1e300, 9007199254740993.0]


@pytest.mark.parametrize("raw", [rb'["a\ud800"]', rb'["\udc00b"]', rb'{"\ud83d": 1}', rb'[{"k": ["\uDBFF"]}]'])
def test_lone_surrogates_are_E039(raw: bytes) -> None:
    with pytest.raises(strictjson.StrictJSONError, match="lone surrogate") as info:
        strictjson.loads(raw)
    assert info.value.code == "E039"


@pytest.mark.parametrize("raw", [rb'["\ud83d\ude00"]', rb'["\\ud800"]', b'["\xf0\x9f\x98\x80"]'])
def test_pairs_and_escaped_backslashes_are_not_lone_surrogates(raw: bytes) -> None:
    assert strictjson.loads(raw)


def test_other_errors_keep_the_callers_code() -> None:
    with pytest.raises(strictjson.StrictJSONError) as info:
        strictjson.loads(b'{"a": 1, "a": 2}')
    assert info.value.code is None


@pytest.mark.parametrize(("obj", "code", "where"), [({"a": [1, SAFE + 1]}, "E038", r"\$\.a\[1\]"), ({"b": {"c": "x\udfff"}}, "E039", r"\$\.b\.c")])
def test_canonical_refuses_what_readers_refuse(obj: Any, code: str, where: str) -> None:
    with pytest.raises(strictjson.StrictJSONError, match=where) as info:
        strictjson.canonical(obj)
    assert info.value.code == code
    assert strictjson.canonical({"ok": [True, SAFE]}) == b'{"ok":[true,9007199254740991]}'


# --- every command on a manifest holding such values -----------------------------------

COMMANDS = [("verify",), ("inspect",), ("ls",), ("cat", "README.md"), ("extract", "-o", "OUT"), ("sign", "--key", "KEY", "--role", "author")]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("key") / "k"
    assert run("keygen", "-o", str(out))[0] == 0
    return out


@pytest.mark.parametrize("vector", ["E038_manifest_integer_too_large", "E039_manifest_lone_surrogate"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_manifest_values_exit_1_with_their_code(vector: str, command: tuple[str, ...], key: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.zst"
    bundle.write_bytes((INVALID / vector / "bundle.zst").read_bytes())
    args = [a.replace("OUT", str(tmp_path / "out")).replace("KEY", str(key)) for a in command]
    code, _, err = run(args[0], str(bundle), *args[1:])
    assert code == 1, err
    assert vector[:4] in err
    assert not (tmp_path / "out").exists()


# --- malformed patchsets ---------------------------------------------------------------


def manifest_object(files: dict[str, tuple[bytes, str, dict[str, str]]]) -> dict[str, Any]:
    """The manifest (as JSON) listing ``files`` (path -> (bytes, role, annotations))."""
    entries = []
    for path, (data, role, notes) in sorted(files.items()):
        entry: dict[str, Any] = {
            "path": path,
            "role": role,
            "mediaType": "application/json",
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "fixity": {"sha512": hashlib.sha512(data).hexdigest()},
        }
        if notes:
            entry["annotations"] = notes
        entries.append(entry)
    return {"bundleFormat": {"uri": versions.FORMAT_URI, "version": versions.FORMAT_VERSION}, "files": entries, "analysis": {"license": "CC0-1.0"}}


def raw_bundle(out: Path, files: dict[str, tuple[bytes, str, dict[str, str]]]) -> Path:
    """A bundle holding ``files`` (path -> (bytes, role, annotations)) as heparch writes it, unchecked."""
    obj = manifest_object(files)
    manifest_bytes = strictjson.canonical(obj)
    head = layout.head_files(Manifest.from_json(obj), manifest_bytes, AGENT)
    blobs = {hashlib.sha256(d).hexdigest(): d for d, _, _ in files.values()}
    writer.write_bundle(out, head, {}, {h: len(d) for h, d in blobs.items()}, lambda h: iter([blobs[h]]))
    return out


BAD_PATCHSETS = {
    "list": [],
    "patches_not_a_list": {"patches": 5, "metadata": {}, "version": "1.0.0"},
    "metadata_a_list": {"patches": [], "metadata": [], "version": "1.0.0"},
    "metadata_fields": {"patches": [{"metadata": 3, "patch": []}], "metadata": {"digests": {"sha256": 5}, "labels": 3, "references": 2}, "version": "1.0.0"},
}


@pytest.mark.parametrize("name", BAD_PATCHSETS)
def test_malformed_patchset_is_E062_for_verify_extract_inspect_and_build(name: str, tmp_path: Path) -> None:
    ws = json.dumps(small_workspace()).encode()
    ps = json.dumps(BAD_PATCHSETS[name]).encode()
    bundle = raw_bundle(tmp_path / "b.zst", {"BkgOnly.json": (ws, "likelihood", {}), "ps.json": (ps, "patchset", {"likelihood": "BkgOnly.json"})})
    code, _, err = run("verify", str(bundle))
    assert code == 1, err
    assert "E062" in err, err
    code, _, err = run("extract", str(bundle), "-o", str(tmp_path / "x"))
    assert code == 1, err
    assert "E062" in err, err
    code, out, err = run("inspect", str(bundle), "--json")
    assert code == 0, err  # inspect does not verify; it must still not crash
    points = 1 if name == "metadata_fields" else 0  # a list of patches is counted, whatever its entries
    assert json.loads(out)["likelihoods"] == {"BkgOnly.json": {"points": points}}
    src = tmp_path / "src"
    src.mkdir()
    (src / "BkgOnly.json").write_bytes(ws)
    (src / "ps.json").write_bytes(ps)
    (src / "arch.yaml").write_text("files:\n  - {path: ps.json, role: patchset, likelihood: BkgOnly.json}\n")
    code, _, err = run("build", str(src), "-o", str(tmp_path / "o.zst"))
    assert code == 2, err
    assert "E062 ps.json" in err, err


# --- simplified likelihoods with huge finite numbers ------------------------------------


def test_moment_condition_does_not_overflow() -> None:
    assert breaks_moment_condition(1e308, 1.0)
    assert not breaks_moment_condition(1e300, 1e300)
    assert breaks_moment_condition(1e200, 1e133)  # 1e400 > 8e399
    assert not breaks_moment_condition(-1e200, 1e134)
    assert breaks_moment_condition(1.0, 0.0)
    assert not breaks_moment_condition(0.0, 0.0)


@pytest.mark.parametrize(("field", "value", "codes"), [("third_moments", 1e308, ["E067"]), ("covariance", 1e308, [])])
def test_huge_third_moment_or_covariance_is_a_finding_not_an_overflow(field: str, value: float, codes: list[str]) -> None:
    sl = json.loads((ROOT / "tests" / "test_components" / "sl.json").read_text())
    if field == "third_moments":
        sl["third_moments"] = [value] * len(sl["background"])
    else:
        sl["covariance"][0][0] = value
    assert [f.code for f in check_simplified(sl, location="sl.json")] == codes


# --- arch.yaml and the analysis directory ------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "ana"
    src.mkdir()
    (src / "BkgOnly.json").write_text(json.dumps(small_workspace()))
    return src


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (b"name: caf\xe9\n", r"arch.yaml: not UTF-8 \(byte 9\)"),
        (b"analysis:\n  x: " + b"[" * 500 + b"]" * 500 + b"\n", "nested deeper than 64 levels"),
        ("analysis:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(500)) + "  " * 501 + "v\n", "nested deeper than 64 levels"),
        (b"analysis:\n  luminosity_ifb: 99999999999999999999\n", r"E038 arch.yaml: manifest:\$\.analysis\.luminosity_ifb: integer 99999999999999999999"),
        (b'analysis:\n  title: "a \\ud800"\n', r"E039 arch.yaml: manifest:\$\.analysis\.title: string holds a lone surrogate"),
    ],
    ids=["not-utf8", "deep-flow", "deep-block", "integer", "surrogate"],
)
def test_bad_arch_yaml_is_an_input_error(yaml: bytes | str, message: str, source: Path, tmp_path: Path) -> None:
    (source / "arch.yaml").write_bytes(yaml if isinstance(yaml, bytes) else yaml.encode())
    code, _, err = run("build", str(source), "-o", str(tmp_path / "o.zst"))
    assert code == 2, err
    assert re.search(message, err), err
    assert not (tmp_path / "o.zst").exists()


def test_file_name_that_is_not_utf8_is_an_input_error(source: Path, tmp_path: Path) -> None:
    try:
        (source / os.fsdecode(b"bad\xff.txt")).write_text("x")
    except (OSError, UnicodeEncodeError):
        pytest.skip("the file system refuses a non-UTF-8 name")
    code, _, err = run("build", str(source), "-o", str(tmp_path / "o.zst"))
    assert code == 2, err
    assert "not valid UTF-8" in err


@pytest.mark.parametrize(("name", "content", "where"), [("BkgOnly.json", '{"channels": [\n', "line 2 column 1"), ("extra.json", "[1, 2,]", "line 1 column 7")])
def test_json_file_that_does_not_parse_is_refused_naming_line_and_column(name: str, content: str, where: str, source: Path, tmp_path: Path) -> None:
    (source / name).write_text(content)
    code, _, err = run("build", str(source), "-o", str(tmp_path / "o.zst"))
    assert code == 2, err
    assert f"E060 {name}: " in err, err
    assert where in err, err
    assert not (tmp_path / "o.zst").exists()


@pytest.mark.parametrize("seed", [str(SAFE + 1), "-1"])
def test_simplify_refuses_a_seed_no_reader_accepts(seed: str, tmp_path: Path) -> None:
    code, _, err = run("simplify", str(tmp_path / "missing.json"), "-o", str(tmp_path / "sl.json"), "--seed", seed)
    assert code == 2
    assert f"--seed {seed}" in err


# --- output paths never come from bundle content (item 4) ---------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x", "x.zst"),
        ("/tmp/abs", "tmp_abs.zst"),
        ("~/home", "home.zst"),
        ("~", "bundle.zst"),
        ("..", "bundle.zst"),
        (".hidden", "hidden.zst"),
        ("a\x00b\nc\x1bd", "a_b_c_d.zst"),
        ("con", "bundle.zst"),
        ("dir\\..\\evil", "dir_.._evil.zst"),
        ("analyse-1Lbb_v2.1", "analyse-1Lbb_v2.1.zst"),
        ("Müon search", "Müon_search.zst"),
    ],
)
def test_default_output_name_is_one_safe_file_in_the_current_directory(
    name: str, expected: str, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (source / "arch.yaml").write_text(json.dumps({"name": name}))  # JSON is YAML: any string, escaped
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, out, err = run("build", str(source), "--json")
    assert code == 0, err
    written = Path(json.loads(out)["output"])
    assert written == work / expected
    assert [p.name for p in work.iterdir()] == [expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ana", "deep"]


def test_empty_name_falls_back_to_the_source_name(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (source / "arch.yaml").write_text('name: ""\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = run("build", str(source), "--json")
    assert code == 0, err
    assert Path(json.loads(out)["output"]) == tmp_path / "ana.zst"


def test_extracted_bundle_named_dotdot_rebuilds_in_the_current_directory(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (source / "arch.yaml").write_text('name: "../../escaped"\n')
    bundle = tmp_path / "b.zst"
    assert run("build", str(source), "-o", str(bundle))[0] == 0
    assert run("extract", str(bundle), "-o", str(tmp_path / "x"))[0] == 0
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, _, err = run("build", str(tmp_path / "x"))
    assert code == 0, err
    assert (work / "escaped.zst").is_file()
    assert not list(tmp_path.rglob("escaped.zst*"))[1:]
    assert not (tmp_path / "escaped.zst").exists()


# --- extract reads what it verified (item 2, extract) -------------------------------------


def _two_bundles(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good.zst"
    assert run("build", str(source), "-o", str(good))[0] == 0
    (source / "EVIL.md").write_text("never verified\n")
    other = tmp_path / "other.zst"
    assert run("build", str(source), "-o", str(other))[0] == 0
    return good, other


def _swap_after_verification(monkeypatch: pytest.MonkeyPatch, swap: Any) -> list[bool]:
    import heparch.extract as extract_mod

    real = extract_mod.verify_open
    swapped: list[bool] = []

    def verify_then_swap(fh: Any, **kwargs: Any) -> Any:
        result = real(fh, **kwargs)
        swap()
        swapped.append(True)
        return result

    monkeypatch.setattr(extract_mod, "verify_open", verify_then_swap)
    return swapped


def test_extract_is_not_fooled_by_a_file_renamed_onto_the_bundle(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, other = _two_bundles(source, tmp_path)
    attack = tmp_path / "attack.zst"
    attack.write_bytes(other.read_bytes())
    swapped = _swap_after_verification(monkeypatch, lambda: os.replace(attack, good))
    code, _, err = run("extract", str(good), "-o", str(tmp_path / "x"))
    assert swapped == [True]
    assert code == 0, err
    assert not (tmp_path / "x" / "EVIL.md").exists()  # the verified bundle, read from the open file
    assert (tmp_path / "x" / "BkgOnly.json").is_file()


def test_extract_refuses_a_file_rewritten_in_place_after_verification(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, other = _two_bundles(source, tmp_path)

    def overwrite() -> None:
        with good.open("r+b") as fh:  # the same inode: the open file sees the new bytes
            fh.write(other.read_bytes())

    _swap_after_verification(monkeypatch, overwrite)
    code, _, err = run("extract", str(good), "-o", str(tmp_path / "x"))
    assert code == 1, err
    assert "changed while it was being extracted" in err
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


# --- smaller items (item 5 of the slice) ---------------------------------------------------


@pytest.mark.parametrize("agent", ["heparch 1.0\rBundle-Identity: forged", "a\tb", "a\x00", "a\u2028b", "a\x85b"])
def test_software_agent_with_control_characters_is_refused(agent: str) -> None:
    line = f"Bag-Software-Agent: {agent}\nBundle-Identity: sha256:{'0' * 64}\n".encode()
    assert layout.agent_of(line) is None
    assert layout.agent_problem(agent) is not None
    assert layout.agent_of(b"Bag-Software-Agent: heparch 0.1.0 (linux)\n") == "heparch 0.1.0 (linux)"


def test_software_agent_with_cr_is_E041() -> None:
    from heparch.verify import verify

    result = verify(INVALID / "E041_software_agent_with_cr" / "bundle.zst")
    assert set(result.report.codes()) == {"E041"}
    assert any("without control characters" in f.message for f in result.report.errors)


@pytest.mark.parametrize(
    ("raw", "depth"),
    [(b"1", 0), (b"[]", 1), (b'{"a": [[1]], "b": "[[[["}', 3), (b'["\\"[[", [["\\\\"]]]', 3), (b'["\\\\\\"]]]"]', 1)],
)
def test_nesting_is_measured_on_the_bytes(raw: bytes, depth: int) -> None:
    assert strictjson.nesting(raw) == depth
    assert json.loads(raw) is not None or raw == b"null"


@pytest.mark.parametrize("depth", [65, 900, 980, 5000, 200_000])
def test_components_nested_beyond_64_are_E060_in_api_and_cli_alike(depth: int, tmp_path: Path) -> None:
    from heparch.verify import verify

    ws = small_workspace()
    data = json.dumps(ws).encode()[:-1] + b', "zz": ' + b"[" * depth + b"]" * depth + b"}"
    bundle = raw_bundle(tmp_path / "b.zst", {"BkgOnly.json": (data, "likelihood", {})})
    assert [f.code for f in verify(bundle).report.errors] == ["E060"]
    code, _, err = run("verify", str(bundle))
    assert code == 1
    assert f"E060 BkgOnly.json: not strict JSON: nesting {depth + 1} deep, deeper than 64" in err


def test_nesting_64_deep_is_allowed_65_is_not() -> None:
    assert strictjson.loads(b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}") is not None
    with pytest.raises(strictjson.StrictJSONError, match="nesting 65 deep, deeper than 64"):
        strictjson.loads(b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}")


def test_build_refuses_a_deep_component_but_keeps_a_deep_attachment(source: Path, tmp_path: Path) -> None:
    (source / "deep.json").write_text("[" * 300 + "]" * 300)  # not a component: an attachment, however deep
    assert run("build", str(source), "-o", str(tmp_path / "ok.zst"))[0] == 0
    ws = json.dumps(small_workspace())
    (source / "BkgOnly.json").write_text(ws[:-1] + ', "zz": ' + "[" * 100 + "]" * 100 + "}")
    code, _, err = run("build", str(source), "-o", str(tmp_path / "o.zst"))
    assert code == 2
    assert "E060 BkgOnly.json: not strict JSON: nesting 101 deep, deeper than 64" in err
