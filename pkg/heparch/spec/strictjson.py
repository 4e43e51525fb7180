"""Strict JSON parsing: UTF-8 without BOM, no duplicate keys, no NaN/Infinity, capped depth.

>>> loads(b'{"a": [1, 2.5]}')
{'a': [1, 2.5]}
>>> loads(b'[1e999]')
Traceback (most recent call last):
heparch.spec.strictjson.StrictJSONError: number 1e999 is too large for a 64-bit float (infinite)
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class StrictJSONError(ValueError):
    """The bytes are not strict JSON; the message says where."""


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


def _depth(obj: Any, limit: int) -> None:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise StrictJSONError(f"nesting deeper than {limit}")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))


def loads(data: bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """Parse ``data`` strictly; raise :class:`StrictJSONError` with the reason.

    ``max_depth=None`` leaves the depth to the parser's own recursion limit (for large
    components, where walking every node again would cost more than parsing).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise StrictJSONError("UTF-8 byte-order mark is not allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"not UTF-8 at byte {exc.start}") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise StrictJSONError(f"nesting deeper than {max_depth}") from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except StrictJSONError:
        raise
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (sys.set_int_max_str_digits)
        raise StrictJSONError(str(exc).split(";")[0]) from None
    if max_depth is not None:
        _depth(obj, max_depth)
    return obj


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``obj``."""
    import rfc8785

    return rfc8785.dumps(obj)
