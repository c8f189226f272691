"""Frozen GroupNorm statistics: a stop-gap that makes a GroupNorm score network local.

GroupNorm normalises each map (or tiled window) with its own per-group mean and variance, so a window is
read through statistics that differ from the whole field's. Here every GroupNorm layer's statistics are
recorded instead, as a function of the noise level γ, over calibration inputs (training maps noised at a
grid of γ values), and evaluated from those: linearly interpolated in γ, the same for every window. The
network then depends only on pixels within its convolutions' reach and tiles exactly.

The statistics are plain tensors, ``{"gamma": (n,), "mean": {layer: (n, G)}, "var": {layer: (n, G)}}``,
to be stored beside the weights at export. A layer's statistics at a γ are the average over the
calibration maps of each map's per-group mean and (biased) variance — what it normalised with in training.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class _Gamma:
    """The γ_t (B,) of the current forward pass, set by the network's pre-hook for its frozen layers."""

    value: torch.Tensor | None = None


def interpolate(grid: torch.Tensor, table: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` (n, G) at γ (B,), linear in γ between the sorted ``grid`` (n,), constant outside -> (B, G)."""
    if grid.numel() == 1:
        return table.expand(gamma.numel(), -1)
    gamma = gamma.to(grid.dtype)
    hi = torch.searchsorted(grid, gamma.contiguous()).clamp(1, grid.numel() - 1)      # (B,)
    w = ((gamma - grid[hi - 1]) / (grid[hi] - grid[hi - 1])).clamp(0, 1)[:, None]     # (B, 1)
    return (1 - w) * table[hi - 1] + w * table[hi]


class FrozenGroupNorm(nn.Module):
    """GroupNorm whose per-group mean and variance come from a table in γ, not from the input."""

    def __init__(self, norm: nn.GroupNorm, gamma: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, clock: _Gamma):
        super().__init__()
        if mean.shape != (gamma.numel(), norm.num_groups) or var.shape != mean.shape:
            raise ValueError(f"frozen statistics must be ({gamma.numel()}, {norm.num_groups}) per layer (γ values, "
                             f"groups), got mean {tuple(mean.shape)} and var {tuple(var.shape)}")
        self.num_groups, self.eps = norm.num_groups, norm.eps
        self.weight, self.bias = norm.weight, norm.bias          # the trained affine parameters, shared
        self.register_buffer("gamma", gamma.clone(), persistent=False)  # not in the state dict: stored apart
        self.register_buffer("mean", mean.clone(), persistent=False)
        self.register_buffer("var", var.clone(), persistent=False)
        self._clock = clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self._clock.value
        if gamma is None:
            raise RuntimeError("FrozenGroupNorm needs γ_t: call the network returned by freeze(), not its layers")
        b, c = x.shape[:2]
        mean = interpolate(self.gamma, self.mean, gamma.reshape(-1).expand(b)).to(x.dtype)  # (B, G)
        var = interpolate(self.gamma, self.var, gamma.reshape(-1).expand(b)).to(x.dtype)    # (B, G)
        xg = x.reshape(b, self.num_groups, -1)                                             # (B, G, C/G H W)
        xg = (xg - mean[:, :, None]) * torch.rsqrt(var[:, :, None] + self.eps)
        y = xg.reshape(x.shape)
        if self.weight is None:
            return y
        shape = (1, c) + (1,) * (x.ndim - 2)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)


def group_norms(net: nn.Module) -> dict[str, nn.GroupNorm]:
    """Every GroupNorm layer of ``net`` by its qualified name."""
    return {name: m for name, m in net.named_modules() if isinstance(m, nn.GroupNorm)}


@torch.no_grad()
def record_stats(net: nn.Module, z_t: torch.Tensor, gamma_t: torch.Tensor, *args, **kwargs) -> dict:
    """{layer: (mean (G,), var (G,))}: each GroupNorm's per-group statistics of ``net(z_t, gamma_t, ...)``,
    averaged over the maps of the batch (each map's own statistics, as GroupNorm computes them).

    The layers run as ``torch.native_group_norm``, which returns the statistics it normalised with beside
    its (identical) output, so recording costs no second pass over the activations."""
    stats, layers = {}, group_norms(net)

    def recording(name, module):
        def forward(x):
            b, c = x.shape[:2]
            y, mean, rstd = torch.native_group_norm(x, module.weight, module.bias, b, c, x[0, 0].numel(),
                                                    module.num_groups, module.eps)   # mean, rstd: (B, G)
            var = rstd.double().pow(-2) - module.eps                                  # rstd = (var + eps)^-1/2
            stats[name] = (mean.double().mean(0), var.mean(0))
            return y
        return forward

    for name, m in layers.items():
        m.forward = recording(name, m)
    try:
        net(z_t, gamma_t, *args, **kwargs)
    finally:
        for m in layers.values():
            del m.forward                                                            # the class's forward again
    return stats


@torch.no_grad()
def calibrate(net: nn.Module, x: torch.Tensor, cond: torch.Tensor | None, gammas, *, params: torch.Tensor | None = None,
              seed: int = 0, batch_size: int = 16) -> dict:
    """Frozen statistics of ``net`` from target maps x (N, 1, H, W) and their condition (N, C, H, W) or None,
    noised as z_γ = α x + σ ε (α² = sigmoid(−γ), σ² = sigmoid(γ), ε from ``seed``) at each γ of ``gammas``."""
    gammas = torch.as_tensor(gammas, dtype=torch.float64).flatten().sort().values
    g = torch.Generator().manual_seed(seed)
    mean, var = {}, {}
    was_training = net.training
    net.eval()
    try:
        for gamma in gammas:
            alpha, sigma = torch.sigmoid(-gamma).sqrt().item(), torch.sigmoid(gamma).sqrt().item()
            sums = {}
            for b0 in range(0, len(x), batch_size):
                xb = x[b0:b0 + batch_size]
                eps = torch.randn(xb.shape, generator=g, dtype=torch.float64).to(xb)
                zb = alpha * xb + sigma * eps                                       # (b, 1, H, W)
                extra = [None if cond is None else cond[b0:b0 + batch_size],
                         None if params is None else params[b0:b0 + batch_size]]
                gb = torch.full((len(xb),), gamma.item(), dtype=xb.dtype, device=xb.device)
                for name, (m, v) in record_stats(net, zb, gb, *extra).items():
                    pm, pv = sums.get(name, (0.0, 0.0))
                    sums[name] = (pm + m * len(xb), pv + v * len(xb))
            for name, (m, v) in sums.items():
                mean.setdefault(name, []).append(m / len(x))
                var.setdefault(name, []).append(v / len(x))
    finally:
        net.train(was_training)
    return {"gamma": gammas, "mean": {k: torch.stack(v) for k, v in mean.items()},
            "var": {k: torch.stack(v) for k, v in var.items()}}


def freeze(net: nn.Module, stats: dict) -> nn.Module:
    """A copy of ``net`` (a module called as ``net(z_t, gamma_t, ...)``) whose GroupNorm layers use the frozen
    ``stats`` (from :func:`calibrate` or :func:`record_stats` gathered by γ); ``net`` itself is unchanged."""
    net = copy.deepcopy(net)
    layers = group_norms(net)
    missing, extra = sorted(set(layers) - set(stats["mean"])), sorted(set(stats["mean"]) - set(layers))
    if missing or extra:
        raise ValueError(f"frozen statistics do not fit this network: layers without statistics {missing}, "
                         f"statistics of unknown layers {extra}")
    gamma = torch.as_tensor(stats["gamma"], dtype=torch.float64).flatten()
    if gamma.numel() > 1 and not bool((gamma[1:] > gamma[:-1]).all()):
        raise ValueError(f"frozen statistics need increasing γ values, got {gamma.tolist()}")
    clock = _Gamma()
    for name, norm in layers.items():
        parent, _, attr = name.rpartition(".")
        owner = net.get_submodule(parent) if parent else net
        frozen = FrozenGroupNorm(norm, gamma, torch.as_tensor(stats["mean"][name], dtype=torch.float64),
                                 torch.as_tensor(stats["var"][name], dtype=torch.float64), clock)
        setattr(owner, attr, frozen)

    def set_gamma(module, args, kwargs):
        clock.value = args[1] if len(args) > 1 else kwargs["gamma_t"]

    net.register_forward_pre_hook(set_gamma, with_kwargs=True)
    return net
