"""``arch init``: a commented arch.yaml pre-filled with what discovery found."""

from __future__ import annotations

from pathlib import Path

from heparch import config
from heparch.build import collect
from heparch.errors import InputError
from heparch.store.writer import atomic_output


def init(directory: Path | str, *, force: bool = False) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory; give the analysis directory")
    target = directory / config.FILENAME
    if target.exists() and not force:
        raise InputError(f"{target}: already exists; edit it, or pass --force to overwrite")
    _, sources, _ = collect(directory)
    files = []
    for s in sources:
        entry: dict[str, object] = {"path": s.path, "role": s.role}
        if "likelihood" in s.annotations:
            entry["likelihood"] = s.annotations["likelihood"]
        files.append(entry)
    data = {
        "name": directory.resolve().name,
        "analysis": {"title": "", "collaboration": "", "sqrt_s_TeV": 13, "license": "CC-BY-4.0"},
        "containers": [],
        "files": files,
        "exclude": [],
    }
    with atomic_output(target) as fh:
        fh.write(config.render(data).encode("utf-8"))
    return target
