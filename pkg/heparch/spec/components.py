"""Frozen models of the heparch-defined components: simplified likelihoods, results and declared signal interfaces.

They mirror ``schemas/1.0.0/simplified-likelihood.json``, ``results.json`` and ``signal-interface.json``
(a test keeps property names and required sets equal). Parse at the edge with
:meth:`from_json` after :mod:`heparch.components` has checked the component; fields a newer
1.x version adds are kept, so :meth:`to_json` round-trips them.

>>> point = ResultPoint.from_json({"CLs_obs": 0.2, "CLs_exp": [0.1, 0.15, 0.2, 0.3, 0.4]})
>>> point.CLs_exp[2], point.to_json()["CLs_obs"]
(0.2, 0.2)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

#: a JSON number (ints stay ints, so ``to_json`` gives back the same JSON)
Number = StrictInt | StrictFloat
CLs = Annotated[Number, Field(ge=0, le=1)]
Band = tuple[Number, Number, Number, Number, Number]
CLsBand = tuple[CLs, CLs, CLs, CLs, CLs]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        """The model of a parsed JSON object; raises ``pydantic.ValidationError``."""
        return cls.model_validate(obj)

    def to_json(self) -> dict[str, Any]:
        """The JSON object, without the optional fields that are unset."""
        out: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        return out


# ---------------------------------------------------------------------------------------
# simplified likelihood


class DerivedFrom(_Model):
    """The full likelihood a simplified likelihood was derived from, and how."""

    likelihood: str = Field(min_length=1)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    method: str | None = None
    seed: StrictInt | None = None
    samples: StrictInt | None = Field(default=None, ge=1)


class SimplifiedLikelihood(_Model):
    """Observed counts, background means and covariance (n bins), optional third moments,
    signal yields by point name, optional point labels."""

    observed: tuple[Annotated[Number, Field(ge=0)], ...] = Field(min_length=1)
    background: tuple[Number, ...] = Field(min_length=1)
    covariance: tuple[tuple[Number, ...], ...] = Field(min_length=1)
    third_moments: tuple[Number, ...] | None = None
    signals: dict[str, tuple[Number, ...]]
    labels: tuple[str, ...] | None = None
    values: dict[str, tuple[Number | str, ...]] | None = None
    derived_from: DerivedFrom | None = None

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(self.observed)


# ---------------------------------------------------------------------------------------
# results


class ToleranceSpec(_Model):
    """Allowed difference ``max(abs, rel * |claimed|)``."""

    abs: Annotated[Number, Field(ge=0)] | None = None
    rel: Annotated[Number, Field(ge=0)] | None = None


class Tolerance(_Model):
    """Tolerances of a replay, for CLs values and for upper limits."""

    CLs: ToleranceSpec | None = None
    mu_up: ToleranceSpec | None = None


class Settings(_Model):
    """The inference settings the claims were made with."""

    mu: Number | None = None
    level: Annotated[Number, Field(gt=0, lt=1)] | None = None
    test_stat: str | None = None
    calctype: str | None = None
    calc_base_dist: str | None = None
    interpolation: dict[str, str] | None = None
    poi_bounds: tuple[Number, Number] | None = None
    measurement: str | None = None
    fit_tolerance: Annotated[Number, Field(gt=0)] | None = None


class ResultPoint(_Model):
    """Claimed CLs (observed, expected -2..+2 sigma) and optional upper limits of one point;
    the backend that computed it, and its marks: ``multimodal`` (with the values from each
    start) and the fields that ``underflow`` double precision."""

    CLs_obs: CLs
    CLs_exp: CLsBand
    mu_up_obs: Number | None = None
    mu_up_exp: Band | None = None
    backend: str | None = None
    multimodal: bool | None = None
    starts: dict[str, Any] | None = None
    underflow: tuple[str, ...] | None = None


class AuditPoint(_Model):
    """The audit's differences at one point."""

    nll_difference: Number | None = None
    ratio: Annotated[Number, Field(ge=0)] | None = None
    field: str | None = None


class Audit(_Model):
    """The claim's audit of the fast engine against a reference backend."""

    status: str
    reference: str | None = None
    requested: Annotated[StrictInt, Field(ge=0)] | None = None
    seed: StrictInt | None = None
    max_ratio: Annotated[Number, Field(ge=0)] | None = None
    reason: str | None = None
    points: dict[str, AuditPoint] | None = None


class Parent(_Model):
    """The bundle claims were computed from."""

    identity: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class Results(_Model):
    """The claimed results for one likelihood."""

    likelihood: str = Field(min_length=1)
    backend: str | None = None
    settings: Settings | None = None
    software: dict[str, str] | None = None
    tolerance: Tolerance | None = None
    parent: Parent | None = None
    points: dict[str, ResultPoint]
    audit: Audit | None = None


# ---------------------------------------------------------------------------------------
# declared signal interface


class InterfaceRegion(_Model):
    """A channel a new signal enters: its bins, the staterror it shares, the systematics that apply."""

    channel: str = Field(min_length=1)
    bins: Annotated[StrictInt, Field(ge=1)]
    staterror: str | None = Field(default=None, min_length=1)
    systematics: tuple[Annotated[str, Field(min_length=1)], ...] | None = None


class InterfaceSystematic(_Model):
    """A signal systematic a new signal gives as ``<key>_up``/``<key>_down``."""

    key: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: Literal["histosys", "normsys"]


class SignalInterface(_Model):
    """A signal interface the analysis declares for one likelihood (checked against its patches: E083)."""

    likelihood: str = Field(min_length=1)
    poi: str | None = Field(default=None, min_length=1)
    sample_name: str | None = Field(default=None, min_length=1)
    luminosity_ifb: Annotated[Number, Field(gt=0)] | None = None
    regions: tuple[InterfaceRegion, ...] = Field(min_length=1)
    systematics: tuple[InterfaceSystematic, ...] | None = None
