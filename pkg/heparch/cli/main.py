"""The ``arch`` (also ``heparch``) command: one typer app, one file per command.

Errors are caught in exactly one place, :func:`main`: a :class:`HeparchError`
prints its diagnostics and exits with its documented code (spec/exit-codes.md);
anything else is an internal error (exit 3), with the traceback only when
``HEPARCH_DEBUG=1``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import traceback
import warnings
from typing import Any, Final, NoReturn

import typer
import typer.core
import typer.main
from typer import _click as click  # typer vendors click

from heparch import __version__, signals
from heparch.cli import (
    cmd_build,
    cmd_claim,
    cmd_cls,
    cmd_diff,
    cmd_export,
    cmd_extract,
    cmd_init,
    cmd_inspect,
    cmd_reinterpret,
    cmd_replay,
    cmd_sign,
    cmd_simplify,
    cmd_verify,
)
from heparch.errors import EXIT_INTERNAL, EXIT_USAGE, HeparchError

HELP_OPTIONS = ["-h", "--help"]

app = typer.Typer(
    name="arch",
    help="heparch: pack, verify and replay published particle-physics likelihoods.\n\n"
    "Typical use: arch init analysis/ ; arch build analysis/ -o bundle.zst ; arch verify bundle.zst ; arch inspect bundle.zst",
    no_args_is_help=True,
    add_completion=True,  # arch --install-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": HELP_OPTIONS},
    rich_markup_mode=None,  # click's plain help: paragraphs rewrapped to the terminal, no boxes (rich kept the docstrings' line breaks)
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"heparch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """heparch: pack, verify and replay published particle-physics likelihoods."""


for module in (
    cmd_init,
    cmd_build,
    cmd_verify,
    cmd_inspect,
    cmd_diff,
    cmd_extract,
    cmd_export,
    cmd_cls,
    cmd_claim,
    cmd_replay,
    cmd_reinterpret,
    cmd_sign,
    cmd_simplify,
):
    module.register(app)


class _Argument(typer.core.TyperArgument):
    """An argument whose help shows its name (the metavar: BUNDLE, INPUT) and no Python type."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None


def _metavars(command: Any) -> None:
    """Help texts show metavars, not Python types (typer 0.29 prints ``<bool>``, ``<path>``,
    ``<list[str]>``): a flag shows none, another option without an explicit one shows its name
    in capitals (``--jobs JOBS``, ``--test-stat TEST_STAT``, as argparse does), an argument its own name."""
    for param in command.params:
        if isinstance(param, typer.core.TyperArgument):
            param.__class__ = _Argument
        elif param.param_type_name == "option" and param.metavar is None:
            param.metavar = "" if getattr(param, "is_flag", False) else _name(param.opts)
    help_option = command.get_help_option(click.core.Context(command, help_option_names=HELP_OPTIONS))
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _metavars(sub)


def _name(opts: list[str]) -> str:
    """``--poi-bounds`` -> ``POI_BOUNDS``: the longest option name, as argparse names its metavars."""
    return max(opts, key=len).lstrip("-").replace("-", "_").upper()


@functools.cache
def command() -> typer.core.TyperGroup:
    """The click command of :data:`app`, with the help's metavars (used by :func:`main`, the CLI
    reference and the tests)."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    _metavars(group)
    return group


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        # numpy's floating-point warnings (overflow, invalid value) on extreme inputs are not for
        # the user: a number that is not finite is refused where it is used, in one line
        with signals.handled(), warnings.catch_warnings():  # SIGINT and SIGTERM end every command through its cleanup: exit 130 / 143
            warnings.simplefilter("ignore", RuntimeWarning)
            command()(args=argv, prog_name=os.path.basename(sys.argv[0]) or "arch", standalone_mode=True)
    except HeparchError as exc:
        _fail(f"error: {flagged(exc)}", exc.exit_code)
    except SystemExit as exc:
        if exc.code == 1 and _reader_gone():
            sys.exit(0)  # `arch ls | head`: the reader has gone, which is not an error; print nothing more
        raise
    except OSError as exc:  # disk full, permission denied, ...: the environment, not a heparch bug
        _fail(f"error: {_environment_problem(exc)}", EXIT_USAGE)
    except signals.INTERRUPTS as exc:  # one line (what was done, how to go on where the command knows)
        _fail(str(exc) or "interrupted", 128 + signals.signum_of(exc))
    except Exception as exc:  # the one place internal errors are turned into exit 3
        _internal_error(exc)


#: parameters whose command-line flag is not ``--`` and the parameter's name with dashes
FLAGS: Final = {"out": "-o", "normsys": "--normsys-interp", "histosys": "--histosys-interp", "patches": "--patch"}


def flag_of(option: str) -> str:
    """``poi_bounds`` -> ``--poi-bounds``, ``out`` -> ``-o``: the flag of a library parameter."""
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def flagged(exc: HeparchError) -> str:
    """The error's diagnostics as the CLI says them: a message about a parameter (``exc.option``)
    names its flag where the library names the parameter, at the start or after a location
    (``backend 'x': ...`` -> ``--backend 'x': ...``, ``ps.json: point 'x' is ...`` -> ``ps.json:
    --point 'x' is ...``) and in hints (``use backend=pyhf`` -> ``use --backend pyhf``)."""
    text = exc.diagnostics()
    if exc.option is None:
        return text
    flag = flag_of(exc.option)
    text = re.sub(rf"\b{re.escape(exc.option)}=", f"{flag} ", text)
    # the parameter's own place only (its first): a value or path that is the same word stays as written
    return re.sub(rf"(^|: ){re.escape(exc.option)}(?=[ :])", rf"\g<1>{flag}", text, count=1)


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then the exit code."""
    typer.echo(message, err=True)
    sys.exit(code)


def _environment_problem(exc: OSError) -> str:
    """``FILE: No space left on device``: the file (where the error names one) and the system's words."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _internal_error(exc: Exception) -> NoReturn:
    """A bug: its one line (the traceback too with HEPARCH_DEBUG set), exit 3."""
    if os.environ.get("HEPARCH_DEBUG"):
        traceback.print_exc()
    _fail(f"internal error: {type(exc).__name__}: {exc} (set HEPARCH_DEBUG=1 for the traceback; please report it)", EXIT_INTERNAL)


def _reader_gone() -> bool:
    """Whether click ended the command on a broken pipe (EPIPE on stdout): it then exits 1 after
    wrapping stdout so that the interpreter's last flush stays quiet (click.core.Command.main;
    typer 0.2x vendors click as typer._click)."""
    return type(sys.stdout).__name__ in ("PacifyFlushWrapper", "_PacifyFlushWrapper")  # typer vendors click


if __name__ == "__main__":
    main()
