"""arch cls / arch upper-limit: input resolution, backend selection, JSON shape, bad inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from heparch.analysis import resolve
from heparch.cli.main import flagged
from heparch.errors import InferenceInputError, InputError, MissingBackend
from heparch.infer import backends
from heparch.infer.base import CLsResult

from clihelp import run
from conftest import SHARED, small_patchset, small_workspace

PYHF = ("--backend", "pyhf")


def write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def simplified() -> dict[str, Any]:
    return {"observed": [5, 3], "background": [4.0, 2.5], "covariance": [[1.0, 0.2], [0.2, 0.5]], "signals": {"A": [1.0, 0.5], "B": [3.0, 2.0]}}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ws = small_workspace()
    ps = small_patchset(ws)
    patch = ps["patches"][1]["patch"]
    return {
        "ws": write(tmp_path / "BkgOnly.json", ws),
        "ps": write(tmp_path / "patchset.json", ps),
        "patch": write(tmp_path / "patch.pt_400_100.json", patch),
        "sl": write(tmp_path / "sl.json", simplified()),
    }


def one_line_error(code: int, err: str, want_code: int = 2) -> str:
    assert code == want_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- input resolution ----------------------------------------------------------------------


def test_workspace_patchset_point(files: dict[str, Path]) -> None:
    r = resolve(files["ws"], patchset=files["ps"], point="pt_400_100")
    assert (r.kind, r.point, len(r.patches)) == ("workspace", "pt_400_100", 1)
    assert r.patches[0][0]["value"]["data"] == [2.0, 2.0]
    assert len(r.patched()["channels"][0]["samples"]) == 2
    assert len(r.spec["channels"][0]["samples"]) == 1  # copy-on-write


def test_patch_files_apply_in_order_after_the_point(files: dict[str, Path], tmp_path: Path) -> None:
    obs = write(tmp_path / "obs.json", [{"op": "replace", "path": "/observations/0/data/0", "value": 20.0}])
    r = resolve(files["ws"], patches=[files["patch"], obs])
    assert r.point == "patch.pt_400_100+obs"
    assert r.patched()["observations"][0]["data"] == [20.0, 5.0]
    r = resolve(files["ws"], patchset=files["ps"], point="pt_300_100", patches=[obs])
    assert len(r.patches) == 2


def test_simplified_signal(files: dict[str, Path]) -> None:
    r = resolve(files["sl"], point="B")
    assert (r.kind, r.signal) == ("simplified", "B")
    with pytest.raises(InputError, match="name the signal with point=NAME; signals: 'A', 'B'"):
        resolve(files["sl"])
    with pytest.raises(InferenceInputError, match=r"'C' is not a signal .* valid names: 'A', 'B'"):
        resolve(files["sl"], point="C")
    with pytest.raises(InputError, match="apply to workspaces"):
        resolve(files["sl"], patches=[files["patch"]])


def test_point_without_patchset_on_a_workspace_file(files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match=r"give the patchset that holds it with patchset=PS\.json") as exc:
        resolve(files["ws"], point="pt_300_100")
    assert "give the patchset that holds it with --patchset PS.json" in flagged(exc.value)  # arch names the flag


@pytest.fixture
def bundle(tmp_path: Path, files: dict[str, Path]) -> Path:
    from heparch.build import build

    src = tmp_path / "ana"
    src.mkdir()
    for key in ("ws", "ps"):
        (src / files[key].name).write_bytes(files[key].read_bytes())
    (src / "patch.extra.json").write_bytes(files["patch"].read_bytes())  # a point only as a patch file
    (src / "README.md").write_text("toy\n")
    return build(src, output=tmp_path / "toy.zst").output


@pytest.fixture
def bundle2(tmp_path: Path, files: dict[str, Path]) -> Path:
    """Two workspaces (each with its patchset) and a simplified likelihood."""
    from heparch.build import build

    src = tmp_path / "ana2"
    src.mkdir()
    for name, obs in (("A", 5.0), ("B", 7.0)):
        ws = small_workspace(obs)
        write(src / f"{name}.json", ws)
        write(src / f"{name}_patchset.json", small_patchset(ws))
    write(src / "sl.json", simplified())
    return build(src, output=tmp_path / "two.zst").output


def test_bundle_points_from_patchset_and_patch_files(bundle: Path) -> None:
    r = resolve(bundle, point="pt_500_200")
    assert (r.kind, r.likelihood, r.point) == ("workspace", "BkgOnly.json", "pt_500_200")
    r = resolve(bundle, point="extra")  # a patch file, named by its patch.name annotation
    assert r.patches[0][0]["value"]["data"] == [2.0, 2.0]
    with pytest.raises(InferenceInputError, match=r"'nope' is not a signal point .* valid names: 'extra', 'pt_300_100'"):
        resolve(bundle, point="nope")
    with pytest.raises(InputError, match="name the signal point with point=NAME"):
        resolve(bundle)


def test_bundle_with_several_likelihoods(bundle2: Path) -> None:
    with pytest.raises(InputError, match=r"holds 2 likelihoods; pick one with likelihood=NAME: 'A.json', 'B.json'"):
        resolve(bundle2, point="pt_300_100")
    r = resolve(bundle2, likelihood="B.json", point="pt_300_100")
    assert r.likelihood == "B.json"
    assert r.spec["observations"][0]["data"] == [11.0, 7.0]
    r = resolve(bundle2, backend="simplified", point="A")
    assert (r.kind, r.likelihood, r.signal) == ("simplified", "sl.json", "A")
    with pytest.raises(InferenceInputError, match=r"it is a signal of the simplified likelihood 'sl\.json': add --backend simplified"):
        resolve(bundle2, likelihood="A.json", point="B")
    with pytest.raises(InputError, match=r"'C\.json' is not a likelihood of the bundle"):
        resolve(bundle2, likelihood="C.json")


# --- backend selection -----------------------------------------------------------------------


class FakeBackend:
    def __init__(self, name: str, why: str | None = None) -> None:
        self.name = name
        self.why = why

    def unsupported(self, spec: Mapping[str, Any]) -> str | None:
        return self.why

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None) -> Any:
        raise NotImplementedError


def factory(fast_why: str | None = None, *, fast_missing: bool = False) -> Any:
    def make(name: str) -> Any:
        if name == "fast" and fast_missing:
            raise MissingBackend("backend 'fast' is not installed")
        return FakeBackend(name, fast_why if name == "fast" else None)

    return make


def test_default_backend_selection() -> None:
    assert backends.choose("simplified", {}, factory=factory()).name == "simplified"
    assert backends.choose("workspace", {}, factory=factory()).name == "fast"
    choice = backends.choose("workspace", {}, factory=factory("shapesys code5"))
    assert (choice.name, choice.reason) == ("pyhf", "the fast backend cannot handle this model (shapesys code5); using pyhf")
    assert backends.choose("workspace", {}, factory=factory(fast_missing=True)).name == "pyhf"


def test_requested_backend_must_read_the_input() -> None:
    assert backends.choose("workspace", {}, "pyhf", factory=factory("x")).name == "pyhf"
    with pytest.raises(InputError, match="backend simplified: cannot read a HistFactory workspace; use backend=fast or pyhf"):
        backends.choose("workspace", {}, "simplified", factory=factory())
    with pytest.raises(InputError, match="backend pyhf: cannot read a simplified likelihood"):
        backends.choose("simplified", {}, "pyhf", factory=factory())
    with pytest.raises(InputError, match="backend fast: cannot handle this model: odd; use backend=pyhf"):
        backends.choose("workspace", {}, "fast", factory=factory("odd"))
    with pytest.raises(InputError, match="unknown backend"):
        backends.get("jax")


def test_missing_backend_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(backends.BACKENDS, "fast", ("heparch.infer.not_written_yet", "FastBackend"))
    with pytest.raises(MissingBackend, match="'fast' is not part of this heparch installation yet"):
        backends.get("fast")


# --- the commands ----------------------------------------------------------------------------


def test_cls_json_shape_and_equal_ways_to_name_a_point(files: dict[str, Path], bundle: Path) -> None:
    code, out, err = run("cls", str(files["ws"]), "--patchset", str(files["ps"]), "--point", "pt_400_100", *PYHF, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert {"CLs_obs", "CLs_exp", "backend", "settings", "mu"} <= set(res)
    assert list(res) == sorted(res)
    assert len(res["CLs_exp"]) == 5
    assert res["backend"] == "pyhf"
    assert "pyhf backend" in err
    assert "pt_400_100" in err
    for args in ((str(files["ws"]), "--patch", str(files["patch"])), (str(bundle), "--point", "pt_400_100")):
        code, out2, err = run("cls", *args, *PYHF, "--json")
        assert code == 0, err
        again = json.loads(out2)
        assert (again["CLs_obs"], again["CLs_exp"]) == (res["CLs_obs"], res["CLs_exp"])


def test_cls_without_json_prints_the_result_on_stdout(files: dict[str, Path]) -> None:
    """The result to stdout, diagnostics to stderr (issue 13: the convention of every command)."""
    code, out, err = run("cls", str(files["ws"]), "--patch", str(files["patch"]), "--mu", "0.5", *PYHF)
    assert code == 0, err
    assert out.count("\n") == 1
    assert "CLs at mu=0.5 (pyhf backend): observed" in out
    assert "(pyhf backend): observed" not in err  # in a log a long step's start and end lines name "CLs at mu=0.5 of ...", never the result


def test_upper_limit_json_shape(tmp_path: Path) -> None:
    ws = small_workspace()
    ws["channels"][0]["samples"][0]["modifiers"] = []  # no nuisance parameters: quick
    ws["channels"][0]["samples"].append({"name": "sig", "data": [3.0, 3.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]})
    code, out, err = run("upper-limit", str(write(tmp_path / "ws.json", ws)), *PYHF, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert {"mu_up_obs", "mu_up_exp", "backend", "settings", "level", "above_cap"} <= set(res)
    assert len(res["mu_up_exp"]) == 5
    assert res["mu_up_exp"] == sorted(res["mu_up_exp"])
    assert 0 < res["mu_up_obs"] < 10
    assert res["level"] == 0.05
    assert "upper limit on mu at CLs=0.05 (pyhf backend)" in err


def test_default_backend_is_announced(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def make(name: str) -> Any:
        return FakeBackend("fast", "no reason") if name == "fast" else backends.get(name)

    monkeypatch.setattr(backends.prepare, "__kwdefaults__", {"factory": make})
    code, out, err = run("cls", str(files["ws"]), "--patch", str(files["patch"]), "--json")
    assert code == 0, err
    assert json.loads(out)["backend"] == "pyhf"
    assert "the fast backend cannot handle this model (no reason); using pyhf" in err


def test_simplified_default_backend(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeModel:
        backend = "simplified"

        def cls(self, mu: float = 1.0) -> CLsResult:
            return CLsResult(0.25, (0.1, 0.2, 0.3, 0.4, 0.5), mu, "simplified", {"fake": True})

    class FakeSimplified(FakeBackend):
        def background(self, spec: Mapping[str, Any], *, measurement: str | None = None) -> Any:
            class Bg:
                def model(self, patches: Sequence[Any] = (), *, signal: str | None = None) -> Any:
                    assert signal == "B"
                    return FakeModel()

            return Bg()

    monkeypatch.setattr(backends.prepare, "__kwdefaults__", {"factory": lambda name: FakeSimplified(name)})
    code, out, err = run("cls", str(files["sl"]), "--point", "B", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert (res["backend"], res["CLs_obs"], res["input"]["point"]) == ("simplified", 0.25, "B")


@pytest.mark.parametrize("command", ["cls", "upper-limit"])
def test_help_has_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Example: arch " in out
    assert "--point" in out
    assert "--backend" in out


# --- bad inputs: exit 2, one line, no traceback ----------------------------------------------


def test_nan_yields(tmp_path: Path) -> None:
    text = json.dumps(small_workspace()).replace("[10.0, 5.0]", "[10.0, NaN]")
    (tmp_path / "ws.json").write_text(text)
    line = one_line_error(*run("cls", str(tmp_path / "ws.json"), *PYHF)[::2])
    assert "ws.json:$.channels[0].samples[0].data[1]" in line
    assert "finite" in line


def test_nan_in_a_patch(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(files["patch"].read_text().replace("2.0", "Infinity", 1))
    line = one_line_error(*run("cls", str(files["ws"]), "--patch", str(tmp_path / "p.json"))[::2])
    assert "p.json:$[0].value.data[0]" in line


def test_unknown_modifier_type(tmp_path: Path) -> None:
    ws = small_workspace()
    ws["channels"][0]["samples"][0]["modifiers"][0]["type"] = "magicsys"
    line = one_line_error(*run("cls", str(write(tmp_path / "ws.json", ws)))[::2])
    assert "E061" in line
    assert "ws.json:$.channels[0].samples[0].modifiers[0]" in line


def test_point_that_does_not_exist(files: dict[str, Path], bundle: Path) -> None:
    line = one_line_error(*run("cls", str(files["ws"]), "--patchset", str(files["ps"]), "--point", "pt_999_1")[::2])
    assert "'pt_999_1' is not a patch of the patchset" in line
    assert "'pt_300_100'" in line
    line = one_line_error(*run("upper-limit", str(bundle), "--point", "pt_999_1")[::2])
    assert "is not a signal point" in line
    line = one_line_error(*run("cls", str(files["sl"]), "--point", "Z")[::2])
    assert "valid names: 'A', 'B'" in line


def test_a_bundle_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "junk.zst").write_text("this is not a bundle\n")
    line = one_line_error(*run("cls", str(tmp_path / "junk.zst"))[::2])
    assert "junk.zst: not valid JSON" in line
    (tmp_path / "zstd.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 40)  # zstd magic, not a bundle: invalid bundle
    code, _, err = run("cls", str(tmp_path / "zstd.zst"))
    assert code == 1
    assert "Traceback" not in err


def test_other_bad_inputs(files: dict[str, Path], tmp_path: Path, bundle2: Path) -> None:
    cases = [
        (("cls", str(tmp_path / "missing.json")), "no such file"),
        (("cls", str(write(tmp_path / "x.json", {"a": 1}))), "not a pyhf workspace nor a simplified likelihood"),
        (("cls", str(files["sl"]), "--point", "A", *PYHF), "--backend pyhf: cannot read a simplified likelihood"),
        (("cls", str(files["ws"]), "--patch", str(files["patch"]), "--backend", "simplified"), "cannot read a HistFactory workspace"),
        (("cls", str(files["ws"]), "--patch", str(files["ps"])), "not an RFC 6902 patch (a JSON array of operations); a patchset goes with --patchset PS.json"),
        (("cls", str(files["ws"]), "--patch", str(files["patch"]), "--mu", "-1"), "--mu -1.0: must be a finite number >= 0"),
        (("upper-limit", str(files["ws"]), "--patch", str(files["patch"]), "--level", "1.5"), "--level 1.5"),
        (("cls", str(files["ws"]), *PYHF), "give the signal with --patch"),
        (("cls", str(bundle2), "--point", "pt_300_100"), "pick one with --likelihood"),
        (("cls", str(files["ws"]), "--likelihood", "x.json"), "only for a bundle"),
        (("cls", str(files["sl"])), "name the signal with --point NAME; signals: 'A', 'B'"),  # the library's point=NAME
    ]
    for args, want in cases:
        code, _, err = run(*args)
        line = one_line_error(code, err)
        assert want in line, (args, line)


def test_patch_that_does_not_apply(files: dict[str, Path], tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", [{"op": "remove", "path": "/channels/3"}])
    line = one_line_error(*run("cls", str(files["ws"]), "--patch", str(bad))[::2])
    assert "E064" in line
    assert "bad.json" in line


def test_json_numbers_are_finite_or_null(files: dict[str, Path]) -> None:
    code, out, err = run("cls", str(files["ws"]), "--patch", str(files["patch"]), *PYHF, "--json")
    assert code == 0, err
    res = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert all(math.isfinite(v) for v in [res["CLs_obs"], *res["CLs_exp"]])


def test_unknown_simplified_field_is_a_warning(tmp_path: Path) -> None:
    sl = json.loads((SHARED / "sl-toy-8bin-cms-note-2017-001" / "sl.json").read_text())
    sl["comment"] = "not in the schema"
    path = tmp_path / "sl.json"
    path.write_text(json.dumps(sl))
    code, out, err = run("cls", str(path), "--json")
    assert code == 0, err
    assert "W005" in err
    assert "$.comment" in err
    assert json.loads(out)["backend"] == "simplified"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"covariance": [[1.0, 2.0], [2.0, 0.5]]}, "E066", "$.covariance"),
        ({"third_moments": [0.1, 5.0]}, "E067", "$.third_moments"),
        ({"background": [4.0, -2.5]}, "negative rate", "$.background[1]"),
    ],
)
def test_bad_simplified_inputs_exit_2_naming_file_and_field(tmp_path: Path, change: dict[str, object], code: str, field: str) -> None:
    sl = {"observed": [5, 3], "background": [4.0, 2.5], "covariance": [[1.0, 0.2], [0.2, 0.5]], "signals": {"A": [1.0, 0.5]}, **change}
    path = write(tmp_path / "sl.json", sl)
    status, _, err = run("cls", str(path))
    line = one_line_error(status, err)
    assert code in line
    assert field in line
    assert str(path) in line


def test_a_pyhf_fit_that_fails_is_one_line_without_pyhfs_traceback_or_numpy_warnings(tmp_path: Path) -> None:
    """A normsys factor of 0 (log of 0 in pyhf's code4): pyhf's optimizer fails; it logs the failure
    with a traceback and numpy warns. The user sees heparch's one line only."""
    spec = small_workspace()
    spec["channels"][0]["samples"][0]["modifiers"][0]["data"] = {"hi": 0.0, "lo": 0.9}
    spec["channels"][0]["samples"].append({"name": "sig", "data": [2.0, 3.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]})
    (tmp_path / "ws.json").write_text(json.dumps(spec))
    code, stdout, err = run("cls", str(tmp_path / "ws.json"), "--backend", "pyhf")
    assert code == 2, err
    assert stdout == ""
    assert err.splitlines() == ["error: pyhf: a fit for CLs at mu=1 did not converge: Inequality constraints incompatible"]


def test_a_fit_pyhf_cannot_make_is_one_error_line_in_a_real_process(tmp_path: Path) -> None:
    """pyhf logs a failed fit with its traceback (to stderr when nothing else handles the log
    record) and numpy warns of the overflow: a real process shows only the error line."""
    import subprocess
    import sys

    bkg = {"name": "bkg", "data": [1e308, 1e308], "modifiers": [{"name": "bn", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}  # -ln L overflows
    sig = {"name": "sig", "data": [1.0, 1.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}
    ws = {
        "channels": [{"name": "SR", "samples": [bkg, sig]}],
        "observations": [{"name": "SR", "data": [10.0, 10.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }
    path = write(tmp_path / "huge.json", ws)

    def stderr(*args: str) -> tuple[int, str]:
        proc = subprocess.run([sys.executable, "-m", "heparch", "cls", str(path), *args], capture_output=True, text=True, timeout=120, check=False)
        progress = "CLs at mu=1 of huge.json"  # on a slow machine
        return proc.returncode, "".join(line for line in proc.stderr.splitlines(keepends=True) if not line.startswith(progress))

    one_line_error(*stderr(*PYHF))
    code, err = stderr()
    assert code == 2, err
    assert "Warning" not in err
    assert [line.split(" ", 1)[0] for line in err.splitlines()] == ["the", "error:"]  # the fallback's note, the error


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda text: text[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}", "nesting 5001 deep, deeper than 64"),  # was RecursionError
        (lambda text: text.replace("10.0", "1" + "0" * 400, 1), "beyond the largest float"),  # was OverflowError
    ],
    ids=["deep", "huge integer"],
)
def test_a_json_input_the_parser_cannot_hold_is_one_line_exit_2(edit: Any, reason: str, files: dict[str, Path], tmp_path: Path) -> None:
    text = json.dumps({**small_workspace(), "observations": [{"name": "SR", "data": [10.0, 5.0]}]})
    (tmp_path / "ws.json").write_text(edit(text))
    code, _out, err = run("cls", str(tmp_path / "ws.json"), "--patchset", str(files["ps"]), "--point", "pt_300_100")
    assert reason in one_line_error(code, err)
