"""The papers' ancestral sampler (VDM eq. 34), split so that tiled samplers can reuse every piece.

For steps t -> s on t = linspace(1, 0, n + 1), with c = −expm1(γ_s − γ_t):

    z_s = α_s/α_t · (z_t − c σ_t ε̂(z_t, γ_t)) + σ_s √c · ξ,   ξ ~ N(0, 1)

noise included at the last step; the final z_0 is returned unscaled, unclipped.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .schedule import alpha_sigma


def key_seed(*key: int) -> int:
    """A 63-bit torch seed from integer keys (NumPy's SeedSequence hashing): one stream per key tuple."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)


def keyed_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded by :func:`key_seed`; its draws depend on the key only (not on devices or order)."""
    return torch.Generator().manual_seed(key_seed(*key))


def time_grid(n_steps: int) -> torch.Tensor:
    """(n_steps + 1,) times 1 -> 0."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64)


def ancestral_step(z_t: torch.Tensor, eps_hat: torch.Tensor, gamma_t: torch.Tensor, gamma_s: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:
    """One step z_t -> z_s (γ_t, γ_s scalars; z_t, ε̂ and ξ alike-shaped)."""
    c = -torch.expm1(gamma_s - gamma_t)
    alpha_t, sigma_t = alpha_sigma(gamma_t)
    alpha_s, sigma_s = alpha_sigma(gamma_s)
    return alpha_s / alpha_t * (z_t - c * sigma_t * eps_hat) + sigma_s * c.sqrt() * noise


def sample_loop(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z_1: torch.Tensor,
                gammas: torch.Tensor, noise_fn: Callable[[int], torch.Tensor], *, progress: bool = False
                ) -> torch.Tensor:
    """Run the chain from z_1 over γ at the grid times; ``eps_fn(z, γ)`` -> ε̂, ``noise_fn(step)`` -> ξ."""
    z = z_1
    for i in tqdm(range(len(gammas) - 1), desc="sampling", disable=not progress, leave=False):
        g_t, g_s = gammas[i], gammas[i + 1]
        z = ancestral_step(z, eps_fn(z, g_t), g_t, g_s, noise_fn(i))
    return z


@torch.no_grad()
def sample(vdm, cond: torch.Tensor, params: torch.Tensor | None = None, *, n_steps: int = 250,
           generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Posterior samples x ~ p(x | cond): cond (B, 1, H, W) -> (B, 1, H, W) normalised maps (fp32)."""
    cond = cond.float()
    gammas = vdm.gamma(time_grid(n_steps).to(cond.device)).detach()  # (n + 1,)
    z_1 = torch.randn(cond.shape, generator=generator, device=cond.device)
    b = cond.shape[0]

    def eps_fn(z, g):
        return vdm.eps_hat(z, g.expand(b), cond, params)

    def noise_fn(_step):
        return torch.randn(cond.shape, generator=generator, device=cond.device)

    return sample_loop(eps_fn, z_1, gammas, noise_fn, progress=progress)
