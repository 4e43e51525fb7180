"""The interface's self-test, leave one out.

For a published point P: derive the interface from every other point, read P's published
patch as the inputs a user would give (:func:`~heparch.reinterpret.generate.inputs_from_patch`),
generate P's patch from them, and compare it with the published one (every difference must be
one the interface documents as dropped) and its CLs with the published patch's CLs (within the
tolerance, same backend).

>>> Difference("SR", "jes (normsys)", "missing", True).one_line()
'SR: jes (normsys): missing (documented)'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from heparch.analysis import DEFAULT_TOLERANCE
from heparch.components.interface import Dropped, Interface, Ops, derive, sample_add
from heparch.reinterpret.generate import Generated, inputs_from_patch, patch_for
from heparch.replay.core import allowed
from heparch.spec.components import ToleranceSpec

#: relative difference below which two published numbers are the same number (float round trips)
SAME: Final = 1e-9
PATCH_OPS: Final = ("add", "remove", "replace", "copy", "move", "test")
#: the CLs tolerance of the self-test: replay's default, max(abs, rel * |CLs|)
CLS_TOLERANCE: Final = DEFAULT_TOLERANCE.CLs or ToleranceSpec()  # the default always has one


@dataclasses.dataclass(frozen=True)
class Difference:
    """One way the generated patch differs from the published one."""

    region: str
    what: str
    how: str
    documented: bool

    def one_line(self) -> str:
        return f"{self.region}: {self.what}: {self.how}" + (" (documented)" if self.documented else " (NOT documented)")


@dataclasses.dataclass(frozen=True)
class SelfTest:
    """The leave-one-out result of one point."""

    point: str
    differences: tuple[Difference, ...]
    published: Mapping[str, Any] | None = None  # CLs of the published patch
    generated: Mapping[str, Any] | None = None  # CLs of the generated patch
    cls_difference: float | None = None
    tolerance: float | None = None

    @property
    def patch_ok(self) -> bool:
        return all(d.documented for d in self.differences)

    @property
    def cls_ok(self) -> bool:
        return self.cls_difference is None or (self.tolerance is not None and abs(self.cls_difference) <= self.tolerance)

    @property
    def passed(self) -> bool:
        return self.patch_ok and self.cls_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "pass": self.passed,
            "differences": [d.one_line() for d in self.differences],
            "published": dict(self.published) if self.published else None,
            "generated": dict(self.generated) if self.generated else None,
            "cls_difference": self.cls_difference,
            "tolerance": self.tolerance,
        }


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers within :data:`SAME` relative."""
    if _numbers(a, b):
        return math.isclose(float(a), float(b), rel_tol=SAME, abs_tol=1e-300)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _numbers(a: Any, b: Any) -> bool:
    """Both JSON numbers (``a`` not a boolean), compared within a tolerance."""
    return isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool)


def _by_region(ops: Ops, workspace: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out = {}
    for op in ops:
        index = sample_add(op, workspace)
        if index is not None:
            out[str(workspace["channels"][index]["name"])] = op["value"]
    return out


def _compare_sample(region: str, published: Mapping[str, Any], generated: Mapping[str, Any], documented: set[tuple[str, str, str]]) -> list[Difference]:
    out = []
    if published.get("name") != generated.get("name"):
        out.append(Difference(region, "sample name", f"published {published.get('name')!r}, generated {generated.get('name')!r}", False))
    if not _same(published.get("data"), generated.get("data")):
        out.append(Difference(region, "yields", "differ", False))
    return out + _modifier_differences(region, _modifier_data(published), _modifier_data(generated), documented)


def _modifier_data(sample: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """A sample's modifiers' data by (name, type)."""
    return {(str(m["name"]), str(m["type"])): m.get("data") for m in sample.get("modifiers", [])}


def _modifier_differences(
    region: str, pub: Mapping[tuple[str, str], Any], gen: Mapping[tuple[str, str], Any], documented: set[tuple[str, str, str]]
) -> list[Difference]:
    """A modifier on one side only, or with other data (by name and type)."""
    out = []
    for key in sorted(set(pub) | set(gen)):
        what = f"{key[0]} ({key[1]})"
        ok = (region, *key) in documented
        if key not in gen:
            out.append(Difference(region, what, "not in the generated patch", ok))
        elif key not in pub:
            out.append(Difference(region, what, "only in the generated patch", False))
        elif not _same(pub[key], gen[key]):
            out.append(Difference(region, what, "data differ", ok))
    return out


def _compare_region(
    region: str, pub: Mapping[str, Mapping[str, Any]], gen: Mapping[str, Mapping[str, Any]], documented: set[tuple[str, str, str]], regions_dropped: set[str]
) -> list[Difference]:
    """The differences in one region: a signal sample on one side only, else its sample's."""
    if region not in gen:
        return [Difference(region, "signal sample", "not in the generated patch", region in regions_dropped)]
    if region not in pub:
        return [Difference(region, "signal sample", "only in the generated patch", False)]
    return _compare_sample(region, pub[region], gen[region], documented)


def compare_patches(published: Ops, generated: Generated, dropped: Sequence[Dropped], workspace: Mapping[str, Any]) -> tuple[Difference, ...]:
    """Every difference between a published patch and the generated one; a difference is
    documented when the interface or the input conversion lists its modifier as dropped."""
    documented = {(d.region, d.name, d.type) for d in (*generated.dropped, *dropped)}
    other_ops = [d for d in dropped if d.type in PATCH_OPS]  # the conversion's note on each operation that adds no signal sample
    regions_dropped = {d.region for d in other_ops}
    pub, gen = _by_region(published, workspace), _by_region(generated.ops, workspace)
    out = [d for region in sorted(set(pub) | set(gen)) for d in _compare_region(region, pub, gen, documented, regions_dropped)]
    return tuple(out + _other_operations(published, workspace, len(other_ops)))


def _other_operations(published: Ops, workspace: Mapping[str, Any], noted: int) -> list[Difference]:
    """The published operations that add no signal sample (none generated), documented when the
    conversion ``noted`` each of them."""
    n_other = sum(1 for op in published if sample_add(op, workspace) is None)
    if not n_other:
        return []
    return [Difference("(patch)", f"{n_other} operation(s) that add no signal sample", "not generated", noted == n_other)]


def _cls(workspace: Mapping[str, Any], ops: Ops, backend: Any) -> dict[str, Any]:
    model = backend.model([list(ops)])
    r = model.cls(1.0)
    return {"CLs_obs": float(r.observed), "CLs_exp": [float(x) for x in r.expected]}


def leave_one_out(
    workspace: Mapping[str, Any],
    patches: Mapping[str, Ops],
    point: str,
    *,
    likelihood: str = "likelihood",
    background: Any | None = None,
    labels: Mapping[str, float] | None = None,
) -> tuple[SelfTest, Interface, Generated]:
    """Run the self-test of ``point``; ``background`` is a prepared background-only model of a
    backend (:meth:`heparch.infer.base.Backend.background`) to compare CLs with, None to compare
    the patches only."""
    itf = derive(workspace, patches, likelihood=likelihood, exclude=[point])
    inputs, dropped = inputs_from_patch(itf, point, patches[point], workspace, labels)
    generated = patch_for(itf, inputs)
    differences = compare_patches(patches[point], generated, dropped, workspace)
    if background is None:
        return SelfTest(point, differences), itf, generated
    published, made = _cls(workspace, patches[point], background), _cls(workspace, generated.ops, background)
    diff = made["CLs_obs"] - published["CLs_obs"]
    tol = allowed(published["CLs_obs"], CLS_TOLERANCE)
    return SelfTest(point, differences, published, made, diff, tol), itf, generated
