"""The ``fast`` backend: heparch's own HistFactory engine on numpy/scipy.

It computes what pyhf 0.7.6's ``hypotest(mu, data, model, test_stat="qtilde",
return_expected_set=True)`` computes with the AsymptoticCalculator
(``calc_base_dist="normal"``), and ``fit`` what ``pyhf.infer.mle.fit`` computes, but with
exact (analytic) gradients and Hessians and a Newton minimiser, on a structure compiled
once per background-only workspace (see :mod:`heparch.infer.fast.structure`).

The hypothesis test at ``mu``, as pyhf does it:

1. free fit and fit with the POI fixed at ``mu``, both to the observed data (all other
   fixed parameters at their initial values); q~mu = 2 (nll_mu - nll_free) clipped at 0,
   and 0 when the fitted POI exceeds ``mu``;
2. the fit with the POI fixed at 0 to the observed data gives the Asimov data: the
   expected main data *and* the auxiliary data at the fitted parameters
   (``pyhf.infer.calculators.generate_asimov_data``);
3. q~mu,A from the same two fits to the Asimov data; the free fit to the Asimov data is
   the fitted point of step 2 itself (the Asimov data saturate the likelihood there, so
   it is the exact global minimum; pyhf finds it numerically);
4. CLs+b, CLb and CLs from the asymptotic normal distributions of pyhf's
   ``AsymptoticTestStatDistribution``, the expected band at test statistic values
   2, 1, 0, -1, -2 (reported as -2..+2 sigma).

Steps 1 (free fit) and 2 do not depend on ``mu`` and are cached, which makes upper
limits cheap. Every fit checks its convergence; a fit that fails raises :class:`FitError`
rather than returning a number.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer.base import HISTFACTORY_SETTINGS, CLsResult, FitResult, Settings, UpperLimit, apply_patches
from heparch.infer.fast import optimize, structure
from heparch.infer.fast._blas import single_thread
from heparch.infer.fast.likelihood import Likelihood
from heparch.infer.limits import DEFAULT_CAP
from heparch.infer.limits import upper_limit as _upper_limit

Arr = Any
ENGINE = "heparch.fast"
#: minima from two starts that differ by more than this in -ln L are different minima
MULTIMODAL_NLL = 1e-6
FREE_OBS = "free fit to the observed data"
BKG_OBS = "fit with the POI fixed at 0 to the observed data"
FREE_ASIMOV = "free fit to the Asimov data"


def _measurement(spec: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    """The measurement named ``name`` (None: the first), checked to have a ``config``."""
    ms = _measurements(spec)
    return _with_config(ms[0] if name is None else _named_measurement(ms, name))


def _measurements(spec: Mapping[str, Any]) -> list[Any]:
    ms = spec.get("measurements")
    if not isinstance(ms, list) or not ms:
        raise InferenceInputError("the workspace has no measurements")
    return ms


def _named_measurement(ms: list[Any], name: str) -> Any:
    found = [m for m in ms if isinstance(m, Mapping) and m.get("name") == name]
    if not found:
        raise InferenceInputError(f"measurement {name!r} not found (the workspace has {', '.join(repr(m.get('name')) for m in ms)})")
    return found[0]


def _with_config(m: Any) -> Mapping[str, Any]:
    if not isinstance(m, Mapping) or not isinstance(m.get("config"), Mapping):
        raise InferenceInputError(f"measurement {m.get('name') if isinstance(m, Mapping) else m!r}: needs a 'config'")
    return m


def _poi_config(m: Mapping[str, Any]) -> Mapping[str, Any]:
    poi = m["config"].get("poi")
    for p in m["config"].get("parameters", []) or []:
        if isinstance(p, Mapping) and p.get("name") == poi:
            return p
    return {}


def _poi_bounds(m: Mapping[str, Any], settings: Settings | None) -> tuple[Any, Any] | None:
    """The POI bounds the settings choose, else the measurement's (JSON: any type), else None."""
    if settings is not None and settings.poi_bounds is not None:
        return settings.poi_bounds
    given = _poi_config(m).get("bounds")
    if isinstance(given, list) and given and isinstance(given[0], list) and len(given[0]) == 2:
        return (given[0][0], given[0][1])
    return None


def _modifier_types(spec: Mapping[str, Any], name: str) -> set[str]:
    """The types of the modifiers named ``name`` anywhere in the workspace (malformed parts skipped)."""
    return {str(mod.get("type")) for mod in _modifiers(spec) if str(mod.get("name")) == name}


def _modifiers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every modifier of every sample of every channel (malformed parts skipped)."""
    mods = (mod for ch in _listed(spec, "channels") for s in _listed(ch, "samples") for mod in _listed(s, "modifiers"))
    return (mod for mod in mods if isinstance(mod, Mapping))


def _listed(obj: Any, key: str) -> list[Any]:
    """``obj[key]`` where ``obj`` is a mapping with a list there, else []."""
    items = obj.get(key) if isinstance(obj, Mapping) else None
    return items if isinstance(items, list) else []


def _observations(spec: Mapping[str, Any]) -> dict[str, Arr]:
    obs_raw = spec.get("observations")
    if not isinstance(obs_raw, list):
        raise InferenceInputError("the workspace has no observations")
    observations: dict[str, Arr] = {}
    for k, o in enumerate(obs_raw):
        if not isinstance(o, Mapping) or not isinstance(o.get("name"), str):
            raise InferenceInputError(f"observations[{k}]: needs a 'name'")
        observations[o["name"]] = structure._floats(o.get("data"), f"observations[{k}].data", nonnegative=True)
    return observations


def _asymptotic_cls(q: float, qA: float, mu: float, test_stat: str) -> tuple[float, list[float]]:
    """CLs observed and the expected band (test statistic 2, 1, 0, -1, -2, i.e. -2..+2 sigma) from
    q_mu and q_mu,A, as pyhf 0.7.6's AsymptoticCalculator (normal base distribution) computes them:
    q uses sqrt(q) - sqrt(q_A), q~mu switches to (q - q_A) / (2 sqrt(q_A)) above sqrt(q_A). The
    ratios are taken of log-CDFs, so a tiny CLs is not 0/0. q_mu,A = 0 (the Asimov data do not
    tell mu from 0) and anything not finite raise :class:`DegenerateResult`."""
    _check_test_statistics(q, qA, mu)
    sq, sqA = float(np.sqrt(q)), float(np.sqrt(qA))
    t = sq - sqA if test_stat == "q" or sq <= sqA else (q - qA) / (2.0 * sqA)
    obs = _cls_at(t, sqA)
    exp = [_cls_at(n, sqA) for n in (2.0, 1.0, 0.0, -1.0, -2.0)]
    values = [obs, *exp]
    if not all(np.isfinite(v) for v in values):
        raise DegenerateResult(f"fast backend at mu = {mu:g}: CLs is not finite ({values}; q_mu = {q:.6g}, q_mu,A = {qA:.6g})")
    return obs, exp


def _check_test_statistics(q: float, qA: float, mu: float) -> None:
    """Refuse a q_mu or q_mu,A that is not finite, and q_mu,A = 0 (no CLs can be computed)."""
    if not (np.isfinite(q) and np.isfinite(qA)):
        raise DegenerateResult(f"fast backend at mu = {mu:g}: the test statistic is not finite (q_mu = {q}, q_mu,A = {qA})")
    if qA <= 0.0:
        raise DegenerateResult(
            f"fast backend at mu = {mu:g}: q_mu,A = 0, the Asimov data do not distinguish mu = {mu:g} from 0 (pyhf divides by sqrt(q_mu,A) here); no CLs"
        )


def _cls_at(t: float, sqA: float) -> float:
    """CLs = CLs+b / CLb at the asymptotic distributions' variable ``t``, sqrt(q_mu,A) = ``sqA``."""
    return float(np.exp(log_ndtr(-(t + sqA)) - log_ndtr(-t)))


def _poi_above_zero(poi: str, bounds: tuple[Any, Any] | None) -> str | None:
    """Why POI ``bounds`` above 0 are unsupported (None: they are not)."""
    if bounds is not None and isinstance(bounds[0], int | float) and bounds[0] > 0:
        return f"the POI {poi!r} has lower bound {bounds[0]} > 0; the Asimov data need the fit at mu = 0 inside the bounds"
    return None


def _poi_not_normfactor(poi: str, kinds: set[str]) -> str | None:
    """Why a POI of modifier types ``kinds`` is unsupported (None: it is a normfactor or no modifier)."""
    if kinds and kinds != {"normfactor"}:
        return f"the POI {poi!r} is a {'/'.join(sorted(kinds))} parameter; the fast engine supports a normfactor POI"
    return None


class FastBackend:
    """heparch's HistFactory engine; ``normsys``/``histosys`` pick pyhf's interpolation codes."""

    name = "fast"

    def __init__(self, *, normsys: str = "code4", histosys: str = "code4p") -> None:
        if normsys not in ("code1", "code4"):
            raise InferenceInputError(f"normsys interpolation {normsys!r}: the fast backend implements code1 and code4")
        if histosys not in ("code0", "code2", "code4p"):
            raise InferenceInputError(f"histosys interpolation {histosys!r}: the fast backend implements code0, code2 and code4p")
        self.normsys = normsys
        self.histosys = histosys

    def unsupported(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> str | None:
        """Why the fast engine cannot compute this model the way pyhf would (None when it can).

        Every :class:`Settings` is implemented (q and q~mu, normsys code1/code4, histosys
        code0/code2/code4p, any POI bounds that contain 0, a chosen measurement). Invalid inputs
        are not "unsupported": :meth:`background` rejects them with an error.
        """
        if settings is not None and settings.measurement is not None:
            measurement = settings.measurement
        try:
            m = _measurement(spec, measurement)
        except InferenceInputError:
            return None
        poi = m["config"].get("poi")
        if not isinstance(poi, str) or not poi:
            return "the measurement names no parameter of interest"
        return _poi_above_zero(poi, _poi_bounds(m, settings)) or _poi_not_normfactor(poi, _modifier_types(spec, poi))

    def background(self, spec: Mapping[str, Any], *, measurement: str | None = None, settings: Settings | None = None) -> FastBackground:
        """The background-only model; ``settings`` (None: the constructor's interpolation codes and
        otherwise the defaults) fix the test statistic, interpolation codes, POI bounds and
        measurement (``measurement`` is the older spelling of ``settings.measurement``)."""
        if settings is None:
            settings = Settings(normsys=self.normsys, histosys=self.histosys, measurement=measurement)
        elif settings.measurement is None and measurement is not None:
            settings = dataclasses.replace(settings, measurement=measurement)
        return FastBackground(spec, settings=settings)


class FastBackground:
    """A background-only workspace compiled once; :meth:`model` adds a signal point cheaply."""

    backend = "fast"

    def __init__(self, spec: Mapping[str, Any], *, settings: Settings | None = None) -> None:
        self.spec = spec
        self.settings_ = settings or Settings()
        self.measurement_name = self.settings_.measurement
        self.normsys = self.settings_.normsys
        self.histosys = self.settings_.histosys
        # (id(sample dict), channel, nbins) -> (sample dict, block); holding the dict keeps its id its own
        self._cache: dict[tuple[int, str, int], tuple[Any, structure.SampleBlock]] = {}
        layout, _, blocks, _ = self._parse(spec, fill_cache=True)
        self._layout = layout
        self._group = structure.Group.build(blocks)
        self._group_ids = {id(b) for b in blocks}

    def _parse(
        self, spec: Mapping[str, Any], *, fill_cache: bool
    ) -> tuple[list[tuple[str, int]], dict[str, Arr], list[structure.SampleBlock], Mapping[str, Any]]:
        """The channels' names and bin counts, their observations, the compiled samples and the measurement."""
        channels = spec.get("channels")
        if not isinstance(channels, list) or not channels:
            raise InferenceInputError("the workspace has no channels")
        observations = _observations(spec)
        layout: list[tuple[str, int]] = []
        blocks: list[structure.SampleBlock] = []
        seen: set[str] = set()
        for i, ch in enumerate(channels):
            cname = _channel_name(i, ch, seen, observations)
            seen.add(cname)
            layout.append((cname, int(observations[cname].size)))
            blocks += self._channel_blocks(i, ch, layout[-1][1], fill_cache)
        return layout, {n: observations[n] for n, _ in layout}, blocks, _measurement(spec, self.measurement_name)

    def _channel_blocks(self, i: int, ch: Mapping[str, Any], nbins: int, fill_cache: bool) -> list[structure.SampleBlock]:
        """The compiled samples of channel ``i``."""
        samples = ch.get("samples")
        if not isinstance(samples, list) or not samples:
            raise InferenceInputError(f"channels[{i}] ({ch['name']!r}): no samples")
        blocks: list[structure.SampleBlock] = []
        for j, s in enumerate(samples):
            if not isinstance(s, Mapping):
                raise InferenceInputError(f"channels[{i}].samples[{j}]: not an object")
            blocks.append(self._sample_block(s, ch["name"], nbins, (i, j), fill_cache))
        return blocks

    def _sample_block(self, s: Mapping[str, Any], cname: str, nbins: int, at: tuple[int, int], fill_cache: bool) -> structure.SampleBlock:
        """Sample ``s`` (channels[i].samples[j] for ``at`` = (i, j)) compiled, from the cache where
        this JSON object was compiled for this channel (``fill_cache``: add it to the cache)."""
        key = (id(s), cname, nbins)
        hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        block = structure.compile_sample(cname, s, nbins, "channels[{}].samples[{}]".format(*at))
        if fill_cache:
            self._cache[key] = (s, block)
        return block

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> FastModel:
        """The model with the RFC 6902 ``patches`` applied in order."""
        if signal is not None:
            raise InferenceInputError(f"the fast backend takes RFC 6902 patches, not a named signal ({signal!r}): use a simplified-likelihood backend")
        layout, obs, blocks, meas = self._parse(apply_patches(self.spec, patches), fill_cache=False)
        st = structure.assemble(layout, obs, self._groups(layout, blocks), meas)
        # no state from the previous point (a warm start from its fits made a point's values depend on
        # which points a claim's worker computed before it: claims and identities differed run to run)
        return FastModel(st, settings=self.settings_, poi_name=meas["config"].get("poi"))

    def _groups(self, layout: list[tuple[str, int]], blocks: list[structure.SampleBlock]) -> list[structure.Group]:
        """The background's compiled group and a group of the samples a patch added; one group
        rebuilt where the patch removed or replaced background samples or changed channels."""
        new = [b for b in blocks if id(b) not in self._group_ids]
        if layout != self._layout or len(blocks) - len(new) != len(self._group.blocks):
            return [structure.Group.build(blocks)]
        return [self._group, structure.Group.build(new)] if new else [self._group]


def _channel_name(i: int, ch: Any, seen: set[str], observations: Mapping[str, Arr]) -> str:
    """The name of channel ``i``, checked: given, not one of the channels before it (``seen``), observed."""
    if not isinstance(ch, Mapping) or not isinstance(ch.get("name"), str):
        raise InferenceInputError(f"channels[{i}]: needs a 'name'")
    cname: str = ch["name"]
    if cname in seen:
        raise InferenceInputError(f"channels[{i}]: duplicate channel name {cname!r}")
    if cname not in observations:
        raise InferenceInputError(f"channels[{i}] ({cname!r}): no observation with this name")
    return cname


@dataclasses.dataclass(frozen=True, eq=False)
class _Box:
    """Where a fit runs: the parameters' bounds, and which of them are free."""

    lower: Arr
    upper: Arr
    free: Arr

    def holding(self, idx: Any, value: float) -> _Box:
        """This box with the parameters ``idx`` held at ``value``."""
        lower, upper, free = self.lower.copy(), self.upper.copy(), self.free.copy()
        lower[idx] = upper[idx] = value
        free[idx] = False
        return _Box(lower, upper, free)

    def at_bounds(self, x: Arr) -> tuple[Arr, Arr]:
        """The free parameters at their lower and at their upper bound in ``x`` (within 1e-9 of
        their range, or of 1 for a wider range)."""
        span = np.minimum(self.upper - self.lower, 1.0)
        return self.free & (x - self.lower <= 1e-9 * span), self.free & (self.upper - x <= 1e-9 * span)

    def released(self, x: Arr, at_lo: Arr, at_hi: Arr) -> Arr:
        """``x`` with the parameters ``at_lo`` and ``at_hi`` moved off their bounds into the box
        (by 5% of their range, or 0.05 for a wider range)."""
        span = np.minimum(self.upper - self.lower, 1.0)
        x = x.copy()
        x[at_lo] += 0.05 * span[at_lo]
        x[at_hi] -= 0.05 * span[at_hi]
        return x


def _kinked_parameters(st: structure.Structure, normsys: str, histosys: str) -> Arr:
    """The parameters whose interpolation has a kink at 0 (code1 normsys, code0 histosys)."""
    kinked = [st.n_par] if normsys == "code1" else []
    kinked += [st.h_par] if histosys == "code0" else []
    return np.unique(np.concatenate(kinked)) if kinked else np.zeros(0, dtype=np.int64)


def _settings_record(settings: Settings) -> dict[str, Any]:
    """The settings a result records: the hypothesis test's, the engine and its minimiser's."""
    return {
        **HISTFACTORY_SETTINGS,
        **settings.to_json(),
        "engine": ENGINE,
        **optimize.SETTINGS,
        "convergence": "projected gradient: Newton step < xtol sigma and predicted decrease < ftol on every free parameter",
        "asimov": "main and auxiliary data at the fit with the POI fixed at 0 (pyhf generate_asimov_data)",
        "free_fit_to_asimov": "the saturated point (exact minimum) rather than a numerical fit",
    }


def _zero_in_subdifferential(lik: Likelihood, held: optimize.Minimum, j: int) -> bool:
    """Whether 0 lies between the one-sided derivatives of -ln L in parameter ``j`` at the fit
    ``held`` (which holds it at 0): then 0 is in that parameter's subdifferential."""
    eps = 1e-7
    xp, xm = held.x.copy(), held.x.copy()
    xp[j], xm[j] = eps, -eps
    right = (lik.nll(xp) - held.fun) / eps  # one-sided derivatives
    left = (held.fun - lik.nll(xm)) / eps
    tol = 1e-6 * max(1.0, abs(right), abs(left))
    return right >= -tol and left <= tol


def _converged_fits(done: list[tuple[Arr, optimize.Minimum | FitError]]) -> list[optimize.Minimum]:
    """The fits from the starts ``done`` that converged; the first start's FitError when none did."""
    found = [r for _, r in done if isinstance(r, optimize.Minimum)]
    if not found:
        err = done[0][1]
        assert isinstance(err, FitError)
        raise err
    return found


def _labelled(obs_name: str, exp_name: str, observed: float, expected: Sequence[float]) -> dict[str, float]:
    """A result's values by their JSON names: ``{obs_name: observed, "exp_name[0]": expected[0], ...}``."""
    return {obs_name: observed, **{f"{exp_name}[{i}]": e for i, e in enumerate(expected)}}


class FastModel:
    """One signal point compiled for the fast engine."""

    backend = "fast"
    #: fit from pyhf's nominal start as well as the warm start (False only to measure their cost)
    second_starts = True
    #: on a model whose Hessian is sparse (many parameters, few bins), where the exact Hessian is
    #: not positive definite: True steps with the expected Hessian (Fisher scoring), False (the
    #: default) with the Levenberg-Marquardt damped exact Hessian. Fisher scoring needs fewer
    #: iterations (5 against 21-26 from the nominal start on ``many_normsys_model``: 1.2 against
    #: 1.9 s CPU per CLs) but ignores negative curvature: on ``many_histosys_model`` held sparse,
    #: both starts of the fit at mu = 1 went to a minimum 4.4e-4 above the one the damped and the
    #: dense saddle-free steps reach from the nominal start. On ATLAS 1Lbb (dense), Fisher scoring
    #: from the nominal start also lost pyhf's local minimum of C1N2_Wh_hbb_375_50. Dense models
    #: always take the saddle-free step
    fisher_scoring = False

    def __init__(
        self,
        st: structure.Structure,
        *,
        settings: Settings | None = None,
        poi_name: Any = None,
    ) -> None:
        settings = settings or Settings()
        self.test_stat = settings.test_stat
        self.st = st
        if st.poi >= 0 and settings.poi_bounds is not None:  # the Structure is this model's own
            st.lower[st.poi], st.upper[st.poi] = settings.poi_bounds
        self.lik = Likelihood(st, normsys=settings.normsys, histosys=settings.histosys)
        self._kinked = _kinked_parameters(st, settings.normsys, settings.histosys)
        self.poi_name = poi_name
        self.settings: dict[str, Any] = _settings_record(settings)
        self._cache: dict[str, Any] = {}
        self._fits: list[optimize.Minimum] = []
        # -ln L from each start by fit, the fits whose starts found different minima, notes
        self._starts: dict[str, dict[str, Any]] = {}
        self._multimodal: set[str] = set()
        self._notes: set[str] = set()
        if st.poi >= 0:
            self._record_poi_bounds()
        self._fixed_notes = frozenset(self._notes)

    def _record_poi_bounds(self) -> None:
        """The POI bounds in the settings, and a note where q~mu meets a lower bound other than 0."""
        lo, hi = float(self.st.lower[self.st.poi]), float(self.st.upper[self.st.poi])
        self.settings["poi_bounds"] = [lo, hi]
        self.settings["poi_lower_bound"] = lo
        if lo != 0 and self.test_stat == "qtilde":
            self._notes.add(
                f"q~mu with the POI lower bound {lo:g} (not 0): computed as pyhf 0.7.6 does (fits within the given bounds, "
                "so mu-hat may be negative, then the q~mu asymptotic formula); this is not Cowan et al.'s q~mu"
            )

    # ------------------------------------------------------------------ fits
    def _require_poi(self) -> int:
        if self.st.poi < 0:
            raise InferenceInputError(
                f"the model has no parameter of interest: the measurement's 'poi' ({self.poi_name!r}) names no modifier (did you forget a patch?)"
            )
        lo, hi = self.st.lower[self.st.poi], self.st.upper[self.st.poi]
        if not lo <= 0 <= hi:
            raise InferenceInputError(
                f"the POI bounds [{lo:g}, {hi:g}] do not contain 0: the Asimov data need the fit at mu = 0 (set poi_bounds=LO,HI with LO <= 0 <= HI)",
                option="poi_bounds",
            )
        return self.st.poi

    def _fit(self, lik: Likelihood, x0: Arr, fix_poi: float | None, what: str) -> optimize.Minimum:
        """One fit from ``x0`` (the POI held at ``fix_poi`` unless None), checked for convergence
        and, where free parameters end at a bound, for a lower minimum or a saddle there."""
        scoring = self.fisher_scoring and lik.sparse
        x, box = self._problem(x0, fix_poi)
        res = self._converged_fit(lik, x, box, scoring, what)
        at_lo, at_hi = self._at_bounds_but_free_poi(res.x, box, fix_poi)
        if at_lo.any() or at_hi.any():
            res = self._restarted(lik, res, box, box.released(res.x, at_lo, at_hi), fix_poi, scoring)
            self._check_no_flat_valley(res, box, fix_poi, what)
        self._fits.append(res)
        return res

    def _problem(self, x0: Arr, fix_poi: float | None) -> tuple[Arr, _Box]:
        """The start (fixed parameters at their initial values) and the box of a fit from ``x0``."""
        st = self.st
        x = np.asarray(x0, dtype=float).copy()
        x[st.fixed] = st.inits[st.fixed]
        box = _Box(st.lower.copy(), st.upper.copy(), ~st.fixed)
        if fix_poi is None:
            return x, box
        x[st.poi] = fix_poi
        return x, box.holding(st.poi, fix_poi)

    def _converged_fit(self, lik: Likelihood, x: Arr, box: _Box, scoring: bool, what: str) -> optimize.Minimum:
        """The fit from ``x`` (retried at the interpolation kinks where it stalled); FitError if it did not converge."""
        res = self._minimize(lik, x, box, scoring)
        if not res.converged and self._kinked.size:
            res = self._fit_at_kinks(lik, res, box, scoring)
        if not res.converged:
            raise FitError(f"fast backend: the {what} did not converge ({res.message}); use the pyhf backend for this point")
        return res

    def _at_bounds_but_free_poi(self, x: Arr, box: _Box, fix_poi: float | None) -> tuple[Arr, Arr]:
        """The free parameters at their lower and upper bounds, a free POI left out (the POI at 0 is
        the usual case, not a saddle)."""
        at_lo, at_hi = box.at_bounds(x)
        if fix_poi is None:
            at_lo[self.st.poi] = at_hi[self.st.poi] = False
        return at_lo, at_hi

    def _restarted(self, lik: Likelihood, res: optimize.Minimum, box: _Box, released: Arr, fix_poi: float | None, scoring: bool) -> optimize.Minimum:
        """The lowest of ``res`` and the fits from the model's initial values (where pyhf starts)
        and from ``released`` (``res`` with its parameters at a bound released into the box).

        A point where free parameters sit at a bound satisfies the first-order (KKT) conditions
        but can be a saddle: e.g. a normfactor at 0 multiplying shapefactors leaves them flat,
        while raising it and lowering one of them lowers -ln L."""
        for x1 in (self._nominal(fix_poi), released):
            again = self._minimize(lik, x1, box, scoring)
            if again.converged and again.fun < res.fun - 1e-9 * max(1.0, abs(res.fun)):
                again.message += " (restarted: the first minimum had parameters at a bound)"
                res = again
        return res

    def _check_no_flat_valley(self, res: optimize.Minimum, box: _Box, fix_poi: float | None, what: str) -> None:
        """FitError where ``res`` still has parameters at a bound and free parameters the likelihood
        does not depend on there (zero curvature): a flat valley that may lead to a lower minimum."""
        assert res.hess is not None
        at_lo, at_hi = box.at_bounds(res.x)
        held = at_lo | at_hi
        diag = np.abs(optimize.diagonal(res.hess))
        flat = box.free & ~held & (diag <= 1e-12 * max(float(diag.max()), 1e-300))
        if fix_poi is None:
            held[self.st.poi] = False
        if flat.any() and held.any():
            raise FitError(
                f"fast backend: the {what} ends with {self._first_names(held)} at a bound and {self._first_names(flat)} undetermined (no curvature): "
                "the minimum may be a saddle of a degenerate model; use the pyhf backend for this point"
            )

    def _first_names(self, mask: Arr) -> str:
        """The names of the first three parameters in ``mask``."""
        return ", ".join(self.st.par_names[k] for k in np.flatnonzero(mask)[:3])

    def _minimize(self, lik: Likelihood, x0: Arr, box: _Box, scoring: bool) -> optimize.Minimum:
        fisher = lik.fisher if scoring else None
        return optimize.minimize_with_fallback(lik.evaluate, lik.nll, x0, box.lower, box.upper, box.free, fisher)

    def _fit_at_kinks(self, lik: Likelihood, res: optimize.Minimum, box: _Box, scoring: bool) -> optimize.Minimum:
        """A fit that stalled where code0/code1 interpolation has a kink (alpha = 0, where the
        derivative jumps): hold the parameters near 0 at exactly 0, minimise the others, and
        accept when 0 is in each held parameter's subdifferential (the one-sided derivatives
        have opposite signs), which makes the point a minimum of the non-smooth -ln L."""
        k = self._kinked[box.free[self._kinked] & (np.abs(res.x[self._kinked]) < 1e-3)]
        if not k.size:
            return res
        x = res.x.copy()
        x[k] = 0.0
        held = self._minimize(lik, x, box.holding(k, 0.0), scoring)
        if not held.converged or not all(_zero_in_subdifferential(lik, held, j) for j in k):
            return res
        held.message += f" (held {k.size} parameter(s) at the interpolation kink alpha = 0: a non-smooth minimum)"
        return held

    def _lowest(self, lik: Likelihood, starts: Mapping[str, Arr | optimize.Minimum], fix_poi: float | None, what: str) -> optimize.Minimum:
        """The fit from each of ``starts`` (label -> parameter values, or the converged fit of this
        same problem from that start, which is not run again; identical starts run once),
        the lowest minimum taken; -ln L from each start recorded under ``what`` in ``self._starts``,
        and ``what`` in ``self._multimodal`` when the minima differ by more than
        :data:`MULTIMODAL_NLL`. A start whose fit does not converge is recorded as such (and said
        in the result's notes) when another converged; when none did, its FitError is raised."""
        if not self.second_starts:  # measuring what the second starts cost (benchmarks/bench_fast.py)
            starts = {"warm": starts["warm"]}
        done: list[tuple[Arr, optimize.Minimum | FitError]] = []
        record: dict[str, Any] = {}
        for label, start in starts.items():
            outcome = self._from_start(lik, start, done, fix_poi, what)
            record[label] = outcome.fun if isinstance(outcome, optimize.Minimum) else "did not converge"
        found = _converged_fits(done)
        best = min(found, key=lambda r: r.fun)
        self._starts[what] = record
        if max(r.fun for r in found) - best.fun > MULTIMODAL_NLL:
            self._multimodal.add(what)
        if len(found) < len(done):
            self._notes.add(f"the {what} from one start did not converge; the lowest minimum of the other starts was taken")
        return best

    def _from_start(
        self, lik: Likelihood, start: Arr | optimize.Minimum, done: list[tuple[Arr, optimize.Minimum | FitError]], fix_poi: float | None, what: str
    ) -> optimize.Minimum | FitError:
        """The fit (or its FitError) from ``start``, added to ``done``; a converged fit is taken as
        it is, and a start already in ``done`` is not run again."""
        if isinstance(start, optimize.Minimum):
            done.append((start.x, start))
            return start
        x0 = np.asarray(start, dtype=float)
        same = next((r for x, r in done if np.array_equal(x, x0)), None)
        if same is None:
            same = self._attempt(lik, x0, fix_poi, what)
            done.append((x0, same))
        return same

    def _attempt(self, lik: Likelihood, x0: Arr, fix_poi: float | None, what: str) -> optimize.Minimum | FitError:
        try:
            return self._fit(lik, x0, fix_poi, what)
        except FitError as exc:
            return exc

    def _nominal(self, poi_value: float | None) -> Arr:
        """pyhf's starting point (the parameters' initial values), the POI at ``poi_value``."""
        x = self.st.inits.copy()
        if poi_value is not None:
            x[self.st.poi] = poi_value
        return x

    def _data_fits(self) -> tuple[optimize.Minimum, optimize.Minimum, Likelihood]:
        """The fits that do not depend on mu (the free fit, the fit with the POI fixed at 0) and
        the likelihood of the Asimov data, computed once."""
        if "asimov" not in self._cache:
            self._fit_data()
        return self._cache["free"], self._cache["bkg"], self._cache["asimov"]

    def _fit_data(self) -> None:
        """The free fit and the fit with the POI fixed at 0 (which makes the Asimov data), each
        from pyhf's nominal start and a warm start, into the cache."""
        poi = self._require_poi()
        st = self.st
        free_nominal = self._free_fit_from_nominal()
        warm = self._warm_start(free_nominal)
        warm[poi] = 0.0
        bkg = self._lowest(self.lik, {"nominal": self._nominal(0.0), "warm": warm}, 0.0, BKG_OBS)
        # the free fit from the nominal start is done (it made the first warm start)
        free = self._lowest(self.lik, {"nominal": free_nominal if free_nominal is not None else st.inits, "warm": bkg.x}, None, FREE_OBS)
        self._cache["free"] = free
        self._cache["bkg"] = bkg
        self._cache["asimov"] = self._asimov(bkg.x)

    def _free_fit_from_nominal(self) -> optimize.Minimum | None:
        """The free fit to the observed data from pyhf's nominal start (None without second starts)."""
        if not self.second_starts:
            return None
        found: optimize.Minimum | None = self._cache.get("free_nominal")
        return found or self._fit(self.lik, self.st.inits, None, FREE_OBS)

    def _warm_start(self, free_nominal: optimize.Minimum | None) -> Arr:
        """The free fit's values (the initial values without second starts): this point's own,
        never another point's, so a point's values do not depend on the points before it."""
        return free_nominal.x.copy() if free_nominal is not None else self.st.inits.copy()

    def _asimov(self, x: Arr) -> Likelihood:
        """The likelihood of the Asimov data at ``x``: the expected main and auxiliary data."""
        asimov = copy.copy(self.lik)
        g_aux, p_aux = self.lik.expected_aux(x)
        asimov.set_data(self.lik.expected_main(x), g_aux, p_aux)
        return asimov

    def _qmu(self, mu: float) -> tuple[float, float]:
        poi = self._require_poi()
        free, bkg, asimov = self._data_fits()
        warm = free.x.copy()
        warm[poi] = mu
        cond = self._lowest(self.lik, {"nominal": self._nominal(mu), "warm": warm}, mu, f"fit with the POI fixed at {mu} to the observed data")
        q = max(2.0 * (cond.fun - free.fun), 0.0)
        if free.x[poi] > mu:
            q = 0.0
        condA = self._lowest(asimov, {"nominal": self._nominal(mu), "warm": cond.x}, mu, f"fit with the POI fixed at {mu} to the Asimov data")
        f_freeA = asimov.nll(bkg.x)
        self._starts[FREE_ASIMOV] = {"saturated": f_freeA}
        qA = max(2.0 * (condA.fun - f_freeA), 0.0)
        if bkg.x[poi] > mu:
            qA = 0.0
        return q, qA

    def cls(self, mu: float = 1.0) -> CLsResult:
        """CLs observed and expected at ``mu`` (pyhf's hypotest with q~mu asymptotics)."""
        mu = float(mu)
        with single_thread():
            self._starts.clear()
            self._multimodal.clear()
            self._notes.clear()
            self._notes |= self._fixed_notes
            q, qA = self._qmu(mu)
            self._starts_of_cached_fits()
        obs, exp = _asymptotic_cls(q, qA, mu, self.test_stat)
        underflow = self._note_underflow(obs, exp, q, qA, mu)
        settings = {**self.settings, "fits_converged": True, "qmu": float(q), "qmu_A": float(qA)}
        return CLsResult(
            observed=obs,
            expected=(exp[0], exp[1], exp[2], exp[3], exp[4]),
            mu=mu,
            backend="fast",
            settings=settings,
            multimodal=bool(self._multimodal),
            starts={k: dict(v) for k, v in self._starts.items()},
            underflow=underflow,
            notes=tuple(sorted(self._notes)),
        )

    def _note_underflow(self, obs: float, exp: list[float], q: float, qA: float, mu: float) -> tuple[str, ...]:
        """The CLs values below double precision (by name), said in a note."""
        values = _labelled("CLs_obs", "CLs_exp", obs, exp)
        underflow = tuple(name for name, v in values.items() if v < 1e-300)
        if underflow:
            self._notes.add(
                f"{', '.join(underflow)} below double precision (reported as {', '.join(f'{values[name]:.3g}' for name in underflow)}): "
                f"q_mu = {q:.6g}, q_mu,A = {qA:.6g} (sqrt {np.sqrt(qA):.4g}): the Asimov data exclude mu = {mu:g} by that many sigma"
            )
        return underflow

    def _starts_of_cached_fits(self) -> None:
        """Carry the starts of the cached (mu-independent) fits into every result."""
        if "starts" not in self._cache:
            self._cache_record_of_data_fits()
        self._starts.update(self._cache["starts"])
        self._multimodal |= self._cache["multimodal"]
        self._notes |= self._cache["notes"]

    def _cache_record_of_data_fits(self) -> None:
        """The starts, multimodal marks and notes of the mu-independent fits, as recorded so far."""
        self._cache["starts"] = {k: v for k, v in self._starts.items() if k in (FREE_OBS, BKG_OBS)}
        self._cache["multimodal"] = self._multimodal & {FREE_OBS, BKG_OBS}
        self._cache["notes"] = {n for n in self._notes if FREE_OBS in n or BKG_OBS in n}

    def upper_limit(self, *, level: float = 0.05, cap: float = DEFAULT_CAP) -> UpperLimit:
        """Observed and expected upper limits by root finding on CLs(mu) = ``level``."""
        poi = self._require_poi()
        with single_thread():
            ul = _upper_limit(self.cls, level=level, upper_bound=float(self.st.upper[poi]), cap=cap, backend="fast", settings=self.settings)
        bad = _not_numbers(ul)
        if bad:
            raise DegenerateResult(f"fast backend: the upper limit {', '.join(bad)} is not a number (CLs(mu) never crossed {level:g} in a computable way)")
        return ul

    def fit_background(self) -> FitResult:
        """The background-only fit to the observed data: the POI fixed at 0 (a model whose
        POI names no modifier, such as a background-only workspace, is fitted as it is),
        with the post-fit covariance of the other free parameters (the inverse Hessian;
        zero rows and columns for the POI and fixed parameters)."""
        st = self.st
        with single_thread():
            if st.poi < 0:
                res = self._fit(self.lik, st.inits, None, "background-only fit to the observed data")
                return self._fit_result(res, st.fixed, "background-only best fit")
            self._require_poi()
            fixed = st.fixed.copy()
            fixed[st.poi] = True
            res = self._fit(self.lik, self._nominal(0.0), 0.0, BKG_OBS)
            return self._fit_result(res, fixed, "background-only best fit")

    def fit(self) -> FitResult:
        """The free fit to the observed data with the post-fit covariance (inverse Hessian)."""
        st = self.st
        with single_thread():
            res = self._cache.get("free") or self._cache.get("free_nominal") or self._fit(self.lik, st.inits, None, FREE_OBS)
            self._cache.setdefault("free_nominal", res)
            return self._fit_result(res, st.fixed, "best fit")

    def _fit_result(self, res: optimize.Minimum, fixed: Arr, what: str) -> FitResult:
        """``res`` with the post-fit covariance (inverse Hessian over the parameters not ``fixed``)."""
        st = self.st
        free = np.flatnonzero(~fixed)
        cov = np.zeros((st.npars, st.npars))
        _, _, H = self.lik.evaluate(res.x)
        assert H is not None
        H = H.toarray() if optimize.is_sparse(H) else H
        try:
            cov[np.ix_(free, free)] = np.linalg.inv(H[np.ix_(free, free)])
        except np.linalg.LinAlgError:
            raise FitError(f"fast backend: the Hessian at the {what} is singular; no covariance") from None
        return FitResult(parameters=st.par_names, bestfit=res.x.copy(), covariance=cov, twice_nll=2.0 * res.fun, converged=res.converged, message=res.message)


def _not_numbers(ul: UpperLimit) -> list[str]:
    """The limits (by JSON name) that are NaN, then those infinite without being above the cap."""
    values = _labelled("mu_up_obs", "mu_up_exp", ul.observed, ul.expected)
    bad = [name for name, v in values.items() if np.isnan(v)]
    return bad + [name for name, v in values.items() if np.isinf(v) and name not in ul.above_cap]
