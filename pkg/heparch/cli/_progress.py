"""Progress on stderr for the long commands, drawn by rich (only the CLI imports rich).

Two shapes:

- :class:`Progress`, a bar for work counted in units (points, samples, signals). It is shown
  from the moment the command starts (a spinner and the elapsed time while the total is not
  known yet, e.g. while a bundle is read and its points planned), so no command starts silently;
  the time left appears once rich can estimate it (never "~0 s left" after one point).
- :func:`status`, an elapsed-time line around one long step whose internals give no count (a
  pyhf computation, a build, a verification).

On a terminal both are redrawn in place and leave the screen as they found it, apart from the
bar's last state. Elsewhere (CI logs, a file) a bar prints one plain line at every tenth of the
work and at the end; a status that runs for :data:`LOG_DELAY` seconds prints ``WHAT ...`` then,
``WHAT: still running (N s)`` every :data:`HEARTBEAT` seconds after that, and ``WHAT: done in
N s`` (or ``stopped after N s`` when it raised) at its end, so a log says what a silent minute is
spent on, a quick step leaves no lines, and a CI runner that kills a job after ten minutes without
output does not kill a long pyhf fit. ``--quiet`` silences both; messages (a failure as it
arrives) are printed either way. The library reports progress through
callbacks (``on_result``, ``on_progress``, ...) and never imports rich.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

import rich.progress
import typer
from rich.console import Console

if TYPE_CHECKING:
    from collections.abc import Iterator

#: in a log, a stage's or a status's lines start after this many seconds (a quick simplify or
#: verification leaves none)
LOG_DELAY = 2.0
#: in a log, a status still running says so this often (seconds): within the ten minutes without
#: output after which some CI runners (CircleCI, Travis) kill a job, a dozen lines an hour
HEARTBEAT = 300.0

QUIET = typer.Option(False, "--quiet", "-q", help="No progress display on stderr (results, warnings and errors are still printed).")


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (the redrawn display); not a log or a pipe."""
    return bool(getattr(stream, "isatty", lambda: False)())


def _console(stream: TextIO) -> Console:
    return Console(file=stream, force_terminal=True, highlight=False)


class Progress:
    """``start(total)`` once the amount of work is known (or give ``total`` at once),
    ``update(done, failed)`` as work completes, ``message(text)`` for a line of its own,
    ``close()`` at the end."""

    def __init__(self, total: int | None, what: str, *, stream: TextIO | None = None, quiet: bool = False, delay: float = 0.0) -> None:
        self.what = what
        self.delay = delay
        self.total = total
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = time.monotonic()
        self._work_started = self.started  # the clock of the current count: start() restarts it
        self._last_step = -1
        self._bar: rich.progress.Progress | None = None
        if not quiet and is_terminal(self.stream):
            self._bar = rich.progress.Progress(
                rich.progress.SpinnerColumn(),
                rich.progress.TextColumn("{task.description}"),
                rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(),
                rich.progress.TextColumn("{task.fields[failed]}"),
                rich.progress.TextColumn("elapsed"),
                rich.progress.TimeElapsedColumn(),
                rich.progress.TextColumn("left"),
                rich.progress.TimeRemainingColumn(),  # -:--:-- until rich can estimate it
                console=_console(self.stream),
                redirect_stdout=False,  # results go to stdout untouched; stray stderr lines print above the bar
            )
            self._task = self._bar.add_task(what, total=total, failed="")
            self._bar.start()

    def start(self, total: int, what: str | None = None) -> None:
        """The amount of work is known now (and, optionally, a new description); the count
        starts again from 0 (claim: the audit after the points)."""
        self.total = total
        self.what = what or self.what
        self._last_step = -1
        self._work_started = time.monotonic()  # a second count's elapsed time and estimate are its own
        if self._bar is not None:
            self._bar.reset(self._task, total=total, description=self.what, failed="")

    def update(self, done: int, failed: int = 0) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, failed=f"{failed} failed" if failed else "")
        elif not self.quiet and time.monotonic() - self.started >= self.delay:  # quick work leaves no lines in a log
            total = max(self.total or done, 1)
            step = done * 10 // total
            if step != self._last_step:
                self._last_step = step
                self.stream.write(self._line(done, total, failed) + "\n")
                self.stream.flush()

    def _line(self, done: int, total: int, failed: int) -> str:
        elapsed = time.monotonic() - self._work_started
        # an estimate from a tenth of the work at least: one early point says little
        eta = f", ~{elapsed / done * (total - done):.0f} s left" if total // 10 <= done < total and done >= 2 else ""
        fails = f", {failed} failed" if failed else ""
        return f"{self.what}: {done}/{total}{fails} ({elapsed:.1f} s{eta})"

    def message(self, text: str) -> None:
        """A line of its own (a failure as it arrives), printed above the bar."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextlib.contextmanager
def status(what: str, *, quiet: bool = False, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with ``what`` and the elapsed time while the block runs on a terminal (removed
    when the block ends: the command's result line follows); in a log, the lines of
    :class:`_LoggedStatus`."""
    out = stream or sys.stderr
    if quiet:
        yield
        return
    if not is_terminal(out):
        with _LoggedStatus(what, out, delay=LOG_DELAY, every=HEARTBEAT):
            yield
        return
    line = rich.progress.Progress(
        rich.progress.SpinnerColumn(),
        rich.progress.TextColumn("{task.description}"),
        rich.progress.TimeElapsedColumn(),
        console=_console(out),
        transient=True,
        redirect_stdout=False,
    )
    line.add_task(what, total=None)
    with line:
        yield


class _LoggedStatus:
    """:func:`status` in a log: ``WHAT ...`` once the step has run ``delay`` seconds (at once when
    ``delay`` is 0), ``WHAT: still running (N s)`` every ``every`` seconds after that, and, when a
    start line was printed, ``WHAT: done in N s`` (``stopped after N s`` when the block raised).
    A daemon thread waits and prints; the block's end stops it before the last line."""

    def __init__(self, what: str, stream: TextIO, *, delay: float, every: float) -> None:
        self.what = what
        self.stream = stream
        self.delay = delay
        self.every = every
        self.started = time.monotonic()
        self._ended = threading.Event()
        self._lock = threading.Lock()  # one line at a time; none after the end
        self._said = False
        self._watcher = threading.Thread(target=self._watch, name=f"status: {what}", daemon=True)

    def __enter__(self) -> None:
        if self.delay <= 0:
            self._say(f"{self.what} ...")
        self._watcher.start()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        with self._lock:
            self._ended.set()
        self._watcher.join()
        if self._said:
            verb = "done in" if kind is None else "stopped after"
            self._write(f"{self.what}: {verb} {self._elapsed():.1f} s")

    def _watch(self) -> None:
        if self.delay > 0 and not self._ended.wait(self.delay):
            self._say(f"{self.what} ...")
        while not self._ended.wait(self.every):
            self._say(f"{self.what}: still running ({self._elapsed():.0f} s)")

    def _say(self, line: str) -> None:
        with self._lock:
            if not self._ended.is_set():
                self._said = True
                self._write(line)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


@contextlib.contextmanager
def stages(what: str, *, quiet: bool = False, stream: TextIO | None = None) -> Iterator[Stages]:
    """One bar per named stage of a library operation that reports ``on_progress(stage, done,
    total)`` (simplify: sampling, then signals); the bar of a stage closes when the next begins.
    In a log a stage prints its lines only once it has run for :data:`LOG_DELAY` seconds."""
    tracker = Stages(what, quiet=quiet, stream=stream)
    try:
        yield tracker
    finally:
        tracker.close()


class Stages:
    """The ``on_progress(stage, done, total)`` callback of :func:`stages`: shown from the start
    (a spinner and the elapsed time until the first stage reports)."""

    def __init__(self, what: str, *, quiet: bool, stream: TextIO | None) -> None:
        self.what = what
        self.quiet = quiet
        self.stream = stream
        self.stage: str | None = None
        self.bar = Progress(None, what, stream=stream, quiet=quiet, delay=LOG_DELAY)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            if self.stage is not None:
                self.bar.close()
                self.bar = Progress(total, f"{self.what}: {stage}", stream=self.stream, quiet=self.quiet, delay=LOG_DELAY)
            else:
                self.bar.start(total, f"{self.what}: {stage}")
            self.stage = stage
        self.bar.update(done)

    def close(self) -> None:
        self.bar.close()
