"""An exact oracle for the samplers: a periodic 2D Gaussian random field and its exact optimal denoiser.

x on an H x W torus has independent Fourier modes with per-mode variance P(k): x = F⁻¹[√P · F w] for white
w ~ N(0, 1), so E|X_k|² = H W P(k) and the pixel variance is mean_k P(k) (the DC mode included). For
z_t = α x + σ ε every mode is a scalar Gaussian problem and the optimal denoiser is exact:

    ε̂(z_t)_k = σ Z_k / (α² P(k) + σ²)          (the posterior mean of ε, a Wiener filter)

:class:`GaussianFieldOracle` has ``gamma(t)`` and ``eps_hat(z, γ, cond, params)`` like
:class:`~hpc_vdm.diffusion.VDM` (cond and params ignored), so ``sample``, ``sample_loop`` and ``sample_tiled``
run on it unchanged. The sampled z_0 should have the power α_0² P + σ_0² (:func:`expected_power`;
:func:`power_ratios` measures draws against it).
Every sampler here is linear in (z_1, ξ_0, ξ_1, …) for this denoiser, so its exact expected power follows
from its responses to each draw, mode by mode, without Monte-Carlo noise (:func:`exact_power_ratios`).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..models.wiener import periodic_conv, truncated_kernel, wavenumber
from .schedule import LinearSchedule, alpha_sigma

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseFn = Callable[[int], torch.Tensor]
BANDS = ((0.0, 0.125), (0.125, 0.25), (0.25, 0.5))  # |k| in cycles per pixel: <k_N/4, k_N/4–k_N/2, k_N/2–k_N


def normalised(power: torch.Tensor) -> torch.Tensor:
    """``power`` scaled to unit pixel variance (mean over modes = 1), like the normalised maps."""
    return power / power.mean()


def power_law(shape: tuple[int, int], *, slope: float, k_min: float, floor: float) -> torch.Tensor:
    """(H, W) per-mode P ∝ (k² + k_min²)^(slope/2) + floor · (k_N² + k_min²)^(slope/2), unit pixel variance.

    ``k_min`` (cycles per pixel) turns the power law over on large scales (and sets the DC mode); ``floor`` is a
    white small-scale floor as a fraction of the power law at the Nyquist frequency.
    """
    k2_min = k_min ** 2
    pl = (wavenumber(shape) ** 2 + k2_min) ** (slope / 2)
    return normalised(pl + floor * (0.25 + k2_min) ** (slope / 2))


def bumped(power: torch.Tensor, *, k_peak: float, width_dex: float, amplitude: float) -> torch.Tensor:
    """``power`` x (1 + amplitude · exp(−½ (log10(k / k_peak) / width_dex)²)), renormalised: a non-power law."""
    k = wavenumber(tuple(power.shape)).clamp_min(1e-12)
    return normalised(power * (1 + amplitude * torch.exp(-0.5 * (torch.log10(k / k_peak) / width_dex) ** 2)))


class GaussianFieldOracle(nn.Module):
    """A Gaussian random field with per-mode variance ``power`` (H, W) and its exact denoiser, shaped like a VDM.

    ``reach`` (pixels) truncates the denoiser's real-space kernel to (2 reach + 1)² taps and applies it as a
    periodic convolution to fields of any size: a local (approximate) oracle, so tiled sampling with a halo of
    at least ``reach`` is exact. Without it the denoiser is the exact global filter, for H x W fields only.
    """

    def __init__(self, power: torch.Tensor, *, gamma_min: float = -13.3, gamma_max: float = 13.3,
                 reach: int | None = None):
        super().__init__()
        if power.ndim != 2 or not bool((power >= 0).all()):
            raise ValueError(f"power must be an (H, W) non-negative per-mode variance, got shape {tuple(power.shape)}")
        mirrored = torch.roll(power.flip(0, 1), (1, 1), (0, 1))  # P(−k) on the FFT grid
        if not torch.allclose(power, mirrored, rtol=1e-12, atol=0.0):
            raise ValueError("power must satisfy P(k) = P(−k) for a real field (e.g. depend on |k| only)")
        if reach is not None and not 0 <= reach < min(power.shape) // 2:
            raise ValueError(f"reach must lie in [0, {min(power.shape) // 2}) pixels, got {reach!r}")
        self.gamma = LinearSchedule(gamma_min, gamma_max, learned=False)
        self.reach = reach
        self.register_buffer("power", power.double())  # (H, W) full FFT grid

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.power.shape)

    def _half(self) -> torch.Tensor:
        return self.power[:, : self.shape[1] // 2 + 1]  # (H, W//2 + 1) the rfft half-plane

    def draw(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, 1, H, W) fp64 draws of x."""
        w = torch.randn((n, 1, *self.shape), generator=generator, dtype=torch.float64)
        return torch.fft.irfft2(torch.fft.rfft2(w) * self._half().sqrt(), s=self.shape)

    def wiener(self, gamma_t: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W//2 + 1) the per-mode filter σ / (α² P + σ²) at γ_t (B,) or ()."""
        alpha, sigma = alpha_sigma(gamma_t.double().reshape(-1, 1, 1, 1))
        return sigma / (alpha ** 2 * self._half() + sigma ** 2)

    def eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor | None = None,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """The exact ε̂ = E[ε | z_t] for z_t (B, 1, H, W), γ_t (B,) or (); in z_t's dtype. cond, params ignored."""
        if self.reach is not None:
            return self._local_eps_hat(z_t, gamma_t)
        if tuple(z_t.shape[-2:]) != self.shape:
            raise ValueError(f"the global oracle denoises {self.shape} fields, got {tuple(z_t.shape[-2:])} "
                             "(use reach= for a local oracle on any size)")
        eps = torch.fft.irfft2(torch.fft.rfft2(z_t.double()) * self.wiener(gamma_t), s=self.shape)
        return eps.to(z_t.dtype)

    def kernel(self, gamma_t: torch.Tensor) -> torch.Tensor:
        """(B, 1, 2 reach + 1, 2 reach + 1) the denoiser's real-space kernel at γ_t, truncated to ``reach``."""
        return truncated_kernel(self.wiener(gamma_t), self.shape, self.reach)

    def _local_eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor) -> torch.Tensor:
        b = z_t.shape[0]
        k = self.kernel(gamma_t.expand(b) if gamma_t.ndim == 0 else gamma_t)      # (B, 1, k, k)
        return periodic_conv(z_t.double(), k).to(z_t.dtype)


def band_masks(shape: tuple[int, int]) -> torch.Tensor:
    """(n_bands, H, W) bool: the modes 0 < |k| in each of :data:`BANDS` (the last band includes k_N)."""
    k = wavenumber(shape)
    masks = [(k > 0) & (k >= lo) & ((k < hi) if hi < 0.5 else (k <= hi)) for lo, hi in BANDS]
    return torch.stack(masks)


def expected_power(oracle: GaussianFieldOracle) -> torch.Tensor:
    """(H, W) per-mode variance of the true z_0 = α_0 x + σ_0 ε."""
    alpha_0, sigma_0 = alpha_sigma(oracle.gamma(torch.zeros((), dtype=torch.float64)).double())
    return alpha_0 ** 2 * oracle.power + sigma_0 ** 2


def ratios_from_power(power: torch.Tensor, want: torch.Tensor) -> dict[str, list[float] | float]:
    """Band power and pixel-variance ratios of a per-mode power (H, W) against the exact ``want`` (H, W)."""
    masks = band_masks(tuple(want.shape))
    bands = [(power[m].sum() / want[m].sum()).item() for m in masks]
    return {"bands": bands, "variance": (power.mean() / want.mean()).item()}


def power_ratios(fields: torch.Tensor, want: torch.Tensor) -> dict[str, list[float] | float]:
    """Monte-Carlo ratios of fields (n, 1, H, W) to the exact per-mode power ``want`` (H, W), with standard errors.

    ``want`` is :func:`expected_power` for sampled z_0, ``oracle.power`` for draws of x.
    """
    per_draw = torch.fft.fft2(fields.double()).abs().pow(2).flatten(0, 1) / want.numel()  # (n, H, W)
    n = per_draw.shape[0]
    masks = band_masks(tuple(want.shape))
    band_draws = torch.stack([per_draw[:, m].sum(1) / want[m].sum() for m in masks], 1)  # (n, n_bands)
    var_draws = per_draw.mean((1, 2)) / want.mean()                                        # (n,)
    out = ratios_from_power(per_draw.mean(0), want)
    out["bands_stderr"] = (band_draws.std(0) / math.sqrt(n)).tolist()
    out["variance_stderr"] = (var_draws.std() / math.sqrt(n)).item()
    return out


def exact_power_ratios(oracle: GaussianFieldOracle, run: Callable[[EpsFn, torch.Tensor, NoiseFn], torch.Tensor],
                       n_noise: int) -> dict[str, list[float] | float]:
    """The exact expected ratios of a sampler, which is linear in its draws for this denoiser.

    ``run(eps_fn, z_1, noise_fn)`` runs the sampler (e.g. ``lambda e, z, nf: sample_loop(e, z, gammas, nf)``),
    asking for at most ``n_noise`` keyed noise steps 0 … n_noise − 1. Every mode evolves alone, so the sampler
    runs in mode space on (draws, M) coefficients, M = distinct values of P: row 0 is fed z_1 = 1, row j + 1
    the ξ of step j. Mode by mode z_0 = Σ_j c_j w_j, hence its power Σ_j c_j² P-units exactly.
    """
    p_u, inverse = torch.unique(oracle.power, return_inverse=True)  # (M,), (H, W)
    rows = torch.arange(n_noise + 1, dtype=torch.float64).view(-1, 1)  # (draws, 1)

    def eps_fn(z, gamma):  # z (draws, M): the Wiener filter mode by mode
        alpha, sigma = alpha_sigma(gamma.double())
        return sigma * z / (alpha ** 2 * p_u + sigma ** 2)

    def noise_fn(step: int) -> torch.Tensor:
        if not 0 <= step < n_noise:
            raise ValueError(f"the sampler asked for noise step {step}, expected 0 <= step < {n_noise}")
        return (rows == step + 1).double().expand(-1, len(p_u))

    z_0 = run(eps_fn, (rows == 0).double().expand(-1, len(p_u)), noise_fn)  # (draws, M)
    return ratios_from_power(z_0.pow(2).sum(0)[inverse], expected_power(oracle))


class ParamFieldOracle(nn.Module):
    """Gaussian random fields whose P(k) depends on two parameters, with the exact denoiser, shaped like a VDM
    conditioned on parameters: ``eps_hat(z, γ, None, params)`` with params (B, 2) in [0, 1] (like CAMELS
    parameters normalised over their prior).

    u = (u_A, u_n) -> amplitude and slope: ln A = ln_amp[0] + u_A Δ, n = slope[0] + u_n Δ, and per mode

        ln P(k) = ln A + (n/2) ln((|k|² + k_min²) / k_pivot²)      (|k| in cycles per pixel)

    For this model the bound's diffusion term with the exact denoiser integrates to −ln N(x; 0, P) plus a
    θ-independent constant (up to the schedule's endpoints), so the Fisher matrix of the parameters is the
    Gaussian one, F_ij = ½ Σ_k ∂_i ln P(k) ∂_j ln P(k) over every mode of the H x W grid (:meth:`fisher`).
    """

    def __init__(self, shape: tuple[int, int], *, ln_amp: tuple[float, float] = (-0.5, 0.5),
                 slope: tuple[float, float] = (-3.0, -1.0), k_min: float = 0.02, k_pivot: float = 0.1,
                 gamma_min: float = -13.3, gamma_max: float = 13.3):
        super().__init__()
        self.gamma = LinearSchedule(gamma_min, gamma_max, learned=False)
        self.ln_amp, self.slope, self.field_shape = tuple(ln_amp), tuple(slope), tuple(shape)
        log_k2 = torch.log((wavenumber(self.field_shape) ** 2 + k_min ** 2) / k_pivot ** 2)
        self.register_buffer("log_k2", log_k2)                                    # (H, W) full FFT grid

    def physical(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ln A, n) of params (B, 2) in [0, 1]."""
        u = params.double()
        return (self.ln_amp[0] + u[:, 0] * (self.ln_amp[1] - self.ln_amp[0]),
                self.slope[0] + u[:, 1] * (self.slope[1] - self.slope[0]))

    def log_power(self, params: torch.Tensor) -> torch.Tensor:
        """(B, H, W) ln P(k) on the full FFT grid."""
        ln_a, n = self.physical(params)
        return ln_a[:, None, None] + 0.5 * n[:, None, None] * self.log_k2

    def draw(self, params: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 1, H, W) fp64 fields, one per row of params (B, 2)."""
        half = self.log_power(params)[..., : self.field_shape[1] // 2 + 1].exp().sqrt()[:, None]
        w = torch.randn((len(params), 1, *self.field_shape), generator=generator, dtype=torch.float64)
        return torch.fft.irfft2(torch.fft.rfft2(w) * half, s=self.field_shape)

    def eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor | None = None,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """The exact ε̂ = E[ε | z_t, θ] for z_t (B, 1, H, W), γ_t (B,) or (), params (B, 2) or (1, 2); in z_t's
        dtype; differentiable in params."""
        if params is None:
            raise ValueError("this oracle conditions on two parameters; pass params (B, 2) in [0, 1]")
        if cond is not None:
            raise ValueError("this oracle has no map condition; pass cond=None")
        if tuple(z_t.shape[-2:]) != self.field_shape:
            raise ValueError(f"the oracle denoises {self.field_shape} fields, got {tuple(z_t.shape[-2:])}")
        power = self.log_power(params)[..., : self.field_shape[1] // 2 + 1].exp()[:, None]  # (B, 1, H, W//2 + 1)
        alpha, sigma = alpha_sigma(gamma_t.double().reshape(-1, 1, 1, 1))
        eps = torch.fft.irfft2(torch.fft.rfft2(z_t.double()) * sigma / (alpha ** 2 * power + sigma ** 2),
                               s=self.field_shape)
        return eps.to(z_t.dtype)

    def fisher(self, params: torch.Tensor) -> torch.Tensor:
        """(2, 2) Fisher matrix of (u_A, u_n) for one field at params (1, 2) or (2,): ½ Σ_k ∂ ln P ∂ ln P."""
        d_amp = torch.full_like(self.log_k2, self.ln_amp[1] - self.ln_amp[0])     # ∂ ln P / ∂u_A
        d_slope = 0.5 * (self.slope[1] - self.slope[0]) * self.log_k2            # ∂ ln P / ∂u_n
        grads = torch.stack([d_amp.flatten(), d_slope.flatten()])                # (2, H W)
        return 0.5 * grads @ grads.T
