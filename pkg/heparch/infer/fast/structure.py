"""A HistFactory workspace compiled into flat index arrays.

The expected rate of every *cell* (one sample in one bin) is, as in pyhf 0.7.6,

    rate = (nominal + sum of histosys deltas) * prod(normsys factors) * prod(linear factors)

where the linear factors are parameters themselves (normfactor, shapefactor, lumi,
staterror, shapesys). Each sample of the workspace is compiled once into a
:class:`SampleBlock` (its cells and one entry per modifier and bin, naming parameters
by name); :func:`assemble` joins the blocks of one model, numbers the parameters and
applies the measurement's parameter configuration. Blocks are cached by the identity
of the sample's JSON object, so a patched workspace that shares its background samples
with the background-only one (as path-copying patch application leaves it) only
compiles the samples the patch added.

The parameter configuration follows ``pyhf/modifiers/*.py`` and
``pyhf/parameters/utils.py``: defaults per modifier type, staterror sigmas from the
combined relative uncertainty of all samples carrying the modifier (sigma 0 -> fixed at
1 with sigma 1), shapesys Poisson constraints with tau = (nominal/uncertainty)^2 (bins
with a zero nominal or uncertainty fixed, tau 1), and the measurement's ``inits``,
``bounds``, ``fixed``, ``auxdata`` and ``sigmas`` overriding them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from heparch.errors import InferenceInputError
from heparch.infer._checks import finite_vector

Arr = Any

MODIFIER_TYPES = ("normfactor", "normsys", "histosys", "shapesys", "staterror", "shapefactor", "lumi")
# linear factor kinds
LIN_NORMFACTOR, LIN_SHAPEFACTOR, LIN_LUMI, LIN_STATERROR, LIN_SHAPESYS = range(5)
_LIN_KIND = {"normfactor": LIN_NORMFACTOR, "shapefactor": LIN_SHAPEFACTOR, "lumi": LIN_LUMI, "staterror": LIN_STATERROR, "shapesys": LIN_SHAPESYS}
# parameter-set families: modifiers may share a parameter only within one family (pyhf InvalidNameReuse)
_FAMILY = {
    "normsys": "alpha",
    "histosys": "alpha",
    "normfactor": "normfactor",
    "shapefactor": "shapefactor",
    "lumi": "lumi",
    "staterror": "staterror",
    "shapesys": "shapesys",
}


def _floats(values: Any, where: str, *, nonnegative: bool = False) -> Arr:
    return finite_vector(values, where, nonnegative=nonnegative)


@dataclasses.dataclass(frozen=True)
class SampleBlock:
    """One sample of one channel, compiled; ``cell`` indices are local (0..nbins-1).

    Parameter names are held as a table of the block's distinct names (``names``) and
    integer ids into it, so assembling a model maps names once per block, not per entry.
    """

    channel: str
    sample: str
    nominal: Arr
    names: tuple[str, ...]
    # histosys: one entry per bin: cell, name id, hi - nom, nom - lo
    h_cell: Arr
    h_id: Arr
    h_up: Arr
    h_dn: Arr
    # normsys: one entry per modifier (the factor is the same in every bin): name id, hi, lo
    n_id: Arr
    n_hi: Arr
    n_lo: Arr
    # linear factors: one entry per bin: cell, name id, kind
    l_cell: Arr
    l_id: Arr
    l_kind: Arr
    # (type, name, absolute uncertainties) of staterror and shapesys modifiers
    uncertainties: tuple[tuple[str, str, Arr], ...]
    kinds: tuple[tuple[str, str], ...]  # (type, name) of every modifier, deduplicated as pyhf does


def _as_matrix(rows: list[Any], nbins: int, where: str, what: str) -> Arr:
    try:
        arr = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != nbins:
        for k, r in enumerate(rows):  # find the culprit for the message
            v = _floats(r, f"{where}[{k}]")
            if v.size != nbins:
                raise InferenceInputError(f"{where}[{k}]: {v.size} {what} values, the sample has {nbins} bins")
        raise InferenceInputError(f"{where}: malformed {what} data")
    return arr


def _modifiers(sample: Mapping[str, Any], where: str) -> dict[tuple[str, str], tuple[int, Mapping[str, Any]]]:
    """The sample's modifiers by (type, name), each with its index; pyhf keeps the last of duplicates."""
    mods: dict[tuple[str, str], tuple[int, Mapping[str, Any]]] = {}
    raw = sample.get("modifiers", [])
    if not isinstance(raw, list):
        raise InferenceInputError(f"{where}.modifiers: expected a list")
    for k, m in enumerate(raw):
        _check_modifier(m, f"{where}.modifiers[{k}]")
        mods[(m["type"], m["name"])] = (k, m)
    return mods


def _check_modifier(m: Any, where: str) -> None:
    """A modifier is an object with a string ``name`` and a known ``type``."""
    if not isinstance(m, Mapping) or not isinstance(m.get("name"), str) or not isinstance(m.get("type"), str):
        raise InferenceInputError(f"{where}: a modifier needs a string 'name' and 'type'")
    if m["type"] not in MODIFIER_TYPES:
        raise InferenceInputError(f"{where}.type: unknown modifier type {m['type']!r} (expected one of {', '.join(MODIFIER_TYPES)})")


@dataclasses.dataclass
class _SampleModifiers:
    """A sample's modifiers sorted by kind (the raw JSON values, checked by :meth:`histosys`
    and :meth:`normsys`)."""

    where: str
    nbins: int
    names: dict[str, int] = dataclasses.field(default_factory=dict)
    h_k: list[int] = dataclasses.field(default_factory=list)
    h_hi: list[Any] = dataclasses.field(default_factory=list)
    h_lo: list[Any] = dataclasses.field(default_factory=list)
    h_n: list[int] = dataclasses.field(default_factory=list)
    n_k: list[int] = dataclasses.field(default_factory=list)
    n_n: list[int] = dataclasses.field(default_factory=list)
    n_hl: list[Any] = dataclasses.field(default_factory=list)
    l_n: list[int] = dataclasses.field(default_factory=list)
    l_kind: list[int] = dataclasses.field(default_factory=list)
    unc: list[tuple[str, str, Arr]] = dataclasses.field(default_factory=list)

    def add(self, mtype: str, name: str, k: int, data: Any) -> None:
        nid = self.names.setdefault(name, len(self.names))
        where = f"{self.where}.modifiers[{k}].data"
        if mtype == "histosys":
            self._histosys(nid, k, data, where)
        elif mtype == "normsys":
            self._normsys(nid, k, data, where)
        else:
            self._linear(mtype, name, nid, data, where)

    def _histosys(self, nid: int, k: int, data: Any, where: str) -> None:
        if not isinstance(data, Mapping) or "hi_data" not in data or "lo_data" not in data:
            raise InferenceInputError(f"{where}: histosys needs {{'hi_data': [...], 'lo_data': [...]}}")
        self.h_k.append(k)
        self.h_n.append(nid)
        self.h_hi.append(data["hi_data"])
        self.h_lo.append(data["lo_data"])

    def _normsys(self, nid: int, k: int, data: Any, where: str) -> None:
        if not isinstance(data, Mapping) or "hi" not in data or "lo" not in data:
            raise InferenceInputError(f"{where}: normsys needs {{'hi': x, 'lo': y}}")
        self.n_k.append(k)
        self.n_n.append(nid)
        self.n_hl.append((data["hi"], data["lo"]))

    def _linear(self, mtype: str, name: str, nid: int, data: Any, where: str) -> None:
        """A linear factor; staterror and shapesys also keep their uncertainties."""
        if mtype in ("staterror", "shapesys"):
            # any sign, as pyhf: staterror squares it, shapesys fixes bins where it is <= 0
            u = _floats(data, where)
            if u.size != self.nbins:
                raise InferenceInputError(f"{where}: {u.size} bins, the sample has {self.nbins}")
            self.unc.append((mtype, name, u))
        self.l_n.append(nid)
        self.l_kind.append(_LIN_KIND[mtype])

    def histosys(self, nom: Arr) -> tuple[Arr, Arr]:
        """(hi - nominal, nominal - lo) of every histosys, flattened (modifier, bin)."""
        if not self.h_k:
            return np.zeros(0), np.zeros(0)
        where = f"{self.where}.modifiers[histosys].data"
        hi = _as_matrix(self.h_hi, self.nbins, f"{where}.hi_data", "hi_data")
        lo = _as_matrix(self.h_lo, self.nbins, f"{where}.lo_data", "lo_data")
        for arr, key in ((hi, "hi_data"), (lo, "lo_data")):
            bad = np.argwhere(~np.isfinite(arr))
            if bad.size:
                r, c = bad[0]
                raise InferenceInputError(f"{self.where}.modifiers[{self.h_k[r]}].data.{key}[{c}]: {float(arr[r, c])!r} is not a finite number")
        return (hi - nom).ravel(), (nom - lo).ravel()

    def normsys(self) -> Arr:
        """(modifiers, 2) the hi and lo factors of every normsys, checked finite and > 0."""
        if not self.n_k:
            return np.zeros((0, 2))
        try:
            hl = np.asarray(self.n_hl, dtype=float)
        except (TypeError, ValueError):
            raise InferenceInputError(f"{self.where}: a normsys modifier has non-numeric 'hi'/'lo'") from None
        badn = np.flatnonzero(~(np.isfinite(hl).all(axis=1) & (hl > 0).all(axis=1)))
        if badn.size:
            j = int(badn[0])
            raise InferenceInputError(
                f"{self.where}.modifiers[{self.n_k[j]}].data: normsys factors must be finite and > 0, got hi={float(hl[j, 0])!r}, lo={float(hl[j, 1])!r}"
            )
        return hl


def compile_sample(channel: str, sample: Mapping[str, Any], nbins: int, where: str) -> SampleBlock:
    """Compile one sample (``where`` is its JSON path, for error messages)."""
    # negative yields are allowed, as in pyhf: the inputs check the background rate (E080)
    nom = _floats(sample.get("data"), f"{where}.data")
    if nom.size != nbins:
        raise InferenceInputError(f"{where}.data: {nom.size} bins, the channel has {nbins}")
    mods = _modifiers(sample, where)
    sm = _SampleModifiers(where, nbins)
    for (mtype, name), (k, m) in mods.items():
        sm.add(mtype, name, k, m.get("data"))
    h_up, h_dn = sm.histosys(nom)
    hl = sm.normsys()
    cells = np.arange(nbins)
    return SampleBlock(
        channel=channel,
        sample=str(sample.get("name")),
        nominal=nom,
        names=tuple(sm.names),
        h_cell=np.tile(cells, len(sm.h_k)),
        h_id=np.repeat(np.asarray(sm.h_n, dtype=np.int64), nbins),
        h_up=h_up,
        h_dn=h_dn,
        n_id=np.asarray(sm.n_n, dtype=np.int64),
        n_hi=hl[:, 0].copy(),
        n_lo=hl[:, 1].copy(),
        l_cell=np.tile(cells, len(sm.l_n)),
        l_id=np.repeat(np.asarray(sm.l_n, dtype=np.int64), nbins),
        l_kind=np.repeat(np.asarray(sm.l_kind, dtype=np.int64), nbins),
        uncertainties=tuple(sm.unc),
        kinds=tuple(mods),
    )


@dataclasses.dataclass
class Structure:
    """A model ready for evaluation: cells, entries with global parameter indices, constraints.

    Rows are the samples of the channels (one compiled block each), cells their bins.
    """

    channels: tuple[str, ...]
    channel_bins: tuple[int, ...]
    observed: Arr  # (B,)
    cell_bin: Arr  # (C,)
    cell_row: Arr  # (C,)
    nrows: int
    nominal: Arr  # (C,)
    h_cell: Arr
    h_par: Arr
    h_up: Arr
    h_dn: Arr
    n_row: Arr  # normsys: one entry per modifier (row)
    n_par: Arr
    n_hi: Arr
    n_lo: Arr
    lin_slots: Arr  # (C, m) parameter index per linear factor, P = "one"
    par_names: tuple[str, ...]  # one per parameter element, pyhf style "name[i]" for vectors
    par_sets: dict[str, slice]
    inits: Arr
    lower: Arr
    upper: Arr
    fixed: Arr  # bool
    poi: int  # index of the POI, -1 when none
    g_idx: Arr  # Gaussian-constrained parameters
    g_aux: Arr
    g_sigma: Arr
    p_idx: Arr  # Poisson-constrained parameters (shapesys)
    p_aux: Arr
    p_tau: Arr

    @property
    def npars(self) -> int:
        return int(self.inits.size)


@dataclasses.dataclass
class Group:
    """Compiled samples concatenated, with what their parameters require; layout independent."""

    blocks: tuple[SampleBlock, ...]
    names: tuple[str, ...]
    row_channel: tuple[str, ...]
    cell_row: Arr
    cell_local: Arr  # bin index within the channel
    nominal: Arr
    h_cell: Arr
    h_gid: Arr
    h_up: Arr
    h_dn: Arr
    n_row: Arr
    n_gid: Arr
    n_hi: Arr
    n_lo: Arr
    l_cell: Arr
    l_gid: Arr
    l_kind: Arr
    families: dict[str, str]
    shapefactor_n: dict[str, int]
    shapesys: dict[str, tuple[str, Arr, Arr]]
    stat_channels: dict[str, dict[str, set[str]]]  # staterror name -> sample -> channels
    stat_unc: list[tuple[str, str, str, Arr]]  # (name, channel, sample, uncertainties)

    @classmethod
    def build(cls, blocks: Sequence[SampleBlock]) -> Group:
        names: dict[str, int] = {}
        req = _Requirements()
        cols: dict[str, list[Arr]] = {k: [] for k in ("cell_row", "cell_local", "h_cell", "h_gid", "n_row", "n_gid", "l_cell", "l_gid")}
        c0 = 0
        for r, b in enumerate(blocks):
            gmap = np.fromiter((names.setdefault(n, len(names)) for n in b.names), dtype=np.int64, count=len(b.names))
            _block_columns(cols, b, r, c0, gmap)
            c0 += b.nominal.size
            req.add_block(b)
        return cls(
            blocks=tuple(blocks),
            names=tuple(names),
            row_channel=tuple(b.channel for b in blocks),
            **{k: _cat(v) for k, v in cols.items()},
            **{k: _cat([getattr(b, k) for b in blocks], float) for k in _FLOAT_COLUMNS},
            l_kind=_cat([b.l_kind for b in blocks]),
            families=req.families,
            shapefactor_n=req.shapefactor_n,
            shapesys=req.shapesys,
            stat_channels=req.stat_channels,
            stat_unc=req.stat_unc,
        )


#: the float columns of a block, concatenated as they are into a group's
_FLOAT_COLUMNS: tuple[str, ...] = ("nominal", "h_up", "h_dn", "n_hi", "n_lo")


def _block_columns(cols: dict[str, list[Arr]], b: SampleBlock, r: int, c0: int, gmap: Arr) -> None:
    """Append block ``b`` (row ``r``, first cell ``c0``, its name ids mapped by ``gmap``) to the
    group's index columns."""
    nbins = b.nominal.size
    cols["cell_row"].append(np.full(nbins, r, dtype=np.int64))
    cols["cell_local"].append(np.arange(nbins))
    cols["h_cell"].append(b.h_cell + c0)
    cols["h_gid"].append(gmap[b.h_id] if b.h_id.size else b.h_id)
    cols["n_row"].append(np.full(b.n_id.size, r, dtype=np.int64))
    cols["n_gid"].append(gmap[b.n_id] if b.n_id.size else b.n_id)
    cols["l_cell"].append(b.l_cell + c0)
    cols["l_gid"].append(gmap[b.l_id] if b.l_id.size else b.l_id)


@dataclasses.dataclass
class _Requirements:
    """What the samples' modifiers require of their parameters, checked as they are added:
    one family per name, one bin count per shapefactor, one sample per shapesys, the staterror
    samples and channels and their uncertainties."""

    families: dict[str, str] = dataclasses.field(default_factory=dict)
    shapefactor_n: dict[str, int] = dataclasses.field(default_factory=dict)
    shapesys: dict[str, tuple[str, Arr, Arr]] = dataclasses.field(default_factory=dict)
    stat_channels: dict[str, dict[str, set[str]]] = dataclasses.field(default_factory=dict)
    stat_unc: list[tuple[str, str, str, Arr]] = dataclasses.field(default_factory=list)

    def family(self, name: str, fam: str, shown: str) -> None:
        if self.families.setdefault(name, fam) != fam:
            raise InferenceInputError(
                f"parameter {name!r} is used by modifiers of incompatible types ({self.families[name]} and {shown}); use unique modifier names"
            )

    def shapefactor(self, name: str, n: int) -> None:
        if self.shapefactor_n.setdefault(name, n) != n:
            raise InferenceInputError(f"shapefactor {name!r} is used on channels with different numbers of bins")

    def add_shapesys(self, name: str, v: tuple[str, Arr, Arr]) -> None:
        if name in self.shapesys:
            raise InferenceInputError(f"shapesys {name!r} is used by more than one sample (pyhf forbids sharing a shapesys parameter)")
        self.shapesys[name] = v

    def stat_channel(self, name: str, sample: str, channels: set[str]) -> None:
        self.stat_channels.setdefault(name, {}).setdefault(sample, set()).update(channels)

    def add_block(self, b: SampleBlock) -> None:
        for mtype, name in b.kinds:
            self.family(name, _FAMILY[mtype], mtype)
            if mtype == "shapefactor":
                self.shapefactor(name, b.nominal.size)
            elif mtype == "staterror":
                self.stat_channel(name, b.sample, {b.channel})
        for mtype, name, u in b.uncertainties:
            if mtype == "shapesys":
                self.add_shapesys(name, (b.channel, b.nominal, u))
            else:
                self.stat_unc.append((name, b.channel, b.sample, u))

    def add_group(self, g: Group) -> None:
        for name, fam in g.families.items():
            self.family(name, fam, fam)
        for name, n in g.shapefactor_n.items():
            self.shapefactor(name, n)
        for name, v in g.shapesys.items():
            self.add_shapesys(name, v)
        for name, per in g.stat_channels.items():
            for smp, chs in per.items():
                self.stat_channel(name, smp, chs)
        self.stat_unc += g.stat_unc


@dataclasses.dataclass
class _ParSet:
    family: str
    n: int
    inits: list[float]
    bounds: list[tuple[float, float]]
    fixed: list[bool]
    #: the constraint: auxiliary data, Gaussian widths, Poisson scales (empty where unused)
    aux: list[float] = dataclasses.field(default_factory=list)
    sigmas: list[float] = dataclasses.field(default_factory=list)
    tau: list[float] = dataclasses.field(default_factory=list)
    where: str = ""


def _user_config(measurement: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    config = measurement.get("config", {})
    out: dict[str, Mapping[str, Any]] = {}
    for k, p in enumerate(config.get("parameters", []) or []):
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
            raise InferenceInputError(f"measurement {measurement.get('name')!r} config.parameters[{k}]: needs a 'name'")
        if p["name"] in out:
            raise InferenceInputError(f"measurement {measurement.get('name')!r}: multiple parameter configurations for {p['name']!r}")
        out[p["name"]] = p
    return out


def _apply_user(ps: _ParSet, name: str, user: Mapping[str, Any] | None) -> None:
    """The measurement's configuration of the parameter ``name`` over pyhf's defaults, key by key."""
    for key, apply in _USER_KEYS.items():
        if user and key in user:
            apply(ps, user[key], f"measurement parameter {name!r}")


def _user_vector(ps: _ParSet, key: str, v: Any, where: str) -> list[Any]:
    if not isinstance(v, list) or len(v) != ps.n:
        raise InferenceInputError(f"{where}: {key} needs {ps.n} values, got {v!r}")
    return v


def _user_inits(ps: _ParSet, v: Any, where: str) -> None:
    ps.inits = [float(x) for x in _user_vector(ps, "inits", v, where)]


def _user_bounds(ps: _ParSet, v: Any, where: str) -> None:
    bounds = _user_vector(ps, "bounds", v, where)
    try:
        ps.bounds = [(float(b[0]), float(b[1])) for b in bounds]
    except (TypeError, ValueError, IndexError):
        raise InferenceInputError(f"{where}: bounds must be [[lo, hi], ...]") from None


def _user_fixed(ps: _ParSet, f: Any, where: str) -> None:
    if isinstance(f, bool):
        ps.fixed = [f] * ps.n
    elif isinstance(f, list) and len(f) == ps.n and all(isinstance(x, bool) for x in f):
        ps.fixed = list(f)
    else:
        raise InferenceInputError(f"{where}: fixed must be a boolean or {ps.n} booleans")


def _constrained(ps: _ParSet, key: str, where: str) -> None:
    """Only constrained parameters take auxiliary data or widths."""
    if ps.family in ("normfactor", "shapefactor"):
        raise InferenceInputError(f"{where} does not use the {key} attribute")


def _user_auxdata(ps: _ParSet, v: Any, where: str) -> None:
    v = _user_vector(ps, "auxdata", v, where)
    _constrained(ps, "auxdata", where)
    ps.aux = [float(x) for x in v]


def _user_sigmas(ps: _ParSet, v: Any, where: str) -> None:
    v = _user_vector(ps, "sigmas", v, where)
    _constrained(ps, "sigmas", where)
    if ps.family == "shapesys":
        raise InferenceInputError(f"{where} does not use the sigmas attribute (shapesys is Poisson-constrained)")
    ps.sigmas = [float(x) for x in v]


#: the keys of a parameter's configuration, in the order they are checked and applied
_USER_KEYS: Final[dict[str, Callable[[_ParSet, Any, str], None]]] = {
    "inits": _user_inits,
    "bounds": _user_bounds,
    "fixed": _user_fixed,
    "auxdata": _user_auxdata,
    "sigmas": _user_sigmas,
}


def _layout(channels: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, int]], dict[str, int], int]:
    """Channels in pyhf's sorted order, each channel's first bin, and the number of bins."""
    order = sorted(channels)
    offsets: dict[str, int] = {}
    nb = 0
    for name, n in order:
        offsets[name] = nb
        nb += n
    return order, offsets, nb


def _alpha_set(name: str, req: _Requirements, user: Mapping[str, Mapping[str, Any]]) -> _ParSet:
    return _ParSet("alpha", 1, [0.0], [(-5.0, 5.0)], [False], aux=[0.0], sigmas=[1.0])


def _normfactor_set(name: str, req: _Requirements, user: Mapping[str, Mapping[str, Any]]) -> _ParSet:
    return _ParSet("normfactor", 1, [1.0], [(0.0, 10.0)], [False])


def _shapefactor_set(name: str, req: _Requirements, user: Mapping[str, Mapping[str, Any]]) -> _ParSet:
    n = req.shapefactor_n[name]
    return _ParSet("shapefactor", n, [1.0] * n, [(0.0, 10.0)] * n, [False] * n)


def _lumi_set(name: str, req: _Requirements, user: Mapping[str, Mapping[str, Any]]) -> _ParSet:
    """pyhf has no default for lumi: the measurement must configure it all."""
    u = user.get(name, {})
    missing = [k for k in ("inits", "bounds", "auxdata", "sigmas") if k not in u]
    if missing:
        raise InferenceInputError(f"lumi modifier {name!r} needs {', '.join(missing)} in the measurement's parameter configuration")
    return _ParSet("lumi", 1, [0.0], [(0.0, 0.0)], [False], aux=[0.0], sigmas=[1.0])


def _shapesys_set(name: str, req: _Requirements, user: Mapping[str, Mapping[str, Any]]) -> _ParSet:
    """tau = (nominal/uncertainty)^2 per bin; bins with a zero nominal or uncertainty fixed, tau 1."""
    _, nom, u = req.shapesys[name]
    valid = (nom > 0) & (u > 0)
    with np.errstate(over="ignore"):  # an uncertainty beyond 1e154: tau 0, as pyhf's
        tau = np.where(valid, nom**2 / np.where(valid, u, 1.0) ** 2, 1.0)
    n = nom.size
    return _ParSet("shapesys", n, [1.0] * n, [(1e-10, 10.0)] * n, [bool(not v) for v in valid], aux=list(tau), tau=list(tau))


#: the parameter set of each modifier family with pyhf's defaults (staterror: see :func:`_staterror_sets`)
_DEFAULT_SETS: Final[dict[str, Callable[[str, _Requirements, Mapping[str, Mapping[str, Any]]], _ParSet]]] = {
    "alpha": _alpha_set,
    "normfactor": _normfactor_set,
    "shapefactor": _shapefactor_set,
    "lumi": _lumi_set,
    "shapesys": _shapesys_set,
}


def _staterror_sets(
    sets: dict[str, _ParSet], req: _Requirements, groups: Sequence[Group], offsets: dict[str, int], nbins_of: dict[str, int], nb: int
) -> dict[str, dict[str, int]]:
    """Add the staterror parameter sets to ``sets``: sigma is the combined relative uncertainty
    over every sample that carries the modifier. Returns each staterror's first element per
    channel."""
    stat_chan_offset: dict[str, dict[str, int]] = {}
    nom_full = _nominals_by_sample(groups, offsets, nb) if req.stat_channels else {}
    unc_by_name: dict[str, list[tuple[str, Arr]]] = {}
    for sname, ch, _smp, v in req.stat_unc:
        unc_by_name.setdefault(sname, []).append((ch, v))
    for name, per_sample in req.stat_channels.items():
        chans = _staterror_channels(name, per_sample)
        nomsall = np.sum([nom_full[smp] for smp in per_sample], axis=0)
        rel2 = _relative_variance(unc_by_name.get(name, []), nomsall, offsets)
        bins = np.concatenate([np.arange(offsets[ch], offsets[ch] + nbins_of[ch]) for ch in chans])
        sets[name] = _staterror_set(np.sqrt(rel2[bins]))
        stat_chan_offset[name] = dict(zip(chans, np.cumsum([0] + [nbins_of[ch] for ch in chans[:-1]]).tolist(), strict=True))
    return stat_chan_offset


def _nominals_by_sample(groups: Sequence[Group], offsets: Mapping[str, int], nb: int) -> dict[str, Arr]:
    """Each sample's nominal over all bins of the model (0 where it is absent)."""
    nom_full: dict[str, Arr] = {}
    for g in groups:
        for b in g.blocks:
            full = nom_full.setdefault(b.sample, np.zeros(nb))
            full[offsets[b.channel] : offsets[b.channel] + b.nominal.size] += b.nominal
    return nom_full


def _staterror_channels(name: str, per_sample: Mapping[str, set[str]]) -> list[str]:
    """The channels of staterror ``name``, sorted: the same for every sample that carries it."""
    masks = list(per_sample.values())
    if any(m != masks[0] for m in masks):
        raise InferenceInputError(f"staterror {name!r}: the samples that carry it do not cover the same channels (pyhf requires one consistent mask)")
    return sorted(masks[0])


def _relative_variance(uncertainties: Sequence[tuple[str, Arr]], nomsall: Arr, offsets: Mapping[str, int]) -> Arr:
    """Per bin of the model, the sum over samples of (uncertainty / total nominal)^2 (0 where the total is not > 0)."""
    rel2 = np.zeros(nomsall.size)
    for ch, v in uncertainties:
        seg = slice(offsets[ch], offsets[ch] + v.size)
        tot = nomsall[seg]
        rel2[seg] += np.where(tot > 0, (v / np.where(tot > 0, tot, 1.0)) ** 2, 0.0)
    return rel2


def _staterror_set(sig: Arr) -> _ParSet:
    """A staterror's parameters with widths ``sig``; a bin of width 0 is fixed at 1 with width 1."""
    n = int(sig.size)
    fixed = [bool(x == 0) for x in sig]
    return _ParSet("staterror", n, [1.0] * n, [(1e-10, 10.0)] * n, fixed, aux=[1.0] * n, sigmas=list(np.where(sig == 0, 1.0, sig)))


#: families whose parameter is one number, named without an index
_SCALAR_FAMILIES: Final = ("alpha", "normfactor", "lumi")


@dataclasses.dataclass
class _Numbering:
    """The parameters numbered (sorted by name, as pyhf's config.parameters), with their
    initial values, bounds, fixed flags and constraints."""

    par_names: list[str] = dataclasses.field(default_factory=list)
    par_sets: dict[str, slice] = dataclasses.field(default_factory=dict)
    inits: list[float] = dataclasses.field(default_factory=list)
    lower: list[float] = dataclasses.field(default_factory=list)
    upper: list[float] = dataclasses.field(default_factory=list)
    fixed: list[bool] = dataclasses.field(default_factory=list)
    g_idx: list[int] = dataclasses.field(default_factory=list)
    g_aux: list[float] = dataclasses.field(default_factory=list)
    g_sig: list[float] = dataclasses.field(default_factory=list)
    p_idx: list[int] = dataclasses.field(default_factory=list)
    p_aux: list[float] = dataclasses.field(default_factory=list)
    p_tau: list[float] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, sets: Mapping[str, _ParSet]) -> _Numbering:
        out = cls()
        for name in sorted(sets):
            out.add(name, sets[name])
        return out

    def add(self, name: str, ps: _ParSet) -> None:
        start = len(self.inits)
        self.par_sets[name] = slice(start, start + ps.n)
        self.par_names += [name] if ps.family in _SCALAR_FAMILIES else [f"{name}[{i}]" for i in range(ps.n)]
        self.inits += ps.inits
        self.lower += [bd[0] for bd in ps.bounds]
        self.upper += [bd[1] for bd in ps.bounds]
        self.fixed += ps.fixed
        self._constrain(ps, list(range(start, start + ps.n)))

    def _constrain(self, ps: _ParSet, idx: list[int]) -> None:
        """The constraint of the parameters ``idx``: Poisson for shapesys, none for the free
        factors, Gaussian for the others."""
        if ps.family == "shapesys":
            self.p_idx += idx
            self.p_aux += ps.aux
            self.p_tau += ps.tau
        elif ps.family not in ("normfactor", "shapefactor"):
            self.g_idx += idx
            self.g_aux += ps.aux
            self.g_sig += ps.sigmas


def _cat(parts: list[Arr], dtype: Any = np.int64) -> Arr:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _linear_elements(g: Group, stat_chan_offset: Mapping[str, Mapping[str, int]]) -> Arr:
    """For each linear-factor entry of ``g``, the element of its (vector) parameter: the bin
    within the channel for shapefactor and shapesys, the bin within the staterror's channels
    for staterror, 0 for scalars."""
    elem = np.zeros(g.l_cell.size, dtype=np.int64)
    local = g.cell_local[g.l_cell]
    vec = (g.l_kind == LIN_SHAPEFACTOR) | (g.l_kind == LIN_SHAPESYS)
    elem[vec] = local[vec]
    stat = np.flatnonzero(g.l_kind == LIN_STATERROR)
    if stat.size:
        nrow = len(g.row_channel) + 1
        rows = g.cell_row[g.l_cell[stat]]
        uniq, inv = np.unique(g.l_gid[stat] * nrow + rows, return_inverse=True)
        offs = np.array([stat_chan_offset[g.names[int(k) // nrow]][g.row_channel[int(k) % nrow]] for k in uniq], dtype=np.int64)
        elem[stat] = offs[inv] + local[stat]
    return elem


#: the columns of a model's cells and modifier entries (see :class:`Structure`)
_ENTRY_KEYS: Final = ("cell_bin", "cell_row", "nominal", "h_cell", "h_par", "h_up", "h_dn", "n_row", "n_par", "n_hi", "n_lo", "l_cell", "l_par")


def _entries(
    groups: Sequence[Group], index: Mapping[str, int], offsets: Mapping[str, int], stat_chan_offset: Mapping[str, Mapping[str, int]]
) -> dict[str, Any]:
    """The groups' cells and modifier entries joined, with global bin and parameter indices."""
    cols: dict[str, list[Arr]] = {k: [] for k in _ENTRY_KEYS}
    c0 = r0 = 0
    for g in groups:
        for k, v in _group_entries(g, index, offsets, stat_chan_offset, c0, r0).items():
            cols[k].append(v)
        c0 += g.nominal.size
        r0 += len(g.row_channel)
    out: dict[str, Any] = {k: _cat(v, float if k in _FLOAT_COLUMNS else np.int64) for k, v in cols.items()}
    out["nrows"] = r0
    return out


def _group_entries(
    g: Group, index: Mapping[str, int], offsets: Mapping[str, int], stat_chan_offset: Mapping[str, Mapping[str, int]], c0: int, r0: int
) -> dict[str, Arr]:
    """The cells and entries of group ``g`` (first cell ``c0``, first row ``r0``) with global bin and parameter indices."""
    gidx = np.fromiter((index[n] for n in g.names), dtype=np.int64, count=len(g.names))
    row_off = np.fromiter((offsets[ch] for ch in g.row_channel), dtype=np.int64, count=len(g.row_channel))
    values = (
        row_off[g.cell_row] + g.cell_local,
        g.cell_row + r0,
        g.nominal,
        g.h_cell + c0,
        gidx[g.h_gid],
        g.h_up,
        g.h_dn,
        g.n_row + r0,
        gidx[g.n_gid],
        g.n_hi,
        g.n_lo,
        g.l_cell + c0,
        gidx[g.l_gid] + _linear_elements(g, stat_chan_offset),
    )
    return dict(zip(_ENTRY_KEYS, values, strict=True))


def _linear_slots(lc: Arr, lp: Arr, ncell: int, npar: int) -> Arr:
    """(cells, m) the parameter of each cell's linear factors, padded with ``npar`` ("one")."""
    counts = np.bincount(lc, minlength=ncell) if lc.size else np.zeros(ncell, dtype=np.int64)
    m = int(counts.max()) if counts.size else 0
    slots = np.full((ncell, max(m, 1)), npar, dtype=np.int64)
    if lc.size:
        orderl = np.argsort(lc, kind="stable")
        sc, sp = lc[orderl], lp[orderl]
        first = np.searchsorted(sc, sc, side="left")
        slots[sc, np.arange(sc.size) - first] = sp
    return slots


def _poi_index(poi_name: Any, par_sets: Mapping[str, slice]) -> int:
    if not (isinstance(poi_name, str) and poi_name in par_sets):
        return -1
    sl = par_sets[poi_name]
    if sl.stop - sl.start != 1:
        raise InferenceInputError(f"the POI {poi_name!r} must be a single parameter")
    return int(sl.start)


def _check_structure(st: Structure) -> None:
    bad = np.flatnonzero(st.lower > st.upper)
    if bad.size:
        raise InferenceInputError(f"parameter {st.par_names[bad[0]]}: lower bound {st.lower[bad[0]]} above upper bound {st.upper[bad[0]]}")
    bad = np.flatnonzero(~(st.g_sigma > 0))
    if bad.size:
        raise InferenceInputError(f"parameter {st.par_names[st.g_idx[bad[0]]]}: constraint width (sigma) {st.g_sigma[bad[0]]} must be > 0")


def _check_channels(groups: Sequence[Group], offsets: Mapping[str, int]) -> None:
    """Every sample's channel is a channel of the workspace."""
    for g in groups:
        for ch in g.row_channel:
            if ch not in offsets:
                raise InferenceInputError(f"a sample refers to channel {ch!r}, which the workspace does not have")


def _parameter_sets(
    groups: Sequence[Group], offsets: dict[str, int], nbins_of: dict[str, int], nb: int, measurement: Mapping[str, Any]
) -> tuple[dict[str, _ParSet], dict[str, dict[str, int]]]:
    """Every parameter set the groups' modifiers require, with pyhf's defaults and the
    measurement's configuration applied; and the staterrors' offsets per channel."""
    user = _user_config(measurement)
    _check_channels(groups, offsets)
    req = _Requirements()
    for g in groups:
        req.add_group(g)
    sets = {name: _DEFAULT_SETS[fam](name, req, user) for name, fam in req.families.items() if fam in _DEFAULT_SETS}
    stat_chan_offset = _staterror_sets(sets, req, groups, offsets, nbins_of, nb)
    for name, ps in sets.items():
        _apply_user(ps, name, user.get(name))
    return sets, stat_chan_offset


def assemble(
    channels: Sequence[tuple[str, int]],
    observed: Mapping[str, Arr],
    groups: Sequence[Group],
    measurement: Mapping[str, Any],
) -> Structure:
    """Join compiled sample groups into one model (channels in pyhf's sorted order)."""
    order, offsets, nb = _layout(channels)
    sets, stat_chan_offset = _parameter_sets(groups, offsets, dict(order), nb, measurement)
    num = _Numbering.of(sets)
    npar = len(num.inits)
    ent = _entries(groups, {name: sl.start for name, sl in num.par_sets.items()}, offsets, stat_chan_offset)
    l_cell, l_par = ent.pop("l_cell"), ent.pop("l_par")
    st = Structure(
        channels=tuple(n for n, _ in order),
        channel_bins=tuple(k for _, k in order),
        observed=np.concatenate([observed[name] for name, _ in order]),
        **ent,
        lin_slots=_linear_slots(l_cell, l_par, int(ent["nominal"].size), npar),
        par_names=tuple(num.par_names),
        par_sets=num.par_sets,
        inits=np.asarray(num.inits, dtype=float),
        lower=np.asarray(num.lower, dtype=float),
        upper=np.asarray(num.upper, dtype=float),
        fixed=np.asarray(num.fixed, dtype=bool),
        poi=_poi_index(measurement.get("config", {}).get("poi"), num.par_sets),
        g_idx=np.asarray(num.g_idx, dtype=np.int64),
        g_aux=np.asarray(num.g_aux, dtype=float),
        g_sigma=np.asarray(num.g_sig, dtype=float),
        p_idx=np.asarray(num.p_idx, dtype=np.int64),
        p_aux=np.asarray(num.p_aux, dtype=float),
        p_tau=np.asarray(num.p_tau, dtype=float),
    )
    _check_structure(st)
    return st
