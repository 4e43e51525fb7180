"""A declared signal interface (issue 15 item 1): a signal-interface component declared in arch.yaml,
checked against the published patches at build and verify (E082, E083), followed by arch reinterpret."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import heparch
from heparch import semantic
from heparch.build import build
from heparch.components.interface import derive
from heparch.components.signal_interface import Reducer, check_declared, declaration, follow, published_patches
from heparch.extract import extract
from heparch.spec import strictjson
from heparch.spec.components import SignalInterface
from heparch.spec.models import Manifest
from heparch.verify import verify
from test_hardening import manifest_object

from clihelp import run
from conftest import EXAMPLE, ONE_LBB, small_patchset, small_workspace

#: the example's interface, cut down: two of its three regions, no signal systematic (it says less)
LESS = {
    "likelihood": "BkgOnly.json",
    "poi": "mu_SIG",
    "sample_name": "signal",
    "regions": [{"channel": "SR_cat1", "bins": 30}, {"channel": "SR_cat2", "bins": 30}],
}


def _analysis(tmp_path: Path, declared: dict[str, Any]) -> Path:
    """The example analysis with ``declared`` as signal-interface.json, declared in arch.yaml."""
    src = shutil.copytree(EXAMPLE, tmp_path / "analysis")
    (src / "signal-interface.json").write_text(json.dumps(declared, indent=1), "utf-8")
    with (src / "arch.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  - path: signal-interface.json\n    role: signal-interface\n    likelihood: BkgOnly.json\n")
    return src


@pytest.fixture(scope="module")
def declared_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("declared")
    return build(_analysis(tmp, LESS), output=tmp / "declared.zst").output


def test_a_declared_interface_is_a_component_that_verifies_and_round_trips(declared_bundle: Path, tmp_path: Path) -> None:
    with heparch.open(declared_bundle) as b:
        entry = b.manifest.file("signal-interface.json")
        assert (entry.role, entry.likelihood) == ("signal-interface", "BkgOnly.json")
        assert b.read_json("signal-interface.json") == LESS  # the declared file, as written: content
        identity = b.identity
    code, out, err = run("verify", str(declared_bundle))
    assert code == 0, out + err
    out_dir = extract(declared_bundle, tmp_path / "x")
    assert build(out_dir, output=tmp_path / "again.zst").identity == identity


def test_reinterpret_follows_the_declared_interface_and_says_so(declared_bundle: Path) -> None:
    code, out, err = run("reinterpret", str(declared_bundle), "--interface", "--json")
    assert code == 0, err
    itf = json.loads(out)["likelihoods"]["BkgOnly.json"]
    assert itf["source"] == "declared in signal-interface.json (checked against 35 published signal patches)"
    assert [r["channel"] for r in itf["regions"]] == ["SR_cat1", "SR_cat2"]
    assert itf["systematics"] == []
    assert "region 'SR_cat3' in SR_cat3: entered by published signals but not in signal-interface.json: a new signal does not enter it" in itf["dropped"]
    assert "normsys 'sig_theory' in SR_cat1: not in signal-interface.json" in itf["dropped"]
    code, out, _ = run("reinterpret", str(declared_bundle), "--interface")
    assert "likelihood BkgOnly.json: declared in signal-interface.json" in out


def test_the_declared_interface_wins_over_the_derived_one(declared_bundle: Path, tmp_path: Path) -> None:
    """A template of the derived interface (SR_cat3, sig_theory) is refused by the declared one;
    the declared one's template runs and the run names the interface it used."""
    plain = build(EXAMPLE, output=tmp_path / "plain.zst").output
    code, _, err = run("reinterpret", str(plain), "--template", "-o", str(tmp_path / "derived.csv"))
    assert code == 0, err
    code, _, err = run("reinterpret", str(declared_bundle), "--signal", str(tmp_path / "derived.csv"))
    assert code == 2
    assert "E101" in err
    assert "SR_cat3" in err
    code, _, err = run("reinterpret", str(declared_bundle), "--template", "-o", str(tmp_path / "declared.csv"))
    assert code == 0, err
    header = (tmp_path / "declared.csv").read_text().splitlines()[0]
    assert "sig_theory" not in header
    assert {line.split(",")[1] for line in (tmp_path / "declared.csv").read_text().splitlines()[1:]} == {"SR_cat1", "SR_cat2"}
    code, out, err = run("reinterpret", str(declared_bundle), "--signal", str(tmp_path / "declared.csv"), "--jobs", "1", "--json")
    assert code == 0, err
    assert "signal interface declared in signal-interface.json" in err
    assert json.loads(out)["interface"] == "declared in signal-interface.json (checked against 35 published signal patches)"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"regions": [{"channel": "SR_cat1", "bins": 29}]},
            "E083 signal-interface.json:$.regions[0].bins: the published signals enter 'SR_cat1' with 30 bins, not 29",
        ),
        (
            {"systematics": [{"key": "sig_theory", "name": "sig_theory", "type": "histosys"}]},
            "E083 signal-interface.json:$.systematics[0]: the published signals carry 'sig_theory' as normsys",
        ),
        ({"regions": []}, "E082 signal-interface.json:$.regions"),
        ({"likelihood": "other.json"}, "E082 signal-interface.json:$.likelihood: differs from the manifest's annotation"),
    ],
)
def test_a_contradicting_declaration_refuses_the_build(tmp_path: Path, change: dict[str, Any], needle: str) -> None:
    src = _analysis(tmp_path, {**LESS, **change})
    code, out, err = run("build", str(src), "-o", str(tmp_path / "bad.zst"))
    assert code == 2, out + err
    assert needle in err
    assert not (tmp_path / "bad.zst").exists()


# --- the checks, on a one-channel toy ------------------------------------------------------

WS = {
    "channels": [
        {"name": "SR", "samples": [{"name": "b", "data": [4.0, 2.0], "modifiers": [{"name": "stat_SR", "type": "staterror", "data": [0.5, 0.3]}]}]},
        {"name": "CR", "samples": [{"name": "b", "data": [40.0], "modifiers": []}]},
    ],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "observations": [],
    "version": "1.0.0",
}
SIGNAL = {
    "name": "sig",
    "data": [1.0, 0.5],
    "modifiers": [
        {"name": "mu", "type": "normfactor", "data": None},
        {"name": "stat_SR", "type": "staterror", "data": [0.1, 0.1]},
        {"name": "jes", "type": "histosys", "data": {"hi_data": [1.1, 0.6], "lo_data": [0.9, 0.4]}},
    ],
}
PATCHES = {"p1": [{"op": "add", "path": "/channels/0/samples/1", "value": SIGNAL}]}
FULL = {
    "likelihood": "ws.json",
    "poi": "mu",
    "sample_name": "sig",
    "luminosity_ifb": 139,
    "regions": [{"channel": "SR", "bins": 2, "staterror": "stat_SR", "systematics": ["jes"]}],
    "systematics": [{"key": "jes", "name": "jes", "type": "histosys"}],
}


def _problems(**change: Any) -> list[str]:
    return [f"{f.code} {f.location}: {f.message}" for f in check_declared({**FULL, **change}, location="si.json", workspace=WS, patches=PATCHES)]


def test_what_the_patches_show_and_less_are_fine() -> None:
    assert _problems() == []
    assert _problems(regions=[{"channel": "SR", "bins": 2}], systematics=[]) == []
    less = {"likelihood": "ws.json", "regions": [{"channel": "SR", "bins": 2}]}
    assert check_declared(less, location="si.json", workspace=WS, patches=PATCHES) == []


CONTRADICTIONS = [
    ({"poi": "mu_other"}, "E083 si.json:$.poi: no measurement of ws.json has the POI 'mu_other'"),
    ({"sample_name": "signal"}, "E083 si.json:$.sample_name: the published patches add 'sig'"),
    ({"regions": [{"channel": "CR", "bins": 1}]}, "E083 si.json:$.regions[0].channel: no published signal enters 'CR'"),
    ({"regions": [{"channel": "VR", "bins": 1}]}, "E083 si.json:$.regions[0].channel: the likelihood has no channel 'VR'"),
    (
        {"regions": [{"channel": "SR", "bins": 2, "staterror": "stat_other"}]},
        "E083 si.json:$.regions[0].staterror: the published signals in 'SR' share 'stat_SR'",
    ),
    (
        {"regions": [{"channel": "SR", "bins": 2, "systematics": ["jer"]}]},
        "E083 si.json:$.regions[0].systematics[0]: no published signal in 'SR' carries the systematic 'jer'",
    ),
    (
        {"systematics": [{"key": "jer", "name": "jer", "type": "normsys"}]},
        "E083 si.json:$.systematics[0].key: no published signal carries a systematic with the input key 'jer'",
    ),
    ({"regions": [{"channel": "SR", "bins": 2.5}]}, "E082 si.json:$.regions[0].bins"),
    ({"comment": "by hand"}, "W005 si.json:$.comment: field not in the signal-interface schema 1.0.0; it is ignored"),
]


@pytest.mark.parametrize(("change", "expected"), CONTRADICTIONS)
def test_contradictions_are_named(change: dict[str, Any], expected: str) -> None:
    found = _problems(**change)
    assert len(found) == 1, found
    assert found[0].startswith(expected)


def test_without_published_patches_it_cannot_be_checked() -> None:
    found = check_declared(FULL, location="si.json", workspace=WS, patches={})
    assert [f.code for f in found] == ["E083"]
    assert "no published signal patch" in found[0].message


@pytest.mark.parametrize("folder", [EXAMPLE, ONE_LBB], ids=["example", "1Lbb"])
def test_everything_the_patches_show_checks_clean_and_follows_to_the_same_interface(folder: Path) -> None:
    """The declaration of a derived interface (real patches: 1Lbb's histosys and normsys keys,
    staterrors, control regions) contradicts nothing, and following it changes nothing."""
    ws = json.loads((folder / "BkgOnly.json").read_text("utf-8"))
    patches = {p["metadata"]["name"]: p["patch"] for p in json.loads((folder / "patchset.json").read_text("utf-8"))["patches"]}
    derived = derive(ws, patches, likelihood="BkgOnly.json", luminosity_ifb=139.0)
    declared = declaration(derived)
    assert check_declared(declared, location="si.json", workspace=ws, patches=patches) == []
    followed = follow(derived, SignalInterface.from_json(declared), "si.json")
    assert followed.to_json() | {"source": None, "declared": None} == derived.to_json() | {"source": None, "declared": None}
    assert followed.declared == "si.json"


# --- full verification parses a likelihood's workspace and patchsets once (issue 12) --------
# The declaration is checked against what the likelihood's own check kept of them (reduced:
# names, types, nominal rates), not against a second parse.


def _counted_parses(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Parses of JSON text by the semantic checks, by the sha256 hex of the text: strictjson.loads
    and the streamed patchset parser (semantic.ObjectStream)."""
    parses: Counter[str] = Counter()
    real_loads = strictjson.loads

    def loads(data: bytes, **kwargs: Any) -> Any:
        parses[hashlib.sha256(data).hexdigest()] += 1
        return real_loads(data, **kwargs)

    class CountedStream(semantic.ObjectStream):
        def __init__(self, data: bytes, key: str, **kwargs: Any) -> None:
            parses[hashlib.sha256(data).hexdigest()] += 1
            super().__init__(data, key, **kwargs)

    monkeypatch.setattr(strictjson, "loads", loads)
    monkeypatch.setattr(semantic, "ObjectStream", CountedStream)
    return parses


def _counted_costs(monkeypatch: pytest.MonkeyPatch) -> semantic.Costs:
    """The cost counters of the next check_components calls (as test_cost counts them)."""
    costs = semantic.Costs()
    real = semantic.check_components
    monkeypatch.setattr(semantic, "check_components", lambda *a, **k: real(*a, **{**k, "costs": costs}))
    return costs


def test_verify_parses_the_workspace_and_patchset_once_with_a_declared_interface(declared_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with heparch.open(declared_bundle) as b:
        hexes = {e.role: e.hex for e in b.manifest.files if e.role in ("likelihood", "patchset", "signal-interface")}
    parses, costs = _counted_parses(monkeypatch), _counted_costs(monkeypatch)
    result = verify(declared_bundle)
    assert result.report.valid, result.report.codes()
    assert {role: parses[h] for role, h in hexes.items()} == {"likelihood": 1, "patchset": 1, "signal-interface": 1}
    assert {role: costs.checked[h] for role, h in hexes.items()} == {"likelihood": 1, "patchset": 1, "signal-interface": 1}


def _toy_files(declared: dict[str, Any]) -> tuple[dict[str, tuple[bytes, str, dict[str, str]]], dict[str, Any], dict[str, Any], list[Any]]:
    """Two likelihoods of the same blobs (workspace, patchset, a patch file named per likelihood);
    only the second (a1) has a declared interface. Also the workspace, patchset and patch file."""
    ws = small_workspace()
    ps = small_patchset(ws)
    extra = {"name": "signal", "data": [1.0, 1.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
    extra["modifiers"].append({"name": "jes", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}})
    ops = [{"op": "add", "path": "/channels/0/samples/1", "value": extra}]
    files: dict[str, tuple[bytes, str, dict[str, str]]] = {}
    for a in ("a0", "a1"):
        files[f"{a}/BkgOnly.json"] = (json.dumps(ws).encode(), "likelihood", {})
        files[f"{a}/ps.json"] = (json.dumps(ps).encode(), "patchset", {"likelihood": f"{a}/BkgOnly.json"})
        files[f"{a}/p.json"] = (json.dumps(ops).encode(), "patch", {"likelihood": f"{a}/BkgOnly.json", "patch.name": f"extra_{a}"})
    files["a1/si.json"] = (json.dumps(declared).encode(), "signal-interface", {"likelihood": "a1/BkgOnly.json"})
    return files, ws, ps, ops


@pytest.mark.parametrize(
    "change", [{}, {"systematics": [{"key": "jes", "name": "jes", "type": "histosys"}]}, {"poi": "mu_other"}], ids=["clean", "E083", "poi"]
)
def test_the_kept_patches_give_the_findings_of_the_parsed_ones(change: dict[str, Any]) -> None:
    """A likelihood's blobs checked once for two paths (the first without an interface) still keep
    what the second's interface reads; patch files are named as the manifest names them."""
    _files, ws, ps, ops = _toy_files({})
    patches = published_patches([ps], [("extra_a1", ops)])
    declared = {**declaration(derive(ws, patches, likelihood="a1/BkgOnly.json")), **change}
    files, *_ = _toy_files(declared)
    expected = check_declared(declared, location="a1/si.json", workspace=ws, patches=patches)
    costs = semantic.Costs()
    manifest = Manifest.from_json(strictjson.loads(strictjson.canonical(manifest_object(files))))
    by_hex = {hashlib.sha256(data).hexdigest(): data for data, _r, _n in files.values()}
    found = semantic.check_components(manifest, lambda e: by_hex[e.hex], costs=costs)
    assert [f for f in found if f.location.startswith("a1/si.json")] == expected
    assert [f.code for f in expected] == ([] if not change else ["E083"])
    assert sorted(costs.checked.values()) == [1, 1, 1, 1]  # workspace, patchset, patch file, declaration


@pytest.mark.parametrize("folder", [EXAMPLE, ONE_LBB], ids=["example", "1Lbb"])
def test_the_reduced_likelihood_and_patches_derive_the_same_interface(folder: Path) -> None:
    ws = json.loads((folder / "BkgOnly.json").read_text("utf-8"))
    patchset = json.loads((folder / "patchset.json").read_text("utf-8"))
    reducer = Reducer()
    full = derive(ws, published_patches([patchset], []), likelihood="BkgOnly.json")
    reduced = derive(reducer.workspace(ws), published_patches([reducer.patchset(patchset)], []), likelihood="BkgOnly.json")
    assert reduced == full


@pytest.mark.parametrize(("change", "expected"), CONTRADICTIONS)
def test_the_reduced_toy_gives_the_same_findings(change: dict[str, Any], expected: str) -> None:
    reducer = Reducer()
    patches = {name: reducer.ops(ops) for name, ops in PATCHES.items()}
    found = check_declared({**FULL, **change}, location="si.json", workspace=reducer.workspace(WS), patches=patches)
    got = [f"{f.code} {f.location}: {f.message}" for f in found]
    assert got == _problems(**change)
    assert got[0].startswith(expected)
