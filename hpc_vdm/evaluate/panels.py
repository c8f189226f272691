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


def tiled(path: str, bundle, cond: np.ndarray, truth: np.ndarray, reference: str, box_mpc_h: float, png: Path,
          whole_max_pixels: int = 1024) -> dict:
    """The tiled slab of an ``hpc_vdm.tile`` store, three ways (P(k) of δ, k <= k_Nyq of the whole maps):

    1. against the same slab sampled **whole** with the same keyed noise (the store's sampler, steps, seed and
       slab key): the tiling's own error, which should be nil — done when the store was made by this model
       and the slab has at most ``whole_max_pixels`` per side (one window of the whole slab must fit);
    2. the slab's condition against the ``reference`` maps' conditions ``cond`` (N, H, W): whether its input
       is like theirs (best the CV set: the fiducial cosmology of a mock slab, close to TNG's);
    3. the draws against the reference maps' truths: across volumes, so it measures the model together with
       the shift of 2., not the tiling.
    """
    import zarr

    from ..families import DrawSpec, for_bundle
    from ..inference.volumes import Volume
    from ..io.atomic import sha256_file

    root = zarr.open_group(str(path), mode="r")
    if not root.attrs.get("complete"):
        raise ValueError(f"tile store {str(path)!r} is not complete; finish `python -m hpc_vdm.tile` first")
    fp = root.attrs["fingerprint"]
    vol = fp["volume"]
    slab = np.asarray(root["samples"][:, 0], dtype=np.float64)                                # (S, P, P)
    slab_cond = np.asarray(root["cond"][0], dtype=np.float64)                                 # (P, P)
    k = power_spectrum(overdensity(truth[0]), box_mpc_h).k
    k = k[k <= k_nyquist(box_mpc_h, truth.shape[-1]) * (1 + 1e-12)]

    def pk_on_k(fields, box) -> np.ndarray:                                                  # (N, K) on k
        return np.stack([np.interp(k, p.k, p.power) for p in (power_spectrum(overdensity(f), box) for f in fields)])

    p_slab = pk_on_k(slab, vol["box_mpc_h"])
    draws_vs, cond_vs = f"tiled slab draws / {reference} truths", f"slab condition / {reference} conditions"
    ratios = {draws_vs: p_slab / np.median(pk_on_k(truth, box_mpc_h), 0),
              cond_vs: pk_on_k(slab_cond[None], vol["box_mpc_h"]) / np.median(pk_on_k(cond, box_mpc_h), 0)}
    out = {"volume": vol["name"], "samples": int(slab.shape[0]), "slab_pixels": int(vol["pixels"]),
           "reference": f"{reference} maps ({len(truth)})"}
    same_model = fp.get("model", {}).get("sha256") == sha256_file(bundle.path)
    if not same_model:
        out["whole"] = "not drawn whole: the tile store was made by another model"
    elif vol["pixels"] > whole_max_pixels:
        out["whole"] = f"not drawn whole: {vol['pixels']}² slab > evaluate.tile_whole_max_pixels={whole_max_pixels}"
    else:
        key = Volume(vol["name"], vol["box_mpc_h"], vol["slab_mpc_h"], vol["pixel_mpc_h"]).slab_key(*fp["slabs"][0])
        spec = DrawSpec(sampler=fp.get("sampler", "ancestral"), steps=fp["steps"], seed=fp["seed"],
                        clip_log=tuple(fp["clip_log"]) if "clip_log" in fp else None)
        whole = for_bundle(bundle).predict(bundle, slab_cond[None], keys=[key],
                                           samples=list(range(slab.shape[0])), spec=spec)[:, 0]   # (S, P, P)
        ratios["tiled slab draws / the slab drawn whole"] = p_slab / pk_on_k(whole, vol["box_mpc_h"])
        log_t, log_w = np.log10(slab), np.log10(whole)
        out["tiled_minus_whole_rms_over_spread"] = float(np.sqrt(np.mean((log_t - log_w) ** 2))
                                                         / max(float(log_w.std(0).mean()), 1e-300))
    report.ratio_panel(k, ratios, png, f"{vol['name']} slab ({vol['pixels']}², {slab.shape[0]} samples) vs "
                                       f"{truth.shape[-1]}² maps")
    bands = band_edges(box_mpc_h, truth.shape[-1])

    def by_band(r: np.ndarray) -> dict:
        med = np.median(r, 0)
        return {b: float(np.median(med[in_band(k, lo, hi)])) for b, (lo, hi) in bands.items()}

    out |= {"pk_ratio_to_whole_truths_median": float(np.median(np.median(ratios[draws_vs], 0))),
            "pk_ratio_by_band": by_band(ratios[draws_vs]), "cond_pk_ratio_by_band": by_band(ratios[cond_vs])}
    if "tiled slab draws / the slab drawn whole" in ratios:
        out["tiled_over_whole_pk_ratio_by_band"] = by_band(ratios["tiled slab draws / the slab drawn whole"])
    return out
