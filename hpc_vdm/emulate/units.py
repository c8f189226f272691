"""The units of an ``infer`` run and what a rank does with them: a map's batch of grid points (coarse or fine),
a map's NUTS chain. See :mod:`.front` for the store they fill."""
from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from ..config import to_dict
from ..data.store import CODECS, WRITE_ALL
from ..diffusion import key_seed
from ..inference.apply import Job
from ..io import INFER
from . import grid as g
from . import report
from .front import InferPlan, infer_store, n_batches
from .mcmc import nuts
from .posterior import grid_posterior

CHAIN_STATS = ("ess_0", "ess_1", "step_size", "divergences", "acceptance")


class Runner:
    """One rank's work on an open (verified) infer store."""

    def __init__(self, cfg, p: InferPlan, store, root: zarr.Group, device):
        f = cfg.infer
        self.f, self.p, self.store, self.root, self.device = f, p, store, root, device
        self.model = p.bundle.module.to(device)
        self.batch = f.batch_size
        self.nb = n_batches(int(np.prod(f.grid)), self.batch)
        self.nbc = n_batches(int(np.prod(f.coarse)), self.batch) if p.coarse else 0
        self._boxes: dict[int, g.Box] = {}

    def noise(self, i: int) -> torch.Tensor:
        return g.term_noise(self.p.x.shape[-2:], seed=self.f.seed, key=self.p.maps[i], n_times=self.f.times,
                            draws=self.f.noise_draws)

    def condition(self, i: int) -> g.Conditioner:
        return g.Conditioner(self.p.bundle.param_names, self.p.names, self.p.fixed[i])

    def fine_box(self, i: int) -> g.Box:
        """Map i's fine box: planned, or around the posterior of its coarse grid (waiting for its units)."""
        if self.p.boxes is not None:
            return self.p.boxes[i]
        if i not in self._boxes:
            span = slice(i * self.nbc, (i + 1) * self.nbc)
            root = self.root
            while not root["coarse_done"][span].all():  # another rank's coarse units of this map
                time.sleep(0.5)
                root = zarr.open_group(str(self.store.path), mode="r")
            post = grid_posterior(root["coarse_theta"][i], root["coarse_terms"][i], tuple(self.f.coarse), self.f.terms)
            s = post.summary()
            self._boxes[i] = g.zoomed(s["mean"], s["std"], self.p.coarse, sigmas=self.f.zoom_sigmas,
                                      half_width=self.f.half_width, n=self.f.grid, prior=self.p.prior,
                                      names=self.p.names)
        return self._boxes[i]

    def points(self, i: int, b: int, coarse: bool) -> np.ndarray:
        box = self.p.coarse if coarse else self.fine_box(i)
        return box.points()[b * self.batch:(b + 1) * self.batch]

    def grid_unit(self, i: int, b: int, coarse: bool) -> None:
        prefix = "coarse_" if coarse else ""
        pts = self.points(i, b, coarse)
        terms = g.grid_terms(self.model, self.p.x[i:i + 1], pts, self.condition(i), self.p.quad, self.noise(i),
                             device=self.device)
        sl = slice(b * self.batch, b * self.batch + len(pts))
        self.root[f"{prefix}theta"][i, sl] = pts
        self.root[f"{prefix}terms"][i, sl] = terms
        self.store.mark(self.root, f"{prefix}done", i * (self.nbc if coarse else self.nb) + b)

    def chain_unit(self, i: int) -> None:
        box, cond, eps, x = self.fine_box(i), self.condition(i), self.noise(i).to(self.device), self.p.x[i:i + 1]
        select = list(self.f.terms) or list(range(self.f.times))

        def neg_log_like(theta: torch.Tensor) -> torch.Tensor:
            terms = g.bound_terms(self.model, x.to(self.device), cond(theta).to(self.device), self.p.quad, eps)
            return terms.mean(-1)[:, select].sum()

        centre = [(lo + hi) / 2 for lo, hi in zip(box.lo, box.hi)]
        with torch.enable_grad():
            out = nuts(neg_log_like, self.p.prior[0], self.p.prior[1], centre, n_samples=self.f.mcmc_samples,
                       warmup=self.f.mcmc_warmup, seed=key_seed(self.f.seed, self.p.maps[i]) % 2**32,
                       max_depth=self.f.mcmc_depth)
        self.root["chain"][i] = out["samples"]
        self.root["chain_stats"][i] = [*out["ess"], out["step_size"], out["divergences"], out["acceptance"]]
        self.store.mark(self.root, "chain_done", i)

    def pending(self, root, unit) -> bool:
        kind, i = unit[0], unit[1]
        if kind == "chain":
            return not root["chain_done"][i]
        return not root[f"{'coarse_' if kind == 'coarse' else ''}done"][i * (self.nbc if kind == 'coarse' else self.nb)
                                                                         + unit[2]]

    def work(self, mine: list, progress: bool) -> None:
        for unit in tqdm(mine, desc="infer", unit="unit", disable=not progress):
            if unit[0] == "chain":
                self.chain_unit(unit[1])
            else:
                self.grid_unit(unit[1], unit[2], unit[0] == "coarse")


def units(p: InferPlan, f) -> list[tuple]:
    """Every unit in store order: coarse batches, fine batches, chains."""
    n = len(p.maps)
    nb, nbc = n_batches(int(np.prod(f.grid)), f.batch_size), n_batches(int(np.prod(f.coarse)), f.batch_size)
    out = [("coarse", i, b) for i in range(n) for b in range(nbc)] if p.coarse else []
    out += [("fine", i, b) for i in range(n) for b in range(nb)]
    return out + [("chain", i) for i in range(min(f.mcmc_maps, n))]


def layout(p: InferPlan, f):
    n, k, b = len(p.maps), f.times, f.batch_size
    chains = min(f.mcmc_maps, n)

    def make(root: zarr.Group) -> None:
        root.create_array("maps", data=np.asarray(p.maps, dtype=np.int64))
        root.create_array("truth", data=p.truth.astype(np.float64))
        root.create_array("fixed", data=p.fixed.astype(np.float64))
        grids = [("", int(np.prod(f.grid)))] + ([("coarse_", int(np.prod(f.coarse)))] if p.coarse else [])
        for prefix, points in grids:
            root.create_array(f"{prefix}theta", shape=(n, points, 2), chunks=(1, b, 2), dtype="float64",
                              fill_value=np.nan, compressors=CODECS, config=WRITE_ALL,
                              dimension_names=("map", "point", "param"))
            root.create_array(f"{prefix}terms", shape=(n, points, k, f.noise_draws), chunks=(1, b, k, f.noise_draws),
                              dtype="float64", fill_value=np.nan, compressors=CODECS, config=WRITE_ALL,
                              dimension_names=("map", "point", "term", "draw"))
            root.create_array(f"{prefix}done", shape=(n * n_batches(points, b),), chunks=(1,), dtype="uint8",
                              fill_value=0)
        if chains:
            root.create_array("chain", shape=(chains, f.mcmc_samples, 2), chunks=(1, f.mcmc_samples, 2),
                              dtype="float64", fill_value=np.nan, compressors=CODECS, config=WRITE_ALL)
            root.create_array("chain_stats", shape=(chains, len(CHAIN_STATS)), chunks=(1, len(CHAIN_STATS)),
                              dtype="float64", fill_value=np.nan, compressors=CODECS, config=WRITE_ALL)
            root.create_array("chain_done", shape=(chains,), chunks=(1,), dtype="uint8", fill_value=0)

    return make


def job(cfg, p: InferPlan, device) -> Job:
    """The infer run as a :class:`~hpc_vdm.inference.apply.Job` over its units."""
    f, m = cfg.infer, cfg.trained
    nb, nbc = n_batches(int(np.prod(f.grid)), f.batch_size), n_batches(int(np.prod(f.coarse)), f.batch_size)
    chains = min(f.mcmc_maps, len(p.maps))
    store = infer_store(f.out, nb, nbc if p.coarse else 0, bool(chains))
    state = {}

    def runner(root) -> Runner:
        if "r" not in state or state["r"].root is not root:
            state["r"] = Runner(cfg, p, store, root, device)
        return state["r"]

    def finished(root) -> bool:
        return all(bool(root[r.name][:].all()) for r in store.records)

    provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                  "host": platform.node(), "torch": torch.__version__, "model": str(Path(m.model).resolve()),
                  "model_step": p.bundle.step, "model_tag": p.bundle.tag, "config": to_dict(cfg)}
    attrs = {"provenance": provenance, "params": p.names, "terms_units": "nats",
             "quadrature": {"times": list(p.quad.times), "width": p.quad.width, "draws": f.noise_draws},
             "grid": list(f.grid), "coarse": list(f.coarse) if p.coarse else [], "centre": f.centre,
             "chain_stats": list(CHAIN_STATS)}
    return Job(store=store, kind=INFER, fingerprint=p.fingerprint, layout=layout(p, f), attrs=attrs,
               units=units(p, f), pending=lambda root, u: runner(root).pending(root, u),
               work=lambda root, mine, progress: runner(root).work(mine, progress), finished=finished,
               figure=lambda root, png: report.finish(cfg, p, root, png),
               inputs=(m.model, f.store or p.bundle.config.data.store) + ((f.cv_store,) if f.cv_store else ()))
