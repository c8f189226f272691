"""The conditional VDM's validation: a deterministic bound and spectra of keyed posterior samples.

* The bound (bits/dim) of ``n_maps`` held-out maps spread over the split's simulations, each at K fixed
  times t_k = (k + ½)/K with noise from a generator keyed by (seed, map, k): the same numbers for the
  same weights, whatever the world size, so differences between checkpoints are the model's.
* One posterior sample per map for ``n_sample_maps`` maps, drawn by the same sampler with the same keyed
  noise as ``python -m hpc_vdm.sample --seed SEED`` (sample 0 of that map), scored by
  :mod:`hpc_vdm.evaluate.posterior`: mean |P_s/P_t − 1| and mean r(k) of the overdensity up to k_Nyq.

Maps are split over ranks (``rank::world``); sums are all-reduced, so every rank returns the same dict.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import dist
from ..data.dataset import spread
from ..diffusion import keyed_generator, sample_tiled
from ..evaluate import draw_scores

BOUND_SEED = 1_000_003


def _item(dataset, j: int, device, norm):
    item = dataset[j]
    cond, target = item["condition"][None].to(device), item["target"][None].to(device)  # (1, 1, H, W)
    params = None if norm is None else torch.from_numpy(norm.params(item["params"].numpy()))[None].to(device)
    return cond, target, params, int(item["index"])


@torch.no_grad()
def bound(vdm, dataset, *, n_maps: int, n_times: int, rank: int, world: int, device, norm=None,
          seed: int = 0) -> dict:
    """Mean loss terms (bits/dim) over ``n_maps`` maps x ``n_times`` fixed times; identical on every rank.
    ``norm`` (a :class:`~hpc_vdm.data.transforms.MapNormalisation`) when the model conditions on parameters."""
    vdm.eval()
    maps = spread(len(dataset), n_maps)
    sums = np.zeros(5)
    for j in maps[rank::world]:
        cond, x, params, _ = _item(dataset, j, device, norm)
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
                   device, norm, conditions_on_params: bool = False, seed: int = 0) -> dict:
    """Mean |P_s/P_t − 1| and mean r(k) (overdensity, k <= k_Nyq) of one keyed posterior sample per map."""
    vdm.eval()
    sums = np.zeros(3)
    for j in spread(len(dataset), n_maps)[rank::world]:
        cond, x, params, index = _item(dataset, j, device, norm if conditions_on_params else None)
        draw = sample_tiled(vdm, cond[0].cpu(), tile=cond.shape[-1], halo=0, n_steps=n_steps, seed=seed,
                            slab=index, samples=[0], batch_size=1, device=device,
                            params=None if params is None else params.cpu())
        scores = draw_scores(norm.target_out(x[0, 0].cpu().numpy()), norm.target_out(draw[0].numpy()), box_mpc_h)
        sums += [scores["pk_ratio_err"], scores["r_mean"], 1]
    total = dist.all_reduce(sums, device, op="sum")
    if total[2] == 0:
        return {}
    return {"val_pk_ratio_err": total[0] / total[2], "val_r_mean": total[1] / total[2]}
