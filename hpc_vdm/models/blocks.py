"""Building blocks of the score U-Net: periodic convolutions, normalisations, residual blocks, attention, γ embedding.

Every spatial convolution pads circularly: the maps are periodic, so the network is equivariant to
periodic shifts (by multiples of its total stride) and tiles of a larger torus see no artificial edges.

Normalisations (``norm``): ``"group"`` is GroupNorm, whose per-map statistics make every output pixel
depend on the whole input (a tiled window is normalised by its own statistics, not the field's);
``"pixel"`` normalises the channels of each pixel on their own (LayerNorm over C), so it is local;
``"none"`` leaves activations as they are. Attention (``radius``): ``None`` attends over all pixels (global),
an integer r over the (2r+1)² periodic neighbourhood of each pixel (local, reach r).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("group", "pixel", "none")
ATTENTIONS = ("global", "local", "none")


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


class PixelNorm(nn.Module):
    """LayerNorm over the channels of each pixel: (x − mean_C) / sqrt(var_C + eps) · gain + bias.

    An output pixel reads only its own input pixel, so the normalisation adds nothing to the network's
    reach. The parameters are named ``gain``/``bias`` (GroupNorm's are ``weight``/``bias``), so GroupNorm
    weights never load silently into a pixel-normalised network.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, *spatial) -> same
        # In the input's own layout: F.layer_norm over a moved channel axis returns a channels-last tensor that
        # every later op copies back (measured: this form makes a CPU training step of the demo's U-Net ~19% faster).
        mean = x.mean(1, keepdim=True)                                       # (B, 1, *spatial)
        var = (x - mean).square().mean(1, keepdim=True)                      # biased, as LayerNorm's
        shape = (-1,) + (1,) * (x.dim() - 2)                                 # (C, 1, ...): broadcast over space
        return (x - mean) * torch.rsqrt(var + self.eps) * self.gain.view(shape) + self.bias.view(shape)


def make_norm(kind: str, channels: int, groups: int) -> nn.Module:
    """The normalisation ``kind`` (one of :data:`NORMS`) of ``channels`` channels."""
    if kind == "group":
        return group_norm(channels, groups)
    if kind == "pixel":
        return PixelNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {list(NORMS)}, got {kind!r}")


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
    are added through their own zero-initialised projection (off unless ``n_params`` > 0): one linear map, or
    with ``param_mlp`` a 2-layer SiLU MLP (Mudur+23's emulator), so the embedding every residual block
    receives is a non-linear function of the parameters.
    """

    def __init__(self, channels: int, dim: int, gamma_range: tuple[float, float], n_params: int = 0,
                 param_mlp: bool = False):
        super().__init__()
        self.channels, self.gamma_min, self.gamma_max = channels, float(gamma_range[0]), float(gamma_range[1])
        self.mlp = nn.Sequential(nn.Linear(channels, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())
        self.params_proj = None
        if n_params:
            self.params_proj = (nn.Sequential(nn.Linear(n_params, dim), nn.SiLU(), zero_init(nn.Linear(dim, dim)))
                                if param_mlp else zero_init(nn.Linear(n_params, dim)))

    def forward(self, gamma_t: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        g = (gamma_t - self.gamma_min) / (self.gamma_max - self.gamma_min)       # (B,) in [0, 1] initially
        emb = self.mlp(sinusoidal_embedding(1000.0 * g, self.channels).to(self.mlp[0].weight.dtype))  # (B, dim)
        if self.params_proj is not None:
            if params is None:
                raise ValueError("this model conditions on simulation parameters; pass params (B, n_params)")
            emb = emb + self.params_proj(params.to(emb.dtype))
        return emb


class ResnetBlock(nn.Module):
    """norm-SiLU-conv, + projected embedding, norm-SiLU-dropout-conv (zero-init), 1x1 skip if channels change."""

    def __init__(self, ch_in: int, ch_out: int, emb_dim: int, *, groups: int, dropout: float, norm: str = "group"):
        super().__init__()
        self.norm1, self.conv1 = make_norm(norm, ch_in, groups), conv3x3(ch_in, ch_out)
        self.emb_proj = zero_init(nn.Linear(emb_dim, ch_out, bias=False))
        self.norm2, self.drop = make_norm(norm, ch_out, groups), nn.Dropout(dropout)
        self.conv2 = conv3x3(ch_out, ch_out, zero=True)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))                           # (B, ch_out, H, W)
        h = h + self.emb_proj(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, radius: int) -> torch.Tensor:
    """Softmax attention of every pixel over its (2r+1)² periodic neighbourhood.

    q, k, v (B, nh, hs, H, W) -> (B, nh, hs, H, W). The neighbourhood wraps around the map like the
    circular convolutions; it must fit in the map (2r+1 <= H, W), so that no key is counted twice.
    """
    b, nh, hs, h, w = k.shape
    size = 2 * radius + 1
    if size > h or size > w:
        raise ValueError(f"attention_radius={radius} needs a bottleneck of at least {size}x{size} pixels, "
                         f"got {h}x{w} (use a smaller radius or larger maps)")
    kv = F.pad(torch.cat([k, v], 2).reshape(b, nh * 2 * hs, h, w), (radius,) * 4, mode="circular")
    kv = F.unfold(kv, size).reshape(b, nh, 2, hs, size * size, h * w)   # (B, nh, 2, hs, K², HW)
    logits = torch.einsum("bncp,bnckp->bnkp", q.reshape(b, nh, hs, h * w), kv[:, :, 0]) / math.sqrt(hs)
    a = logits.softmax(dim=2)                                           # (B, nh, K², HW)
    return torch.einsum("bnkp,bnckp->bncp", a, kv[:, :, 1]).reshape(b, nh, hs, h, w)


class AttentionBlock(nn.Module):
    """Multi-head self-attention, pre-normalised, zero-initialised output, residual.

    ``radius=None``: over all pixels (global); ``radius=r``: over each pixel's (2r+1)² periodic neighbourhood.
    """

    def __init__(self, channels: int, *, heads: int, groups: int, norm: str = "group", radius: int | None = None):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention_heads={heads} does not divide the bottleneck channels {channels}")
        if radius is not None and radius < 1:
            raise ValueError(f"attention_radius must be >= 1 for local attention, got {radius!r}")
        self.heads, self.radius = heads, radius
        self.norm = make_norm(norm, channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))                                                    # (B, 3C, H, W)
        if self.radius is not None:
            q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h, w).unbind(1)     # (B, nh, hs, H, W)
            return x + self.out(local_attention(q, k, v, self.radius).reshape(b, c, h, w))
        qkv = qkv.reshape(b, 3, self.heads, c // self.heads, h * w)                     # (B, 3, nh, hs, HW)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))                       # (B, nh, HW, hs)
        a = F.scaled_dot_product_attention(q, k, v)                                     # (B, nh, HW, hs)
        return x + self.out(a.transpose(-1, -2).reshape(b, c, h, w))
