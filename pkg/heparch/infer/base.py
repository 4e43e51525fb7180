"""The backend Protocol and the named result types every backend returns.

A backend turns a background-only model into a :class:`Background` once (the
expensive part: parsing, structure, constraint terms), and each signal point into
a :class:`Model` cheaply from it. Results are named, never tuples shaped by flags.
pyhf reports CLs, spey reports 1-CLs: these types always hold CLs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: the q~mu asymptotic settings of pyhf 0.7.6's AsymptoticCalculator that results record
HISTFACTORY_SETTINGS: dict[str, Any] = {
    "test_stat": "qtilde",
    "calctype": "asymptotics",
    "calc_base_dist": "normal",
    "interpolation": {"normsys": "code4", "histosys": "code4p"},
    "poi_lower_bound": 0.0,
}
EXPECTED_SIGMAS = (-2, -1, 0, 1, 2)
Band = tuple[float, float, float, float, float]


@dataclasses.dataclass(frozen=True)
class CLsResult:
    """CLs observed and the expected band (-2..+2 sigma) at one POI value ``mu``."""

    observed: float
    expected: Band
    mu: float
    backend: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"CLs_obs": self.observed, "CLs_exp": list(self.expected), "mu": self.mu, "backend": self.backend, "settings": dict(self.settings)}


@dataclasses.dataclass(frozen=True)
class UpperLimit:
    """Upper limits on the POI at CLs = ``level``: observed and expected (-2..+2 sigma).

    A value above ``cap`` is reported as ``math.inf`` with ``above_cap`` naming which.
    """

    observed: float
    expected: Band
    level: float
    backend: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    poi_upper_bound: float = 0.0  # the POI bound the search ended with (widened if needed)
    cap: float = 0.0
    above_cap: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "mu_up_obs": self.observed,
            "mu_up_exp": list(self.expected),
            "level": self.level,
            "backend": self.backend,
            "settings": dict(self.settings),
            "poi_upper_bound": self.poi_upper_bound,
            "cap": self.cap,
            "above_cap": list(self.above_cap),
        }


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A maximum-likelihood fit: best-fit values, post-fit covariance, -2 ln L, convergence."""

    parameters: tuple[str, ...]
    bestfit: Any  # numpy array, len(parameters)
    covariance: Any  # numpy array (n, n); post-fit (inverse Hessian), zero rows for fixed parameters
    twice_nll: float
    converged: bool
    message: str = ""


class Model(Protocol):
    """One signal point, ready for inference."""

    backend: str

    def cls(self, mu: float = 1.0) -> CLsResult: ...

    def upper_limit(self, *, level: float = 0.05) -> UpperLimit: ...

    def fit(self) -> FitResult: ...


class Background(Protocol):
    """A background-only model prepared once; signal points are derived from it."""

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> Model:
        """The model with RFC 6902 ``patches`` applied (HistFactory) or the named ``signal`` (simplified)."""
        ...


class Backend(Protocol):
    name: str

    def unsupported(self, spec: Mapping[str, Any]) -> str | None:
        """Why this backend cannot handle ``spec`` (None when it can)."""
        ...

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None) -> Background: ...
