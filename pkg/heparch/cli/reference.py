"""Generate the CLI reference (docs/cli.md) from the typer app itself.

Run ``python -m heparch.cli.reference > docs/cli.md``; a test keeps the file current.
"""

from __future__ import annotations

import re
from typing import Any

from typer import _click as click  # typer vendors click

from heparch.cli.main import command

HEADER = """# CLI reference

Generated from the code by `python -m heparch.cli.reference > docs/cli.md`; do not edit by hand.
The command is `arch`, also installed as `heparch`. Exit codes: [spec/exit-codes.md](../spec/exit-codes.md).

Output, for every command: the result goes to stdout (so `arch verify b.zst > log` keeps the
verdict); with `--json` stdout holds one JSON document (keys sorted) and nothing else, and the
result in words goes to stderr. Progress, notes, warnings and errors go to stderr: on a terminal a
progress bar or an elapsed-time line for long operations; in a log a bar's line per tenth of the
work, and around a single step that runs 2 s or more (a pyhf fit, a build, a verification)
`WHAT ...`, `WHAT: still running (N s)` every 5 minutes and `WHAT: done in N s`; nothing with
`--quiet`. `arch cat` writes the file's own bytes. Shell completion: `arch --install-completion`.
"""


def _param_line(param: Any) -> str:
    return _argument_line(param) if param.param_type_name == "argument" else _option_line(param)


def _argument_line(param: Any) -> str:
    return f"- `{(param.name or '').upper()}` (argument{', required' if param.required else ''}): {getattr(param, 'help', None) or ''}"


def _option_line(param: Any) -> str:
    """An option's names, its metavar, help and default (flags and None have none)."""
    names = ", ".join(f"`{o}`" for o in param.opts) + (f" {param.metavar}" if param.metavar else "")
    default = "" if param.default in (None, False) or param.is_flag else f" Default: `{param.default}`."
    return f"- {names}: {param.help or ''}{default}"


def render() -> str:
    group = command()
    ctx = click.core.Context(group, info_name="arch")
    out = [HEADER]
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out += _section(name, cmd, ctx)
    return "\n".join(out)


def _section(name: str, cmd: Any, ctx: Any) -> list[str]:
    """A command's section: its usage, its help's paragraphs (each on one line) and its options."""
    usage = re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), " ".join(cmd.collect_usage_pieces(ctx)))
    out = [f"## arch {name}\n\n```\narch {name} {usage}\n```\n"]
    out += [" ".join(p.split()) + "\n" for p in (cmd.help or "").split("\n\n")]
    params = [_param_line(p) for p in cmd.params if p.name != "help"]
    if params:
        out.append("\n".join(params) + "\n")
    return out


if __name__ == "__main__":
    print(render(), end="")
