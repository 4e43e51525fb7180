"""The creators (authors) of an export: the collaboration, else the contacts with a name; one rule
for DataCite, Zenodo and CITATION.cff, each writing an entity in its own form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heparch.errors import InputError
from heparch.export.common import Source


def creators(
    src: Source, fmt: str, *, organisation: Callable[[str], dict[str, str]], person: Callable[[Any], dict[str, str]], what: str = "the creators"
) -> list[dict[str, str]]:
    """The collaboration as ``organisation`` writes it, else each contact with a name as ``person``
    writes it; refused (naming ``what`` the ``fmt`` export needs) without either."""
    a = src.analysis
    if a.collaboration:
        return [organisation(a.collaboration)]
    people = [person(c) for c in a.contacts or () if c.name]
    if not people:
        raise InputError(f"cannot export {fmt}: {what} are missing; add analysis.collaboration or analysis.contacts (with a name) to arch.yaml and rebuild")
    return people
