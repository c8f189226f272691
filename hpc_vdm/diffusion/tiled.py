"""Fused periodic tiled sampling: any sampler of :mod:`.sampler` (the papers' ancestral by default) on a field of
any size.

One global noisy field z on the torus. At every step the ε̂ of all tiles is predicted in batches from
windows of (z_t, condition) cut with the same wrap-around, blended back into one global ε̂, and one global
step of the sampler is taken (with one global noise draw where it draws). Tiles are never sampled
independently and stitched afterwards. The noise of every step is drawn for the whole field from a generator keyed by
(seed, slab, sample, step) on the CPU, so a result does not depend on the tile size, the batch size, the
device or how slabs are spread over ranks.
"""
from __future__ import annotations

from typing import Sequence

import torch

from tiling import tile_apply

from .sampler import keyed_generator, sample_loop, time_grid

INITIAL = -1  # the "step" key of z_1


def keyed_noise(shape, *, seed: int, slab: int, sample: int, step: int) -> torch.Tensor:
    """N(0, 1) of ``shape`` (fp32, CPU) from a generator keyed by (seed, slab, sample, step)."""
    return torch.randn(tuple(shape), generator=keyed_generator(seed, slab, sample, step + 1))


def stride_of(net) -> int:
    """The total downsampling of a network (a VDM's score U-Net, or any module with a ``stride``; else 1)."""
    return int(getattr(net, "stride", None) or getattr(getattr(net, "score", None), "stride", 1))


def window_align(net, tile: int, halo: int) -> int:
    """Where windows may start: on the network's stride grid when tile and halo allow it (then a local network
    tiled equals the whole field), else anywhere (1)."""
    stride = stride_of(net)
    return stride if tile % stride == 0 and halo % stride == 0 else 1


def check_window(net, tile: int, halo: int) -> None:
    """The network must accept tile + 2 halo pixels: a multiple of its total downsampling."""
    stride = stride_of(net)
    if (tile + 2 * halo) % stride:
        raise ValueError(f"tile {tile} + 2 x halo {halo} = {tile + 2 * halo} pixels is not a multiple of the "
                         f"network's stride {stride}; pick tile and halo so that it is (e.g. tile 192, halo 32)")


@torch.no_grad()
def sample_tiled(vdm, cond: torch.Tensor | None, *, tile: int, halo: int, n_steps: int, seed: int, slab: int = 0,
                 samples: Sequence[int] = (0,), blend: str = "core", batch_size: int = 8, device=None,
                 params: torch.Tensor | None = None, progress: bool = False, sampler: str = "ancestral",
                 shape: Sequence[int] | None = None, x_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Posterior samples of a whole periodic field: cond (1, H, W) normalised -> (S, H, W) fp32 on the CPU
    (``cond`` None and ``shape`` (H, W) for a model without a map condition).

    ``samples`` are the sample indices drawn together (S of them; each window of a network call carries all
    S, so a call sees batch_size x S maps); sample ``i`` is the same whichever others it is drawn with.
    ``vdm`` needs ``gamma(t)`` and ``eps_hat(z, γ, cond[, params])`` (a :class:`~hpc_vdm.diffusion.VDM`);
    ``tile + 2 halo`` must suit the network (:func:`check_window`). ``params`` (1, n) if the model
    conditions on simulation parameters. ``n_steps`` network evaluations of ``sampler`` (one of
    :data:`~hpc_vdm.diffusion.sampler.SAMPLERS`); x̂ clipped to ``x_range`` (normalised) if given, on the
    blended global field, so the clip does not see the tiles.
    """
    cond = None if cond is None else cond.float().cpu()
    field_shape = (1, *(cond.shape[-2:] if cond is not None else shape))
    samples = list(samples)
    n = len(samples)
    align = window_align(vdm, tile, halo)
    gammas = vdm.gamma(time_grid(n_steps, sampler).to(next(vdm.parameters()).device)).detach().cpu()

    def eps_fn(z, g_t):
        def fn(w):  # (B, S [+ 1], *window): S noisy samples [and the condition] -> (B, S, *window)
            b, window = w.shape[0], w.shape[2:]
            z_w = w[:, :n].reshape(b * n, 1, *window)
            c_w = None if cond is None else w[:, n:].expand(b, n, *window).reshape(b * n, 1, *window)
            p = None if params is None else params.to(w.device).expand(b * n, -1)
            return vdm.eps_hat(z_w, g_t.to(w.device).expand(b * n), c_w, p).reshape(b, n, *window)
        field = z if cond is None else torch.cat([z, cond])
        return tile_apply(fn, field, tile, halo, blend=blend, batch_size=batch_size, device=device, align=align)

    def noise_fn(step):
        return torch.cat([keyed_noise(field_shape, seed=seed, slab=slab, sample=i, step=step) for i in samples])

    return sample_loop(eps_fn, noise_fn(INITIAL), gammas, noise_fn, sampler=sampler, progress=progress,
                       x_range=x_range)
