"""Replay and claim on the example analysis: selection, tolerances, failures, resume, Dask, CLI."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from heparch import config
from heparch.build import build
from heparch.extract import extract
from heparch.replay import core, work
from heparch.replay.core import DEFAULT_TOLERANCE, compare
from heparch.replay.outcome import Values
from heparch.spec.components import Tolerance

from clihelp import run
from conftest import EXAMPLE

POINT = "C1N2_500_200"  # CLs_obs 0.0076: excluded, and well away from 0 and 1


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example analysis (with its pyhf claims) as a bundle."""
    out = tmp_path_factory.mktemp("toy") / "toy.zst"
    build(EXAMPLE, output=out)
    return out


def _rebuild(bundle: Path, tmp: Path, edit: Any, name: str = "edited.zst") -> Path:
    """Extract ``bundle``, let ``edit(tree)`` change files, build it again."""
    tree = extract(bundle, tmp / f"tree-{name}")
    edit(tree)
    out = tmp / name
    build(tree, output=out)
    return out


def _raise_claim(tree: Path, path: str, point: str, factor: float) -> None:
    file = tree / path
    obj = json.loads(file.read_text())
    obj["points"][point]["CLs_obs"] *= factor
    file.write_text(json.dumps(obj, indent=1, sort_keys=True))


# --- comparison ----------------------------------------------------------------------------
def test_compare_uses_max_of_abs_and_rel() -> None:
    claimed = Values(0.5, (0.1, 0.2, 0.3, 0.4, 0.5))
    ok = Values(0.5 + 0.00049, (0.1 + 9e-5, 0.2, 0.3, 0.4, 0.5))
    assert compare(claimed, ok, DEFAULT_TOLERANCE) == []
    bad = Values(0.5 + 0.00051, (0.1, 0.2, 0.3, 0.4, 0.5 - 0.0006))
    fields = [m.field for m in compare(claimed, bad, DEFAULT_TOLERANCE)]
    assert fields == ["CLs_obs", "CLs_exp[4]"]
    tiny = Values(1e-9, (0.0,) * 5)
    assert compare(tiny, Values(9e-5, (0.0,) * 5), DEFAULT_TOLERANCE) == []  # the abs floor
    assert [m.field for m in compare(tiny, Values(2e-4, (0.0,) * 5), Tolerance.from_json({"CLs": {"abs": 1e-4, "rel": 1e-3}}))] == ["CLs_obs"]


def test_compare_limits_only_where_claimed_and_cap_never_agrees() -> None:
    claimed = Values.from_json({"CLs_obs": 0.5, "CLs_exp": [0.5] * 5, "mu_up_obs": 2.0, "mu_up_exp": [1.0, 1.5, 2.0, 2.5, 3.0]})
    replayed = Values.from_json({"CLs_obs": 0.5, "CLs_exp": [0.5] * 5, "mu_up_obs": None, "mu_up_exp": [1.0, 1.5, 2.0, 2.5, 3.004]})
    assert replayed.to_json()["mu_up_obs"] is None  # above the cap: infinite, written as null
    mism = compare(claimed, replayed, Tolerance.from_json({"mu_up": {"rel": 1e-3}}))
    assert [m.field for m in mism] == ["mu_up_obs", "mu_up_exp[4]"]
    assert math.isinf(mism[0].replayed)
    assert compare(Values(0.5, (0.5,) * 5), replayed, DEFAULT_TOLERANCE) == []


# --- replay of the example's pyhf claims -----------------------------------------------------
def test_example_claims_replay_and_simplified_is_compared(toy: Path) -> None:
    report = core.replay(toy, jobs=1)
    assert report.summary()["total"] == 35
    assert report.summary()["failed"] == 0, [p.to_json() for p in report.failed]
    assert report.labels == ("m1", "m2")
    p = next(p for p in report.points if p.point == POINT)
    assert p.backend == "fast"
    assert p.values == {"m1": 500.0, "m2": 200.0}
    # the example's simplified likelihood is derived from BkgOnly.json: its CLs is reported beside
    assert p.simplified is not None
    assert p.simplified.values is not None
    assert p.replayed is not None
    assert 0 < p.simplified.values.cls_obs < 1
    assert p.simplified.difference == pytest.approx(p.simplified.values.cls_obs - p.replayed.cls_obs)
    assert p.to_json()["simplified"]["difference_CLs_obs"] == p.simplified.difference


def test_selection_point_sample_and_errors(toy: Path) -> None:
    one = core.plan(toy, points=[POINT, POINT])
    assert [t.point for t in one.tasks] == [POINT]
    sampled = core.plan(toy, sample=5, seed=3)
    assert len(sampled.tasks) == 5
    assert [t.point for t in core.plan(toy, sample=5, seed=3).tasks] == [t.point for t in sampled.tasks]
    assert [t.point for t in core.plan(toy, sample=5, seed=4).tasks] != [t.point for t in sampled.tasks]
    code, _, err = run("replay", str(toy), "--point", "C1N2_nope")
    assert code == 2
    assert "'C1N2_nope' is not a claimed point" in err
    assert "C1N2_200_0" in err
    code, _, err = run("replay", str(toy), "--likelihood", "other.json")
    assert code == 2
    assert "'other.json' has no claimed results" in err


def test_bundle_without_results_is_a_usage_error(tmp_path: Path) -> None:
    out = _rebuild_without_results(tmp_path)
    code, _, err = run("replay", str(out))
    assert code == 2
    assert "no results component" in err
    assert "arch claim" in err
    assert "Traceback" not in err


def _rebuild_without_results(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("BkgOnly.json", "patchset.json"):
        (src / name).write_bytes((EXAMPLE / name).read_bytes())
    out = tmp_path / "nores.zst"
    build(src, output=out)
    return out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("test_stat", "q0", "$.settings.test_stat: 'q0' (discovery) claims cannot be replayed"),
        ("calctype", "toybased", "$.settings.calctype: 'toybased' claims cannot be replayed: heparch computes the asymptotic formulae only (toys are random)"),
    ],
)
def test_unsupported_recorded_settings_are_refused(toy: Path, tmp_path: Path, field: str, value: str, message: str) -> None:
    def edit(tree: Path) -> None:
        obj = json.loads((tree / "results.json").read_text())
        obj["settings"][field] = value
        (tree / "results.json").write_text(json.dumps(obj))

    bad = _rebuild(toy, tmp_path, edit)
    code, _, err = run("replay", str(bad), "--point", POINT)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_raised_claim_fails_exactly_that_point(toy: Path, tmp_path: Path) -> None:
    edited = _rebuild(toy, tmp_path, lambda tree: _raise_claim(tree, "results.json", POINT, 1.05))
    junit = tmp_path / "r.xml"
    html = tmp_path / "r.html"
    code, out, err = run("replay", str(edited), "--jobs", "1", "--json", "--junit", str(junit), "--html", str(html))
    assert code == 1, err
    doc = json.loads(out)
    assert doc["summary"]["total"] == 35
    assert doc["summary"]["failed"] == 1
    assert doc["summary"]["passed"] == 34
    assert [k for k, v in doc["points"].items() if not v["pass"]] == [POINT]
    failed = doc["points"][POINT]
    assert set(failed) >= {"likelihood", "claimed", "replayed", "pass", "backend", "seconds"}
    assert failed["claimed"]["CLs_obs"] == pytest.approx(1.05 * failed["replayed"]["CLs_obs"], rel=1e-4)
    tree = ET.parse(junit)
    assert len(tree.findall(".//testcase")) == 35
    failures = tree.findall(".//failure")
    assert len(failures) == 1
    assert f"FAIL {POINT}" in err
    assert html.read_text().count("<svg") >= 1


def test_failing_point_is_reported_and_the_others_go_on(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = work.compute

    def flaky(ctx: work.Context, task: work.Task, *, signal: str | None = None) -> dict[str, Any]:
        if task.point == POINT and signal is None:
            raise FloatingPointError("boom")
        return real(ctx, task, signal=signal)

    monkeypatch.setattr(work, "compute", flaky)
    report = core.replay(toy, points=[POINT, "C1N2_400_200", "C1N2_600_300"], jobs=1)
    assert [p.passed for p in report.points] == [False, True, True]
    bad = next(p for p in report.points if p.point == POINT)
    assert bad.replayed is None
    assert bad.error == "FloatingPointError: boom"
    assert report.summary()["failed"] == 1


def _points_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The points computed in this process from now on, in order."""
    ran: list[str] = []
    real = work.run_task

    def counting(contexts: Any, task: work.Task) -> work.TaskResult:
        ran.append(task.point)
        return real(contexts, task)

    monkeypatch.setattr("heparch.replay.executor.run_task", counting)
    return ran


def test_resume_skips_done_points(toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.json"
    first = core.replay(toy, points=[POINT, "C1N2_400_200"], jobs=1, resume=state)
    saved = json.loads(state.read_text())
    assert saved["identity"] == first.identity
    assert len(saved["points"]) == 2
    ran = _points_run(monkeypatch)
    again = core.replay(toy, points=[POINT, "C1N2_400_200", "C1N2_600_300"], jobs=1, resume=state)
    assert ran == ["C1N2_600_300"]
    assert [p.replayed for p in again.points[:2]] == [p.replayed for p in first.points]
    assert len(json.loads(state.read_text())["points"]) == 3
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": core.STATE_FORMAT, "identity": "sha256:" + "0" * 64, "points": {}}))
    code, _, err = run("replay", str(toy), "--resume", str(other), "--point", POINT)
    assert code == 2
    assert "was made for bundle" in err


def test_resume_recomputes_the_points_a_damaged_state_file_holds(toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state entry whose values are not a values object (a field gone, not a number, its
    simplified result not an object) is recomputed, as one that is not an object: never a
    KeyError (exit 3) from the typed values."""
    state = tmp_path / "state.json"
    points = [POINT, "C1N2_400_200", "C1N2_600_300", "C1N2_700_100"]
    first = core.replay(toy, points=points, jobs=1, resume=state)
    saved = json.loads(state.read_text())
    entries = [saved["points"][k] for k in sorted(saved["points"])]
    del entries[0]["values"]["CLs_exp"]
    entries[1]["values"]["CLs_obs"] = "0.5"
    entries[2]["simplified"] = ["not", "an", "object"]
    state.write_text(json.dumps(saved))
    ran = _points_run(monkeypatch)
    code, _, err = run("replay", str(toy), "--resume", str(state), "--jobs", "1", *[a for p in points for a in ("--point", p)])
    assert code == 0, err
    assert len(ran) == 3  # the damaged three; the fourth is taken from the state
    again = core.replay(toy, points=points, jobs=1, resume=state)
    assert [p.replayed for p in again.points] == [p.replayed for p in first.points]


def test_local_processes_agree_with_in_process(toy: Path) -> None:
    points = [POINT, "C1N2_400_200", "C1N2_600_300", "C1N2_700_100"]
    serial = core.replay(toy, points=points, jobs=1)
    parallel = core.replay(toy, points=points, jobs=2)
    for a, b in zip(serial.points, parallel.points, strict=True):
        assert a.point == b.point
        assert a.replayed is not None
        assert b.replayed is not None
        assert [a.replayed.cls_obs, *a.replayed.cls_exp] == pytest.approx([b.replayed.cls_obs, *b.replayed.cls_exp], rel=1e-8, abs=1e-300)


def test_dask_agrees_with_local_processes(toy: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="Dask distributed is in the test extra")
    points = [POINT, "C1N2_400_200", "C1N2_600_300", "C1N2_700_100", "C1N2_800_0"]
    local = core.replay(toy, points=points, jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:  # a free port: 8787 may be taken
        code, out, err = run("replay", str(toy), "--scheduler", cluster.scheduler_address, "--json", *[a for p in points for a in ("--point", p)])
    assert code == 0, err
    doc = json.loads(out)["points"]
    for p in local.points:
        remote = doc[p.key]["replayed"]
        assert p.replayed is not None
        assert remote["CLs_obs"] == pytest.approx(p.replayed.cls_obs, rel=1e-9)
        assert remote["CLs_exp"] == pytest.approx(p.replayed.cls_exp, rel=1e-9)


def test_bad_scheduler_address_is_a_usage_error(toy: Path) -> None:
    code, _, err = run("replay", str(toy), "--scheduler", "localhost:1", "--point", POINT)
    assert code == 2
    assert "tcp://" in err
    code, _, err = run("replay", str(toy), "--scheduler", "tcp://127.0.0.1:9", "--jobs", "2")
    assert code == 2
    assert "exclude each other" in err


# --- claim --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def claimed(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("claimed") / "claimed.zst"
    code, stdout, err = run("claim", str(toy), "-o", str(out), "--jobs", "1", "--audit", "0", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    return out, doc["identity"], doc["parent"]


def test_claim_records_results_components(claimed: tuple[Path, str, str], toy: Path) -> None:
    import heparch

    out, identity, parent = claimed
    with heparch.open(toy) as b:
        assert parent == b.identity
    assert identity != parent
    with heparch.open(out) as b:
        assert b.identity == identity
        by_likelihood = {e.likelihood: e.path for e in b.manifest.by_role("results")}
        assert by_likelihood == {"BkgOnly.json": "results.json", "simplified.json": "results/simplified.json"}
        full = b.read_json("results.json")
        assert full["backend"] == "fast"
        assert full["parent"] == {"identity": parent}
        assert full["tolerance"] == {"CLs": {"abs": 1e-4, "rel": 1e-3}, "mu_up": {"abs": 0.0, "rel": 1e-3}}
        assert set(full["software"]) >= {"heparch", "numpy", "scipy", "python"}
        assert full["settings"]["test_stat"] == "qtilde"
        assert full["settings"]["mu"] == 1.0
        assert len(full["points"]) == 35
        assert "mu_up_obs" not in full["points"][POINT]
        sl = b.read_json("results/simplified.json")
        assert sl["backend"] == "simplified"
        assert len(sl["points"]) == 35
    # the fast engine's claims agree with the example's pyhf claims (replaying those checks them)
    pyhf_claims = json.loads((EXAMPLE / "results.json").read_text())["points"]
    assert compare(Values.from_json(pyhf_claims[POINT]), Values.from_json(full["points"][POINT]), DEFAULT_TOLERANCE) == []


def test_claimed_bundle_verifies_and_replays(claimed: tuple[Path, str, str]) -> None:
    out, _, _ = claimed
    assert run("verify", str(out))[0] == 0
    report = core.replay(out, jobs=1, sample=8, seed=1)
    assert report.summary()["total"] == 8
    assert not report.failed
    assert {p.likelihood for p in report.points} <= {"BkgOnly.json", "simplified.json"}
    assert all(":" in p.key for p in report.points)  # several likelihoods: <likelihood>:<point>


def test_claim_is_deterministic(toy: Path, claimed: tuple[Path, str, str], tmp_path: Path) -> None:
    again = tmp_path / "again.zst"
    assert run("claim", str(toy), "-o", str(again), "--jobs", "1", "--audit", "0")[0] == 0
    assert again.read_bytes() == claimed[0].read_bytes()


def test_claim_upper_limits_and_usage_errors(toy: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ws = json.loads((EXAMPLE / "BkgOnly.json").read_text())
    ps = json.loads((EXAMPLE / "patchset.json").read_text())
    ps["patches"] = [p for p in ps["patches"] if p["metadata"]["name"] == POINT]
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(ps))
    (src / config.FILENAME).write_text("name: one\ncreated: '2026-01-01T00:00:00Z'\n")
    one = tmp_path / "one.zst"
    build(src, output=one)
    out = tmp_path / "ul.zst"
    code, _, err = run("claim", str(one), "-o", str(out), "--upper-limits", "--jobs", "1", "--audit", "0")
    assert code == 0, err
    import heparch

    with heparch.open(out) as b:
        point = b.read_json("results/BkgOnly.json")["points"][POINT]
    assert 0 < point["mu_up_obs"] < 1
    assert point["mu_up_exp"] == sorted(point["mu_up_exp"])
    report = core.replay(out, jobs=1)
    assert not report.failed
    assert report.points[0].replayed is not None
    assert report.points[0].replayed.mu_up_obs is not None
    assert run("claim", str(one), "-o", str(tmp_path / "missing" / "x.zst"))[0] == 2
    assert run("claim", str(one), "-o", str(tmp_path))[0] == 2
    code, _, err = run("claim", str(one), "-o", str(one))
    assert code == 2
    assert "is the input bundle" in err
    assert not list(tmp_path.glob(".*claim-*"))  # no staging left behind


def test_differing_software_versions_are_named(toy: Path, tmp_path: Path) -> None:
    def edit(tree: Path) -> None:
        obj = json.loads((tree / "results.json").read_text())
        obj["software"]["pyhf"] = "0.0.1"
        (tree / "results.json").write_text(json.dumps(obj))

    edited = _rebuild(toy, tmp_path, edit)
    code, out, err = run("replay", str(edited), "--point", POINT, "--json", "--jobs", "1")
    assert code == 0, err
    assert json.loads(out)["software"]["pyhf"] == {"recorded": "0.0.1", "current": "0.7.6"}
    assert "pyhf: recorded 0.0.1, running 0.7.6" in err


def test_limits_above_the_cap_are_not_claimed_and_are_named() -> None:
    from heparch.claim import _component
    from heparch.replay.work import Context

    ctx = Context("t", "BkgOnly.json", "workspace", "fast", {})
    values = {
        "A": {"CLs_obs": 0.5, "CLs_exp": [0.5] * 5, "mu_up_obs": 3.0, "mu_up_exp": [1.0, 2.0, 3.0, 4.0, 5.0]},
        "B": {"CLs_obs": 0.9, "CLs_exp": [0.9] * 5, "mu_up_obs": None, "mu_up_exp": [1.0, 2.0, 3.0, 4.0, None]},
    }
    notes: list[str] = []
    comp = _component(ctx, values, "sha256:" + "0" * 64, notes)
    assert comp["points"]["A"]["mu_up_obs"] == 3.0
    assert comp["points"]["B"] == {"CLs_obs": 0.9, "CLs_exp": [0.9] * 5}
    assert notes == ["BkgOnly.json: upper limits above the cap are not claimed for 1 point(s): B"]
