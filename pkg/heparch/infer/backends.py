"""The backend registry and the default choice of backend.

``get(name)`` imports a backend lazily, so that using one never imports the others'
dependencies. ``choose(kind, spec, requested)`` applies the default rule: ``simplified``
for a simplified likelihood; for a workspace ``fast`` when it supports the model, else
``pyhf`` with the reason ``fast`` gave.

>>> sorted(BACKENDS)
['fast', 'pyhf', 'simplified']
>>> KINDS["simplified"]
('simplified',)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from heparch.errors import InputError, MissingBackend
from heparch.infer.base import Backend, Model

if TYPE_CHECKING:
    from heparch.infer.inputs import Inputs

#: backend name -> (module, class)
BACKENDS: Final[Mapping[str, tuple[str, str]]] = {
    "pyhf": ("heparch.infer.pyhf_backend", "PyhfBackend"),
    "fast": ("heparch.infer.fast", "FastBackend"),
    "simplified": ("heparch.infer.simplified", "SimplifiedBackend"),
}
#: input kind -> the backends that can read it
KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "workspace": ("fast", "pyhf"),
    "simplified": ("simplified",),
}
_KIND_NAMES: Final = {"workspace": "a HistFactory workspace", "simplified": "a simplified likelihood"}


def get(name: str) -> Backend:
    """A new instance of the backend ``name``; :class:`MissingBackend` when it cannot be imported."""
    if name not in BACKENDS:
        raise InputError(f"--backend {name!r}: unknown backend; choose one of {', '.join(BACKENDS)}")
    module_name, cls_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        what = (
            "is not part of this heparch installation yet" if missing.startswith("heparch") else f"needs the Python package {missing!r}, which is not installed"
        )
        raise MissingBackend(f"backend {name!r} {what} ({module_name}); choose another with --backend") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise MissingBackend(f"backend {name!r}: {module_name} has no {cls_name}; choose another with --backend")
    backend: Backend = cls()
    return backend


@dataclasses.dataclass(frozen=True)
class Choice:
    """The backend that will run, and why (``reason`` is empty when it was requested)."""

    backend: Backend
    reason: str = ""

    @property
    def name(self) -> str:
        return self.backend.name


def choose(kind: str, spec: Mapping[str, Any], requested: str | None = None, *, factory: Callable[[str], Backend] = get) -> Choice:
    """The backend for an input of ``kind`` (``workspace`` or ``simplified``).

    ``requested`` must be able to read ``kind`` (a usage error otherwise). Without it a
    simplified likelihood gets ``simplified``; a workspace gets ``fast`` when
    ``fast.unsupported(spec)`` is None and otherwise (or when ``fast`` is not installed)
    ``pyhf``, with the reason.
    """
    allowed = KINDS[kind]
    if requested is not None:
        if requested not in BACKENDS:
            raise InputError(f"--backend {requested!r}: unknown backend; choose one of {', '.join(BACKENDS)}")
        if requested not in allowed:
            raise InputError(f"--backend {requested}: cannot read {_KIND_NAMES[kind]}; use --backend {' or '.join(allowed)}")
        backend = factory(requested)
        if kind == "workspace" and requested == "fast":
            why = backend.unsupported(spec)
            if why is not None:
                raise InputError(f"--backend fast: cannot handle this model: {why}; use --backend pyhf")
        return Choice(backend)
    if kind == "simplified":
        return Choice(factory("simplified"))
    try:
        fast = factory("fast")
    except MissingBackend as exc:
        return Choice(factory("pyhf"), f"fast backend unavailable ({exc.message}); using pyhf")
    why = fast.unsupported(spec)
    if why is None:
        return Choice(fast)
    return Choice(factory("pyhf"), f"the fast backend cannot handle this model ({why}); using pyhf")


def prepare(inputs: Inputs, requested: str | None = None, *, factory: Callable[[str], Backend] = get) -> tuple[Choice, Model]:
    """The backend for ``inputs`` (see :func:`choose`) and the model of its signal point."""
    if inputs.kind == "workspace":
        choice = choose("workspace", inputs.patched() if requested is None or requested == "fast" else inputs.spec, requested, factory=factory)
        model = choice.backend.background(inputs.spec).model(inputs.patches)
    else:
        choice = choose("simplified", inputs.spec, requested, factory=factory)
        model = choice.backend.background(inputs.spec).model(signal=inputs.signal)
    return choice, model
