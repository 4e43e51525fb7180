"""Generated HistFactory workspaces for the fast engine's tests (deterministic by seed).

* :func:`tiny_tau_model`: >= 60 parameters with normsys, histosys, staterror and one shapesys
  whose uncertainty is *absolute* 0.001 on a yield of 435.065 (relative 2.3e-6, Poisson
  constraint tau = 1/r^2 ~ 1.9e11), as on an ATLAS 3-lepton likelihood;
* :func:`many_normsys_model`: ~3,300 normsys on single-bin channels;
* :func:`many_histosys_model`: hundreds of histosys on a few multi-bin channels.

``tests/golden/make_fast_golden.py`` stores pyhf's values for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: ATLAS 1Lbb points whose stored pyhf reference (reference_pyhf_cls.json: pyhf from its nominal
#: start) is a local minimum: the fit at mu = 1 has a lower minimum, by 0.146 in pyhf's own -ln L
#: (tests/test_infer_fast.py::test_1lbb_reference_at_a_local_minimum_is_above_the_fast_minimum)
LBB_REFERENCE_AT_LOCAL_MINIMUM = frozenset({"C1N2_Wh_hbb_375_50"})


def _measurement(poi: str = "mu", parameters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{"name": "meas", "config": {"poi": poi, "parameters": parameters or []}}]


def tiny_tau_model(seed: int = 0) -> dict[str, Any]:
    """6 channels of 4 bins: signal (POI ``mu``), a background with 20 normsys, 16 histosys and
    staterror, and in channel 0 a second background whose shapesys has absolute uncertainty
    0.001 on 435.065 in bin 0: 65 parameters."""
    rng = np.random.default_rng(seed)
    channels, observations = [], []
    for c in range(6):
        nom = rng.uniform(40.0, 160.0, 4)
        mods: list[dict[str, Any]] = []
        for k in rng.choice(20, 8, replace=False):
            mods.append({"name": f"ns_{k}", "type": "normsys", "data": {"hi": float(1 + rng.uniform(0.02, 0.2)), "lo": float(1 - rng.uniform(0.02, 0.2))}})
        for k in rng.choice(16, 6, replace=False):
            up = nom * (1 + rng.uniform(0.01, 0.1, 4))
            dn = nom * (1 - rng.uniform(0.01, 0.1, 4))
            mods.append({"name": f"hs_{k}", "type": "histosys", "data": {"hi_data": up.tolist(), "lo_data": dn.tolist()}})
        mods.append({"name": f"staterror_ch{c}", "type": "staterror", "data": (nom * rng.uniform(0.02, 0.08, 4)).tolist()})
        signal = rng.uniform(2.0, 15.0, 4)
        samples = [
            {"name": "signal", "data": signal.tolist(), "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": nom.tolist(), "modifiers": mods},
        ]
        total = nom.copy()
        if c == 0:
            fake = np.array([435.065, 120.0, 80.0, 40.0])
            unc = np.array([0.001, 12.0, 8.0, 4.0])
            samples.append({"name": "fakes", "data": fake.tolist(), "modifiers": [{"name": "shapesys_fakes", "type": "shapesys", "data": unc.tolist()}]})
            total += fake
        channels.append({"name": f"SR{c}", "samples": samples})
        observations.append({"name": f"SR{c}", "data": np.round(total * rng.uniform(0.9, 1.1, 4)).tolist()})
    return {"channels": channels, "observations": observations, "measurements": _measurement(), "version": "1.0.0"}


def many_normsys_model(seed: int = 0, *, channels: int = 330, per_channel: int = 10) -> dict[str, Any]:
    """``channels`` single-bin channels, each a background with ``per_channel`` normsys of its
    own (3,300 by default) and a signal scaled by ``mu`` in every third channel."""
    rng = np.random.default_rng(seed)
    chans, observations = [], []
    for c in range(channels):
        nom = float(rng.uniform(5.0, 200.0))
        mods = [
            {"name": f"ns_{c}_{k}", "type": "normsys", "data": {"hi": float(1 + rng.uniform(0.005, 0.15)), "lo": float(1 - rng.uniform(0.005, 0.15))}}
            for k in range(per_channel)
        ]
        samples = [{"name": "bkg", "data": [nom], "modifiers": mods}]
        total = nom
        if c % 3 == 0:
            sig = float(rng.uniform(0.5, 5.0))
            samples.insert(0, {"name": "signal", "data": [sig], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]})
        chans.append({"name": f"SR{c:04d}", "samples": samples})
        observations.append({"name": f"SR{c:04d}", "data": [float(rng.poisson(total))]})
    return {"channels": chans, "observations": observations, "measurements": _measurement(), "version": "1.0.0"}


def many_histosys_model(seed: int = 0, *, channels: int = 4, bins: int = 10, histosys: int = 300) -> dict[str, Any]:
    """``channels`` channels of ``bins`` bins; ``histosys`` shape systematics, each on two
    channels' background (so they are coupled), plus staterror and a signal scaled by ``mu``."""
    rng = np.random.default_rng(seed)
    noms = [rng.uniform(20.0, 300.0, bins) for _ in range(channels)]
    mods: list[list[dict[str, Any]]] = [[] for _ in range(channels)]
    for k in range(histosys):
        for c in rng.choice(channels, 2, replace=False):
            nom = noms[c]
            up = nom * (1 + rng.uniform(0.0, 0.02, bins))
            dn = nom * (1 - rng.uniform(0.0, 0.02, bins))
            mods[c].append({"name": f"hs_{k}", "type": "histosys", "data": {"hi_data": up.tolist(), "lo_data": dn.tolist()}})
    chans, observations = [], []
    for c in range(channels):
        nom = noms[c]
        stat = {"name": f"staterror_ch{c}", "type": "staterror", "data": (nom * rng.uniform(0.01, 0.05, bins)).tolist()}
        sig = rng.uniform(0.5, 4.0, bins)
        chans.append(
            {
                "name": f"CH{c}",
                "samples": [
                    {"name": "signal", "data": sig.tolist(), "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
                    {"name": "bkg", "data": nom.tolist(), "modifiers": [*mods[c], stat]},
                ],
            }
        )
        observations.append({"name": f"CH{c}", "data": rng.poisson(nom).astype(float).tolist()})
    return {"channels": chans, "observations": observations, "measurements": _measurement(), "version": "1.0.0"}
