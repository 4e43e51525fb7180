"""Shared test fixtures (paths to ../shared/data, a small analysis directory) and the suite's guards.

The guards keep one bad test from taking the run down with it:

* memory: the test process (and every process it starts) may hold at most ``HEPARCH_TEST_MEMORY_GIB``
  GiB (default 6) of data segment (``RLIMIT_DATA``: heap and private writable mappings, what a runaway
  list or array grows), so a runaway test raises ``MemoryError`` instead of being killed by the kernel;
* time: every test has a timeout (pytest-timeout, ``timeout`` in ``pyproject.toml``), property tests a
  shorter one, so a hang fails that test;
* property tests are deterministic: the ``heparch`` hypothesis profile (derandomised, no example
  database, a deadline per example, bounded examples) is the default, and a test whose own settings
  undo any of that fails before it runs;
* progress: the elapsed-time lines a slow step writes in a log after 2 s (``heparch.cli._progress``)
  are off outside tests/test_progress.py, so a loaded machine cannot put them before the one line a
  test expects on stderr;
* real data: tests read ../shared/data (``HEPARCH_SHARED_DATA`` overrides the path). Where it is
  absent, a test that fails because a file under it is missing is reported as skipped with the
  reason, except under CI (``CI`` set), where the run stops at once: a path error must not turn the
  real-data tests into silent skips.
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

MEMORY_LIMIT = int(float(os.environ.get("HEPARCH_TEST_MEMORY_GIB", "6")) * 2**30)
PROPERTY_TEST_TIMEOUT = 300  # seconds for a whole property test (all its examples)
MAX_EXAMPLES = 200


def _limit_memory(limit: int) -> None:
    """Lower the soft data-segment limit to ``limit`` bytes (never raise it; the hard limit stays)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


_limit_memory(MEMORY_LIMIT)

settings.register_profile(
    "heparch",
    derandomize=True,  # the same examples on every run: CI must not depend on luck
    database=None,  # and not on what an earlier run found
    deadline=datetime.timedelta(seconds=20),
    max_examples=50,
    print_blob=False,
)
settings.load_profile("heparch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every property test the property-test timeout unless it names its own."""
    for item in items:
        if _hypothesis_settings(item) is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PROPERTY_TEST_TIMEOUT))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a property test whose settings are not deterministic, unbounded, or without a deadline."""
    chosen = _hypothesis_settings(item)
    if chosen is None:
        return
    problems = []
    if not chosen.derandomize:
        problems.append("derandomize=True")
    if chosen.database is not None:
        problems.append("database=None")
    if chosen.deadline is None:
        problems.append("a deadline (a timedelta, not None)")
    if chosen.max_examples > MAX_EXAMPLES:
        problems.append(f"max_examples <= {MAX_EXAMPLES}")
    if problems:
        pytest.fail(f"{item.nodeid}: property tests need " + ", ".join(problems) + " (see tests/conftest.py)", pytrace=False)


@pytest.fixture(autouse=True)
def _no_progress_lines_in_logs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """An elapsed-time step prints its log lines only after ``LOG_DELAY`` seconds, which a loaded
    machine reaches in any command: off for the tests that do not test progress itself."""
    if request.path.name != "test_progress.py":
        monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 1e6)  # finite: it is a thread's wait timeout


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI the real data must be there: stop the run instead of skipping its tests."""
    if os.environ.get("CI") and not SHARED.is_dir():
        raise pytest.UsageError(f"{SHARED}: the shared real data is missing; CI needs ../shared/data beside the checkout (or HEPARCH_SHARED_DATA)")


def _missing_shared_file(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str | None:
    """The missing path under SHARED that made a test fail, where SHARED itself is absent."""
    if excinfo is None or SHARED.is_dir() or not isinstance(excinfo.value, OSError):
        return None
    missing = str(excinfo.value.filename or "")
    return missing if missing.startswith(str(SHARED)) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Report a test that needs the absent ../shared/data as skipped, naming the file (not under CI,
    which stops in :func:`pytest_sessionstart`)."""
    report = yield
    missing = _missing_shared_file(call.excinfo)
    if missing is not None and report.failed:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: shared real data not present ({missing})")
    return report


def _hypothesis_settings(item: pytest.Item) -> settings | None:
    test = getattr(item, "obj", None)
    if not getattr(test, "is_hypothesis_test", False):
        return None
    chosen = getattr(test, "_hypothesis_internal_use_settings", None)
    return chosen if isinstance(chosen, settings) else settings.default


ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HEPARCH_SHARED_DATA") or ROOT.parent / "shared" / "data")
ONE_LBB = SHARED / "atlas-1lbb-ins1755298"
EXAMPLE = ROOT / "fixtures" / "example-analysis"


def small_workspace(obs: float = 5.0) -> dict:
    """A valid two-bin pyhf workspace with a background normsys and staterror."""
    return {
        "channels": [
            {
                "name": "SR",
                "samples": [
                    {
                        "name": "bkg",
                        "data": [10.0, 5.0],
                        "modifiers": [
                            {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                            {"name": "staterror_SR", "type": "staterror", "data": [1.0, 0.5]},
                        ],
                    }
                ],
            }
        ],
        "observations": [{"name": "SR", "data": [11.0, obs]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu_SIG", "parameters": []}}],
        "version": "1.0.0",
    }


def small_patchset(ws: dict) -> dict:
    import pyhf

    patches = []
    for i, (m1, m2) in enumerate([(300, 100), (400, 100), (500, 200)]):
        sample = {"name": "signal", "data": [1.0 + i, 2.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]}
        patches.append({"metadata": {"name": f"pt_{m1}_{m2}", "values": [m1, m2]}, "patch": [{"op": "add", "path": "/channels/0/samples/1", "value": sample}]})
    return {
        "metadata": {"description": "test", "digests": {"sha256": pyhf.utils.digest(ws)}, "labels": ["m1", "m2"], "references": {"hepdata": "ins0000001"}},
        "patches": patches,
        "version": "1.0.0",
    }


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    """A small analysis directory without arch.yaml: one workspace, its patchset, a README."""
    src = tmp_path / "ana"
    src.mkdir()
    ws = small_workspace()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(small_patchset(ws)))
    (src / "README.md").write_text("toy\n")
    return src


@pytest.fixture(scope="session")
def one_lbb_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1Lbb likelihood built once per session."""
    from heparch.build import build

    out = tmp_path_factory.mktemp("lbb") / "1lbb.zst"
    build(ONE_LBB, output=out)
    return out


@pytest.fixture(scope="session")
def example_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example analysis (claims, simplified likelihood) built once per session; copy it before changing it."""
    from heparch.build import build

    out = tmp_path_factory.mktemp("example") / "toy.zst"
    build(EXAMPLE, output=out)
    return out


@pytest.fixture
def pyhf_precise() -> Any:
    """pyhf with the numpy backend and the scipy optimizer at tolerance 1e-10; restored after."""
    pyhf = pytest.importorskip("pyhf")
    before = pyhf.get_backend()
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    yield pyhf
    pyhf.set_backend(*before)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
