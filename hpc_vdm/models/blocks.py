"""Building blocks of the score U-Net: periodic convolutions, residual blocks, attention, γ embedding.

Every spatial convolution pads circularly: the maps are periodic, so the network is equivariant to
periodic shifts (by multiples of its total stride) and tiles of a larger torus see no artificial edges.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(ch_in: int, ch_out: int, *, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(ch_in, ch_out, 3, padding=1, padding_mode="circular")
    if zero:
        zero_init(conv)
    return conv


def zero_init(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    if channels % groups:
        raise ValueError(f"norm_groups={groups} does not divide a level's channel count {channels}")
    return nn.GroupNorm(groups, channels)


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 1e4) -> torch.Tensor:
    """(B,) -> (B, dim): [sin(x f_i), cos(x f_i)] with frequencies f_i = max_period^(-i/(dim/2)), i < dim/2."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]                         # (B, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)      # (B, 2 half)
    return F.pad(emb, (0, dim - 2 * half))                          # (B, dim) for odd dim too


class GammaEmbedding(nn.Module):
    """γ_t -> conditioning vector: sinusoid of 1000 (γ_t - γ_min)/(γ_max - γ_min), then a 2-layer SiLU MLP.

    The normalisation uses the *initial* schedule bounds, as in the papers, so that a learned schedule
    does not move the embedding of a given noise level. Optional simulation parameters (B, n_params)
    are added through their own zero-initialised projection (off unless ``n_params`` > 0).
    """

    def __init__(self, channels: int, dim: int, gamma_range: tuple[float, float], n_params: int = 0):
        super().__init__()
        self.channels, self.gamma_min, self.gamma_max = channels, float(gamma_range[0]), float(gamma_range[1])
        self.mlp = nn.Sequential(nn.Linear(channels, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())
        self.params_proj = zero_init(nn.Linear(n_params, dim)) if n_params else None

    def forward(self, gamma_t: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        g = (gamma_t - self.gamma_min) / (self.gamma_max - self.gamma_min)       # (B,) in [0, 1] initially
        emb = self.mlp(sinusoidal_embedding(1000.0 * g, self.channels).to(self.mlp[0].weight.dtype))  # (B, dim)
        if self.params_proj is not None:
            if params is None:
                raise ValueError("this model conditions on simulation parameters; pass params (B, n_params)")
            emb = emb + self.params_proj(params.to(emb.dtype))
        return emb


class ResnetBlock(nn.Module):
    """GN-SiLU-conv, + projected embedding, GN-SiLU-dropout-conv (zero-init), 1x1 skip if channels change."""

    def __init__(self, ch_in: int, ch_out: int, emb_dim: int, *, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = group_norm(ch_in, groups), conv3x3(ch_in, ch_out)
        self.emb_proj = zero_init(nn.Linear(emb_dim, ch_out, bias=False))
        self.norm2, self.drop = group_norm(ch_out, groups), nn.Dropout(dropout)
        self.conv2 = conv3x3(ch_out, ch_out, zero=True)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))                           # (B, ch_out, H, W)
        h = h + self.emb_proj(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all pixels, pre-GroupNorm, zero-initialised output, residual."""

    def __init__(self, channels: int, *, heads: int, groups: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention_heads={heads} does not divide the bottleneck channels {channels}")
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)  # (B, 3, nh, hs, HW)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))                       # (B, nh, HW, hs)
        a = F.scaled_dot_product_attention(q, k, v)                                     # (B, nh, HW, hs)
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))
