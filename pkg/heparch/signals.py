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


#: the interrupt raised by the handler (None before one came): the handler's exception can be
#: lost when the signal lands inside a ``__del__`` or another callback whose exceptions Python
#: only reports, so :func:`check` raises it again at safe points (between points of a replay)
_pending: list[Interrupted] = []
#: a signal that came inside :func:`shielded`, raised when the block ends
_deferred: list[int] = []


def _raise(signum: int, frame: FrameType | None) -> None:
    for s in HANDLED:  # the command is on its way out: a second Ctrl-C must not break its cleanup
        signal.signal(s, signal.SIG_IGN)  # (ignored by the OS, so also while the interpreter shuts down)
    exc = Interrupted(signum)
    _pending.append(exc)
    raise exc


def _defer(signum: int, frame: FrameType | None) -> None:
    _deferred.append(signum)


def interrupted() -> bool:
    """Whether SIGINT or SIGTERM came since :func:`handled` began."""
    return bool(_pending)


def check() -> None:
    """Raise the interrupt again if one came (its first raise may have been swallowed, see
    :data:`_pending`); a no-op otherwise. Call it where stopping is safe."""
    if _pending:
        raise _pending[0]


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (a
    no-op elsewhere); the first one ends the command, so from then on both are ignored while
    its cleanup runs. The previous handlers are restored at the end (the CLI run in-process),
    unless an interrupt came: the process is on its way out, and a restored handler could
    raise again in the last lines of the exit path. A command that ends normally although an
    interrupt came (its exception was swallowed) ends with the interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    _deferred.clear()
    before = {}
    for signum in HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by whoever started us (nohup): stays so
            before[signum] = signal.signal(signum, _raise)
    try:
        yield
        check()
    finally:
        if not _pending:  # after an interrupt they stay ignored until exit
            for signum, handler in before.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """SIGINT and SIGTERM are held back inside the block (a cleanup that must finish) and
    raised when it ends, unless an interrupt is already on its way; the handlers are restored
    afterwards. Only the main thread can change them: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _defer) for s in HANDLED}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        held, _deferred[:] = list(_deferred), []
        if held and before.get(signal.Signals(held[0])) is _raise:
            _raise(held[0], None)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """SIGINT is held (pending, not lost) inside the block: child processes started there
    inherit the mask and so never see a terminal's Ctrl-C before they choose to ignore it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
