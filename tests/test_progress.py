"""Progress on stderr (rich on a terminal, a few plain lines in logs, nothing with --quiet), and
the commands that show it."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import pytest

from heparch.cli._progress import Progress, stages, status

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example-analysis"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_gets_a_line_per_tenth_and_messages_in_between() -> None:
    out = io.StringIO()
    bar = Progress(None, "claim: reading b.zst", stream=out)
    bar.start(200, "replay")
    for done in range(1, 201):
        bar.update(done, failed=1 if done > 50 else 0)
        if done == 60:
            bar.message("FAIL p60: CLs_obs: claimed 0.1, replayed 0.2")
    bar.close()
    lines = out.getvalue().splitlines()
    bars = [line for line in lines if line.startswith("replay: ")]
    assert len(bars) == 11  # the first point, then 10%, 20%, ..., 100%
    assert bars[0].startswith("replay: 1/200 (")
    assert "left" not in bars[0]  # no estimate from one point
    assert "s left)" in bars[5]
    assert bars[-1].startswith("replay: 200/200, 1 failed (")
    assert "FAIL p60: CLs_obs: claimed 0.1, replayed 0.2" in lines


def test_a_second_count_has_its_own_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """claim's audit after its points: the log's elapsed time and estimate start again with start()."""
    now = [100.0]
    monkeypatch.setattr("heparch.cli._progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    bar = Progress(None, "claim", stream=out)
    bar.start(10, "points")
    now[0] += 500.0  # the points took 500 s
    bar.update(10)
    bar.start(10, "audit")
    now[0] += 3.0
    bar.update(5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "points: 10/10 (500.0 s)" in lines
    assert "audit: 5/10 (3.0 s, ~3 s left)" in lines  # not 503 s, nor an estimate from the points' pace


def test_terminal_shows_the_bar_from_the_start_then_the_count() -> None:
    out = _Tty()
    bar = Progress(None, "claim: reading b.zst", stream=out)
    bar._bar.refresh()  # type: ignore[union-attr]  # what the refresh thread draws before any result
    first = out.getvalue()
    assert "claim: reading b.zst" in first
    assert "0/?" in first  # a spinner and the elapsed time, not a silent start
    bar.start(3, "claim")
    for done in (1, 2, 3):
        bar.update(done, failed=1 if done == 3 else 0)
    bar.message("FAIL p3: no convergence")
    bar._bar.refresh()  # type: ignore[union-attr]
    text = out.getvalue()
    assert "3/3" in text
    assert "1 failed" in text
    assert "FAIL p3: no convergence" in text
    bar.start(2, "claim: audit")  # a second stage counts from 0
    bar._bar.refresh()  # type: ignore[union-attr]
    bar.close()
    assert "claim: audit" in out.getvalue()[len(text) :]
    assert "0/2" in out.getvalue()[len(text) :]


def test_quiet_prints_messages_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.0)  # a status would print at once in a log
    for stream in (io.StringIO(), _Tty()):
        bar = Progress(5, "replay", stream=stream, quiet=True)
        for done in range(1, 6):
            bar.update(done)
        bar.message("FAIL p1: why")
        bar.close()
        with status("computing", stream=stream, quiet=True):
            pass
        assert stream.getvalue() == "FAIL p1: why\n"


def test_status_on_a_terminal_is_a_spinner_and_a_quick_one_leaves_a_log_alone() -> None:
    log = io.StringIO()
    with status("CLs at mu=1 (pyhf)", stream=log):
        pass
    assert log.getvalue() == ""  # ended within LOG_DELAY: the log gets the result line alone
    tty = _Tty()
    with status("CLs at mu=1 (pyhf)", stream=tty):
        pass
    assert "CLs at mu=1 (pyhf)" in tty.getvalue()
    assert "0:00:0" in tty.getvalue()  # the elapsed time


_DONE = re.compile(r"^CLs at mu=1 \(pyhf\): done in \d+\.\d s$")


def test_status_in_a_log_says_when_it_starts_and_how_long_it_took(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.0)
    log = io.StringIO()
    with status("CLs at mu=1 (pyhf)", stream=log):
        log.write("a warning meanwhile\n")
    start, warning, end = log.getvalue().splitlines()
    assert start == "CLs at mu=1 (pyhf) ..."
    assert warning == "a warning meanwhile"
    assert _DONE.match(end), end


def test_status_in_a_log_that_raises_says_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.0)
    log = io.StringIO()
    with pytest.raises(KeyboardInterrupt), status("building src", stream=log):
        raise KeyboardInterrupt
    start, end = log.getvalue().splitlines()
    assert start == "building src ..."
    assert re.match(r"^building src: stopped after \d+\.\d s$", end), end


class _Watched(io.StringIO):
    """A log whose lines a test can wait for (the status's thread writes them)."""

    def __init__(self) -> None:
        super().__init__()
        self.wrote = threading.Condition()

    def write(self, text: str) -> int:
        with self.wrote:
            n = super().write(text)
            self.wrote.notify_all()
        return n

    def wait_for(self, part: str) -> None:
        with self.wrote:
            assert self.wrote.wait_for(lambda: part in self.getvalue(), timeout=60), self.getvalue()


def test_status_in_a_log_starts_its_lines_after_the_delay_and_says_it_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread's lines: the start line once the step has run LOG_DELAY, then one every
    HEARTBEAT (tiny here; the step waits for the lines, nothing is timed), none after the end."""
    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.001)
    monkeypatch.setattr("heparch.cli._progress.HEARTBEAT", 0.001)
    log = _Watched()
    with status("CLs at mu=1 (pyhf)", stream=log):
        log.wait_for("CLs at mu=1 (pyhf) ...\n")
        log.wait_for("still running")
    lines = log.getvalue().splitlines()
    assert lines[0] == "CLs at mu=1 (pyhf) ..."
    assert all(re.match(r"^CLs at mu=1 \(pyhf\): still running \(\d+ s\)$", line) for line in lines[1:-1]), lines
    assert len(lines) >= 3
    assert _DONE.match(lines[-1]), lines[-1]
    assert not [t for t in threading.enumerate() if t.name.startswith("status: ")]  # joined: nothing can follow the end line


def test_stages_give_one_bar_each(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    with stages("simplify", stream=out) as on_progress:
        on_progress("sampling", 0, 1000)
    assert out.getvalue() == ""  # done within LOG_DELAY: no lines in a log
    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.0)
    with stages("simplify", stream=out) as on_progress:
        for done in range(0, 1001, 100):
            on_progress("sampling", done, 1000)
        for done in range(4):
            on_progress("signals", done, 3)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("simplify: sampling: 0/1000 (")
    assert any(line.startswith("simplify: sampling: 1000/1000 (") for line in lines)
    assert lines[-1].startswith("simplify: signals: 3/3 (")


def test_simplify_reports_its_stages(tmp_path: Path) -> None:
    """The library's on_progress hook: sampling counts up to --samples, signals to the points."""
    from heparch.simplify import simplify

    example = EXAMPLE
    seen: list[tuple[str, int, int]] = []
    simplify(example / "BkgOnly.json", patchset=example / "patchset.json", samples=2000, seed=1, on_progress=lambda *a: seen.append(a))
    sampling = [s for s in seen if s[0] == "sampling"]
    signals = [s for s in seen if s[0] == "signals"]
    assert sampling[0] == ("sampling", 0, 2000)
    assert sampling[-1] == ("sampling", 2000, 2000)
    assert [d for _, d, _ in sampling] == sorted(d for _, d, _ in sampling)
    assert signals[-1] == ("signals", 35, 35)
    assert seen.index(sampling[-1]) < seen.index(signals[0])


def test_claim_says_what_it_starts(tmp_path: Path) -> None:
    """arch claim says how many points it computes before the first arrives (no silent start),
    then a line per tenth in a log; the result goes to stdout."""
    from heparch import config
    from heparch.build import build

    from clihelp import run
    from conftest import small_patchset, small_workspace

    src = tmp_path / "src"
    src.mkdir()
    ws = small_workspace()
    (src / "BkgOnly.json").write_text(json.dumps(ws))
    (src / "patchset.json").write_text(json.dumps(small_patchset(ws)))
    (src / config.FILENAME).write_text("name: small\ncreated: '2026-01-01T00:00:00Z'\n")
    bundle = tmp_path / "small.zst"
    build(src, output=bundle)
    code, out, err = run("claim", str(bundle), "-o", str(tmp_path / "c.zst"), "--jobs", "1", "--audit", "0")
    assert code == 0, err
    assert "identity sha256:" in out
    assert "identity" not in err
    lines = err.splitlines()
    start = lines.index(f"{bundle}: claiming 3 point(s)")
    bars = [i for i, line in enumerate(lines) if line.startswith("claim: ")]
    assert start < bars[0]
    assert [lines[i].partition(" (")[0] for i in bars] == ["claim: 1/3", "claim: 2/3", "claim: 3/3"]


def test_replay_quiet(tmp_path: Path) -> None:
    """--quiet: no progress lines, the summary still on stdout."""
    from heparch.build import build

    from clihelp import run

    bundle = tmp_path / "toy.zst"
    build(EXAMPLE, output=bundle)
    args = ("replay", str(bundle), "--point", "C1N2_700_0", "--jobs", "1", "--no-simplified")
    code, out, err = run(*args)
    assert code == 0, err
    assert "replay: 1/1 (" in err
    assert "passed 1, failed 0, total 1" in out
    code, out, err = run(*args, "--quiet")
    assert code == 0, err
    assert "replay: " not in err
    assert "passed 1, failed 0, total 1" in out


def test_a_long_step_in_a_log_says_what_it_does_and_how_long_it_took(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """arch cls --backend pyhf in CI: a start line and an end line with the elapsed time around
    the computation (every step counts as long here), the result alone on stdout; --quiet: none."""
    from clihelp import run
    from conftest import small_workspace

    monkeypatch.setattr("heparch.cli._progress.LOG_DELAY", 0.0)
    spec = small_workspace()
    spec["channels"][0]["samples"].append({"name": "sig", "data": [3.0, 3.0], "modifiers": [{"name": "mu_SIG", "type": "normfactor", "data": None}]})
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(spec))
    code, out, err = run("cls", str(ws), "--backend", "pyhf")
    assert code == 0, err
    lines = err.splitlines()
    start = lines.index("CLs at mu=1 of ws.json ...")
    end = [i for i, line in enumerate(lines) if re.match(r"^CLs at mu=1 of ws\.json: done in \d+\.\d s$", line)]
    assert end, err
    assert start < end[0]
    assert out.startswith(f"{ws}: CLs at mu=1 (pyhf backend): observed")
    code, out, err = run("cls", str(ws), "--backend", "pyhf", "--quiet")
    assert code == 0, err
    assert "CLs at mu=1 of ws.json" not in err
    assert out.startswith(f"{ws}: CLs at mu=1 (pyhf backend): observed")


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run ``arch ARGS`` with stderr on a pseudo-terminal (as in an interactive shell) and
    stdout on a pipe: (exit code, stdout, what the terminal showed)."""
    import os
    import subprocess
    import sys

    master, slave = os.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "heparch", *args], stdout=subprocess.PIPE, stderr=slave, text=True, env={**os.environ, "COLUMNS": "300"}
    ) as proc:
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the command has ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.stdout is not None
        out = proc.stdout.read()
        code = proc.wait(timeout=120)
    os.close(master)
    return code, out, shown.decode("utf-8", "replace")


@pytest.mark.slow
def test_verify_shows_an_elapsed_time_line_on_a_terminal_and_the_verdict_on_stdout(tmp_path: Path) -> None:
    from heparch.build import build

    bundle = tmp_path / "toy.zst"
    build(EXAMPLE, output=bundle)
    code, out, shown = _on_a_terminal("verify", str(bundle))
    assert code == 0, shown
    assert f"verifying {bundle} at level full" in shown
    assert "0:00:0" in shown  # the elapsed time
    assert out.startswith(f"{bundle}: valid at level full")
    code, out, shown = _on_a_terminal("verify", str(bundle), "--quiet")
    assert code == 0, shown
    assert "verifying" not in shown
    assert out.startswith(f"{bundle}: valid at level full")
