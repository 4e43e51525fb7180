"""The strict POSIX ustar profile of bundles (spec section 2.2).

Every header is canonical: the writer makes exactly one header for a given
(name, size), and the reader regenerates it and compares bytes. No links,
directories, PAX or GNU extensions; mtime 0, uid/gid 0, mode 0644, empty
user and group names; the archive ends with exactly two zero blocks.
"""

from __future__ import annotations

import re

BLOCK = 512
ROOT = "bundle/"
MAX_SIZE = 8**11 - 1  # the ustar size field: 11 octal digits
END = b"\0" * (2 * BLOCK)
_SAFE_NAME = re.compile(r"^bundle/[A-Za-z0-9._/-]+$")
_SIZE_FIELD = re.compile(rb"[0-7]{11}\0")


class TarHeaderError(ValueError):
    """A header is not canonical: ``code`` says which rule it breaks."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _split_name(name: str) -> tuple[bytes, bytes]:
    raw = name.encode("ascii")
    if len(raw) <= 100:
        return raw, b""
    cut = raw.rfind(b"/", 0, 156)
    while cut > 0 and len(raw) - cut - 1 > 100:
        cut = -1
    if cut <= 0 or len(raw) - cut - 1 > 100:
        raise ValueError(f"entry name too long for ustar: {name}")
    return raw[cut + 1 :], raw[:cut]


def header(name: str, size: int) -> bytes:
    """The canonical ustar header block for a regular file ``name`` of ``size`` bytes."""
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"{name}: {size} bytes exceeds the ustar size limit of {MAX_SIZE}")
    base, prefix = _split_name(name)
    block = bytearray(BLOCK)
    block[0 : len(base)] = base
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = b"0"
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[329:337] = b"0000000\0"
    block[337:345] = b"0000000\0"
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padding(size: int) -> int:
    """Zero bytes that follow ``size`` bytes of content to fill the last block."""
    return -size % BLOCK


def entry(name: str, data: bytes) -> bytes:
    """Header, content and padding of one entry."""
    return header(name, len(data)) + data + b"\0" * padding(len(data))


def parse_header(block: bytes) -> tuple[str, int]:
    """Parse one header block strictly; return (name, size) or raise :class:`TarHeaderError`."""
    if len(block) != BLOCK:
        raise TarHeaderError("E017", "archive ends inside a header (truncated)")
    _check_type(block[156:157])
    _check_ustar(block)
    name = _name(block)
    size = _size(block, name)
    if block != header(name, size):
        raise TarHeaderError("E010", f"{name}: header fields are not canonical (mode, owner, mtime or padding)")
    return name, size


def _check_type(typeflag: bytes) -> None:
    """A regular file's type flag: not a PAX or GNU extension (E013), nor another kind of entry (E011)."""
    if typeflag in (b"x", b"g", b"L", b"K", b"X"):
        raise TarHeaderError("E013", f"PAX or GNU extension header (type {typeflag.decode('latin-1')!r})")
    if typeflag not in (b"0", b"\0"):
        raise TarHeaderError("E011", f"not a regular file (type {typeflag.decode('latin-1')!r})")


def _check_ustar(block: bytes) -> None:
    """The header's checksum and the POSIX ustar magic and version (E010)."""
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    if block[148:156] != b"%06o\0 " % computed:
        raise TarHeaderError("E010", "header checksum does not match")
    if block[257:265] != b"ustar\x0000":
        raise TarHeaderError("E010", "not a POSIX ustar header (magic/version)")


def _name(block: bytes) -> str:
    """The entry's name (prefix and base), ASCII and safe (E012)."""
    try:
        base = block[0:100].rstrip(b"\0").decode("ascii")
        prefix = block[345:500].rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise TarHeaderError("E012", "entry name is not ASCII") from None
    name = f"{prefix}/{base}" if prefix else base
    _check_name(name)
    return name


def _size(block: bytes, name: str) -> int:
    """The entry's size: 11 octal digits and a NUL (E010)."""
    if not _SIZE_FIELD.match(block[124:136]):  # int(x, 8) would take signs, spaces and underscores
        raise TarHeaderError("E010", f"{name}: size field {bytes(block[124:136])!r} is not 11 octal digits and a NUL")
    return int(block[124:135], 8)


def _check_name(name: str) -> None:
    bad = (
        not name.startswith(ROOT)
        or "\\" in name
        or any(seg in ("", ".", "..") for seg in name[len(ROOT) :].split("/"))
        or name.startswith("/")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    )
    if bad or not _SAFE_NAME.match(name):
        raise TarHeaderError("E012", f"unsafe entry name {name!r}: must be a plain relative name under {ROOT}")
