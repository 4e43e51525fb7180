"""The Python API: ``heparch.open(path)`` -> :class:`Bundle`.

Example (``toy.zst`` built from ``fixtures/example-analysis``)::

    with heparch.open("toy.zst") as b:
        b.likelihoods()          # ['BkgOnly.json']
        ws = b.workspace()       # pyhf.Workspace
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from heparch.analysis import Analysis, only, select
from heparch.bundle import OpenBundle
from heparch.errors import InputError

if TYPE_CHECKING:
    import pyhf


class Bundle(OpenBundle):
    """A bundle opened for reading (:class:`heparch.bundle.OpenBundle`: its manifest, and
    hash-checked access to any file), and its likelihoods as pyhf objects: what it holds is
    :mod:`heparch.analysis`'s answer, the one the packager's commands use."""

    def likelihoods(self) -> list[str]:
        """Logical paths of the likelihood components (HistFactory workspaces)."""
        return Analysis.of(self).names("workspace")

    def _likelihood(self, likelihood: str | None) -> str:
        """The likelihood named (its logical path), else the only one."""
        names, where = self.likelihoods(), str(self.path)
        if likelihood is None:
            return only(names, where=where, what="likelihood", option="likelihood")
        return select(likelihood, names, where=where, option="likelihood", predicate="is not a likelihood of the bundle", label="it has ")

    def workspace(self, likelihood: str | None = None) -> pyhf.Workspace:
        """The likelihood as a ``pyhf.Workspace``."""
        import pyhf  # heavy: only when a pyhf object is asked for

        return pyhf.Workspace(self.read_json(self._likelihood(likelihood)))

    def patchset(self, likelihood: str | None = None) -> pyhf.PatchSet:
        """The likelihood's patchset as a ``pyhf.PatchSet``."""
        import pyhf  # heavy: only when a pyhf object is asked for

        name = self._likelihood(likelihood)
        sets = Analysis.of(self).likelihood(name).patchsets
        if len(sets) != 1:
            raise InputError(f"{self.path}: likelihood {name!r} has {len(sets)} patchsets; expected one")
        return pyhf.PatchSet(self.read_json(sets[0]))
