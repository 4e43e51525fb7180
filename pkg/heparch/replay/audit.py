"""The engine audit: recompute a few points the fast engine computed with a reference backend.

``arch claim --audit N`` (default 1) and ``arch replay --audit N`` (default 0) pick N points
the fast engine computed, with a seed derived from the bundle identity (recorded), and
recompute each with the reference: pyhf for a workspace; spey 0.2.7, when installed, for a
simplified likelihood (its backend only is compared, never the fast engine: a simplified
likelihood is audited against the field's own tool). -ln L of the free fit is compared first
(within :data:`NLL_TOLERANCE`), then the CLs values (within the claims' tolerance); the
largest difference is reported as a fraction of its tolerance (<= 1 passes).

>>> seed_of("sha256:" + "ab" * 32)
3020060926589626
>>> choose_points(["a", "b", "c", "d"], 2, seed_of("sha256:" + "ab" * 32))
['b', 'c']
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import random
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from heparch.replay.core import candidates, ratio
from heparch.replay.outcome import Audited, AuditSummary, Values
from heparch.replay.work import Context, Task
from heparch.spec.components import Tolerance

#: the largest difference in -ln L of the free fit between the audited and the reference
#: backend (2e-3 in q shifts CLs by less than 1e-4 where CLs is near 0.05)
NLL_TOLERANCE: Final = 1e-3
#: the reference backend by the kind of likelihood
REFERENCE: Final[Mapping[str, str]] = {"workspace": "pyhf", "simplified": "spey"}
#: the backends whose points are audited, by kind
AUDITED: Final[Mapping[str, str]] = {"workspace": "fast", "simplified": "simplified"}


def seed_of(identity: str) -> int:
    """The audit's seed: the first 52 bits of the bundle identity's digest (13 hex digits: an
    integer every JSON reader keeps exactly, within I-JSON's +-(2^53 - 1))."""
    digest = identity.split(":", 1)[-1]
    return int(digest[:13], 16)


def choose_points(keys: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` of ``keys`` (sorted first, so the choice depends only on the names and the seed)."""
    ordered = sorted(keys)
    if n >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, n))


def spey_available() -> bool:
    """spey is an optional reference: found without importing it (its import prints a banner)."""
    return importlib.util.find_spec("spey") is not None


def reference_for(ctx: Context) -> tuple[str | None, str]:
    """The reference backend for ``ctx``'s points and, when there is none, why."""
    if ctx.backend != AUDITED[ctx.kind]:
        return None, f"{ctx.likelihood}: computed with {ctx.backend}, not the {AUDITED[ctx.kind]} engine: nothing to audit"
    ref = REFERENCE[ctx.kind]
    if ref == "spey" and not spey_available():
        return None, f"{ctx.likelihood}: spey is not installed (pip install spey==0.2.7): the simplified likelihood's audit is skipped"
    return ref, ""


def spey_values(spec: Mapping[str, Any], signal: str, mu: float) -> dict[str, Any]:
    """CLs (observed, expected -2..+2 sigma, a posteriori) and -ln L of the free fit from spey 0.2.7."""
    import numpy as np  # numpy: only when an audit runs

    os.environ.setdefault("SPEY_CHECKUPDATE", "OFF")  # spey's import asks PyPI for updates unless told not to
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for --json
        import spey  # type: ignore[import-untyped]  # spey 0.2.7 ships no type information
    atexit.unregister(getattr(spey, "_print_thanks", lambda: None))  # its citation banner at exit would follow --json on stdout

    args: dict[str, Any] = {
        "signal_yields": np.asarray(spec["signals"][signal], dtype=float),
        "background_yields": np.asarray(spec["background"], dtype=float),
        "data": np.asarray(spec["observed"], dtype=float),
        "covariance_matrix": np.asarray(spec["covariance"], dtype=float),
    }
    if spec.get("third_moments") is not None:
        args["third_moment"] = np.asarray(spec["third_moments"], dtype=float)
        model = spey.get_backend("default.third_moment_expansion")(**args)
    else:
        model = spey.get_backend("default.correlated_background")(**args)
    obs = model.exclusion_confidence_level(poi_test=mu, expected=spey.ExpectationType.observed)
    exp = model.exclusion_confidence_level(poi_test=mu, expected=spey.ExpectationType.aposteriori)
    _, nll = model.maximize_likelihood(return_nll=True, allow_negative_signal=False)
    return {"CLs_obs": 1.0 - float(obs[0]), "CLs_exp": [1.0 - float(v) for v in exp], "nll": float(nll)}


def compared(audited: Mapping[str, Any], reference: Mapping[str, Any], tolerance: Tolerance) -> Audited:
    """One point's audit from a worker's values: ``audited`` (the audited backend's CLs values and
    ``nll``) and ``reference`` (the reference's, with ``nll`` and the backend's name as ``reference``):
    -ln L first, then the CLs values."""
    nll_diff = float(audited["nll"]) - float(reference["nll"])
    name = str(reference.get("reference"))
    worst = Audited(nll_diff, abs(nll_diff) / NLL_TOLERANCE, "nll", float(audited["nll"]), float(reference["nll"]), NLL_TOLERANCE, name)
    for m in candidates(Values.from_json(audited).cls_only(), Values.from_json(reference), tolerance):
        r = ratio(m)
        if r > worst.ratio:
            worst = Audited(nll_diff, r, m.field, m.claimed, m.replayed, m.tolerance, name)
    return worst


def tasks_for(contexts: Mapping[str, Context], computed: Mapping[tuple[str, str], Task], n: int, seed: int) -> tuple[list[Task], list[str]]:
    """The audit tasks: ``n`` of the ``computed`` points (``(token, point) -> task``) whose
    context has a reference; notes say which contexts cannot be audited and why."""
    notes: dict[str, str] = {}
    eligible: dict[str, Task] = {}
    for (token, point), task in computed.items():
        ref, why = reference_for(contexts[token])
        if ref is None:
            notes[token] = why
        else:
            eligible[f"{contexts[token].likelihood}:{point}"] = Task(
                token, point, patches=task.patches, signal=task.signal, mu=task.mu, level=task.level, reference=ref
            )
    chosen = choose_points(list(eligible), n, seed)
    return [eligible[k] for k in chosen], sorted(set(notes.values()))


def summary(requested: int, seed: int, points: Mapping[str, Audited], errors: Mapping[str, str], notes: Sequence[str]) -> AuditSummary:
    """The run's audit: ``requested`` points chosen by ``seed``, the audited ``points`` (by name),
    the ``errors`` of those that could not be recomputed, and ``notes`` on what was not audited."""
    if requested == 0:
        return AuditSummary(requested, seed, "off")
    status, reason = _status(max((p.ratio for p in points.values()), default=None), errors, notes)
    return AuditSummary(requested, seed, status, reason, dict(points))


def _status(max_ratio: float | None, errors: Mapping[str, str], notes: Sequence[str]) -> tuple[str, str | None]:
    """The audit's status and its reason: failed where a point could not be recomputed, skipped
    where none was (``max_ratio`` None), else by the largest ratio."""
    if errors:
        first = next(iter(sorted(errors.items())))
        return "failed", f"{len(errors)} point(s) could not be recomputed (first: {first[0]}: {first[1]})"
    if max_ratio is None:
        return "skipped", "; ".join(notes) or "no point to audit"
    return "passed" if max_ratio <= 1 else "failed", "; ".join(notes) or None
