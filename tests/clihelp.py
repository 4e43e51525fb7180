"""Run the CLI in-process and capture its exit code, stdout and stderr."""

from __future__ import annotations

import contextlib
import io
import re
import sys

from heparch.cli.main import main


def run(*args: str) -> tuple[int, str, str]:
    err = io.StringIO()
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    code = 0
    old = sys.stdout
    sys.stdout = stdout
    try:
        with contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout = old
    stdout.flush()
    return code, stdout.buffer.getvalue().decode("utf-8", "replace"), err.getvalue()  # type: ignore[attr-defined]


#: the lines an elapsed-time step writes in a log once it has run 2 s (heparch.cli._progress.status):
#: a loaded machine makes any command slow enough to print them before its error
_PROGRESS = re.compile(r".* \.\.\.$|.*: (done in|stopped after) [0-9.]+ s$|.*: still running \([0-9]+ s\)$")


def first_line(err: str) -> str:
    """The first line of ``err`` that is not an elapsed-time progress line (the error, a warning)."""
    return next((line for line in err.strip().splitlines() if not _PROGRESS.fullmatch(line)), "")
