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


def build_regressor(model_cfg) -> FieldRegressor:
    """A :class:`FieldRegressor` from a ``ModelConfig``-like object (``blocks_per_level`` = residual blocks)."""
    return FieldRegressor(channels=model_cfg.channels, n_blocks=model_cfg.blocks_per_level,
                          norm_groups=model_cfg.norm_groups, dropout=model_cfg.dropout,
                          norm=getattr(model_cfg, "norm", "group"))
