"""The backend Protocol and the named result types every backend returns.

A backend turns a background-only model into a :class:`Background` once (the
expensive part: parsing, structure, constraint terms), and each signal point into
a :class:`Model` cheaply from it. Results are named, never tuples shaped by flags.
pyhf reports CLs, spey reports 1-CLs: these types always hold CLs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from heparch.components.patchset import PatchFailure, apply_patch
from heparch.errors import InferenceInputError, InputError

#: the q~mu asymptotic settings of pyhf 0.7.6's AsymptoticCalculator that results record
HISTFACTORY_SETTINGS: dict[str, Any] = {
    "test_stat": "qtilde",
    "calctype": "asymptotics",
    "calc_base_dist": "normal",
    "interpolation": {"normsys": "code4", "histosys": "code4p"},
    "poi_lower_bound": 0.0,
}
#: the choices of :class:`Settings`, pyhf's names
TEST_STATS: tuple[str, ...] = ("qtilde", "q")
NORMSYS_CODES: tuple[str, ...] = ("code1", "code4")
HISTOSYS_CODES: tuple[str, ...] = ("code0", "code2", "code4p")
EXPECTED_SIGMAS = (-2, -1, 0, 1, 2)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a HistFactory hypothesis test is computed, in pyhf 0.7.6's names.

    One value used by ``arch cls``, ``upper-limit``, ``claim`` and ``replay``: recorded in the
    results' ``settings`` (:meth:`to_json`) and read back from them (:meth:`from_json`).
    ``poi_bounds`` None means the bounds the workspace gives (pyhf's suggested bounds, as
    ``pyhf cls`` uses them); ``measurement`` None means the workspace's first measurement.
    Only the asymptotic calculator with the ``normal`` base distribution is computed;
    anything else (toys, the q0 discovery statistic) is an :class:`InputError`.

    >>> Settings(test_stat="q", normsys="code1", histosys="code0").to_json()["interpolation"]
    {'normsys': 'code1', 'histosys': 'code0'}
    >>> Settings.from_json({"test_stat": "qtilde", "poi_bounds": [-10, 10]}).poi_bounds
    (-10.0, 10.0)
    """

    test_stat: str = "qtilde"
    normsys: str = "code4"
    histosys: str = "code4p"
    poi_bounds: tuple[float, float] | None = None
    measurement: str | None = None
    calctype: str = "asymptotics"
    calc_base_dist: str = "normal"

    def __post_init__(self) -> None:
        for option, value, allowed in (
            ("test_stat", self.test_stat, TEST_STATS),
            ("normsys", self.normsys, NORMSYS_CODES),
            ("histosys", self.histosys, HISTOSYS_CODES),
            ("calctype", self.calctype, ("asymptotics",)),
            ("calc_base_dist", self.calc_base_dist, ("normal",)),
        ):
            if value not in allowed:
                raise InputError(f"{option} {value!r}: heparch computes {' or '.join(allowed)}", option=option)
        if self.poi_bounds is not None:
            lo, hi = self.poi_bounds
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(f"poi_bounds {lo:g},{hi:g}: need two finite numbers, lower < upper", option="poi_bounds")

    def to_json(self) -> dict[str, Any]:
        """The results' ``settings`` fields these settings fix."""
        out: dict[str, Any] = {
            "test_stat": self.test_stat,
            "calctype": self.calctype,
            "calc_base_dist": self.calc_base_dist,
            "interpolation": {"normsys": self.normsys, "histosys": self.histosys},
        }
        if self.poi_bounds is not None:
            out["poi_bounds"] = list(self.poi_bounds)
        if self.measurement is not None:
            out["measurement"] = self.measurement
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], where: str = "settings") -> Settings:
        """Settings from a results' ``settings`` object; missing fields take the defaults.

        Claims made with toys or with the q0 discovery statistic cannot be replayed: an
        :class:`InputError` naming the field and the reason.
        """
        test_stat, calctype = _text(doc, "test_stat", "qtilde", where), _text(doc, "calctype", "asymptotics", where)
        _require_replayable(test_stat, calctype, where)
        interp, bounds = _interpolation(doc, where), _poi_bounds(doc, where)
        measurement = doc.get("measurement")
        try:
            return cls(
                test_stat=test_stat,
                normsys=str(interp.get("normsys", "code4")),
                histosys=str(interp.get("histosys", "code4p")),
                poi_bounds=bounds,
                measurement=measurement if isinstance(measurement, str) else None,
                calctype=calctype,
                calc_base_dist=_text(doc, "calc_base_dist", "normal", where),
            )
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}") from None


def _text(doc: Mapping[str, Any], name: str, default: str, where: str) -> str:
    """A settings field that must be a string (``default`` when absent)."""
    value = doc.get(name, default)
    if not isinstance(value, str):
        raise InputError(f"{where}.{name}: {value!r} is not a string")
    return value


def _require_replayable(test_stat: str, calctype: str, where: str) -> None:
    """Refuse what heparch cannot recompute: discovery (q0) claims and toy-based claims."""
    if test_stat == "q0":
        raise InputError(f"{where}.test_stat: 'q0' (discovery) claims cannot be replayed: heparch computes CLs with qtilde or q")
    if calctype != "asymptotics":
        raise InputError(f"{where}.calctype: {calctype!r} claims cannot be replayed: heparch computes the asymptotic formulae only (toys are random)")


def _interpolation(doc: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """The ``interpolation`` object (empty when absent)."""
    interp = doc.get("interpolation", {})
    if not isinstance(interp, Mapping):
        raise InputError(f"{where}.interpolation: {interp!r} is not an object")
    return interp


def _poi_bounds(doc: Mapping[str, Any], where: str) -> tuple[float, float] | None:
    """``poi_bounds`` as a pair of floats, or None when absent."""
    bounds = doc.get("poi_bounds")
    if bounds is None:
        return None
    if not (isinstance(bounds, list | tuple) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds)):
        raise InputError(f"{where}.poi_bounds: {bounds!r} is not [lower, upper]")
    return float(bounds[0]), float(bounds[1])


def apply_patches(spec: Mapping[str, Any], patches: Sequence[Sequence[Mapping[str, Any]]]) -> Any:
    """``spec`` with the RFC 6902 ``patches`` applied in order (a signal point of the HistFactory
    backends); a patch that does not apply is an :class:`InferenceInputError` naming it."""
    doc: Any = spec
    for k, ops in enumerate(patches):
        try:
            doc, _ = apply_patch(doc, list(ops))
        except PatchFailure as exc:
            raise InferenceInputError(f"patch {k + 1}: operation {exc.index} does not apply to the workspace: {exc.reason}") from None
    return doc


Band = tuple[float, float, float, float, float]


@dataclasses.dataclass(frozen=True)
class CLsResult:
    """CLs observed and the expected band (-2..+2 sigma) at one POI value ``mu``."""

    observed: float
    expected: Band
    mu: float
    backend: str
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: several minima were found (fits from different starts differ by > 1e-6 in -ln L); the
    #: lowest was taken, ``starts`` holds -ln L (or the CLs) from each start by fit
    multimodal: bool = False
    starts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: values that underflow double precision (e.g. ``"CLs_exp[0]"``): reported as 0, not computed
    underflow: tuple[str, ...] = ()
    #: warnings about how the result was computed (e.g. q~mu with a POI lower bound below 0)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = {"CLs_obs": self.observed, "CLs_exp": list(self.expected), "mu": self.mu, "backend": self.backend, "settings": dict(self.settings)}
        if self.multimodal:
            out["multimodal"] = True
            out["starts"] = dict(self.starts)
        if self.underflow:
            out["underflow"] = list(self.underflow)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


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

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> Background:
        """The background-only model; ``settings`` (None: the defaults) fix the test statistic,
        interpolation codes, POI bounds and measurement (``measurement`` is the older spelling of
        ``settings.measurement``). A HistFactory backend that cannot honour a setting raises
        :class:`~heparch.errors.InferenceInputError` naming it, or reports it in :meth:`unsupported`."""
        ...
