"""The two-phase CNN of Zhang et al. (2019), as Sether et al. (2024) use it in 2D: a classifier, then a gated regressor.

Phase 1, a per-pixel **classifier** of galaxy presence (a logit per pixel); phase 2, a **regressor** of the
(normalised) log stellar mass, whose output counts only where the frozen classifier says a galaxy is:

    out = regressor(x)  where  sigmoid(gate(x)) > threshold,  else the empty-pixel value.

Networks (``model.two_phase.classifier`` / ``regressor``): :class:`InceptionNet`, Zhang+19's classifier in
2D (Inception-E blocks of parallel 1x1, 3x3, 5x5 and 3x3-pool->1x1 branches, then 3x3 convs 27 -> 27 -> 13
and a 1x1 to one channel; circular padding; the logit layer without Zhang's trailing ReLU), or the
project's score U-Net used deterministically (:class:`~hpc_vdm.models.regressor.MapUNet`).

Freezing survives any optimizer: :class:`TwoPhaseNet` holds the trained ``classifier`` and a ``gate``, a
copy whose parameters never require gradients (so DeepSpeed never hands them to AdamW, whose momentum and
weight decay would move a parameter even with zero gradients). :meth:`TwoPhaseNet.sync_gate` copies the
classifier into the gate; the family calls it before every phase-1 step and never after, so from the
switch step the gate is the classifier as phase 1 left it, and the EMA and the export carry it like any
weight. Inference uses the gate and the regressor; ``forward`` returns both (gate logit, regression), so
the module is one local map -> map network (receptive radius the larger of the two) for tiling.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .reach import structural_radius
from .regressor import MapUNet, _Overrides

PARTS = ("both", "classifier", "gate", "regressor")


def _conv(ch_in: int, ch_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(ch_in, ch_out, k, padding=k // 2, padding_mode="circular")


class InceptionBlock(nn.Module):
    """Parallel 1x1, 3x3, 5x5 and (3x3 average pool -> 1x1) branches, each ReLU'd, concatenated: (B, C, H, W) ->
    (B, sum(widths), H, W). Receptive radius 2."""

    def __init__(self, ch_in: int, widths: Sequence[int] = (6, 8, 10, 3)):
        super().__init__()
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"an Inception block needs 4 positive branch widths (1x1, 3x3, 5x5, pool), got {list(widths)}")
        c1, c3, c5, cp = (int(w) for w in widths)
        self.b1, self.b3, self.b5, self.bp = _conv(ch_in, c1, 1), _conv(ch_in, c3, 3), _conv(ch_in, c5, 5), _conv(ch_in, cp, 1)
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="circular"), 3, stride=1)        # (B, C, H, W)
        return torch.cat([F.relu(self.b1(x)), F.relu(self.b3(x)), F.relu(self.b5(x)), F.relu(self.bp(pooled))], 1)


class InceptionNet(nn.Module):
    """Zhang+19's Inception classifier in 2D: ``n_blocks`` Inception blocks, a 3x3 conv C -> C, a 3x3 conv
    C -> C/2 (ReLU after each), a 1x1 conv to one channel (a logit or a value). Local: receptive radius
    2 n_blocks + 2, stride 1; takes no parameters."""

    def __init__(self, widths: Sequence[int] = (6, 8, 10, 3), n_blocks: int = 1, in_channels: int = 1):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"an InceptionNet needs at least one block, got {n_blocks!r}")
        blocks, ch = [], in_channels
        for _ in range(n_blocks):
            blocks.append(InceptionBlock(ch, widths))
            ch = blocks[-1].out_channels
        self.blocks = nn.ModuleList(blocks)
        self.conv1, self.conv2 = _conv(ch, ch, 3), _conv(ch, max(ch // 2, 1), 3)
        self.head = nn.Conv2d(max(ch // 2, 1), 1, 1)
        self.stride, self.n_params, self.receptive_radius = 1, 0, 2 * n_blocks + 2

    def forward(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """cond (B, 1, H, W) normalised -> (B, 1, H, W)."""
        if params is not None:
            raise ValueError("an InceptionNet takes no parameters; use the unet backbone to condition on model.params")
        h = cond
        for blk in self.blocks:
            h = blk(h)
        return self.head(F.relu(self.conv2(F.relu(self.conv1(h)))))


class TwoPhaseNet(nn.Module):
    """classifier (trained in phase 1), gate (its frozen copy), regressor (trained in phase 2 through the gate)."""

    def __init__(self, classifier: nn.Module, regressor: nn.Module, threshold: float = 0.5):
        super().__init__()
        if not (isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0):
            raise ValueError(f"model.two_phase.threshold must lie in the open interval (0, 1), got {threshold!r}")
        self.classifier, self.regressor = classifier, regressor
        self.gate = copy.deepcopy(classifier).requires_grad_(False)
        self.threshold = float(threshold)
        self.stride = max(int(getattr(classifier, "stride", 1)), int(getattr(regressor, "stride", 1)))
        radii = [structural_radius(classifier), structural_radius(regressor)]
        self.receptive_radius = None if None in radii else max(radii)
        self.n_params = max(getattr(classifier, "n_params", 0), getattr(regressor, "n_params", 0))

    @torch.no_grad()
    def sync_gate(self) -> None:
        """gate <- classifier (called before every phase-1 step; the gate is frozen from the switch on)."""
        for g, c in zip(self.gate.parameters(), self.classifier.parameters()):
            g.copy_(c.detach())

    def _call(self, net: nn.Module, cond, params):
        return net(cond) if params is None else net(cond, params)

    def forward(self, cond: torch.Tensor, params: torch.Tensor | None = None, part: str = "both") -> torch.Tensor:
        """cond (B, 1, H, W) [, params (B, p)] -> (B, 2, H, W): gate logit, regression (normalised target); or one
        part's (B, 1, H, W) output (``part`` classifier, gate or regressor)."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        if part != "both":
            return self._call(getattr(self, part), cond, params)
        return torch.cat([self._call(self.gate, cond, params), self._call(self.regressor, cond, params)], 1)

    def gated(self, cond: torch.Tensor, floor: float, params: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) normalised prediction: the regression where the gate's probability exceeds the threshold,
        ``floor`` (the empty pixel's value) elsewhere."""
        out = self.forward(cond, params)
        return gate_output(out, self.threshold, floor)


def gate_output(out: torch.Tensor, threshold: float, floor: float) -> torch.Tensor:
    """(B, 1, H, W) of a :class:`TwoPhaseNet` output (B, 2, H, W): regression where sigmoid(logit) > threshold."""
    galaxy = torch.sigmoid(out[:, :1]) > threshold
    return torch.where(galaxy, out[:, 1:], torch.full_like(out[:, 1:], floor))


def _backbone(kind: str, model_cfg, n_params: int) -> nn.Module:
    if kind == "unet":
        from .unet import build_unet

        cfg = _Overrides(model_cfg, add_zt=False)
        return MapUNet(build_unet(cfg, gamma_range=(-1.0, 1.0), n_params=n_params, cond_channels=0))
    if n_params:
        raise ValueError(f"an inception network takes no parameters (model.params has {n_params}); use unet")
    opts = model_cfg.two_phase
    return InceptionNet(opts.inception_widths, opts.inception_blocks)


def build_two_phase(model_cfg, n_params: int = 0) -> TwoPhaseNet:
    """The :class:`TwoPhaseNet` of a ``ModelConfig``-like object (``two_phase`` options; the U-Net options of
    the model itself for a unet part)."""
    opts = model_cfg.two_phase
    return TwoPhaseNet(_backbone(opts.classifier, model_cfg, n_params), _backbone(opts.regressor, model_cfg, n_params),
                       threshold=opts.threshold)
