"""The ``arch`` (also ``heparch``) command: one typer app, one file per command.

Errors are caught in exactly one place, :func:`main`: a :class:`HeparchError`
prints its diagnostics and exits with its documented code (spec/exit-codes.md);
anything else is an internal error (exit 3), with the traceback only when
``HEPARCH_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from heparch import __version__, signals
from heparch.cli import cmd_build, cmd_claim, cmd_cls, cmd_extract, cmd_init, cmd_inspect, cmd_reinterpret, cmd_replay, cmd_sign, cmd_simplify, cmd_verify
from heparch.errors import EXIT_INTERNAL, EXIT_USAGE, HeparchError

app = typer.Typer(
    name="arch",
    help="heparch: pack, verify and replay published particle-physics likelihoods.\n\n"
    "Typical use: arch init analysis/ ; arch build analysis/ -o bundle.zst ; arch verify bundle.zst ; arch inspect bundle.zst",
    no_args_is_help=True,
    add_completion=True,  # arch --install-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
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


for module in (cmd_init, cmd_build, cmd_verify, cmd_inspect, cmd_extract, cmd_cls, cmd_claim, cmd_replay, cmd_reinterpret, cmd_sign, cmd_simplify):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        with signals.handled():  # SIGINT and SIGTERM end every command through its cleanup: exit 130 / 143
            app(args=argv, prog_name=os.path.basename(sys.argv[0]) or "arch", standalone_mode=True)
    except HeparchError as exc:
        typer.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)
    except SystemExit as exc:
        if exc.code == 1 and _reader_gone():
            sys.exit(0)  # `arch ls | head`: the reader has gone, which is not an error; print nothing more
        raise
    except OSError as exc:  # disk full, permission denied, ...: the environment, not a heparch bug
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    except signals.INTERRUPTS as exc:  # one line (what was done, how to go on where the command knows)
        typer.echo(str(exc) or "interrupted", err=True)
        sys.exit(128 + signals.signum_of(exc))
    except Exception as exc:  # the one place internal errors are turned into exit 3
        if os.environ.get("HEPARCH_DEBUG"):
            traceback.print_exc()
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set HEPARCH_DEBUG=1 for the traceback; please report it)", err=True)
        sys.exit(EXIT_INTERNAL)


def _reader_gone() -> bool:
    """Whether click ended the command on a broken pipe (EPIPE on stdout): it then exits 1 after
    wrapping stdout so that the interpreter's last flush stays quiet (click.core.Command.main;
    typer 0.2x vendors click as typer._click)."""
    return type(sys.stdout).__name__ in ("PacifyFlushWrapper", "_PacifyFlushWrapper")  # typer vendors click


if __name__ == "__main__":
    main()
