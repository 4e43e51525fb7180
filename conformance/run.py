#!/usr/bin/env python3
"""Run the heparch bundle conformance vectors against an implementation (see 1.0/PROTOCOL.md).

    python conformance/run.py                                  # arch, every vector of conformance/1.0
    python conformance/run.py --impl "python -m heparch" conformance/1.0
    python conformance/run.py --impl "/opt/other/bin/hepverify" conformance/1.0/invalid/E011_symlink

For each vector the runner calls ``<impl> verify <vector>/bundle.zst --json`` (plus ``--trust
POLICY`` when expected.json holds a trust policy) and compares the
exit code and the JSON report with ``expected.json``. It prints one PASS or FAIL line per
vector and a summary, and exits 0 if every vector passed, 1 if any failed, 2 on usage errors.
Only the Python standard library is used, so it runs without heparch installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SUITE = HERE / "1.0"
KINDS = ("valid", "warn", "invalid")


@dataclasses.dataclass
class Outcome:
    vector: Path
    label: str  # kind/name
    kind: str
    problems: list[str]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems


def find_vectors(paths: list[Path]) -> list[Path]:
    """Vector directories (holding expected.json) in or under ``paths``, sorted, without duplicates."""
    found: set[Path] = set()
    for p in paths:
        if (p / "expected.json").is_file():
            found.add(p.resolve())
        elif p.is_dir():
            found.update(e.parent.resolve() for e in p.rglob("expected.json"))
        else:
            raise SystemExit(f"error: {p}: not a vector or suite directory")
    return sorted(found, key=lambda v: (KINDS.index(v.parent.name) if v.parent.name in KINDS else 9, v.name))


def judge(expected: dict[str, Any], returncode: int, stdout: str, *, ignore_warnings: bool = False) -> list[str]:
    """Why an implementation's answer does not conform (an empty list when it does); PROTOCOL.md, "Comparison"."""
    problems: list[str] = []
    want_valid = bool(expected["valid"])
    want_exit = 0 if want_valid else 1
    if returncode != want_exit:
        problems.append(f"exit code {returncode}, expected {want_exit}")
    try:
        report = json.loads(stdout)
    except ValueError:
        return [*problems, "stdout is not one JSON object"]
    findings = report.get("findings") if isinstance(report, dict) else None
    if not isinstance(report, dict) or not isinstance(report.get("valid"), bool) or not isinstance(findings, list):
        return [*problems, 'the JSON report needs "valid" (true/false) and "findings" (a list)']
    codes: set[str] = {f["code"] for f in findings if isinstance(f, dict) and isinstance(f.get("code"), str)}
    if any(not isinstance(f, dict) or not isinstance(f.get("code"), str) for f in findings):
        problems.append('every finding must be an object with a string "code"')
    errors = sorted(c for c in codes if c.startswith("E"))
    if report["valid"] is not want_valid:
        problems.append(f'"valid" is {json.dumps(report["valid"])}, expected {json.dumps(want_valid)}')
    if want_valid and errors:
        problems.append(f"reported error codes {errors} for a valid bundle")
    if not want_valid and not errors:
        problems.append("reported no error code (E...) for an invalid bundle")
    wanted = {c for c in expected["codes"] if not (ignore_warnings and c.startswith("W"))}
    missing = sorted(wanted - codes)
    if missing:
        problems.append(f"missing codes {missing} (reported {sorted(codes) or 'none'})")
    identity = report.get("identity")
    if "identity" in expected and identity is not None and identity != expected["identity"]:
        problems.append(f"identity {identity}, expected {expected['identity']}")
    return problems


def run_one(impl: list[str], vector: Path, *, timeout: float, ignore_warnings: bool) -> Outcome:
    expected = json.loads((vector / "expected.json").read_text(encoding="utf-8"))
    label = f"{vector.parent.name}/{vector.name}"
    start = time.monotonic()
    command = [*impl, "verify", str(vector / "bundle.zst"), "--json"]
    with tempfile.TemporaryDirectory(prefix="heparch-conformance-") as tmp:
        if "trust" in expected:  # the vector is checked against a trust policy (PROTOCOL.md section 2)
            policy = Path(tmp) / "trust-policy.yaml"
            policy.write_text(json.dumps(expected["trust"], indent=2) + "\n", encoding="utf-8")
            command += ["--trust", str(policy)]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return Outcome(vector, label, vector.parent.name, [f"timed out after {timeout:g} s"], time.monotonic() - start)
        except OSError as exc:
            raise SystemExit(f"error: cannot run {shlex.join(impl)}: {exc.strerror}") from None
    stdout = done.stdout.decode("utf-8", "replace")
    problems = judge(expected, done.returncode, stdout, ignore_warnings=ignore_warnings)
    if problems and done.returncode not in (0, 1):
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        problems.append(f"stderr: {tail[0][:200]}")
    return Outcome(vector, label, vector.parent.name, problems, time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="suite directories or single vector directories (default: conformance/1.0)")
    parser.add_argument("--impl", default="arch", help='the command that offers "verify <bundle> --json", split like a shell would (default: arch)')
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="vectors run in parallel (default: the number of CPUs)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per vector (default: 120)")
    parser.add_argument("-k", dest="select", default=None, help="only vectors whose kind/name contains this text")
    parser.add_argument("--ignore-warnings", action="store_true", help="do not require the W codes of valid and warn vectors")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    args = parser.parse_args(argv)
    impl = shlex.split(args.impl)
    if not impl:
        parser.error("--impl is empty")
    vectors = find_vectors(args.paths or [DEFAULT_SUITE])
    if args.select:
        vectors = [v for v in vectors if args.select in f"{v.parent.name}/{v.name}"]
    if not vectors:
        print("error: no vectors found", file=sys.stderr)
        return 2
    start = time.monotonic()
    outcomes: list[Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, impl, v, timeout=args.timeout, ignore_warnings=args.ignore_warnings) for v in vectors]
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            if outcome.passed and not args.quiet:
                print(f"PASS {outcome.label}")
            elif not outcome.passed:
                print(f"FAIL {outcome.label}: {'; '.join(outcome.problems)}")
    failed = [o for o in outcomes if not o.passed]
    per_kind = ", ".join(
        f"{kind} {sum(o.passed for o in outcomes if o.kind == kind)}/{sum(o.kind == kind for o in outcomes)}"
        for kind in KINDS
        if any(o.kind == kind for o in outcomes)
    )
    print(
        f"{len(outcomes)} vectors: {len(outcomes) - len(failed)} passed, {len(failed)} failed ({per_kind}) in {time.monotonic() - start:.1f} s with {shlex.join(impl)}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
