"""Derive a simplified likelihood (DESIGN.md 5b) from a full HistFactory likelihood.

What ``arch simplify`` computes, following Buckley et al., JHEP 04 (2019) 064:

1. The background-only fit: the maximum-likelihood fit of the background-only workspace
   to all observed data with heparch's fast engine (the POI fixed at 0 when the workspace
   has one), giving the best fit ``theta_hat`` and the post-fit covariance ``V`` (the
   inverse Hessian) of the free parameters.
2. Sampling: ``theta ~ N(theta_hat, V)`` over the free parameters (``numpy.random.
   default_rng(seed)`` standard normals times the Cholesky factor of ``V``, or its
   symmetric square root when ``V`` is only semi-definite up to rounding); fixed
   parameters stay at their values and the POI at 0. A sampled value outside its
   parameter's bounds is **clipped to the bound**, as the fit itself would hold it
   (the bounds are where the model is defined: e.g. a staterror gamma must stay > 0);
   the number of samples with a clipped parameter is reported. A sample whose expected
   rates are not finite (a normsys factor <= 0 inside code4's polynomial) is dropped and
   counted; ``derived_from.samples`` is the number of samples used.
3. Moments of the expected rates of the chosen bins (those of the channels named by
   ``--channels``, in the order given; by default every channel's, in pyhf's sorted
   channel order; ``--json`` lists them), over the samples, evaluated in
   chunks (:meth:`~heparch.infer.fast.likelihood.Likelihood.expected_main_many`) and
   merged with the pairwise formulas of Chan, Golub and LeVeque (1979), so memory does
   not grow with the number of samples: ``background`` is the sample mean,
   ``covariance`` the sample covariance (divisor N - 1) and ``third_moments`` the third
   central moment per bin (divisor N), as ``numpy.mean``, ``numpy.cov`` and
   ``numpy.mean((x - mean)**3)`` give them on all samples at once. Expected rates are
   used as the model gives them, negative ones included. Where the rates are not linear
   in the parameters (code4p histosys, one-sided systematics) the mean is not the rate at
   the best fit: on ATLAS 1Lbb, SRHMEM_mct2[0] has mean 2.6 and best-fit rate 6.4.
4. The quadratic form needs ``m3_i^2 <= 8 m2_ii^3`` per bin: a bin that breaks it gets
   the third moment 0 (the linear form for that bin) and a warning naming it. If the
   quadratic form's correlation matrix (eq. 2.12) is then not positive definite, all
   third moments are dropped (the linear form), with a warning, so the output always
   loads.
5. The covariance must be positive definite (E066). A sample covariance of more bins
   than free parameters can be singular up to rounding: then ``eps`` times its diagonal
   is added, with ``eps`` the smallest of 1e-10, 1e-9, ..., 1e-6 that makes it positive
   definite, and recorded in ``derived_from.method`` and as a warning. A bin with zero
   variance (no free parameter changes it) or a covariance that needs more is an error
   that says which bins to leave out (``--channels``).
6. Signals: for each patch, the expected rates of the patched model at ``mu = 1`` minus
   those at ``mu = 0``, both with the other parameters at the background-only best fit
   (parameters that only the patch adds at their initial values). A negative signal
   yield (which the simplified engine refuses) is set to 0 with a warning.

A consequence of the method, not of this implementation: the background-only fit uses the
signal regions' data, and the simplified likelihood uses them again in its Poisson terms,
so the covariance is narrowed by the data's own constraint and CLs comes out lower (more
aggressive) than the full likelihood's. Measured at mu = 1: example analysis C1N2_500_300
0.013 against 0.074 (its prior-sampled ``simplified.json`` gives 0.066); ATLAS 1Lbb
C1N2_Wh_hbb_700_250 0.032 against 0.063 (linearised yields and covariance of a fit to the
control regions only: 0.049). Where rates are linear in Gaussian-constrained parameters
the gap is second order in the data's share of the information on them (a few per cent;
``tests/test_simplify.py::test_linear_gaussian_model_reproduces_the_full_likelihood``).

Every number is rounded to 10 significant digits, so the same inputs and seed give the
same bytes. ``derived_from`` records the likelihood (its logical path in a bundle, the
file's name otherwise), the likelihood file's content digest (``sha256:`` of its bytes,
as spec/bundle-v1.md section 4.3 defines it and as ``arch build`` records it in the
manifest), the method, the seed and the number of samples.

>>> ws = {"channels": [{"name": "SR", "samples": [{"name": "bkg", "data": [50.0, 20.0],
...       "modifiers": [{"name": "syst", "type": "histosys",
...                      "data": {"hi_data": [55.0, 21.0], "lo_data": [45.0, 19.0]}},
...                     {"name": "staterror_SR", "type": "staterror", "data": [2.0, 2.0]}]}]}],
...       "observations": [{"name": "SR", "data": [52.0, 19.0]}],
...       "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> sig = {"name": "sig", "data": [3.0, 1.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]}
>>> points = [Point("A", [{"op": "add", "path": "/channels/0/samples/1", "value": sig}])]
>>> result = derive(ws, points, likelihood="ws.json", digest="sha256:" + "0" * 64, samples=2000, seed=1)
>>> result.sl["signals"], len(result.sl["covariance"]), result.bins
({'A': [3.0, 1.0]}, 2, (('SR', 0), ('SR', 1)))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import heparch
from heparch.analysis import Analysis, Likelihood, only, patchset_points, select
from heparch.components.patchset import PatchFailure, apply_patch, check_patchset, looks_like_patchset
from heparch.components.simplified import check_simplified, cholesky_failure, looks_like_simplified
from heparch.errors import InferenceInputError, InputError
from heparch.infer import inputs
from heparch.infer.inputs import listing
from heparch.spec import strictjson
from heparch.store.writer import atomic_output

if TYPE_CHECKING:
    import numpy as np  # numpy: only when a likelihood is simplified

    from heparch.infer.fast.backend import FastBackground

#: the default number of samples
SAMPLES: Final = 100_000
#: the default seed
SEED: Final = 0
#: at most this many samples are evaluated at once
CHUNK: Final = 5000
#: ... and at most this many numbers per intermediate array (2 MiB: the element-wise
#: passes stay in the processor's cache, measured 1.5-2x faster than 32 MiB chunks on 1Lbb)
CHUNK_ELEMENTS: Final = 1 << 18
#: significant digits of the numbers written
DIGITS: Final = 10
#: relative ridges tried, in order, on a covariance that is not positive definite
RIDGES: Final = (1e-10, 1e-9, 1e-8, 1e-7, 1e-6)
METHOD: Final = "post-fit-sampling (Buckley et al. 2019)"

Bin = tuple[str, int]
#: ``on_progress(stage, done, total)``: the stages are "sampling" and "signals"
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class Point:
    """One signal point: its name, its RFC 6902 patch, its label values (if any)."""

    name: str
    patch: list[Any]
    values: list[Any] | None = None


@dataclasses.dataclass(frozen=True)
class Simplified:
    """A derived simplified likelihood and what happened on the way.

    ``sl`` is the JSON object (DESIGN.md 5b); ``bins`` names its entries (channel, bin
    index within the channel), in order; ``linear_bins`` are the bins whose third moment
    was set to 0; ``warnings`` are one line each.
    """

    sl: dict[str, Any]
    bins: tuple[Bin, ...]
    linear_bins: tuple[Bin, ...]
    warnings: tuple[str, ...]
    samples: int
    clipped: int
    dropped: int
    ridge: float
    seconds: float

    def to_bytes(self) -> bytes:
        """The JSON file: sorted keys, two-space indent, a final newline."""
        strictjson.check_ijson(self.sl, "simplified likelihood")  # never write what a reader refuses (E038, E039)
        return (json.dumps(self.sl, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def summary(self) -> dict[str, Any]:
        """What ``--json`` prints."""
        return {
            "bins": [list(b) for b in self.bins],
            "linear_bins": [list(b) for b in self.linear_bins],
            "points": len(self.sl["signals"]),
            "samples": self.samples,
            "clipped_samples": self.clipped,
            "dropped_samples": self.dropped,
            "ridge": self.ridge,
            "seconds": round(self.seconds, 3),
            "derived_from": self.sl.get("derived_from"),
            "warnings": list(self.warnings),
        }


def _round(x: float) -> float:
    return float(f"{x:.{DIGITS}g}") + 0.0  # + 0.0: no -0.0


def _count(x: float) -> float | int:
    """Whole counts as integers (as published: ``[11, 5]``), others as they are."""
    return int(x) if x.is_integer() else x


def _bin_name(b: Bin) -> str:
    return f"{b[0]}[{b[1]}]"


# ---------------------------------------------------------------------------------------
# inputs


@dataclasses.dataclass(frozen=True)
class _Source:
    workspace: Any
    points: list[Point]
    labels: list[str] | None
    likelihood: str
    digest: str
    location: str


def simplify(
    path: str | Path,
    *,
    patchset: str | Path | None = None,
    likelihood: str | None = None,
    channels: Sequence[str] | None = None,
    samples: int = SAMPLES,
    seed: int = SEED,
    on_progress: Progress | None = None,
) -> Simplified:
    """The simplified likelihood of INPUT ``path``: a workspace JSON with ``patchset`` (a
    patchset JSON), or a bundle (``likelihood`` picks one when it holds several; its
    patchsets, or the one named by ``patchset``, give the signals). Raises
    :class:`InputError` (exit 2) for bad inputs, :class:`FitError` when a fit fails.
    ``on_progress(stage, done, total)`` reports the sampling ("sampling", samples drawn) and
    the signals ("signals", points done)."""
    _check_numbers(samples, seed)
    src = _resolve(Path(path), patchset, likelihood)
    try:
        return derive(
            src.workspace,
            src.points,
            likelihood=src.likelihood,
            digest=src.digest,
            labels=src.labels,
            channels=channels,
            samples=samples,
            seed=seed,
            on_progress=on_progress,
        )
    except InferenceInputError as exc:  # the engine names the field; the file is named here
        if src.location in exc.message:
            raise
        raise InferenceInputError(f"{src.location}: {exc.message}", findings=exc.findings, option=exc.option) from None


def _check_numbers(samples: int, seed: int) -> None:
    if samples < 2:
        raise InputError(f"samples {samples}: needs at least 2 samples (a covariance needs 2; the default is {SAMPLES})", option="samples")
    if samples > strictjson.MAX_SAFE_INTEGER:  # recorded in derived_from, where a reader refuses it (E038)
        raise InputError(f"samples {samples}: must be at most 2^53 - 1 = {strictjson.MAX_SAFE_INTEGER}", option="samples")
    if not 0 <= seed <= strictjson.MAX_SAFE_INTEGER:
        raise InputError(f"seed {seed}: must be a whole number from 0 to 2^53 - 1 = {strictjson.MAX_SAFE_INTEGER} (recorded in derived_from)", option="seed")


def _resolve(path: Path, patchset: str | Path | None, likelihood: str | None) -> _Source:
    if inputs.is_bundle(path):
        return _from_bundle(path, patchset, likelihood)
    if likelihood is not None:
        raise InputError(f"likelihood {likelihood!r}: only for a bundle; {path} is a JSON file", option="likelihood")
    ws = inputs.read_json(path, "workspace or bundle")
    if looks_like_simplified(ws):
        raise InputError(
            f"{path}: is a simplified likelihood already; give the full likelihood (a workspace JSON with patchset=PS.json, or a bundle)", option="patchset"
        )
    inputs.check_workspace(ws, str(path))
    if patchset is None:
        raise InputError(f"{path}: a workspace needs patchset=PS.json: the signals of a simplified likelihood come from its patches", option="patchset")
    ps_path = Path(patchset)
    points, labels = _points_of(inputs.read_json(ps_path, "patchset"), ws, str(ps_path), str(path))
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
    return _Source(ws, points, labels, path.name, "sha256:" + digest.hexdigest(), str(path))


def _from_bundle(path: Path, patchset: str | Path | None, likelihood: str | None) -> _Source:
    with heparch.open(path) as bundle:
        analysis = Analysis.of(bundle)
        lk = _likelihood(analysis, likelihood)
        location = f"{path}:{lk.path}"
        ws = bundle.read_json(lk.path)
        inputs.check_workspace(ws, location)
        sets = _patchsets(lk, patchset, path, location)
        found = [_points_of(bundle.read_json(ps_name), ws, f"{path}:{ps_name}", location) for ps_name in sets]
    labels = found[0][1] if all(got == found[0][1] for _, got in found) else None  # labelled differently: no labels
    return _Source(ws, _first_of_each([p for points, _ in found for p in points], labels), labels, lk.path, lk.digest, location)


def _first_of_each(points: Sequence[Point], labels: Sequence[str] | None) -> list[Point]:
    """The first point of each name; without label values when there are no common ``labels``."""
    unique: dict[str, Point] = {}
    for p in points:
        unique.setdefault(p.name, p)
    return [p if labels is not None else dataclasses.replace(p, values=None) for p in unique.values()]


def _likelihood(analysis: Analysis, likelihood: str | None) -> Likelihood:
    """The full likelihood to simplify: the one named, else the bundle's only one."""
    full = analysis.names("workspace")
    where = str(analysis.source)
    if likelihood is None:
        return analysis.likelihood(only(full, where=where, what="likelihood", option="likelihood"))
    predicate = "is not a likelihood (role 'likelihood') of the bundle"
    return analysis.likelihood(select(likelihood, full, where=where, option="likelihood", predicate=predicate, label="it has "))


def _patchsets(lk: Likelihood, patchset: str | Path | None, path: Path, location: str) -> list[str]:
    """The patchsets whose patches are the signals: the one named, else all of the likelihood's."""
    sets = list(lk.patchsets)
    if patchset is not None:
        predicate = f"is not a patchset of likelihood {lk.path!r} in the bundle"
        sets = [select(str(patchset), sets, where=str(path), option="patchset", predicate=predicate, label="its patchsets: ")]
    if not sets:
        raise InputError(
            f"{location}: has no patchset in the bundle (role 'patchset', likelihood {lk.path!r}); the signals of a simplified likelihood come from its patches"
        )
    return sets


def _points_of(ps: Any, ws: Any, location: str, likelihood_location: str) -> tuple[list[Point], list[str] | None]:
    """The points of patchset ``ps`` (checked against ``ws``: schema, digest, every patch applies) and its labels."""
    if not looks_like_patchset(ps):
        raise InputError(f"{location}: not a pyhf patchset (needs 'patches' and 'metadata')")
    inputs.raise_findings(check_patchset(ps, ws, location=location, likelihood_location=likelihood_location))
    found = patchset_points(ps, likelihood_location, location)
    if not found:
        raise InputError(f"{location}: has no patches; the signals of a simplified likelihood come from its patches")
    labels = list(found[0].labels) if isinstance(ps["metadata"].get("labels"), list) else None
    return [Point(p.name, p.patch, list(p.raw_values) if p.raw_values is not None and labels is not None else None) for p in found], labels


# ---------------------------------------------------------------------------------------
# the derivation


def derive(
    workspace: Mapping[str, Any],
    points: Sequence[Point],
    *,
    likelihood: str,
    digest: str,
    labels: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    samples: int = SAMPLES,
    seed: int = SEED,
    on_progress: Progress | None = None,
) -> Simplified:
    """The simplified likelihood of a valid background-only ``workspace`` and its signal
    ``points`` (see the module docstring); ``likelihood`` and ``digest`` go into
    ``derived_from``."""
    from heparch.infer.fast._blas import single_thread  # numpy: only when a likelihood is simplified

    _check_numbers(samples, seed)
    if not points:
        raise InputError("no signal points: the signals of a simplified likelihood come from the patches of a patchset")
    progress = on_progress or _silent
    start = time.perf_counter()
    bkg = _fast_background(workspace)
    model = bkg.model()
    st = model.st
    bins = _bins(st.channels, st.channel_bins, channels)
    rows = _rows(_bin_index(st.channels, st.channel_bins), bins)
    fit = model.fit_background()
    with single_thread():
        moments = _sample(model.lik, fit.bestfit, fit.covariance, _free(st), st.lower, st.upper, rows, samples, seed, progress)
    warnings = _sampling_warnings(moments, samples)
    fields, linear, ridge = _background_fields(moments, bins, warnings)
    signals, values, signal_warnings = _signals(bkg, workspace, points, fit, st.par_names, bins, progress)
    warnings += signal_warnings
    derived_from = {"likelihood": likelihood, "digest": digest, "method": _method(ridge), "seed": seed, "samples": moments.n}
    sl: dict[str, Any] = {"observed": [_count(float(st.observed[r])) for r in rows], **fields, "signals": signals, "derived_from": derived_from}
    if labels is not None and values:
        sl["labels"] = list(labels)
        sl["values"] = values
    if _check_loads(sl):
        linear = list(bins)
        warnings.append("the quadratic form's correlation matrix (Buckley et al. eq. 2.12) is not positive definite: third moments dropped (the linear form)")
    return Simplified(sl, tuple(bins), tuple(linear), tuple(warnings), moments.n, moments.clipped, moments.dropped, ridge, time.perf_counter() - start)


def _silent(stage: str, done: int, total: int) -> None:
    """No progress reports."""


def _free(st: Any) -> np.ndarray:
    """The parameters sampled: the free ones but the POI (held at 0)."""
    free: np.ndarray = ~st.fixed
    if st.poi >= 0:
        free[st.poi] = False
    return free


def _rows(index: Mapping[Bin, int], bins: Sequence[Bin]) -> np.ndarray:
    """The model's rate indices of ``bins``."""
    import numpy as np  # numpy: only when a likelihood is simplified

    return np.array([index[b] for b in bins], dtype=np.int64)


def _sampling_warnings(moments: _Moments, samples: int) -> list[str]:
    """A warning for the samples dropped; an error when fewer than 2 are left."""
    warnings = []
    if moments.dropped:
        warnings.append(f"{moments.dropped} of {samples} samples gave non-finite expected rates (a normsys factor <= 0) and were dropped")
    if moments.n < 2:
        raise InferenceInputError(f"only {moments.n} of {samples} samples gave finite expected rates; the model is not defined around its best fit")
    return warnings


def _background_fields(moments: _Moments, bins: Sequence[Bin], warnings: list[str]) -> tuple[dict[str, Any], list[Bin], float]:
    """``background``, ``covariance`` and ``third_moments`` from the sampled moments, the bins given
    the linear form and the ridge added to the covariance; their warnings appended to ``warnings``."""
    background = _mean_background(moments.mean, bins)
    cov, ridge = _covariance(moments.covariance(), bins)
    if ridge:
        warnings.append(f"the sample covariance is not positive definite (rank-deficient); {ridge:g} times its diagonal was added")
    third, linear = _third_moments(moments.third(), cov, bins)
    warnings += [f"bin {_bin_name(b)}: third moment breaks m3^2 <= 8 m2^3; it is set to 0 (the linear form for this bin)" for b in linear]
    return {"background": background, "covariance": cov, "third_moments": third}, linear, ridge


def _method(ridge: float) -> str:
    """``derived_from.method``: :data:`METHOD`, and the ridge where one was added."""
    return METHOD + (f"; covariance + {ridge:g} x its diagonal (singular otherwise)" if ridge else "")


def _fast_background(workspace: Mapping[str, Any]) -> FastBackground:
    """The fast engine's background model of ``workspace``; an error where it cannot fit it."""
    from heparch.infer.fast import FastBackend  # numpy and scipy: imported when a likelihood is simplified

    backend = FastBackend()
    reason = backend.unsupported(workspace)
    if reason is not None:
        raise InferenceInputError(f"the fast engine cannot fit this model: {reason}")
    return backend.background(workspace)


def _mean_background(m1: np.ndarray, bins: Sequence[Bin]) -> list[float]:
    """The background means, rounded; an error naming the first negative one."""
    background = [_round(v) for v in m1]
    negative = [bins[i] for i, v in enumerate(background) if v < 0]
    if negative:
        raise InferenceInputError(
            f"the mean background is negative in bin {_bin_name(negative[0])}: the simplified engine refuses negative rates; leave that channel out with channels=NAMES",
            option="channels",
        )
    return background


def _bin_index(names: Sequence[str], sizes: Sequence[int]) -> dict[Bin, int]:
    out: dict[Bin, int] = {}
    offset = 0
    for name, n in zip(names, sizes, strict=True):
        for i in range(n):
            out[(name, i)] = offset + i
        offset += n
    return out


def _bins(names: Sequence[str], sizes: Sequence[int], chosen: Sequence[str] | None) -> list[Bin]:
    """The bins of the ``chosen`` channels in the order given, else of all channels in the model's (sorted) order."""
    nbins = dict(zip(names, sizes, strict=True))
    chosen = list(names) if chosen is None else chosen
    _check_channels(chosen, names)
    return [(c, i) for c in chosen for i in range(nbins[c])]


def _check_channels(chosen: Sequence[str], names: Sequence[str]) -> None:
    """Channels of the workspace, at least one, each once."""
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise InputError(f"channels: {listing(unknown)} not a channel of the workspace; valid names: {', '.join(names)}", option="channels")
    if not chosen:
        raise InputError(f"channels: name at least one channel; valid names: {', '.join(names)}", option="channels")
    if len(set(chosen)) != len(chosen):
        raise InputError(f"channels: a channel is named twice in {','.join(chosen)}", option="channels")


def _chunk_size(lik: Any) -> int:
    st = lik.st
    width = max(int(st.n_par.size), int(st.lin_slots.size), int(lik.C), 1)
    return max(1, min(CHUNK, CHUNK_ELEMENTS // width))


@dataclasses.dataclass
class _Moments:
    """Running moments of the sampled rates, merged chunk by chunk with the pairwise formulas of
    Chan, Golub and LeVeque (1979); the samples with a clipped parameter, those dropped for
    non-finite rates."""

    n: int
    mean: np.ndarray
    m2: np.ndarray  # the sum of the outer products of the deviations
    m3: np.ndarray  # the sum of the cubed deviations, per bin
    clipped: int = 0
    dropped: int = 0

    @classmethod
    def empty(cls, bins: int) -> _Moments:
        import numpy as np  # numpy: only when a likelihood is simplified

        return cls(0, np.zeros(bins), np.zeros((bins, bins)), np.zeros(bins))

    def add(self, x: np.ndarray) -> None:
        """Merge the samples ``x`` (one row of rates each); a row with a non-finite rate is dropped."""
        import numpy as np  # numpy: only when a likelihood is simplified

        ok = np.all(np.isfinite(x), axis=1)
        if not ok.all():
            self.dropped += int(x.shape[0] - np.count_nonzero(ok))
            x = x[ok]
        kb = x.shape[0]
        if not kb:
            return
        mb = x.mean(axis=0)
        d = x - mb
        m2b = d.T @ d
        m3b = np.sum(d**3, axis=0)
        na, total = self.n, self.n + kb
        delta = mb - self.mean
        self.m3 = self.m3 + m3b + delta**3 * na * kb * (na - kb) / total**2 + 3.0 * delta * (na * np.diag(m2b) - kb * np.diag(self.m2)) / total
        self.m2 = self.m2 + m2b + np.outer(delta, delta) * (na * kb / total)
        self.mean = self.mean + delta * (kb / total)
        self.n = total

    def covariance(self) -> np.ndarray:
        """The sample covariance (divisor N - 1)."""
        cov: np.ndarray = 0.5 * (self.m2 + self.m2.T) / max(self.n - 1, 1)
        return cov

    def third(self) -> np.ndarray:
        """The third central moments (divisor N)."""
        return self.m3 / max(self.n, 1)


def _factor(covariance: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """A square root of the covariance of the parameters ``idx``: its Cholesky factor, else (positive
    semi-definite up to rounding) its symmetric square root."""
    import numpy as np  # numpy: only when a likelihood is simplified

    block = covariance[np.ix_(idx, idx)]
    block = 0.5 * (block + block.T)
    try:
        return np.linalg.cholesky(block)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(block)
        root: np.ndarray = v * np.sqrt(np.clip(w, 0.0, None))
        return root


def _sample(
    lik: Any,
    bestfit: np.ndarray,
    covariance: np.ndarray,
    free: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    rows: np.ndarray,
    samples: int,
    seed: int,
    on_progress: Progress,
) -> _Moments:
    """The moments of the expected rates in ``rows`` over ``samples`` parameter points drawn around ``bestfit``."""
    import numpy as np  # numpy: only when a likelihood is simplified

    idx = np.flatnonzero(free)
    factor = _factor(covariance, idx) if idx.size else None
    rng = np.random.default_rng(seed)
    moments = _Moments.empty(rows.size)
    size = _chunk_size(lik)
    for done in range(0, samples, size):
        on_progress("sampling", done, samples)
        thetas, clipped = _draw(rng, min(size, samples - done), bestfit, idx, factor, lower, upper)
        moments.clipped += clipped
        moments.add(lik.expected_main_many(thetas)[:, rows])
    on_progress("sampling", samples, samples)
    return moments


def _draw(
    rng: np.random.Generator, k: int, bestfit: np.ndarray, idx: np.ndarray, factor: np.ndarray | None, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, int]:
    """``k`` parameter points ``theta ~ N(bestfit, V)`` over the parameters ``idx`` (``factor``: a square
    root of their ``V``; None: none is free), clipped to their bounds, the others at ``bestfit``; and
    how many of them had a parameter clipped."""
    import numpy as np  # numpy: only when a likelihood is simplified

    thetas = np.tile(bestfit, (k, 1))
    if factor is None:
        return thetas, 0
    z = rng.standard_normal((k, idx.size))
    drawn = bestfit[idx] + z @ factor.T
    held = np.clip(drawn, lower[idx], upper[idx])
    thetas[:, idx] = held
    return thetas, int(np.count_nonzero(np.any(held != drawn, axis=1)))


def _covariance(m2: np.ndarray, bins: Sequence[Bin]) -> tuple[list[list[float]], float]:
    """The rounded covariance, made positive definite by the smallest ridge of :data:`RIDGES` if needed."""

    _check_variance(m2, bins)
    failed = 0
    for ridge in (0.0, *RIDGES):
        cov = m2.copy()
        cov[range(len(bins)), range(len(bins))] *= 1.0 + ridge
        rounded = [[_round(v) for v in row] for row in cov.tolist()]
        found = cholesky_failure(rounded)
        if found is None:
            return rounded, ridge
        failed = found
    raise InferenceInputError(
        f"the sample covariance is singular at bin {_bin_name(bins[failed])} even with {RIDGES[-1]:g} times its diagonal added: the chosen bins depend on too few free parameters; choose fewer channels with channels=NAMES",
        option="channels",
    )


def _check_variance(m2: np.ndarray, bins: Sequence[Bin]) -> None:
    """An error naming the first bin without variance."""
    flat = [i for i in range(len(bins)) if not m2[i, i] > 0]
    if flat:
        raise InferenceInputError(
            f"bin {_bin_name(bins[flat[0]])} has zero variance: no free parameter changes its background, so the covariance is singular; leave channel {bins[flat[0]][0]!r} out with channels=NAMES",
            option="channels",
        )


def _third_moments(m3: np.ndarray, cov: Sequence[Sequence[float]], bins: Sequence[Bin]) -> tuple[list[float], list[Bin]]:
    """Rounded third moments; bins that break m3^2 <= 8 m2^3 (after rounding) get 0."""
    out: list[float] = []
    linear: list[Bin] = []
    for i, v in enumerate(m3.tolist()):
        r = _round(v)
        if r * r > 8.0 * cov[i][i] ** 3:
            linear.append(bins[i])
            r = 0.0
        out.append(r)
    return out, linear


def _signals(
    bkg: FastBackground,
    workspace: Mapping[str, Any],
    points: Sequence[Point],
    fit: Any,
    names: Sequence[str],
    bins: Sequence[Bin],
    on_progress: Progress,
) -> tuple[dict[str, list[float]], dict[str, list[Any]], list[str]]:
    """Signal yields per point (rates at mu = 1 minus at mu = 0, the rest at the background-only fit),
    negative ones set to 0; the points' label values; a warning naming the points with negative yields."""
    best = dict(zip(names, fit.bestfit.tolist(), strict=True))
    background_samples = {id(s) for ch in workspace["channels"] for s in ch["samples"]}
    signals: dict[str, list[float]] = {}
    for done, p in enumerate(points):
        on_progress("signals", done, len(points))
        signals[p.name] = _signal_yields(_patched_model(bkg, workspace, p, background_samples), best, bins, f"point {p.name!r}")
    on_progress("signals", len(points), len(points))
    values = {p.name: p.values for p in points if p.values is not None}
    return signals, values, _clamp_negative(signals)


def _clamp_negative(signals: dict[str, list[float]]) -> list[str]:
    """Set negative signal yields to 0; a warning naming the points that had any."""
    negative = [name for name, yields in signals.items() if any(v < 0 for v in yields)]
    for name in negative:
        signals[name] = [max(v, 0.0) for v in signals[name]]
    if not negative:
        return []
    return [f"negative signal yields set to 0 (the simplified engine refuses negative rates) for {len(negative)} point(s): {listing(negative)}"]


def _patched_model(bkg: FastBackground, workspace: Mapping[str, Any], p: Point, background_samples: set[int]) -> Any:
    """The fast engine's model of point ``p``, or :class:`InferenceInputError` naming the point."""
    from heparch.infer.fast import FastBackend  # numpy/scipy: only when a likelihood is simplified

    where = f"point {p.name!r}"
    try:
        doc, _ = apply_patch(workspace, p.patch)
    except PatchFailure as exc:
        raise InferenceInputError(f"{where}: operation {exc.index} of its patch does not apply: {exc.reason}") from None
    reason = FastBackend().unsupported(_added_samples(doc, background_samples))
    if reason is not None:
        raise InferenceInputError(f"{where}: the fast engine cannot compute the patched model: {reason}")
    try:
        return bkg.model([p.patch])
    except InferenceInputError as exc:
        raise InferenceInputError(f"{where}: {exc.message}", option=exc.option) from None


def _added_samples(doc: Mapping[str, Any], background_samples: set[int]) -> dict[str, Any]:
    """A workspace of the samples a patch added to ``doc`` (in one channel) with its measurements: patches
    share the untouched samples with the workspace (checked already), so only these need checking."""
    added = [s for ch in doc.get("channels", []) for s in ch.get("samples", []) if id(s) not in background_samples]
    return {"measurements": doc.get("measurements"), "channels": [{"name": "patched", "samples": added}]}


def _signal_yields(patched: Any, best: Mapping[str, float], bins: Sequence[Bin], where: str) -> list[float]:
    """Rates in ``bins`` at mu = 1 minus at mu = 0, the other parameters at ``best`` (rounded)."""
    st, lk = patched.st, patched.lik
    if st.poi < 0:
        raise InferenceInputError(f"{where}: the patched model has no parameter of interest (the measurement's 'poi' names no modifier of the patch)")
    index = _bin_index(st.channels, st.channel_bins)
    missing = [b for b in bins if b not in index]
    if missing:
        raise InferenceInputError(f"{where}: the patched model has no bin {_bin_name(missing[0])}: the patch changes the channels")
    rows = _rows(index, bins)
    x = _at_best(st, best)
    x[st.poi] = 1.0
    on = lk.expected_main(x)[rows]
    x[st.poi] = 0.0
    off = lk.expected_main(x)[rows]
    return [_round(v) for v in (on - off).tolist()]


def _check_loads(sl: dict[str, Any]) -> bool:
    """Check ``sl`` against the format and load it in the simplified engine; drop the third
    moments (returning True) when only the quadratic form fails to load."""
    from heparch.infer.simplified import SimplifiedBackend  # numpy/scipy: only when the result is checked

    errors = [f for f in check_simplified(sl, location="simplified likelihood") if f.severity == "error"]
    if errors:  # a bug: every field was made to pass
        raise InferenceInputError(f"the derived simplified likelihood fails its checks: {errors[0].one_line()}", findings=errors)
    try:
        SimplifiedBackend().background(sl)
    except InferenceInputError:
        if "third_moments" not in sl:
            raise
        del sl["third_moments"]
        SimplifiedBackend().background(sl)
        return True
    return False


def write(result: Simplified, output: str | Path) -> Path:
    """Write ``result`` to ``output`` atomically (a temporary file in its directory, then a rename)."""

    out = check_output(output)
    with atomic_output(out) as fh:
        fh.write(result.to_bytes())
    return out


def check_output(output: str | Path, *, inputs: Sequence[str | Path] = ()) -> Path:
    """Refuse an output path that is a directory, lies in a missing directory or is one of
    the ``inputs`` (before any work)."""
    out = Path(output)
    if any(_same_file(out, Path(given)) for given in inputs):
        raise InputError(f"{out}: is an input of this command; write the simplified likelihood to another file")
    if out.is_dir():
        raise InputError(f"{out}: is a directory; give the output file name, e.g. out={out / 'simplified.json'}", option="out")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: output directory does not exist; create it first")
    return out


def _same_file(a: Path, b: Path) -> bool:
    """Both exist and are the same file."""
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def _at_best(st: Any, best: Mapping[str, float]) -> np.ndarray:
    """The parameters of model ``st`` at ``best`` where it has them, else at their initial values."""
    x: np.ndarray = st.inits.copy()
    for k, name in enumerate(st.par_names):
        if name in best:
            x[k] = best[name]
    return x
