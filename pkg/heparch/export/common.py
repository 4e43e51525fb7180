"""What every export reads from a verified bundle, the links its metadata gives, and how exports are written.

A bundle is verified in full before anything is read (as ``arch extract`` does: one open file
for verifying and reading, so a file renamed onto the path meanwhile changes nothing). Values
come from the bundle as recorded; a field an export format requires and the bundle lacks is
refused with :func:`require`, naming the field and how to supply it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from heparch import analysis as domain
from heparch.errors import InputError, InvalidBundle
from heparch.spec.components import ResultPoint, Results
from heparch.store import tmpfiles
from heparch.verify import verify_open

#: the bytes of one output file, as chunks
Chunks = Iterable[bytes]

_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$")
_BARE_DOI = re.compile(r"^10\.[0-9]{4,9}/\S+$")  # DataCite 4.5's pattern for doi
_INSPIRE = re.compile(r"^(?:ins)?(\d+)$")


@dataclasses.dataclass(frozen=True)
class Claims:
    """The claimed results of one likelihood, with the label values of its points."""

    path: str  # logical path of the results component
    results: Results
    labels: tuple[str, ...]  # the patchset's labels (empty when it has none)
    values: dict[str, tuple[float, ...]]  # point -> one number per label, for points that have them all
    points: tuple[tuple[str, ResultPoint], ...]  # the claimed points and their values, in the component's order


@dataclasses.dataclass(frozen=True)
class Source:
    """A verified bundle's identity, and what its manifest says about it (:class:`heparch.analysis.Description`)."""

    path: Path
    identity: str
    about: domain.Description

    @property
    def analysis(self) -> domain.Metadata:
        """The manifest's analysis metadata (empty without one)."""
        return self.about.metadata

    @property
    def title(self) -> str | None:
        """The analysis title, else the bundle name."""
        return self.analysis.title or self.about.name


@dataclasses.dataclass(frozen=True)
class Link:
    """A related identifier the metadata gives: ``kind`` is inspire, arxiv, doi or hepdata."""

    kind: str
    value: str  # as the scheme writes it (a bare DOI, an arXiv id, a URL)
    scheme: str  # DOI, arXiv or URL
    url: str


@dataclasses.dataclass(frozen=True)
class Deposit:
    """What a repository assigns at deposit and a bundle cannot hold before it (``--doi``,
    ``--publisher``, ``--year``): None where not given."""

    doi: str | None = None
    publisher: str | None = None
    year: int | None = None

    def or_recorded(self, recorded: domain.RecordedDeposit | None) -> Deposit:
        """These values, each one not given taken from the bundle's manifest ``deposit`` (the options win)."""
        if recorded is None:
            return self
        return Deposit(
            doi=self.doi if self.doi is not None else recorded.doi,
            publisher=self.publisher if self.publisher is not None else recorded.publisher,
            year=self.year if self.year is not None else recorded.year,
        )

    def check(self) -> None:
        """Refuse a ``--doi`` that is not a bare DOI (DataCite's and CFF's form: ``10.NNNN/suffix``)."""
        if self.doi is not None and not _BARE_DOI.match(self.doi):
            raise InputError(f"doi {self.doi!r}: not a DOI; give it as 10.NNNN/suffix, without https://doi.org/", option="doi")


@dataclasses.dataclass(frozen=True)
class Written:
    """What an export wrote."""

    format: str
    bundle: str
    identity: str
    output: str
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "bundle": self.bundle, "identity": self.identity, "output": self.output, "files": list(self.files)}


def require(value: str | None, fmt: str, field: str, how: str) -> str:
    """``value``, or a refusal naming the ``field`` the ``fmt`` export needs and ``how`` to supply it."""
    if value is None or not str(value).strip():
        raise InputError(f"cannot export {fmt}: {field} is missing; {how}")
    return str(value)


# --- reading ---------------------------------------------------------------------------------


@contextlib.contextmanager
def verified(path: Path | str) -> Iterator[tuple[domain.OpenBundle, BinaryIO]]:
    """The bundle at ``path``, opened after it verified in full (exit 1 with the findings
    otherwise), and the open file it was verified from (for an export that copies the bundle)."""
    path = Path(path)
    try:
        fh: BinaryIO = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    with fh:
        result = verify_open(fh, level="full")
        if not result.valid:
            raise InvalidBundle(f"{path}: does not verify; nothing exported (run 'arch verify {path}')", findings=result.report.errors)
        with domain.OpenBundle(path, fileobj=fh) as bundle:
            if bundle.identity != result.identity:
                raise InvalidBundle(f"{path}: changed while it was being exported; nothing exported (verify it and export again)")
            yield bundle, fh


def source(bundle: domain.OpenBundle) -> Source:
    """The :class:`Source` of an open, verified bundle."""
    analysis = domain.Analysis.of(bundle)
    return Source(analysis.source, analysis.identity, analysis.about)


def claims(bundle: domain.OpenBundle) -> list[Claims]:
    """The claims of each claimed likelihood, in logical-path order, read through the domain model
    (each likelihood's points are read for their label values: only the exports that show claims call this)."""
    analysis = domain.Analysis.of(bundle)
    return [_claims(domain.claims_of(bundle, lk)) for lk in analysis.claimed()]


def _claims(found: domain.Claims) -> Claims:
    values = {c.point.name: numbers for c in found.claims if (numbers := c.point.numbers) is not None}
    return Claims(found.path, found.results, found.labels or (), values, tuple((c.point.name, c.values) for c in found.claims))


# --- links -----------------------------------------------------------------------------------


def links(analysis: domain.Metadata) -> list[Link]:
    """The related identifiers of the analysis metadata (INSPIRE, arXiv, publication DOI, HEPData),
    each value as recorded; a value of a form not recognised is left out."""
    found = (_inspire_link(analysis.inspire), _arxiv_link(analysis.arxiv), _doi_link(analysis.doi), _hepdata_link(analysis.hepdata))
    return [link for link in found if link is not None]


def _match(pattern: re.Pattern[str], value: str | None) -> re.Match[str] | None:
    """``value`` (stripped) matched by ``pattern``; None without a value."""
    return pattern.match(value.strip()) if value else None


def _inspire_link(value: str | None) -> Link | None:
    if not (m := _match(_INSPIRE, value)):
        return None
    url = f"https://inspirehep.net/literature/{m.group(1)}"
    return Link("inspire", url, "URL", url)


def _arxiv_link(value: str | None) -> Link | None:
    if not value:
        return None
    arxiv = value.strip().removeprefix("arXiv:")
    return Link("arxiv", f"arXiv:{arxiv}", "arXiv", f"https://arxiv.org/abs/{arxiv}")


def _doi_link(value: str | None) -> Link | None:
    if not (m := _match(_DOI, value)):
        return None
    return Link("doi", m.group(1), "DOI", f"https://doi.org/{m.group(1)}")


def _hepdata_link(value: str | None) -> Link | None:
    """HEPData's record: a DOI, or the INSPIRE id HEPData files it under."""
    if m := _match(_DOI, value):
        return Link("hepdata", m.group(1), "DOI", f"https://doi.org/{m.group(1)}")
    if m := _match(_INSPIRE, value):
        url = f"https://www.hepdata.net/record/ins{m.group(1)}"
        return Link("hepdata", url, "URL", url)
    return None


def date_of(created: str | None) -> str | None:
    """The calendar date (YYYY-MM-DD) of an RFC 3339 ``created``, None without one."""
    if created and re.match(r"^\d{4}-\d{2}-\d{2}", created):
        return created[:10]
    return None


# --- writing ---------------------------------------------------------------------------------


def json_bytes(obj: Any) -> bytes:
    """JSON with sorted keys, two-space indents and a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def check_not_input(target: Path, bundle: Path) -> None:
    """Refuse to write the export over the bundle it is made from."""
    if target.exists() and bundle.exists() and os.path.samefile(target, bundle):
        raise InputError(f"{target}: is the bundle being exported; write the export to another path")


def _check_target(target: Path) -> None:
    if target.is_symlink():
        raise InputError(f"{target}: is a symbolic link; write the export to a real path")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent}: parent directory does not exist")


def write_file(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file renamed into place."""
    _check_target(target)
    if target.is_dir():
        raise InputError(f"{target}: is a directory; give a file name with -o")
    with tmpfiles.output(target) as out:
        out.file.write(data)
        out.commit(0o644)
    return target


def write_directory(target: Path, files: Sequence[tuple[str, Chunks]]) -> Path:
    """Write ``files`` (flat names) into the new or empty directory ``target``: staged beside it and
    renamed into place at the end, so a failure leaves nothing behind."""
    _check_target(target)
    _check_new_or_empty(target)
    with tmpfiles.staging_dir(target) as staging:
        for name, chunks in files:
            _write_new(staging / _flat(name), chunks)
        os.chmod(staging, 0o755)  # a staging directory is private (0700) until it is the output
        if target.exists():
            target.rmdir()
        os.rename(staging, target)
    return target


def _check_new_or_empty(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target}: exists and is not an empty directory; choose a new directory (or a .zip)")


def _write_new(path: Path, chunks: Chunks) -> None:
    """A new file (never an existing one or through a link) of these bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.writelines(chunks)


def write_zip(target: Path, files: Sequence[tuple[str, Chunks]]) -> Path:
    """Write ``files`` (flat names) as a zip archive with fixed timestamps, renamed into place."""
    _check_target(target)
    if target.is_dir():
        raise InputError(f"{target}: is a directory; give a .zip file name or a new directory with -o")
    with tmpfiles.output(target) as out:
        with zipfile.ZipFile(out.file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, chunks in files:
                info = zipfile.ZipInfo(_flat(name), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with archive.open(info, "w", force_zip64=True) as member:  # sizes are not known ahead: a bundle may pass 2 GiB
                    member.writelines(chunks)
        out.commit(0o644)
    return target


def _flat(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise InputError(f"{name!r}: not a plain file name for the export")  # the exports name their files: a bug guard
    return name
