"""``arch diff``: what changed between two bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from heparch.cli._common import emit_json

if TYPE_CHECKING:
    from heparch.diff import Claims, Diff


def _show(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, sort_keys=True)


def _mark(a: Any, b: Any) -> str:
    return "+" if a is None else "-" if b is None else "~"


def _claim_lines(lk: str, claims: Claims) -> list[str]:
    out = [f"+ claim {lk}: {p} {_show(v)}" for p, v in claims.added.items()]
    out += [f"- claim {lk}: {p} {_show(v)}" for p, v in claims.removed.items()]
    for p, fields in claims.changed.items():
        out += [f"~ claim {lk}: {p} {f}: {_show(c['a'])} -> {_show(c['b'])} (difference {_show(c['difference'])})" for f, c in fields.items()]
    return out


def _lines(d: Diff) -> list[str]:
    """One line per difference: ``+`` added, ``-`` removed, ``~`` changed."""
    out = [f"A {d.a.path}  {d.a.identity}", f"B {d.b.path}  {d.b.identity}"]
    for mark, kind in (("+", "added"), ("-", "removed"), ("~", "changed")):
        out += [f"{mark} component {p} ({d.component_roles[p]})" for p in getattr(d.components, kind)]
    out += [f"{_mark(a, b)} metadata {field}: {_show(a)} -> {_show(b)}" for field, (a, b) in d.metadata.items()]
    for lk, names in d.patches.items():
        for mark, kind in (("+", "added"), ("-", "removed"), ("~", "changed")):
            out += [f"{mark} patch {lk}: {name}" for name in getattr(names, kind)]
    for lk, claims in d.claims.items():
        out += _claim_lines(lk, claims)
    out.append("no differences" if d.same else f"{len(out) - 2} difference(s)")
    return out


def diff(
    a: Path = typer.Argument(..., metavar="A", help="The first bundle (.zst), e.g. the older version."),
    b: Path = typer.Argument(..., metavar="B", help="The second bundle (.zst), e.g. the newer version."),
    json_out: bool = typer.Option(
        False, "--json", help='Print {"a", "b", "same", "components", "metadata", "patches", "claims"} as JSON on stdout (added/removed/changed in each).'
    ),
) -> None:
    """List what changed from A to B: components (by path), metadata fields, patches (by name,
    per likelihood) and claimed values (by point, with the difference B - A). Exit 0 whether
    or not they differ ("same" in --json says which)."""
    from heparch.diff import diff as run  # start-up: loaded when this command runs

    result = run(a, b)
    if json_out:
        emit_json(result.to_json())
        return
    typer.echo("\n".join(_lines(result)))


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
