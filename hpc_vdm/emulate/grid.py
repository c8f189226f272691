"""The bound's terms L_j(x | θ) on a grid of parameters, with common random numbers (Mudur+23, continuous time).

The VDM's diffusion term is ½ ∫₀¹ γ'(t) E_ε ‖ε − ε̂(z_t; γ_t, θ)‖² dt with z_t = α_t x + σ_t ε (nats, summed
over pixels); its other two terms (the prior of z_1 and the reconstruction of x from z_0) do not depend on θ.
Term j is the share of the slice [t_j − w/2, t_j + w/2] of [t_min, t_max] (K slices of width w, t_j their
midpoints), estimated with ``draws`` fixed noise fields ε_{j,d}:

    L_j(θ) = w · ½ γ'(t_j) · mean_d ‖ε_{j,d} − ε̂(α_j x + σ_j ε_{j,d}; γ_j, θ)‖²   (the mean of L_{j,d} over d)

ε_{j,d} comes from a generator keyed by (seed, map key, j, d) and is the same for every θ (common random
numbers), so differences between grid points are the model's, not noise; Σ_j L_j over [0, 1] estimates the
diffusion term, i.e. −ln p(x | θ) up to a θ-independent constant (exactly so for the exact denoiser of a
Gaussian field, :class:`~hpc_vdm.diffusion.oracle.ParamFieldOracle`). The same function, with θ requiring
grad, is the differentiable potential of the MCMC (:mod:`.mcmc`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import camels
from ..diffusion import alpha_sigma, keyed_generator

INFER_SEED = 1_000_033
Condition = Callable[[torch.Tensor], torch.Tensor]  # θ (B, 2) physical -> the model's params (B, p)


@dataclass(frozen=True)
class Quadrature:
    """K diffusion times t_j (midpoints of equal slices of [t_min, t_max]) and the slice width w."""

    times: tuple[float, ...]
    width: float

    @classmethod
    def midpoints(cls, n: int, t_min: float = 0.0, t_max: float = 1.0) -> "Quadrature":
        if not 0.0 <= t_min < t_max <= 1.0:
            raise ValueError(f"expected 0 <= t_min < t_max <= 1, got t_min={t_min!r}, t_max={t_max!r}")
        width = (t_max - t_min) / n
        return cls(tuple(t_min + (j + 0.5) * width for j in range(n)), width)


def term_noise(shape: Sequence[int], *, seed: int, key: int, n_times: int, draws: int) -> torch.Tensor:
    """(K, D, 1, H, W) fp64 noise: ε_{j,d} from a generator keyed by (seed, map key, j, d)."""
    return torch.stack([torch.stack([torch.randn((1, *shape), generator=keyed_generator(INFER_SEED, seed, key, j, d),
                                                 dtype=torch.float64) for d in range(draws)])
                        for j in range(n_times)])


def bound_terms(model, x: torch.Tensor, params: torch.Tensor, quad: Quadrature, eps: torch.Tensor) -> torch.Tensor:
    """(B, K, D) terms L_{j,d} in nats of one normalised map x (1, 1, H, W) at B parameter rows ``params`` (B, p)
    (the model's normalised parameters), one per time j and noise draw d of ``eps`` (K, D, 1, H, W)
    (:func:`term_noise`); L_j is their mean over d. Each draw is a replica of the whole estimate, so their spread
    measures the estimate's own noise (:func:`hpc_vdm.emulate.posterior.replica_cov`).

    ``model`` needs ``gamma(t)`` (with ``gamma.dgamma_dt``) and ``eps_hat(z, γ, None, params)``: a VDM without a
    map condition or an oracle. Differentiable in ``params`` when grad is enabled."""
    b, (k, d) = params.shape[0], eps.shape[:2]
    dtype = x.dtype
    out = []
    for j, t in enumerate(quad.times):
        t_j = torch.tensor(t, dtype=torch.float32)
        g = model.gamma(t_j).detach()
        alpha, sigma = alpha_sigma(g.double())
        e = eps[j].to(dtype)                                                          # (D, 1, H, W)
        z = (alpha * x + sigma * e).to(dtype)                                         # (D, 1, H, W)
        z_b = z.repeat(b, 1, 1, 1)                                                    # (B D, 1, H, W): θ-major
        p_b = params.repeat_interleave(d, dim=0)                                      # (B D, p)
        e_hat = model.eps_hat(z_b, g.expand(b * d), None, p_b).to(dtype)
        sq = (e_hat - e.repeat(b, 1, 1, 1)).pow(2).flatten(1).sum(1).view(b, d)      # (B, D)
        out.append(quad.width * 0.5 * model.gamma.dgamma_dt(t_j).double() * sq.double())
    return torch.stack(out, 1)                                                        # (B, K, D)


# -- boxes and grids -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """A rectangle [lo, hi] of two parameters with n points along each (endpoints included)."""

    lo: tuple[float, float]
    hi: tuple[float, float]
    n: tuple[int, int]

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.linspace(self.lo[i], self.hi[i], self.n[i]) for i in range(2))

    def points(self) -> np.ndarray:
        """(n0 n1, 2) grid points, C order (the first parameter varies slowest)."""
        a, b = np.meshgrid(*self.axes(), indexing="ij")
        return np.stack([a.ravel(), b.ravel()], 1)

    def as_list(self) -> list[float]:
        return [self.lo[0], self.hi[0], self.lo[1], self.hi[1]]


def prior_of(names: Sequence[str]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(lo, hi) of the CAMELS LH prior of two parameters."""
    lo, hi = zip(*(camels.PARAM_RANGES[n] for n in names))
    return tuple(lo), tuple(hi)


def check_inside(box: Box, prior: tuple, names: Sequence[str]) -> Box:
    """The box must lie inside the prior and span something along each parameter."""
    for i, name in enumerate(names):
        lo, hi = prior[0][i], prior[1][i]
        if not (lo - 1e-12 <= box.lo[i] < box.hi[i] <= hi + 1e-12):
            raise ValueError(f"the grid of {name} spans [{box.lo[i]:.6g}, {box.hi[i]:.6g}], outside its prior "
                             f"[{lo:.6g}, {hi:.6g}] (or empty); choose a box inside the prior")
        if box.n[i] < 2:
            raise ValueError(f"the grid needs at least 2 points along {name}, got {box.n[i]}")
    return box


def centred(centre: Sequence[float], half_width: Sequence[float], n: Sequence[int], prior: tuple,
            names: Sequence[str]) -> Box:
    """centre ± half_width clipped to the prior (the paper's max(θ − 0.1, lo), min(θ + 0.1, hi))."""
    for i, name in enumerate(names):
        if not prior[0][i] <= centre[i] <= prior[1][i]:
            raise ValueError(f"the grid's centre {name}={centre[i]:.6g} lies outside its prior "
                             f"[{prior[0][i]:.6g}, {prior[1][i]:.6g}]")
    lo = tuple(max(centre[i] - half_width[i], prior[0][i]) for i in range(2))
    hi = tuple(min(centre[i] + half_width[i], prior[1][i]) for i in range(2))
    return check_inside(Box(lo, hi, tuple(int(v) for v in n)), prior, names)


def zoomed(mean: Sequence[float], std: Sequence[float], coarse: Box, *, sigmas: float, half_width: Sequence[float],
           n: Sequence[int], prior: tuple, names: Sequence[str]) -> Box:
    """The box around a coarse posterior: mean ± max(sigmas · std, half_width, 1.5 coarse spacings), clipped."""
    spacing = [(coarse.hi[i] - coarse.lo[i]) / (coarse.n[i] - 1) for i in range(2)]
    half = [max(sigmas * std[i], half_width[i], 1.5 * spacing[i]) for i in range(2)]
    return centred([float(np.clip(mean[i], prior[0][i], prior[1][i])) for i in range(2)], half, n, prior, names)


class Conditioner:
    """Grid values of two CAMELS parameters (B, 2) -> the model's normalised parameters (B, p), the others fixed
    at a base row (6,); torch, so that θ can carry gradients. Scaled over the LH prior exactly as
    :func:`hpc_vdm.data.camels.normalise_params` (log-uniform A's)."""

    def __init__(self, model_names: Sequence[str], grid_names: Sequence[str], base_row: np.ndarray):
        missing = [n for n in grid_names if n not in model_names]
        if missing:
            raise ValueError(f"the model conditions on {list(model_names)}, not on {missing}; infer.params must "
                             f"name parameters of the model")
        self.base = torch.from_numpy(camels.normalise_params(np.asarray(base_row, np.float64), model_names)).double()
        self.slots = [list(model_names).index(n) for n in grid_names]
        self.scales = []
        for name in grid_names:
            lo, hi = camels.PARAM_RANGES[name]
            self.scales.append((name in camels.LOG_PARAMS, lo, hi))

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        out = self.base.to(theta.device).expand(theta.shape[0], -1).clone()
        cols = []
        for i, (log, lo, hi) in enumerate(self.scales):
            v = theta[:, i].double()
            cols.append(torch.log(v / lo) / np.log(hi / lo) if log else (v - lo) / (hi - lo))
        for slot, col in zip(self.slots, cols):
            out[:, slot] = col
        return out.float()


def grid_terms(model, x: torch.Tensor, theta: np.ndarray, condition: Condition, quad: Quadrature, eps: torch.Tensor,
               *, device="cpu") -> np.ndarray:
    """(B, K, D) terms at grid points ``theta`` (B, 2) physical (one network call per term for all B)."""
    with torch.no_grad():
        params = condition(torch.as_tensor(theta, dtype=torch.float64)).to(device)
        return bound_terms(model, x.to(device), params, quad, eps.to(device)).cpu().numpy()
