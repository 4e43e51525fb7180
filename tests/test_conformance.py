"""The conformance vectors of conformance/1.0: heparch's verifier, the runner and the generator.

Every vector is verified in-process (fast) and must give exactly its expected verdict and
codes; conformance/run.py is run once against the installed CLI, and once against a broken
stand-in to show it notices failures; make_vectors.py --check proves the committed vectors
are what the generator makes.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from heparch.signing.trust import parse_policy
from heparch.spec.codes import CODES
from heparch.verify import verify

from clihelp import run

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "conformance"
SUITE = CONFORMANCE / "1.0"
VECTORS = sorted(p.parent for p in SUITE.glob("*/*/expected.json"))
TOOLS = CONFORMANCE / "tools"
TOOL_VECTORS = sorted(p.parent for p in TOOLS.glob("*/*/expected.json"))

#: known deviations of heparch's verifier from a vector: the codes it reports besides the expected ones
ALSO_REPORTED: dict[str, set[str]] = {}
#: known bugs: the vector is right, heparch is not (yet); each is an xfail(strict=True)
KNOWN_BUGS: dict[str, str] = {}


def _id(vector: Path) -> str:
    return f"{vector.parent.name}/{vector.name}"


def _params() -> list[Any]:
    out: list[Any] = []
    for v in VECTORS:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[_id(v)])] if _id(v) in KNOWN_BUGS else []
        out.append(pytest.param(v, id=_id(v), marks=marks))
    return out


def _expected(vector: Path) -> dict[str, Any]:
    return json.loads((vector / "expected.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("vector", _params())
def test_vector(vector: Path) -> None:
    expected = _expected(vector)
    trust = parse_policy(expected["trust"], vector / "expected.json") if "trust" in expected else None  # PROTOCOL.md section 2
    result = verify(vector / "bundle.zst", level=expected["level"], trust=trust)
    lines = [f.one_line() for f in result.report.findings]
    assert result.valid is expected["valid"], lines
    codes = set(result.report.codes()) - ALSO_REPORTED.get(_id(vector), set())
    assert codes == set(expected["codes"]), lines
    if "identity" in expected:
        assert result.identity == expected["identity"]


def test_known_deviations_still_exist() -> None:
    for name, extra in ALSO_REPORTED.items():
        expected = _expected(SUITE / name)
        reported = set(verify(SUITE / name / "bundle.zst").report.codes())
        assert extra <= reported, f"{name}: heparch no longer reports {sorted(extra)}; remove it from ALSO_REPORTED"
        assert extra.isdisjoint(expected["codes"])


def test_suite_shape() -> None:
    kinds = {kind: [v for v in VECTORS if v.parent.name == kind] for kind in ("valid", "warn", "invalid")}
    assert len(kinds["valid"]) >= 10
    assert len(kinds["invalid"]) >= 30
    assert kinds["warn"]
    assert {p.name for p in SUITE.iterdir() if p.is_dir()} == set(kinds)
    total = 0
    for v in VECTORS:
        assert sorted(p.name for p in v.iterdir()) == ["README.md", "bundle.zst", "expected.json"], v
        expected = _expected(v)
        codes = expected["codes"]
        assert isinstance(codes, list)
        assert codes == sorted(set(codes)), v
        assert all(c in CODES for c in codes), v
        assert expected["level"] == "full"
        assert expected["valid"] is (v.parent.name != "invalid")
        prefix = v.name.split("_", 1)[0]
        if v.parent.name == "valid":
            assert prefix == "OK", v
            assert codes == [], v
        else:
            assert prefix in codes, f"{v.name}: named after {prefix}, which is not among its codes {codes}"
            assert all(c.startswith("E" if v.parent.name == "invalid" else "W") for c in codes), v
            assert all(c in (v / "README.md").read_text(encoding="utf-8") for c in codes), v
        size = (v / "bundle.zst").stat().st_size
        assert size <= 200_000, f"{v.name}: {size} bytes"
        total += sum(p.stat().st_size for p in v.iterdir())
    assert total < 2_000_000


def test_every_validation_code_has_a_vector() -> None:
    covered = {c for v in VECTORS for c in _expected(v)["codes"]}
    # the import profile's codes (spec 8.1) are about archives arch build reads, and the signal-input
    # codes (spec 8.2) about the yields files arch reinterpret reads, never about a bundle:
    # tests/test_import.py and tests/test_reinterpret.py produce each of them
    missing = sorted(c for c in set(CODES) - covered if CODES[c][1] not in ("import-profile", "signal-inputs"))
    assert not missing, f"add a conformance vector (conformance/make_vectors.py) for {missing}"


def _stream(bundle: Path) -> bytes:
    import zstandard

    with bundle.open("rb") as fh:
        return zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.parent.name != "invalid"], ids=_id)
def test_valid_vectors_are_bagit_bags(vector: Path, tmp_path: Path) -> None:
    bagit = pytest.importorskip("bagit")
    with tarfile.open(fileobj=io.BytesIO(_stream(vector / "bundle.zst"))) as tf:
        assert all(m.isfile() for m in tf.getmembers())
        tf.extractall(tmp_path, filter="data")
    bagit.Bag(str(tmp_path / "bundle")).validate()


def _runner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CONFORMANCE / "run.py"), *args], capture_output=True, text=True, timeout=600, check=False)


def test_runner_against_the_cli() -> None:
    picks = [
        SUITE / "valid" / "OK_patchset",
        SUITE / "warn" / "W001_unknown_fields_newer_minor",
        SUITE / "invalid" / "E011_symlink",
        SUITE / "invalid" / "E067_third_moment",
    ]
    done = _runner("--impl", f"{sys.executable} -m heparch.cli.main", *map(str, picks))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS ") == 4
    assert "4 vectors: 4 passed, 0 failed" in done.stdout


def test_runner_notices_a_wrong_implementation(tmp_path: Path) -> None:
    lax = tmp_path / "lax.py"
    lax.write_text('import json\nprint(json.dumps({"valid": True, "findings": []}))\n')
    done = _runner("--impl", f"{sys.executable} {lax}", str(SUITE / "valid" / "OK_minimal_workspace"), str(SUITE / "invalid" / "E012_dotdot"), "-j", "1")
    assert done.returncode == 1
    assert "PASS valid/OK_minimal_workspace" in done.stdout
    assert "FAIL invalid/E012_dotdot: exit code 0, expected 1" in done.stdout
    assert "missing codes ['E012']" in done.stdout
    assert "2 vectors: 1 passed, 1 failed" in done.stdout


def test_runner_usage_error_without_vectors(tmp_path: Path) -> None:
    done = _runner(str(tmp_path))
    assert done.returncode == 2
    assert "no vectors found" in done.stderr


def test_generator_check_is_clean() -> None:
    done = subprocess.run([sys.executable, str(CONFORMANCE / "make_vectors.py"), "--check"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


# --- tool vectors (conformance/tools): hostile arch.yaml for build, hostile targets for extract


def _prepare_target(kind: str, target: Path, tmp: Path) -> Callable[[], None]:
    """Put ``kind`` (tools/README.md) at ``target``; return the check that it is as it was after the run."""
    if kind == "symlink-to-empty-directory":
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        target.symlink_to(elsewhere)
        return lambda: (target.is_symlink() and Path(os.readlink(target)) == elsewhere and not any(elsewhere.iterdir())) or pytest.fail("target changed")
    if kind == "dangling-symlink":
        nowhere = tmp / "nowhere"
        target.symlink_to(nowhere)
        return lambda: (target.is_symlink() and not os.path.lexists(nowhere)) or pytest.fail("written through the dangling link")
    if kind == "existing-file":
        target.write_bytes(b"keep\n")
        return lambda: (target.is_file() and target.read_bytes() == b"keep\n") or pytest.fail("file changed")
    if kind == "non-empty-directory":
        target.mkdir()
        (target / "keep.txt").write_bytes(b"keep\n")
        return lambda: [p.name for p in target.iterdir()] == ["keep.txt"] or pytest.fail("directory changed")
    raise AssertionError(f"unknown target kind {kind!r}: add it here and to TARGETS in make_vectors.py")


@pytest.mark.parametrize("vector", TOOL_VECTORS, ids=_id)
def test_tool_vector(vector: Path, tmp_path: Path) -> None:
    expected = _expected(vector)
    work = tmp_path / "work"
    work.mkdir()
    if expected["command"] == "build":
        out = work / "out.zst"
        code, _, err = run("build", str(vector / "source"), "-o", str(out))
        assert not any(work.iterdir()), "build wrote something"
    elif expected["command"] == "import":
        (archive,) = [p for p in vector.iterdir() if p.name not in ("README.md", "expected.json")]
        code, _, err = run("build", str(archive), "-o", str(work / "out.zst"))
        assert not any(work.iterdir()), "build wrote something"
    elif expected["command"] == "trust":
        code, _, err = run("verify", str(CONFORMANCE / expected["bundle"]), "--trust", str(vector / "policy.yaml"))
    else:
        target = work / "target"
        unchanged = _prepare_target(expected["target"], target, tmp_path)
        code, _, err = run("extract", str(CONFORMANCE / expected["bundle"]), "-o", str(target))
        unchanged()
        assert [p.name for p in work.iterdir()] == ["target"], "a staging directory or another file was left"
    assert code == expected["exit"], err
    assert re.search(expected["stderr"], err), err
    assert len(err.strip().splitlines()) == 1, err


def test_tool_vectors_shape() -> None:
    kinds = {v.parent.name for v in TOOL_VECTORS}
    assert kinds == {"build", "extract", "import", "trust"}
    for v in TOOL_VECTORS:
        expected = _expected(v)
        assert expected["command"] == v.parent.name
        files = sorted(str(p.relative_to(v)) for p in v.rglob("*") if p.is_file())
        extra = {"build": ["source/BkgOnly.json", "source/arch.yaml"], "trust": ["policy.yaml"]}.get(expected["command"], [])
        if expected["command"] == "import":
            extra = [p.name for p in v.iterdir() if p.suffix in (".gz", ".zip")]
            assert len(extra) == 1, v
        assert files == sorted(["README.md", "expected.json", *extra]), v
        if expected["command"] in ("extract", "trust"):
            assert verify(CONFORMANCE / expected["bundle"]).valid


# --- cost vectors (VECTORS.md, "Cost classes"): counters, and a hang guard; times are in the benchmark

#: valid/OK_simplified_1200_bins is left to test_vector: it has no counter to check here, and costs seconds
COST = ["valid/OK_blob_referenced_1024_times", "invalid/E018_blob_referenced_5000_times", "invalid/E064_patch_of_6000_operations", "valid/OK_zero_blob_64mib"]
COST += ["invalid/E017_huge_declared_blob", "invalid/E060_component_nested_100000", "invalid/E030_manifest_nested_100000", "invalid/E042_head_entries_at_caps"]
COST += ["invalid/E018_bag_info_over_64mib"]


@pytest.mark.parametrize("name", COST)
def test_cost_vector_follows_the_cost_model(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each distinct blob is checked once, a failing patch is located in O(log n) prefixes (spec section 5.1)."""
    from heparch import semantic
    from heparch.components import patchset as patchsets

    costs = semantic.Costs()
    checkers: list[patchsets.PatchChecker] = []
    real_check, real_init = semantic.check_components, patchsets.PatchChecker.__init__

    def counted(*args: Any, **kwargs: Any) -> Any:
        return real_check(*args, **{**kwargs, "costs": costs})

    def tracked(self: patchsets.PatchChecker, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        checkers.append(self)

    monkeypatch.setattr(semantic, "check_components", counted)
    monkeypatch.setattr(patchsets.PatchChecker, "__init__", tracked)
    start = time.perf_counter()
    result = verify(SUITE / name / "bundle.zst")
    assert time.perf_counter() - start < 60.0  # a hang guard only (a few seconds on the reference machine)
    assert set(result.report.codes()) == set(_expected(SUITE / name)["codes"])
    assert max(costs.checked.values(), default=1) == 1
    if name.endswith("_1024_times"):
        assert sum(costs.checked.values()) == 2  # the workspace and the patchset, not 1,025 checks
    if name.endswith("_5000_times"):
        assert sum(costs.checked.values()) == 0  # refused from the manifest: no blob checked
    if "6000_operations" in name:
        assert 0 < sum(c.prefixes_checked for c in checkers) <= 2 + math.ceil(math.log2(6000))
