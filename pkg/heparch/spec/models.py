"""Frozen models of the manifest (``spec/schemas/1.0.0/manifest.json``).

The JSON Schema is the source of truth; ``tests/test_spec_models.py`` proves these
models have the same fields. Unknown fields are kept (``extra="allow"``) so a
1.0 reader can read, report and round-trip a 1.x manifest.

>>> d = Digest.parse("sha256:" + "0" * 64)
>>> str(d) == "sha256:" + "0" * 64
True
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ROLES = ("likelihood", "patchset", "patch", "simplified-likelihood", "results", "signal-interface", "code", "attachment")
_HEX = {"sha256": 64, "sha512": 128}


@dataclasses.dataclass(frozen=True, order=True)
class Digest:
    """A content digest ``<algorithm>:<lowercase hex>``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, _, value = text.partition(":")
        if algorithm not in _HEX or not re.fullmatch(f"[0-9a-f]{{{_HEX[algorithm]}}}", value):
            raise ValueError(f"{text!r} is not a digest like sha256:<64 lowercase hex>")
        return cls(algorithm, value)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@functools.lru_cache(maxsize=1 << 15)
def _hex_of(digest: str) -> str:
    """The hex of a digest string, parsed once (a verify asks each entry's hex several times:
    ~60,000 regex matches for 5,000 patch files before this cache)."""
    return Digest.parse(digest).hex


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    def unknown_fields(self, prefix: str) -> list[str]:
        """JSON paths of fields this version of the format does not define."""
        found = [f"{prefix}.{k}" for k in (self.model_extra or {})]
        for name in type(self).model_fields:
            for where, item in _models_in(getattr(self, name), f"{prefix}.{name}"):
                found += item.unknown_fields(where)
        return found


def _models_in(value: Any, where: str) -> list[tuple[str, _Model]]:
    """The models a field holds, with their JSON paths: its value, or each item of a list or tuple."""
    if isinstance(value, (list, tuple)):
        return [(f"{where}[{i}]", item) for i, item in enumerate(value) if isinstance(item, _Model)]
    return [(where, value)] if isinstance(value, _Model) else []


class BundleFormat(_Model):
    uri: str
    version: str


class Contact(_Model):
    name: str | None = None
    email: str | None = None
    affiliation: str | None = None
    orcid: str | None = None


class Analysis(_Model):
    title: str | None = None
    collaboration: str | None = None
    experiment: str | None = None
    description: str | None = None
    inspire: str | None = None
    arxiv: str | None = None
    hepdata: str | None = None
    doi: str | None = None
    sqrt_s_TeV: float | None = None
    luminosity_ifb: float | None = None
    license: str | None = None
    keywords: tuple[str, ...] | None = None
    contacts: tuple[Contact, ...] | None = None
    axes: dict[str, str] | None = None  # label of a patchset axis -> its title in plots, e.g. "m(chargino) [GeV]"


class Container(_Model):
    name: str
    reference: str
    description: str | None = None


class Supersedes(_Model):
    """The bundle this one is a new version of, and what changed."""

    identity: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    note: str | None = Field(default=None, min_length=1, max_length=10000)


DOI_PATTERN = r"^10\.[0-9]{4,9}/\S+$"  # a bare DOI, DataCite 4.5's pattern


class Deposit(_Model):
    """What a repository assigned at deposit: the DOI it reserved, the publisher, the publication year."""

    doi: str | None = Field(default=None, pattern=DOI_PATTERN)
    publisher: str | None = Field(default=None, min_length=1, max_length=200)
    year: int | None = Field(default=None, ge=1000, le=9999)


class Fixity(_Model):
    sha512: str


class FileEntry(_Model):
    path: str
    role: str
    mediaType: str
    digest: str
    size: int
    fixity: Fixity
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def hex(self) -> str:
        return _hex_of(self.digest)

    @property
    def likelihood(self) -> str | None:
        """The logical path of the likelihood this component belongs to, if it names one."""
        return self.annotations.get("likelihood")


class Manifest(_Model):
    bundleFormat: BundleFormat
    name: str | None = None
    created: str | None = None
    analysis: Analysis | None = None
    containers: tuple[Container, ...] | None = None
    supersedes: Supersedes | None = None
    deposit: Deposit | None = None
    files: tuple[FileEntry, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Manifest:
        return cls.model_validate(obj)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)

    def by_role(self, role: str) -> list[FileEntry]:
        return [f for f in self.files if f.role == role]
