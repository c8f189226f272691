"""The report's wider panels: the 1P set (one parameter at a time), other suites, and a tiled slab.

Each draws what it needs with the bundle (:func:`hpc_vdm.inference.maps.draw_maps`, noise keyed by the
map's store index), returns its numbers for metrics.json and draws its figure.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import camels
from ..data.dataset import stratified_maps
from ..inference.maps import draw_maps, open_for, read_pairs
from ..spectra import overdensity, power_spectrum
from ..spectra.scores import band_edges, in_band, k_nyquist, spectra
from . import report


def _open(bundle, path: str, what: str):
    root, attrs = open_for(bundle, path, what)
    return root, {**attrs, "_path": path}


def _ratios(bundle, root, attrs, maps, kw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, P ratio (m, S, nk), r (m, S, nk)) of the overdensity, k <= k_Nyq, for store maps ``maps``."""
    cond, truth, params = read_pairs(bundle, root, attrs["_path"], maps)
    draws = draw_maps(bundle, cond, maps, params=params, shape=truth.shape[-2:], **kw)        # (S, m, H, W)
    per_map = [spectra(truth[i], draws[:, i], attrs["box_size_mpc_h"]) for i in range(len(maps))]
    return per_map[0][0], np.stack([p[1] for p in per_map]), np.stack([p[2] for p in per_map])


def one_p(bundle, path: str, params: list[str], maps_per_sim: int, kw: dict, png: Path) -> dict:
    """P(k) ratio sampled/true at the lowest, fiducial and highest value of each parameter of a 1P store."""
    root, attrs = _open(bundle, path, "1P store")
    table, per_sim = root["params"][:], int(attrs["maps_per_sim"])
    fid = camels.fiducial_params()
    out, groups, k = {}, {}, None
    for name in params:
        if name not in camels.PARAM_NAMES:
            raise ValueError(f"evaluate.one_p_params: {name!r} is not a CAMELS parameter {camels.PARAM_NAMES}")
        j = camels.PARAM_NAMES.index(name)
        others = np.delete(np.arange(len(fid)), j)
        sims = np.flatnonzero(np.all(np.isclose(table[:, others], fid[others], rtol=1e-6), axis=1))
        if sims.size == 0:
            raise ValueError(f"1P store {path!r} has no simulation varying {name} alone")
        picks = {"low": sims[np.argmin(table[sims, j])], "fiducial": sims[np.argmin(np.abs(table[sims, j] - fid[j]))],
                 "high": sims[np.argmax(table[sims, j])]}
        for label, sim in picks.items():
            maps = [int(sim) * per_sim + m for m in range(min(maps_per_sim, per_sim))]
            k, ratio, r = _ratios(bundle, root, attrs, maps, kw)
            key = f"{name} {label} ({table[sim, j]:.3g})"
            groups[key] = ratio.reshape(-1, k.size)
            out[key] = {"pk_ratio_median": float(np.median(ratio)), "r_mean": float(r.mean()), "maps": maps}
    report.ratio_panel(k, groups, png, "1P: drawn / true P(k) of δ")
    return out


def suites(bundle, stores: dict[str, str], n_maps: int, seed: int, kw: dict, png: Path) -> dict:
    """The model applied to other suites' held-out maps, normalised with its own training statistics."""
    out, groups, k = {}, {}, None
    for name, path in stores.items():
        root, attrs = _open(bundle, path, f"suite {name!r} store")
        split = "test" if attrs["splits"].get("test") else "train"
        maps = stratified_maps(attrs, split, n_maps, seed)
        k, ratio, r = _ratios(bundle, root, attrs, maps, kw)
        groups[f"{name} P ratio"] = ratio.reshape(-1, k.size)
        groups[f"{name} r(k)"] = r.reshape(-1, k.size)
        out[name] = {"pk_ratio_median": float(np.median(ratio)), "r_mean": float(r.mean()), "split": split,
                     "maps": maps}
    report.ratio_panel(k, groups, png, f"trained on {bundle.store.get('suite')}: other suites", "ratio, r(k)")
    return out


def tiled(path: str, truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, png: Path) -> dict:
    """P(k) of a tiled slab's draws against the held-out whole maps' truths and draws (δ, k <= k_Nyq of
    the whole maps)."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    if not root.attrs.get("complete"):
        raise ValueError(f"tile store {str(path)!r} is not complete; finish `python -m hpc_vdm.tile` first")
    vol = root.attrs["fingerprint"]["volume"]
    slab = np.asarray(root["samples"][:, 0], dtype=np.float64)                                # (S, P, P)
    big = [power_spectrum(overdensity(s), vol["box_mpc_h"]) for s in slab]
    small_t = [power_spectrum(overdensity(t), box_mpc_h) for t in truth]
    small_s = [power_spectrum(overdensity(d), box_mpc_h) for d in draws.reshape(-1, *truth.shape[1:])]
    k_max = k_nyquist(box_mpc_h, truth.shape[-1])
    k_small = small_t[0].k
    keep = k_small <= k_max * (1 + 1e-12)
    interp = np.stack([np.interp(k_small[keep], b.k, b.power) for b in big])
    p_t = np.stack([p.power[keep] for p in small_t])
    p_s = np.stack([p.power[keep] for p in small_s])
    report.ratio_panel(k_small[keep], {"tiled slab / whole-map truths": interp / np.median(p_t, 0),
                                      "whole-map samples / truths": p_s / np.median(p_t, 0)}, png,
                       f"{vol['name']} slab ({vol['pixels']}², {slab.shape[0]} samples) vs {truth.shape[-1]}² maps")
    ratio, k = np.median(interp, 0) / np.median(p_t, 0), k_small[keep]
    by_band = {b: float(np.median(ratio[in_band(k, lo, hi)]))
               for b, (lo, hi) in band_edges(box_mpc_h, truth.shape[-1]).items()}
    return {"volume": vol["name"], "samples": int(slab.shape[0]), "slab_pixels": int(vol["pixels"]),
            "pk_ratio_to_whole_truths_median": float(np.median(ratio)), "pk_ratio_by_band": by_band}
