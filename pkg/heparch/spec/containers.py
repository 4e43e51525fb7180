"""Container references: OCI image references pinned by sha256 digest.

The grammar is the OCI distribution reference grammar
(``[domain[:port]/]path[:tag]@sha256:<64 lowercase hex>``); a tag alone can move, so it is
an error (E036).

>>> check_container_reference("ghcr.io/scikit-hep/pyhf@sha256:" + "a" * 64, location="arch.yaml:containers[0]")
[]
>>> check_container_reference("pyhf/pyhf:v0.7.6", location="c")[0].message
"'pyhf/pyhf:v0.7.6' is not pinned by digest; a tag can move: pin it: pyhf/pyhf:v0.7.6@sha256:<digest>"
"""

from __future__ import annotations

import re
from typing import Any, Final

from heparch.findings import Finding

#: the longest name the distribution grammar allows (domain and path)
MAX_NAME: Final = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-zA-Z=_-]{32,}"

REFERENCE: Final = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
PINNED_DIGEST: Final = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_container_reference(ref: Any, *, location: str) -> list[Finding]:
    """E036 unless ``ref`` is an OCI reference pinned as ``name@sha256:<64 lowercase hex>``."""
    if not isinstance(ref, str):
        return [Finding("E036", location, f"a container reference must be a string, not {type(ref).__name__}")]
    match = REFERENCE.match(ref)
    if match is None:
        return [Finding("E036", location, f"{ref!r} is not an OCI reference ([registry/]path[:tag]@sha256:<digest>)")]
    name, digest = match.group("name"), match.group("digest")
    if len(name) > MAX_NAME:
        return [Finding("E036", location, f"the name of {ref!r} is longer than {MAX_NAME} characters")]
    if digest is None:
        return [Finding("E036", location, f"{ref!r} is not pinned by digest; a tag can move: pin it: {ref}@sha256:<digest>")]
    if not PINNED_DIGEST.match(digest):
        base = ref.rsplit("@", 1)[0]
        return [
            Finding(
                "E036",
                location,
                f"{ref!r} is not pinned by a sha256 digest of 64 lowercase hex digits: pin it: {base}@sha256:<digest>",
                expected="sha256:<64 lowercase hex>",
                found=digest,
            )
        ]
    return []
