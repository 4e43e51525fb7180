"""arch keygen, arch sign and arch verify --trust/--signature: the acceptance criteria of the
signatures issue, through the command line (exit codes 0, 1, 2), and kill -9 during signing."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heparch.build import build
from heparch.verify import verify

from clihelp import first_line, run

SSH_KEYGEN = shutil.which("ssh-keygen")
EPOCH = "1714521600"  # 2024-05-01T00:00:00Z


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("HEPARCH_PASSPHRASE", raising=False)


@pytest.fixture
def bundle(analysis: Path, tmp_path: Path) -> Path:
    return build(analysis, output=tmp_path / "toy.zst").output


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("alice", "bob", "carol"):
        code, _, err = run("keygen", "-o", str(tmp_path / name))
        assert code == 0, err
        out[name] = tmp_path / name
    return out


def keyid(key: Path) -> str:
    from heparch.signing.keys import parse_public_key

    return parse_public_key(key.with_name(key.name + ".pub").read_text()).keyid


def write_policy(path: Path, require: dict[str, int], **roles: tuple[Path, list[str]]) -> Path:
    lines = ["keys:"]
    for name, (key, rs) in roles.items():
        pub = key.with_name(key.name + ".pub").read_text().strip()
        lines += [f"  - name: {name}", f'    public_key: "{pub}"', f"    roles: [{', '.join(rs)}]"]
    lines += ["require:"] + [f"  {role}: {n}" for role, n in require.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_json(*args: str) -> tuple[int, dict, str]:
    code, out, err = run("verify", *args, "--json")
    return code, json.loads(out) if out.strip() else {}, err


def codes_of(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"]} - {"W002", "W003", "W004"}


# --- keygen ------------------------------------------------------------------------------------


def test_keygen_writes_a_pair_and_never_overwrites(tmp_path: Path) -> None:
    code, out, err = run("keygen", "-o", str(tmp_path / "k"))
    assert code == 0, err
    private, public = tmp_path / "k", tmp_path / "k.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    line = public.read_text()
    assert line.count("\n") == 1
    assert line.startswith("ssh-ed25519 AAAA")
    assert line.rstrip().endswith(" k")
    assert keyid(private) in out
    before = private.read_bytes()
    code, _, err = run("keygen", "-o", str(private))
    assert code == 2
    assert "already exists" in err
    assert private.read_bytes() == before
    public.unlink()
    (tmp_path / "p.pub").write_text("x")
    code, _, err = run("keygen", "-o", str(tmp_path / "p"))
    assert code == 2
    assert "p.pub: already exists" in err
    assert not (tmp_path / "p").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "p.pub"]  # no temporary files left


@pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen not installed")
def test_keygen_keys_load_in_ssh_keygen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("keygen", "-o", str(tmp_path / "plain"))[0] == 0
    (tmp_path / "pass.txt").write_text("s3cret phrase\n")
    assert run("keygen", "-o", str(tmp_path / "enc"), "--passphrase-file", str(tmp_path / "pass.txt"))[0] == 0
    monkeypatch.setenv("HEPARCH_PASSPHRASE", "from-env")
    assert run("keygen", "-o", str(tmp_path / "env"))[0] == 0
    for name, phrase in (("plain", ""), ("enc", "s3cret phrase"), ("env", "from-env")):
        done = subprocess.run([SSH_KEYGEN or "", "-y", "-P", phrase, "-f", str(tmp_path / name)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.split()[:2] == (tmp_path / f"{name}.pub").read_text().split()[:2]
    wrong = subprocess.run([SSH_KEYGEN or "", "-y", "-P", "wrong", "-f", str(tmp_path / "enc")], capture_output=True, stdin=subprocess.DEVNULL)
    assert wrong.returncode != 0
    assert b"ENCRYPTED" not in (tmp_path / "plain").read_bytes()


def test_keygen_non_ascii_name(tmp_path: Path) -> None:
    """The comment of the .pub line is the file name: a non-ASCII one crashed (exit 3) after writing."""
    code, out, err = run("keygen", "-o", str(tmp_path / "cl\u00e9"))
    assert code == 0, err
    assert keyid(tmp_path / "cl\u00e9") in out
    assert (tmp_path / "cl\u00e9.pub").read_text("utf-8").endswith(" cl\u00e9\n")


def test_keygen_bad_arguments(tmp_path: Path) -> None:
    code, _, err = run("keygen", "-o", str(tmp_path / "missing-dir" / "k"))
    assert code == 2
    assert "does not exist" in err
    (tmp_path / "empty").write_text("")
    code, _, err = run("keygen", "-o", str(tmp_path / "k"), "--passphrase-file", str(tmp_path / "empty"))
    assert code == 2
    assert "empty" in err
    assert not (tmp_path / "k").exists()


# --- sign and verify: the acceptance criteria --------------------------------------------------


def test_two_signers_and_policies_cli(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    identity = verify(bundle).identity
    code, out, err = run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--json")
    assert code == 0, err
    assert json.loads(out)["identity"] == identity
    code, _, err = run("sign", str(bundle), "--key", str(keys["bob"]), "--role", "publication-committee")
    assert code == 0, err
    assert verify(bundle).identity == identity
    code, report, _ = verify_json(str(bundle))
    assert code == 0
    assert codes_of(report) == {"W007"}
    assert {s["status"] for s in report["signatures"]} == {"unverified"}

    both = write_policy(
        tmp_path / "both.yaml",
        {"analysis-team": 1, "publication-committee": 1},
        alice=(keys["alice"], ["analysis-team"]),
        bob=(keys["bob"], ["publication-committee"]),
    )
    code, report, err = verify_json(str(bundle), "--trust", str(both))
    assert code == 0, err
    assert codes_of(report) == set()
    assert report["trust"]["met"] is True
    assert {s["status"] for s in report["signatures"]} == {"trusted"}

    needs_carol = write_policy(
        tmp_path / "carol.yaml",
        {"analysis-team": 1, "publication-committee": 1},
        alice=(keys["alice"], ["analysis-team"]),
        carol=(keys["carol"], ["publication-committee"]),
    )
    code, report, err = verify_json(str(bundle), "--trust", str(needs_carol))
    assert code == 1
    assert codes_of(report) == {"E078", "W008"}
    assert "E078" in err
    assert "role publication-committee needs 1 distinct trusted key(s), got 0" in err
    assert report["valid"] is False
    assert report["trust"]["met"] is False


def test_envelope_for_another_bundle_fails(bundle: Path, analysis: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    (analysis / "README.md").write_text("a different analysis\n")
    other = build(analysis, output=tmp_path / "other.zst").output
    code, _, err = run("sign", str(other), "--key", str(keys["alice"]), "--role", "analysis-team", "--detached")
    assert code == 0, err
    envelope = tmp_path / f"other.zst.analysis-team.{keyid(keys['alice'])}.dsse.json"
    assert envelope.is_file()
    code, report, err = verify_json(str(bundle), "--signature", str(envelope))
    assert code == 1
    assert codes_of(report) == {"E074"}
    code, _, err = run("sign", str(bundle), "--attach", str(envelope))
    assert code == 1
    assert "E074" in err


def test_in_bundle_and_detached_envelope_of_one_key_count_once(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team")[0] == 0
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--detached")[0] == 0
    detached = tmp_path / f"toy.zst.analysis-team.{keyid(keys['alice'])}.dsse.json"
    two = write_policy(tmp_path / "two.yaml", {"analysis-team": 2}, alice=(keys["alice"], ["analysis-team"]), bob=(keys["bob"], ["analysis-team"]))
    code, report, err = verify_json(str(bundle), "--trust", str(two), "--signature", str(detached))
    assert code == 1
    assert codes_of(report) == {"E078"}
    assert "needs 2 distinct trusted key(s), got 1 (alice)" in err
    assert run("sign", str(bundle), "--key", str(keys["bob"]), "--role", "analysis-team", "--detached")[0] == 0
    bob = tmp_path / f"toy.zst.analysis-team.{keyid(keys['bob'])}.dsse.json"
    code, report, err = verify_json(str(bundle), "--trust", str(two), "--signature", str(detached), "--signature", str(bob))
    assert code == 0, err


def test_changed_component_and_recomputed_manifest_with_old_signatures(
    bundle: Path, keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--ssh")[0] == 0
    assert run("extract", str(bundle), "-o", str(tmp_path / "x"))[0] == 0
    (tmp_path / "x" / "README.md").write_text("edited after signing\n")
    # arch build refuses to pack the stale signatures (test_build_refuses_kept_signatures_after_an_edit);
    # another tool, or an attacker, can still write such a bundle: verification must catch it
    monkeypatch.setattr("heparch.build._check_kept_signatures", lambda *args: None)
    assert run("build", str(tmp_path / "x"), "-o", str(tmp_path / "edited.zst"))[0] == 0
    code, report, _ = verify_json(str(tmp_path / "edited.zst"))
    assert code == 1
    assert codes_of(report) == {"E074", "E077"}


@pytest.mark.skipif(SSH_KEYGEN is None or shutil.which("zstd") is None, reason="ssh-keygen or zstd not installed")
def test_sshsig_verifies_with_system_ssh_keygen_over_untarred_manifest(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--ssh")[0] == 0
    dest = tmp_path / "untarred"
    dest.mkdir()
    stream = subprocess.run(["zstd", "-dc", str(bundle)], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=stream, check=True)
    sig = dest / "bundle" / "signatures" / f"analysis-team.{keyid(keys['alice'])}.sshsig"
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice@example.org namespaces="heparch-bundle" {(tmp_path / "alice.pub").read_text().strip()}\n')
    with (dest / "bundle" / "data" / "manifest.json").open("rb") as manifest:
        done = subprocess.run(
            [SSH_KEYGEN or "", "-Y", "verify", "-f", str(allowed), "-I", "alice@example.org", "-n", "heparch-bundle", "-s", str(sig)],
            stdin=manifest,
            capture_output=True,
            text=True,
        )
    assert done.returncode == 0, done.stderr
    assert 'Good "heparch-bundle" signature for alice@example.org' in done.stdout


# --- usage errors ------------------------------------------------------------------------------


def test_sign_usage_errors(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    before = bundle.read_bytes()
    cases = [
        (["--key", str(keys["alice"]), "--role", "Bad_Role"], "--role"),
        (["--key", str(keys["alice"]), "--role", "r" * 25], "--role"),
        (["--key", str(tmp_path / "alice.pub"), "--role", "analysis-team"], "is a public key"),
        (["--key", str(tmp_path / "nope"), "--role", "analysis-team"], "cannot read the key"),
        (["--role", "analysis-team"], "give --key"),
        (["--attach", str(tmp_path / "x.dsse.json"), "--role", "analysis-team"], "--attach"),
    ]
    for args, message in cases:
        code, _, err = run("sign", str(bundle), *args)
        assert code == 2, (args, err)
        assert message in err
        assert "Traceback" not in err
    code, _, err = run("sign", str(tmp_path / "missing.zst"), "--key", str(keys["alice"]), "--role", "analysis-team")
    assert code == 2
    assert "cannot open" in err
    assert bundle.read_bytes() == before


def test_encrypted_key_needs_its_passphrase(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("pw\n")
    assert run("keygen", "-o", str(tmp_path / "enc"), "--passphrase-file", str(tmp_path / "pw"))[0] == 0
    code, _, err = run("sign", str(bundle), "--key", str(tmp_path / "enc"), "--role", "analysis-team")
    assert code == 2
    assert "the key is encrypted; give its passphrase with --passphrase-file FILE or $HEPARCH_PASSPHRASE" in err  # the library names passphrase_file
    code, _, err = run("sign", str(bundle), "--key", str(tmp_path / "enc"), "--role", "analysis-team", "--passphrase-file", str(tmp_path / "pw"))
    assert code == 0, err
    monkeypatch.setenv("HEPARCH_PASSPHRASE", "pw")
    assert run("sign", str(bundle), "--key", str(tmp_path / "enc"), "--role", "publication-committee")[0] == 0


def test_verify_trust_usage_errors(bundle: Path, tmp_path: Path) -> None:
    code, _, err = run("verify", str(bundle), "--trust", str(tmp_path / "none.yaml"))
    assert code == 2
    assert "cannot read the trust policy" in err
    (tmp_path / "bad.yaml").write_text("keys: []\n")
    code, _, err = run("verify", str(bundle), "--trust", str(tmp_path / "bad.yaml"))
    assert code == 2
    assert "keys: must be a non-empty list" in err
    code, _, err = run("verify", str(bundle), "--signature", str(tmp_path / "none.dsse.json"))
    assert code == 2
    assert "cannot read the signature" in err


def test_sign_malformed_existing_signature_exits_1(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    from heparch.store import writer

    with bundle.open("rb") as fh:
        parts = writer.existing_parts(fh)
        writer.rewrite_signature_part(bundle, fh, parts, {f"signatures/analysis-team.{'0' * 64}.dsse.json": b"{}"})
    code, _, err = run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team")
    assert code == 1
    assert "E071" in err


def test_help_teaches() -> None:
    for command in ("sign", "keygen"):
        code, out, _ = run(command, "--help")
        assert code == 0
        assert "Example" in out


# --- kill -9 -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_during_sign_leaves_a_bundle_that_verifies(analysis: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    (analysis / "noise.bin").write_bytes(random.Random(5).randbytes(12 * 1024 * 1024))  # several frames to copy
    bundle = build(analysis, output=tmp_path / "big.zst").output
    identity = verify(bundle, level="structure").identity
    old = bundle.read_bytes()
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    command = [sys.executable, "-m", "heparch", "sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--ssh"]
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    full = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    new = bundle.read_bytes()
    assert new != old
    rng = random.Random(9)
    outcomes = set()
    for i in range(10):
        bundle.write_bytes(old)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * (i + rng.random()) / 10)  # spread the kills over the whole run
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = bundle.read_bytes()
        assert now in (old, new), f"kill after {i}: the bundle is neither the old nor the new one"
        outcomes.add(now == new)
        result = verify(bundle, level="structure")
        assert result.valid
        assert result.identity == identity
    assert outcomes, "no kill happened"
    assert subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0
    assert list(tmp_path.glob(".big.zst.*")) == []  # a kill leaves at most a locked temporary, which the next run sweeps


def test_concurrent_signers_both_land(analysis: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    bundle = build(analysis, output=tmp_path / "shared.zst").output
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "heparch", "sign", str(bundle), "--key", str(keys[name]), "--role", "analysis-team"], env=env, stderr=subprocess.PIPE
        )
        for name in ("alice", "bob", "carol")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    result = verify(bundle, level="structure")
    assert sorted(result.signatures) == sorted(f"signatures/analysis-team.{keyid(keys[n])}.dsse.json" for n in ("alice", "bob", "carol"))


def test_build_refuses_kept_signatures_after_an_edit(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    """extract -> build keeps the signatures (same identity); after an edit they would not
    verify, so build refuses them with a one-line error saying what to do."""
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--ssh")[0] == 0
    tree = tmp_path / "tree"
    assert run("extract", str(bundle), "-o", str(tree))[0] == 0
    same = tmp_path / "same.zst"
    code, _, err = run("build", str(tree), "-o", str(same))
    assert code == 0, err
    assert verify(same).valid
    (tree / "README.md").write_text("edited\n")
    edited = tmp_path / "edited.zst"
    code, _, err = run("build", str(tree), "-o", str(edited))
    assert code == 2
    assert "E074" in first_line(err)
    assert "remove" in err
    assert "arch sign" in err
    assert not edited.exists()


def test_signing_keeps_the_bundle_file_mode(bundle: Path, keys: dict[str, Path]) -> None:
    """An embargoed (0600) bundle stays 0600 after signing; it used to become 0644."""
    bundle.chmod(0o600)
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team")[0] == 0
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert verify(bundle).valid


def test_trust_needs_the_payload_hashed(bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p.yaml", {"analysis-team": 1}, alice=(keys["alice"], ["analysis-team"]))
    assert run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team")[0] == 0
    code, _, err = run("verify", str(bundle), "--level", "structure", "--trust", str(policy))
    assert code == 2
    assert "--trust needs --level fixity or full" in err
    assert run("verify", str(bundle), "--level", "fixity", "--trust", str(policy))[0] == 0


def test_detached_ssh_signature_can_be_attached(bundle: Path, keys: dict[str, Path], analysis: Path, tmp_path: Path) -> None:
    """--detached --ssh writes both files beside the bundle; --attach takes either, and refuses
    an sshsig made over another bundle's manifest (E077)."""
    code, _, err = run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team", "--ssh", "--detached")
    assert code == 0, err
    kid = keyid(keys["alice"])
    dsse = tmp_path / f"toy.zst.analysis-team.{kid}.dsse.json"
    sshsig = tmp_path / f"toy.zst.analysis-team.{kid}.sshsig"
    for file in (dsse, sshsig):
        code, _, err = run("sign", str(bundle), "--attach", str(file))
        assert code == 0, err
    code, report, _ = verify_json(str(bundle))
    assert code == 0
    assert sorted((s["file"], s["kind"]) for s in report["signatures"]) == [
        (f"signatures/analysis-team.{kid}.dsse.json", "dsse"),
        (f"signatures/analysis-team.{kid}.sshsig", "sshsig"),
    ]
    (analysis / "README.md").write_text("another bundle\n")
    other = build(analysis, output=tmp_path / "other.zst").output
    code, _, err = run("sign", str(other), "--attach", str(sshsig))
    assert code == 1
    assert "E077" in err


@pytest.mark.parametrize("vector", ["E064_patch_does_not_apply", "E060_component_too_deep"])
def test_sign_refuses_a_bundle_that_fails_full_verification(vector: str, keys: dict[str, Path], tmp_path: Path) -> None:
    """A signature attests content that passed every check, semantics included (not only the
    structure): docs/signing.md 'exits 1 when the bundle is invalid'."""
    bundle = tmp_path / "b.zst"
    shutil.copy(Path(__file__).resolve().parent.parent / "conformance" / "1.0" / "invalid" / vector / "bundle.zst", bundle)
    before = bundle.read_bytes()
    code, _, err = run("sign", str(bundle), "--key", str(keys["alice"]), "--role", "analysis-team")
    assert code == 1, err
    assert f"cannot sign an invalid bundle: {vector[:4]}" in err
    assert bundle.read_bytes() == before
