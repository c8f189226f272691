"""Where the samples' excess δ power lives: in the one-point distribution of the pixels or in where they sit?

The science model's samples have the truth's power in log10 M_cdm (within 2–4%) but 15–25% too much in the
overdensity δ = M / ⟨M⟩ − 1 up to k_Nyq/2, whose power the densest pixels dominate. Two diagnoses from
``python -m hpc_vdm.sample`` outputs (samples.zarr):

* the one-point distribution: quantiles of log10 M_cdm and of δ, truth against samples, pooled over maps;
* a rank remap (an oracle: it uses the truth): each sample's pixels are given the truth's values in the
  sample's own rank order (its spatial pattern kept, its one-point distribution replaced by the truth's). If
  the remapped samples' δ power matches the truth, the excess is in the one-point distribution (too bright a
  tail); if it stays, it is in the placement of the bright pixels (their clustering). The same for the
  brightest 0.03%, 0.1%, 1% and 10% of each map's pixels alone says which part of the distribution it is.

    python docs/results/science/independent/tails.py --samples out/science_indep/samples/samples.zarr \
        --out docs/results/science/independent/tails.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import zarr

from hpc_vdm.spectra.scores import BANDS, mean_of, space_scores

QUANTILES = (0.5, 0.9, 0.99, 0.999, 0.9999)
TOPS = (0.0003, 0.001, 0.01, 0.1)   # brightest fractions of the pixels remapped alone (1, 4, 41, 410 of 64^2)


def remap_to(truth: np.ndarray, draws: np.ndarray, top: float = 1.0) -> np.ndarray:
    """draws (S, n, H, W) with each map's pixel values replaced by its truth's (n, H, W), rank for rank; with
    ``top`` < 1 only the brightest fraction ``top`` of the pixels (the rest keep their values)."""
    s, n = draws.shape[:2]
    flat_d = draws.reshape(s, n, -1)
    p = flat_d.shape[-1]
    keep_below = p - max(int(round(top * p)), 1)                                  # ranks below are left alone
    order = np.argsort(flat_d, axis=-1)                                            # (S, n, P)
    sorted_t = np.sort(truth.reshape(n, -1), axis=-1)                              # (n, P)
    new_sorted = np.take_along_axis(flat_d, order, axis=-1)                        # (S, n, P) ascending
    new_sorted[..., keep_below:] = sorted_t[None, :, keep_below:]
    out = np.empty_like(flat_d)
    np.put_along_axis(out, order, new_sorted, axis=-1)
    return out.reshape(draws.shape)


def band_ratio(draws: np.ndarray, truth: np.ndarray, box_mpc_h: float) -> list[float]:
    """Samples' δ power over the truth's per band, as the report's (mean over maps, samples and bins)."""
    per_map = mean_of([space_scores(truth[i], draws[:, i], box_mpc_h, "overdensity") for i in range(truth.shape[0])])
    return [per_map[b]["pk_ratio"] for b in BANDS]


def analyse(samples_zarr: str) -> dict:
    g = zarr.open_group(samples_zarr, mode="r")
    truth, draws = g["truth"][:], g["samples"][:]                                  # (n, H, W), (S, n, H, W)
    box = float(zarr.open_group(g.attrs["store"], mode="r").attrs["box_size_mpc_h"])
    delta_t = truth / truth.mean(axis=(-2, -1), keepdims=True) - 1
    delta_d = draws / draws.mean(axis=(-2, -1), keepdims=True) - 1
    q = np.array(QUANTILES)
    return {
        "samples": samples_zarr, "n_maps": int(truth.shape[0]), "n_samples": int(draws.shape[0]),
        "bands": list(BANDS),
        "quantiles": list(QUANTILES),
        "log10_M_truth": np.quantile(np.log10(truth), q).tolist(),
        "log10_M_samples": np.quantile(np.log10(draws), q).tolist(),
        "delta_truth": np.quantile(delta_t, q).tolist(),
        "delta_samples": np.quantile(delta_d, q).tolist(),
        "max_log10_M_per_map": {"truth_mean": float(np.log10(truth.max(axis=(-2, -1))).mean()),
                                "samples_mean": float(np.log10(draws.max(axis=(-2, -1))).mean()),
                                "samples_std_over_draws": float(np.log10(draws.max(axis=(-2, -1))).std(0).mean()),
                                "fraction_of_draws_above_truth": float((draws.max(axis=(-2, -1))
                                                                        > truth.max(axis=(-2, -1))).mean())},
        "delta_variance_ratio": float(delta_d.var(axis=(-2, -1)).mean() / delta_t.var(axis=(-2, -1)).mean()),
        "pk_ratio_delta_samples": band_ratio(draws, truth, box),
        "pk_ratio_delta_samples_remapped_to_truth_pdf": band_ratio(remap_to(truth, draws), truth, box),
        **{f"pk_ratio_delta_samples_top_{top:g}_remapped": band_ratio(remap_to(truth, draws, top), truth, box)
           for top in TOPS},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True, help="samples.zarr of python -m hpc_vdm.sample")
    ap.add_argument("--out", required=True, help="JSON file")
    a = ap.parse_args()
    res = analyse(a.samples)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
