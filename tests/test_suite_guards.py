"""The suite's own guards (tests/conftest.py): a memory limit, timeouts, deterministic property tests.

Each guard is shown to bite: a runaway allocation, a hang and a non-deterministic or deadline-free
property test, run in a separate pytest under the same conftest, each fail that one test only.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MEMORY_LIMIT, SHARED

HERE = Path(__file__).resolve().parent

GUARDED = """
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@given(st.integers())
def test_default_profile_passes(n):
    assert isinstance(n, int)


@settings(derandomize=False)
@given(st.integers())
def test_random_property(n):
    pass


@settings(deadline=None)
@given(st.integers())
def test_property_without_deadline(n):
    pass


@pytest.mark.timeout(2)
def test_hang():
    while True:
        pass


def test_runaway_memory():
    hoard = []
    while True:
        hoard.append(bytearray(2**24))
"""


def test_memory_limit_is_set_for_this_process() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    assert soft != resource.RLIM_INFINITY
    assert soft <= MEMORY_LIMIT
    with pytest.raises(MemoryError):
        bytearray(soft + 2**20)


@pytest.mark.slow
def test_guards_turn_hangs_runaways_and_random_property_tests_into_failures(tmp_path: Path) -> None:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_guarded.py").write_text(GUARDED)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 60\n")
    env = {**os.environ, "HEPARCH_TEST_MEMORY_GIB": "1", "HEPARCH_SHARED_DATA": str(SHARED)}  # the copied conftest looks beside tmp_path
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "--tb=line", "-o", "console_output_style=classic", "test_guarded.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED test_guarded.py::test_default_profile_passes" in out
    # a property test with bad settings fails in its setup (pytest reports an error), before any example
    assert "test_guarded.py::test_random_property: property tests need derandomize=True" in out
    assert "test_guarded.py::test_property_without_deadline: property tests need a deadline (a timedelta, not None)" in out
    assert "FAILED test_guarded.py::test_hang - Failed: Timeout" in out
    assert "FAILED test_guarded.py::test_runaway_memory - MemoryError" in out
    assert "2 failed, 1 passed, 2 errors" in out


NEEDS_SHARED = """
import json

from conftest import SHARED


def test_reads_real_data():
    json.loads((SHARED / "atlas-1lbb-ins1755298" / "BkgOnly.json").read_text())


def test_plain_failure_stays_a_failure():
    open("/nonexistent-heparch-file")
"""


def _run_needing_shared(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_needs_shared.py").write_text(NEEDS_SHARED)
    clean = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "--tb=line", "test_needs_shared.py"],
        cwd=tmp_path,
        env={**clean, "HEPARCH_SHARED_DATA": str(tmp_path / "no-such-dir"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_absent_shared_data_skips_with_the_reason_outside_ci(tmp_path: Path) -> None:
    proc = _run_needing_shared(tmp_path)
    out = proc.stdout
    assert "SKIPPED" in out, out
    assert "shared real data not present" in out, out
    assert "BkgOnly.json" in out, out
    # an unrelated missing file is still a failure
    assert "FAILED test_needs_shared.py::test_plain_failure_stays_a_failure" in out, out
    assert "1 failed, 1 skipped" in out, out


def test_absent_shared_data_stops_the_run_under_ci(tmp_path: Path) -> None:
    proc = _run_needing_shared(tmp_path, CI="true")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error: nothing ran, nothing skipped
    assert "the shared real data is missing" in proc.stderr, proc.stderr
