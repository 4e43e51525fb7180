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
from heparch.export.common import Deposit, Source, date_of, json_bytes, links, require

SCHEMA_VERSION = "http://datacite.org/schema/kernel-4"
#: the relation of the bundle to each kind of related identifier
RELATION = {"inspire": "IsSupplementTo", "arxiv": "IsSupplementTo", "doi": "IsSupplementTo", "hepdata": "IsDerivedFrom"}
IDENTITY_TYPE = "heparch bundle identity (sha256 of data/manifest.json)"


def metadata(src: Source, deposit: Deposit) -> dict[str, Any]:
    """The DataCite 4.5 record of the bundle (JSON form); refused where a required value is missing."""
    doi = require(deposit.doi, "datacite", "the DOI", "give --doi (the DOI the repository reserved, e.g. 10.5281/zenodo.123) or deposit.doi in arch.yaml")
    publisher = require(deposit.publisher, "datacite", "the publisher", "give --publisher (e.g. Zenodo) or deposit.publisher in arch.yaml")
    year = require(None if deposit.year is None else str(deposit.year), "datacite", "the publication year", "give --year or deposit.year in arch.yaml")
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


def creators(src: Source) -> list[dict[str, Any]]:
    """The collaboration (an organisation), else the contacts; refused without either."""
    a = src.analysis
    if a.collaboration:
        return [{"name": a.collaboration, "nameType": "Organizational"}]
    people = [{"name": c.name} for c in a.contacts or () if c.name]
    if not people:
        raise InputError(
            "cannot export datacite: the creators are missing; add analysis.collaboration or analysis.contacts (with a name) to arch.yaml and rebuild"
        )
    return people


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
        raise MissingBackend("DataCite XML needs the datacite package: pip install datacite (or write JSON: -o NAME.json)") from None
    return str(schema45.tostring(record)).encode("utf-8")
