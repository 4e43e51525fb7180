"""``arch replay --json`` of the example analysis against a golden file (issue 12: behaviour unchanged).

``tests/golden/replay_example.json`` was captured at 8cd99a9, before the domain-model refactoring of
issue 12, with (from the repository root)

    arch build fixtures/example-analysis -o /tmp/toy.zst
    arch replay /tmp/toy.zst --json --jobs 1 > out.json
    python tests/test_replay_golden.py out.json > tests/golden/replay_example.json

(:func:`stable` strips what changes from run to run: timings, the bundle's path). The keys, strings,
booleans and outcomes must be identical; the numbers within 1e-5 relative: the engine may change in
its last digits (the replayed values agree with the claims to ~1e-6 relative), the report may not.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from heparch.build import build

from clihelp import run
from conftest import EXAMPLE

GOLDEN = Path(__file__).parent / "golden" / "replay_example.json"
VOLATILE = {"seconds", "bundle"}
#: differences of two nearly equal numbers: compared in units of the claim's tolerance instead
DERIVED = {"worst_ratio"}


def stable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


def differences(got: Any, want: Any, where: str = "$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        if sorted(got) != sorted(want):
            return [f"{where}: keys {sorted(got)} != {sorted(want)}"]
        return [d for k in want for d in differences(got[k], want[k], f"{where}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in differences(g, w, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        leaf = where.rsplit(".", 1)[-1]
        if leaf in DERIVED or leaf.startswith("difference"):
            ok = math.isclose(got, want, rel_tol=0.0, abs_tol=0.05) if leaf in DERIVED else abs(got - want) <= 1e-5 * max(abs(want), 1e-300) + 1e-9
        else:
            ok = math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-300)
        return [] if ok else [f"{where}: {got!r} != {want!r}"]
    return [] if (type(got), got) == (type(want), want) else [f"{where}: {got!r} != {want!r}"]


@pytest.mark.slow
def test_replay_json_of_the_example_equals_the_golden_file(tmp_path: Path) -> None:
    bundle = tmp_path / "toy.zst"
    build(EXAMPLE, output=bundle)
    code, out, err = run("replay", str(bundle), "--json", "--jobs", "1")
    assert code == 0, err
    got = stable(json.loads(out))
    want = json.loads(GOLDEN.read_text())
    assert differences(got, want) == []


def test_the_comparison_can_fail() -> None:
    want = json.loads(GOLDEN.read_text())
    point = next(iter(want["points"]))
    changed = json.loads(json.dumps(want))
    changed["points"][point]["outcome"] = "mismatch"
    changed["points"][point]["replayed"]["CLs_obs"] = want["points"][point]["replayed"]["CLs_obs"] * 1.001 + 1e-3
    found = differences(changed, want)
    assert [f.split(":")[0] for f in found] == [f"$.points.{point}.outcome", f"$.points.{point}.replayed.CLs_obs"]


if __name__ == "__main__":  # capture: python tests/test_replay_golden.py out.json > tests/golden/replay_example.json
    print(json.dumps(stable(json.loads(Path(sys.argv[1]).read_text())), indent=1, sort_keys=True))
