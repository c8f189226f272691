"""Is the map mean level's under-dispersion real, and what decides its error? (#24, item 3.)

The science run's 24 test maps come from 4 simulations, so their map mean levels are not 24 independent
checks: the error of a map's mean level may be shared by the maps of one simulation (its cosmology and
astrophysics). This reads ``python -m hpc_vdm.sample`` outputs (samples.zarr) and their maps store, and reports
for the map mean level ℓ = ⟨log10 M_cdm⟩ over the pixels:

* rank coverage (68%, 95%) over all maps and over one map per simulation, with the exact expectation;
* the error truth − posterior mean split into its between-simulation and within-simulation parts, and the
  samples' spread against each;
* the correlation of the error with each CAMELS parameter and with the stellar map's own mean level;
* with ``--baseline``, a deterministic model's error of the level on the same maps (the regressor's estimate of
  E[ℓ | stars]) and its correlation with the model's.

    python docs/results/science/independent/map_level.py --samples out/science_indep/samples/samples.zarr \
        --store out/science_indep/maps.zarr --out docs/results/science/independent/map_level.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import numpy as np
import zarr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hpc_vdm.data import camels  # noqa: E402
from hpc_vdm.evaluate import calibration as cal  # noqa: E402


def levels(samples_zarr: str) -> dict:
    g = zarr.open_group(samples_zarr, mode="r")
    if not g.attrs.get("complete"):
        raise ValueError(f"{samples_zarr} is not complete")
    truth, draws, cond = g["truth"][:], g["samples"][:], g["cond"][:]          # (n, H, W), (S, n, H, W), (n, H, W)
    return {"maps": g["map_index"][:], "level_t": np.log10(truth).mean(axis=(-2, -1)),           # (n,)
            "level_d": np.log10(draws).mean(axis=(-2, -1)),                                      # (S, n)
            "level_star": np.log10(1.0 + cond).mean(axis=(-2, -1))}                              # (n,)


def coverage(level_t: np.ndarray, level_d: np.ndarray, seed: int = 0) -> list[dict]:
    rank = cal.ranks(level_t, level_d, seed)[0]
    return [cal.coverage(rank, level_d.shape[0], lv) for lv in cal.LEVELS]


def baseline_errors(baseline_zarr: str, lv: dict) -> np.ndarray:
    """truth − prediction of the map mean level (n,) of a deterministic model's samples.zarr on the same maps."""
    base = levels(baseline_zarr)
    if not np.array_equal(base["maps"], lv["maps"]):
        raise ValueError(f"{baseline_zarr} holds other maps than the samples: {base['maps'][:4]}… against "
                         f"{lv['maps'][:4]}…")
    return lv["level_t"] - base["level_d"].mean(0)


def analyse(samples_zarr: str, store: str, baseline_zarr: str | None = None) -> dict:
    lv = levels(samples_zarr)
    root = zarr.open_group(store, mode="r")
    sim = root["sim"][:][lv["maps"]]                                                           # (n,)
    params = root["params"][:][sim]                                                            # (n, 6): per simulation
    err = lv["level_t"] - lv["level_d"].mean(0)                                                # (n,)
    spread = lv["level_d"].std(0)                                                              # (n,)
    sims = np.unique(sim)
    sim_err = np.array([err[sim == s].mean() for s in sims])                                  # (n_sims,)
    within = err - sim_err[np.searchsorted(sims, sim)]                                         # (n,)
    per_sim_maps = np.bincount(np.searchsorted(sims, sim))
    first = np.array([np.flatnonzero(sim == s)[0] for s in sims])                              # one map per simulation
    corr = {name: float(np.corrcoef(params[:, j], err)[0, 1]) for j, name in enumerate(camels.PARAM_NAMES)}
    corr["stellar map level"] = float(np.corrcoef(lv["level_star"], err)[0, 1])
    base = {}
    if baseline_zarr:
        e_b = baseline_errors(baseline_zarr, lv)
        sim_b = np.array([e_b[sim == s].mean() for s in sims])
        base = {"baseline": {"samples": str(baseline_zarr), "rms_dex": float(np.sqrt(np.mean(e_b ** 2))),
                             "rms_between_sims_dex": float(np.sqrt(np.mean(sim_b ** 2))),
                             "corr_with_model_error": float(np.corrcoef(e_b, err)[0, 1])}}
    return base | {
        "samples": str(samples_zarr), "store": str(store), "n_maps": int(err.size), "n_sims": int(sims.size),
        "maps_per_sim": sorted(set(per_sim_maps.tolist())), "n_samples": int(lv["level_d"].shape[0]),
        "coverage_all_maps": coverage(lv["level_t"], lv["level_d"]),
        "coverage_one_map_per_sim": coverage(lv["level_t"][first], lv["level_d"][:, first]),
        "error_dex": {"mean": float(err.mean()), "rms": float(np.sqrt(np.mean(err ** 2))),
                      "rms_between_sims": float(np.sqrt(np.mean(sim_err ** 2))),
                      "rms_within_sims": float(np.sqrt(np.sum(within ** 2) / max(err.size - sims.size, 1)))},
        "sample_spread_dex": float(np.sqrt(np.mean(spread ** 2))),
        "z": {"std": float(np.std(err / spread)), "expected_std": float(np.sqrt((lv["level_d"].shape[0] + 1)
                                                                                 / (lv["level_d"].shape[0] - 3)))},
        "corr_error_with": corr,
        "per_map": {"sim": sim.tolist(), "error_dex": err.tolist(), "spread_dex": spread.tolist(),
                    "Omega_m": params[:, 0].tolist(), "sigma_8": params[:, 1].tolist()},
    }


def figure(res: dict, path: Path) -> None:
    p = res["per_map"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for ax, name in zip(axes, ("Omega_m", "sigma_8")):
        ax.errorbar(p[name], p["error_dex"], yerr=p["spread_dex"], fmt="o", ms=3, lw=0.8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel({"Omega_m": r"$\Omega_m$", "sigma_8": r"$\sigma_8$"}[name])
        ax.set_title(f"r = {res['corr_error_with'][name]:+.2f}")
    axes[0].set_ylabel("map mean level: truth − posterior mean [dex]\n(bars: samples' spread)")
    fig.suptitle(f"{res['n_maps']} maps of {res['n_sims']} simulations")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True, help="samples.zarr of python -m hpc_vdm.sample")
    ap.add_argument("--store", required=True, help="the maps store the samples were drawn from")
    ap.add_argument("--baseline", help="samples.zarr of a deterministic model on the same maps (its level error)")
    ap.add_argument("--out", required=True, help="JSON file; a figure beside it (.png)")
    a = ap.parse_args()
    res = analyse(a.samples, a.store, a.baseline)
    out = Path(a.out)
    out.write_text(json.dumps(res, indent=1))
    figure(res, out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in res.items() if k != "per_map"}, indent=1))


if __name__ == "__main__":
    main()
