"""``arch init``: an arch.yaml with what discovery found, each value saying where it came from.

Nothing is invented: analysis fields that no file of the directory gives (a HEPData
``submission.yaml``, a patchset's ``references``, an SModelS ``globalInfo.txt``; see
:mod:`heparch.metadata`) are left as commented-out examples that parse once uncommented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from heparch import config
from heparch.build import Source, collect
from heparch.errors import InputError
from heparch.metadata import Found, discover
from heparch.store.writer import atomic_output

#: commented-out examples of the analysis fields (valid YAML once uncommented; strings quoted so
#: that an arXiv id or a DOI stays a string)
EXAMPLES: dict[str, str] = {
    "title": '"Search for ... in final states with ..."',
    "collaboration": "ATLAS",
    "experiment": "ATLAS",
    "description": '"What the likelihood describes, in one paragraph"',
    "inspire": '"ins1755298"',
    "arxiv": '"1909.09226"',
    "hepdata": '"10.17182/hepdata.90607"',
    "doi": '"10.1103/PhysRevD.101.032009"',
    "sqrt_s_TeV": "13",
    "luminosity_ifb": "139",
    "license": "CC-BY-4.0               # SPDX identifier of the bundle's content",
    "keywords": "[supersymmetry, electroweakinos]",
    "contacts": '[{name: "A. Physicist", email: "a.physicist@example.org"}]',
    "axes": '{m1: "m(chargino) [GeV]", m2: "m(neutralino) [GeV]"}  # axis titles of the replay report, per patch label',
}
_PLACEHOLDER = "analysis: {}\n"


def init(directory: Path | str, *, force: bool = False) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory; give the analysis directory")
    target = directory / config.FILENAME
    if target.exists() and not force:
        raise InputError(f"{target}: already exists; edit it, or pass --force to overwrite")
    _, sources, _ = collect(directory)
    found, conflicts = discover(directory, [(s.path, s.obj) for s in sources])
    data = {"name": directory.resolve().name, "analysis": {}, "containers": [], "files": [_file_entry(s) for s in sources], "exclude": []}
    text = config.render(data)
    assert text.count(_PLACEHOLDER) == 1, "config.render writes an empty analysis as 'analysis: {}'"
    text = text.replace(_PLACEHOLDER, analysis_block(found, conflicts))
    with atomic_output(target) as fh:
        fh.write(text.encode("utf-8"))
    return target


def _file_entry(s: Source) -> dict[str, object]:
    """A discovered file's entry: its path and role, and its likelihood where it belongs to one."""
    likelihood = {"likelihood": s.annotations["likelihood"]} if "likelihood" in s.annotations else {}
    return {"path": s.path, "role": s.role, **likelihood}


def analysis_block(found: dict[str, Found], conflicts: list[Found]) -> str:
    """The ``analysis:`` mapping: found values with their source, the rest commented out."""
    lines = ["analysis:"]
    for field in EXAMPLES:
        if field in found:
            f = found[field]
            note = f"from {f.source}" + (", guessed: check it" if f.guessed else "")
            lines.append(f"  {field}: {_scalar(f.value)}  # {note}")
            lines += [f"  #   also found {_scalar(c.value)} in {c.source}" for c in conflicts if c.field == field]
        else:
            lines.append(f"  # {field}: {EXAMPLES[field]}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    """A YAML scalar that reads back as ``value`` (JSON is YAML: strings quoted, numbers plain)."""
    return json.dumps(value, ensure_ascii=False)
