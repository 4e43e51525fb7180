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
from collections.abc import Mapping, Sequence
from typing import Any

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


def compile_sample(channel: str, sample: Mapping[str, Any], nbins: int, where: str) -> SampleBlock:
    """Compile one sample (``where`` is its JSON path, for error messages)."""
    # negative yields are allowed, as in pyhf: the inputs check the background rate (E080)
    nom = _floats(sample.get("data"), f"{where}.data")
    if nom.size != nbins:
        raise InferenceInputError(f"{where}.data: {nom.size} bins, the channel has {nbins}")
    mods: dict[tuple[str, str], tuple[int, Mapping[str, Any]]] = {}
    raw = sample.get("modifiers", [])
    if not isinstance(raw, list):
        raise InferenceInputError(f"{where}.modifiers: expected a list")
    for k, m in enumerate(raw):
        if not isinstance(m, Mapping) or not isinstance(m.get("name"), str) or not isinstance(m.get("type"), str):
            raise InferenceInputError(f"{where}.modifiers[{k}]: a modifier needs a string 'name' and 'type'")
        if m["type"] not in MODIFIER_TYPES:
            raise InferenceInputError(f"{where}.modifiers[{k}].type: unknown modifier type {m['type']!r} (expected one of {', '.join(MODIFIER_TYPES)})")
        mods[(m["type"], m["name"])] = (k, m)  # pyhf keeps the last of duplicates
    names: dict[str, int] = {}
    h_k: list[int] = []
    h_hi: list[Any] = []
    h_lo: list[Any] = []
    h_n: list[int] = []
    n_k: list[int] = []
    n_n: list[int] = []
    n_hl: list[Any] = []
    l_n: list[int] = []
    l_kind: list[int] = []
    unc: list[tuple[str, str, Arr]] = []
    for (mtype, name), (k, m) in mods.items():
        nid = names.setdefault(name, len(names))
        data = m.get("data")
        if mtype == "histosys":
            if not isinstance(data, Mapping) or "hi_data" not in data or "lo_data" not in data:
                raise InferenceInputError(f"{where}.modifiers[{k}].data: histosys needs {{'hi_data': [...], 'lo_data': [...]}}")
            h_k.append(k)
            h_n.append(nid)
            h_hi.append(data["hi_data"])
            h_lo.append(data["lo_data"])
        elif mtype == "normsys":
            if not isinstance(data, Mapping) or "hi" not in data or "lo" not in data:
                raise InferenceInputError(f"{where}.modifiers[{k}].data: normsys needs {{'hi': x, 'lo': y}}")
            n_k.append(k)
            n_n.append(nid)
            n_hl.append((data["hi"], data["lo"]))
        else:
            if mtype in ("staterror", "shapesys"):
                # any sign, as pyhf: staterror squares it, shapesys fixes bins where it is <= 0
                u = _floats(data, f"{where}.modifiers[{k}].data")
                if u.size != nbins:
                    raise InferenceInputError(f"{where}.modifiers[{k}].data: {u.size} bins, the sample has {nbins}")
                unc.append((mtype, name, u))
            l_n.append(nid)
            l_kind.append(_LIN_KIND[mtype])
    cells = np.arange(nbins)
    if h_k:
        hi = _as_matrix(h_hi, nbins, f"{where}.modifiers[histosys].data.hi_data", "hi_data")
        lo = _as_matrix(h_lo, nbins, f"{where}.modifiers[histosys].data.lo_data", "lo_data")
        for arr, key in ((hi, "hi_data"), (lo, "lo_data")):
            bad = np.argwhere(~np.isfinite(arr))
            if bad.size:
                r, c = bad[0]
                raise InferenceInputError(f"{where}.modifiers[{h_k[r]}].data.{key}[{c}]: {float(arr[r, c])!r} is not a finite number")
        h_up = (hi - nom).ravel()
        h_dn = (nom - lo).ravel()
    else:
        h_up = h_dn = np.zeros(0)
    if n_k:
        try:
            hl = np.asarray(n_hl, dtype=float)
        except (TypeError, ValueError):
            raise InferenceInputError(f"{where}: a normsys modifier has non-numeric 'hi'/'lo'") from None
        badn = np.flatnonzero(~(np.isfinite(hl).all(axis=1) & (hl > 0).all(axis=1)))
        if badn.size:
            j = int(badn[0])
            raise InferenceInputError(
                f"{where}.modifiers[{n_k[j]}].data: normsys factors must be finite and > 0, got hi={float(hl[j, 0])!r}, lo={float(hl[j, 1])!r}"
            )
    else:
        hl = np.zeros((0, 2))
    nh = len(h_k)
    nl = len(l_n)
    return SampleBlock(
        channel=channel,
        sample=str(sample.get("name")),
        nominal=nom,
        names=tuple(names),
        h_cell=np.tile(cells, nh),
        h_id=np.repeat(np.asarray(h_n, dtype=np.int64), nbins),
        h_up=h_up,
        h_dn=h_dn,
        n_id=np.asarray(n_n, dtype=np.int64),
        n_hi=hl[:, 0].copy(),
        n_lo=hl[:, 1].copy(),
        l_cell=np.tile(cells, nl),
        l_id=np.repeat(np.asarray(l_n, dtype=np.int64), nbins),
        l_kind=np.repeat(np.asarray(l_kind, dtype=np.int64), nbins),
        uncertainties=tuple(unc),
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
        families: dict[str, str] = {}
        shapefactor_n: dict[str, int] = {}
        shapesys: dict[str, tuple[str, Arr, Arr]] = {}
        stat_channels: dict[str, dict[str, set[str]]] = {}
        stat_unc: list[tuple[str, str, str, Arr]] = []
        cell_row, cell_local, h_cell, h_gid, n_row, n_gid, l_cell, l_gid = ([] for _ in range(8))
        c0 = 0
        for r, b in enumerate(blocks):
            nbins = b.nominal.size
            gmap = np.fromiter((names.setdefault(n, len(names)) for n in b.names), dtype=np.int64, count=len(b.names))
            cell_row.append(np.full(nbins, r, dtype=np.int64))
            cell_local.append(np.arange(nbins))
            h_cell.append(b.h_cell + c0)
            h_gid.append(gmap[b.h_id] if b.h_id.size else b.h_id)
            n_row.append(np.full(b.n_id.size, r, dtype=np.int64))
            n_gid.append(gmap[b.n_id] if b.n_id.size else b.n_id)
            l_cell.append(b.l_cell + c0)
            l_gid.append(gmap[b.l_id] if b.l_id.size else b.l_id)
            c0 += nbins
            for mtype, name in b.kinds:
                fam = _FAMILY[mtype]
                if families.setdefault(name, fam) != fam:
                    raise InferenceInputError(
                        f"parameter {name!r} is used by modifiers of incompatible types ({families[name]} and {mtype}); use unique modifier names"
                    )
                if mtype == "shapefactor" and shapefactor_n.setdefault(name, nbins) != nbins:
                    raise InferenceInputError(f"shapefactor {name!r} is used on channels with different numbers of bins")
                elif mtype == "staterror":
                    stat_channels.setdefault(name, {}).setdefault(b.sample, set()).add(b.channel)
            for mtype, name, u in b.uncertainties:
                if mtype == "shapesys":
                    if name in shapesys:
                        raise InferenceInputError(f"shapesys {name!r} is used by more than one sample (pyhf forbids sharing a shapesys parameter)")
                    shapesys[name] = (b.channel, b.nominal, u)
                else:
                    stat_unc.append((name, b.channel, b.sample, u))

        def cat(parts: list[Arr], dtype: Any = np.int64) -> Arr:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        return cls(
            blocks=tuple(blocks),
            names=tuple(names),
            row_channel=tuple(b.channel for b in blocks),
            cell_row=cat(cell_row),
            cell_local=cat(cell_local),
            nominal=cat([b.nominal for b in blocks], float),
            h_cell=cat(h_cell),
            h_gid=cat(h_gid),
            h_up=cat([b.h_up for b in blocks], float),
            h_dn=cat([b.h_dn for b in blocks], float),
            n_row=cat(n_row),
            n_gid=cat(n_gid),
            n_hi=cat([b.n_hi for b in blocks], float),
            n_lo=cat([b.n_lo for b in blocks], float),
            l_cell=cat(l_cell),
            l_gid=cat(l_gid),
            l_kind=cat([b.l_kind for b in blocks]),
            families=families,
            shapefactor_n=shapefactor_n,
            shapesys=shapesys,
            stat_channels=stat_channels,
            stat_unc=stat_unc,
        )


@dataclasses.dataclass
class _ParSet:
    family: str
    n: int
    inits: list[float]
    bounds: list[tuple[float, float]]
    fixed: list[bool]
    aux: list[float] | None = None
    sigmas: list[float] | None = None
    tau: list[float] | None = None
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
    if not user:
        return
    where = f"measurement parameter {name!r}"

    def vec(key: str, n: int) -> list[Any] | None:
        if key not in user:
            return None
        v = user[key]
        if not isinstance(v, list) or len(v) != n:
            raise InferenceInputError(f"{where}: {key} needs {n} values, got {v!r}")
        return v

    inits = vec("inits", ps.n)
    if inits is not None:
        ps.inits = [float(x) for x in inits]
    bounds = vec("bounds", ps.n)
    if bounds is not None:
        try:
            ps.bounds = [(float(b[0]), float(b[1])) for b in bounds]
        except (TypeError, ValueError, IndexError):
            raise InferenceInputError(f"{where}: bounds must be [[lo, hi], ...]") from None
    if "fixed" in user:
        f = user["fixed"]
        if isinstance(f, bool):
            ps.fixed = [f] * ps.n
        elif isinstance(f, list) and len(f) == ps.n and all(isinstance(x, bool) for x in f):
            ps.fixed = list(f)
        else:
            raise InferenceInputError(f"{where}: fixed must be a boolean or {ps.n} booleans")
    for key in ("auxdata", "sigmas"):
        v = vec(key, ps.n)
        if v is None:
            continue
        if ps.family in ("normfactor", "shapefactor"):
            raise InferenceInputError(f"{where} does not use the {key} attribute")
        if key == "auxdata":
            ps.aux = [float(x) for x in v]
        elif ps.family == "shapesys":
            raise InferenceInputError(f"{where} does not use the sigmas attribute (shapesys is Poisson-constrained)")
        else:
            ps.sigmas = [float(x) for x in v]


def assemble(
    channels: Sequence[tuple[str, int]],
    observed: Mapping[str, Arr],
    groups: Sequence[Group],
    measurement: Mapping[str, Any],
) -> Structure:
    """Join compiled sample groups into one model (channels in pyhf's sorted order)."""
    order = sorted(channels)
    offsets: dict[str, int] = {}
    nbins_of = dict(order)
    nb = 0
    for name, n in order:
        offsets[name] = nb
        nb += n
    obs = np.concatenate([observed[name] for name, _ in order])
    cfg = measurement.get("config", {})
    user = _user_config(measurement)
    for g in groups:
        for ch in g.row_channel:
            if ch not in offsets:
                raise InferenceInputError(f"a sample refers to channel {ch!r}, which the workspace does not have")
    # merge what the groups require
    families: dict[str, str] = {}
    shapefactor_n: dict[str, int] = {}
    shapesys: dict[str, tuple[str, Arr, Arr]] = {}
    stat_channels: dict[str, dict[str, set[str]]] = {}
    stat_unc: list[tuple[str, str, str, Arr]] = []
    for g in groups:
        for name, fam in g.families.items():
            if families.setdefault(name, fam) != fam:
                raise InferenceInputError(
                    f"parameter {name!r} is used by modifiers of incompatible types ({families[name]} and {fam}); use unique modifier names"
                )
        for name, n in g.shapefactor_n.items():
            if shapefactor_n.setdefault(name, n) != n:
                raise InferenceInputError(f"shapefactor {name!r} is used on channels with different numbers of bins")
        for name, v in g.shapesys.items():
            if name in shapesys:
                raise InferenceInputError(f"shapesys {name!r} is used by more than one sample (pyhf forbids sharing a shapesys parameter)")
            shapesys[name] = v
        for name, per in g.stat_channels.items():
            dst = stat_channels.setdefault(name, {})
            for smp, chs in per.items():
                dst.setdefault(smp, set()).update(chs)
        stat_unc += g.stat_unc
    sets: dict[str, _ParSet] = {}
    for name, fam in families.items():
        if fam == "alpha":
            sets[name] = _ParSet(fam, 1, [0.0], [(-5.0, 5.0)], [False], aux=[0.0], sigmas=[1.0])
        elif fam == "normfactor":
            sets[name] = _ParSet(fam, 1, [1.0], [(0.0, 10.0)], [False])
        elif fam == "shapefactor":
            n = shapefactor_n[name]
            sets[name] = _ParSet(fam, n, [1.0] * n, [(0.0, 10.0)] * n, [False] * n)
        elif fam == "lumi":
            u = user.get(name, {})
            missing = [k for k in ("inits", "bounds", "auxdata", "sigmas") if k not in u]
            if missing:
                raise InferenceInputError(f"lumi modifier {name!r} needs {', '.join(missing)} in the measurement's parameter configuration")
            sets[name] = _ParSet(fam, 1, [0.0], [(0.0, 0.0)], [False], aux=[0.0], sigmas=[1.0])
        elif fam == "shapesys":
            _, nom, u = shapesys[name]
            valid = (nom > 0) & (u > 0)
            tau = np.where(valid, nom**2 / np.where(valid, u, 1.0) ** 2, 1.0)
            n = nom.size
            sets[name] = _ParSet(fam, n, [1.0] * n, [(1e-10, 10.0)] * n, [bool(not v) for v in valid], aux=list(tau), tau=list(tau))
    # staterror: combined relative uncertainty over every sample that carries the modifier
    stat_chan_offset: dict[str, dict[str, int]] = {}
    nom_full: dict[str, Arr] = {}  # sample name -> its nominal over all bins (0 where absent)
    if stat_channels:
        for g in groups:
            for b in g.blocks:
                full = nom_full.setdefault(b.sample, np.zeros(nb))
                full[offsets[b.channel] : offsets[b.channel] + b.nominal.size] += b.nominal
    unc_by_name: dict[str, list[tuple[str, Arr]]] = {}
    for sname, ch, _smp, v in stat_unc:
        unc_by_name.setdefault(sname, []).append((ch, v))
    for name, per_sample in stat_channels.items():
        masks = list(per_sample.values())
        if any(m != masks[0] for m in masks):
            raise InferenceInputError(f"staterror {name!r}: the samples that carry it do not cover the same channels (pyhf requires one consistent mask)")
        chans = sorted(masks[0])
        nomsall = np.sum([nom_full[smp] for smp in per_sample], axis=0)
        rel2 = np.zeros(nb)
        for ch, v in unc_by_name.get(name, []):
            seg = slice(offsets[ch], offsets[ch] + v.size)
            tot = nomsall[seg]
            rel2[seg] += np.where(tot > 0, (v / np.where(tot > 0, tot, 1.0)) ** 2, 0.0)
        bins = np.concatenate([np.arange(offsets[ch], offsets[ch] + nbins_of[ch]) for ch in chans])
        sig = np.sqrt(rel2[bins])
        fixed = [bool(x == 0) for x in sig]
        sig = np.where(sig == 0, 1.0, sig)
        n = int(bins.size)
        sets[name] = _ParSet("staterror", n, [1.0] * n, [(1e-10, 10.0)] * n, fixed, aux=[1.0] * n, sigmas=list(sig))
        off = 0
        stat_chan_offset[name] = {}
        for ch in chans:
            stat_chan_offset[name][ch] = off
            off += nbins_of[ch]
    for name, ps in sets.items():
        _apply_user(ps, name, user.get(name))

    # numbering (sorted by name, as pyhf's config.parameters)
    par_names: list[str] = []
    par_sets: dict[str, slice] = {}
    inits: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    fixed_l: list[bool] = []
    g_idx: list[int] = []
    g_aux: list[float] = []
    g_sig: list[float] = []
    p_idx: list[int] = []
    p_aux: list[float] = []
    p_tau: list[float] = []
    for name in sorted(sets):
        ps = sets[name]
        start = len(inits)
        par_sets[name] = slice(start, start + ps.n)
        if ps.family in ("alpha", "normfactor", "lumi"):
            par_names.append(name)
        else:
            par_names += [f"{name}[{i}]" for i in range(ps.n)]
        inits += ps.inits
        lower += [bd[0] for bd in ps.bounds]
        upper += [bd[1] for bd in ps.bounds]
        fixed_l += ps.fixed
        if ps.family == "shapesys":
            assert ps.aux is not None
            assert ps.tau is not None
            p_idx += list(range(start, start + ps.n))
            p_aux += ps.aux
            p_tau += ps.tau
        elif ps.family not in ("normfactor", "shapefactor"):
            assert ps.aux is not None
            assert ps.sigmas is not None
            g_idx += list(range(start, start + ps.n))
            g_aux += ps.aux
            g_sig += ps.sigmas
    npar = len(inits)
    index = {name: sl.start for name, sl in par_sets.items()}

    cell_bin, cell_row, nominal, h_cell, h_par, h_up, h_dn, n_row, n_par, n_hi, n_lo, l_cell, l_par = ([] for _ in range(13))
    c0 = r0 = 0
    for g in groups:
        gidx = np.fromiter((index[n] for n in g.names), dtype=np.int64, count=len(g.names))
        row_off = np.fromiter((offsets[ch] for ch in g.row_channel), dtype=np.int64, count=len(g.row_channel))
        cell_bin.append(row_off[g.cell_row] + g.cell_local)
        cell_row.append(g.cell_row + r0)
        nominal.append(g.nominal)
        h_cell.append(g.h_cell + c0)
        h_par.append(gidx[g.h_gid])
        h_up.append(g.h_up)
        h_dn.append(g.h_dn)
        n_row.append(g.n_row + r0)
        n_par.append(gidx[g.n_gid])
        n_hi.append(g.n_hi)
        n_lo.append(g.n_lo)
        elem = np.zeros(g.l_cell.size, dtype=np.int64)
        local = g.cell_local[g.l_cell]
        vec = (g.l_kind == LIN_SHAPEFACTOR) | (g.l_kind == LIN_SHAPESYS)
        elem[vec] = local[vec]
        stat = np.flatnonzero(g.l_kind == LIN_STATERROR)
        if stat.size:
            rows = g.cell_row[g.l_cell[stat]]
            key = g.l_gid[stat] * (len(g.row_channel) + 1) + rows
            uniq, inv = np.unique(key, return_inverse=True)
            offs = np.array(
                [stat_chan_offset[g.names[int(k) // (len(g.row_channel) + 1)]][g.row_channel[int(k) % (len(g.row_channel) + 1)]] for k in uniq], dtype=np.int64
            )
            elem[stat] = offs[inv] + local[stat]
        l_cell.append(g.l_cell + c0)
        l_par.append(gidx[g.l_gid] + elem)
        c0 += g.nominal.size
        r0 += len(g.row_channel)
    ncell = c0

    def cat(parts: list[Arr], dtype: Any = np.int64) -> Arr:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    lc = cat(l_cell)
    lp = cat(l_par)
    counts = np.bincount(lc, minlength=ncell) if lc.size else np.zeros(ncell, dtype=np.int64)
    m = int(counts.max()) if counts.size else 0
    slots = np.full((ncell, max(m, 1)), npar, dtype=np.int64)
    if lc.size:
        orderl = np.argsort(lc, kind="stable")
        sc, sp = lc[orderl], lp[orderl]
        first = np.searchsorted(sc, sc, side="left")
        slots[sc, np.arange(sc.size) - first] = sp
    poi_name = cfg.get("poi")
    poi = -1
    if isinstance(poi_name, str) and poi_name in par_sets:
        sl = par_sets[poi_name]
        if sl.stop - sl.start != 1:
            raise InferenceInputError(f"the POI {poi_name!r} must be a single parameter")
        poi = sl.start
    st = Structure(
        channels=tuple(n for n, _ in order),
        channel_bins=tuple(k for _, k in order),
        observed=obs,
        cell_bin=cat(cell_bin),
        cell_row=cat(cell_row),
        nrows=r0,
        nominal=cat(nominal, float),
        h_cell=cat(h_cell),
        h_par=cat(h_par),
        h_up=cat(h_up, float),
        h_dn=cat(h_dn, float),
        n_row=cat(n_row),
        n_par=cat(n_par),
        n_hi=cat(n_hi, float),
        n_lo=cat(n_lo, float),
        lin_slots=slots,
        par_names=tuple(par_names),
        par_sets=par_sets,
        inits=np.asarray(inits, dtype=float),
        lower=np.asarray(lower, dtype=float),
        upper=np.asarray(upper, dtype=float),
        fixed=np.asarray(fixed_l, dtype=bool),
        poi=poi,
        g_idx=np.asarray(g_idx, dtype=np.int64),
        g_aux=np.asarray(g_aux, dtype=float),
        g_sigma=np.asarray(g_sig, dtype=float),
        p_idx=np.asarray(p_idx, dtype=np.int64),
        p_aux=np.asarray(p_aux, dtype=float),
        p_tau=np.asarray(p_tau, dtype=float),
    )
    bad = np.flatnonzero(st.lower > st.upper)
    if bad.size:
        raise InferenceInputError(f"parameter {par_names[bad[0]]}: lower bound {st.lower[bad[0]]} above upper bound {st.upper[bad[0]]}")
    bad = np.flatnonzero(~(st.g_sigma > 0))
    if bad.size:
        raise InferenceInputError(f"parameter {par_names[st.g_idx[bad[0]]]}: constraint width (sigma) {st.g_sigma[bad[0]]} must be > 0")
    return st
