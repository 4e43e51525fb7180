"""The conformance vectors of conformance/1.0: heparch's verifier, the runner and the generator.

Every vector is verified in-process (fast) and must give exactly its expected verdict and
codes; conformance/run.py is run once against the installed CLI, and once against a broken
stand-in to show it notices failures; make_vectors.py --check proves the committed vectors
are what the generator makes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from heparch.spec.codes import CODES
from heparch.trust import parse_policy
from heparch.verify import verify

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "conformance"
SUITE = CONFORMANCE / "1.0"
VECTORS = sorted(p.parent for p in SUITE.glob("*/*/expected.json"))

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
    missing = sorted(set(CODES) - covered)
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
