"""``arch inspect``, ``arch ls`` and ``arch cat``: look inside a bundle without unpacking it."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

import heparch
from heparch.cli._common import emit_json, reproduction_line
from heparch.store.zframes import MAX_FRAME_CONTENT

if TYPE_CHECKING:
    from heparch.spec.models import FileEntry


def _human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _lineage_lines(lineage: dict[str, Any]) -> list[str]:
    out = []
    if lineage["supersedes"]:
        out.append(f"supersedes {lineage['supersedes']['identity']}")
        if "note" in lineage["supersedes"]:
            out.append(f"  note: {lineage['supersedes']['note']}")
    for parent in lineage["claimed_from"]:
        out.append(f"claims    computed from {parent['identity']} ({', '.join(parent['results'])})")
    return out


def inspect(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst)."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the summary as JSON on stdout (identity, lineage, files with path, role, mediaType, digest, size, ...)."
    ),
) -> None:
    """Summarise BUNDLE: identity, analysis, lineage (the bundle it supersedes, the bundle its claims were computed from), components, patch counts and sizes."""
    from heparch.inspect import summary  # cryptography (signers' keys): arch ls must not load it

    with heparch.open(bundle) as b:
        info = summary(b)
    if json_out:
        emit_json(info)
        return
    out = [f"bundle    {bundle}", f"identity  {info['identity']}", f"format    {info['bundleFormat']}"]
    for key in ("name", "created"):
        if info[key]:
            out.append(f"{key:<9} {info[key]}")
    for key, value in info["analysis"].items():
        shown = value if isinstance(value, str) else json.dumps(value)
        out.append(f"  {key}: {shown}")
    for c in info["containers"]:
        out.append(f"container {c['name']}: {c['reference']}")
    out += _lineage_lines(info["lineage"])
    for lk, v in info["likelihoods"].items():
        out.append(f"likelihood {lk}: {v['points']} signal points")
    for r in info["reproductions"]:
        out.append(f"{reproduction_line(r)} (role {r['role']}, key {r['keyid'][:16]}...)")
    out.append(f"{info['size']['files']} files, payload {_human_size(info['size']['payload_bytes'])}, bundle {_human_size(info['size']['bundle_bytes'])}")
    for f in info["files"]:
        out.append(f"  {f['role']:<22} {_human_size(f['size']):>10}  {f['path']}")
    typer.echo("\n".join(out))


def ls(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst)."),
    long: bool = typer.Option(False, "-l", "--long", help="Also print role, size and digest."),
    json_out: bool = typer.Option(False, "--json", help='Print [{"path", "role", "size", "digest", "mediaType"}, ...] as JSON on stdout.'),
) -> None:
    """List the logical paths of BUNDLE's files."""

    with heparch.open(bundle) as b:
        files = b.files()
    if json_out:
        emit_json([_entry(f) for f in files])
        return
    for f in files:
        typer.echo(f"{f.role:<22} {f.size:>12} {f.digest}  {f.path}" if long else f.path)


def _entry(f: FileEntry) -> dict[str, Any]:
    return {"path": f.path, "role": f.role, "size": f.size, "digest": f.digest, "mediaType": f.mediaType}


def cat(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst)."),
    path: str = typer.Argument(..., metavar="PATH", help="Logical path of the file (see 'arch ls')."),
    json_out: bool = typer.Option(
        False,
        "--json",
        help='Check the file\'s hash as without --json, then print {"path", "role", "size", "digest", "mediaType"} as JSON on stdout instead of its bytes.',
    ),
) -> None:
    """Write one file of BUNDLE to stdout, checking its hash (exit 1 if it does not match).
    stdout holds the file's own bytes, so that 'arch cat b.zst BkgOnly.json > BkgOnly.json'
    gives the file; --json prints what 'arch ls --json' says of it instead."""

    if json_out:
        with heparch.open(bundle) as b:
            for _ in b.iter_bytes(path):  # the hash is checked as the last chunk is read
                pass
            emit_json(_entry(b.entry(path)))
        return

    # one pass: spooled (in memory up to one frame, 8 MiB, then a temporary file) while its hash
    # is checked, and written to stdout only when it matches: memory stays within two frames
    with heparch.open(bundle) as b, tempfile.SpooledTemporaryFile(max_size=MAX_FRAME_CONTENT) as spool:
        for chunk in b.iter_bytes(path):
            spool.write(chunk)
        spool.seek(0)
        out = sys.stdout.buffer
        shutil.copyfileobj(spool, out, 1 << 20)
        out.flush()


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("ls")(ls)
    app.command("cat")(cat)
