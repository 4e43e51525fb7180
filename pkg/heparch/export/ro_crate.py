"""``arch export ro-crate``: a detached ``ro-crate-metadata.json`` (RO-Crate 1.1) describing the
unpacked bag.

It belongs at the bag's root, beside ``bagit.txt`` (``bundle/`` of the unpacked ``bundle.zst``),
never inside ``data/``, whose contents and BagIt manifests follow from ``data/manifest.json``.
The root dataset's parts are the payload: ``data/manifest.json`` (whose sha256 is the bundle
identity) and each blob ``data/blobs/sha256/<hex>``, named by its logical path(s), with its
media type, size and sha256. ``sha256`` is not a schema.org term: the crate's context defines
it locally (the bundle format's URI + ``#sha256``) and the graph describes it as an
``rdf:Property``, as RO-Crate 1.1 asks of ad hoc terms.
"""

from __future__ import annotations

import json
from typing import Any, Final

from heparch.export.common import Link, Source, date_of, links
from heparch.store import layout

CONTEXT: Final = "https://w3id.org/ro/crate/1.1/context"
PROFILE: Final = "https://w3id.org/ro/crate/1.1"
METADATA: Final = "ro-crate-metadata.json"


def metadata(src: Source, manifest_size: int) -> dict[str, Any]:
    """The crate of the bundle (``manifest_size``: the byte size of ``data/manifest.json``)."""
    term = f"{src.about.format}#sha256"
    parts = [_manifest_entity(src, manifest_size), *_blob_entities(src)]
    root, extra = _root(src, [p["@id"] for p in parts])
    graph = [
        {"@id": METADATA, "@type": "CreativeWork", "conformsTo": {"@id": PROFILE}, "about": {"@id": "./"}},
        root,
        *parts,
        *extra,
        {"@id": term, "@type": "rdf:Property", "rdfs:label": "sha256", "rdfs:comment": "The SHA-256 digest of the file's bytes, in lowercase hex."},
    ]
    return {"@context": [CONTEXT, {"sha256": term}], "@graph": graph}


def _manifest_entity(src: Source, size: int) -> dict[str, Any]:
    return {
        "@id": layout.MANIFEST,
        "@type": "File",
        "name": "manifest.json",
        "description": "The bundle's manifest (RFC 8785 canonical JSON); its sha256 is the bundle identity.",
        "encodingFormat": "application/json",
        "contentSize": str(size),
        "sha256": src.identity.removeprefix("sha256:"),
    }


def _blob_entities(src: Source) -> list[dict[str, Any]]:
    """One File per blob (identical files are stored once), named by the logical paths it holds."""
    by_hex: dict[str, list[Any]] = {}
    for entry in src.about.stored:
        by_hex.setdefault(entry.hex, []).append(entry)
    out = []
    for hex_, entries in sorted(by_hex.items()):
        first = entries[0]
        item: dict[str, Any] = {
            "@id": layout.BLOB_DIR + hex_,
            "@type": "File",
            "name": first.path,
            "description": f"{first.role} {first.path}" + "".join(f"; also {e.role} {e.path}" for e in entries[1:]),
            "encodingFormat": first.mediaType,
            "contentSize": str(first.size),
            "sha256": hex_,
        }
        if len(entries) > 1:
            item["alternateName"] = [e.path for e in entries[1:]]
        out.append(item)
    return out


def _root(src: Source, parts: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The root dataset and the contextual entities it refers to."""
    a = src.analysis
    root: dict[str, Any] = {"@id": "./", "@type": "Dataset", "identifier": src.identity, "hasPart": [{"@id": p} for p in parts]}
    given = {"name": src.title, "description": a.description, "datePublished": date_of(src.about.created), "keywords": list(a.keywords or ())}
    root.update((key, value) for key, value in given.items() if value)
    license_, author, cited = _license(a.license), _author(a.collaboration), _citations(links(a))
    refs = {"license": license_, "author": author, "citation": cited}
    root.update((key, _ref(entities)) for key, entities in refs.items() if entities)
    return root, license_ + author + cited


def _ref(entities: list[dict[str, Any]]) -> Any:
    """A reference to one entity, or a list of references to several (RO-Crate 1.1 JSON-LD: a single
    value, not a singleton array)."""
    ids = [{"@id": e["@id"]} for e in entities]
    return ids[0] if len(ids) == 1 else ids


def _license(spdx: str | None) -> list[dict[str, Any]]:
    return [{"@id": f"https://spdx.org/licenses/{spdx}", "@type": "CreativeWork", "name": spdx, "identifier": spdx}] if spdx else []


def _author(collaboration: str | None) -> list[dict[str, Any]]:
    return [{"@id": "#collaboration", "@type": "Organization", "name": collaboration}] if collaboration else []


def _citations(related: list[Link]) -> list[dict[str, Any]]:
    return [{"@id": link.url, "@type": "CreativeWork", "name": f"{link.kind} record {link.value}"} for link in related]


def render(crate: dict[str, Any]) -> bytes:
    return (json.dumps(crate, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
