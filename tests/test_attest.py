"""arch replay --attest (issue 15 item 4): a signed record of a reproduction, counted by trust
policies, listed by arch verify and arch inspect, and refused when forged or spliced."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from heparch.build import build
from heparch.errors import InvalidBundle
from heparch.signing.check import check_signatures, results_digests
from heparch.signing.envelope import ReplayedPoint, ReplayRecord, make_envelope, signature_name
from heparch.signing.keys import Signer, parse_public_key
from heparch.verify import verify

from clihelp import run
from conftest import EXAMPLE, copy_tree

EPOCH = "1714521600"  # 2024-05-01T00:00:00Z


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("HEPARCH_PASSPHRASE", raising=False)
    monkeypatch.delenv("HEPARCH_KEY", raising=False)


@pytest.fixture(scope="module")
def toy(example_bundle: Path) -> Path:
    return example_bundle


@pytest.fixture(scope="module")
def attested(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(bundle replayed with --attest, the key, the replay's --json document)."""
    tmp = tmp_path_factory.mktemp("attested")
    key = tmp / "ci"
    assert run("keygen", "-o", str(key))[0] == 0
    bundle = Path(shutil.copy(toy, tmp / "toy.zst"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        code, out, err = run("replay", str(bundle), "--attest", str(key), "--role", "replay-ci", "--jobs", "1", "--no-simplified", "--json")
    assert code == 0, err
    return bundle, key, json.loads(out)


def _policy(path: Path, key: Path, role: str = "replay-ci") -> Path:
    pub = key.with_name(key.name + ".pub").read_text().strip()
    path.write_text(f'keys:\n  - name: ci\n    public_key: "{pub}"\n    roles: [{role}]\nrequire:\n  {role}: 1\n')
    return path


def test_attest_keeps_the_identity_and_records_every_point(toy: Path, attested: tuple[Path, Path, dict]) -> None:
    bundle, _, doc = attested
    before, after = verify(toy), verify(bundle)
    assert after.valid
    assert after.identity == before.identity
    assert doc["attested"]["identity"] == before.identity
    assert doc["attested"]["role"] == "replay-ci"
    assert [n for n in after.signatures if n.startswith("signatures/replay-ci.")] == doc["attested"]["written"]
    check = after.signature_check
    assert check is not None
    (sig,) = check.valid
    assert sig.replay is not None
    assert {(p.likelihood, p.point) for p in sig.replay.points} == {(p["likelihood"], p["point"]) for p in doc["points"].values()}
    assert sig.replay.date == sig.time == "2024-05-01T00:00:00Z"
    assert sig.replay.worst_ratio is not None
    assert 0 <= sig.replay.worst_ratio <= 1
    assert dict(sig.replay.results) == results_digests(after.manifest_bytes or b"") != {}


def test_a_policy_requiring_replay_ci_passes_with_the_attestation_and_fails_without(toy: Path, attested: tuple[Path, Path, dict], tmp_path: Path) -> None:
    bundle, key, _ = attested
    policy = _policy(tmp_path / "policy.yaml", key)
    code, out, err = run("verify", str(bundle), "--trust", str(policy))
    assert code == 0, err
    assert "reproduced 2024-05-01T00:00:00Z: 35 points agreed" in out
    assert "trusted" in out
    code, out, err = run("verify", str(toy), "--trust", str(policy), "--json")
    assert code == 1
    assert "E078" in {f["code"] for f in json.loads(out)["findings"]}


def test_verify_and_inspect_list_the_reproduction(attested: tuple[Path, Path, dict]) -> None:
    bundle, _, _ = attested
    code, out, err = run("verify", str(bundle), "--json")
    assert code == 0, err
    (sig,) = json.loads(out)["signatures"]
    assert sig["role"] == "replay-ci"
    assert sig["replay"]["points"] == 35
    assert sig["replay"]["backends"]
    code, out, err = run("inspect", str(bundle), "--json")
    assert code == 0, err
    (rep,) = json.loads(out)["reproductions"]
    assert rep["file"] == sig["file"]
    assert rep["points"] == 35
    assert rep["heparch"] == sig["replay"]["heparch"]
    code, out, _ = run("inspect", str(bundle))
    assert "reproduced 2024-05-01T00:00:00Z: 35 points agreed" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sample", "3"], "drop --sample"),
        (["--point", "C1N2_200_0"], "drop --point"),
        (["--likelihood", "BkgOnly.json"], "drop --likelihood"),
        ([], "needs --role"),
        (["--role", "Replay CI"], "--role: role"),
    ],
)
def test_attest_refuses_a_partial_replay_before_any_work(toy: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    bundle = Path(shutil.copy(toy, tmp_path / "toy.zst"))
    key = tmp_path / "ci"
    assert run("keygen", "-o", str(key))[0] == 0
    code, _, err = run("replay", str(bundle), "--attest", str(key), *(extra if "--role" in extra or not extra else [*extra, "--role", "replay-ci"]))
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert bundle.read_bytes() == toy.read_bytes()


def test_role_without_attest_is_refused(toy: Path) -> None:
    code, _, err = run("replay", str(toy), "--role", "replay-ci")
    assert code == 2
    assert "give --attest KEY too" in err


def test_the_key_from_the_environment(toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = Path(shutil.copy(toy, tmp_path / "toy.zst"))
    code, _, err = run("replay", str(bundle), "--attest", "env:HEPARCH_KEY", "--role", "replay-ci")
    assert code == 2
    assert "$HEPARCH_KEY is not set" in err
    key = tmp_path / "ci"
    assert run("keygen", "-o", str(key), "--passphrase-file", str(_text(tmp_path / "pw", "s3cret\n")))[0] == 0
    monkeypatch.setenv("HEPARCH_KEY", key.read_text())
    code, _, err = run("replay", str(bundle), "--attest", "env:HEPARCH_KEY", "--role", "replay-ci", "--sample", "1")
    assert code == 2
    assert "drop --sample" in err
    code, _, err = run("replay", str(bundle), "--attest", "env:HEPARCH_KEY", "--role", "replay-ci")
    assert code == 2
    assert "$HEPARCH_KEY: the key is encrypted" in err
    monkeypatch.setenv("HEPARCH_PASSPHRASE", "s3cret")
    monkeypatch.setenv("HEPARCH_KEY", "ssh-ed25519 AAAA not a private key")
    code, _, err = run("replay", str(bundle), "--attest", "env:HEPARCH_KEY", "--role", "replay-ci")
    assert code == 2
    assert "is a public key" in err
    assert bundle.read_bytes() == toy.read_bytes()


def test_an_encrypted_key_with_its_passphrase_file(toy: Path, tmp_path: Path) -> None:
    """--passphrase-file as for arch sign: the hint names it, the key is read with it before any
    work, and it belongs to --attest."""
    bundle = Path(shutil.copy(toy, tmp_path / "toy.zst"))
    pw = _text(tmp_path / "pw", "s3cret\n")
    key = tmp_path / "ci"
    assert run("keygen", "-o", str(key), "--passphrase-file", str(pw))[0] == 0
    attest = ("replay", str(bundle), "--attest", str(key), "--role", "replay-ci", "--jobs", "1", "--no-simplified")
    code, _, err = run(*attest)
    assert code == 2
    assert f"{key}: the key is encrypted; give its passphrase with --passphrase-file FILE or $HEPARCH_PASSPHRASE" in err
    assert "replaying" not in err  # refused before any work
    code, _, err = run(*attest, "--passphrase-file", str(_text(tmp_path / "wrong", "guess\n")))
    assert code == 2
    assert "wrong passphrase" in err
    code, _, err = run("replay", str(bundle), "--passphrase-file", str(pw))
    assert code == 2
    assert "--passphrase-file is the passphrase of --attest's key; give --attest KEY too" in err
    assert bundle.read_bytes() == toy.read_bytes()
    code, out, err = run(*attest, "--passphrase-file", str(pw), "--json")
    assert code == 0, err
    pub = key.with_name("ci.pub").read_text()
    assert json.loads(out)["attested"]["keyid"] == parse_public_key(pub).keyid
    check = verify(bundle).signature_check
    assert check is not None
    (sig,) = check.valid
    assert sig.replay is not None


def test_a_passphrase_file_for_a_key_without_one_is_refused(toy: Path, tmp_path: Path) -> None:
    key = tmp_path / "ci"
    assert run("keygen", "-o", str(key))[0] == 0
    code, _, err = run("replay", str(toy), "--attest", str(key), "--role", "replay-ci", "--passphrase-file", str(_text(tmp_path / "pw", "x\n")))
    assert code == 2
    assert "the key is not encrypted; drop --passphrase-file" in err


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_failed_replay_is_never_signed(tmp_path: Path) -> None:
    source = copy_tree(EXAMPLE, tmp_path / "analysis")
    results = json.loads((source / "results.json").read_text())
    first = sorted(results["points"])[0]
    results["points"] = {first: {**results["points"][first], "CLs_obs": min(1.0, results["points"][first]["CLs_obs"] * 1.5 + 0.1)}}
    (source / "results.json").write_text(json.dumps(results))
    bundle = build(source, output=tmp_path / "wrong.zst").output
    before = bundle.read_bytes()
    key = tmp_path / "ci"
    assert run("keygen", "-o", str(key))[0] == 0
    code, _, err = run("replay", str(bundle), "--attest", str(key), "--role", "replay-ci", "--jobs", "1", "--no-simplified")
    assert code == 1, err
    assert "attested" not in err
    assert bundle.read_bytes() == before


# --- forged and spliced records (the checker; the same cases are conformance vectors) ---------------


def _record(results: dict[str, str]) -> ReplayRecord:
    return ReplayRecord("0.1.0", "Linux; CPython 3.11", "2024-05-01T00:00:00Z", results, (ReplayedPoint("BkgOnly.json", "C1N2_200_0", "fast", 0.25),))


def _check(bundle: Path, name: str, data: bytes) -> tuple[set[str], list]:
    v = verify(bundle, level="structure")
    assert v.identity is not None
    assert v.manifest_bytes is not None
    check = check_signatures(identity=v.identity, manifest_bytes=v.manifest_bytes, in_bundle={"signatures/" + name: data})
    return {f.code for f in check.findings} - {"W007"}, check.valid


def _forged(bundle: Path, signer: Signer, **change: object) -> tuple[str, bytes]:
    v = verify(bundle, level="structure")
    assert v.identity is not None
    assert v.manifest_bytes is not None
    record = change.get("record") or _record(results_digests(v.manifest_bytes))
    identity = str(change.get("identity") or v.identity)
    data = make_envelope(signer, identity=identity, name="toy", role="replay-ci", time="2024-05-01T00:00:00Z", replay=record)  # type: ignore[arg-type]
    return signature_name("replay-ci", signer.public.keyid, "dsse"), data


def test_a_well_formed_record_verifies(toy: Path) -> None:
    signer = Signer.from_seed(bytes(range(32)))
    codes, valid = _check(toy, *_forged(toy, signer))
    assert codes == set()
    assert valid[0].replay.points[0].point == "C1N2_200_0"


def test_a_record_of_another_bundle_is_refused_e079(toy: Path) -> None:
    """The replay member of another bundle's envelope, signed again for this bundle, names results it does not hold."""
    signer = Signer.from_seed(bytes(range(32)))
    other = {"results.json": "sha256:" + "ab" * 32}
    codes, valid = _check(toy, *_forged(toy, signer, record=_record(other)))
    assert codes == {"E079"}
    assert valid == []


def test_a_modified_payload_is_refused_e073(toy: Path) -> None:
    signer = Signer.from_seed(bytes(range(32)))
    name, data = _forged(toy, signer)
    env = json.loads(data)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["replay"]["points"][0]["worst_ratio"] = 0.0
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    codes, _ = _check(toy, name, json.dumps(env).encode())
    assert codes == {"E073"}


def test_a_record_for_another_identity_is_refused_e074(toy: Path) -> None:
    signer = Signer.from_seed(bytes(range(32)))
    codes, _ = _check(toy, *_forged(toy, signer, identity="sha256:" + "cd" * 32))
    assert codes == {"E074"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("points"), "has no 'points'"),
        (lambda r: r.update(points=[]), "non-empty list"),
        (lambda r: r["points"][0].update(worst_ratio=1.5), "from 0 to 1"),
        (lambda r: r.update(backends=["pyhf"]), "backends of replay.points"),
        (lambda r: r.update(date="yesterday"), "UTC YYYY-MM-DD"),
        (lambda r: r.update(heparch=3), "non-empty string"),
    ],
)
def test_a_malformed_record_is_refused_e079(toy: Path, edit: object, message: str) -> None:
    from heparch.signing.envelope import PAYLOAD_TYPE, pae
    from heparch.spec import strictjson

    signer = Signer.from_seed(bytes(range(32)))
    name, data = _forged(toy, signer)
    statement = json.loads(base64.b64decode(json.loads(data)["payload"]))
    edit(statement["predicate"]["replay"])  # type: ignore[operator]
    payload = strictjson.canonical(statement)
    sig = base64.b64encode(signer.sign(pae(PAYLOAD_TYPE, payload))).decode()
    env = {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid": signer.public.keyid, "sig": sig}]}
    v = verify(toy, level="structure")
    assert v.identity is not None
    assert v.manifest_bytes is not None
    check = check_signatures(identity=v.identity, manifest_bytes=v.manifest_bytes, in_bundle={"signatures/" + name: json.dumps(env).encode()})
    (finding,) = [f for f in check.findings if f.code == "E079"]
    assert message in finding.message


def test_the_library_never_signs_a_record_a_reader_refuses(toy: Path, tmp_path: Path) -> None:
    from heparch.errors import InputError
    from heparch.sign import attest

    bundle = Path(shutil.copy(toy, tmp_path / "toy.zst"))
    identity = verify(bundle, level="structure").identity
    assert identity is not None
    signer = Signer.from_seed(bytes(range(32)))
    with pytest.raises(InputError, match=r"cannot attest this replay: replay.points\[0\].worst_ratio must be null or a number from 0 to 1"):
        attest(bundle, signer, role="replay-ci", identity=identity, points=[ReplayedPoint("BkgOnly.json", "C1N2_200_0", "fast", 1.5)])
    with pytest.raises(InvalidBundle, match="changed since it was replayed"):
        attest(bundle, signer, role="replay-ci", identity="sha256:" + "0" * 64, points=[ReplayedPoint("BkgOnly.json", "C1N2_200_0", "fast", 0.5)])
    assert bundle.read_bytes() == toy.read_bytes()
