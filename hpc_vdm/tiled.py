"""Fused periodic tiled sampling: the papers' ancestral sampler on a field of any size.

One global noisy field z on the torus. At every step the ε̂ of all tiles is predicted in batches from
windows of (z_t, condition) cut with the same wrap-around, blended back into one global ε̂, and one global
ancestral step is taken with one global noise draw. Tiles are never sampled independently and stitched
afterwards. The noise of every step is drawn for the whole field from a generator keyed by
(seed, slab, sample, step) on the CPU, so a result does not depend on the tile size, the batch size, the
device or how slabs are spread over ranks.
"""
from __future__ import annotations

import torch

from tiling import tile_apply

from .diffusion import keyed_generator, sample_loop, time_grid

INITIAL = -1  # the "step" key of z_1


def keyed_noise(shape, *, seed: int, slab: int, sample: int, step: int) -> torch.Tensor:
    """N(0, 1) of ``shape`` (fp32, CPU) from a generator keyed by (seed, slab, sample, step)."""
    return torch.randn(tuple(shape), generator=keyed_generator(seed, slab, sample, step + 1))


@torch.no_grad()
def sample_tiled(vdm, cond: torch.Tensor, *, tile: int, halo: int, n_steps: int, seed: int, slab: int = 0,
                 sample: int = 0, blend: str = "core", batch_size: int = 8, device=None,
                 params: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """One posterior sample of a whole periodic field: cond (1, H, W) normalised -> (1, H, W) fp32 on the CPU.

    ``vdm`` needs ``gamma(t)`` and ``eps_hat(z, γ, cond[, params])`` (a :class:`~hpc_vdm.diffusion.VDM`);
    ``tile + 2 halo`` must suit the network (a multiple of the U-Net stride). ``params`` (1, n) if the
    model conditions on simulation parameters.
    """
    cond = cond.float().cpu()
    shape = tuple(cond.shape)
    gammas = vdm.gamma(time_grid(n_steps).to(next(vdm.parameters()).device)).detach().cpu()

    def eps_fn(z, g_t):
        def fn(w):  # (B, 2, *window) -> (B, 1, *window)
            b = w.shape[0]
            p = None if params is None else params.to(w.device).expand(b, -1)
            return vdm.eps_hat(w[:, :1], g_t.to(w.device).expand(b), w[:, 1:], p)
        return tile_apply(fn, torch.cat([z, cond]), tile, halo, blend=blend, batch_size=batch_size, device=device)

    def noise_fn(step):
        return keyed_noise(shape, seed=seed, slab=slab, sample=sample, step=step)

    z_1 = keyed_noise(shape, seed=seed, slab=slab, sample=sample, step=INITIAL)
    return sample_loop(eps_fn, z_1, gammas, noise_fn, progress=progress)
