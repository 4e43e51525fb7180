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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import log_ndtr

from heparch.errors import DegenerateResult, FitError, InferenceInputError
from heparch.infer.base import HISTFACTORY_SETTINGS, CLsResult, FitResult, Settings, UpperLimit
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
    ms = spec.get("measurements")
    if not isinstance(ms, list) or not ms:
        raise InferenceInputError("the workspace has no measurements")
    if name is None:
        m = ms[0]
    else:
        found = [m for m in ms if isinstance(m, Mapping) and m.get("name") == name]
        if not found:
            raise InferenceInputError(f"measurement {name!r} not found (the workspace has {', '.join(repr(m.get('name')) for m in ms)})")
        m = found[0]
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
    kinds: set[str] = set()
    for ch in spec.get("channels", []) or []:
        for s in ch.get("samples", []) if isinstance(ch, Mapping) else []:
            for mod in s.get("modifiers", []) if isinstance(s, Mapping) else []:
                if isinstance(mod, Mapping) and str(mod.get("name")) == name:
                    kinds.add(str(mod.get("type")))
    return kinds


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
    if not (np.isfinite(q) and np.isfinite(qA)):
        raise DegenerateResult(f"fast backend at mu = {mu:g}: the test statistic is not finite (q_mu = {q}, q_mu,A = {qA})")
    if qA <= 0.0:
        raise DegenerateResult(
            f"fast backend at mu = {mu:g}: q_mu,A = 0, the Asimov data do not distinguish mu = {mu:g} from 0 (pyhf divides by sqrt(q_mu,A) here); no CLs"
        )
    sq, sqA = float(np.sqrt(q)), float(np.sqrt(qA))
    t = sq - sqA if test_stat == "q" or sq <= sqA else (q - qA) / (2.0 * sqA)
    obs = float(np.exp(log_ndtr(-(t + sqA)) - log_ndtr(-t)))
    exp = [float(np.exp(log_ndtr(-(n + sqA)) - log_ndtr(-n))) for n in (2.0, 1.0, 0.0, -1.0, -2.0)]
    values = [obs, *exp]
    if not all(np.isfinite(v) for v in values):
        raise DegenerateResult(f"fast backend at mu = {mu:g}: CLs is not finite ({values}; q_mu = {q:.6g}, q_mu,A = {qA:.6g})")
    return obs, exp


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
        bounds = _poi_bounds(m, settings)
        if bounds is not None and isinstance(bounds[0], int | float) and bounds[0] > 0:
            return f"the POI {poi!r} has lower bound {bounds[0]} > 0; the Asimov data need the fit at mu = 0 inside the bounds"
        kinds = _modifier_types(spec, poi)
        if kinds and kinds != {"normfactor"}:
            return f"the POI {poi!r} is a {'/'.join(sorted(kinds))} parameter; the fast engine supports a normfactor POI"
        return None

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
        # id(sample dict) -> (sample dict, channel, nbins, block); the dicts are kept alive
        self._cache: dict[int, tuple[Any, str, int, structure.SampleBlock]] = {}
        layout, _, blocks, _ = self._parse(spec, fill_cache=True)
        self._layout = layout
        self._group = structure.Group.build(blocks)
        self._group_ids = {id(b) for b in blocks}
        # best-fit values (by parameter name) of the last fit with the POI fixed at 0:
        # the starting point of the next signal point's fits
        self._warm: dict[str, float] = {}

    def _parse(
        self, spec: Mapping[str, Any], *, fill_cache: bool
    ) -> tuple[list[tuple[str, int]], dict[str, Arr], list[structure.SampleBlock], Mapping[str, Any]]:
        channels = spec.get("channels")
        if not isinstance(channels, list) or not channels:
            raise InferenceInputError("the workspace has no channels")
        observations = _observations(spec)
        layout: list[tuple[str, int]] = []
        blocks: list[structure.SampleBlock] = []
        seen: set[str] = set()
        for i, ch in enumerate(channels):
            if not isinstance(ch, Mapping) or not isinstance(ch.get("name"), str):
                raise InferenceInputError(f"channels[{i}]: needs a 'name'")
            cname = ch["name"]
            if cname in seen:
                raise InferenceInputError(f"channels[{i}]: duplicate channel name {cname!r}")
            seen.add(cname)
            if cname not in observations:
                raise InferenceInputError(f"channels[{i}] ({cname!r}): no observation with this name")
            layout.append((cname, int(observations[cname].size)))
            blocks += self._channel_blocks(i, ch, layout[-1][1], fill_cache)
        return layout, {n: observations[n] for n, _ in layout}, blocks, _measurement(spec, self.measurement_name)

    def _channel_blocks(self, i: int, ch: Mapping[str, Any], nbins: int, fill_cache: bool) -> list[structure.SampleBlock]:
        """The compiled samples of channel ``i``, from the cache where the sample's JSON object is
        one already compiled (``fill_cache``: add the others to it)."""
        cname = ch["name"]
        samples = ch.get("samples")
        if not isinstance(samples, list) or not samples:
            raise InferenceInputError(f"channels[{i}] ({cname!r}): no samples")
        blocks: list[structure.SampleBlock] = []
        for j, s in enumerate(samples):
            if not isinstance(s, Mapping):
                raise InferenceInputError(f"channels[{i}].samples[{j}]: not an object")
            hit = self._cache.get(id(s))
            if hit is not None and hit[0] is s and hit[1] == cname and hit[2] == nbins:
                blocks.append(hit[3])
                continue
            block = structure.compile_sample(cname, s, nbins, f"channels[{i}].samples[{j}]")
            if fill_cache:
                self._cache[id(s)] = (s, cname, nbins, block)
            blocks.append(block)
        return blocks

    def model(self, patches: Sequence[Sequence[Mapping[str, Any]]] = (), *, signal: str | None = None) -> FastModel:
        """The model with the RFC 6902 ``patches`` applied in order."""
        if signal is not None:
            raise InferenceInputError(f"the fast backend takes RFC 6902 patches, not a named signal ({signal!r}): use a simplified-likelihood backend")
        doc: Any = self.spec
        if patches:
            from heparch.components.patchset import PatchFailure, apply_patch

            for k, ops in enumerate(patches):
                try:
                    doc, _ = apply_patch(doc, list(ops))
                except PatchFailure as exc:
                    raise InferenceInputError(f"patch {k + 1}: operation {exc.index} does not apply to the workspace: {exc.reason}") from None
        layout, obs, blocks, meas = self._parse(doc, fill_cache=False)
        new = [b for b in blocks if id(b) not in self._group_ids]
        if layout == self._layout and len(blocks) - len(new) == len(self._group.blocks):
            groups = [self._group, structure.Group.build(new)] if new else [self._group]
        else:  # the patch removed or replaced background samples or changed channels: rebuild
            groups = [structure.Group.build(blocks)]
        st = structure.assemble(layout, obs, groups, meas)
        return FastModel(st, settings=self.settings_, poi_name=meas["config"].get("poi"), warm=self._warm)


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
        warm: dict[str, float] | None = None,
    ) -> None:
        settings = settings or Settings()
        normsys, histosys = settings.normsys, settings.histosys
        self.test_stat = settings.test_stat
        self.st = st
        if st.poi >= 0 and settings.poi_bounds is not None:  # the Structure is this model's own
            st.lower[st.poi], st.upper[st.poi] = settings.poi_bounds
        self._warm = warm if warm is not None else {}
        self.lik = Likelihood(st, normsys=normsys, histosys=histosys)
        # parameters whose interpolation has a kink at 0 (code1 normsys, code0 histosys)
        kinked = [st.n_par] if normsys == "code1" else []
        kinked += [st.h_par] if histosys == "code0" else []
        self._kinked = np.unique(np.concatenate(kinked)) if kinked else np.zeros(0, dtype=np.int64)
        self.poi_name = poi_name
        self.settings: dict[str, Any] = {
            **HISTFACTORY_SETTINGS,
            **settings.to_json(),
            "engine": ENGINE,
            **{k: v for k, v in optimize.SETTINGS.items()},
            "convergence": "projected gradient: Newton step < xtol sigma and predicted decrease < ftol on every free parameter",
            "asimov": "main and auxiliary data at the fit with the POI fixed at 0 (pyhf generate_asimov_data)",
            "free_fit_to_asimov": "the saturated point (exact minimum) rather than a numerical fit",
        }
        self._cache: dict[str, Any] = {}
        self._fits: list[optimize.Minimum] = []
        # -ln L from each start by fit, the fits whose starts found different minima, notes
        self._starts: dict[str, dict[str, Any]] = {}
        self._multimodal: set[str] = set()
        self._notes: set[str] = set()
        if st.poi >= 0:
            lo, hi = float(st.lower[st.poi]), float(st.upper[st.poi])
            self.settings["poi_bounds"] = [lo, hi]
            self.settings["poi_lower_bound"] = lo
            if lo != 0 and self.test_stat == "qtilde":
                self._notes.add(
                    f"q~mu with the POI lower bound {lo:g} (not 0): computed as pyhf 0.7.6 does (fits within the given bounds, "
                    "so mu-hat may be negative, then the q~mu asymptotic formula); this is not Cowan et al.'s q~mu"
                )
        self._fixed_notes = frozenset(self._notes)

    # ------------------------------------------------------------------ fits
    def _require_poi(self) -> int:
        if self.st.poi < 0:
            raise InferenceInputError(
                f"the model has no parameter of interest: the measurement's 'poi' ({self.poi_name!r}) names no modifier (did you forget a patch?)"
            )
        lo, hi = self.st.lower[self.st.poi], self.st.upper[self.st.poi]
        if not lo <= 0 <= hi:
            raise InferenceInputError(f"the POI bounds [{lo:g}, {hi:g}] do not contain 0: the Asimov data need the fit at mu = 0 (set --poi-bounds)")
        return self.st.poi

    def _fit(self, lik: Likelihood, x0: Arr, fix_poi: float | None, what: str) -> optimize.Minimum:
        """One fit from ``x0``."""
        scoring = self.fisher_scoring and lik.sparse
        st = self.st
        free = ~st.fixed
        x = np.asarray(x0, dtype=float).copy()
        x[st.fixed] = st.inits[st.fixed]
        lower, upper = st.lower.copy(), st.upper.copy()
        if fix_poi is not None:
            free = free.copy()
            free[st.poi] = False
            x[st.poi] = fix_poi
            lower[st.poi] = upper[st.poi] = fix_poi
        res = self._minimize(lik, x, lower, upper, free, scoring)
        if not res.converged and self._kinked.size:
            res = self._fit_at_kinks(lik, res, lower, upper, free, scoring)
        if not res.converged:
            raise FitError(f"fast backend: the {what} did not converge ({res.message}); use the pyhf backend for this point")
        # A point where free parameters sit at a bound satisfies the first-order (KKT)
        # conditions but can be a saddle: e.g. a normfactor at 0 multiplying shapefactors
        # leaves them flat, while raising it and lowering one of them lowers -ln L. Then fit
        # again from the model's initial values (where pyhf starts) and from the point with
        # those parameters released into the box; keep the lowest minimum.
        span = np.minimum(upper - lower, 1.0)
        at_lo = free & (res.x - lower <= 1e-9 * span)
        at_hi = free & (upper - res.x <= 1e-9 * span)
        if fix_poi is None:
            at_lo[st.poi] = at_hi[st.poi] = False  # the POI at 0 is the usual case, not a saddle
        if at_lo.any() or at_hi.any():
            released = res.x.copy()
            released[at_lo] += 0.05 * span[at_lo]
            released[at_hi] -= 0.05 * span[at_hi]
            starts = st.inits.copy()
            if fix_poi is not None:
                starts[st.poi] = fix_poi
            for x1 in (starts, released):
                again = self._minimize(lik, x1, lower, upper, free, scoring)
                if again.converged and again.fun < res.fun - 1e-9 * max(1.0, abs(res.fun)):
                    again.message += " (restarted: the first minimum had parameters at a bound)"
                    res = again
            # still at a bound, with free parameters the likelihood does not depend on there
            # (zero curvature): a flat valley that may lead to a lower minimum; say so
            assert res.hess is not None
            span_ok = free & ~((res.x - lower <= 1e-9 * span) | (upper - res.x <= 1e-9 * span))
            diag = np.abs(optimize.diagonal(res.hess))
            flat = span_ok & (diag <= 1e-12 * max(float(diag.max()), 1e-300))
            held = free & ~span_ok
            if fix_poi is None:
                held[st.poi] = False
            if flat.any() and held.any():
                names = ", ".join(st.par_names[k] for k in np.flatnonzero(held)[:3])
                flats = ", ".join(st.par_names[k] for k in np.flatnonzero(flat)[:3])
                raise FitError(
                    f"fast backend: the {what} ends with {names} at a bound and {flats} undetermined (no curvature): "
                    "the minimum may be a saddle of a degenerate model; use the pyhf backend for this point"
                )
        self._fits.append(res)
        return res

    def _minimize(self, lik: Likelihood, x0: Arr, lower: Arr, upper: Arr, free: Arr, scoring: bool) -> optimize.Minimum:
        fisher = lik.fisher if scoring else None
        return optimize.minimize_with_fallback(lik.evaluate, lik.nll, x0, lower, upper, free, fisher)

    def _fit_at_kinks(self, lik: Likelihood, res: optimize.Minimum, lower: Arr, upper: Arr, free: Arr, scoring: bool) -> optimize.Minimum:
        """A fit that stalled where code0/code1 interpolation has a kink (alpha = 0, where the
        derivative jumps): hold the parameters near 0 at exactly 0, minimise the others, and
        accept when 0 is in each held parameter's subdifferential (the one-sided derivatives
        have opposite signs), which makes the point a minimum of the non-smooth -ln L."""
        k = self._kinked[free[self._kinked] & (np.abs(res.x[self._kinked]) < 1e-3)]
        if not k.size:
            return res
        x = res.x.copy()
        x[k] = 0.0
        lo, hi = lower.copy(), upper.copy()
        lo[k] = hi[k] = 0.0
        inner = free.copy()
        inner[k] = False
        held = self._minimize(lik, x, lo, hi, inner, scoring)
        if not held.converged:
            return res
        eps = 1e-7
        ok = True
        for j in k:
            xp, xm = held.x.copy(), held.x.copy()
            xp[j], xm[j] = eps, -eps
            right = (lik.nll(xp) - held.fun) / eps  # one-sided derivatives
            left = (held.fun - lik.nll(xm)) / eps
            tol = 1e-6 * max(1.0, abs(right), abs(left))
            ok = ok and right >= -tol and left <= tol
        if not ok:
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
            if isinstance(start, optimize.Minimum):
                done.append((start.x, start))
                record[label] = start.fun
                continue
            x0 = np.asarray(start, dtype=float)
            same = next((r for x, r in done if np.array_equal(x, x0)), None)
            if same is None:
                try:
                    same = self._fit(lik, x0, fix_poi, what)
                except FitError as exc:
                    same = exc
                done.append((x0, same))
            record[label] = same.fun if isinstance(same, optimize.Minimum) else "did not converge"
        found = [r for _, r in done if isinstance(r, optimize.Minimum)]
        if not found:
            err = done[0][1]
            assert isinstance(err, FitError)
            raise err
        best = min(found, key=lambda r: r.fun)
        self._starts[what] = record
        if max(r.fun for r in found) - best.fun > MULTIMODAL_NLL:
            self._multimodal.add(what)
        if len(found) < len(done):
            self._notes.add(f"the {what} from one start did not converge; the lowest minimum of the other starts was taken")
        return best

    def _nominal(self, poi_value: float | None) -> Arr:
        """pyhf's starting point (the parameters' initial values), the POI at ``poi_value``."""
        x = self.st.inits.copy()
        if poi_value is not None:
            x[self.st.poi] = poi_value
        return x

    def _data_fits(self) -> tuple[optimize.Minimum, optimize.Minimum, Likelihood]:
        """The fits that do not depend on mu, each from pyhf's nominal start and a warm start:
        the free fit and the fit with the POI fixed at 0 (which makes the Asimov data)."""
        if "asimov" not in self._cache:
            poi = self._require_poi()
            st = self.st
            free_nominal = None
            if self.second_starts:
                free_nominal = self._cache.get("free_nominal") or self._fit(self.lik, st.inits, None, FREE_OBS)
            warm = free_nominal.x.copy() if free_nominal is not None else st.inits.copy()  # no earlier point: the free fit's values
            if self._warm:  # start from the previous signal point's background fit
                for k, name in enumerate(st.par_names):
                    if not st.fixed[k] and name in self._warm:
                        warm[k] = self._warm[name]
            warm[poi] = 0.0
            bkg = self._lowest(self.lik, {"nominal": self._nominal(0.0), "warm": warm}, 0.0, BKG_OBS)
            self._warm.clear()
            self._warm.update(zip(st.par_names, bkg.x.tolist(), strict=True))
            # the free fit from the nominal start is done (it made the first warm start)
            free = self._lowest(self.lik, {"nominal": free_nominal if free_nominal is not None else st.inits, "warm": bkg.x}, None, FREE_OBS)
            asimov = copy.copy(self.lik)
            g_aux, p_aux = self.lik.expected_aux(bkg.x)
            asimov.set_data(self.lik.expected_main(bkg.x), g_aux, p_aux)
            self._cache["free"] = free
            self._cache["bkg"] = bkg
            self._cache["asimov"] = asimov
        return self._cache["free"], self._cache["bkg"], self._cache["asimov"]

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
        underflow = tuple(name for name, v in (("CLs_obs", obs), *((f"CLs_exp[{i}]", e) for i, e in enumerate(exp))) if v < 1e-300)
        if underflow:
            self._notes.add(
                f"{', '.join(underflow)} below double precision (reported as {', '.join(f'{v:.3g}' for v in (obs, *exp) if v < 1e-300)}): "
                f"q_mu = {q:.6g}, q_mu,A = {qA:.6g} (sqrt {np.sqrt(qA):.4g}): the Asimov data exclude mu = {mu:g} by that many sigma"
            )
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

    def _starts_of_cached_fits(self) -> None:
        """Carry the starts of the cached (mu-independent) fits into every result."""
        if "starts" not in self._cache:
            self._cache["starts"] = {k: v for k, v in self._starts.items() if k in (FREE_OBS, BKG_OBS)}
            self._cache["multimodal"] = self._multimodal & {FREE_OBS, BKG_OBS}
            self._cache["notes"] = {n for n in self._notes if FREE_OBS in n or BKG_OBS in n}
        self._starts.update(self._cache["starts"])
        self._multimodal |= self._cache["multimodal"]
        self._notes |= self._cache["notes"]

    def upper_limit(self, *, level: float = 0.05, cap: float = DEFAULT_CAP) -> UpperLimit:
        """Observed and expected upper limits by root finding on CLs(mu) = ``level``."""
        poi = self._require_poi()
        with single_thread():
            ul = _upper_limit(self.cls, level=level, upper_bound=float(self.st.upper[poi]), cap=cap, backend="fast", settings=self.settings)
        bad = [name for name, v in (("mu_up_obs", ul.observed), *((f"mu_up_exp[{i}]", e) for i, e in enumerate(ul.expected))) if np.isnan(v)]
        bad += [
            name
            for name, v in (("mu_up_obs", ul.observed), *((f"mu_up_exp[{i}]", e) for i, e in enumerate(ul.expected)))
            if np.isinf(v) and name not in ul.above_cap
        ]
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
            x0 = st.inits.copy()
            fixed = st.fixed.copy()
            if st.poi >= 0:
                self._require_poi()
                x0[st.poi] = 0.0
                fixed[st.poi] = True
            what = "fit with the POI fixed at 0 to the observed data" if st.poi >= 0 else "background-only fit to the observed data"
            res = self._fit(self.lik, x0, 0.0 if st.poi >= 0 else None, what)
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
