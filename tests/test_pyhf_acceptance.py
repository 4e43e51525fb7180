"""heparch accepts what pyhf 0.7.6 accepts (issue 10, item 1).

The oracle is pyhf itself: the RFC 6902 patches applied in order to the whole workspace
document (``jsonpatch``, as ``pyhf.PatchSet.apply`` does), then ``pyhf.Workspace(doc).model()``
and a ``pyhf.infer.hypotest`` that must return finite values. On each edge case heparch's
verdict (the inference inputs, and ``check_workspace`` / ``check_patch_file`` of build and
verify) must equal the oracle's: refused (an error finding, exit 2) exactly when pyhf cannot
compute the model, accepted otherwise, with the expected W codes for what is unusual. Where
both compute, the fast and pyhf backends agree with pyhf within max(1e-4, 1e-3 x CLs).

The last test builds a HEPData-layout archive after pyhf's description of the ATLAS
SUSY-2018-31 sbottom likelihoods (RegionA/B/C, each BkgOnly.json with patch files that
remove validation-region channels but leave their observations), then runs ``arch build``,
``arch verify`` and ``arch cls`` on its patches.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import json
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from clihelp import run

pytest.importorskip("pyhf")

MU = 1.0
Doc = dict[str, Any]
Patch = list[dict[str, Any]]


def tolerance(cls: float) -> float:
    return max(1e-4, 1e-3 * cls)


def oracle(ws: Doc, patches: list[Patch]) -> list[float] | None:
    """pyhf's CLs [obs, exp -2..+2] at MU, or None when pyhf cannot build or compute the model."""
    import jsonpatch
    import pyhf

    # explicitly (not whatever an earlier test left set), at the tolerance heparch's pyhf backend uses: with
    # SLSQP's default, pyhf stops early on near-degenerate models and q_mu,A comes out 0 (CLs NaN)
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    doc = copy.deepcopy(ws)
    try:
        for ops in patches:
            doc = jsonpatch.apply_patch(doc, ops)
        workspace = pyhf.Workspace(doc)
        model = workspace.model()
        data = workspace.data(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs, exp = pyhf.infer.hypotest(MU, data, model, test_stat="qtilde", return_expected_set=True)
    except Exception:  # any failure of pyhf is the verdict "cannot compute"
        return None
    values = [float(obs), *(float(e) for e in exp)]
    return values if all(math.isfinite(v) for v in values) else None


# ---------------------------------------------------------------------------------------
# edge cases: a small two-channel model, changed one way each


def base() -> Doc:
    normsys = {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {"name": "signal", "data": [1.0, 2.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": [5.0, 4.0], "modifiers": [copy.deepcopy(normsys)]},
                ],
            },
            {"name": "VR", "samples": [{"name": "bkg", "data": [10.0], "modifiers": [copy.deepcopy(normsys)]}]},
        ],
        "observations": [{"name": "SR", "data": [6.0, 5.0]}, {"name": "VR", "data": [11.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


def _sample(ws: Doc, channel: int, data: list[float], modifiers: list[Any] | None = None, name: str = "extra") -> Doc:
    ws["channels"][channel]["samples"].append({"name": name, "data": data, "modifiers": modifiers or []})
    return ws


def _bkg(ws: Doc, data: list[float]) -> Doc:
    ws["channels"][0]["samples"][1]["data"] = data
    return ws


def _signal(ws: Doc, data: list[float]) -> Doc:
    ws["channels"][0]["samples"][0]["data"] = data
    return ws


def _obs(ws: Doc, channel: int, data: list[float]) -> Doc:
    ws["observations"][channel]["data"] = data
    return ws


def _modifier(ws: Doc, modifier: dict[str, Any]) -> Doc:
    ws["channels"][0]["samples"][1]["modifiers"].append(modifier)
    return ws


def _parameters(ws: Doc, parameters: list[dict[str, Any]]) -> Doc:
    ws["measurements"][0]["config"]["parameters"] = parameters
    return ws


def _shapefactor_channel(ws: Doc) -> Doc:
    ws["channels"].append(
        {"name": "CR", "samples": [{"name": "bkg", "data": [20.0, 30.0], "modifiers": [{"name": "sf", "type": "shapefactor", "data": None}]}]}
    )
    ws["observations"].append({"name": "CR", "data": [22.0, 28.0]})
    return ws


def _free_bkg_with_negative(ws: Doc, negative: list[float], observed: list[float]) -> Doc:
    """A free normfactor on the background and a fixed negative sample: fits can reach rates <= 0."""
    ws["channels"][0]["samples"][1]["modifiers"].append({"name": "k", "type": "normfactor", "data": None})
    return _obs(_sample(ws, 0, negative), 0, observed)


REMOVE_VR: Patch = [{"op": "remove", "path": "/channels/1"}]


@dataclasses.dataclass(frozen=True)
class Case:
    make: Callable[[], Doc]
    computes: bool  # what pyhf does (test_verdict_equals_pyhf checks it against pyhf)
    patches: tuple[Patch, ...] = ()
    warns: frozenset[str] = frozenset()  # W codes heparch reports when it accepts


def ok(make: Callable[[], Doc], *warns: str, patches: tuple[Patch, ...] = ()) -> Case:
    return Case(make, True, patches, frozenset(warns))


def bad(make: Callable[[], Doc]) -> Case:
    return Case(make, False)


CASES: dict[str, Case] = {
    "plain": ok(base),
    "removed_channel_observation_left": ok(base, "W009", patches=(REMOVE_VR,)),
    "observation_of_no_channel": ok(lambda: {**base(), "observations": [*base()["observations"], {"name": "gone", "data": [3.0]}]}, "W009"),
    "channel_observed_twice": ok(lambda: {**base(), "observations": [*base()["observations"], {"name": "VR", "data": [12.0]}]}, "W009"),
    "channel_without_observation": bad(lambda: {**base(), "observations": base()["observations"][:1]}),
    "negative_yield_positive_total": ok(lambda: _sample(base(), 0, [-1.0, -0.5]), "W010"),
    "negative_yield_negative_total": bad(lambda: _sample(base(), 0, [-6.0, -0.5])),
    "negative_total_nothing_observed": bad(lambda: _obs(_sample(base(), 1, [-12.0]), 1, [0.0])),
    "negative_yield_zero_total_zero_observed": ok(lambda: _obs(_sample(_bkg(base(), [5.0, 1.0]), 0, [0.0, -1.0]), 0, [6.0, 0.0]), "W010"),
    "negative_yield_zero_total_observed": bad(lambda: _sample(_bkg(base(), [5.0, 1.0]), 0, [0.0, -1.0])),
    "negative_signal_yield": ok(lambda: _sample(base(), 0, [0.5, -0.4], [{"name": "mu", "type": "normfactor", "data": None}], "signal2"), "W010"),
    "negative_total_reachable_in_fit": ok(lambda: _free_bkg_with_negative(base(), [-2.0, -2.0], [6.0, 5.0]), "W010"),
    "negative_total_near_zero": ok(lambda: _free_bkg_with_negative(base(), [-4.5, -3.5], [1.0, 1.0]), "W010"),
    "negative_total_reachable_where_nothing_observed": ok(lambda: _free_bkg_with_negative(base(), [-1.0, -2.5], [6.0, 0.0]), "W010"),
    "zero_background_nothing_observed": ok(lambda: _obs(_bkg(base(), [5.0, 0.0]), 0, [6.0, 0.0])),
    "empty_bin": ok(lambda: _obs(_signal(_bkg(base(), [5.0, 0.0]), [1.0, 0.0]), 0, [6.0, 0.0])),
    "zero_background_bin_with_staterror_and_shapesys": ok(
        lambda: _obs(
            _modifier(
                _modifier(_bkg(base(), [5.0, 0.0]), {"name": "st", "type": "staterror", "data": [0.5, 0.0]}),
                {"name": "ss", "type": "shapesys", "data": [1.0, 0.0]},
            ),
            0,
            [6.0, 0.0],
        )
    ),
    "zero_background_observed": bad(lambda: _bkg(base(), [5.0, 0.0])),
    "negative_observation": bad(lambda: _obs(base(), 1, [-1.0])),
    "fixed_parameter": ok(lambda: _parameters(base(), [{"name": "bkg_norm", "fixed": True, "inits": [0.5]}])),
    "shapefactor_only_channel": ok(lambda: _shapefactor_channel(base())),
    "unused_measurement_parameter": ok(lambda: _parameters(base(), [{"name": "not_a_modifier", "bounds": [[0.0, 5.0]]}]), "W011"),
    "negative_shapesys_uncertainty": ok(lambda: _modifier(base(), {"name": "ss", "type": "shapesys", "data": [-1.0, 1.0]})),
    "negative_staterror_uncertainty": ok(lambda: _modifier(base(), {"name": "st", "type": "staterror", "data": [-1.0, 1.0]})),
    "bounds_inverted": bad(lambda: _parameters(base(), [{"name": "bkg_norm", "bounds": [[3.0, -3.0]]}])),
    "initial_value_outside_bounds": bad(lambda: _parameters(base(), [{"name": "bkg_norm", "inits": [7.0]}])),
    "default_initial_value_outside_given_bounds": bad(lambda: _parameters(base(), [{"name": "bkg_norm", "bounds": [[1.0, 3.0]]}])),
    "lumi_without_configuration": bad(lambda: _modifier(base(), {"name": "lumi", "type": "lumi", "data": None})),
    "lumi_configured": ok(lambda: _parameters(_modifier(base(), {"name": "lumi", "type": "lumi", "data": None}), [LUMI])),
    "modifier_repeated_in_a_sample": ok(lambda: _modifier(base(), {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.5, "lo": 0.5}})),
    "modifier_name_reused_across_kinds": bad(lambda: _modifier(base(), {"name": "bkg_norm", "type": "normfactor", "data": None})),
    "poi_not_a_modifier": bad(lambda: {**base(), "measurements": [{"name": "meas", "config": {"poi": "nope", "parameters": []}}]}),
}


@functools.cache
def case_oracle(name: str) -> tuple[float, ...] | None:
    """:func:`oracle` of ``CASES[name]``, computed once per test session."""
    case = CASES[name]
    found = oracle(case.make(), list(case.patches))
    return None if found is None else tuple(found)


def _write(tmp_path: Path, case: Case) -> tuple[Path, list[Path]]:
    ws_file = tmp_path / "ws.json"
    ws_file.write_text(json.dumps(case.make()))
    files = []
    for k, ops in enumerate(case.patches):
        files.append(tmp_path / f"patch.p{k}.json")
        files[-1].write_text(json.dumps(ops))
    return ws_file, files


def _cls_args(ws_file: Path, patch_files: list[Path], backend: str) -> list[str]:
    args = ["cls", str(ws_file), "--mu", str(MU), "--backend", backend, "--json"]
    for f in patch_files:
        args += ["--patch", str(f)]
    return args


def _heparch_verdict(ws_file: Path, patch_files: list[Path]) -> tuple[bool, set[str]]:
    """(accepted, W codes) of ``arch cls`` with the fast backend: exit 0 or 2, nothing else."""
    code, _out, err = run(*_cls_args(ws_file, patch_files, "fast"))
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error: "), err
        assert err.count("\n") == 1, err  # one line naming the problem
    return code == 0, set(re.findall(r"^warning: (W\d{3}) ", err, flags=re.MULTILINE))


def _checker_verdict(case: Case) -> tuple[bool, set[str]]:
    """(accepted, W codes) of the checks ``arch build`` and ``arch verify`` run. A workspace
    with no patches is the model itself, so its POI must be a modifier (``require_poi``);
    a patched one must have it anyway (E064)."""
    from heparch.components.patchset import PatchChecker, apply_patch, check_patch_file
    from heparch.components.workspace import check_workspace, unused_parameters

    ws = case.make()
    findings = check_workspace(ws, location="ws.json", require_poi=not case.patches)
    doc, used = ws, set()
    for k, ops in enumerate(case.patches):
        if any(f.severity == "error" for f in findings):
            break
        checker = PatchChecker(doc)
        findings += check_patch_file(ops, doc, location=f"patch{k}.json", likelihood_location="ws.json", checker=checker)
        used |= checker.used
        doc, _ = apply_patch(doc, ops)
    used |= PatchChecker(ws).used
    codes = {f.code for f in findings if f.severity == "warning"} | {code for code, _p, _m in unused_parameters(ws, used)}
    return not any(f.severity == "error" for f in findings), codes


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_equals_pyhf(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    expected = case_oracle(name)
    assert (expected is not None) == case.computes, "the table says otherwise"
    ws_file, patch_files = _write(tmp_path, case)
    accepted, codes = _heparch_verdict(ws_file, patch_files)
    assert accepted == (expected is not None), f"heparch {'accepts' if accepted else 'refuses'}, pyhf {'computes' if expected else 'cannot compute'}"
    if accepted:
        assert codes == set(case.warns)
    checked, check_codes = _checker_verdict(case)
    assert checked == (expected is not None)
    if checked:
        assert check_codes == set(case.warns)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.computes))
@pytest.mark.parametrize("backend", ["fast", "pyhf"])
def test_backends_agree_with_pyhf(name: str, backend: str, tmp_path: Path) -> None:
    case = CASES[name]
    expected = case_oracle(name)
    assert expected is not None
    ws_file, patch_files = _write(tmp_path, case)
    code, out, err = run(*_cls_args(ws_file, patch_files, backend))
    assert code == 0, err
    for w in case.warns:
        assert f"warning: {w}" in err
    got = json.loads(out)
    values = [got["CLs_obs"], *got["CLs_exp"]]
    for g, e in zip(values, expected, strict=True):
        assert abs(g - e) <= tolerance(e), (values, expected)


# ---------------------------------------------------------------------------------------
# a HEPData-layout archive after the ATLAS SUSY-2018-31 sbottom likelihoods

REGIONS = ("RegionA", "RegionB", "RegionC")
POINTS = {"sbottom_900_250_60": 1.0, "sbottom_1300_205_60": 0.25}
LUMI = {"name": "lumi", "auxdata": [1.0], "bounds": [[0.915, 1.085]], "inits": [1.0], "sigmas": [0.017]}


def _channel(name: str, ttbar: list[float], z: list[float], other: list[float]) -> Doc:
    stat = {"name": f"staterror_{name}", "type": "staterror", "data": [0.05 * t + 0.3 for t in ttbar]}
    return {
        "name": name,
        "samples": [
            {
                "name": "ttbar",
                "data": ttbar,
                "modifiers": [
                    {"name": "mu_ttbar", "type": "normfactor", "data": None},
                    {"name": "ttbar_theory", "type": "normsys", "data": {"hi": 1.12, "lo": 0.9}},
                    stat,
                ],
            },
            {
                "name": "z",
                "data": z,
                "modifiers": [
                    {"name": "mu_z", "type": "normfactor", "data": None},
                    {"name": "jes", "type": "histosys", "data": {"hi_data": [1.06 * v for v in z], "lo_data": [0.95 * v for v in z]}},
                ],
            },
            {"name": "other", "data": other, "modifiers": [{"name": "lumi", "type": "lumi", "data": None}]},
        ],
    }


def sbottom_region(k: int) -> tuple[Doc, dict[str, Patch]]:
    """Region k's background-only workspace (two control regions, a three-bin signal region and
    two validation regions, observed) and its patches, which add the signal to the control
    and signal regions and remove the validation-region channels but not their observations."""
    s = 1.0 + 0.3 * k
    channels = [
        _channel("CRtt_cuts", [120.0 * s], [8.0], [3.0]),
        _channel("CRz_cuts", [6.0], [90.0 * s], [2.0]),
        _channel("SR_metsigST", [4.0 * s, 2.5, 1.2], [3.0, 1.5 * s, 0.6], [0.8, 0.4, 0.2]),
        _channel("VRtt_cuts", [60.0 * s], [5.0], [1.5]),
        _channel("VRz_cuts", [4.0], [45.0 * s], [1.0]),
    ]
    if k == 1:  # a data-driven estimate with a negative yield, the background rate stays > 0 (W010)
        channels[2]["samples"].append({"name": "fakes", "data": [0.3, -0.2, 0.1], "modifiers": []})
    observed = {"CRtt_cuts": [131.0 + 10 * k], "CRz_cuts": [97.0 + 8 * k], "SR_metsigST": [9.0, 4.0 + k, 2.0], "VRtt_cuts": [70.0], "VRz_cuts": [52.0]}
    ws = {
        "channels": channels,
        "observations": [{"name": n, "data": d} for n, d in observed.items()],
        "measurements": [{"name": "NormalMeasurement", "config": {"poi": "mu_SIG", "parameters": [LUMI, {"name": "mu_SIG", "bounds": [[0.0, 10.0]]}]}}],
        "version": "1.0.0",
    }
    patches = {}
    for name, strength in POINTS.items():
        ops: Patch = [{"op": "remove", "path": "/channels/4"}, {"op": "remove", "path": "/channels/3"}]
        for ci, yields in ((0, [0.4]), (1, [0.2]), (2, [2.0, 3.5, 1.5])):
            signal = {
                "name": name,
                "data": [strength * (1 + 0.2 * k) * y for y in yields],
                "modifiers": [
                    {"name": "mu_SIG", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "signal_theory", "type": "normsys", "data": {"hi": 1.08, "lo": 0.93}},
                ],
            }
            ops.append({"op": "add", "path": f"/channels/{ci}/samples/-", "value": signal})
        patches[name] = ops
    return ws, patches


@pytest.fixture(scope="module")
def sbottom_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sbottom") / "sbottom"
    for k, region in enumerate(REGIONS):
        ws, patches = sbottom_region(k)
        (root / region).mkdir(parents=True)
        (root / region / "BkgOnly.json").write_text(json.dumps(ws, indent=1))
        for name, ops in patches.items():
            (root / region / f"patch.{name}.json").write_text(json.dumps(ops, indent=1))
    (root / "README.md").write_text("JSON likelihoods for a sbottom multi-b search: RegionA, RegionB and RegionC.\n")
    return root


@pytest.fixture(scope="module")
def sbottom_bundle(sbottom_archive: Path) -> Path:
    out = sbottom_archive.parent / "sbottom.zst"
    code, _out, err = run("build", str(sbottom_archive), "-o", str(out))
    assert code == 0, err
    assert "E0" not in err
    assert re.search(r"W009 RegionA/patch\.sbottom_\d+_\d+_\d+\.json:.*observation 'VRtt_cuts' names no channel", err), err
    for region in REGIONS:  # one W009 per likelihood, counting the rest (real archives have hundreds of patch files)
        assert len(re.findall(rf"warning: W009 {region}/patch\.", err)) == 1, err
    assert "(and 3 more in 2 patch file(s) of this likelihood)" in err
    assert "W010 RegionB/BkgOnly.json" in err
    assert "W011" not in err  # mu_SIG is configured in BkgOnly.json and added by the patches
    return out


def test_sbottom_archive_verifies(sbottom_bundle: Path) -> None:
    code, out, err = run("verify", str(sbottom_bundle))
    assert code == 0, out + err
    assert "W009" in out + err
    assert "E064" not in out + err


#: one point runs in the default suite (RegionB: removed channels and a negative yield); all under -m slow
SBOTTOM_CASES = [
    pytest.param(region, point, marks=() if (region, point) == ("RegionB", "sbottom_900_250_60") else pytest.mark.slow)
    for region in REGIONS
    for point in sorted(POINTS)
]


@pytest.mark.parametrize(("region", "point"), SBOTTOM_CASES)
def test_sbottom_cls_agrees_with_pyhf(region: str, point: str, sbottom_archive: Path, sbottom_bundle: Path) -> None:
    ws_file = sbottom_archive / region / "BkgOnly.json"
    patch_file = sbottom_archive / region / f"patch.{point}.json"
    expected = oracle(json.loads(ws_file.read_text()), [json.loads(patch_file.read_text())])
    assert expected is not None
    runs = {
        "bundle, fast": ("cls", str(sbottom_bundle), "--likelihood", f"{region}/BkgOnly.json", "--point", point, "--backend", "fast", "--json"),
        "bundle, pyhf": ("cls", str(sbottom_bundle), "--likelihood", f"{region}/BkgOnly.json", "--point", point, "--backend", "pyhf", "--json"),
        "files, default backend": ("cls", str(ws_file), "--patch", str(patch_file), "--json"),
    }
    for what, args in runs.items():
        code, out, err = run(*args)
        assert code == 0, f"{what}: {err}"
        assert "warning: W009" in err, what
        got = json.loads(out)
        assert "W009" in {w["code"] for w in got["input"]["warnings"]}, what  # --json carries them too
        values = [got["CLs_obs"], *got["CLs_exp"]]
        for g, e in zip(values, expected, strict=True):
            assert abs(g - e) <= tolerance(e), (what, values, expected)


# ---------------------------------------------------------------------------------------
# random models with negative yields: the verdict and the numbers equal pyhf's


@st.composite
def negative_yield_models(draw: st.DrawFn) -> Doc:
    """One channel of 1-3 bins: a signal, a background (with a free normfactor half the time)
    and a sample whose yields are often negative, so the background rate may be > 0, 0 or < 0."""
    nbins = draw(st.integers(1, 3))

    def yields(lo: float, hi: float) -> list[float]:
        return [round(draw(st.floats(lo, hi)), 2) for _ in range(nbins)]

    modifiers: list[dict[str, Any]] = [{"name": "n1", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}}]
    if draw(st.booleans()):
        modifiers.append({"name": "k", "type": "normfactor", "data": None})
    samples = [
        {"name": "signal", "data": yields(0.0, 5.0), "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
        {"name": "bkg", "data": yields(0.5, 10.0), "modifiers": modifiers},
        {"name": "negative", "data": yields(-8.0, 2.0), "modifiers": [{"name": "n2", "type": "normsys", "data": {"hi": 1.3, "lo": 0.7}}]},
    ]
    observed = [float(draw(st.integers(0, 12))) for _ in range(nbins)]
    return {
        "channels": [{"name": "SR", "samples": samples}],
        "observations": [{"name": "SR", "data": observed}],
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(
    max_examples=25,
    derandomize=True,
    deadline=datetime.timedelta(seconds=60),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each example runs pyhf
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ws=negative_yield_models())
def test_random_negative_yield_models_match_pyhf(ws: Doc, tmp_path: Path) -> None:
    from heparch.analysis import resolve
    from heparch.errors import FitError, InputError
    from heparch.infer.backends import prepare

    expected = oracle(ws, [])
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(ws))
    try:
        _choice, model = prepare(resolve(path), "fast")
        result = model.cls(MU)
    except InputError:
        assert expected is None, "heparch refuses a model pyhf computes"
        return
    except FitError:  # said so, with the reason, rather than a number
        return
    assert expected is not None, "heparch computes a model pyhf cannot"
    for got, want in zip([result.observed, *result.expected], expected, strict=True):
        assert abs(got - want) <= tolerance(want), ([result.observed, *result.expected], expected)
