"""Posterior samples of whole maps from a model bundle: the one sampling path of ``sample`` and ``evaluate``.

Each map is sampled whole on its torus by the fused sampler with noise keyed by (seed, map key, sample,
step), so map ``key`` with seed ``s`` gives the same draws wherever it is sampled — in validation
(sample 0), ``python -m hpc_vdm.sample`` or ``python -m hpc_vdm.evaluate``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..data.store import open_store, read_maps
from ..diffusion import sample_tiled
from .volumes import check_scale


def open_for(bundle, path: str, what: str = "store"):
    """(root, attrs) of a maps store that holds the model's condition and target fields at its pixel scale."""
    root = open_store(path)
    attrs = dict(root.attrs)
    d = bundle.norm
    missing = [f for f in (d.condition, d.target) if f not in attrs.get("fields", [])]
    if missing:
        raise ValueError(f"{what} {path!r} has no {missing} maps (fields {attrs.get('fields')}); the model maps "
                         f"{d.condition} -> {d.target}")
    check_scale("pixel scale", "pixels", bundle.store["pixel_size_mpc_h"], attrs["pixel_size_mpc_h"],
                f"{what} {path!r}")
    return root, attrs


def read_pairs(bundle, root, path: str, maps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(condition (n, H, W), truth (n, H, W), CAMELS parameter rows (n, 6)) of store maps ``maps``, checked."""
    d = bundle.norm
    cond = read_maps(root, d.condition, maps, path).astype(np.float64)
    truth = read_maps(root, d.target, maps, path).astype(np.float64)
    params = root["params"][:][np.asarray(root["sim"][:])[list(maps)]]
    return cond, truth, params


def draw_maps(bundle, cond_maps: np.ndarray, keys: Sequence[int], *, n_samples: int, steps: int, seed: int,
              device="cpu", params: np.ndarray | None = None, progress: bool = False, desc: str = "sample") -> np.ndarray:
    """(S, n, H, W) physical target maps for condition maps (n, H, W) in physical units.

    ``keys`` (n,) key each map's noise (store indices); ``params`` (n, 6) CAMELS rows for a model that
    conditions on them (ignored otherwise).
    """
    cond_maps = np.asarray(cond_maps, dtype=np.float64)
    if cond_maps.ndim != 3 or len(keys) != cond_maps.shape[0]:
        raise ValueError(f"expected condition maps (n, H, W) and n keys, got {cond_maps.shape} and {len(keys)}")
    vdm, norm = bundle.module.to(device), bundle.norm
    h = cond_maps.shape[-1]
    draws = np.empty((n_samples, *cond_maps.shape))
    for k, key in enumerate(tqdm(keys, desc=desc, unit="map", disable=not progress)):
        cond = torch.from_numpy(norm.condition_in(cond_maps[k]))[None]                   # (1, H, W)
        p = bundle.params(params[k]) if (params is not None and bundle.conditions_on_params) else bundle.params()
        z = sample_tiled(vdm, cond, tile=h, halo=0, n_steps=steps, seed=seed, slab=int(key),
                         samples=range(n_samples), batch_size=1, device=device, params=p)
        draws[:, k] = norm.target_out(z.numpy())
    return draws
