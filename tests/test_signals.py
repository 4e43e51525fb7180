"""Ctrl-C and SIGTERM (issue 11 item 6): ``arch replay`` stops its own workers (no process of
its group is left, checked through /proc), writes the ``--resume`` state, prints one line and
exits 130 / 143; a second Ctrl-C does not deadlock; on Dask only this run's futures and client go."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heparch.build import build
from heparch.replay import core, executor

from conftest import EXAMPLE

LINE = re.compile(r"^interrupted: (\d+) of (\d+) points done; state in (.+); rerun with --resume (.+)$")
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "toy.zst"
    build(EXAMPLE, output=out)
    return out


def group(pgid: int) -> dict[int, tuple[str, int, str]]:
    """Every process of process group ``pgid``: pid -> (state, parent pid, command line)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            found[int(name)] = (fields[0], int(fields[1]), cmdline)
    return found


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Orphans of the command (e.g. multiprocessing's resource tracker, which outlives its parent
    by a moment) become children of this process, so they can be waited for and counted: this
    machine's pid 1 does not reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def left_behind(pgid: int, seconds: float = 10.0) -> dict[int, tuple[str, int, str]]:
    """The processes of ``pgid`` still there after ``seconds``; the exited ones adopted by this
    process (see :func:`subreaper`) are reaped meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        rest = group(pgid)
        for pid, (state, parent, _) in list(rest.items()):
            if state == "Z" and parent == os.getpid():
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                del rest[pid]
        if not rest or time.monotonic() > deadline:
            return rest
        time.sleep(0.1)


def _sigint_as_from_a_terminal() -> None:
    """In the child before exec: SIGINT's default action, as a command started from a terminal
    has it. A suite run in the background of a non-interactive shell inherits SIGINT ignored,
    and heparch keeps an inherited SIG_IGN (a background job must not take a terminal's Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(toy: Path, *args: str) -> subprocess.Popen[str]:
    """``arch replay`` in a new session, so that its process group can be signalled as a terminal does."""
    command = [sys.executable, "-m", "heparch", "replay", str(toy), *args]
    return subprocess.Popen(
        command, start_new_session=True, preexec_fn=_sigint_as_from_a_terminal, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def workers(pid: int) -> list[int]:
    return [p for p, (_, parent, cmd) in group(pid).items() if parent == pid and "spawn_main" in cmd]


def points_in(state: Path) -> int:
    try:
        return len(json.loads(state.read_bytes())["points"])
    except (OSError, ValueError, KeyError):
        return 0


def one_line(err: str) -> str:
    """The interrupt's line: the last of stderr, the only one of its kind, no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert sum("interrupted" in line for line in lines) == 1, err
    return lines[-1]


@pytest.mark.slow
def test_ctrl_c_twice_to_the_group_stops_the_workers_and_the_state_resumes(toy: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with subreaper():
        # the signal lands while the state file is being written (shielded): held, then raised
        proc = start(toy, "--jobs", "2", "--backend", "fast", "--resume", str(state))
        wait_for(lambda: points_in(state) >= 1, 120, "the first point in the state file")
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # a second Ctrl-C while it stops
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert left_behind(proc.pid) == {}
    match = LINE.match(one_line(err))
    assert match, err
    done, total = int(match[1]), int(match[2])
    assert match[3] == match[4] == str(state)
    assert 1 <= done < total == 35
    kept = json.loads(state.read_bytes())["points"]
    assert done <= len(kept) <= done + 1  # every point counted is kept (one more if the signal came between keeping and counting it)
    report = core.replay(toy, backend="fast", jobs=1, resume=state)  # the rest, quickly
    assert len(report.points) == 35
    assert all(p.passed for p in report.points)
    after = json.loads(state.read_bytes())["points"]
    assert len(after) == 35
    assert all(after[k] == v for k, v in kept.items())  # the points of the first run were not computed again


@pytest.mark.slow
def test_sigterm_to_the_parent_terminates_pyhf_workers_without_waiting(toy: Path, tmp_path: Path) -> None:
    """pyhf takes seconds to minutes a point: the workers are terminated, not waited for."""
    state = tmp_path / "state.json"
    with subreaper():
        proc = start(toy, "--jobs", "2", "--backend", "pyhf", "--resume", str(state))
        wait_for(lambda: len(workers(proc.pid)) == 2, 120, "two workers")
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # to the parent only
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
        assert proc.returncode == 143, err
        assert left_behind(proc.pid) == {}
    assert LINE.match(one_line(err)), err
    assert took < executor.STOP_SECONDS + 5
    assert json.loads(state.read_bytes())["format"] == core.STATE_FORMAT  # written even before a point arrived


def test_ctrl_c_with_one_job(toy: Path, tmp_path: Path) -> None:
    with subreaper():
        proc = start(toy, "--jobs", "1", "--backend", "pyhf")
        assert proc.stderr is not None
        first = proc.stderr.readline()  # "...: replaying 35 point(s)": the command runs (not still importing Python)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, first + err
        assert left_behind(proc.pid) == {}
    assert "replaying" in first
    assert re.match(r"^interrupted: \d+ of 35 points done; none kept \(run with --resume FILE", one_line(err)), err


@pytest.mark.slow
def test_closing_the_results_early_stops_the_local_workers(toy: Path) -> None:
    """What core.run does on any early exit: closing execute() terminates and reaps the pool."""
    plan = core.plan(toy, backend="fast")
    results = executor.execute(plan.contexts, plan.tasks, jobs=2)
    first = next(results)
    assert first.error is None
    import multiprocessing

    alive = multiprocessing.active_children()
    assert alive  # the pool's workers
    start_close = time.monotonic()
    results.close()
    assert time.monotonic() - start_close < executor.STOP_SECONDS + 5
    assert not any(p.is_alive() for p in alive)
    assert [p for p in multiprocessing.active_children() if p in alive] == []


def test_dask_interrupt_cancels_this_runs_futures_and_closes_only_its_client(toy: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="Dask distributed is in the test extra")
    plan = core.plan(toy, backend="fast")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as other,
    ):
        results = executor.execute(plan.contexts, plan.tasks, scheduler=cluster.scheduler_address)
        assert next(results).error is None
        clients = set(cluster.scheduler.clients)
        assert len(clients) >= 3  # the scheduler's own, the other user's, this run's
        results.close()  # what an interrupt does to the iterator
        wait_for(lambda: len(cluster.scheduler.clients) == len(clients) - 1, 30, "this run's client to close")
        wait_for(lambda: not cluster.scheduler.tasks, 30, "this run's futures to be released")
        assert len(cluster.scheduler.workers) == 1  # the workers stay
        assert other.submit(sum, [1, 2]).result(timeout=30) == 3  # and the other user's client still works


@pytest.fixture
def own_handlers() -> Iterator[None]:
    """An interrupt leaves SIGINT and SIGTERM ignored (the CLI process is on its way out): give
    this test process its handlers back."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (see _sigint_as_from_a_terminal)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


@pytest.mark.usefixtures("own_handlers")
def test_an_interrupt_whose_exception_was_swallowed_is_raised_again() -> None:
    """A signal landing inside a ``__del__`` (or any callback whose exceptions Python only
    reports) loses the handler's exception; the command must still stop, not run on with the
    signals ignored: signals.check() raises it again between points, and at the end."""
    from heparch import signals

    with pytest.raises(signals.Interrupted) as info, signals.handled():  # noqa: PT012  (the swallowing is the point)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)  # the handler runs here...
        except signals.Interrupted:
            pass  # ...and its exception is swallowed, as an unraisable one would be
        assert signals.interrupted()
        os.kill(os.getpid(), signal.SIGINT)  # a second signal while stopping: ignored
        signals.check()
    assert info.value.exit_code == 143


@pytest.mark.usefixtures("own_handlers")
def test_a_signal_inside_a_shielded_block_is_raised_after_it() -> None:
    from heparch import signals

    done = []
    with pytest.raises(signals.Interrupted), signals.handled():  # noqa: PT012
        with signals.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            done.append("cleanup finished")
        done.append("not reached")
    assert done == ["cleanup finished"]
