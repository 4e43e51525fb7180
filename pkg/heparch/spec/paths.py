"""Logical paths: the names files have inside a bundle (spec section 3.2).

>>> path_problem("RegionA/BkgOnly.json") is None
True
>>> path_problem("../etc/passwd")
"segment '..' is not allowed"
"""

from __future__ import annotations

import re
import unicodedata

RESERVED = ("arch.yaml", "signatures")
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)
_FORBIDDEN = set('<>:"|?*\\')


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a valid logical path, or None when it is."""
    problem = _text_problem(path) or _shape_problem(path)
    if problem is not None:
        return problem
    return next((p for seg in path.split("/") if (p := segment_problem(seg)) is not None), None)


def _text_problem(path: str) -> str | None:
    """Why ``path`` is not acceptable as text: empty, not UTF-8, too long, not NFC, control characters."""
    if not path:
        return "empty path"
    if any("\ud800" <= c <= "\udfff" for c in path):  # a file name's non-UTF-8 byte, or a lone surrogate
        return "not valid UTF-8 (a lone surrogate, or a file name byte that is not UTF-8)"
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return f"longer than {MAX_PATH_BYTES} bytes"
    if unicodedata.normalize("NFC", path) != path:
        return "not in Unicode NFC form"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in path):
        return "control, format or unassigned character"
    return None


def _shape_problem(path: str) -> str | None:
    """Why ``path`` is not relative, uses a character some file system forbids, or starts with a reserved name."""
    if path.startswith(("/", "~")):
        return "absolute path"
    bad = sorted(_FORBIDDEN.intersection(path))
    if bad:
        return f"character {bad[0]!r} is not allowed"
    first = path.split("/", 1)[0]
    if first in RESERVED:
        return f"{first!r} is reserved"
    return None


def segment_problem(seg: str) -> str | None:
    """Why one segment of a logical path is not allowed (empty, ``.``/``..``, a trailing dot or
    space, too long, a Windows device name), or None."""
    if seg in ("", ".", ".."):
        return f"segment {seg!r} is not allowed"
    if seg[-1] in ". ":
        return f"segment {seg!r} ends with a dot or space"
    if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
        return f"segment longer than {MAX_SEGMENT_BYTES} bytes"
    if _DEVICE.match(seg):
        return f"segment {seg!r} is a Windows device name"
    return None


def set_problems(paths: list[str]) -> list[tuple[str, str]]:
    """Clashes within a set of paths: case-fold twins, and a file that is also a directory."""
    problems = []
    folded: dict[str, str] = {}
    for p in paths:
        key = unicodedata.normalize("NFC", p).casefold()
        if key in folded and folded[key] != p:
            problems.append((p, f"differs only in case from {folded[key]!r}"))
        folded.setdefault(key, p)
    dirs: dict[str, str] = {}
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]).casefold(), p)
    for p in paths:
        if p.casefold() in dirs:
            problems.append((p, f"is a file and also the directory of {dirs[p.casefold()]!r}"))
    return problems
