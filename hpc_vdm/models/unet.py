"""The papers' conditional score U-Net: ε̂(z_t, γ_t [, stellar map] [, parameters]).

Input z_t ⊕ condition (2 channels) -> conv -> ``len(channel_mults)`` levels of residual blocks, each
followed by a learned 2x2 stride-2 downsampling -> bottleneck ResBlock(8E->16E), attention, ResBlock ->
mirrored levels (2x2 transposed-conv upsampling, skip concatenation, ResBlock) -> norm-SiLU-conv -> ε̂.
With ``add_zt`` the network returns ``net + z_t`` (the papers' base measure); with a ``prior``
(:mod:`hpc_vdm.models.prior`) it returns ``net + ε̂_G`` instead, the exact denoiser of a Gaussian around an
estimate from the condition (its linear transfer, or a frozen regressor's prediction). Defaults are the papers'
(E=48, x1/x2/x4/x8, one block per level, GroupNorm 8, dropout 0.1, one attention head): 32.7 M parameters.

Locality: with ``norm="pixel"`` (or ``"none"``) and ``attention="local"`` (or ``"none"``) every output pixel
depends only on the input pixels within a fixed receptive radius (:mod:`hpc_vdm.models.reach`), so a
field tiled with a halo >= that radius, in windows that start on multiples of the stride, gives the
whole-field output. The defaults (GroupNorm, global attention) are not local; they are kept for the
models trained with them. ``cond_channels=0`` builds a U-Net without a map condition (an emulator).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ATTENTIONS, NORMS, AttentionBlock, GammaEmbedding, ResnetBlock, conv3x3, make_norm


def unet_stride(channel_mults: Sequence[int]) -> int:
    """Total downsampling of the U-Net: map sizes must be multiples of it (16 for the papers' 4 levels)."""
    return 2 ** len(channel_mults)


def attention_kind(attention: bool | str, radius: int) -> str:
    """``attention`` as one of :data:`ATTENTIONS` (True = "global", False = "none", as configs wrote it)."""
    kind = ("global" if attention else "none") if isinstance(attention, bool) else attention
    if kind not in ATTENTIONS:
        raise ValueError(f"attention must be one of {list(ATTENTIONS)} (or true/false), got {attention!r}")
    if kind == "local" and (isinstance(radius, bool) or not isinstance(radius, int) or radius < 1):
        raise ValueError(f"attention='local' needs attention_radius >= 1 (bottleneck pixels), got {radius!r}")
    if kind != "local" and radius:
        raise ValueError(f"attention_radius={radius!r} applies to attention='local' only, got attention={kind!r}")
    return kind


class UNet(nn.Module):
    def __init__(self, *, channels: int = 48, channel_mults: Sequence[int] = (1, 2, 4, 8), blocks_per_level: int = 1,
                 attention: bool | str = True, attention_heads: int = 1, attention_radius: int = 0,
                 norm: str = "group", norm_groups: int = 8, dropout: float = 0.1, add_zt: bool = True,
                 in_channels: int = 1, cond_channels: int = 1, n_params: int = 0, param_mlp: bool = False,
                 gamma_range: tuple[float, float] = (-13.3, 13.3), prior: nn.Module | None = None):
        super().__init__()
        if not channel_mults:
            raise ValueError("channel_mults must name at least one level")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
        if cond_channels < 0:
            raise ValueError(f"cond_channels must be >= 0 (0: no map condition), got {cond_channels!r}")
        if prior is not None and (cond_channels != 1 or in_channels != 1 or add_zt):
            raise ValueError(f"a prior base needs one condition map, one channel and add_zt=False (it replaces the "
                             f"z_t base), got cond_channels={cond_channels}, in_channels={in_channels}, add_zt={add_zt}")
        self.prior = prior
        E, emb_dim = channels, 4 * channels
        self.add_zt, self.n_params, self.stride = add_zt, n_params, unet_stride(channel_mults)
        self.in_channels, self.cond_channels = in_channels, cond_channels
        self.levels, self.blocks_per_level, self.norm_kind = len(channel_mults), blocks_per_level, norm
        self.attention_kind = attention_kind(attention, attention_radius)
        self.attention_radius = attention_radius if self.attention_kind == "local" else 0
        block = dict(emb_dim=emb_dim, groups=norm_groups, dropout=dropout, norm=norm)

        self.embed = GammaEmbedding(E, emb_dim, gamma_range, n_params, param_mlp)
        self.conv_in = conv3x3(in_channels + cond_channels, E)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch, skips = E, []
        for mult in channel_mults:
            level = nn.ModuleList()
            for _ in range(blocks_per_level):
                level.append(ResnetBlock(ch, E * mult, **block))
                ch = E * mult
            self.down.append(level)
            skips.append(ch)
            self.downsample.append(nn.Conv2d(ch, ch, 2, stride=2))
        self.mid1 = ResnetBlock(ch, 2 * ch, **block)
        self.mid_attn = None if self.attention_kind == "none" else AttentionBlock(
            2 * ch, heads=attention_heads, groups=norm_groups, norm=norm,
            radius=self.attention_radius if self.attention_kind == "local" else None)
        self.mid2 = ResnetBlock(2 * ch, 2 * ch, **block)
        ch = 2 * ch
        self.upsample, self.up = nn.ModuleList(), nn.ModuleList()
        for skip in reversed(skips):
            self.upsample.append(nn.ConvTranspose2d(ch, skip, 2, stride=2))
            level = nn.ModuleList([ResnetBlock(2 * skip, skip, **block)])
            level.extend(ResnetBlock(skip, skip, **block) for _ in range(blocks_per_level - 1))
            self.up.append(level)
            ch = skip
        self.norm_out = make_norm(norm, ch, norm_groups)
        self.conv_out = conv3x3(ch, in_channels, zero=True)

    def check_shape(self, shape: Sequence[int]) -> None:
        """Spatial sizes must be multiples of the total stride 2^levels (16 for the papers' net)."""
        bad = [n for n in shape[-2:] if n % self.stride]
        if bad:
            raise ValueError(f"map size {tuple(shape[-2:])} is not a multiple of the U-Net stride {self.stride}")

    def inputs(self, z_t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """z_t (B, in, H, W) ⊕ cond (B, cond_channels, H, W) -> (B, in + cond_channels, H, W); cond checked."""
        if self.cond_channels == 0:
            if cond is not None:
                raise ValueError(f"this U-Net has no map condition (cond_channels=0), but a cond of shape "
                                 f"{tuple(cond.shape)} was passed; pass cond=None")
            return z_t
        want = (z_t.shape[0], self.cond_channels, *z_t.shape[2:])
        if cond is None:
            raise ValueError(f"this U-Net conditions on a map (cond_channels={self.cond_channels}); "
                             f"pass cond of shape {want}")
        if tuple(cond.shape) != want:
            raise ValueError(f"cond must have shape {want} (z_t is {tuple(z_t.shape)}), got {tuple(cond.shape)}")
        return torch.cat([z_t, cond], dim=1)

    def forward(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor | None = None,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """z_t (B, 1, H, W), γ_t (B,), cond (B, 1, H, W) or None, params (B, n_params) -> ε̂ (B, 1, H, W)."""
        self.check_shape(z_t.shape)
        emb = self.embed(gamma_t, params)                                # (B, 4E)
        h = self.conv_in(self.inputs(z_t, cond))                         # (B, E, H, W)
        skips = []
        for level, down in zip(self.down, self.downsample):
            for blk in level:
                h = blk(h, emb)
            skips.append(h)
            h = down(h)                                                  # (B, ch, H/2, W/2)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, emb)                                            # (B, 16E, H/16, W/16)
        for up, level in zip(self.upsample, self.up):
            h = torch.cat([up(h), skips.pop()], dim=1)                   # (B, 2 ch, 2H', 2W')
            for blk in level:
                h = blk(h, emb)
        out = self.conv_out(F.silu(self.norm_out(h)))                    # (B, 1, H, W)
        if self.prior is not None:
            return out + self.prior.eps_hat(z_t, gamma_t, cond, params).to(out.dtype)
        return out + z_t if self.add_zt else out


def model_locality_args(model_cfg) -> dict:
    """``norm``/``attention``/``attention_radius`` of a ``ModelConfig``-like object; configs written before
    these fields existed read as GroupNorm and global (``attention: true``) or no attention."""
    radius = int(getattr(model_cfg, "attention_radius", 0) or 0)
    attention = model_cfg.attention
    if isinstance(attention, bool):  # the config's switch: on = local when a radius is given, else global
        attention = ("local" if radius else "global") if attention else "none"
    return dict(norm=getattr(model_cfg, "norm", "group"), attention=attention, attention_radius=radius)


def build_unet(model_cfg, *, gamma_range: tuple[float, float], n_params: int = 0, cond_channels: int = 1,
               param_mlp: bool = False, prior: nn.Module | None = None) -> UNet:
    """A :class:`UNet` from a ``ModelConfig``-like object (read by attribute; the model never imports config),
    conditioned on ``cond_channels`` maps (0: none) and ``n_params`` scalars (through an MLP with ``param_mlp``);
    a ``prior`` base replaces ``add_zt``'s."""
    return UNet(channels=model_cfg.channels, channel_mults=tuple(model_cfg.channel_mults),
                blocks_per_level=model_cfg.blocks_per_level, attention_heads=model_cfg.attention_heads,
                norm_groups=model_cfg.norm_groups, dropout=model_cfg.dropout,
                add_zt=model_cfg.add_zt and prior is None, cond_channels=cond_channels, n_params=n_params,
                param_mlp=param_mlp, gamma_range=gamma_range, prior=prior, **model_locality_args(model_cfg))
