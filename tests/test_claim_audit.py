"""arch claim / replay: per-point backend and fallback, per-point marks (several minima, underflow),
claims at a local minimum, degenerate results, and the engine audit (issue 10, items 2-4)."""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import heparch
from heparch import config
from heparch.build import build
from heparch.claim import claim as claim_bundle
from heparch.errors import DegenerateResult, FitError
from heparch.infer.base import CLsResult
from heparch.infer.fast.backend import FastModel
from heparch.infer.pyhf_backend import PyhfModel
from heparch.replay import audit, work
from heparch.replay.core import DEFAULT_TOLERANCE, compare, local_minimum, worst_ratio
from heparch.replay.outcome import Audited, Values

from clihelp import run
from conftest import SHARED, small_patchset, small_workspace

FAST_CLS = FastModel.cls
PYHF_CLS = PyhfModel.cls


@pytest.fixture(autouse=True)
def fresh_backgrounds() -> Iterator[None]:
    """Every test prepares its own backgrounds (the worker cache would keep another test's)."""
    work._BACKGROUNDS.clear()
    yield
    work._BACKGROUNDS.clear()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-bin workspace with three signal points, as a bundle."""
    src = tmp_path_factory.mktemp("small-src")
    ws = small_workspace()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(small_patchset(ws)))
    (src / config.FILENAME).write_text("name: small\ncreated: '2026-01-01T00:00:00Z'\n")
    out = tmp_path_factory.mktemp("small") / "small.zst"
    build(src, output=out)
    return out


def results(bundle: Path) -> dict[str, Any]:
    with heparch.open(bundle) as b:
        (entry,) = b.manifest.by_role("results")
        doc: dict[str, Any] = b.read_json(entry.path)
        return doc


def claim(small: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run("claim", str(small), "-o", str(out), "--jobs", "1", *extra)


# --- the audit, live on a small model ---------------------------------------------------------


def test_claim_audits_one_point_against_pyhf_by_default(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.zst"
    code, stdout, err = claim(small, out, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    recorded = results(out)["audit"]
    assert {k: v for k, v in recorded.items() if k != "points"} == {k: v for k, v in doc["audit"].items() if k != "points"}
    assert [f"BkgOnly.json:{name}" for name in recorded["points"]] == list(doc["audit"]["points"])
    assert (recorded["status"], recorded["reference"], recorded["requested"]) == ("passed", "pyhf", 1)
    assert recorded["seed"] == audit.seed_of(doc["parent"])
    (point,) = recorded["points"].values()
    assert 0 <= point["ratio"] <= recorded["max_ratio"] <= 1
    assert abs(point["nll_difference"]) < audit.NLL_TOLERANCE
    assert "audit passed: 1 point(s) against pyhf, max difference" in err
    assert run("verify", str(out))[0] == 0
    # replay audits the same way, and reports it
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--audit", "1", "--json")
    assert code == 0, err
    replayed = json.loads(stdout)
    assert replayed["audit"]["status"] == "passed"
    assert replayed["audit"]["seed"] == audit.seed_of(doc["identity"])
    assert sum("audit" in p for p in replayed["points"].values()) == 1
    assert "audit passed: 1 point(s) against pyhf" in err
    lines = err.splitlines()  # the audit pass has its own start line and count in a log
    start = lines.index(f"{out}: auditing 1 point(s) with the reference backend")
    assert [line.partition(" (")[0] for line in lines[start + 1 :] if line.startswith("replay: audit: ")] == ["replay: audit: 1/1"]


def test_a_difference_above_the_tolerance_fails_claim_and_replay(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "c.zst"
    assert claim(small, out, "--audit", "0")[0] == 0
    assert results(out)["audit"] == {"requested": 0, "seed": audit.seed_of(results(out)["parent"]["identity"]), "status": "off"}

    def off(self: PyhfModel, mu: float = 1.0) -> CLsResult:
        r = PYHF_CLS(self, mu)
        return dataclasses.replace(r, observed=r.observed * 1.01)

    monkeypatch.setattr(PyhfModel, "cls", off)
    code, _, err = claim(small, tmp_path / "bad.zst", "--audit", "3")
    assert code == 1, err
    assert "error: the audit against the reference backend failed, so no claims were written: audit failed: 3 point(s) against pyhf" in err
    assert not (tmp_path / "bad.zst").exists()
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--audit", "2", "--json")
    assert code == 1, err
    doc = json.loads(stdout)
    assert doc["audit"]["status"] == "failed"
    bad = [p for p in doc["points"].values() if not p["pass"]]
    assert len(bad) == 2
    assert all(p["mismatches"][-1]["field"] == "audit:CLs_obs" for p in bad)
    assert "the audit: fast vs pyhf" in bad[0]["mismatches"][-1]["note"]


def test_audit_points_are_chosen_by_the_identity() -> None:
    keys = [f"p{i}" for i in range(20)]
    one, two = audit.seed_of("sha256:" + "0" * 64), audit.seed_of("sha256:" + "1" * 64)
    assert audit.choose_points(keys, 3, one) == audit.choose_points(list(reversed(keys)), 3, one)
    assert audit.choose_points(keys, 3, one) != audit.choose_points(keys, 3, two)
    assert audit.choose_points(keys, 30, one) == sorted(keys)


def test_audit_summary_statuses() -> None:
    point = Audited(1e-6, 0.2, "CLs_obs", 0.3, 0.30002, 1e-4, "pyhf")
    passed = audit.summary(1, 7, {"a": point}, {}, [])
    assert (passed.status, passed.reason, passed.points, passed.max_ratio) == ("passed", None, {"a": point}, 0.2)
    assert audit.summary(1, 7, {"a": dataclasses.replace(point, ratio=1.5)}, {}, []).status == "failed"
    assert audit.summary(1, 7, {"a": dataclasses.replace(point, ratio=math.inf)}, {}, []).status == "failed"
    noted = audit.summary(1, 7, {"a": point}, {}, ["b.json: computed with pyhf", "c.json: spey"])
    assert (noted.status, noted.reason) == ("passed", "b.json: computed with pyhf; c.json: spey")
    skipped = audit.summary(1, 7, {}, {}, ["sl.json: spey is not installed"])
    assert (skipped.status, skipped.reason, skipped.points) == ("skipped", "sl.json: spey is not installed", {})
    assert audit.summary(1, 7, {}, {}, []).reason == "no point to audit"
    failed = audit.summary(1, 7, {"a": point}, {"c": "FitError: y", "b": "FitError: x"}, [])
    assert (failed.status, failed.reason) == ("failed", "2 point(s) could not be recomputed (first: b: FitError: x)")
    off = audit.summary(0, 7, {}, {}, [])
    assert (off.status, off.points, off.to_json()) == ("off", None, {"requested": 0, "seed": 7, "status": "off"})


def test_claim_reports_the_audit_as_its_own_stage(small: Path, tmp_path: Path) -> None:
    """claim's progress: the points, then the audit's points counted from 0 as each arrives (the
    audit is a pass of its own, minutes a point with pyhf on a real likelihood)."""
    events: list[tuple[str, int, int]] = []
    result = claim_bundle(
        small,
        tmp_path / "c.zst",
        audit=2,
        on_start=lambda stage, n: events.append((stage, 0, n)),
        on_result=lambda result, done, total: events.append(("done", done, total)),
    )
    assert events == [("points", 0, 3), ("done", 1, 3), ("done", 2, 3), ("done", 3, 3), ("audit", 0, 2), ("done", 1, 2), ("done", 2, 2)]
    assert (result.audit.status, len(result.audit.points or {})) == ("passed", 2)
    # no audit (or nothing to audit): no audit stage
    events.clear()
    claim_bundle(small, tmp_path / "d.zst", audit=0, on_start=lambda stage, n: events.append((stage, 0, n)))
    assert events == [("points", 0, 3)]
    events.clear()
    claim_bundle(small, tmp_path / "e.zst", audit=2, backend="pyhf", on_start=lambda stage, n: events.append((stage, 0, n)))
    assert events == [("points", 0, 3)]


def test_arch_claim_shows_the_audit_progress(small: Path, tmp_path: Path) -> None:
    """In a log: the claim's lines, the audit's start, then its own lines."""
    code, _, err = claim(small, tmp_path / "c.zst", "--audit", "2")
    assert code == 0, err
    lines = err.splitlines()
    start = lines.index(f"{small}: auditing 2 point(s) with the reference backend")
    assert [line.partition(" (")[0] for line in lines[start + 1 :] if line.startswith("claim: ")] == ["claim: audit: 1/2", "claim: audit: 2/2"]
    last = next(i for i, line in enumerate(lines) if line.startswith("claim: 3/3 ("))
    assert lines.index(f"{small}: claiming 3 point(s)") < last < start


def test_an_audited_point_that_fails_is_shown_as_it_arrives(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: PyhfModel, mu: float = 1.0) -> CLsResult:
        raise FitError("the reference's fit did not converge")

    monkeypatch.setattr(PyhfModel, "cls", broken)
    code, _, err = claim(small, tmp_path / "c.zst", "--audit", "1")
    assert code == 1, err
    (failure,) = [line for line in err.splitlines() if line.startswith("FAIL ")]
    assert failure.startswith("FAIL audit ")
    assert "the reference's fit did not converge" in failure
    point = failure.removeprefix("FAIL audit ").partition(":")[0]
    assert f"audit failed: 1 point(s) could not be recomputed (first: BkgOnly.json:{point}: " in err
    assert "claim: audit: 1/1, 1 failed (" in err
    assert not (tmp_path / "c.zst").exists()


def test_simplified_audit_is_skipped_without_spey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "spey_available", lambda: False)
    src = tmp_path / "src"
    src.mkdir()
    sl = {"observed": [5, 3], "background": [4.0, 2.5], "covariance": [[1.0, 0.2], [0.2, 0.5]], "signals": {"A": [1.0, 0.5], "B": [3.0, 2.0]}}
    (src / "sl.json").write_text(json.dumps(sl))
    (src / config.FILENAME).write_text("name: sl\ncreated: '2026-01-01T00:00:00Z'\nfiles:\n  - path: sl.json\n    role: simplified-likelihood\n")
    bundle = tmp_path / "sl.zst"
    build(src, output=bundle)
    out = tmp_path / "c.zst"
    code, _, err = claim(bundle, out)
    assert code == 0, err
    recorded = results(out)["audit"]
    assert recorded["status"] == "skipped"
    assert "spey is not installed" in recorded["reason"]


def test_simplified_audit_against_spey(tmp_path: Path) -> None:
    pytest.importorskip("spey", reason="spey 0.2.7 is the optional reference of simplified likelihoods")
    spec = {"observed": [5, 3], "background": [4.0, 2.5], "covariance": [[1.0, 0.2], [0.2, 0.5]], "third_moments": [0.2, 0.1], "signals": {"A": [3.0, 2.0]}}
    ctx = work.Context("t", "sl.json", "simplified", "simplified", spec)
    task = work.Task("t", "A", signal="A", reference="spey")
    got = work.run_task({"t": ctx}, task)
    assert got.error is None, got.error
    assert got.values is not None
    mine = work.compute(ctx, task)
    found = audit.compared({**mine, "nll": got.values["nll"]}, got.values["reference"], DEFAULT_TOLERANCE)
    assert found.ratio <= 1, found
    assert found.reference == "spey"


# --- fallback and the per-point backend -------------------------------------------------------


def test_a_point_the_fast_engine_cannot_compute_falls_back_to_pyhf(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def first_fails(self: FastModel, mu: float = 1.0) -> CLsResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise FitError("fast engine: no convergence after 200 Newton iterations (test)")
        return FAST_CLS(self, mu)

    monkeypatch.setattr(FastModel, "cls", first_fails)
    out = tmp_path / "c.zst"
    code, _, err = claim(small, out, "--audit", "0")
    assert code == 0, err
    points = results(out)["points"]
    backends = {name: p["backend"] for name, p in points.items()}
    assert sorted(backends.values()) == ["fast", "fast", "pyhf"]
    (fell,) = [name for name, b in backends.items() if b == "pyhf"]
    assert f"BkgOnly.json:{fell}: the fast backend could not compute this point (FitError: fast engine: no convergence" in err
    assert results(out)["software"]["pyhf"]
    assert results(out)["settings"]["fit_tolerance"] == 1e-10
    calls["n"] = 0
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--json", "--point", fell)
    assert code == 0, err
    doc = json.loads(stdout)["points"][fell]
    assert (doc["backend"], doc["claimed"]["backend"]) == ("pyhf", "pyhf")
    assert "computed with pyhf" in doc["note"]


def test_requested_fast_does_not_fall_back(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(self: FastModel, mu: float = 1.0) -> CLsResult:
        raise FitError("fast engine: stuck (test)")

    monkeypatch.setattr(FastModel, "cls", fails)
    code, _, err = claim(small, tmp_path / "c.zst", "--backend", "fast", "--audit", "0")
    assert code == 2, err
    assert "3 of 3 points failed, so no claims were written" in err


def test_a_degenerate_result_is_a_failed_point(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def first_degenerate(self: FastModel, mu: float = 1.0) -> CLsResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DegenerateResult("q_mu,A = 0: the Asimov data do not depend on mu (test)")
        return FAST_CLS(self, mu)

    monkeypatch.setattr(FastModel, "cls", first_degenerate)
    code, _, err = claim(small, tmp_path / "no.zst", "--audit", "0")
    assert code == 2, err
    assert "1 of 3 points failed" in err
    assert "DegenerateResult: q_mu,A = 0" in err
    calls["n"] = 0
    out = tmp_path / "c.zst"
    code, _, err = claim(small, out, "--audit", "0", "--allow-failures")
    assert code == 0, err
    assert len(results(out)["points"]) == 2
    assert all(p["backend"] == "fast" for p in results(out)["points"].values())


# --- marks: several minima, underflow ---------------------------------------------------------


def _marked(self: FastModel, mu: float = 1.0) -> CLsResult:
    r = FAST_CLS(self, mu)
    starts = {"nominal": {"CLs_obs": r.observed * 2, "nll": 3.5}, "warm": {"CLs_obs": r.observed, "nll": 3.0}}
    return dataclasses.replace(r, multimodal=True, starts=starts, underflow=("CLs_exp[0]",))


def test_claim_records_the_marks_and_replay_compares_underflow_as_such(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FastModel, "cls", _marked)
    out = tmp_path / "c.zst"
    code, _, err = claim(small, out, "--audit", "0")
    assert code == 0, err
    assert run("verify", str(out))[0] == 0
    point = results(out)["points"]["pt_400_100"]
    assert point["multimodal"] is True
    assert point["underflow"] == ["CLs_exp[0]"]
    assert point["starts"]["warm"]["CLs_obs"] == point["CLs_obs"]
    code, _, err = run("replay", str(out), "--jobs", "1")
    assert code == 0, err  # both sides mark CLs_exp[0] as underflowing: they agree
    monkeypatch.setattr(FastModel, "cls", FAST_CLS)
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--json", "--point", "pt_400_100")
    assert code == 1, err
    (mismatch,) = json.loads(stdout)["points"]["pt_400_100"]["mismatches"]
    assert mismatch["field"] == "CLs_exp[0]"
    assert mismatch["note"] == "the claim marks it as underflowing double precision, the replay does not"


def test_underflow_comparison() -> None:
    claimed = Values(0.2, (0.0, 0.01, 0.1, 0.3, 0.5), underflow=("CLs_exp[0]",))
    assert compare(claimed, claimed, DEFAULT_TOLERANCE) == []
    # an unmarked value that also underflows (an exact 0 from an older tool) is the same value
    zero = dataclasses.replace(claimed, underflow=())
    assert compare(zero, claimed, DEFAULT_TOLERANCE) == []
    # an unmarked computed value is not, even inside the absolute tolerance
    unmarked = dataclasses.replace(zero, cls_exp=(1e-5, 0.01, 0.1, 0.3, 0.5))
    (m,) = compare(unmarked, claimed, DEFAULT_TOLERANCE)
    assert (m.field, m.note) == ("CLs_exp[0]", "the replay marks it as underflowing double precision, the claim does not")
    assert "the replay marks it as underflowing" in m.one_line()
    assert worst_ratio(unmarked, claimed, DEFAULT_TOLERANCE) == float("inf")


def test_local_minimum_is_recognised() -> None:
    replayed = Values(0.114, (0.1,) * 5, starts={"nominal": {"CLs_obs": 0.2778}, "warm": {"CLs_obs": 0.114}})
    found = local_minimum(Values(0.2778, (0.1,) * 5), replayed, DEFAULT_TOLERANCE)
    assert found is not None
    assert found.to_json() == {"start": "nominal", "claimed": 0.2778, "replayed": 0.114, "start_CLs_obs": 0.2778}
    assert local_minimum(Values(0.5, (0.1,) * 5), replayed, DEFAULT_TOLERANCE) is None  # no start explains it
    assert local_minimum(Values(0.114, (0.1,) * 5), replayed, DEFAULT_TOLERANCE) is None  # it agrees
    assert local_minimum(Values(0.2778, ()), Values(0.114, ()), DEFAULT_TOLERANCE) is None  # no starts


def test_a_claim_at_a_local_minimum_is_its_own_outcome(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "c.zst"
    assert claim(small, out, "--audit", "0")[0] == 0

    def lower_minimum(self: FastModel, mu: float = 1.0) -> CLsResult:
        r = FAST_CLS(self, mu)  # the claimed value comes from the 'nominal' start; the lowest minimum gives half
        starts = {"nominal": {"CLs_obs": r.observed, "CLs_exp": list(r.expected)}, "warm": {"CLs_obs": r.observed / 2}}
        return dataclasses.replace(r, observed=r.observed / 2, multimodal=True, starts=starts)

    monkeypatch.setattr(FastModel, "cls", lower_minimum)
    junit, html = tmp_path / "r.xml", tmp_path / "r.html"
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--json", "--point", "pt_400_100", "--junit", str(junit), "--html", str(html))
    assert code == 1, err
    doc = json.loads(stdout)
    point = doc["points"]["pt_400_100"]
    assert (point["outcome"], point["pass"]) == ("claim-at-local-minimum", False)
    assert point["local_minimum"]["start"] == "nominal"
    assert point["local_minimum"]["claimed"] == point["claimed"]["CLs_obs"]
    assert point["local_minimum"]["replayed"] == point["replayed"]["CLs_obs"]
    assert doc["summary"]["claim_at_local_minimum"] == 1
    assert "CLAIM AT A LOCAL MINIMUM pt_400_100" in err
    assert "LOCAL" in err
    assert "1 claimed at a local minimum" in err
    (failure,) = ET.parse(junit).getroot().iter("failure")
    assert failure.get("type") == "claim-at-local-minimum"
    assert "is the replay's value from start 'nominal'" in (failure.text or "")
    page = html.read_text()
    assert "claim at a local minimum" in page
    assert "is the replay&#x27;s value from start &#x27;nominal&#x27;" in page


def test_recorded_settings_reach_the_replay(small: Path, tmp_path: Path) -> None:
    from heparch.infer.base import Settings
    from heparch.replay import core

    out = tmp_path / "c.zst"
    code, _, err = claim(small, out, "--audit", "0", "--normsys-interp", "code1", "--histosys-interp", "code0", "--measurement", "meas")
    assert code == 0, err
    recorded = results(out)["settings"]
    assert recorded["interpolation"] == {"normsys": "code1", "histosys": "code0"}
    assert recorded["measurement"] == "meas"
    (ctx,) = core.plan(out).contexts.values()
    assert ctx.settings == Settings(normsys="code1", histosys="code0", measurement="meas")
    assert run("replay", str(out), "--jobs", "1")[0] == 0


def test_verify_replay_takes_the_audit_option(small: Path) -> None:
    code, _, err = run("verify", str(small), "--audit", "1")
    assert code == 2
    assert "--audit: a replay option; add --replay" in err


def test_a_degenerate_result_is_a_failed_point_in_replay(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "c.zst"
    assert claim(small, out, "--audit", "0")[0] == 0
    calls = {"n": 0}

    def first_degenerate(self: FastModel, mu: float = 1.0) -> CLsResult:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DegenerateResult("q_mu,A = 0 (test)")
        return FAST_CLS(self, mu)

    monkeypatch.setattr(FastModel, "cls", first_degenerate)
    code, stdout, err = run("replay", str(out), "--jobs", "1", "--json")
    assert code == 1, err
    doc = json.loads(stdout)
    assert doc["summary"] == {**doc["summary"], "total": 3, "passed": 2, "failed": 1}
    (bad,) = [p for p in doc["points"].values() if not p["pass"]]
    assert (bad["outcome"], bad["error"]) == ("error", "DegenerateResult: q_mu,A = 0 (test)")


def test_a_point_the_fast_engine_does_not_support_falls_back_to_pyhf(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heparch.infer.fast.backend import FastBackend

    supported = FastBackend.unsupported

    def no_large_signal(self: FastBackend, spec: Any, *, measurement: str | None = None) -> str | None:
        samples = spec["channels"][0]["samples"]
        if len(samples) > 1 and samples[1]["data"][0] > 2.5:  # pt_500_200's signal (3.0 in bin 1) only
            return "a model it does not support (test)"
        return supported(self, spec, measurement=measurement)

    monkeypatch.setattr(FastBackend, "unsupported", no_large_signal)
    out = tmp_path / "c.zst"
    code, _, err = claim(small, out, "--audit", "0")
    assert code == 0, err
    assert {n: p["backend"] for n, p in results(out)["points"].items()} == {"pt_300_100": "fast", "pt_400_100": "fast", "pt_500_200": "pyhf"}
    assert "BkgOnly.json:pt_500_200: the fast backend cannot handle this point (a model it does not support (test)); computed with pyhf" in err


@pytest.mark.parametrize("backend", ["fast", "pyhf"])
def test_a_pyhf_claim_at_a_local_minimum_of_coupledhistosys_is_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """pyhf's validation case 2bin_2channel_coupledhistosys, its signal as a patch: pyhf from its
    nominal start (as ``pyhf cls``, or heparch's pyhf backend without its second starts) claims
    CLs_obs 0.2778 (a local minimum); the replay (either backend) takes the lowest minima
    (0.1140), finds several, asks pyhf from its nominal start, and reports the claim as made at a
    local minimum with both values (exit 1: not a pass)."""
    import pyhf

    from heparch.infer.pyhf_backend import Hypotest

    ws = json.loads((SHARED / "pyhf-validation" / "2bin_2channel_coupledhistosys.json").read_text())
    signal = ws["channels"][0]["samples"].pop(0)
    assert signal["modifiers"] == [{"name": "mu", "type": "normfactor", "data": None}]
    patchset = {
        "metadata": {"description": "coupledhistosys", "digests": {"sha256": pyhf.utils.digest(ws)}, "labels": ["x"], "references": {"hepdata": "ins0000001"}},
        "patches": [{"metadata": {"name": "sig", "values": [1]}, "patch": [{"op": "add", "path": "/channels/0/samples/2", "value": signal}]}],
        "version": "1.0.0",
    }
    src = tmp_path / "ana"
    src.mkdir()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(patchset))
    bundle, claimed = tmp_path / "b.zst", tmp_path / "c.zst"
    build(src, output=bundle)
    with monkeypatch.context() as m:
        m.setattr(Hypotest, "second_starts", False)
        code, _, err = run("claim", str(bundle), "-o", str(claimed), "--backend", "pyhf", "--audit", "0")
    assert code == 0, err
    code, stdout, err = run("replay", str(claimed), "--json", "--backend", backend)
    assert code == 1, err
    point = json.loads(stdout)["points"]["sig"]
    assert point["outcome"] == "claim-at-local-minimum"
    local = point["local_minimum"]
    assert local["claimed"] == pytest.approx(0.2778, abs=2e-4)
    assert local["replayed"] == pytest.approx(0.1140, abs=2e-4)
    assert local["start"] == "pyhf from its nominal start"
    assert point["replayed"]["multimodal"] is True
