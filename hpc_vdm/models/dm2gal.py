"""dm2gal (Kasmanoff+20): a 3D CNN from a two-channel patch (dark matter, subhalos) to the stellar mass of
its central voxel, and the same network rewritten to predict every voxel of a block in one pass.

Patch network (:class:`DM2Gal`): a chain of valid (padding 0) Conv3d-BatchNorm-ReLU layers alternating
large kernels at stride 1 and k = 3 at stride 2, then two dense layers to one value. The paper's
default on a 65^3 patch (``PAPER_KERNELS``/``PAPER_STRIDES``/``PAPER_WIDTHS``)::

    65 -k7-> 59 -k7-> 53 -k3s2-> 26 -k5-> 22 -k5-> 18 -k3s2-> 8 -k3-> 6 -k3-> 4 -k3s2-> 1,  FC 8C->256->1

Strided layers on even sizes drop their last input voxel, so the output reads the patch offsets
[-32, +26] around the centre (``reach`` = (32, 26)); ``patch`` need only cover that.

Dense network (:class:`DenseDM2Gal`, "à trous"): a stride-s layer followed by layers on the coarser grid
equals, on the fine grid, the same layer at stride 1 with every later layer's dilation multiplied by s.
A dilated convolution is computed as s^3 plain ones on the sub-lattices (space-to-batch, as TF's atrous
conv does), which runs at the speed of ordinary convolutions on CPUs and GPUs.
Dense layers become 1x1x1 convolutions and BatchNorm runs with its running statistics (eval mode), so
on a window of W voxels per axis the output (W - reach_lo - reach_hi) voxel j equals the patch network on
the patch whose centre is window voxel j + reach_lo, exactly (same weights, same arithmetic per value).

BatchNorm keeps its running statistics as frozen parameters (not buffers), so the loop's EMA and the
exported weights carry them like every other weight.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PAPER_KERNELS = (7, 7, 3, 5, 5, 3, 3, 3, 3)
PAPER_STRIDES = (1, 1, 2, 1, 1, 2, 1, 1, 2)
PAPER_WIDTHS = (1, 1, 2, 2, 2, 4, 4, 4, 8)   # multiples of ``channels`` per layer


class BatchNorm3d(nn.Module):
    """BatchNorm over (B, C, X, Y, Z) whose running mean/var are frozen parameters (EMA- and export-visible)."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.running_mean = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.running_var = nn.Parameter(torch.ones(channels), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)


def output_size(patch: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Voxels per axis after the valid conv chain."""
    n = patch
    for k, s in zip(kernels, strides):
        n = (n - k) // s + 1
        if n < 1:
            return 0
    return n


def reach(kernels: Sequence[int], strides: Sequence[int], patch: int) -> tuple[int, int]:
    """(voxels before, voxels after) the patch centre that the single output reads."""
    span, dilation = 1, 1
    for k, s in zip(kernels, strides):
        span, dilation = span + (k - 1) * dilation, dilation * s
    lo = (patch - 1) // 2
    return lo, span - 1 - lo


def space_to_batch(h: torch.Tensor, s: int) -> torch.Tensor:
    """(B, C, X, Y, Z) -> (s^3 B, C, X/s, Y/s, Z/s): sub-lattice (px, py, pz) of voxels p + s i, padded at the
    end to a multiple of s (padded voxels only reach outputs past the valid ones, which are cropped)."""
    pad = [(-n) % s for n in h.shape[:1:-1]]                        # z, y, x
    h = F.pad(h, [q for p in pad for q in (0, p)])
    b, c, x, y, z = h.shape
    h = h.reshape(b, c, x // s, s, y // s, s, z // s, s)
    return h.permute(3, 5, 7, 0, 1, 2, 4, 6).reshape(s**3 * b, c, x // s, y // s, z // s)


def batch_to_space(h: torch.Tensor, s: int) -> torch.Tensor:
    """Inverse of :func:`space_to_batch` (without the padding): (s^3 B, C, X, Y, Z) -> (B, C, sX, sY, sZ)."""
    sb, c, x, y, z = h.shape
    h = h.reshape(s, s, s, sb // s**3, c, x, y, z).permute(3, 4, 5, 0, 6, 1, 7, 2)
    return h.reshape(sb // s**3, c, x * s, y * s, z * s)


class DM2Gal(nn.Module):
    """Patch network: (B, 2, P, P, P) normalised [dm, subhalo] -> (B, 1) normalised log stellar mass."""

    def __init__(self, *, patch: int = 65, channels: int = 16, hidden: int = 256, in_channels: int = 2,
                 kernels: Sequence[int] = PAPER_KERNELS, strides: Sequence[int] = PAPER_STRIDES,
                 widths: Sequence[int] = PAPER_WIDTHS):
        super().__init__()
        if not len(kernels) == len(strides) == len(widths):
            raise ValueError(f"kernels {list(kernels)}, strides {list(strides)} and widths {list(widths)} must "
                             f"have one entry per layer")
        if patch % 2 == 0:
            raise ValueError(f"patch must be odd (a central voxel), got {patch}")
        if output_size(patch, kernels, strides) != 1:
            raise ValueError(f"a {patch}^3 patch through kernels {list(kernels)} and strides {list(strides)} gives "
                             f"{output_size(patch, kernels, strides)}^3 voxels, not 1; change the patch or the layers")
        self.patch, self.kernels, self.strides = patch, tuple(kernels), tuple(strides)
        self.reach = reach(kernels, strides, patch)
        self.receptive_radius = max(self.reach)  # the periodic halo a dense evaluation needs
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        c_in = in_channels
        for k, s, w in zip(kernels, strides, widths):
            self.convs.append(nn.Conv3d(c_in, channels * w, k, stride=s, padding=0))
            self.norms.append(BatchNorm3d(channels * w))
            c_in = channels * w
        self.fc1, self.fc2 = nn.Linear(c_in, hidden), nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x                                                       # (B, 2, P, P, P)
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h)))
        h = h.flatten(1)                                            # (B, 8C) from (B, 8C, 1, 1, 1)
        return self.fc2(F.relu(self.fc1(h)))                        # (B, 1)


class DenseDM2Gal(nn.Module):
    """The patch network evaluated at every voxel: (B, 2, W, W, W) -> (B, 1, W - lo - hi, ...), eval mode.

    Shares the patch network's weights (no copy): ``DenseDM2Gal(net)`` follows ``net``'s training."""

    def __init__(self, net: DM2Gal):
        super().__init__()
        self.net = net
        self.reach, self.receptive_radius = net.reach, net.receptive_radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net, h, phases = self.net, x, []                            # (B, 2, W, W, W)
        for conv, norm, s in zip(net.convs, net.norms, net.strides):
            h = F.conv3d(h, conv.weight, conv.bias)                 # stride 1 on the current lattice
            h = F.relu(F.batch_norm(h, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0,
                                    norm.eps))
            if s > 1:  # later layers see every s-th voxel: split into s^3 sub-lattices (= dilation x s)
                h = space_to_batch(h, s)
                phases.append(s)
        h = F.relu(F.conv3d(h, net.fc1.weight[:, :, None, None, None], net.fc1.bias))   # dense -> 1x1x1
        h = F.conv3d(h, net.fc2.weight[:, :, None, None, None], net.fc2.bias)
        for s in reversed(phases):
            h = batch_to_space(h, s)
        n = x.shape[-1] - sum(self.reach)
        return h[..., :n, :n, :n]                                   # (B, 1, W - lo - hi, ...)

    def core(self, x: torch.Tensor, halo: int) -> torch.Tensor:
        """Valid-mode tile function: a window of tile + 2 halo -> the (B, 1, tile, tile, tile) core."""
        lo, hi = self.reach
        if halo < max(lo, hi):
            raise ValueError(f"halo {halo} is smaller than the receptive reach {max(lo, hi)} of the network")
        tile = x.shape[-1] - 2 * halo
        a = halo - lo                                               # window offset of the first patch start
        y = self.forward(x[..., a:, a:, a:])
        return y[..., :tile, :tile, :tile]


def build_dm2gal(d) -> DM2Gal:
    """A :class:`DM2Gal` from a ``Dm2galConfig``-like object."""
    return DM2Gal(patch=d.patch, channels=d.channels, hidden=d.hidden, kernels=d.kernels, strides=d.strides,
                  widths=d.widths)
