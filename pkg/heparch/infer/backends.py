"""The backend registry and the default choice of backend.

``get(name)`` imports a backend lazily, so that using one never imports the others'
dependencies. ``choose(kind, spec, requested)`` applies the default rule: ``simplified``
for a simplified likelihood; for a workspace ``fast`` when it supports the model (and the
settings), else ``pyhf`` with the reason ``fast`` gave. A default choice of ``fast`` may still
hand a single point to ``pyhf`` when the fast engine cannot compute it (:func:`fallback`).

>>> sorted(BACKENDS)
['fast', 'pyhf', 'simplified']
>>> KINDS["simplified"]
('simplified',)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from heparch.errors import DegenerateResult, FitError, InferenceInputError, InputError, MissingBackend
from heparch.infer.base import Backend, Model, Settings
from heparch.infer.inputs import Inputs, as_given

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


def _require_known(name: str) -> None:
    if name not in BACKENDS:
        raise InputError(f"backend {name!r}: unknown backend; choose one of {', '.join(BACKENDS)}", option="backend")


def get(name: str) -> Backend:
    """A new instance of the backend ``name``; :class:`MissingBackend` when it cannot be imported."""
    _require_known(name)
    module_name, cls_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        what = (
            "is not part of this heparch installation yet" if missing.startswith("heparch") else f"needs the Python package {missing!r}, which is not installed"
        )
        raise MissingBackend(f"backend {name!r} {what} ({module_name}); choose another backend", option="backend") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise MissingBackend(f"backend {name!r}: {module_name} has no {cls_name}; choose another backend", option="backend")
    backend: Backend = cls()
    return backend


@dataclasses.dataclass(frozen=True)
class Choice:
    """The backend that will run, and why (``reason`` is empty when it was requested).

    ``fallback`` is True for the default choice of ``fast``: a point the fast engine cannot
    compute (it raises :class:`FitError`) is computed with ``pyhf`` instead (:func:`fallback`).
    """

    backend: Backend
    reason: str = ""
    fallback: bool = False

    @property
    def name(self) -> str:
        return self.backend.name


def _settings_refused(backend: Backend, spec: Mapping[str, Any], settings: Settings | None) -> str | None:
    """Why ``backend`` refuses non-default ``settings`` for ``spec`` (None: it accepts them).

    Only probed when the settings differ from the defaults (building a background is the
    price), so that an unsupported combination is known before any point runs.
    """
    if settings is None or settings == Settings(measurement=settings.measurement):
        return None
    try:
        backend.background(spec, measurement=settings.measurement, settings=settings)
    except InferenceInputError as exc:
        return exc.message
    return None


def choose(
    kind: str,
    spec: Mapping[str, Any],
    requested: str | None = None,
    *,
    settings: Settings | None = None,
    factory: Callable[[str], Backend] = get,
) -> Choice:
    """The backend for an input of ``kind`` (``workspace`` or ``simplified``).

    ``requested`` must be able to read ``kind`` (a usage error otherwise). Without it a
    simplified likelihood gets ``simplified``; a workspace gets ``fast`` when
    ``fast.unsupported(spec)`` is None and it accepts ``settings``, and otherwise (or when
    ``fast`` is not installed) ``pyhf``, with the reason.
    """
    if requested is not None:
        return _requested(kind, spec, requested, settings, factory)
    if kind == "simplified":
        return Choice(factory("simplified"))
    return _default_for_workspace(spec, settings, factory)


def _requested(kind: str, spec: Mapping[str, Any], requested: str, settings: Settings | None, factory: Callable[[str], Backend]) -> Choice:
    """The backend the user named, when it can read ``kind`` and handle this model and settings."""
    allowed = KINDS[kind]
    _require_known(requested)
    if requested not in allowed:
        raise InputError(f"backend {requested}: cannot read {_KIND_NAMES[kind]}; use backend={' or '.join(allowed)}", option="backend")
    backend = factory(requested)
    if kind == "workspace":
        why = backend.unsupported(spec) if requested == "fast" else None
        why = why or _settings_refused(backend, spec, settings)
        if why is not None:
            other = "pyhf" if requested == "fast" else "fast"
            raise InputError(f"backend {requested}: cannot handle this model: {why}; use backend={other}", option="backend")
    return Choice(backend)


def _default_for_workspace(spec: Mapping[str, Any], settings: Settings | None, factory: Callable[[str], Backend]) -> Choice:
    """``fast`` (falling back to pyhf point by point) where it can compute the model, else pyhf with the reason."""
    try:
        fast = factory("fast")
    except MissingBackend as exc:
        return Choice(factory("pyhf"), f"fast backend unavailable ({exc.message}); using pyhf")
    why = fast.unsupported(spec) or _settings_refused(fast, spec, settings)
    if why is None:
        return Choice(fast, fallback=True)
    pyhf = factory("pyhf")
    refused = _settings_refused(pyhf, spec, settings)
    if refused is not None:
        raise InputError(f"neither backend can compute these settings: fast: {why}; pyhf: {refused}")
    return Choice(pyhf, f"the fast backend cannot handle this model ({why}); using pyhf")


def fallback(choice: Choice, exc: BaseException, *, factory: Callable[[str], Backend] = get) -> Choice | None:
    """The ``pyhf`` choice that takes over a point from a default ``fast`` choice that raised
    ``exc``, with the reason; None when ``exc`` is not a fit the fast engine could not do
    (a degenerate result is a property of the model, not of the engine: no fallback)."""
    if not choice.fallback or isinstance(exc, DegenerateResult) or not isinstance(exc, FitError):
        return None
    return Choice(factory("pyhf"), f"the fast backend could not compute this point ({exc.message}); computed with pyhf")


def background_args(kind: str, settings: Settings | None) -> dict[str, Any]:
    """The keyword arguments of ``Backend.background`` for ``kind``: a HistFactory backend gets
    the settings (and their measurement); the simplified backend has none to take."""
    if kind != "workspace" or settings is None:
        return {}
    return {"measurement": settings.measurement, "settings": settings}


def prepare(inputs: Inputs, requested: str | None = None, *, settings: Settings | None = None, factory: Callable[[str], Backend] = get) -> tuple[Choice, Model]:
    """The backend for ``inputs`` (see :func:`choose`) and the model of its signal point."""
    if inputs.kind == "workspace":
        return _prepare_workspace(inputs, requested, settings, factory)
    return _prepare_simplified(inputs, requested, settings, factory)


def _prepare_workspace(inputs: Inputs, requested: str | None, settings: Settings | None, factory: Callable[[str], Backend]) -> tuple[Choice, Model]:
    """A workspace's backend (chosen on the patched workspace where ``fast`` may be chosen) and
    the model of its patches, with the settings as the workspace gives them."""
    spec = inputs.patched() if requested is None or requested == "fast" else inputs.spec
    settings = as_given(settings, inputs.spec) if settings is not None else None
    choice = choose("workspace", spec, requested, settings=settings, factory=factory)
    return choice, choice.backend.background(inputs.spec, **background_args("workspace", settings)).model(inputs.patches)


def _prepare_simplified(inputs: Inputs, requested: str | None, settings: Settings | None, factory: Callable[[str], Backend]) -> tuple[Choice, Model]:
    """A simplified likelihood's backend and the model of its signal; HistFactory settings refused."""
    if settings is not None and settings != Settings():
        raise InputError(
            "--test-stat, --normsys-interp, --histosys-interp, --poi-bounds and --measurement apply to HistFactory workspaces; "
            "a simplified likelihood is computed as spey does (qtilde); drop them"
        )
    choice = choose("simplified", inputs.spec, requested, factory=factory)
    return choice, choice.backend.background(inputs.spec).model(signal=inputs.signal)
