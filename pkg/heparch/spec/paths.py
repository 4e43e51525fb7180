"""Logical paths: the names files have inside a bundle (spec section 3.2).

>>> path_problem("RegionA/BkgOnly.json") is None
True
>>> path_problem("../etc/passwd")
"segment '..' is not allowed"
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

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


#: what makes a path unacceptable as text, each with its reason, in the order they are tested
_TEXT_PROBLEMS: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (lambda path: not path, "empty path"),
    # a file name's non-UTF-8 byte, or a lone surrogate
    (lambda path: any("\ud800" <= c <= "\udfff" for c in path), "not valid UTF-8 (a lone surrogate, or a file name byte that is not UTF-8)"),
    (lambda path: len(path.encode("utf-8")) > MAX_PATH_BYTES, f"longer than {MAX_PATH_BYTES} bytes"),
    (lambda path: unicodedata.normalize("NFC", path) != path, "not in Unicode NFC form"),
    (lambda path: any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in path), "control, format or unassigned character"),
)


def _text_problem(path: str) -> str | None:
    """Why ``path`` is not acceptable as text: empty, not UTF-8, too long, not NFC, control characters."""
    return next((why for test, why in _TEXT_PROBLEMS if test(path)), None)


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
    return _case_twins(paths) + _files_that_are_directories(paths)


def _case_twins(paths: list[str]) -> list[tuple[str, str]]:
    """Each path that differs only in case (after NFC) from one before it."""
    problems = []
    folded: dict[str, str] = {}
    for p in paths:
        key = unicodedata.normalize("NFC", p).casefold()
        if key in folded and folded[key] != p:
            problems.append((p, f"differs only in case from {folded[key]!r}"))
        folded.setdefault(key, p)
    return problems


def _files_that_are_directories(paths: list[str]) -> list[tuple[str, str]]:
    """Each path that is also (case-folded) the directory of another path."""
    dirs: dict[str, str] = {}
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]).casefold(), p)
    return [(p, f"is a file and also the directory of {dirs[p.casefold()]!r}") for p in paths if p.casefold() in dirs]
