"""A JSON object read one member at a time, one array's elements one at a time (issue 11).

``full`` verification checks a patchset one patch at a time: parsing 1Lbb's 13.8 MiB
patchset whole held a ~70 MiB tree (and the bytes and text besides) for the whole check,
while its patches are checked one after the other. :class:`ObjectStream` applies the rules
of :func:`heparch.spec.strictjson.loads` (UTF-8 without BOM, the nesting cap on the bytes, no
duplicate keys, no NaN or Infinity, I-JSON integers and strings) with the same messages, to
the top-level object itself and to each value it parses; only the text and one element are
alive at a time.

>>> stream = ObjectStream(b'{"a": 1, "patches": [{"n": 1}, {"n": 2}], "b": [3]}', "patches")
>>> [p["n"] for p in stream.elements()], stream.members
([1, 2], {'a': 1, 'b': [3]})
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import Any

from heparch.spec import strictjson
from heparch.spec.strictjson import StrictJSONError

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace (RFC 8259 section 2)


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    return f"line {line} column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


class ObjectStream:
    """The top-level object of ``data``: :meth:`elements` hands out the elements of the array
    member ``key`` one at a time, and fills :attr:`members` with the other members as it goes
    (complete once :meth:`elements` is exhausted). A ``key`` that is not an array is an
    ordinary member. Raises :class:`~heparch.spec.strictjson.StrictJSONError` as ``loads`` does.
    """

    def __init__(self, data: bytes, key: str, *, max_depth: int = strictjson.MAX_DEPTH) -> None:
        if data.startswith(b"\xef\xbb\xbf"):
            raise StrictJSONError("UTF-8 byte-order mark is not allowed")
        if (depth := strictjson.nesting(data)) > max_depth:
            raise StrictJSONError(f"nesting {depth} deep, deeper than {max_depth}")
        self._decoder = strictjson.decoder_for(data)  # the hooks of strictjson.loads, when a number needs them
        try:
            self._text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError(f"not UTF-8 at byte {exc.start}") from None
        self.key = key
        self.members: dict[str, Any] = {}
        self.streamed = False  # True when ``key`` was an array whose elements were handed out
        self._strings = bool(strictjson._SURROGATE_ESCAPE.search(self._text))

    @staticmethod
    def is_object(data: bytes) -> bool:
        """Whether the JSON text ``data`` starts with an object (after whitespace)."""
        return data.lstrip(b" \t\r\n")[:1] == b"{"

    def elements(self) -> Iterator[Any]:
        text, pos = self._text, self._skip(0)
        pos = self._expect(pos, "{", "Expecting '{'")
        if text.startswith("}", pos):
            pos += 1
        else:
            pos = yield from self._members(pos)
        if self._skip(pos) != len(text):
            raise self._error("Extra data", self._skip(pos))
        self._text = ""  # let go of the text: everything is parsed

    def _members(self, pos: int) -> Generator[Any, None, int]:
        """The members of the top-level object from ``pos`` to its closing brace (the position after it)."""
        while True:
            key, pos = self._member_key(pos)
            if key == self.key and self._text.startswith("[", pos):
                self.streamed = True
                pos = yield from self._array(pos + 1)
            else:
                self.members[key], pos = self._value(pos, (key,))
            if self._text.startswith("}", pos):
                return pos + 1
            pos = self._expect(pos, ",", "Expecting ',' delimiter")

    def _member_key(self, pos: int) -> tuple[str, int]:
        """A member's name, not seen before, and the position of its value."""
        if not self._text.startswith('"', pos):
            raise self._error("Expecting property name enclosed in double quotes", pos)
        key, pos = self._value(pos, ())
        if key in self.members or (key == self.key and self.streamed):
            raise StrictJSONError(f"duplicate key {key!r}")
        return key, self._expect(pos, ":", "Expecting ':' delimiter")

    def _array(self, pos: int) -> Generator[Any, None, int]:
        pos = self._skip(pos)
        if self._text.startswith("]", pos):
            return self._skip(pos + 1)
        index = 0
        while True:
            value, pos = self._value(pos, (self.key, index))
            yield value
            del value
            if self._text.startswith("]", pos):
                return self._skip(pos + 1)
            pos = self._expect(pos, ",", "Expecting ',' delimiter")
            index += 1

    def _value(self, pos: int, parts: tuple[Any, ...]) -> tuple[Any, int]:
        with strictjson.decode_errors():
            value, end = self._decoder.raw_decode(self._text, pos)
        if self._strings:  # integers were checked while parsing; strings only when escaped
            try:
                strictjson.check_ijson(value, "", strings=True)
            except StrictJSONError as exc:  # ":$.a: ..." of the value -> "$.patches[3].a: ..."
                raise StrictJSONError(strictjson._path(parts) + str(exc)[2:], code=exc.code) from None
        return value, self._skip(end)

    def _skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self._text, pos)
        return match.end() if match else pos

    def _expect(self, pos: int, char: str, message: str) -> int:
        if not self._text.startswith(char, pos):
            raise self._error(message, pos)
        return self._skip(pos + 1)

    def _error(self, message: str, pos: int) -> StrictJSONError:
        return StrictJSONError(f"{message} at {_where(self._text, pos)}")
