"""``arch keygen`` and ``arch sign``: Ed25519 keys and signatures of bundles (spec section 6)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heparch.cli._common import emit_json, print_result
from heparch.cli._progress import QUIET, status
from heparch.errors import InputError
from heparch.store import tmpfiles

if TYPE_CHECKING:
    from heparch.sign import Signed

_PASSPHRASE_HELP = "File whose first line is the key's passphrase (else $HEPARCH_PASSPHRASE; neither: no passphrase)."


def keygen(
    output: Path = typer.Option(..., "-o", "--output", metavar="NAME", help="Private key file to create; the public key goes to NAME.pub."),
    passphrase_file: Path | None = typer.Option(None, "--passphrase-file", help=_PASSPHRASE_HELP + " Never prompts."),
    json_out: bool = typer.Option(False, "--json", help='Print {"private", "public", "keyid", "encrypted"} as JSON on stdout.'),
) -> None:
    """Make an Ed25519 signing key: NAME (OpenSSH private key, mode 0600, encrypted when a
    passphrase is given) and NAME.pub (one OpenSSH public-key line). Refuses to overwrite
    either file. Exit 0 when written, 2 on bad arguments or an existing file.

    Example: arch keygen -o ~/.heparch/alice ; then give the collaboration alice.pub.
    """
    from heparch.signing.keys import generate_key, parse_public_key, read_passphrase  # cryptography: only when a key is made

    public_path = output.with_name(output.name + ".pub")
    for p in (output, public_path):
        if p.exists() or p.is_symlink():
            raise InputError(f"{p}: already exists; choose another -o NAME or move the old key away (keys are never overwritten)")
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: directory does not exist")
    passphrase = read_passphrase(passphrase_file)
    private, public = generate_key(passphrase=passphrase, comment=output.name)
    _write_pair(output, private, public_path, public)
    keyid = parse_public_key(public.decode("utf-8")).keyid  # the comment is the file name, which may be non-ASCII
    print_result(f"wrote {output} ({'encrypted' if passphrase else 'not encrypted'}) and {public_path}; key id {keyid}", json_out=json_out)
    if json_out:
        emit_json({"private": str(output), "public": str(public_path), "keyid": keyid, "encrypted": bool(passphrase)})


def _write_pair(private_path: Path, private: bytes, public_path: Path, public: bytes) -> None:
    """Write both files or neither: unnamed temporary files (nothing left by a kill), then links
    that fail if a name exists."""

    made: list[Path] = []
    with contextlib.ExitStack() as stack:
        try:
            for target, data, mode in ((private_path, private, 0o600), (public_path, public, 0o644)):
                out = stack.enter_context(tmpfiles.output(target))
                out.file.write(data)
                try:
                    out.link_new(mode)
                except FileExistsError:
                    raise InputError(f"{target}: already exists; choose another -o NAME (keys are never overwritten)") from None
                made.append(target)
        except BaseException:
            for p in made:
                with contextlib.suppress(OSError):
                    p.unlink()
            raise


def sign(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst) to sign."),
    key: Path | None = typer.Option(None, "--key", metavar="NAME", help="Ed25519 private key (from 'arch keygen', or any OpenSSH ed25519 key)."),
    role: str | None = typer.Option(None, "--role", help="The role you sign for, e.g. analysis-team (1-24 of a-z, 0-9, '-')."),
    ssh: bool = typer.Option(
        False, "--ssh", help="Also add an OpenSSH signature over data/manifest.json (namespace heparch-bundle), checkable with ssh-keygen alone."
    ),
    detached: bool = typer.Option(
        False, "--detached", help="Write the envelope (and with --ssh the .sshsig) beside the bundle, as BUNDLE.<role>.<keyid>.dsse.json, instead of into it."
    ),
    attach: Path | None = typer.Option(
        None,
        "--attach",
        metavar="FILE.dsse.json",
        help="Add a detached envelope (or a detached <bundle>.<role>.<keyid>.sshsig) made elsewhere, instead of signing with --key.",
    ),
    passphrase_file: Path | None = typer.Option(None, "--passphrase-file", help=_PASSPHRASE_HELP),
    json_out: bool = typer.Option(False, "--json", help='Print {"identity", "keyid", "role", "written"} as JSON on stdout.'),
    quiet: bool = QUIET,
) -> None:
    """Sign BUNDLE for a role: add a DSSE envelope signatures/<role>.<keyid>.dsse.json (an
    in-toto statement naming the bundle's identity), replacing this key's earlier one for
    that role. The identity does not change; only the signature part is rewritten, through a
    temporary file and a rename. SOURCE_DATE_EPOCH fixes the signing time.

    Exit 0 when signed; 1 when the bundle is invalid or an existing (or --attach) signature is
    malformed or spliced; 2 on bad arguments (unreadable, encrypted or non-Ed25519 key, invalid role).

    Examples: arch sign bundle.zst --key alice --role analysis-team --ssh ;
    arch sign bundle.zst --key bob --role publication-committee --detached ;
    arch sign bundle.zst --attach bundle.zst.publication-committee.<keyid>.dsse.json
    """
    if attach is not None:
        if key is not None or role is not None or ssh or detached:
            raise InputError("--attach adds an existing envelope: do not combine it with --key, --role, --ssh or --detached")
        done = _attach(bundle, attach, quiet=quiet)
    else:
        if key is None or role is None:
            raise InputError("give --key NAME and --role ROLE (or --attach FILE.dsse.json)")
        done = _sign(bundle, key, role, passphrase_file, ssh=ssh, detached=detached, quiet=quiet)
    where = "beside the bundle" if detached else f"into {bundle}"
    print_result(f"signed {done.identity} for role {done.role} with key {done.keyid}; wrote {', '.join(done.written)} {where}", json_out=json_out)
    if json_out:
        emit_json({"identity": done.identity, "keyid": done.keyid, "role": done.role, "written": list(done.written)})


def _attach(bundle: Path, envelope: Path, *, quiet: bool) -> Signed:
    """``arch sign --attach``: an envelope made elsewhere, checked and added."""
    from heparch.sign import attach  # cryptography: only when a signature is attached

    with status(f"verifying {bundle} and adding the envelope", quiet=quiet):
        return attach(bundle, envelope)


def _sign(bundle: Path, key: Path, role: str, passphrase_file: Path | None, *, ssh: bool, detached: bool, quiet: bool) -> Signed:
    """``arch sign --key --role``: the role checked, the key loaded, the bundle verified and signed."""
    from heparch.sign import sign  # cryptography: only when a bundle is signed
    from heparch.signing.keys import load_signer, read_passphrase  # cryptography: only when a bundle is signed
    from heparch.signing.trust import role_problem  # cryptography: only when a bundle is signed

    problem = role_problem(role)
    if problem:
        raise InputError(f"--role: {problem}")
    signer = load_signer(key, passphrase=read_passphrase(passphrase_file))
    with status(f"verifying and signing {bundle}", quiet=quiet):
        return sign(bundle, signer, role=role, ssh=ssh, detached=detached)


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
    app.command("sign")(sign)
