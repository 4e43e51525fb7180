"""Trust policies: which keys may sign for which roles, and how many distinct keys each role needs.

A policy lives outside the bundle (the verifier's own file), in YAML (or JSON, a YAML subset)::

    keys:
      - name: alice
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... alice"   # or a PEM public key
        roles: [analysis-team]
    require:
      analysis-team: 1

It is parsed strictly (no anchors, aliases or tags, no duplicate or unknown keys) into a
frozen :class:`TrustPolicy`; :meth:`TrustPolicy.evaluate` counts each key once per role.

>>> policy = TrustPolicy(keys=(), require={})
>>> policy.evaluate([]).met
True
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from heparch.config import read_capped, reject_unsafe_yaml, yaml_error
from heparch.errors import InputError
from heparch.signing.keys import KeyFormatError, PublicKey, parse_public_key

#: a role name: lowercase letters, digits and '-', at most 24 characters (it is part of a tar entry name)
ROLE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
KEYID_RE = re.compile(r"^[0-9a-f]{64}$")


def role_problem(role: str) -> str | None:
    """Why ``role`` is not a valid role name, or None."""
    if ROLE_RE.fullmatch(role):
        return None
    return f"role {role!r} must be 1-24 characters of a-z, 0-9 and '-', starting with a letter or digit (e.g. analysis-team)"


@dataclasses.dataclass(frozen=True)
class TrustedKey:
    """One key of a policy: its name (for messages), key id, OpenSSH public-key line, roles."""

    name: str
    keyid: str
    public_key: str
    roles: frozenset[str]


@dataclasses.dataclass(frozen=True)
class RoleOutcome:
    """How one required role fared: the distinct trusted keys that signed for it."""

    role: str
    required: int
    signers: tuple[str, ...]  # key names, sorted

    @property
    def met(self) -> bool:
        return len(self.signers) >= self.required


@dataclasses.dataclass(frozen=True)
class TrustOutcome:
    """The policy's verdict over a set of valid signatures."""

    roles: tuple[RoleOutcome, ...]

    @property
    def met(self) -> bool:
        return all(r.met for r in self.roles)

    def to_json(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "roles": {r.role: {"required": r.required, "signers": list(r.signers), "met": r.met} for r in self.roles},
        }


@dataclasses.dataclass(frozen=True)
class TrustPolicy:
    """Trusted keys and the number of distinct keys each role needs."""

    keys: tuple[TrustedKey, ...]
    require: Mapping[str, int]

    def key(self, keyid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.keyid == keyid), None)

    def trusts(self, keyid: str, role: str) -> bool:
        """Whether the key ``keyid`` may sign for ``role``."""
        return any(k.keyid == keyid and role in k.roles for k in self.keys)

    def evaluate(self, signed: Iterable[tuple[str, str]]) -> TrustOutcome:
        """Count the distinct trusted keys per role among valid ``(role, keyid)`` signatures.

        A key counts once per role however many signatures it made (in the bundle or detached).
        """
        by_role = self._trusted_signers(signed)
        return TrustOutcome(tuple(RoleOutcome(role, needed, self._names(by_role.get(role, set()))) for role, needed in sorted(self.require.items())))

    def _trusted_signers(self, signed: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
        """Role -> the key ids among ``signed`` that the policy lets sign for it."""
        by_role: dict[str, set[str]] = {}
        for role, keyid in signed:
            key = self.key(keyid)
            if key is not None and role in key.roles:
                by_role.setdefault(role, set()).add(key.keyid)
        return by_role

    def _names(self, keyids: set[str]) -> tuple[str, ...]:
        """The sorted names of the keys ``keyids``."""
        return tuple(sorted({k.name for k in self.keys if k.keyid in keyids}))


_KEY_FIELDS = {"name", "public_key", "roles"}


def _fail(path: Path, where: str, message: str) -> InputError:
    return InputError(f"{path}: {where}: {message}")


def parse_policy(data: Any, path: Path) -> TrustPolicy:
    """A :class:`TrustPolicy` from parsed YAML/JSON; :class:`InputError` names the field and the fix."""
    if not isinstance(data, dict):
        raise InputError(f"{path}: a trust policy must be a mapping with 'keys' and 'require' (see 'arch verify --help')")
    unknown = sorted(set(data) - {"keys", "require"})
    if unknown:
        raise _fail(path, unknown[0], "unknown field; a trust policy has only 'keys' and 'require'")
    raw_keys = data.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise _fail(path, "keys", "must be a non-empty list of {name, public_key, roles}")
    keys: list[TrustedKey] = []
    for i, item in enumerate(raw_keys):
        keys.append(_parse_key(item, f"keys[{i}]", keys, path))
    return TrustPolicy(tuple(keys), _parse_require(data.get("require"), keys, path))


def _parse_key(item: Any, where: str, earlier: list[TrustedKey], path: Path) -> TrustedKey:
    """One entry of ``keys``, unique in name and key among the ``earlier`` ones."""
    _check_key_fields(item, where, path)
    name, text, roles = item["name"], item["public_key"], item["roles"]
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, f"{where}.name", "must be a non-empty string")
    public = _key_of(text, f"{where}.public_key", path)
    _check_roles(roles, f"{where}.roles", path)
    for j, other in enumerate(earlier):
        if other.name == name:
            raise _fail(path, f"{where}.name", f"{name!r} is already the name of keys[{j}]; names must be unique")
        if other.keyid == public.keyid:
            raise _fail(path, f"{where}.public_key", f"the same key as keys[{j}] ({other.name}); list each key once, with all its roles")
    return TrustedKey(name, public.keyid, public.openssh, frozenset(roles))


def _check_key_fields(item: Any, where: str, path: Path) -> None:
    """A key entry is a mapping of exactly name, public_key and roles."""
    if not isinstance(item, dict):
        raise _fail(path, where, "must be a mapping {name, public_key, roles}")
    extra = sorted(set(item) - _KEY_FIELDS)
    if extra:
        raise _fail(path, f"{where}.{extra[0]}", "unknown field; a key has name, public_key and roles")
    missing = sorted(_KEY_FIELDS - set(item))
    if missing:
        raise _fail(path, f"{where}.{missing[0]}", "required field is missing")


def _key_of(text: Any, where: str, path: Path) -> PublicKey:
    if not isinstance(text, str):
        raise _fail(path, where, "must be a string: an OpenSSH line 'ssh-ed25519 AAAA...' or a PEM public key")
    try:
        return parse_public_key(text)
    except KeyFormatError as exc:
        raise _fail(path, where, str(exc)) from None


def _check_roles(roles: Any, where: str, path: Path) -> None:
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise _fail(path, where, "must be a non-empty list of role names, e.g. [analysis-team]")
    for r in roles:
        _check_role_name(r, where, path)


def _check_role_name(role: str, where: str, path: Path) -> None:
    problem = role_problem(role)
    if problem:
        raise _fail(path, where, problem)


def _parse_require(require: Any, keys: list[TrustedKey], path: Path) -> dict[str, int]:
    """``require``: role -> number of distinct keys, each satisfiable by the listed ``keys``."""
    if not isinstance(require, dict) or not require:
        raise _fail(path, "require", "must map each role to the number of distinct keys it needs, e.g. {analysis-team: 1}")
    return {_required_role(role, count, keys, path): count for role, count in require.items()}


def _required_role(role: Any, count: Any, keys: list[TrustedKey], path: Path) -> str:
    """``role`` of ``require``, checked with its ``count``: a whole number the listed ``keys`` can reach."""
    where = f"require.{role}"
    if not isinstance(role, str):  # YAML reads `123: 1` as the integer 123, which no key's roles can hold
        raise _fail(path, where, "must be a role name (a string; quote a role made of digits)")
    _check_role_name(role, where, path)
    _check_count(count, role, keys, where, path)
    return role


def _check_count(count: Any, role: str, keys: list[TrustedKey], where: str, path: Path) -> None:
    """The number of keys ``require`` asks of ``role``: a whole number >= 1 the listed ``keys`` can reach."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _fail(path, where, f"must be a whole number >= 1, not {count!r}")
    eligible = sum(role in k.roles for k in keys)
    if eligible < count:
        raise _fail(path, where, f"needs {count} distinct keys but only {eligible} key(s) in 'keys' may sign for {role}; add keys or lower the number")


def load_policy(path: Path | str) -> TrustPolicy:
    """Read a trust policy file (YAML or JSON) strictly; raise :class:`InputError` naming the field and the fix."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when a policy is read
    from ruamel.yaml.constructor import DuplicateKeyError  # ruamel.yaml (~0.1 s): only when a policy is read
    from ruamel.yaml.error import YAMLError  # ruamel.yaml (~0.1 s): only when a policy is read

    path = Path(path)
    try:
        text = read_capped(path, "trust policy").decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the trust policy is not UTF-8 text") from None
    try:
        reject_unsafe_yaml(text, str(path))  # anchors, aliases, tags and nesting (config.MAX_DEPTH)
        data = YAML(typ="safe", pure=True).load(io.StringIO(text))
    except DuplicateKeyError as exc:
        raise InputError(f"{path}: duplicate key: {str(exc.problem or exc).splitlines()[0]}") from None
    except YAMLError as exc:
        raise yaml_error(str(path), exc) from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to be a trust policy") from None
    return parse_policy(data, path)
