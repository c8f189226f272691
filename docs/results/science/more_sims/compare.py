"""More training simulations at a fixed budget: the regressor's map mean level and r(k) on the 32 new simulations.

Reads the ``python -m hpc_vdm.sample`` outputs of the two regressors (one prediction per map, the same 64 maps of
out/science_indep) and prints JSON: per model the rms error of the map mean level ⟨log10 M_cdm⟩ (all maps and
between simulations) and r(k) of δ and of log10 M_cdm per band, against the truth.

    python docs/results/science/more_sims/compare.py out/abl/reg32/samples out/abl/reg64/samples > compare.json
"""
from __future__ import annotations

import json
import sys

import numpy as np
import zarr

from hpc_vdm.spectra.scores import BANDS, band_scores, mean_of


def scores(folder: str) -> dict:
    g = zarr.open_group(f"{folder}/samples.zarr", mode="r")
    truth, pred = g["truth"][:], g["samples"][:][0]                                   # (n, H, W) x 2
    store = zarr.open_group(g.attrs["store"], mode="r")
    sim = store["sim"][:][g["map_index"][:]]
    err = np.log10(truth).mean(axis=(-2, -1)) - np.log10(pred).mean(axis=(-2, -1))    # (n,)
    per_sim = np.array([err[sim == s].mean() for s in np.unique(sim)])
    bands = mean_of([band_scores(truth[i], pred[i], float(store.attrs["box_size_mpc_h"])) for i in range(len(truth))])
    return {"model": g.attrs["model"], "n_maps": int(len(truth)),
            "level_rms_dex": float(np.sqrt(np.mean(err ** 2))),
            "level_rms_between_sims_dex": float(np.sqrt(np.mean(per_sim ** 2))),
            "r": {space: [bands[space][b]["r"] for b in BANDS] for space in ("overdensity", "log")}}


if __name__ == "__main__":
    print(json.dumps({f: scores(f) for f in sys.argv[1:]}, indent=1))
