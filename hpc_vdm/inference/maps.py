"""Held-out maps through a trained map model: the one drawing path of ``sample``, ``evaluate`` and its panels.

Each map is drawn whole on its torus by its family's ``predict`` with noise keyed by (seed, map key,
sample, step), so map ``key`` with seed ``s`` gives the same draws wherever it is drawn — in validation
(sample 0), ``python -m hpc_vdm.sample`` or ``python -m hpc_vdm.evaluate``. A deterministic family draws
once per map whatever ``n_samples`` asks.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.store import open_store, read_maps
from ..families import DrawSpec, MapsFamily, for_bundle
from .volumes import check_scale


def open_for(bundle, path: str, what: str = "store"):
    """(root, attrs) of a maps store that holds the model's condition and target fields at its pixel scale."""
    if not isinstance(for_bundle(bundle), MapsFamily):
        raise ValueError(f"{str(bundle.path)!r} is a {bundle.kind} model, not a map model; it cannot be applied "
                         f"to the maps of {what} {path!r}")
    root = open_store(path)
    attrs = dict(root.attrs)
    d = bundle.norm
    missing = [f for f in (d.condition, d.target) if f and f not in attrs.get("fields", [])]
    if missing:
        raise ValueError(f"{what} {path!r} has no {missing} maps (fields {attrs.get('fields')}); the model maps "
                         f"{d.condition or '(no map)'} -> {d.target}")
    check_scale("pixel scale", "pixels", bundle.store["pixel_size_mpc_h"], attrs["pixel_size_mpc_h"],
                f"{what} {path!r}")
    return root, attrs


def read_pairs(bundle, root, path: str, maps) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(condition (n, H, W) or None, truth (n, H, W), CAMELS parameter rows (n, 6)) of store maps ``maps``."""
    d = bundle.norm
    cond = read_maps(root, d.condition, maps, path).astype(np.float64) if d.condition else None
    truth = read_maps(root, d.target, maps, path).astype(np.float64)
    params = root["params"][:][np.asarray(root["sim"][:])[list(maps)]]
    return cond, truth, params


def draw_maps(bundle, cond: np.ndarray | None, keys: Sequence[int], *, n_samples: int, spec: DrawSpec,
              params: np.ndarray | None = None, shape=None) -> np.ndarray:
    """(S, n, H, W) physical target maps of condition maps (n, H, W) in physical units: ``n_samples``
    posterior samples (1 draw for a deterministic family); ``keys`` (n,) key each map's noise (store
    indices); ``params`` (n, 6) CAMELS rows for a model that conditions on them."""
    family = for_bundle(bundle)
    samples = [0] if family.deterministic else list(range(n_samples))
    return family.predict(bundle, cond, keys=list(keys), samples=samples, spec=spec, params=params, shape=shape)
