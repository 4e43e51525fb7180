"""The unit of parallel work: one signal point of one likelihood, computed in a worker.

A :class:`Context` (one likelihood: its spec, the backend and the settings) is shipped to
each worker once; a :class:`Task` names one point and carries only its patches. Workers
keep the prepared background of every context they have seen (``_BACKGROUNDS``), so the
expensive part (parsing, structure, constraint terms) is done once per worker and
likelihood, not once per point. :func:`run_task` never raises for a point's own
failure: the :class:`TaskResult` carries the error, so the other points go on.

>>> ctx = Context(token="t", likelihood="sl.json", kind="simplified", backend="simplified",
...               spec={"observed": [5], "background": [4.0], "covariance": [[1.0]], "signals": {"A": [3.0]}})
>>> r = run_task({"t": ctx}, Task(token="t", point="A", signal="A"))
>>> r.error is None, sorted(r.values), r.backend
(True, ['CLs_exp', 'CLs_obs'], 'simplified')
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from heparch.components.patchset import apply_patch
from heparch.errors import DegenerateResult, FitError
from heparch.infer.backends import background_args, get
from heparch.infer.base import Settings
from heparch.infer.pyhf_backend import PyhfBackend

Patch = Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Context:
    """One likelihood as the workers need it.

    ``token`` identifies it across processes (bundle identity and logical path);
    ``kind`` is ``workspace`` or ``simplified``; ``settings`` are the claims' (test statistic,
    interpolation codes, POI bounds, measurement; None: the defaults); ``fit_tolerance`` the
    pyhf backend's minimiser tolerance. ``fallback`` is True for a default choice of the fast
    engine: a point it cannot compute (:class:`FitError`) is computed with pyhf instead.
    """

    token: str
    likelihood: str
    kind: str
    backend: str
    spec: Mapping[str, Any]
    settings: Settings | None = None
    fit_tolerance: float | None = None
    fallback: bool = False


@dataclasses.dataclass(frozen=True)
class Task:
    """One point: CLs at ``mu`` and, with ``upper_limit``, the limits at CLs = ``level``.

    ``simplified`` names a second context (a simplified likelihood derived from the same
    likelihood) whose signal ``point`` is computed too, for comparison.
    """

    token: str
    point: str
    patches: tuple[Patch, ...] = ()
    signal: str | None = None
    mu: float = 1.0
    level: float = 0.05
    upper_limit: bool = False
    simplified: str | None = None
    reference: str | None = None  # an audit task: -ln L with the context's backend, then the point with this reference backend


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """What a worker returns: the values (DESIGN.md 5b names) or the error."""

    token: str
    point: str
    values: dict[str, Any] | None
    backend: str
    seconds: float
    error: str | None = None
    simplified: dict[str, Any] | None = None
    note: str | None = None  # why the point was computed with another backend than its context's


_BACKGROUNDS: dict[str, Any] = {}
_CONTEXTS: dict[str, Context] = {}


def _background(ctx: Context, backend_name: str | None = None) -> Any:
    """The prepared background of ``ctx`` with its backend (or ``backend_name``), cached per worker."""
    name = backend_name or ctx.backend
    key = ctx.token if name == ctx.backend else f"{ctx.token}:{name}"
    found = _BACKGROUNDS.get(key)
    if found is None:
        found = _BACKGROUNDS[key] = _backend(name, ctx).background(ctx.spec, **background_args(ctx.kind, ctx.settings))
    return found


def _backend(name: str, ctx: Context) -> Any:
    """The backend ``name``; pyhf with the claims' fit tolerance where ``ctx`` records one."""
    if name == "pyhf" and ctx.fit_tolerance is not None:
        return PyhfBackend(tolerance=ctx.fit_tolerance)
    return get(name)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compute(ctx: Context, task: Task, *, signal: str | None = None, backend: str | None = None) -> dict[str, Any]:
    """CLs (and limits) of ``task``'s point in ``ctx`` with its backend (or ``backend``); raises on failure."""
    bkg = _background(ctx, backend)
    model = bkg.model(signal=signal or task.signal) if ctx.kind == "simplified" else bkg.model(task.patches)
    cls = model.cls(task.mu)
    out: dict[str, Any] = {"CLs_obs": float(cls.observed), "CLs_exp": [float(v) for v in cls.expected]}
    out.update(marks(cls))
    if task.upper_limit:
        ul = model.upper_limit(level=task.level)
        out["mu_up_obs"] = _finite(float(ul.observed))
        out["mu_up_exp"] = [_finite(float(v)) for v in ul.expected]
    return out


def marks(cls: Any) -> dict[str, Any]:
    """The per-point marks of a CLs result (DESIGN.md 5b): ``multimodal`` with ``starts``, ``underflow``."""
    out: dict[str, Any] = {}
    if getattr(cls, "multimodal", False):
        out["multimodal"] = True
        out["starts"] = dict(cls.starts)
    if getattr(cls, "underflow", ()):
        out["underflow"] = list(cls.underflow)
    return out


def audit_values(ctx: Context, task: Task) -> dict[str, Any]:
    """An audit task's values: ``nll`` (-ln L of the free fit with ``ctx``'s backend) and
    ``reference`` (the reference backend's ``CLs_obs``, ``CLs_exp``, ``nll``)."""
    bkg = _background(ctx)
    own = bkg.model(signal=task.signal) if ctx.kind == "simplified" else bkg.model(task.patches)
    nll = own.fit().twice_nll / 2
    if task.reference == "spey":
        from heparch.replay.audit import spey_values  # cycle: replay.audit imports this module (spey: only in an audit)

        ref = spey_values(ctx.spec, str(task.signal), task.mu)
    else:
        model = _background(ctx, task.reference).model(task.patches)
        cls = model.cls(task.mu)
        ref = {"CLs_obs": float(cls.observed), "CLs_exp": [float(v) for v in cls.expected], **marks(cls), "nll": model.fit().twice_nll / 2}
    return {"nll": float(nll), "reference": {**ref, "reference": task.reference}}


def _unsupported(ctx: Context, task: Task) -> str | None:
    """Why the fast engine, chosen by default for the likelihood, cannot handle this point's
    patched model (None when it can, or when the choice was not a default fast one)."""
    if not ctx.fallback or ctx.kind != "workspace" or not task.patches:
        return None

    doc: Any = ctx.spec
    for ops in task.patches:
        doc, _ = apply_patch(doc, list(ops))
    why: str | None = get(ctx.backend).unsupported(doc)
    return why


def _computed(ctx: Context, task: Task) -> tuple[dict[str, Any], str, str | None]:
    """The values of ``task``, the backend that made them and why it was not ``ctx``'s (a point
    the default choice of the fast engine cannot compute is computed with pyhf)."""
    if task.reference is not None:
        return audit_values(ctx, task), task.reference, None
    why = _unsupported(ctx, task)
    if why is not None:
        return compute(ctx, task, backend="pyhf"), "pyhf", f"the fast backend cannot handle this point ({why}); computed with pyhf"
    try:
        return compute(ctx, task), ctx.backend, None
    except FitError as exc:
        if not ctx.fallback or isinstance(exc, DegenerateResult):
            raise
        why = f"the fast backend could not compute this point ({_error_text(exc)}); computed with pyhf"
        return compute(ctx, task, backend="pyhf"), "pyhf", why


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}".splitlines()[0]


def run_task(contexts: Mapping[str, Context], task: Task) -> TaskResult:
    """Compute ``task``; a failure of the point is returned as ``error``, never raised."""
    ctx = contexts[task.token]
    start = time.perf_counter()
    backend, note = ctx.backend, None
    try:
        values: dict[str, Any] | None
        values, backend, note = _computed(ctx, task)
        error = None
    except Exception as exc:  # a point's failure is reported and the others go on
        values, error = None, _error_text(exc)
    seconds = time.perf_counter() - start
    simplified = None
    if task.simplified is not None and task.simplified in contexts:
        try:
            simplified = compute(contexts[task.simplified], dataclasses.replace(task, upper_limit=False), signal=task.point)
        except Exception as exc:
            simplified = {"error": _error_text(exc)}
    return TaskResult(task.token, task.point, values, backend, seconds, error, simplified, note)


# --- process-pool workers: the contexts arrive once, through the initializer -----------------
def init_worker(contexts: Mapping[str, Context]) -> None:
    """``ProcessPoolExecutor`` initializer: keep the contexts for :func:`run_in_worker`."""
    _CONTEXTS.clear()
    _CONTEXTS.update(contexts)


def run_in_worker(task: Task) -> TaskResult:
    return run_task(_CONTEXTS, task)
