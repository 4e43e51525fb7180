"""``arch export datacite``: DataCite Metadata Schema 4.5, as JSON (the ``datacite`` package's
JSON form) or XML (its ``schema45.tostring``).

The DOI, publisher and publication year are given at deposit (``--doi``, ``--publisher``,
``--year``), or recorded in the bundle from arch.yaml's ``deposit:`` (the options win); DataCite
requires them. The tests check
every export with ``datacite.schema45.validate``; heparch needs the package only for XML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heparch.errors import InputError, MissingBackend
from heparch.export import creators as people
from heparch.export.common import Deposit, Source, date_of, json_bytes, links, require

SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
#: the relation of the bundle to each kind of related identifier
RELATION = {"inspire": "IsSupplementTo", "arxiv": "IsSupplementTo", "doi": "IsSupplementTo", "hepdata": "IsDerivedFrom"}
IDENTITY_TYPE = "heparch bundle identity (sha256 of data/manifest.json)"


def metadata(src: Source, deposit: Deposit) -> dict[str, Any]:
    """The DataCite 4.5 record of the bundle (JSON form); refused where a required value is missing."""
    doi = _deposit_value(deposit.doi, "the DOI", "doi", "DOI (the DOI the repository reserved, e.g. 10.5281/zenodo.123)")
    publisher = _deposit_value(deposit.publisher, "the publisher", "publisher", "NAME (e.g. Zenodo)")
    year = _deposit_value(deposit.year, "the publication year", "year", "YYYY")
    title = require(src.title, "datacite", "analysis.title (or name)", "add analysis.title to arch.yaml and rebuild")
    record: dict[str, Any] = {
        "doi": doi,
        "creators": creators(src),
        "titles": [{"title": title}],
        "publisher": {"name": publisher},
        "publicationYear": year,
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "Likelihood bundle (heparch)"},
        "schemaVersion": SCHEMA_VERSION,
        "alternateIdentifiers": [{"alternateIdentifier": src.identity, "alternateIdentifierType": IDENTITY_TYPE}],
        "formats": ["application/zstd"],
    }
    record.update(_optional(src))
    return record


def _deposit_value(value: str | int | None, what: str, option: str, form: str) -> str:
    """A value the repository assigns at deposit (the parameter ``option``, else arch.yaml's
    ``deposit.<option>``), refused naming both when it is missing."""
    if value is None or not str(value).strip():
        raise InputError(f"cannot export datacite: {what} is missing; give {option}={form} or deposit.{option} in arch.yaml", option=option)
    return str(value)


def creators(src: Source) -> list[dict[str, str]]:
    """The collaboration (an organisation), else the contacts; refused without either."""
    return people.creators(src, "datacite", organisation=lambda name: {"name": name, "nameType": "Organizational"}, person=lambda c: {"name": c.name})


def _optional(src: Source) -> dict[str, Any]:
    """The recommended and optional properties the bundle has values for."""
    a = src.analysis
    fields = {
        "relatedIdentifiers": [
            {"relatedIdentifier": link.value, "relatedIdentifierType": link.scheme, "relationType": RELATION[link.kind]} for link in links(a)
        ],
        "descriptions": _one(a.description, lambda d: {"description": d, "descriptionType": "Abstract"}),
        "subjects": [{"subject": k} for k in a.keywords or ()],
        "rightsList": _one(
            a.license, lambda x: {"rights": x, "rightsIdentifier": x, "rightsIdentifierScheme": "SPDX", "schemeUri": "https://spdx.org/licenses/"}
        ),
        "contributors": _contacts(src) if a.collaboration else [],
        "dates": _one(date_of(src.about.created), lambda d: {"date": d, "dateType": "Created"}),
    }
    return {key: value for key, value in fields.items() if value}


def _one(value: str | None, make: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """``[make(value)]``, or no item without a value."""
    return [make(value)] if value else []


def _contacts(src: Source) -> list[dict[str, Any]]:
    return [{"name": c.name, "contributorType": "ContactPerson"} for c in src.analysis.contacts or () if c.name]


def render(record: dict[str, Any], *, xml: bool) -> bytes:
    """The record as JSON (sorted keys) or as DataCite XML."""
    if not xml:
        return json_bytes(record)
    try:
        from datacite import schema45  # optional, for XML only: the JSON needs nothing
    except ImportError:
        raise MissingBackend("DataCite XML needs the datacite package: pip install datacite (or write JSON: out=NAME.json)", option="out") from None
    return str(schema45.tostring(record)).encode("utf-8")
