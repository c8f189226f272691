"""Validation that can select models: a deterministic bound and spectra of posterior samples.

* The bound (bits/dim) of the first ``n_maps`` held-out maps, each at K fixed times t_k = (k + ½)/K with
  noise drawn from a generator keyed by (seed, map, k): the same numbers for the same weights, whatever
  the world size, so differences between checkpoints are the model's, not the Monte-Carlo's.
* One posterior sample per map for the first ``n_sample_maps`` maps (keyed noise again), compared with
  the truth in physical units: the mean |P_sample(k)/P_true(k) − 1| and the mean r(k) over all k bins.

Maps are split over ranks (``rank::world``); sums are all-reduced, so every rank returns the same dict.
"""
from __future__ import annotations

import numpy as np
import torch

from . import dist
from .data import camels, transforms
from .diffusion import keyed_generator, sample
from .spectra import cross_spectrum

BOUND_SEED, SAMPLE_SEED = 1_000_003, 2_000_003


def _item(dataset, j: int, device, param_conditioning: bool):
    item = dataset[j]
    cond, target = item["condition"][None].to(device), item["target"][None].to(device)  # (1, 1, H, W)
    params = (torch.from_numpy(camels.normalise_params(item["params"].numpy()))[None].to(device)
              if param_conditioning else None)
    return cond, target, params


@torch.no_grad()
def bound(vdm, dataset, *, n_maps: int, n_times: int, rank: int, world: int, device,
          param_conditioning: bool = False, seed: int = 0) -> dict:
    """Mean loss terms (bits/dim) over ``n_maps`` maps x ``n_times`` fixed times; identical on every rank."""
    vdm.eval()
    n = min(n_maps, len(dataset))
    sums = np.zeros(5)
    for j in range(rank, n, world):
        cond, x, params = _item(dataset, j, device, param_conditioning)
        gen = keyed_generator(BOUND_SEED, seed, j)
        t = (torch.arange(n_times, dtype=torch.float32) + 0.5) / n_times           # (K,)
        eps = torch.randn((n_times, *x.shape[1:]), generator=gen)                    # (K, 1, H, W)
        eps_0 = torch.randn((n_times, *x.shape[1:]), generator=gen)
        rep = (n_times, 1, 1, 1)
        out = vdm(x.repeat(rep), cond.repeat(rep), None if params is None else params.repeat(n_times, 1),
                  t=t.to(device), eps=eps.to(device), eps_0=eps_0.to(device))
        sums += [out.loss.sum().item(), out.loss_diff.sum().item(), out.loss_klz.sum().item(),
                 out.loss_recon.sum().item(), n_times]
    total = dist.all_reduce(sums, device, op="sum")
    count = max(total[4], 1.0)
    return {"val_bound": total[0] / count, "val_loss_diff": total[1] / count,
            "val_loss_klz": total[2] / count, "val_loss_recon": total[3] / count}


@torch.no_grad()
def sample_spectra(vdm, dataset, *, n_maps: int, n_steps: int, box_mpc_h: float, rank: int, world: int,
                   device, param_conditioning: bool = False, seed: int = 0) -> dict:
    """Mean |P_s/P_t − 1| and mean r(k) of one posterior sample per map vs the truth (physical units)."""
    vdm.eval()
    n = min(n_maps, len(dataset))
    stats = dataset.stats[dataset.target]
    sums = np.zeros(3)
    for j in range(rank, n, world):
        cond, x, params = _item(dataset, j, device, param_conditioning)
        draw = sample(vdm, cond, params, n_steps=n_steps, generator=keyed_generator(SAMPLE_SEED, seed, j))
        truth = transforms.denormalise(x[0, 0].cpu().numpy().astype(np.float64), stats)
        model = transforms.denormalise(draw[0, 0].cpu().numpy().astype(np.float64), stats)
        cs = cross_spectrum(truth, model, box_mpc_h)
        sums += [np.mean(np.abs(cs.power_b / cs.power_a - 1.0)), np.mean(cs.r), 1]
    total = dist.all_reduce(sums, device, op="sum")
    if total[2] == 0:
        return {}
    return {"val_pk_ratio_err": total[0] / total[2], "val_r_mean": total[1] / total[2]}
