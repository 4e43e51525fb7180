"""arch reinterpret (issue 15 items 1 and 2): the signal interface, its leave-one-out self-test,
new points from YAML/JSON/CSV, the checks of bad yields, --patchset-out, --xsec, the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from heparch.build import build
from heparch.components.interface import derive
from heparch.errors import InferenceInputError, InputError
from heparch.infer.backends import get
from heparch.reinterpret.selftest import leave_one_out
from heparch.reinterpret.signal import read

from clihelp import first_line, run
from conftest import EXAMPLE, ONE_LBB, small_workspace

POI = "mu_SIG"


def _published(name: str, data: list[float], hi: list[float], mc: list[float]) -> dict[str, Any]:
    """A published signal patch of the toy: staterror, a histosys and a normsys, the POI."""
    sample = {
        "name": "signal",
        "data": data,
        "modifiers": [
            {"name": "staterror_SR", "type": "staterror", "data": mc},
            {"name": "sig_jes", "type": "histosys", "data": {"hi_data": hi, "lo_data": [2 * d - h for d, h in zip(data, hi, strict=True)]}},
            {"name": "sig_xsec", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
            {"name": POI, "type": "normfactor", "data": None},
        ],
    }
    return {"metadata": {"name": name, "values": [float(len(name)), data[0]]}, "patch": [{"op": "add", "path": "/channels/0/samples/1", "value": sample}]}


def _toy_workspace() -> dict[str, Any]:
    """conftest's two-bin workspace (a background with a normsys and staterror_SR)."""
    return small_workspace(obs=5.0)


def _with_control_region(ws: dict[str, Any]) -> dict[str, Any]:
    """``ws`` with a second channel, CR, a copy of SR."""
    cr = json.loads(json.dumps(ws["channels"][0]))
    cr["name"] = "CR"
    cr["samples"][0]["modifiers"][1]["name"] = "staterror_CR"
    ws["channels"].append(cr)
    ws["observations"].append({"name": "CR", "data": [9.0, 4.0]})
    return ws


def _toy_analysis(root: Path, extra_ops: list[dict[str, Any]] | None = None, ws: dict[str, Any] | None = None) -> Path:
    """A toy analysis directory (a 2-bin channel SR, three published signals entering it) built into a bundle."""
    import pyhf

    ws = ws or _toy_workspace()
    patches = [
        _published("p_a", [1.0, 2.0], [1.1, 2.1], [0.1, 0.2]),
        _published("p_b", [2.0, 1.0], [2.2, 1.05], [0.2, 0.1]),
        _published("p_c", [3.0, 0.5], [3.1, 0.6], [0.3, 0.05]),
    ]
    for p in patches:
        p["patch"] += extra_ops or []
    ps = {
        "metadata": {"description": "toy", "digests": {"sha256": pyhf.utils.digest(ws)}, "labels": ["m1", "m2"], "references": {"hepdata": "ins0000001"}},
        "patches": patches,
        "version": "1.0.0",
    }
    src = root / "ana"
    src.mkdir()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(ps))
    (src / "patch.extra.json").write_text(json.dumps(_published("extra", [0.5, 0.5], [0.6, 0.6], [0.05, 0.05])["patch"]))  # a point as a patch file
    out = root / "toy.zst"
    build(src, output=out)
    return out


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return _toy_analysis(tmp_path)


@pytest.fixture(scope="module")
def example_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ex") / "example.zst"
    build(EXAMPLE, output=out)
    return out


def _lbb() -> tuple[dict[str, Any], dict[str, Any]]:
    ws = json.loads((ONE_LBB / "BkgOnly.json").read_text())
    ps = json.loads((ONE_LBB / "patchset.json").read_text())
    return ws, {p["metadata"]["name"]: p["patch"] for p in ps["patches"]}


@pytest.fixture(scope="module")
def lbb() -> tuple[dict[str, Any], dict[str, Any], Any]:
    ws, patches = _lbb()
    return ws, patches, get("fast").background(ws)


# --- the interface ----------------------------------------------------------------------


def test_interface_of_1lbb_lists_regions_modifiers_and_rules() -> None:
    ws, patches = _lbb()
    itf = derive(ws, patches, likelihood="BkgOnly.json")
    assert [r.channel for r in itf.regions] == [c["name"] for c in ws["channels"]]  # control regions included
    assert [r.bins for r in itf.regions] == [1, 1, 1, 1, 1, 3, 3, 3]
    assert itf.poi == POI
    assert itf.poi_bounds == (0.0, 5.0)
    assert itf.adds_sample_only
    assert itf.unexpressed == ()
    assert itf.sample_name is None
    sr = itf.region("SRLMEM_mct2")
    assert sr is not None
    assert sr.staterror == "staterror_SRLMEM_mct2"
    assert ("lumi", "lumi") in sr.fixed
    assert (POI, "normfactor") in sr.fixed
    keys = {s.key: s for s in itf.systematics}
    assert keys["EG_Eff"].type == "histosys"
    assert keys["EG_Eff_norm"].type == "normsys"
    assert keys["EG_Eff_norm"].name == "EG_Eff"
    assert keys["SigTheoRad"].regions == ("SRHMEM_mct2", "SRMMEM_mct2", "SRLMEM_mct2")  # the signal theory histosys enters the SRs only


def test_interface_cli_example_json_and_text(example_bundle: Path) -> None:
    code, out, err = run("reinterpret", str(example_bundle), "--interface", "--json")
    assert code == 0, err
    itf = json.loads(out)["likelihoods"]["BkgOnly.json"]
    assert [(r["channel"], r["bins"]) for r in itf["regions"]] == [("SR_cat1", 30), ("SR_cat2", 30), ("SR_cat3", 30)]
    assert itf["luminosity_ifb"] == 139
    assert "139 fb^-1" in itf["units"]
    assert [s["key"] for s in itf["systematics"]] == ["sig_theory"]
    assert itf["sample_name"] == "signal"
    assert itf["adds_sample_only"] is True
    assert itf["unexpressed"] == []
    code, out, _ = run("reinterpret", str(example_bundle), "--interface")
    assert code == 0
    assert "sig_theory: normsys 'sig_theory' in SR_cat1, SR_cat2, SR_cat3" in out


def test_interface_says_what_patches_removing_channels_cannot_express(tmp_path: Path) -> None:
    ws = _with_control_region(_toy_workspace())
    patches = {p: _published(p, [1.0, 2.0], [1.1, 2.1], [0.1, 0.2])["patch"] + [{"op": "remove", "path": "/channels/1"}] for p in ("a", "b")}
    patches["c"] = _published("c", [1.0, 2.0], [1.1, 2.1], [0.1, 0.2])["patch"] + [{"op": "replace", "path": "/channels/0/samples/0/data", "value": [9.0, 5.0]}]
    itf = derive(ws, patches, likelihood="ws.json")
    assert not itf.adds_sample_only
    assert itf.unexpressed == (
        "remove /channels/1 (channel 'CR'): in 2 of 3 patches; a new signal cannot express it",
        "replace /channels/0/samples/0/data (channel 'SR' sample 'bkg' data): in 1 of 3 patches; a new signal cannot express it",
    )
    assert itf.not_entered == ("CR",)
    st, _, _ = leave_one_out(ws, patches, "a")
    assert [d.one_line() for d in st.differences] == ["(patch): 1 operation(s) that add no signal sample: not generated (documented)"]


def test_interface_cli_on_a_bundle_whose_patches_remove_a_channel(tmp_path: Path) -> None:
    bundle = _toy_analysis(tmp_path, [{"op": "remove", "path": "/channels/1"}], ws=_with_control_region(_toy_workspace()))
    code, out, err = run("reinterpret", str(bundle), "--interface", "--json")
    assert code == 0, err
    itf = json.loads(out)["likelihoods"]["BkgOnly.json"]
    assert itf["points"] == 4  # the patchset's three and the patch file's
    assert itf["adds_sample_only"] is False
    assert itf["unexpressed"] == ["remove /channels/1 (channel 'CR'): in 3 of 4 patches; a new signal cannot express it"]
    assert itf["not_entered"] == ["CR"]
    code, out, err = run("reinterpret", str(bundle), "--interface")
    assert code == 0, err
    assert "the published patches do more than add a signal sample; a new signal cannot express:" in out


# --- the self-test, leave one out ---------------------------------------------------------

#: a high-mass point, a point with zero-yield bins carrying variations, a low-mass excluded point
LBB_FAST = ("C1N2_Wh_hbb_1000_0", "C1N2_Wh_hbb_500_350", "C1N2_Wh_hbb_150_0")


@pytest.mark.parametrize("point", LBB_FAST)
def test_leave_one_out_1lbb(lbb: tuple[dict[str, Any], dict[str, Any], Any], point: str) -> None:
    ws, patches, background = lbb
    st, itf, _generated = leave_one_out(ws, patches, point, background=background)
    assert point not in itf.points
    assert len(itf.points) == 124
    assert st.patch_ok, [d.one_line() for d in st.differences if not d.documented]
    assert st.cls_ok, (st.published, st.generated)
    assert st.published is not None
    assert st.generated is not None
    assert abs(st.generated["CLs_obs"] - st.published["CLs_obs"]) <= 1e-4


@pytest.mark.slow
def test_leave_one_out_every_1lbb_point(lbb: tuple[dict[str, Any], dict[str, Any], Any]) -> None:
    """125 points, two CLs each with the fast engine (measured ~40 s CPU; 181 s wall at load 11)."""
    ws, patches, background = lbb
    failed = []
    for point in patches:
        st, _, _ = leave_one_out(ws, patches, point, background=background)
        if not st.passed:
            failed.append(st.to_json())
    assert failed == []


def test_leave_one_out_example(example_bundle: Path) -> None:
    ws = json.loads((EXAMPLE / "BkgOnly.json").read_text())
    patches = {p["metadata"]["name"]: p["patch"] for p in json.loads((EXAMPLE / "patchset.json").read_text())["patches"]}
    background = get("fast").background(ws)
    for point in list(patches)[:3]:
        st, _, _ = leave_one_out(ws, patches, point, background=background)
        assert st.passed, st.to_json()
        assert st.differences == ()


def test_leave_one_out_reports_an_undocumented_difference() -> None:
    """The comparison can fail: a generated patch with other yields is a difference nobody documented."""
    from heparch.reinterpret.generate import inputs_from_patch, patch_for
    from heparch.reinterpret.selftest import compare_patches
    from heparch.reinterpret.signal import RegionInput, SignalPoint

    ws = _toy_workspace()
    patches = {p: _published(p, [1.0, 2.0], [1.1, 2.1], [0.1, 0.2])["patch"] for p in ("a", "b")}
    itf = derive(ws, patches, likelihood="ws.json", exclude=["a"])
    point, dropped = inputs_from_patch(itf, "a", patches["a"], ws)
    region = point.regions["SR"]
    other = SignalPoint("a", {"SR": RegionInput((1.0, 2.5), region.mc_unc, region.systematics)})
    diffs = compare_patches(patches["a"], patch_for(itf, other), dropped, ws)
    lines = [d.one_line() for d in diffs]
    assert "SR: yields: differ (NOT documented)" in lines
    assert "SR: sig_jes (histosys): data differ (NOT documented)" in lines
    assert not all(d.documented for d in diffs)


# --- a new signal, its patch written by hand ------------------------------------------------


def test_new_signal_matches_its_hand_written_patch_and_pyhf(toy: Path, tmp_path: Path, pyhf_precise: Any) -> None:
    pyhf = pyhf_precise
    yields = tmp_path / "new.yaml"
    yields.write_text(
        "points:\n"
        "  - name: new_1\n"
        "    labels: {m1: 400, m2: 50}\n"
        "    regions:\n"
        "      SR:\n"
        "        yield: [2.0, 4.0]\n"
        "        mc_unc: [0.2, 0.3]\n"
        "        systematics:\n"
        "          sig_jes: {up: [0.1, -0.05], down: [-0.1, 0.05]}\n"
        "          sig_xsec: {up: [0.2, 0.2], down: [-0.15, -0.15]}\n"
    )
    hand = [
        {
            "op": "add",
            "path": "/channels/0/samples/1",
            "value": {
                "name": "signal",
                "data": [2.0, 4.0],
                "modifiers": [
                    {"name": "staterror_SR", "type": "staterror", "data": [0.2, 0.3]},
                    {"name": "sig_jes", "type": "histosys", "data": {"hi_data": [2.2, 3.8], "lo_data": [1.8, 4.2]}},
                    {"name": "sig_xsec", "type": "normsys", "data": {"hi": 1.2, "lo": 0.85}},
                    {"name": POI, "type": "normfactor", "data": None},
                ],
            },
        }
    ]
    out = tmp_path / "new_patchset.json"
    code, stdout, err = run("reinterpret", str(toy), "--signal", str(yields), "--jobs", "1", "--patchset-out", str(out), "--json")
    assert code == 0, err
    made = pyhf.PatchSet(json.loads(out.read_text()))
    generated = made["new_1"].patch
    assert len(generated) == 1
    assert generated[0]["path"] == hand[0]["path"]
    by_name = {(m["name"], m["type"]): m["data"] for m in generated[0]["value"]["modifiers"]}
    assert set(by_name) == {(m["name"], m["type"]) for m in hand[0]["value"]["modifiers"]}
    assert generated[0]["value"]["data"] == [2.0, 4.0]
    assert by_name[("staterror_SR", "staterror")] == [0.2, 0.3]
    assert by_name[("sig_jes", "histosys")]["hi_data"] == pytest.approx([2.2, 3.8])
    assert by_name[("sig_jes", "histosys")]["lo_data"] == pytest.approx([1.8, 4.2])
    assert by_name[("sig_xsec", "normsys")] == pytest.approx({"hi": 1.2, "lo": 0.85})
    ws = pyhf.Workspace(_toy_workspace())
    model = pyhf.Workspace(pyhf.patchset.Patch({"metadata": {"name": "h", "values": [0]}, "patch": hand}).apply(ws)).model()
    data = ws.data(model)
    obs, exp = pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde", return_expected_set=True)
    got = json.loads(stdout)["points"]["new_1"]
    assert got["CLs_obs"] == pytest.approx(float(obs), rel=1e-3, abs=1e-4)
    assert got["CLs_exp"] == pytest.approx([float(e) for e in exp], rel=1e-3, abs=1e-4)
    assert got["labels"] == {"m1": 400.0, "m2": 50.0}


# --- yields files ---------------------------------------------------------------------------


def test_template_csv_round_trip_reproduces_the_published_point(example_bundle: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.csv"
    code, _, err = run("reinterpret", str(example_bundle), "--template", "-o", str(template))
    assert code == 0, err
    header = template.read_text().splitlines()[0].split(",")
    assert header[:5] == ["point", "channel", "bin", "yield", "mc_unc"]
    assert "sig_theory_up" in header
    assert header[-2:] == ["m1", "m2"]
    code, out, err = run("reinterpret", str(example_bundle), "--signal", str(template), "--jobs", "1", "--json")
    assert code == 0, err
    got = json.loads(out)["points"]["example_C1N2_200_0"]
    claimed = json.loads((EXAMPLE / "results.json").read_text())["points"]["C1N2_200_0"]
    assert got["CLs_obs"] == pytest.approx(claimed["CLs_obs"], rel=1e-3, abs=1e-4)
    assert got["dropped"] == []  # the example's signals carry only what a template gives


def test_yaml_and_json_templates_read_back(example_bundle: Path, tmp_path: Path) -> None:
    for suffix in ("yaml", "json"):
        path = tmp_path / f"t.{suffix}"
        assert run("reinterpret", str(example_bundle), "--template", "-o", str(path))[0] == 0
        got = read(path)
        assert got.likelihood == "BkgOnly.json"
        assert len(got.points) == 1
        region = got.points[0].regions["SR_cat1"]
        assert len(region.yields) == 30
        assert set(region.systematics) == {"sig_theory"}


def _csv(tmp_path: Path, rows: list[str], header: str = "point,channel,bin,yield,mc_unc,m1") -> Path:
    path = tmp_path / "y.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("rows", "code", "needle"),
    [
        (["p,SR,0,1.0,0.1,5"], "E102", "yield: 1 value(s), the region has 2 bin(s); give one per bin"),
        (["p,SR,0,nan,0.1,5", "p,SR,1,1.0,0.1,5"], "E103", "yield bin 0 is nan; give finite numbers"),
        (["p,CR,0,1.0,0.1,5", "p,CR,1,1.0,0.1,5"], "E101", "point 'p' region 'CR': unknown region; a signal of BkgOnly.json enters SR"),
        (["p,SR,0,-20,0.1,5", "p,SR,1,1.0,0.1,5"], "E104", "bin 0: yield -20 makes the total rate"),
        (["p,SR,0,1.0,0.1,5", "p,SR,0,2.0,0.1,5"], "E100", "bin 0 is given twice"),
        (["p,SR,0,x,0.1,5"], "E100", "'x' is not a number"),
    ],
)
def test_bad_yields_exit_2_naming_the_region(toy: Path, tmp_path: Path, rows: list[str], code: str, needle: str) -> None:
    path = _csv(tmp_path, rows)
    out_ps = tmp_path / "ps.json"
    exit_code, _, err = run("reinterpret", str(toy), "--signal", str(path), "--patchset-out", str(out_ps))
    assert exit_code == 2, err
    first = first_line(err)
    assert first.startswith(f"error: {code} "), err
    assert needle in first, err
    assert "Traceback" not in err
    assert not out_ps.exists()


@pytest.mark.parametrize(
    ("name", "text", "code", "needle"),
    [
        ("y.yaml", "points:\n  - {name: p, regions: {}}\n", "E100", "points[0](p).regions: no region"),
        ("y.json", '{"points": [{"name": "p", "regions": {"SR": {"yield": [1.0, NaN]}}}]}', "E103", "point 'p' region 'SR': yield bin 1 is nan"),
    ],
)
def test_yaml_point_without_regions_and_json_with_nan(toy: Path, tmp_path: Path, name: str, text: str, code: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    exit_code, _, err = run("reinterpret", str(toy), "--signal", str(path))
    assert exit_code == 2
    assert f"error: {code} " in err
    assert needle in err


def test_negative_yield_with_a_positive_total_is_a_warning(toy: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path, ["p,SR,0,-0.5,0.1,5", "p,SR,1,1.0,0.1,5"])
    code, out, err = run("reinterpret", str(toy), "--signal", str(path), "--jobs", "1", "--json")
    assert code == 0, err
    assert "warning: W030" in err
    assert [w["code"] for w in json.loads(out)["warnings"]] == ["W030"]


def test_unknown_systematic_and_unpaired_variation(toy: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path, ["p,SR,0,1.0,0.1,0.1,-0.1", "p,SR,1,1.0,0.1,0.1,-0.1"], header="point,channel,bin,yield,mc_unc,nope_up,nope_down")
    code, _, err = run("reinterpret", str(toy), "--signal", str(path))
    assert code == 2
    assert "E101" in err
    assert "nope" in err
    assert "sig_jes" in err
    path = _csv(tmp_path, ["p,SR,0,1.0,0.1,0.1", "p,SR,1,1.0,0.1,0.1"], header="point,channel,bin,yield,mc_unc,sig_jes_up")
    code, _, err = run("reinterpret", str(toy), "--signal", str(path))
    assert code == 2
    assert "give both relative variations" in err


def test_normsys_needs_one_value_per_region(toy: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path, ["p,SR,0,1.0,0.1,0.1,-0.1", "p,SR,1,1.0,0.1,0.2,-0.1"], header="point,channel,bin,yield,mc_unc,sig_xsec_up,sig_xsec_down")
    code, _, err = run("reinterpret", str(toy), "--signal", str(path))
    assert code == 2
    assert "E102" in err
    assert "same up and the same down in every bin" in err


# --- many points, limits, outputs -------------------------------------------------------------


def test_points_with_limits_xsec_and_patchset(toy: Path, tmp_path: Path) -> None:
    import pyhf

    rows = [f"p{i},SR,{b},{1.0 + 2 * i + b},0.1,{100 + i}" for i in range(2) for b in range(2)]
    path = _csv(tmp_path, rows)
    ps = tmp_path / "ps.json"
    args = ("reinterpret", str(toy), "--signal", str(path), "--jobs", "1", "--upper-limits", "--xsec", "0.5")
    code, out, err = run(*args, "--patchset-out", str(ps), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["total"] == 2
    assert doc["summary"]["computed"] == 2
    for name, p in doc["points"].items():
        assert len(p["CLs_exp"]) == 5
        assert 0 < p["CLs_obs"] < 1
        assert p["xsec_up_obs_pb"] == pytest.approx(0.5 * p["mu_up_obs"])
        assert p["xsec_pb"] == 0.5
        assert p["xsec_up_exp_pb"] == pytest.approx([0.5 * m for m in p["mu_up_exp"]])
        assert p["labels"] == {"m1": 100.0 + int(name[1:])}
    assert doc["points"]["p1"]["CLs_obs"] < doc["points"]["p0"]["CLs_obs"]  # more signal, more excluded
    assert doc["points"]["p1"]["mu_up_obs"] < doc["points"]["p0"]["mu_up_obs"]
    patchset = pyhf.PatchSet(json.loads(ps.read_text()))
    assert [p.name for p in patchset.patches] == ["p0", "p1"]
    assert patchset.labels == ["m1"]
    assert patchset.patches[1].values == (101.0,)


@pytest.mark.slow
def test_many_points_in_parallel_with_the_html_report(toy: Path, tmp_path: Path) -> None:
    """Local processes, in-process and Dask agree; the HTML page is written (~10-20 s: spawned workers, a Dask cluster, matplotlib)."""
    rows = [f"p{i},SR,{b},{1.0 + i + b},0.1,{100 + i},{10 * i}" for i in range(4) for b in range(2)]
    path = _csv(tmp_path, rows, header="point,channel,bin,yield,mc_unc,m1,m2")
    html = tmp_path / "r.html"
    code, out, err = run("reinterpret", str(toy), "--signal", str(path), "--jobs", "2", "--html", str(html), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted(doc["points"]) == ["p0", "p1", "p2", "p3"]
    assert doc["summary"]["computed"] == 4
    serial = run("reinterpret", str(toy), "--signal", str(path), "--jobs", "1", "--json")[1]
    in_one = {k: v["CLs_obs"] for k, v in json.loads(serial)["points"].items()}
    assert in_one == pytest.approx({k: v["CLs_obs"] for k, v in doc["points"].items()}, rel=1e-9)  # same fits, another process
    distributed = pytest.importorskip("distributed", reason="Dask distributed is in the test extra")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        code, remote, err = run("reinterpret", str(toy), "--signal", str(path), "--scheduler", cluster.scheduler_address, "--json")
    assert code == 0, err
    assert {k: v["CLs_obs"] for k, v in json.loads(remote)["points"].items()} == pytest.approx(in_one, rel=1e-9)
    page = html.read_text()
    assert "<html" in page
    assert "p3" in page


def test_usage_errors(toy: Path, tmp_path: Path) -> None:
    code, _, err = run("reinterpret", str(toy))
    assert code == 2
    assert "exactly one of --interface, --template and --signal" in err
    code, _, err = run("reinterpret", str(toy), "--template", "-o", str(tmp_path / "t.txt"))
    assert code == 2
    assert "use a .yaml, .json or .csv file" in err
    code, _, err = run("reinterpret", str(toy), "--signal", str(_csv(tmp_path, ["p,SR,0,1,0.1,5", "p,SR,1,1,0.1,5"])), "--xsec", "-1")
    assert code == 2
    assert "--xsec -1" in err
    code, _, err = run("reinterpret", str(toy), "--interface", "--likelihood", "nope.json")
    assert code == 2
    assert "'nope.json' is not a likelihood" in err


# --- a new 1Lbb signal, its patch written by hand ----------------------------------------------

DATA = Path(__file__).parent / "test_reinterpret"
GOLDEN = Path(__file__).parent / "golden" / "reinterpret_1lbb.json"


def _modifiers_by_key(op: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(m["name"], m["type"]): m["data"] for m in op["value"]["modifiers"]}


def _assert_same_patch(generated: list[dict[str, Any]], hand: list[dict[str, Any]]) -> None:
    assert [op["path"] for op in generated] == [op["path"] for op in hand]
    for got, want in zip(generated, hand, strict=True):
        assert got["value"]["name"] == want["value"]["name"]
        assert got["value"]["data"] == pytest.approx(want["value"]["data"])
        mods, wanted = _modifiers_by_key(got), _modifiers_by_key(want)
        assert set(mods) == set(wanted)
        for key, data in wanted.items():
            if isinstance(data, dict):
                assert {k: pytest.approx(v) for k, v in data.items()} == mods[key], key
            else:
                assert mods[key] == (pytest.approx(data) if data is not None else None), key


def test_new_1lbb_signal_gives_the_hand_written_patch() -> None:
    from heparch.reinterpret.generate import patch_for
    from heparch.reinterpret.signal import check

    ws, patches = _lbb()
    itf = derive(ws, patches, likelihood="BkgOnly.json")
    signals = read(DATA / "lbb_new_signal.yaml")
    assert check(itf, signals.points, "lbb_new_signal.yaml") == []
    generated = patch_for(itf, signals.points[0])
    _assert_same_patch(generated.ops, json.loads((DATA / "lbb_new_signal_patch.json").read_text()))
    assert any(d.name == "SigTheoRad" and d.region == "SRHMEM_mct2" for d in generated.dropped)  # no input: dropped, and said


@pytest.mark.slow
def test_new_1lbb_signal_agrees_with_pyhf_on_its_hand_written_patch(one_lbb_bundle: Path, tmp_path: Path) -> None:
    """The CLI on the 1Lbb bundle (fast engine) against pyhf's CLs of the hand-written patch (golden, made by
    tests/golden/make_reinterpret_golden.py); the written PatchSet holds the hand-written patch."""
    import pyhf

    out = tmp_path / "ps.json"
    code, stdout, err = run(
        "reinterpret", str(one_lbb_bundle), "--signal", str(DATA / "lbb_new_signal.yaml"), "--jobs", "1", "--patchset-out", str(out), "--json"
    )
    assert code == 0, err
    patchset = pyhf.PatchSet(json.loads(out.read_text()))
    _assert_same_patch(patchset["new_hand_1"].patch, json.loads((DATA / "lbb_new_signal_patch.json").read_text()))
    golden = json.loads(GOLDEN.read_text())
    got = json.loads(stdout)["points"]["new_hand_1"]
    assert got["CLs_obs"] == pytest.approx(golden["CLs_obs"], rel=1e-3, abs=1e-4)
    assert got["CLs_exp"] == pytest.approx(golden["CLs_exp"], rel=1e-3, abs=1e-4)


def test_a_yields_csv_the_csv_module_refuses_is_E100_not_an_internal_error(tmp_path: Path) -> None:
    path = tmp_path / "yields.csv"
    path.write_text('point,channel,bin,yield\n"' + "x" * 200_000 + "\n")  # a field beyond the csv module's 128 kB limit
    with pytest.raises(InferenceInputError, match=r"E100 .*yields\.csv:\d+: not valid CSV: "):
        read(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"points": ' + "[" * 5000 + "]" * 5000 + "}", "nesting 5001 deep, deeper than 64"),  # was RecursionError, exit 3
        ('{"points": [{"name": "p", "regions": {"SR": {"yield": [1' + "0" * 400 + ", 1.0]}}}]}", "outside +-(2^53 - 1)"),  # was OverflowError, exit 3
    ],
    ids=["deep", "huge integer"],
)
def test_a_yields_json_that_is_not_strict_json_is_an_input_error(text: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "yields.json"
    path.write_text(text)
    with pytest.raises(InputError, match=r"yields\.json: not valid JSON: ") as exc:
        read(path)
    assert reason in str(exc.value)
