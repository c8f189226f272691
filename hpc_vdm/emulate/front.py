"""Parameters of input maps from an emulator's bound: the ``infer`` front of :func:`hpc_vdm.inference.apply.apply`.

:func:`plan` checks everything before anything is written (the model conditions on parameters, the grid
lies inside the prior, the maps have the model's pixel scale and size, the store has the parameters the
run needs); :func:`job` says what a unit of work is for the one apply routine. Output ``OUT.zarr``::

    maps           (n,) int64          store indices of the input maps
    truth, fixed   (n, 6) float64      their CAMELS parameters (NaN when the store has none); the rows whose
                                       other parameters the model is given
    theta          (n, G, 2) f8        grid points (physical), chunk = one unit (a map's batch of points)
    terms          (n, G, K, D) f8     the bound's terms L_{j,d}(x | θ) [nats] per time and noise draw, :mod:`.grid`
    done           (n B,) uint8        completion record per unit (map i, batch b at i B + b)
    coarse_*       the same for the first grid of centre=coarse
    chain          (m, S, 2) float64   NUTS samples of the first m maps; chain_stats (m, 5); chain_done (m,)
    attrs          format, fingerprint, provenance, params, quadrature (times, width), grid, centre

Every unit's chunks are its own; ε of term j of map i is keyed by (seed, store index, j, draw), so a rerun
after a kill, or a split over any number of ranks, ends with the same store. With centre=coarse a map's fine
units wait until its coarse units (any rank's) are recorded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..bundle import ModelBundle, load_bundle
from ..data import camels
from ..data.dataset import stratified_maps
from ..data.store import read_maps
from ..families import for_bundle
from ..inference.maps import open_for
from ..inference.output import OutputStore, Record
from ..io import INFER, INFER_SUMMARY, check_output, sha256_file
from . import grid as g

FORMAT = "hpc_vdm.infer/1"


@dataclass
class InferPlan:
    bundle: ModelBundle
    names: list[str]
    prior: tuple
    maps: list[int]
    x: torch.Tensor                 # (n, 1, H, W) normalised input maps
    truth: np.ndarray               # (n, 6), NaN when unknown
    fixed: np.ndarray               # (n, 6)
    boxes: list | None              # fine boxes per map (None: from the coarse grids)
    coarse: g.Box | None
    quad: g.Quadrature
    fingerprint: dict
    resume: bool


def check_model(bundle: ModelBundle, path: str) -> None:
    family = for_bundle(bundle)
    if family.conditioned_on != "params" or not bundle.conditions_on_params:
        what = (f"maps of {bundle.norm.condition}" if getattr(bundle.norm, "condition", "") else "no parameters")
        raise ValueError(f"{path!r} is a {bundle.kind} model conditioned on {what}; python -m hpc_vdm.infer needs a "
                         f"model of maps from parameters alone (model.kind=emulator with model.params)")


def read_inputs(cfg, bundle: ModelBundle):
    """(store path, maps, x (n, 1, H, W), truth (n, 6)) of the input maps, checked against the model."""
    f = cfg.infer
    path = f.store or bundle.config.data.store
    root, attrs = open_for(bundle, path, "input store")
    if int(attrs["map_pixels"]) != int(bundle.store["map_pixels"]):
        raise ValueError(f"input store {path!r} holds maps of {attrs['map_pixels']}^2 pixels; the model was trained "
                         f"on {bundle.store['map_pixels']}^2 maps (its likelihood is of fields of that size)")
    n_all = root[bundle.norm.target].shape[0]
    maps = list(f.maps) or stratified_maps(attrs, f.split, f.n_maps, f.seed)
    bad = [m for m in maps if not 0 <= m < n_all]
    if bad:
        raise ValueError(f"infer.maps {bad} are not maps of {path!r} (0 .. {n_all - 1})")
    x = bundle.norm.target_in(read_maps(root, bundle.norm.target, maps, path).astype(np.float64))
    truth = np.full((len(maps), 6), np.nan)
    if "params" in root and "sim" in root:
        truth = np.asarray(root["params"][:], np.float64)[np.asarray(root["sim"][:])[maps]]
    return path, maps, torch.from_numpy(np.asarray(x, np.float32))[:, None], truth


def boxes_for(f, truth: np.ndarray, names: list[str], prior: tuple, n_maps: int):
    """(fine boxes per map or None, the coarse box or None) from infer.centre/centre_at/half_width/box."""
    cols = [camels.PARAM_NAMES.index(n) for n in names]
    n = tuple(f.grid)
    explicit = None
    if f.box:
        if len(f.box) != 4:
            raise ValueError(f"infer.box must be [lo1, hi1, lo2, hi2], got {f.box}")
        explicit = g.check_inside(g.Box((f.box[0], f.box[2]), (f.box[1], f.box[3]), n), prior, names)
    if f.centre == "coarse":
        coarse = explicit or g.Box(prior[0], prior[1], tuple(f.coarse))
        return None, g.check_inside(g.Box(coarse.lo, coarse.hi, tuple(f.coarse)), prior, names)
    if explicit is not None:
        return [explicit] * n_maps, None
    if f.centre == "given":
        if len(f.centre_at) != 2:
            raise ValueError(f"infer.centre=given needs infer.centre_at [p1, p2], got {f.centre_at}")
        return [g.centred(f.centre_at, f.half_width, n, prior, names)] * n_maps, None
    return [g.centred(truth[i, cols], f.half_width, n, prior, names) for i in range(n_maps)], None


def plan(cfg) -> InferPlan:
    """Everything that can be wrong with an ``infer`` run, checked before anything is written."""
    f, m = cfg.infer, cfg.trained
    bundle = load_bundle(m.model, m.which)
    check_model(bundle, m.model)
    names = list(f.params)
    if len(names) != 2 or len(set(names)) != 2:
        raise ValueError(f"infer.params must name two distinct parameters, got {names}")
    g.Conditioner(bundle.param_names, names, camels.fiducial_params())     # the model conditions on both
    for key, value in (("grid", f.grid), ("coarse", f.coarse), ("half_width", f.half_width)):
        if len(value) != 2 or min(value) <= (1 if key != "half_width" else 0):
            raise ValueError(f"infer.{key} must be two values > {1 if key != 'half_width' else 0}, got {value}")
    prior = g.prior_of(names)
    store_path, maps, x, truth = read_inputs(cfg, bundle)
    unknown = ~np.all(np.isfinite(truth), axis=1)
    needs = [why for why, yes in (("infer.centre=truth", f.centre == "truth" and not f.box),
                                  ("infer.fixed=truth", f.fixed == "truth" and len(bundle.param_names) > 2)) if yes]
    if unknown.any() and needs:
        raise ValueError(f"input store {store_path!r} has no parameters for maps {np.asarray(maps)[unknown].tolist()}, "
                         f"but {' and '.join(needs)} needs them; give infer.centre=given/coarse (and infer.fixed="
                         f"fiducial)")
    fixed = truth.copy() if f.fixed == "truth" else np.tile(camels.fiducial_params(), (len(maps), 1))
    fixed[~np.all(np.isfinite(fixed), axis=1)] = camels.fiducial_params()
    boxes, coarse = boxes_for(f, truth, names, prior, len(maps))
    quad = g.Quadrature.midpoints(f.times, f.t_min, f.t_max)
    bad_terms = [j for j in f.terms if not 0 <= j < f.times]
    if bad_terms:
        raise ValueError(f"infer.terms {bad_terms} are not terms of infer.times={f.times} (0 .. {f.times - 1})")
    fp = {"model": {"sha256": sha256_file(Path(m.model)), "which": m.which},
          "store": {"path": str(Path(store_path).resolve()), "maps": maps}, "params": names, "fixed": f.fixed,
          "grid": list(f.grid), "centre": f.centre, "centre_at": list(f.centre_at), "half_width": list(f.half_width),
          "box": list(f.box), "coarse": list(f.coarse) if coarse else [], "zoom_sigmas": f.zoom_sigmas,
          "quadrature": {"times": f.times, "t_min": f.t_min, "t_max": f.t_max, "draws": f.noise_draws},
          "seed": f.seed, "batch_size": f.batch_size, "terms": list(f.terms),
          "mcmc": {"maps": min(f.mcmc_maps, len(maps)), "samples": f.mcmc_samples, "warmup": f.mcmc_warmup,
                   "depth": f.mcmc_depth}}
    out = Path(f.out)
    inputs = (m.model, store_path) + ((f.cv_store,) if f.cv_store else ())
    check_output(out, INFER, inputs=inputs, reuse=True)
    resume = infer_store(out).state(fp)
    check_output(out.with_suffix(".json"), INFER_SUMMARY, inputs=inputs, overwrite=resume)
    bundle.module.requires_grad_(False)
    return InferPlan(bundle, names, prior, maps, x, truth, fixed, boxes, coarse, quad, fp, resume)


def infer_store(path, n_batches: int = 1, n_coarse: int = 0, chains: bool = False) -> OutputStore:
    """The store at ``path``: its records (fine units, coarse units when n_coarse, chains when asked)."""
    def record(prefix: str, nb: int) -> Record:
        def chunks(index):
            i, b = divmod(index[0], nb)
            return [(f"{prefix}theta", f"c/{i}/{b}/0"), (f"{prefix}terms", f"c/{i}/{b}/0/0")]
        return Record(f"{prefix}done", chunks, lambda root, index: f"map {index[0] // nb}, batch {index[0] % nb}")

    records = [record("", n_batches)] + ([record("coarse_", n_coarse)] if n_coarse else [])
    if chains:
        records.append(Record("chain_done", lambda i: [("chain", f"c/{i[0]}/0/0")],
                              lambda root, i: f"the chain of map {i[0]}"))
    return OutputStore(path, format=FORMAT, what="infer store", records=records)


def n_batches(points: int, batch: int) -> int:
    return -(-points // batch)
