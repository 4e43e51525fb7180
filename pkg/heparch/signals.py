"""Ctrl-C and SIGTERM: both end a command the same way, through ``finally`` blocks.

Python turns SIGINT into :class:`KeyboardInterrupt`, but SIGTERM by default ends the process
at once, leaving temporary files and worker processes behind. :func:`handled` makes both
raise :class:`Interrupted`, so every exit path runs the same cleanup (a ``BaseException``
like ``KeyboardInterrupt``, which ``except Exception`` does not swallow; and unlike it not
turned into a silent exit 130 by the CLI framework); the CLI prints the interrupt's one line and exits ``128 + signal`` (130 for SIGINT,
143 for SIGTERM). :func:`shielded` ignores further interrupts while a cleanup runs, so a
second Ctrl-C cannot break it half way (nor deadlock it): the cleanup is bounded instead.

>>> Interrupted(signal.SIGTERM).exit_code
143
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Final

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A command stopped by SIGINT or SIGTERM; ``str()`` is the line to print."""

    def __init__(self, signum: int = signal.SIGINT, message: str = "interrupted") -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.message


#: what an interrupted computation catches: Python's own SIGINT exception and heparch's
INTERRUPTS: Final = (KeyboardInterrupt, Interrupted)


def signum_of(exc: BaseException) -> int:
    """The signal an interrupt came from (a plain ``KeyboardInterrupt`` is SIGINT)."""
    return exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)


def _raise(signum: int, frame: FrameType | None) -> None:
    for s in HANDLED:  # the command is on its way out: a second Ctrl-C must not break its cleanup
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (a
    no-op elsewhere); the first one ends the command, so from then on both are ignored while
    its cleanup runs. The previous handlers are restored at the end (the CLI run in-process),
    unless an interrupt came: the process is on its way out, and a restored handler could
    raise again in the last lines of the exit path."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {}
    for signum in HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by whoever started us (nohup): stays so
            before[signum] = signal.signal(signum, _raise)
    try:
        yield
    finally:
        if not any(signal.getsignal(s) is signal.SIG_IGN for s in before):  # after an interrupt they stay ignored until exit
            for signum, handler in before.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """SIGINT and SIGTERM are ignored inside the block (a cleanup that must finish); the
    handlers are restored afterwards. Only the main thread can change them: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, signal.SIG_IGN) for s in HANDLED}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """SIGINT is held (pending, not lost) inside the block: child processes started there
    inherit the mask and so never see a terminal's Ctrl-C before they choose to ignore it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
