"""The rows of a comparison: other exported models and the 2D HOD, drawn on the evaluated maps with their cost.

Each row is a :class:`Row`: its draws of the held-out maps (S, n, H, W), physical, its cost (training or
fitting seconds, drawing seconds, draws per second) and its family's diagnostics (e.g. a two-phase CNN's
classifier scores). Inputs are checked (:func:`plan_hod`) before the command writes anything.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..baselines import hod2d
from ..data import camels
from ..data.dataset import spread
from ..data.store import read_maps
from ..families import for_bundle
from ..inference.maps import draw_maps
from .compare import training_seconds

log = logging.getLogger("hpc_vdm.evaluate")


@dataclass
class Row:
    name: str
    kind: str                       # the model family, or "hod"
    draws: np.ndarray               # (S, n, H, W) physical
    cost: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


def cost_of(seconds: float, n_draws: int, trained: dict | None) -> dict:
    """Drawing seconds, draws (maps) per second and the training seconds of a row."""
    return {"draw_s": float(seconds), "draws_per_s": float(n_draws / max(seconds, 1e-9)), **(trained or {})}


def model_row(name: str, bundle, cond, maps, truth, params, spec, n_samples: int, device="cpu") -> Row:
    """A trained model's draws of the maps, timed, with its family's diagnostics."""
    family = for_bundle(bundle)
    t0 = time.perf_counter()
    draws = draw_maps(bundle, cond, maps, n_samples=n_samples, spec=spec, params=params, shape=truth.shape[-2:])
    seconds = time.perf_counter() - t0
    diagnostics = family.diagnostics(bundle, cond, truth, params, device) if cond is not None else {}
    return Row(name, bundle.kind, draws, cost_of(seconds, draws.shape[0] * draws.shape[1], training_seconds(bundle.path)),
               diagnostics)


@dataclass
class HODPlan:
    """The 2D HOD's inputs, read and checked: the halos and galaxies of the fit and test simulations."""

    catalogues: dict          # sim -> hod.Subhalos
    fit_sims: list[int]
    geometry: hod2d.Geometry
    params: hod2d.HODParams | None
    folder: str


def plan_hod(cfg, root, attrs: dict, maps) -> HODPlan:
    """Read the catalogues of the fit simulations (spread over the training split) and of the held-out maps'
    simulations, checked against the store; the given HOD parameters checked against their ranges."""
    b = cfg.baselines
    params = hod2d.HODParams.of(b.hod_params) if b.hod_params else None
    folder = b.hod_catalogues or str(camels.catalogue_dir(attrs.get("source_dir", "."), attrs["suite"], attrs["set"]))
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no halo catalogue folder {folder!r} for the 2D HOD (baselines.hod_catalogues; the "
                                f"mock writes FOF_Subfind_{{suite}}_{{set}}_z=0.00 beside its maps)")
    train = list(attrs["splits"]["train"])
    fit_sims = [] if params else [train[i] for i in spread(len(train), b.hod_fit_sims)]
    per_sim = int(attrs["maps_per_sim"])
    sims = sorted(set(fit_sims) | {int(m) // per_sim for m in maps} | ({train[0]} if params else set()))
    cats = hod2d.read_simulations(folder, sims, np.asarray(root["params"][:]), float(attrs["box_size_mpc_h"]))
    return HODPlan(cats, fit_sims, hod2d.Geometry.of_store(attrs), params, folder)


def hod_row(cfg, plan: HODPlan, root, attrs: dict, store_path: str, target: str, maps) -> Row:
    """The HOD fitted on the training simulations (unless given), then drawn for the held-out maps."""
    b, per_sim = cfg.baselines, int(attrs["maps_per_sim"])
    train_cats = [plan.catalogues[s] for s in (plan.fit_sims or [attrs["splits"]["train"][0]])]
    t0 = time.perf_counter()
    stellar = hod2d.fit_stellar(train_cats, b.hod_bins)
    record = {"catalogues": plan.folder, "satellites": b.hod_satellites, "fit_sims": plan.fit_sims}
    params = plan.params
    if params is None:
        halos = {s: hod2d.Halos.of(plan.catalogues[s]) for s in plan.fit_sims}
        truth = {s: np.asarray(read_maps(root, target, list(range(s * per_sim, (s + 1) * per_sim)), store_path),
                               dtype=np.float64) for s in plan.fit_sims}
        params, fit = hod2d.fit(halos, truth, stellar, plan.geometry, seed=b.seed, profile=b.hod_satellites)
        record["fit"] = fit
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sims = sorted({int(m) // per_sim for m in maps})
    drawn = hod2d.draw_maps({s: hod2d.Halos.of(plan.catalogues[s]) for s in sims}, stellar, params, plan.geometry,
                            seed=b.seed + 1, profile=b.hod_satellites)
    draws = np.stack([drawn[int(m) // per_sim][int(m) % per_sim] for m in maps])[None]        # (1, n, H, W)
    log.info("HOD %s (fitted in %.1f s) drawn for %d maps", params.as_dict(), fit_s, len(maps))
    return Row("HOD", "hod", draws, cost_of(time.perf_counter() - t0, len(maps), {"train_s": fit_s}),
               {"hod": record | {"params": params.as_dict()}})
