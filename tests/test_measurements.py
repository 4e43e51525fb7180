"""Workspaces with several measurements (issue 10): E081 is checked on the measurement used.

pyhf 0.7.6 builds a workspace whatever its measurements say, and ``pyhf cls --measurement
NAME`` (``Workspace.model(measurement_name=NAME)``) computes it with any measurement that lets
a fit start; only a fit with a broken measurement fails (``ValueError``: an initial value
outside its bounds). So heparch checks E081 on the measurement actually used (``--measurement``,
else the first, pyhf's default) in cls, upper-limit and claim; build and verify accept a
likelihood whose broken measurement another one can replace, with a warning (W012), and
refuse results that claim with the broken one (E081 at the results' settings).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from heparch.components.workspace import check_workspace

from clihelp import run

pytest.importorskip("pyhf")

BROKEN = {"name": "bkg_norm", "inits": [7.0]}  # a normsys starts at 7, outside its default bounds [-5, 5]


def workspace(order: tuple[str, ...]) -> dict[str, Any]:
    """A one-bin model with measurements named as in ``order``; 'bad' is broken, 'good' is not."""
    params = {"bad": [BROKEN], "good": [], "bad2": [{"name": "bkg_norm", "bounds": [[1.0, 3.0]]}]}
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {"name": "signal", "data": [2.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [5.0], "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]},
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [6.0]}],
        "measurements": [{"name": name, "config": {"poi": "mu", "parameters": params[name]}} for name in order],
        "version": "1.0.0",
    }


def pyhf_cls(ws: dict[str, Any], measurement: str) -> list[float]:
    """``pyhf cls --measurement``: pyhf's CLs (obs, exp -2..+2) with that measurement."""
    import pyhf

    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    w = pyhf.Workspace(ws)
    model = w.model(measurement_name=measurement)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs, exp = pyhf.infer.hypotest(1.0, w.data(model), model, return_expected_set=True)
    return [float(obs), *(float(e) for e in exp)]


def pyhf_fails(ws: dict[str, Any], measurement: str) -> bool:
    try:
        pyhf_cls(ws, measurement)
    except ValueError:
        return True
    return False


def write(tmp_path: Path, ws: dict[str, Any]) -> Path:
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(ws))
    return path


@pytest.mark.parametrize("backend", ["fast", "pyhf"])
def test_the_measurement_named_is_checked_and_used(tmp_path: Path, backend: str) -> None:
    ws = workspace(("bad", "good"))
    assert pyhf_fails(ws, "bad")  # pyhf's default (the first measurement) cannot start a fit
    code, out, err = run("cls", str(write(tmp_path, ws)), "--measurement", "good", "--backend", backend, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["settings"]["measurement"] == "good"
    assert [got["CLs_obs"], *got["CLs_exp"]] == pytest.approx(pyhf_cls(ws, "good"), rel=1e-3)


@pytest.mark.parametrize(("order", "option"), [(("good", "bad"), ["--measurement", "bad"]), (("bad", "good"), [])])
def test_a_broken_measurement_used_is_e081_naming_it(tmp_path: Path, order: tuple[str, ...], option: list[str]) -> None:
    ws = workspace(order)
    assert pyhf_fails(ws, "bad")
    assert not pyhf_fails(ws, "good")
    for command in ("cls", "upper-limit"):
        code, _out, err = run(command, str(write(tmp_path, ws)), *option)
        assert code == 2, err
        assert err.startswith("error: E081 "), err
        assert err.count("\n") == 1, err
        assert "measurement 'bad'" in err
        assert f"$.measurements[{order.index('bad')}]" in err


def test_an_unknown_measurement_is_an_input_error(tmp_path: Path) -> None:
    code, _out, err = run("cls", str(write(tmp_path, workspace(("bad", "good")))), "--measurement", "nope")
    assert code == 2
    assert "--measurement 'nope' is not a measurement of the workspace; valid names: 'bad', 'good'" in err


@pytest.mark.parametrize(
    ("order", "errors", "warns"),
    [
        (("bad", "good"), [], ["W012"]),
        (("good", "bad"), [], ["W012"]),
        (("bad",), ["E081"], []),
        (("bad", "bad2"), ["E081", "E081"], []),
        (("good",), [], []),
    ],
)
def test_build_and_verify_accept_what_pyhf_computes_with_some_measurement(order: tuple[str, ...], errors: list[str], warns: list[str]) -> None:
    ws = workspace(order)
    assert any(not pyhf_fails(ws, name) for name in order) == (not errors)
    findings = check_workspace(ws, location="ws.json", require_poi=True)
    assert [f.code for f in findings if f.severity == "error"] == errors
    assert [f.code for f in findings if f.severity == "warning"] == warns
    if warns:
        assert "only with measurement 'good'" in findings[0].message


def _analysis(tmp_path: Path, order: tuple[str, ...]) -> Path:
    """An analysis directory: the workspace without its signal, and one patch adding it."""
    ws = workspace(order)
    signal = ws["channels"][0]["samples"].pop(0)
    root = tmp_path / "analysis"
    root.mkdir()
    (root / "BkgOnly.json").write_text(json.dumps(ws))
    (root / "patch.sig.json").write_text(json.dumps([{"op": "add", "path": "/channels/0/samples/0", "value": signal}]))
    return root


def test_claims_use_a_measurement_that_works_and_verify_checks_the_one_they_use(tmp_path: Path) -> None:
    bundle, claimed = tmp_path / "a.zst", tmp_path / "claimed.zst"
    code, _out, err = run("build", str(_analysis(tmp_path, ("bad", "good"))), "-o", str(bundle))
    assert code == 0, err
    assert "W012" in err
    code, _out, err = run("claim", str(bundle), "-o", str(claimed), "--audit", "0", "--backend", "pyhf")
    assert code == 2, err  # the default measurement cannot start a fit
    assert "E081" in err
    assert "measurement 'bad'" in err
    code, _out, err = run("claim", str(bundle), "-o", str(claimed), "--audit", "0", "--backend", "pyhf", "--measurement", "good")
    assert code == 0, err
    code, out, err = run("verify", str(claimed), "--json")
    assert code == 0, err
    assert "W012" in out
    assert "E081" not in out


def test_results_that_claim_with_a_broken_measurement_are_e081() -> None:
    from heparch.components import workspace as wsmod
    from heparch.semantic import _broken_measurements, _measurement_used

    ws = workspace(("good", "bad"))
    broken = _broken_measurements(wsmod.Consistency(), ws)
    assert set(broken) == {"bad"}
    results = {"likelihood": "BkgOnly.json", "settings": {"measurement": "bad"}}
    [finding] = _measurement_used(results, "results.json", broken)
    assert (finding.code, finding.location) == ("E081", "results.json:$.settings.measurement")
    assert _measurement_used({**results, "settings": {"measurement": "good"}}, "results.json", broken) == []
    assert _measurement_used({**results, "settings": {}}, "results.json", broken) == []  # the first, 'good'
    first_broken = _broken_measurements(wsmod.Consistency(), workspace(("bad", "good")))
    assert [f.code for f in _measurement_used({**results, "settings": {}}, "results.json", first_broken)] == ["E081"]


def test_a_claim_made_with_a_broken_measurement_fails_verify_and_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A results component whose settings name a measurement pyhf cannot start a fit from (made
    here by switching claim's own checks off: the fast engine would compute it anyway, and claim
    verifies what it writes) is E081 in verify, and replay refuses it (exit 2) naming the measurement."""
    import heparch.infer.inputs
    import heparch.semantic

    bundle, claimed = tmp_path / "a.zst", tmp_path / "claimed.zst"
    code, _out, err = run("build", str(_analysis(tmp_path, ("good", "bad"))), "-o", str(bundle))
    assert code == 0, err
    with monkeypatch.context() as m:
        m.setattr(heparch.infer.inputs, "require_measurement", lambda *a, **k: None)
        m.setattr(heparch.semantic, "_measurement_used", lambda *a, **k: [])
        code, _out, err = run("claim", str(bundle), "-o", str(claimed), "--audit", "0", "--backend", "fast", "--measurement", "bad")
    assert code == 0, err
    code, out, err = run("verify", str(claimed), "--json")
    assert code == 1, err
    assert "E081" in out
    assert "$.settings.measurement" in out
    code, _out, err = run("replay", str(claimed))
    assert code == 2, err
    assert err.startswith(f"error: E081 {claimed}:BkgOnly.json:$.measurements[1].config.parameters[0]: measurement 'bad': "), err
