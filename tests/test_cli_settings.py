"""Settings options of arch cls / upper-limit and the per-point fallback from the fast engine to pyhf (issue 10, items 2-3)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from heparch.errors import DegenerateResult, FitError, InputError
from heparch.infer import backends
from heparch.infer.base import Settings
from heparch.infer.fast.backend import FastModel

from clihelp import run
from conftest import small_patchset, small_workspace


def write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ws = small_workspace()
    return {"ws": write(tmp_path / "BkgOnly.json", ws), "ps": write(tmp_path / "patchset.json", small_patchset(ws))}


def cls(files: dict[str, Path], *extra: str) -> tuple[int, str, str]:
    return run("cls", str(files["ws"]), "--patchset", str(files["ps"]), "--point", "pt_400_100", *extra)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--poi-bounds", "1,0"), "--poi-bounds 1,0: need two finite numbers, lower < upper"),
        (("--poi-bounds", "0"), "--poi-bounds '0': give two numbers LO,HI, e.g. --poi-bounds=-10,10"),
        (("--poi-bounds", "a,b"), "--poi-bounds 'a,b': give two numbers LO,HI, e.g. --poi-bounds=-10,10"),
        (("--test-stat", "q0"), "--test-stat 'q0': heparch computes qtilde or q"),
        (("--normsys-interp", "code2"), "--normsys-interp 'code2': heparch computes code1 or code4"),
        (("--histosys-interp", "code1"), "--histosys-interp 'code1': heparch computes code0 or code2 or code4p"),
    ],
)
def test_bad_settings_exit_2_naming_the_option(files: dict[str, Path], options: tuple[str, str], message: str) -> None:
    code, _, err = cls(files, *options)
    assert code == 2, err
    assert err.strip().splitlines() == [f"error: {message}"]


def test_interpolation_codes_reach_the_engine(files: dict[str, Path]) -> None:
    code, out, err = cls(files, "--backend", "fast", "--normsys-interp", "code1", "--histosys-interp", "code0", "--json")
    assert code == 0, err
    assert json.loads(out)["settings"]["interpolation"] == {"normsys": "code1", "histosys": "code0"}
    default = json.loads(cls(files, "--backend", "fast", "--json")[1])
    assert default["settings"]["interpolation"] == {"normsys": "code4", "histosys": "code4p"}


def test_measurement_must_exist(files: dict[str, Path]) -> None:
    code, _, err = cls(files, "--backend", "pyhf", "--measurement", "nope")
    assert code == 2, err
    assert "nope" in err
    assert "Traceback" not in err


def test_settings_refused_for_a_simplified_likelihood(tmp_path: Path) -> None:
    sl = write(tmp_path / "sl.json", {"observed": [5], "background": [4.0], "covariance": [[1.0]], "signals": {"A": [2.0]}})
    code, _, err = run("cls", str(sl), "--test-stat", "q")
    assert code == 2, err
    assert "apply to HistFactory workspaces" in err


# --- fallback ---------------------------------------------------------------------------


def _not_converging(self: FastModel, mu: float = 1.0) -> Any:
    raise FitError("fast engine: no convergence after 200 Newton iterations (test)")


def test_default_choice_falls_back_to_pyhf_for_the_point(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FastModel, "cls", _not_converging)
    code, out, err = cls(files, "--json")
    assert code == 0, err
    assert "the fast backend could not compute this point (fast engine: no convergence after 200 Newton iterations (test)); computed with pyhf" in err
    assert json.loads(out)["backend"] == "pyhf"


def test_requested_fast_that_cannot_compute_exits_2(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FastModel, "cls", _not_converging)
    code, _out, err = cls(files, "--backend", "fast")
    assert code == 2, err
    assert err.strip().splitlines() == ["error: fast engine: no convergence after 200 Newton iterations (test)"]


def test_degenerate_result_does_not_fall_back(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def degenerate(self: FastModel, mu: float = 1.0) -> Any:
        raise DegenerateResult("q_mu,A = 0 at mu=1: the Asimov data do not depend on mu")

    monkeypatch.setattr(FastModel, "cls", degenerate)
    code, _, err = cls(files)
    assert code == 2, err
    assert "q_mu,A = 0" in err
    assert "pyhf" not in err


class Refusing:
    """A backend whose background refuses every non-default setting."""

    def __init__(self, name: str) -> None:
        self.name = name

    def unsupported(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> Any:
        if settings is not None and settings != Settings(measurement=settings.measurement):
            from heparch.errors import InferenceInputError

            raise InferenceInputError(f"{self.name} refuses {settings.test_stat}")
        return object()


class Accepting(Refusing):
    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> Any:
        return object()


def test_settings_decide_the_default_choice() -> None:
    q = Settings(test_stat="q")
    only_pyhf = {"fast": Refusing("fast"), "pyhf": Accepting("pyhf")}
    choice = backends.choose("workspace", {}, settings=q, factory=only_pyhf.__getitem__)
    assert (choice.name, choice.reason, choice.fallback) == ("pyhf", "the fast backend cannot handle this model (fast refuses q); using pyhf", False)
    neither = {"fast": Refusing("fast"), "pyhf": Refusing("pyhf")}
    with pytest.raises(InputError, match="neither backend can compute these settings: fast: fast refuses q; pyhf: pyhf refuses q"):
        backends.choose("workspace", {}, settings=q, factory=neither.__getitem__)
    with pytest.raises(InputError, match="backend pyhf: cannot handle this model: pyhf refuses q; use backend=fast"):
        backends.choose("workspace", {}, "pyhf", settings=q, factory=neither.__getitem__)
    assert backends.choose("workspace", {}, settings=Settings(measurement="m"), factory=neither.__getitem__).fallback


def test_fallback_only_for_a_default_fast_choice() -> None:
    fast = backends.Choice(Refusing("fast"), fallback=True)
    stuck = FitError("stuck")
    other = backends.fallback(fast, stuck, factory=Refusing)
    assert other is not None
    assert (other.name, other.reason) == ("pyhf", "the fast backend could not compute this point (stuck); computed with pyhf")
    assert backends.fallback(backends.Choice(Refusing("fast")), stuck, factory=Refusing) is None
    assert backends.fallback(fast, DegenerateResult("q_mu,A = 0"), factory=Refusing) is None
    assert backends.fallback(fast, ValueError("bug"), factory=Refusing) is None
