"""Strict JSON parsing: UTF-8 without BOM, no duplicate keys, no NaN/Infinity, capped depth,
and the I-JSON value rules (RFC 7493) that RFC 8785 canonical form needs: integers within
+-(2^53 - 1) (code E038) and no lone surrogate in a string or key (code E039).

>>> loads(b'{"a": [1, 2.5]}')
{'a': [1, 2.5]}
>>> loads(b'[1e999]')
Traceback (most recent call last):
heparch.spec.strictjson.StrictJSONError: number 1e999 is too large for a 64-bit float (infinite)
>>> loads(b'{"seed": 9007199254740992}')
Traceback (most recent call last):
heparch.spec.strictjson.StrictJSONError: integer 9007199254740992 is outside +-(2^53 - 1) (I-JSON, RFC 8785)
>>> check_ijson({"name": "a\\ud800"}, "arch.yaml")
Traceback (most recent call last):
heparch.spec.strictjson.StrictJSONError: arch.yaml:$.name: string holds a lone surrogate (U+D800), which UTF-8 cannot encode
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import rfc8785

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1  # RFC 7493 section 2.2; RFC 8785 section 3.2.2.3 cannot write larger ones
INTEGER_CODE = "E038"
SURROGATE_CODE = "E039"
# a lone surrogate can only come from an escape (UTF-8 cannot encode one): look for strings only then
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class StrictJSONError(ValueError):
    """The bytes (or values) are not strict JSON; the message says where.

    ``code`` is the validation code of the rule broken when it has its own (E038, E039);
    otherwise None and the caller's code for malformed JSON applies (E030, E060, E071).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity: as forbidden as the literal
        raise StrictJSONError(f"number {text[:40]} is too large for a 64-bit float (infinite)")
    return value


def _safe_int(text: str) -> int:
    if len(text.lstrip("-")) > 16 or abs(value := int(text)) > MAX_SAFE_INTEGER:  # 2^53 has 16 digits
        raise StrictJSONError(f"integer {text[:40]} is outside +-(2^53 - 1) (I-JSON, RFC 8785)", code=INTEGER_CODE)
    return value


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP = [0] * 256
for _b in b"[{":
    _STEP[_b] = 1
for _b in b"]}":
    _STEP[_b] = -1


def nesting(data: bytes) -> int:
    """How deep the arrays and objects of the JSON text ``data`` nest, from its bytes alone (so a
    deep document is refused before the recursive parser sees it): about 20 ms per MiB.

    >>> nesting(b'{"a": [[1]], "b": "[[[", "c": "\\\\", "d": "\\"["}')
    3
    """
    if b"\\" in data:  # escape pairs: an escaped quote does not end a string
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")  # a run of 2k (+1) backslashes is k escaped ones (+ one escape)
    kept = data.translate(None, _NOT_STRUCTURE)  # brackets and quotes (UTF-8 never reuses ASCII bytes)
    # quotes now pair up: drop what strings hold. Most strings are empty now, and two adjacent
    # quotes hold nothing outside a string either way: dropping them first leaves few pieces to
    # split (a piece per string was ~85 MiB for 1Lbb's 13.8 MiB patchset; re.sub lists them too)
    while b'""' in kept:
        kept = kept.replace(b'""', b"")
    outside = b"".join(kept.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, outside)), default=0)


def _path(parts: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _check_text(text: str, where: str, parts: tuple[Any, ...], what: str) -> None:
    """E039 (located ``where:$.path``) when ``text``, a ``what`` (key or string), holds a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"U+{ord(text[exc.start]):04X}"
        raise StrictJSONError(f"{where}:{_path(parts)}: {what} holds a lone surrogate ({bad}), which UTF-8 cannot encode", code=SURROGATE_CODE) from None


def check_ijson(obj: Any, where: str, *, strings: bool = True) -> None:
    """Raise :class:`StrictJSONError` (code E038 or E039, located ``where:$.path``) for the first
    integer outside +-(2^53 - 1), or (``strings``) string or key holding a lone surrogate.

    Writers call it before writing (through :func:`canonical` or themselves), so that they never
    write what a reader must refuse; bools are not integers here.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(obj, ())]
    while stack:
        item, parts = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            stack.extend(_children(item, parts, where, strings=strings))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SAFE_INTEGER:
            raise StrictJSONError(f"{where}:{_path(parts)}: integer {item} is outside +-(2^53 - 1) (I-JSON, RFC 8785)", code=INTEGER_CODE)
        elif strings and isinstance(item, str):
            _check_text(item, where, parts, "string")


def _children(item: dict[Any, Any] | list[Any] | tuple[Any, ...], parts: tuple[Any, ...], where: str, *, strings: bool) -> list[tuple[Any, tuple[Any, ...]]]:
    """The members or elements of ``item`` with their paths; an object's keys checked first (``strings``)."""
    if not isinstance(item, dict):
        return [(v, (*parts, i)) for i, v in enumerate(item)]
    if strings:
        for key in item:
            if isinstance(key, str):
                _check_text(key, where, parts, "key")
    return [(v, (*parts, k)) for k, v in item.items()]


_CHECKED_NUMBERS = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_safe_int)
_PLAIN_NUMBERS = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
# only a number with 16 digits in a row or a 3-digit exponent can be infinite as a double or
# outside +-(2^53 - 1) as an integer (10^15 x 10^99 is finite); looked for in a copy of the bytes
# where every digit is 0, every exponent letter e, and signs are dropped (a regex takes ~10x longer)
_NUMBER_SHAPE = bytes(48 if 48 <= b <= 57 else 101 if b in b"eE" else 32 for b in range(256))


def decoder_for(data: bytes) -> json.JSONDecoder:
    """The strict decoder for the JSON text ``data``: without a number that could break the
    rules (the usual case), the C parser's own numbers are exactly what the checking hooks
    return, and their per-number calls (4 million for a 2,000-bin covariance, ~3 s) are skipped."""
    shape = data.translate(_NUMBER_SHAPE, b"+-")
    risky = b"0" * 16 in shape or b"e000" in shape
    return _CHECKED_NUMBERS if risky else _PLAIN_NUMBERS


@contextlib.contextmanager
def decode_errors() -> Iterator[None]:
    """The json module's errors while decoding as :class:`StrictJSONError` (with line and column)."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except StrictJSONError:
        raise
    except ValueError as exc:
        raise StrictJSONError(str(exc).split(";")[0]) from None


def loads(data: bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """Parse ``data`` strictly; raise :class:`StrictJSONError` with the reason.

    The nesting is checked on the bytes before parsing (E030/E060 beyond ``max_depth``; 64 by
    default, for components as for the manifest); ``max_depth=None`` leaves it to the parser's
    own recursion limit.
    """
    text = _utf8_text(data)
    if max_depth is not None and (depth := nesting(data)) > max_depth:
        raise StrictJSONError(f"nesting {depth} deep, deeper than {max_depth}")
    try:
        with decode_errors():
            obj = decoder_for(data).decode(text)
    except RecursionError:
        raise StrictJSONError("nesting deeper than the parser's recursion limit") from None
    if _SURROGATE_ESCAPE.search(text):  # integers were checked while parsing; strings only when escaped
        _check_strings(obj)
    return obj


def _utf8_text(data: bytes) -> str:
    """``data`` as text: UTF-8 without a byte-order mark."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise StrictJSONError("UTF-8 byte-order mark is not allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"not UTF-8 at byte {exc.start}") from None


def _check_strings(obj: Any) -> None:
    """:class:`StrictJSONError` (E039) for a parsed string or key holding a lone surrogate, located by its JSON path."""
    try:
        check_ijson(obj, "", strings=True)
    except StrictJSONError as exc:
        raise StrictJSONError(str(exc).lstrip(":"), code=exc.code) from None


def canonical(obj: Any, *, where: str = "JSON") -> bytes:
    """RFC 8785 canonical JSON bytes of ``obj``; :class:`StrictJSONError` (E038, E039) first
    for a value RFC 8785 cannot write, located at ``where``."""

    check_ijson(obj, where)
    return rfc8785.dumps(obj)
