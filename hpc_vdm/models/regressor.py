"""A deterministic field-to-field regressor: condition map -> target map, periodic residual CNN.

The template for the families to come (and a baseline for the VDM): ``conv_in`` to ``channels``, then
``n_blocks`` residual blocks GN-SiLU-conv3x3-GN-SiLU-dropout-conv3x3 (circular padding, zero-initialised
last conv, so every block starts as the identity), then GN-SiLU-conv to one channel. Fully convolutional:
any map size works, and its receptive radius is ``2 n_blocks + 2`` pixels. ``norm="pixel"`` (or ``"none"``)
replaces GroupNorm, whose per-map statistics reach the whole map, by a local normalisation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import NORMS, conv3x3, make_norm


class _Block(nn.Module):
    def __init__(self, channels: int, *, groups: int, dropout: float, norm: str = "group"):
        super().__init__()
        self.norm1, self.conv1 = make_norm(norm, channels, groups), conv3x3(channels, channels)
        self.norm2, self.drop = make_norm(norm, channels, groups), nn.Dropout(dropout)
        self.conv2 = conv3x3(channels, channels, zero=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(self.drop(F.silu(self.norm2(h))))


class FieldRegressor(nn.Module):
    def __init__(self, *, channels: int = 32, n_blocks: int = 4, norm_groups: int = 8, dropout: float = 0.0,
                 cond_channels: int = 1, out_channels: int = 1, norm: str = "group"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
        self.stride, self.norm_kind = 1, norm
        self.receptive_radius = 2 * n_blocks + 2
        self.conv_in = conv3x3(cond_channels, channels)
        self.blocks = nn.ModuleList(_Block(channels, groups=norm_groups, dropout=dropout, norm=norm)
                                    for _ in range(n_blocks))
        self.norm_out = make_norm(norm, channels, norm_groups)
        self.conv_out = conv3x3(channels, out_channels)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """cond (B, 1, H, W) normalised -> prediction (B, 1, H, W) in the normalised target space."""
        h = self.conv_in(cond)                                           # (B, C, H, W)
        for blk in self.blocks:
            h = blk(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Overrides:
    """A config-like object with some attributes replaced."""

    def __init__(self, base, **changes):
        self._base, self._changes = base, changes

    def __getattr__(self, name):
        return self._changes[name] if name in self._changes else getattr(self._base, name)


class MapUNet(nn.Module):
    """The score U-Net used deterministically: condition map (B, 1, H, W) [+ parameters] -> prediction.

    The condition goes in the U-Net's input slot (no second map channel), at a fixed γ = 0, with no
    ``z_t`` residual: the same architecture, normalisation and locality as the VDM's network, trained with
    MSE. The honest deterministic baseline of a VDM of the same size."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        if unet.cond_channels or unet.add_zt:
            raise ValueError("MapUNet needs a U-Net without a condition channel and without add_zt")
        self.unet = unet
        self.stride, self.n_params = unet.stride, unet.n_params
        from .reach import structural_radius

        self.receptive_radius = structural_radius(unet)

    def forward(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        gamma = torch.zeros(cond.shape[0], dtype=cond.dtype, device=cond.device)      # (B,)
        return self.unet(cond, gamma, None, params)                                   # (B, 1, H, W)


# the model options that decide a U-Net regressor's architecture (with ``backbone: unet``): a regressor used as a
# VDM's prior base is rebuilt from the VDM's own options, so they must agree on these
UNET_OPTIONS = ("channels", "channel_mults", "blocks_per_level", "attention", "attention_heads", "attention_radius",
                "norm", "norm_groups", "params")


def regressor_options(model_cfg):
    """``model_cfg`` read as a ``backbone: unet`` regressor's options (a VDM's regressor prior)."""
    return _Overrides(model_cfg, backbone="unet")


def build_regressor(model_cfg, n_params: int = 0) -> nn.Module:
    """The regressor of a ``ModelConfig``-like object: ``backbone`` cnn (a :class:`FieldRegressor`,
    ``blocks_per_level`` residual blocks) or unet (a :class:`MapUNet` of the U-Net options, conditioned on
    ``n_params`` scalars)."""
    if getattr(model_cfg, "backbone", "cnn") == "unet":
        from .unet import build_unet

        cfg = _Overrides(model_cfg, add_zt=False)
        return MapUNet(build_unet(cfg, gamma_range=(-1.0, 1.0), n_params=n_params, cond_channels=0))
    if n_params:
        raise ValueError(f"a cnn regressor takes no parameters (got {n_params}); use backbone unet")
    return FieldRegressor(channels=model_cfg.channels, n_blocks=model_cfg.blocks_per_level,
                          norm_groups=model_cfg.norm_groups, dropout=model_cfg.dropout,
                          norm=getattr(model_cfg, "norm", "group"))
