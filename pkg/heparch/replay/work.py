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

Patch = Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Context:
    """One likelihood as the workers need it.

    ``token`` identifies it across processes (bundle identity and logical path);
    ``kind`` is ``workspace`` or ``simplified``; ``interpolation`` holds the normsys and
    histosys codes of the claims; ``fit_tolerance`` the pyhf backend's minimiser tolerance.
    """

    token: str
    likelihood: str
    kind: str
    backend: str
    spec: Mapping[str, Any]
    interpolation: Mapping[str, str] = dataclasses.field(default_factory=dict)
    fit_tolerance: float | None = None


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


_BACKGROUNDS: dict[str, Any] = {}
_CONTEXTS: dict[str, Context] = {}


def _background(ctx: Context) -> Any:
    found = _BACKGROUNDS.get(ctx.token)
    if found is None:
        from heparch.infer.backends import get

        if ctx.backend == "fast":
            from heparch.infer.fast import FastBackend

            backend: Any = FastBackend(**{k: ctx.interpolation[k] for k in ("normsys", "histosys") if k in ctx.interpolation})
        elif ctx.backend == "pyhf" and ctx.fit_tolerance is not None:
            from heparch.infer.pyhf_backend import PyhfBackend

            backend = PyhfBackend(tolerance=ctx.fit_tolerance)
        else:
            backend = get(ctx.backend)
        found = _BACKGROUNDS[ctx.token] = backend.background(ctx.spec)
    return found


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compute(ctx: Context, task: Task, *, signal: str | None = None) -> dict[str, Any]:
    """CLs (and limits) of ``task``'s point in ``ctx``; raises on failure."""
    bkg = _background(ctx)
    model = bkg.model(signal=signal or task.signal) if ctx.kind == "simplified" else bkg.model(task.patches)
    cls = model.cls(task.mu)
    out: dict[str, Any] = {"CLs_obs": float(cls.observed), "CLs_exp": [float(v) for v in cls.expected]}
    if task.upper_limit:
        ul = model.upper_limit(level=task.level)
        out["mu_up_obs"] = _finite(float(ul.observed))
        out["mu_up_exp"] = [_finite(float(v)) for v in ul.expected]
    return out


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}".splitlines()[0]


def run_task(contexts: Mapping[str, Context], task: Task) -> TaskResult:
    """Compute ``task``; a failure of the point is returned as ``error``, never raised."""
    ctx = contexts[task.token]
    start = time.perf_counter()
    try:
        values: dict[str, Any] | None = compute(ctx, task)
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
    return TaskResult(task.token, task.point, values, ctx.backend, seconds, error, simplified)


# --- process-pool workers: the contexts arrive once, through the initializer -----------------
def init_worker(contexts: Mapping[str, Context]) -> None:
    """``ProcessPoolExecutor`` initializer: keep the contexts for :func:`run_in_worker`."""
    _CONTEXTS.clear()
    _CONTEXTS.update(contexts)


def run_in_worker(task: Task) -> TaskResult:
    return run_task(_CONTEXTS, task)
