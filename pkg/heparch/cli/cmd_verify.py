"""``arch verify``: fixity, schema and semantic checks of a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from heparch.cli import cmd_replay
from heparch.cli._common import emit_json, print_result, render_findings, reproduction_line, say
from heparch.cli._progress import QUIET, status
from heparch.errors import EXIT_FAILED, InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from heparch.verify import Verification


def verify(
    bundle: Path = typer.Argument(..., metavar="BUNDLE", help="The bundle (.zst) to check."),
    level: str = typer.Option(
        "full", "--level", help="structure: archive layout and manifest; fixity: plus every blob's size and hashes; full: plus component schemas and semantics."
    ),
    json_out: bool = typer.Option(False, "--json", help='Print {"valid", "identity", "level", "findings"} as JSON on stdout.'),
    trust: Path | None = typer.Option(
        None, "--trust", metavar="POLICY.yaml", help="Trust policy: trusted keys, the roles each may sign for, and how many distinct keys each role needs."
    ),
    signature: list[Path] = typer.Option(
        [], "--signature", metavar="FILE.dsse.json", help="A detached envelope to check with the bundle's own; repeat for several."
    ),
    replay: bool = typer.Option(
        False, "--replay", help="After a valid full verification, replay the claimed results (as 'arch replay'); the options below apply."
    ),
    point: list[str] = cmd_replay.POINT,
    likelihood: str | None = cmd_replay.LIKELIHOOD,
    sample: int | None = cmd_replay.SAMPLE,
    seed: int = cmd_replay.SEED,
    backend: str | None = cmd_replay.BACKEND,
    jobs: int | None = cmd_replay.JOBS,
    scheduler: str | None = cmd_replay.SCHEDULER,
    resume: Path | None = cmd_replay.RESUME,
    junit: Path | None = cmd_replay.JUNIT,
    html: Path | None = cmd_replay.HTML,
    simplified: bool = cmd_replay.SIMPLIFIED,
    audit: int = cmd_replay.AUDIT,
    plot: Path | None = cmd_replay.PLOT,
    quiet: bool = QUIET,
) -> None:
    """Check BUNDLE. Exit 0 when valid (warnings allowed), 1 when it fails a check, 2 on usage errors.

    Every problem is a finding with a stable code from spec/validation-codes.md.
    Signatures: malformed or spliced ones are errors; with --trust, a role signed by fewer
    distinct trusted keys than the policy requires fails (exit 1); without it, valid
    signatures are reported as present but unverified.

    With --replay (for CI, in one command): after a valid `full` verification the claimed
    results are replayed as by 'arch replay', which takes the options from --point on; exit 1
    when the bundle is invalid or any point does not agree. With --json, stdout holds the
    replay document with the verification under "verification".

    Example: arch verify bundle.zst --trust policy.yaml --signature bundle.zst.publication-committee.<keyid>.dsse.json

    Example: arch verify --replay claimed.zst --jobs 2 --junit replay.xml --html replay.html
    """
    replay_options = {"--point": point, "--likelihood": likelihood, "--sample": sample, "--backend": backend, "--jobs": jobs, "--scheduler": scheduler,
                      "--resume": resume, "--junit": junit, "--html": html, "--audit": audit or None, "--plot": plot}  # fmt: skip
    _check_options(level, trust, replay, _given(replay_options))
    with status(f"verifying {bundle} at level {level}", quiet=quiet):
        result = _verified(bundle, level, trust, signature)
    _show(bundle, level, result, json_out=json_out)
    if not replay or not result.valid:
        _end_unreplayed(bundle, result, replay=replay, json_out=json_out)
        return
    replayed = cmd_replay.run_replay(bundle, point=point, likelihood=likelihood, sample=sample, seed=seed, backend=backend, jobs=jobs,
                                     scheduler=scheduler, resume=resume, junit=junit, html=html, simplified=simplified, audit=audit, plot=plot,
                                     json_out=json_out, quiet=quiet)  # fmt: skip
    if json_out:
        emit_json({**replayed.to_json(), "verification": result.to_json()})
    if replayed.failed:
        raise typer.Exit(EXIT_FAILED)


def _given(options: Mapping[str, object]) -> list[str]:
    """The flags of the options given (not None, not an empty list)."""
    return [name for name, value in options.items() if value not in (None, [])]


def _end_unreplayed(bundle: Path, result: Verification, *, replay: bool, json_out: bool) -> None:
    """The end without a replay: the verification's JSON (under "verification" when --replay was
    asked, as the replay document would hold it) and exit 1 when the bundle is invalid; with
    --replay that means it was not replayed, which is said."""
    if replay:
        say(f"{bundle}: not replayed, as it does not verify")
    if json_out:
        emit_json({"verification": result.to_json()} if replay else result.to_json())
    if not result.valid:
        raise typer.Exit(EXIT_FAILED)


def _check_options(level: str, trust: Path | None, replay: bool, replay_options_given: list[str]) -> None:
    if replay_options_given and not replay:
        raise InputError(f"{replay_options_given[0]}: a replay option; add --replay (or use 'arch replay')")
    if trust is not None and level == "structure":
        raise InputError("--trust needs --level fixity or full: at structure the payload is not hashed, so a trust verdict would not cover it")
    if replay and level != "full":
        raise InputError(f"--replay runs after a full verification; drop --level {level}")


def _verified(bundle: Path, level: str, trust: Path | None, signature: list[Path]) -> Verification:
    """Verify ``bundle`` (with the trust policy read, if given)."""
    from heparch.verify import verify as run  # start-up: loaded when this command runs

    policy = None
    if trust is not None:
        from heparch.signing.trust import load_policy  # cryptography: only with a trust policy

        policy = load_policy(trust)
    return run(bundle, level=level, trust=policy, detached=signature, trust_location=str(trust) if trust else "trust policy")  # type: ignore[arg-type]


def _show(bundle: Path, level: str, result: Verification, *, json_out: bool) -> None:
    """The findings (stderr) and the verdict (stdout, or stderr with --json)."""
    report = result.report
    if report.findings:
        render_findings(report.findings)
    verdict = "valid" if result.valid else "INVALID"
    print_result(
        f"{bundle}: {verdict} at level {level} ({len(report.errors)} errors, {len(report.warnings)} warnings); identity {result.identity}", json_out=json_out
    )
    for line in _reproduction_lines(result):
        print_result(line, json_out=json_out)


def _reproduction_lines(result: Verification) -> list[str]:
    """One line per signed record of a replay among the signatures (``arch replay --attest``)."""
    signatures = result.signature_check.to_json(result.trust) if result.signature_check is not None else []
    return [f"  {reproduction_line(sig['replay'])} (role {sig['role']}, key {sig['keyid'][:16]}..., {sig['status']})" for sig in signatures if "replay" in sig]


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
