"""A progress bar on stderr for long runs (replay, claim).

On a terminal it redraws one line (``\\r``) at most ten times a second; elsewhere (CI logs)
it prints a line at every tenth of the work and at the end, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``update(done, failed)`` as work completes; ``close()`` at the end."""

    def __init__(self, total: int, what: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.what = what
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_step = -1
        self._line = ""

    def _text(self, done: int, failed: int) -> str:
        frac = done / self.total
        filled = round(frac * self.width)
        elapsed = time.monotonic() - self.start
        eta = f", ~{elapsed / done * (self.total - done):.0f} s left" if 0 < done < self.total else ""
        fails = f", {failed} failed" if failed else ""
        return f"{self.what} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}{fails} ({elapsed:.1f} s{eta})"

    def update(self, done: int, failed: int = 0) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or done >= self.total:
                self._line = self._text(done, failed)
                self.stream.write("\r" + self._line)
                self.stream.flush()
                self._last_draw = now
        else:
            step = done * 10 // self.total
            if step != self._last_step:
                self._last_step = step
                self.stream.write(self._text(done, failed) + "\n")

    def message(self, text: str) -> None:
        """A line of its own (a failure as it arrives), without breaking the bar."""
        if self.tty and self._line:
            self.stream.write("\r" + " " * len(self._line) + "\r")
        self.stream.write(text + "\n")
        if self.tty and self._line:
            self.stream.write(self._line)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._line:
            self.stream.write("\n")
            self.stream.flush()
