"""Samplers of the ε̂-parameterised VDM, split so that tiled samplers can reuse every piece.

Every sampler walks γ down a time grid t = 1 -> 0 (γ(t) = b + |w| t) and works through γ only: α² = sigmoid(−γ),
σ² = sigmoid(γ), the half log-SNR λ = −γ/2 = log(α/σ), the data prediction x̂ = (z − σ ε̂)/α.

- ``"ancestral"``: the papers' sampler (VDM eq. 34), the reference. For steps t -> s, c = −expm1(γ_s − γ_t):

      z_s = α_s/α_t · (z_t − c σ_t ε̂(z_t, γ_t)) + σ_s √c · ξ,   ξ ~ N(0, 1)

  (noise included at the last step). It is exactly first-order SDE-DPM-Solver++ and loses power as O(Δγ).
- ``"dpm2m"``, ``"dpm3m"``: DPM-Solver++(2M/3M) (Lu et al. 2022), multistep exponential integrators of the
  probability-flow ODE in λ; ``"dpm2m_sde"``, ``"dpm3m_sde"``: their SDE forms (k-diffusion's), noise every step.
- ``"unipc"``: UniPC (Zhao et al. 2023), order-3 multistep predictor UniP plus corrector UniC (B(h) = expm1,
  "bh2"), data prediction, ODE. The corrector reuses the next step's ε̂, so it costs no network evaluation.

The cost is the number of network evaluations (NFE): for every sampler here ``n_steps`` = NFE = intervals of
the grid :func:`time_grid` (``linspace(1, 0, NFE + 1)``, uniform in λ because γ is linear in t, between the
model's current endpoints, however training moved them). Measured against the exact Gaussian-field oracle
(:mod:`.oracle`, default γ from −13.3 to 13.3; tools/sampler_oracle.py) the ancestral sampler returns 0.776 of
the true power at 50 steps, 0.878 at 100, 0.949 at 250 (the same in every band); UniPC is within 2% per band
and in pixel variance from 18 NFE on, 0.2% at 24. Every random draw comes from ``noise_fn(step)``, one whole
field per step (only ancestral and the ``_sde`` samplers draw), and z_0 is returned unscaled (unclipped but for
``x_range``).

``x_range`` (lo, hi), for a bounded target: every sampler then sees the denoiser whose data prediction is clipped,
x̂ -> clip(x̂, lo, hi), with ε̂ = (z − α x̂)/σ made consistent with it (static thresholding, Saharia et al. 2022),
and the returned z_0 is clipped too. The clip is pointwise, so a tiled draw still equals the whole field's.
It is not the exact sampler of the model: it removes what the model puts outside the data's range, as UniPC
does with an imperfect score on stellar maps (pixels 100× brighter than any training pixel;
docs/results/dm2galaxy).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .schedule import alpha_sigma

SAMPLERS = ("ancestral", "dpm2m", "dpm3m", "dpm2m_sde", "dpm3m_sde", "unipc")
# the product default (NFE): 0.2% from the oracle's power on the test spectra; within 0.5% for any per-mode
# variance e^−9 … e^8 (20 NFE: 1.4%), a margin for spectra wider than the tests' (tests/test_sampler_oracle.py)
DEFAULT_SAMPLER, DEFAULT_STEPS = "unipc", 24

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseFn = Callable[[int], torch.Tensor]


def key_seed(*key: int) -> int:
    """A 63-bit torch seed from integer keys (NumPy's SeedSequence hashing): one stream per key tuple."""
    return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)


def keyed_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded by :func:`key_seed`; its draws depend on the key only (not on devices or order)."""
    return torch.Generator().manual_seed(key_seed(*key))


def check_sampler(sampler: str) -> str:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    return sampler


def check_x_range(x_range) -> tuple[float, float] | None:
    """None, or (lo, hi) finite with lo < hi."""
    if x_range is None:
        return None
    lo, hi = (float(v) for v in x_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"the clipping range must be two finite numbers lo < hi, got {tuple(x_range)!r}")
    return lo, hi


def clip_x_hat(eps_fn: EpsFn, x_range: tuple[float, float]) -> EpsFn:
    """The ε̂ of ``eps_fn`` whose data prediction x̂ = (z − σ ε̂)/α is clipped to ``x_range``."""
    lo, hi = check_x_range(x_range)

    def clipped(z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        alpha, sigma = alpha_sigma(gamma.detach().double().cpu())  # fp64 scalars, as the samplers' coefficients
        x_hat = ((z - sigma * eps_fn(z, gamma)) / alpha).clamp(lo, hi)
        return (z - alpha * x_hat) / sigma
    return clipped


def time_grid(n_steps: int, sampler: str = "ancestral") -> torch.Tensor:
    """(n_steps + 1,) times 1 -> 0 for ``n_steps`` network evaluations of ``sampler`` (one per interval)."""
    check_sampler(sampler)
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


def _steps(gammas: torch.Tensor, progress: bool):
    """(i, γ_i for ε̂, γ_i and γ_{i+1} as fp64 CPU scalars for the coefficients) along the grid."""
    g64 = gammas.detach().double().cpu()
    for i in tqdm(range(len(gammas) - 1), desc="sampling", disable=not progress, leave=False):
        yield i, gammas[i], g64[i], g64[i + 1]


def _x_hat(eps_fn: EpsFn, z: torch.Tensor, gamma: torch.Tensor, g64: torch.Tensor) -> torch.Tensor:
    alpha, sigma = alpha_sigma(g64)
    return (z - sigma * eps_fn(z, gamma)) / alpha


def _dpm_loop(eps_fn: EpsFn, z: torch.Tensor, gammas: torch.Tensor, noise_fn: NoiseFn, *, order: int,
              eta: float, progress: bool) -> torch.Tensor:
    """DPM-Solver++(2M/3M), ODE (η = 0) or SDE (η = 1), in k-diffusion's form on x = z/α, h = λ_s − λ_t."""
    x_hats, hs = [], []
    for i, gamma, g_t, g_s in _steps(gammas, progress):
        (a_t, _), (a_s, s_s) = alpha_sigma(g_t), alpha_sigma(g_s)
        h = (g_t - g_s) / 2
        h_eta = h * (1 + eta)
        x_hat = _x_hat(eps_fn, z, gamma, g_t)
        k = min(order - 1, len(x_hats))  # previous x̂ used (fewer while the history fills)
        if order == 2 and k == 1:  # 2M: the midpoint form
            x_hat_2 = x_hat + (h / (2 * hs[-1])) * (x_hat - x_hats[-1])
            x = torch.exp(-h_eta) * (z / a_t) - torch.expm1(-h_eta) * x_hat_2
        else:
            x = torch.exp(-h_eta) * (z / a_t) - torch.expm1(-h_eta) * x_hat
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if k == 2:
                r0, r1 = hs[-1] / h, hs[-2] / h
                d1_0, d1_1 = (x_hat - x_hats[-1]) / r0, (x_hats[-1] - x_hats[-2]) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
            elif k == 1:
                x = x + phi_2 * (x_hat - x_hats[-1]) * (h / hs[-1])
        z = a_s * x
        if eta:
            z = z + (s_s * torch.sqrt(-torch.expm1(-2 * h * eta))) * noise_fn(i)
        x_hats, hs = (x_hats + [x_hat])[-2:], (hs + [h])[-2:]
    return z


def _unipc_update(z: torch.Tensor, x_hats: list, gs: list, g_t: torch.Tensor, order: int,
                  x_hat_t: torch.Tensor | None = None) -> torch.Tensor:
    """A UniPC-bh2 update of ``order`` from z at γ = gs[-1] to γ_t; x̂ at gs (newest last, ≥ order of them).

    Predictor UniP when ``x_hat_t`` is None; corrector UniC (z at gs[-1] again) with the x̂ evaluated at γ_t.
    """
    lam, lam_t = [-g / 2 for g in gs], -g_t / 2
    h = lam_t - lam[-1]
    (a_t, s_t), (_, s_0) = alpha_sigma(g_t), alpha_sigma(gs[-1])
    m0 = x_hats[-1]
    rks = torch.stack([(lam[-1 - k] - lam[-1]) / h for k in range(1, order)] + [torch.ones_like(h)])  # (order,)
    d1s = [(x_hats[-1 - k] - m0) / rks[k - 1] for k in range(1, order)]
    h_phi_1 = torch.expm1(-h)  # also B(h) ("bh2")
    b, h_phi_k, fact = [], h_phi_1 / -h - 1, 1
    for i in range(1, order + 1):
        b.append(h_phi_k * fact / h_phi_1)
        fact *= i + 1
        h_phi_k = h_phi_k / -h - 1 / fact
    r_mat, b = torch.stack([rks ** i for i in range(order)]), torch.stack(b)  # (order, order), (order,)
    z_t = (s_t / s_0) * z - (a_t * h_phi_1) * m0
    half = torch.tensor([0.5], dtype=torch.float64)
    if x_hat_t is None:
        if order == 1:
            return z_t
        rhos = half if order == 2 else torch.linalg.solve(r_mat[:-1, :-1], b[:-1])
        return z_t - (a_t * h_phi_1) * sum(r * d for r, d in zip(rhos, d1s))
    rhos = half if order == 1 else torch.linalg.solve(r_mat, b)
    return z_t - (a_t * h_phi_1) * sum((r * d for r, d in zip(rhos[:-1], d1s)), rhos[-1] * (x_hat_t - m0))


def _unipc_loop(eps_fn: EpsFn, z: torch.Tensor, gammas: torch.Tensor, *, order: int = 3,
                progress: bool) -> torch.Tensor:
    """UniPC: predict z_{i+1} (UniP), evaluate x̂ there, correct z_{i+1} with it (UniC) and predict on from it."""
    x_hats, gs, z_prev, p = [], [], None, 1
    for i, gamma, g_t, g_s in _steps(gammas, progress):
        x_hat = _x_hat(eps_fn, z, gamma, g_t)  # at the predicted (uncorrected) z, as in UniPC
        if i > 0:
            z = _unipc_update(z_prev, x_hats, gs, g_t, p, x_hat_t=x_hat)
        x_hats, gs = (x_hats + [x_hat])[-order:], (gs + [g_t])[-order:]
        p = min(order, i + 1)
        z_prev, z = z, _unipc_update(z, x_hats, gs, g_s, p)
    return z


def sample_loop(eps_fn: EpsFn, z_1: torch.Tensor, gammas: torch.Tensor, noise_fn: NoiseFn, *,
                sampler: str = "ancestral", progress: bool = False,
                x_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Run ``sampler`` from z_1 over γ at the grid times (one ε̂ per interval); ``eps_fn(z, γ)`` -> ε̂ of the
    whole field, ``noise_fn(step)`` -> ξ of the whole field for step 0 … len(gammas) − 2; with ``x_range``,
    x̂ is clipped at every step and so is the returned sample (its last noise, σ(γ_0) ~ 1e-3, included)."""
    check_sampler(sampler)
    x_range = check_x_range(x_range)
    if x_range is not None:
        eps_fn = clip_x_hat(eps_fn, x_range)
    if sampler == "unipc":
        z = _unipc_loop(eps_fn, z_1, gammas, progress=progress)
    elif sampler.startswith("dpm"):
        z = _dpm_loop(eps_fn, z_1, gammas, noise_fn, order=int(sampler[3]), eta=float(sampler.endswith("_sde")),
                      progress=progress)
    else:
        z = z_1
        for i, gamma, _, _ in _steps(gammas, progress):
            z = ancestral_step(z, eps_fn(z, gamma), gamma, gammas[i + 1], noise_fn(i))
    return z if x_range is None else z.clamp(*x_range)


@torch.no_grad()
def sample(vdm, cond: torch.Tensor, params: torch.Tensor | None = None, *, n_steps: int = 250,
           generator: torch.Generator | None = None, progress: bool = False,
           sampler: str = "ancestral", x_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Posterior samples x ~ p(x | cond): cond (B, 1, H, W) -> (B, 1, H, W) normalised maps (fp32).

    ``n_steps`` network evaluations of ``sampler`` (one of :data:`SAMPLERS`; the product default is
    :data:`DEFAULT_SAMPLER` with :data:`DEFAULT_STEPS`); x̂ clipped to ``x_range`` (normalised) if given.
    """
    cond = cond.float()
    gammas = vdm.gamma(time_grid(n_steps, sampler).to(cond.device)).detach()  # (n + 1,)
    z_1 = torch.randn(cond.shape, generator=generator, device=cond.device)
    b = cond.shape[0]

    def eps_fn(z, g):
        return vdm.eps_hat(z, g.expand(b), cond, params)

    def noise_fn(_step):
        return torch.randn(cond.shape, generator=generator, device=cond.device)

    return sample_loop(eps_fn, z_1, gammas, noise_fn, sampler=sampler, progress=progress, x_range=x_range)
