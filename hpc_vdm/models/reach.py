"""Reach of a network: how far the dependence of an output pixel on the input extends.

* :func:`receptive_radius` measures the exact radius (Chebyshev, in input pixels) beyond which the output's
  dependence on the input is exactly zero: gradients in float64 of an output pixel at every phase of the
  stride grid, on a periodic window grown until the support no longer wraps around it. A network with
  per-window statistics or global attention has no such radius (None).
* :func:`unet_receptive_radius` derives it from the architecture (intervals propagated back through the
  U-Net's convolutions, 2x2 stride-2 down/upsamplings and the bottleneck); the tests check they agree.
* :func:`effective_reach` is what a trained network's export records beside it: the radius beyond which
  |∂ output / ∂ input| stays below ``tol`` × its maximum, on real inputs.
* :func:`locality` lists the facts a bundle records (norm, attention, stride, radius, tile safety).

Stride alignment: a U-Net with total stride s = 2^levels is equivariant only to shifts by multiples of s,
so a tiled result equals the whole-field one only when every window (tile + 2 halo, a multiple of s)
starts on a multiple of s (:func:`misaligned_windows`), besides halo >= the receptive radius.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .blocks import AttentionBlock, PixelNorm

NetFn = Callable[[torch.Tensor], torch.Tensor]  # (B, C_in, H, W) -> (B, C_out, H, W)


# ---------------------------------------------------------------------------------------------
# the analytic radius
# ---------------------------------------------------------------------------------------------
def _down_to_input(level: int, lo: int, hi: int, blocks: int) -> tuple[int, int]:
    """Input pixels that the features [lo, hi] (level-``level`` units) after that down level depend on."""
    for lev in range(level, -1, -1):
        lo, hi = lo - 2 * blocks, hi + 2 * blocks    # the level's residual blocks: two 3x3 convs each
        if lev > 0:
            lo, hi = 2 * lo, 2 * hi + 1               # the 2x2 stride-2 downsampling from level lev - 1
    return lo - 1, hi + 1                             # conv_in


def _unet_interval(p: int, levels: int, blocks: int, attention_radius: int) -> tuple[int, int]:
    """1D input interval [lo, hi] that output pixel p of the U-Net depends on (circular padding unrolled)."""
    lo, hi = p - 1, p + 1                             # conv_out
    spans = []
    for level in range(levels):                       # the up path, from the output inwards
        lo, hi = lo - 2 * blocks, hi + 2 * blocks     # the level's up blocks (the first on skip ⊕ upsampled)
        spans.append(_down_to_input(level, lo, hi, blocks))   # through the skip connection
        lo, hi = lo // 2, hi // 2                     # the 2x2 stride-2 transposed conv from level + 1
    lo, hi = lo - 4 - attention_radius, hi + 4 + attention_radius  # ResBlock, attention, ResBlock
    spans.append(_down_to_input(levels - 1, 2 * lo, 2 * hi + 1, blocks))  # the last downsampling
    return min(s[0] for s in spans), max(s[1] for s in spans)


def unet_receptive_radius(levels: int, blocks_per_level: int = 1, attention_radius: int = 0) -> int:
    """Receptive radius (input pixels) of a local U-Net, worst case over the output's phase on the stride grid."""
    stride = 2 ** levels
    worst = 0
    for p in range(stride):                           # the output's phase: stride values, not pixels
        lo, hi = _unet_interval(p, levels, blocks_per_level, attention_radius)
        worst = max(worst, p - lo, hi - p)
    return worst


def structural_radius(net: nn.Module) -> int | None:
    """The receptive radius of the convolutions and attention of ``net`` (a U-Net with its prior base, a
    FieldRegressor or a module with ``receptive_radius``), as if its normalisation were local; None with global
    attention or an unknown architecture."""
    net = getattr(net, "score", net)
    if hasattr(net, "levels") and hasattr(net, "attention_kind"):   # a UNet (with its prior base, if any)
        if net.attention_kind == "global":
            return None
        prior_radius = getattr(getattr(net, "prior", None), "receptive_radius", 0)
        if prior_radius is None:   # a prior that reads the whole map
            return None
        return max(unet_receptive_radius(net.levels, net.blocks_per_level, net.attention_radius), prior_radius)
    radius = getattr(net, "receptive_radius", None)
    return radius if isinstance(radius, int) else None


# ---------------------------------------------------------------------------------------------
# measured radii
# ---------------------------------------------------------------------------------------------
def randomised(net: nn.Module, std: float = 0.1, seed: int = 0) -> nn.Module:
    """A float64 copy of ``net`` in eval mode with every parameter, zero-initialised ones too, drawn N(0, std²)."""
    net = copy.deepcopy(net).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return net


def score_fn(net: nn.Module, gamma: float, params: torch.Tensor | None = None) -> NetFn:
    """A U-Net as a map (B, in + cond, H, W) -> (B, in, H, W) at noise level γ (parameters zero unless given)."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        b, n_in = x.shape[0], net.in_channels
        cond = x[:, n_in:] if net.cond_channels else None
        p = params
        if net.n_params and p is None:
            p = torch.zeros(b, net.n_params, dtype=x.dtype, device=x.device)
        elif p is not None:
            p = p.to(x).expand(b, -1)
        return net(x[:, :n_in], torch.full((b,), float(gamma), dtype=x.dtype, device=x.device), cond, p)
    return fn


def periodic_distance(shape: Sequence[int], centres: torch.Tensor) -> torch.Tensor:
    """Chebyshev distance on the torus ``shape`` (H, W) from each of ``centres`` (N, 2) -> (N, H, W) int64."""
    axes = []
    for ax, n in enumerate(shape):
        d = (torch.arange(n)[None] - centres[:, ax, None]).abs()          # (N, n)
        axes.append(torch.minimum(d, n - d))
    return torch.maximum(axes[0][:, :, None], axes[1][:, None, :])        # (N, H, W)


def _phase_gradients(net_fn: NetFn, inputs: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """|∂ out[centre_k] / ∂ input| (max over channels) for output pixels at the stride phases k: (S B, H, W),
    and their centres (S B, 2): the map centre shifted by k (1, 1), k < stride, for every input."""
    b, _, h, w = inputs.shape
    x = inputs.repeat(stride, 1, 1, 1).detach().requires_grad_(True)     # (S B, C, H, W), phase-major
    k = torch.arange(stride).repeat_interleave(b)                       # (S B,)
    centres = torch.stack([h // 2 + k, w // 2 + k], 1) % torch.tensor([h, w])
    out = net_fn(x)                                                     # (S B, C_out, H, W)
    picked = out[torch.arange(len(k)), :, centres[:, 0], centres[:, 1]]  # (S B, C_out)
    (grad,) = torch.autograd.grad(picked.sum(), x)
    return grad.abs().amax(1), centres                                  # (S B, H, W), (S B, 2)


def receptive_radius(net_fn: NetFn, in_channels: int, *, stride: int = 1, size: int = 64, max_size: int = 512,
                     seed: int = 0) -> int | None:
    """Exact receptive radius of ``net_fn`` (float64, non-zero weights), or None if it exceeds max_size / 2.

    The input is random on a periodic window of ``size`` pixels (rounded up to the stride), doubled until
    the support of the gradient stays clear of the far side of the torus (distance < size / 2).
    """
    g = torch.Generator().manual_seed(seed)
    n = -(-size // stride) * stride
    while n <= max_size:
        x = torch.randn(1, in_channels, n, n, generator=g, dtype=torch.float64)
        grad, centres = _phase_gradients(net_fn, x, stride)
        dist = periodic_distance((n, n), centres)
        radius = int(dist[grad > 0].max())
        if radius < n // 2:
            return radius
        n *= 2
    return None


def gradient_profile(net_fn: NetFn, inputs: torch.Tensor, *, stride: int = 1) -> torch.Tensor:
    """max |∂ output / ∂ input| at each periodic Chebyshev distance d = 0 .. max(H, W) // 2 from the output
    pixel, over the inputs (B, C, H, W) and the stride phases of the output pixel -> (D + 1,)."""
    grad, centres = _phase_gradients(net_fn, inputs, stride)
    dist = periodic_distance(inputs.shape[-2:], centres)
    profile = torch.zeros(int(dist.max()) + 1, dtype=grad.dtype)
    return profile.scatter_reduce_(0, dist.flatten(), grad.flatten(), reduce="amax")


def reach_from_profile(profile: torch.Tensor, tol: float) -> int:
    """The largest distance at which a :func:`gradient_profile` is still >= ``tol`` × its maximum."""
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    return int(torch.nonzero(profile >= tol * profile.max()).flatten().max())


def effective_reach(net_fn: NetFn, inputs: torch.Tensor, tol: float = 1e-3, *, stride: int = 1) -> int:
    """Radius (input pixels) beyond which |∂ output / ∂ input| stays below ``tol`` × its maximum, on
    ``inputs`` (B, C, H, W) (e.g. held-out maps noised at a γ). At most max(H, W) // 2: the whole map.
    The maximum includes the identity of an ``add_zt`` U-Net (∂ε̂/∂z_t = 1 + ... at distance 0). One
    backward pass over B × stride maps; for several tolerances use :func:`gradient_profile` once and
    :func:`reach_from_profile`."""
    return reach_from_profile(gradient_profile(net_fn, inputs, stride=stride), tol)


# ---------------------------------------------------------------------------------------------
# the facts a bundle records, and the tiling they allow
# ---------------------------------------------------------------------------------------------
def _norm_kinds(net: nn.Module) -> list[str]:
    kinds = set()
    for m in net.modules():
        if isinstance(m, nn.GroupNorm):
            kinds.add("group")
        elif isinstance(m, PixelNorm):
            kinds.add("pixel")
        elif type(m).__name__ == "FrozenGroupNorm":
            kinds.add("frozen_group")
    return sorted(kinds) or ["none"]


def locality(net: nn.Module) -> dict:
    """Plain facts about a network's locality, for a bundle: ``norm`` (group, pixel, frozen_group, none;
    '+'-joined if mixed), ``attention`` (global, local, none) and ``attention_radius`` (bottleneck pixels),
    ``stride``, ``receptive_radius`` (input pixels; None = unbounded), ``tile_safe`` and ``not_local``
    (why not: what a tiled window would read beyond its halo)."""
    net = getattr(net, "score", net)
    norms = _norm_kinds(net)
    blocks = [m for m in net.modules() if isinstance(m, AttentionBlock)]
    attention = "none" if not blocks else "global" if any(b.radius is None for b in blocks) else "local"
    why = []
    if "group" in norms:
        why.append("GroupNorm normalises each window with its own statistics (use norm='pixel', or freeze the "
                   "statistics with hpc_vdm.models.frozen_norm)")
    if attention == "global":
        why.append("global attention lets every pixel read the whole window (use attention='local' or 'none')")
    radius = structural_radius(net) if not why else None
    if not why and radius is None:
        why.append(f"the receptive radius of a {type(net).__name__} is not known")
    return {"norm": "+".join(norms), "attention": attention,
            "attention_radius": max((b.radius for b in blocks if b.radius is not None), default=0),
            "stride": int(getattr(net, "stride", 1)), "receptive_radius": radius, "tile_safe": not why,
            "not_local": why}


def misaligned_windows(shape: Sequence[int], tile: int | Sequence[int], halo: int | Sequence[int],
                       stride: int) -> list[tuple[int, int, int]]:
    """(axis, tile index, window start) of every window of the periodic tile grid that ``tile`` builds
    (:class:`tiling.TileGrid`, aligned to ``stride`` when tile and halo allow it) whose start, in unwrapped
    coordinates, is not a multiple of ``stride``, plus (axis, -1, window size) if the window size is not one.
    Empty when every window sees the field on the network's stride grid: then a local network of that stride,
    tiled, gives exactly its whole-field output (on a field whose side is a multiple of the stride)."""
    from tiling import TileGrid

    aligned = all(t % stride == 0 and h % stride == 0 for t, h in zip(np.broadcast_to(tile, len(shape)),
                                                                          np.broadcast_to(halo, len(shape))))
    grid = TileGrid.make(shape, tile, halo, align=stride if aligned else 1)
    bad = [(ax, -1, w) for ax, w in enumerate(grid.window) if w % stride]
    for ax in range(grid.ndim):
        starts = [(i, grid.start(ax, i) - grid.halo[ax]) for i in range(grid.counts[ax])]
        bad += [(ax, i, s) for i, s in starts if s % stride]
    return bad
