"""The exact denoiser of a stationary Gaussian field as a local operator.

For x with per-mode variance P(k) and z_t = α x + σ ε, E[ε | z_t] is per Fourier mode σ Z_k / (α² P + σ²): a
convolution. Truncated to a reach of R pixels (Chebyshev) it becomes a (2R + 1)² kernel applied as a periodic
direct convolution, so its output at a pixel reads z_t within R pixels, on a window of any size (tiling with a
halo of R is exact). Shared by the samplers' oracle (:class:`hpc_vdm.diffusion.oracle.GaussianFieldOracle`) and
the correlated prior base (:class:`hpc_vdm.models.prior.CorrelatedTransferPrior`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def wavenumber(shape: tuple[int, int]) -> torch.Tensor:
    """(H, W) |k| in cycles per pixel on the full FFT grid (the Nyquist frequency k_N is 0.5), float64."""
    ky = torch.fft.fftfreq(shape[0], dtype=torch.float64)
    kx = torch.fft.fftfreq(shape[1], dtype=torch.float64)
    return torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def truncated_kernel(filter_half: torch.Tensor, shape: tuple[int, int], reach: int) -> torch.Tensor:
    """(B, 1, 2 reach + 1, 2 reach + 1) the real-space kernel of a real, even per-mode filter given on the rfft
    half-plane (B, 1, H, W // 2 + 1) of an H x W grid, centred and truncated to ``reach`` pixels."""
    full = torch.fft.irfft2(filter_half, s=shape)                       # (B, 1, H, W), centred at pixel (0, 0)
    return torch.roll(full, (reach, reach), (-2, -1))[..., : 2 * reach + 1, : 2 * reach + 1]


def periodic_conv(z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Σ_d k_b(d) z_b(x + d) over the periodic window, each map b with its own symmetric kernel: z (B, 1, H, W),
    kernel (B, 1, 2R + 1, 2R + 1) -> (B, 1, H, W). A direct convolution (an FFT over the window would spread its
    rounding to every pixel); the window is made periodic by indexing, so it may be smaller than the kernel."""
    b, _, h, w = z.shape
    r = kernel.shape[-1] // 2
    iy = torch.arange(-r, h + r, device=z.device) % h
    ix = torch.arange(-r, w + r, device=z.device) % w
    padded = z[:, :, iy][:, :, :, ix]                                   # (B, 1, H + 2R, W + 2R)
    return F.conv2d(padded.transpose(0, 1), kernel.to(z.dtype), groups=b).transpose(0, 1)
