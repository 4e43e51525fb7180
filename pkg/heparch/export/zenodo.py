"""``arch export zenodo``: the ``metadata`` object of Zenodo's legacy deposit API (the content of a
``.zenodo.json``), checked by :func:`check` since Zenodo publishes no validator.

The rules checked are those of the legacy REST API's deposit metadata
(https://developers.zenodo.org/#representation, "Deposit metadata"): ``upload_type``, ``title``,
``creators`` (each with a ``name``) and ``description`` are required; ``publication_date`` is
ISO 8601 (Zenodo sets the day of publishing when it is absent); ``related_identifiers`` each have
an ``identifier`` and a ``relation`` from Zenodo's list.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from heparch.errors import InputError
from heparch.export.common import Deposit, Source, date_of, links, require
from heparch.export.creators import creators

UPLOAD_TYPES: Final = frozenset({"publication", "poster", "presentation", "dataset", "image", "video", "software", "lesson", "physicalobject", "other"})
ACCESS_RIGHTS: Final = frozenset({"open", "embargoed", "restricted", "closed"})
RELATIONS: Final = frozenset(
    {
        "isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues", "isDescribedBy", "describes",
        "hasMetadata", "isMetadataFor", "isNewVersionOf", "isPreviousVersionOf", "isPartOf", "hasPart", "isReferencedBy",
        "references", "isDocumentedBy", "documents", "isCompiledBy", "compiles", "isVariantFormOf", "isOriginalFormof",
        "isIdenticalTo", "isAlternateIdentifier", "isReviewedBy", "reviews", "isDerivedFrom", "isSourceOf", "requires",
        "isRequiredBy", "isObsoletedBy", "obsoletes",
    }
)  # fmt: skip
_RELATION = {"inspire": "isSupplementTo", "arxiv": "isSupplementTo", "doi": "isSupplementTo", "hepdata": "isDerivedFrom"}
_SCHEME = {"URL": "url", "arXiv": "arxiv", "DOI": "doi"}
_REQUIRED: Final = ("upload_type", "title", "creators", "description")
_STRINGS: Final = ("title", "description", "notes", "doi", "license", "publication_date")


def metadata(src: Source, deposit: Deposit) -> dict[str, Any]:
    """The deposit metadata of the bundle; refused where a required value is missing."""
    a = src.analysis
    meta: dict[str, Any] = {
        "upload_type": "dataset",
        "title": require(src.title, "zenodo", "analysis.title (or name)", "add analysis.title to arch.yaml and rebuild"),
        "creators": _creators(src),
        "description": require(a.description, "zenodo", "analysis.description", "add analysis.description to arch.yaml and rebuild"),
        "access_right": "open",
        "notes": f"heparch bundle identity {src.identity} (sha256 of data/manifest.json; check it with 'arch verify')",
    }
    optional = {
        "publication_date": date_of(src.about.created),
        "doi": deposit.doi,
        "license": (a.license or "").lower(),  # Zenodo's license ids are the SPDX ids in lower case
        "keywords": list(a.keywords or ()),
        "related_identifiers": [{"identifier": link.value, "relation": _RELATION[link.kind], "scheme": _SCHEME[link.scheme]} for link in links(a)],
    }
    meta.update((key, value) for key, value in optional.items() if value)  # the ones the bundle has
    check(meta)
    return meta


def _creators(src: Source) -> list[dict[str, str]]:
    return creators(src, "zenodo", organisation=lambda name: {"name": name}, person=_person)


def _person(contact: Any) -> dict[str, str]:
    return {"name": contact.name} | ({"affiliation": contact.affiliation} if contact.affiliation else {})


def problems(meta: Any) -> list[str]:
    """What makes ``meta`` not a valid legacy deposit metadata object (empty when it is valid)."""
    if not isinstance(meta, dict):
        return ["metadata: not an object"]
    out = [f"metadata.{key}: required" for key in _REQUIRED if not meta.get(key)]
    out += _choice_problems(meta, "upload_type", UPLOAD_TYPES, required=True)
    out += _choice_problems(meta, "access_right", ACCESS_RIGHTS, required=False)
    out += [f"metadata.{key}: not a string" for key in _STRINGS if key in meta and not isinstance(meta[key], str)]
    out += _date_problems(meta.get("publication_date"))
    out += _list_problems(meta, "creators", ("name",), {})
    out += _list_problems(meta, "related_identifiers", ("identifier", "relation"), {"relation": RELATIONS})
    out += _keyword_problems(meta.get("keywords", []))
    return out


def _keyword_problems(keywords: Any) -> list[str]:
    return [] if isinstance(keywords, list) and all(isinstance(k, str) for k in keywords) else ["metadata.keywords: not a list of strings"]


def _choice_problems(meta: dict[str, Any], key: str, values: frozenset[str], *, required: bool) -> list[str]:
    if key not in meta and not required:
        return []
    return [] if meta.get(key) in values else [f"metadata.{key}: {meta.get(key)!r} is not one of {sorted(values)}"]


def _date_problems(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return [f"metadata.publication_date: {value!r} is not an ISO 8601 date (YYYY-MM-DD)"]
    return []


def _list_problems(meta: dict[str, Any], key: str, required: tuple[str, ...], allowed: dict[str, frozenset[str]]) -> list[str]:
    """Problems of the list ``meta[key]``: each item an object with the ``required`` non-empty
    strings, whose ``allowed`` fields take one of their values."""
    items = meta.get(key, [])
    if not isinstance(items, list):
        return [f"metadata.{key}: not a list"]
    return [problem for i, item in enumerate(items) for problem in _item_problems(f"metadata.{key}[{i}]", item, required, allowed)]


def _item_problems(where: str, item: Any, required: tuple[str, ...], allowed: dict[str, frozenset[str]]) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: not an object"]
    out = [f"{where}.{field}: required (a non-empty string)" for field in required if not (isinstance(item.get(field), str) and item[field])]
    out += [
        f"{where}.{field}: {item[field]!r} is not one of Zenodo's values" for field, values in allowed.items() if field in item and item[field] not in values
    ]
    return out


def check(meta: Any) -> None:
    """Raise :class:`InputError` with the first problem :func:`problems` finds."""
    found = problems(meta)
    if found:
        raise InputError(f"cannot export zenodo: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
