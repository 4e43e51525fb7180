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
progress bar or an elapsed-time line for long operations, in a log one line per tenth of the work,
nothing with `--quiet`. `arch cat` writes the file's own bytes. Shell completion:
`arch --install-completion`.
"""


def _param_line(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"- `{(param.name or '').upper()}` (argument{', required' if param.required else ''}): {getattr(param, 'help', None) or ''}"
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
        usage = re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), " ".join(cmd.collect_usage_pieces(ctx)))
        out.append(f"## arch {name}\n\n```\narch {name} {usage}\n```\n")
        out.append(" ".join((cmd.help or "").split("\n\n")[0].split()) + "\n")
        rest = (cmd.help or "").split("\n\n")[1:]
        out.extend(" ".join(p.split()) + "\n" for p in rest)
        params = [_param_line(p) for p in cmd.params if p.name != "help"]
        if params:
            out.append("\n".join(params) + "\n")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
