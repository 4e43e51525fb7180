"""``arch export citation``: a CITATION.cff (Citation File Format 1.2.0), written with ruamel.yaml
and validated against the CFF 1.2.0 JSON Schema vendored in ``schemas/`` (see its README for
the provenance) before it is written.
"""

from __future__ import annotations

import functools
import io
import json
from importlib import resources
from typing import Any, Final

from heparch.errors import InputError
from heparch.export.common import Deposit, Source, date_of, links, require
from heparch.export.creators import creators

SCHEMA: Final = "cff-1.2.0.schema.json"
MESSAGE: Final = "If you use this likelihood bundle, please cite it using the metadata from this file."


def metadata(src: Source, deposit: Deposit) -> dict[str, Any]:
    """The CITATION.cff content of the bundle; refused where a required value is missing."""
    a = src.analysis
    cff: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": MESSAGE,
        "type": "dataset",
        "title": require(src.title, "citation", "analysis.title (or name)", "add analysis.title to arch.yaml and rebuild"),
        "authors": _authors(src),
    }
    optional = {
        "contact": [_entity(c.name, c.email) for c in a.contacts or () if c.name],
        "abstract": a.description,
        "keywords": list(a.keywords or ()),
        "license": a.license,
        "date-released": date_of(src.about.created),
        "doi": deposit.doi,
    }
    cff.update((key, value) for key, value in optional.items() if value)  # in this order, the ones the bundle has
    cff["identifiers"] = _identifiers(src)
    return cff


def _entity(name: str, email: str | None) -> dict[str, str]:
    return {"name": name} | ({"email": email} if email else {})


def _authors(src: Source) -> list[dict[str, str]]:
    """The collaboration, else the contacts, each as an entity (a name as recorded, not split into
    given and family names); refused without either."""
    return creators(src, "citation", organisation=lambda name: {"name": name}, person=lambda c: _entity(c.name, c.email), what="the authors")


def _identifiers(src: Source) -> list[dict[str, str]]:
    out = [{"type": "other", "value": src.identity, "description": "heparch bundle identity (sha256 of data/manifest.json)"}]
    kinds = {"DOI": "doi", "URL": "url", "arXiv": "url"}
    for link in links(src.analysis):
        value = link.url if link.scheme == "arXiv" else link.value
        out.append({"type": kinds[link.scheme], "value": value, "description": f"{link.kind} record"})
    return out


def render(cff: dict[str, Any]) -> bytes:
    """The CITATION.cff text of ``cff``, after the text read back validates against the schema."""
    from ruamel.yaml import YAML  # ruamel.yaml (~0.1 s): only when CITATION.cff is written

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(cff, buf)
    text = buf.getvalue()
    check(yaml.load(text))
    return text.encode("utf-8")


@functools.cache
def schema() -> dict[str, Any]:
    """The vendored CFF 1.2.0 JSON Schema."""
    data: dict[str, Any] = json.loads(resources.files("heparch.export").joinpath("schemas", SCHEMA).read_text("utf-8"))
    return data


def problems(cff: Any) -> list[str]:
    """The schema's complaints about ``cff`` (empty when it is valid), each with its place."""
    import jsonschema  # jsonschema: only when the CFF schema is checked

    validator = jsonschema.Draft7Validator(schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(cff), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(file)'}: {e.message}" for e in errors]


def check(cff: Any) -> None:
    """Raise :class:`InputError` naming the first problem if ``cff`` is not valid CFF 1.2.0."""
    found = problems(cff)
    if found:
        raise InputError(f"cannot export citation: {found[0]} (CFF 1.2.0 schema; check the analysis metadata in arch.yaml)")
