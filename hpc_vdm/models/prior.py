"""Conditional Gaussian bases for the score network: the exact denoiser of a Gaussian prior around an estimate.

The papers' U-Net returns ε̂ = net(z_t, ...) + z_t (``add_zt``): at initialisation, and wherever the network has
learned nothing, its denoiser is that of a field independent of the condition. A prior base replaces it with the
exact denoiser of a per-pixel Gaussian x ~ N(μ(c, θ), s²) in the model's normalised variables (x = (log10(x_phys +
o_t) − m_t)/σ_t), at z_t = α_t x + σ_t ε:

    ε̂_G(z_t, γ_t, c) = E[ε | z_t, c] = σ_t (z_t − α_t μ(c, θ)) / (α_t² s² + σ_t²),   α_t² = sigmoid(−γ_t).

The network adds its correction to ε̂_G: the bound is unchanged (a parameterisation, as EDM's preconditioning),
but the posterior mean of an untrained model is already the prior's μ, and training learns what the condition
says beyond it (the regression-plus-residual idea of CorrDiff, Mardani+23). Two μ's:

* :class:`LinearTransferPrior` (``model.vdm.prior: linear_transfer``), a fixed linear regression:

      log10(x_phys + o_t) ~ N(log10 T(c) + r̄, s_dex²),   T(c) = A · (K_w ⊛ S) + B,

  S the condition in physical units (the stellar map), K_w a periodic Gaussian of ``smooth_px`` pixels truncated
  at 3 w; A, B by least squares of the target on K_w ⊛ S on the training maps, r̄ and s_dex the mean and spread of
  the log residual (:meth:`LinearTransferPrior.fit`); μ = (log10 T + r̄ − m_t)/σ_t, s = s_dex/σ_t.
* :class:`RegressorPrior` (``model.vdm.prior: regressor``), CorrDiff's: μ = f(c, θ) + r̄ with f a trained,
  frozen deterministic U-Net (the ``regressor`` family's MSE estimate of the normalised target, the same
  architecture as the score network), r̄ and s the mean and spread of its residual on the training maps.
* :class:`CorrelatedTransferPrior` (``model.vdm.prior: correlated_transfer``): the linear transfer's μ plus a
  level linear in the parameters (and, with ``level_log``, in the log of one of them: the slab's mean CDM
  density ∝ Ω_m − Ω_b), and a stationary residual of fitted power spectrum in place of the white s²;
  its exact denoiser is a convolution, truncated at ``reach_px`` pixels so that the model stays local.

Locality: ε̂_G at a pixel reads the condition within ``receptive_radius`` pixels (ceil(3 w) for the linear
transfer, reach_px more for the correlated one, the regressor's structural radius for a regressor), so a tiled
model stays local; :func:`hpc_vdm.models.reach.structural_radius` takes the larger of it and the U-Net's. The
constants and the regressor are frozen parameters (no gradient), so checkpoints, the EMA and exports carry them.
"""
from __future__ import annotations

import abc
import itertools
import math
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .wiener import periodic_conv, truncated_kernel, wavenumber


def gaussian_kernel(smooth_px: float) -> torch.Tensor:
    """(1, 1, 2R+1, 2R+1) normalised Gaussian of std ``smooth_px`` pixels truncated at R = ceil(3 w); [[1]] for 0."""
    if not (math.isfinite(smooth_px) and smooth_px >= 0):
        raise ValueError(f"smooth_px must be a finite number >= 0, got {smooth_px!r}")
    radius = math.ceil(3.0 * smooth_px)
    d = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (d / smooth_px) ** 2) if smooth_px > 0 else torch.ones(1, dtype=torch.float64)
    k = g[:, None] * g[None, :]
    return (k / k.sum())[None, None]


class GaussianPrior(nn.Module, abc.ABC):
    """The exact denoiser of a per-pixel Gaussian x ~ N(μ(c, θ), s²) in the model's normalised variables; the
    subclasses say what μ and s are, and how far μ reads the condition (``receptive_radius`` pixels, None for the
    whole map). Its constants and network (if any) are frozen and stay fp32."""

    receptive_radius: int | None

    @abc.abstractmethod
    def mean(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """μ(c, θ) (B, 1, H, W): the prior's mean of the normalised target."""

    @abc.abstractmethod
    def spread(self) -> torch.Tensor:
        """s: the prior's per-pixel std of the normalised target."""

    def eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂_G = σ_t (z_t − α_t μ) / (α_t² s² + σ_t²) in fp32; z_t, cond (B, 1, H, W), γ_t (B,), params (B, P)."""
        g = gamma_t.float().view(-1, 1, 1, 1)
        alpha, sigma = torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt()
        s2 = self.spread() ** 2
        return sigma * (z_t.float() - alpha * self.mean(cond, params)) / (alpha ** 2 * s2 + sigma ** 2)

    def _apply(self, fn, recurse: bool = True):
        """Moves follow the module; dtype casts do not reach the prior, which stays fp32: in bf16, log10 B ~ 11
        would round by 0.03 dex, and a regression's mean by 0.4% of σ (a bf16 network still gets ε̂_G in fp32,
        cast once at the sum)."""
        tensors = lambda: itertools.chain(self.named_parameters(), self.named_buffers())  # noqa: E731
        kept = {name: t.detach().float().clone() for name, t in tensors() if t.is_floating_point()}
        super()._apply(fn, recurse)
        for name, t in tensors():
            if name in kept:
                t.data = kept[name].to(t.device)
        return self


class LinearTransferPrior(GaussianPrior):
    """ε̂_G of the linear-transfer prior (module docstring). ``cond`` is the normalised condition the score network
    sees; ``cond_norm`` / ``target_norm`` are (offset, mean, std) of the two log normalisations."""

    NAMES = ("cond_offset", "cond_mean", "cond_log_std", "target_offset", "target_mean", "target_log_std",
             "log10_a", "log10_b", "res_mean_dex", "log_res_std_dex")

    def __init__(self, smooth_px: float = 1.0):
        super().__init__()
        self.smooth_px = float(smooth_px)
        self.register_buffer("kernel", gaussian_kernel(self.smooth_px).float(), persistent=False)
        self.receptive_radius = int(self.kernel.shape[-1] // 2)
        # (10,) the fitted constants, by NAMES: frozen (no gradient), one vector (DeepSpeed broadcasts tensors of
        # at least one dimension); zeros until fit() or a state dict sets them
        self.constants = nn.Parameter(torch.zeros(len(self.NAMES)), requires_grad=False)

    def __getattr__(self, name: str):
        if name in LinearTransferPrior.NAMES:
            return self.constants[LinearTransferPrior.NAMES.index(name)]
        return super().__getattr__(name)

    # -- the prior ---------------------------------------------------------------------------------------------
    def smooth(self, s: torch.Tensor) -> torch.Tensor:
        """K_w ⊛ s, periodic, for maps (B, 1, H, W)."""
        r = self.kernel.shape[-1] // 2
        if r == 0:
            return s
        return F.conv2d(F.pad(s, (r, r, r, r), mode="circular"), self.kernel.to(s.dtype))

    def transfer(self, stars: torch.Tensor) -> torch.Tensor:
        """T = A (K_w ⊛ S) + B of physical condition maps S (B, 1, H, W)."""
        return 10.0 ** self.log10_a.to(stars.dtype) * self.smooth(stars) + 10.0 ** self.log10_b.to(stars.dtype)

    def mean(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """μ(c) (B, 1, H, W): the prior's mean of the normalised target, from the normalised condition."""
        c = cond.float()
        stars = (10.0 ** (c * self.cond_log_std.exp() + self.cond_mean) - self.cond_offset).clamp_min(0.0)
        log_t = torch.log10(self.transfer(stars))
        return (log_t + self.res_mean_dex - self.target_mean) / self.target_log_std.exp()

    def spread(self) -> torch.Tensor:
        """s: the prior's per-pixel std of the normalised target."""
        return (self.log_res_std_dex - self.target_log_std).exp()

    # -- fitting ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]], cond_norm: tuple[float, float, float],
            target_norm: tuple[float, float, float]) -> dict:
        """Fit A, B (least squares of the target on K_w ⊛ S) and the log residual's mean and std from batches of
        physical (condition, target) maps (n, H, W) (smoothed once and held: two passes). Returns the fitted values.
        Refuses a fit whose transfer is not positive (A <= 0 or B <= 0), naming the values."""
        # (u = K_w ⊛ S, target) per batch, flat float64: smoothed once, used by both passes
        pairs = [(self.smooth(torch.as_tensor(np.asarray(s, np.float64))[:, None]).flatten().numpy(),
                  np.asarray(t, np.float64).ravel()) for s, t in pairs]
        if not pairs:
            raise ValueError("the linear-transfer prior needs at least one (condition, target) batch of training maps")
        # normal equations of target ≈ A u + B
        m = np.zeros((2, 2))
        v = np.zeros(2)
        for u, t in pairs:
            m += [[u @ u, u.sum()], [u.sum(), u.size]]
            v += [u @ t, t.sum()]
        if abs(np.linalg.det(m)) <= 1e-12 * max(abs(m[0, 0] * m[1, 1]), 1e-300):
            raise ValueError("the linear-transfer prior cannot be fitted: the smoothed condition maps are constant")
        a, b = np.linalg.solve(m, v)
        if not (a > 0 and b > 0):
            raise ValueError(f"the linear-transfer fit of the target on the condition gave A={a:.4g}, B={b:.4g}; the "
                             f"prior needs both > 0 (a target that grows with the condition, with a floor); use "
                             f"model.vdm.prior='none' for this pair of fields")
        t_off = float(target_norm[0])
        n, s1, s2 = 0, 0.0, 0.0
        for u, t in pairs:
            res = np.log10(t + t_off) - np.log10(a * u + b)
            n, s1, s2 = n + res.size, s1 + res.sum(), s2 + res @ res
        res_mean = s1 / n
        res_std = math.sqrt(max(s2 / n - res_mean ** 2, 0.0))
        if not res_std > 0:
            raise ValueError("the target is exactly the linear transfer of the condition: no residual to model")
        values = dict(cond_offset=cond_norm[0], cond_mean=cond_norm[1], cond_log_std=math.log(cond_norm[2]),
                      target_offset=t_off, target_mean=target_norm[1], target_log_std=math.log(target_norm[2]),
                      log10_a=math.log10(a), log10_b=math.log10(b), res_mean_dex=res_mean,
                      log_res_std_dex=math.log(res_std))
        self.constants.copy_(torch.tensor([values[name] for name in self.NAMES], dtype=self.constants.dtype))
        return {"A": float(a), "B": float(b), "res_mean_dex": float(res_mean), "res_std_dex": float(res_std),
                "smooth_px": self.smooth_px}

    def extra_repr(self) -> str:
        return f"smooth_px={self.smooth_px}, receptive_radius={self.receptive_radius}"


class RegressorPrior(GaussianPrior):
    """ε̂_G of a Gaussian around a frozen regressor's prediction: μ(c, θ) = f(c, θ) + r̄, s (module docstring).
    ``net`` maps the normalised condition (B, 1, H, W) [and parameters (B, P)] to the normalised target; it is
    frozen, kept in eval mode (no dropout) and fp32, and its weights travel with the model's."""

    NAMES = ("res_mean", "log_res_std")

    def __init__(self, net: nn.Module):
        super().__init__()
        from .reach import structural_radius

        self.net = net.requires_grad_(False).eval()
        self.receptive_radius = structural_radius(net)   # None: not local (global attention), nor is the model
        # (2,) r̄ and log s in normalised units, by NAMES: frozen, zeros until fit() or a state dict sets them
        self.constants = nn.Parameter(torch.zeros(len(self.NAMES)), requires_grad=False)

    def train(self, mode: bool = True):
        """The regressor stays in eval mode whatever the model's (its dropout is not part of the prior)."""
        super().train(mode)
        self.net.eval()
        return self

    def regression(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """f(c, θ) (B, 1, H, W) in fp32."""
        c = cond.float()
        return (self.net(c) if params is None else self.net(c, params.float())).float()

    def mean(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        return self.regression(cond, params) + self.constants[0]

    def spread(self) -> torch.Tensor:
        return self.constants[1].exp()

    @torch.no_grad()
    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]) -> dict:
        """r̄ and s: the mean and std of x − f(c, θ) over batches of normalised (cond (B, 1, H, W), params (B, P)
        or None, target (B, 1, H, W)) training maps (float64 sums). Returns them with the number of pixels."""
        n, s1, s2 = 0, 0.0, 0.0
        for cond, params, x in batches:
            res = x.double() - self.regression(cond, params).double()
            n, s1, s2 = n + res.numel(), s1 + res.sum().item(), s2 + res.pow(2).sum().item()
        if n == 0:
            raise ValueError("the regressor prior needs at least one (condition, target) batch of training maps")
        res_mean = s1 / n
        res_std = math.sqrt(max(s2 / n - res_mean ** 2, 0.0))
        if not res_std > 0:
            raise ValueError("the regressor reproduces the training targets exactly: no residual to model")
        self.constants.copy_(torch.tensor([res_mean, math.log(res_std)], dtype=self.constants.dtype))
        return {"res_mean": res_mean, "res_std": res_std, "pixels": n}

    def extra_repr(self) -> str:
        return f"receptive_radius={self.receptive_radius}"


def radial_nodes(n_nodes: int) -> np.ndarray:
    """(n_nodes,) |k| [cycles / pixel] of the spectrum's nodes: uniform from 0 to the grid's corner, √2 / 2."""
    return np.linspace(0.0, math.sqrt(0.5), n_nodes)


class CorrelatedTransferPrior(LinearTransferPrior):
    """ε̂_G of the linear-transfer prior with a level linear in the parameters and a **stationary, correlated**
    residual (``model.vdm.prior: correlated_transfer``): in the model's normalised variables

        x ~ N(μ_LT(c) + b₀ + β·θ, C),   C stationary with the isotropic power spectrum P(|k|) of the residual,

    μ_LT the linear transfer's mean (:class:`LinearTransferPrior`), θ the normalised parameters the network is given.
    Its exact denoiser is a convolution, per Fourier mode

        ε̂_G = σ_t F⁻¹[ F(z_t − α_t μ) · h̃_γ ],   h̃_γ(k) = 1 / (α_t² P(|k|) + σ_t²),

    which is :class:`LinearTransferPrior`'s for a white P = s². The white base says the map's mean level is known to
    s / N_pix^½ (0.006 dex on 64² science maps), where the training maps' residual level varies by 0.12 dex (0.05
    dex about its linear fit in θ): at k → 0 the residual's power is 350 s² (53 s² about that fit), not s². So
    that the model stays local, the real-space kernel F⁻¹h̃_γ is truncated at ``reach_px`` pixels (Chebyshev) and
    applied by a direct convolution over the window made periodic: the prior reads the condition within
    ``reach_px`` + ceil(3 w) pixels. The truncation approximates the exact denoiser (to < 1% rms on fields of a
    2 px correlation length, in the tests; 0.2-1.7% on the science residual's spectrum), not the bound, which
    stays exact for any base.

    The spectrum is tabulated at ``n_nodes`` |k| nodes (:func:`radial_nodes`), interpolated linearly in log P; the
    kernel is built on a ``kernel_grid`` × ``kernel_grid`` periodic grid (≥ 2 reach + 1) per call, for each γ_t.

    ``level_log`` = (i, scale, shift) adds a regressor φ(θ) = log10(shift + scale θ_i) to the level, b₀ + β·θ +
    β_φ φ(θ): with θ_i the normalised Ω_m, shift + scale θ_i = Ω_m − Ω_b, the log of the slab's mean CDM surface
    density, which the log map's level follows and which is far from linear over the LH range (0.05 to 0.45,
    0.95 dex; :func:`hpc_vdm.data.camels.cdm_level_regressor`)."""

    def __init__(self, smooth_px: float = 1.0, reach_px: int = 24, n_params: int = 0, n_nodes: int = 33,
                 level_log: tuple[int, float, float] | None = None):
        super().__init__(smooth_px)
        if not (isinstance(reach_px, int) and 0 <= reach_px <= 256):
            raise ValueError(f"reach_px must be an integer in [0, 256], got {reach_px!r}")
        if level_log is not None and not (0 <= int(level_log[0]) < int(n_params) and float(level_log[1]) != 0.0):
            raise ValueError(f"level_log = (parameter index, scale, shift) needs an index in [0, {n_params}) and a "
                             f"non-zero scale, got {level_log!r}")
        self.reach_px, self.n_params = reach_px, int(n_params)
        self.level_log = None if level_log is None else (int(level_log[0]), float(level_log[1]), float(level_log[2]))
        self.receptive_radius = reach_px + self.receptive_radius
        self.kernel_grid = max(64, 4 * reach_px)
        # (1 + P [+ 1],) b₀, β [, β_φ] of the level; (n_nodes,) log P at radial_nodes: frozen, zeros (a white
        # s = 1) until fit()
        self.level = nn.Parameter(torch.zeros(1 + self.n_params + (level_log is not None)), requires_grad=False)
        self.log_power = nn.Parameter(torch.zeros(n_nodes), requires_grad=False)
        g = self.kernel_grid
        self.register_buffer("grid_k", wavenumber((g, g)).float(), persistent=False)  # (G, G) |k|, full FFT grid

    # -- the prior ---------------------------------------------------------------------------------------------
    def regressors(self, params: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, 1 + P [+ 1]) the level's regressors [1, θ (, φ(θ))] of normalised parameters ``params`` (B, P)."""
        if not self.n_params:
            return torch.ones(batch, 1, dtype=self.level.dtype, device=self.level.device)
        if params is None or params.shape[-1] != self.n_params:
            raise ValueError(f"the correlated-transfer prior's level reads {self.n_params} parameters, got "
                             f"{None if params is None else tuple(params.shape)}")
        theta = params.to(self.level.dtype)
        cols = [torch.ones_like(theta[:, :1]), theta]
        if self.level_log is not None:
            i, scale, shift = self.level_log
            arg = shift + scale * theta[:, i : i + 1]
            torch._assert_async((arg > 0).all(), "the level's log regressor needs shift + scale * theta > 0 "
                                                 "(Omega_m > Omega_b)")
            cols.append(torch.log10(arg))
        return torch.cat(cols, 1)

    def mean(self, cond: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """μ(c, θ) (B, 1, H, W) = μ_LT(c) + b₀ + β·θ (+ β_φ φ(θ))."""
        level = self.regressors(params, cond.shape[0]) @ self.level                           # (B,)
        return super().mean(cond) + level.view(-1, 1, 1, 1)

    def power(self, k: torch.Tensor) -> torch.Tensor:
        """P(|k|) at ``k`` [cycles / pixel]: linear interpolation of the table in log P (flat beyond the nodes)."""
        nodes = torch.from_numpy(radial_nodes(self.log_power.numel())).to(k)
        x = k.clamp(0.0, float(nodes[-1])) / float(nodes[1])
        i = x.floor().long().clamp_max(nodes.numel() - 2)
        f = x - i
        lp = self.log_power.to(k)
        return (lp[i] * (1 - f) + lp[i + 1] * f).exp()

    def spread(self) -> torch.Tensor:
        """s: the per-pixel std the spectrum implies, (mean of P over the kernel grid's modes)^½."""
        return self.power(self.grid_k).mean().sqrt()

    def kernels(self, gamma_t: torch.Tensor) -> torch.Tensor:
        """(B, 1, 2R+1, 2R+1): F⁻¹[1 / (α_t² P + σ_t²)] on the kernel grid, truncated at R = reach_px; γ_t (B,)."""
        g, n = gamma_t.float().view(-1, 1, 1, 1), self.kernel_grid
        power = self.power(self.grid_k[:, : n // 2 + 1])                                    # (G, G//2 + 1)
        return truncated_kernel(1.0 / (torch.sigmoid(-g) * power + torch.sigmoid(g)), (n, n), self.reach_px)

    def eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂_G = σ_t (h_γ ⊛ (z_t − α_t μ)), ⊛ periodic over the window, in fp32; z_t, cond (B, 1, H, W),
        γ_t (B,)."""
        b = z_t.shape[0]
        g = gamma_t.float().view(-1, 1, 1, 1)
        d = z_t.float() - torch.sigmoid(-g).sqrt() * self.mean(cond, params)              # (B, 1, H, W)
        h = self.kernels(gamma_t.float().reshape(-1).expand(b))                              # (B, 1, K, K)
        return torch.sigmoid(g).sqrt() * periodic_conv(d, h)

    # -- fitting ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_field(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]) -> dict:
        """After :meth:`fit` (the transfer): b₀, β (, β_φ) by least squares of each map's mean residual x − μ_LT(c)
        on :meth:`regressors` [1, θ (, φ(θ))], then P(|k|) of the residual about that level, the maps' periodogram
        averaged at the nodes with linear (cloud-in-cell) weights in |k|. ``batches``: normalised (cond (B, 1, H,
        W), params (B, P) or None, target (B, 1, H, W)) training maps. Returns the level's coefficients, the
        residual level's std before and after, P(0) / s²."""
        res, designs = [], []
        for cond, params, x in batches:
            n_params = 0 if params is None else params.shape[-1]
            if n_params != self.n_params:
                raise ValueError(f"the correlated-transfer prior reads {self.n_params} parameters; the maps carry "
                                 f"{n_params}")
            if self.level_log is not None:
                i, scale, shift = self.level_log
                arg = shift + scale * params[:, i].double()
                if not bool((arg > 0).all()):
                    raise ValueError(f"the level's log regressor log10({shift:g} + {scale:g} theta_{i}) needs a "
                                     f"positive argument; a training map has {float(arg.min()):.4g}")
            res.append((x.double() - LinearTransferPrior.mean(self, cond).double())[:, 0])
            designs.append(self.regressors(params, x.shape[0]).double().numpy())
        if not res:
            raise ValueError("the correlated-transfer prior needs at least one batch of training maps")
        r = torch.cat(res).numpy()                                                  # (n, H, W)
        design = np.concatenate(designs)                                            # (n, 1 + P [+ 1])
        levels = r.mean((1, 2))
        if len(levels) < design.shape[1]:
            raise ValueError(f"the level's fit in {design.shape[1]} regressors needs at least {design.shape[1]} "
                             f"training maps, got {len(levels)}")
        coef = np.linalg.lstsq(design, levels, rcond=None)[0]
        r = r - (design @ coef)[:, None, None]
        n, hgt, wid = r.shape
        periodogram = (np.abs(np.fft.fft2(r)) ** 2).mean(0) / (hgt * wid)          # (H, W): white s² -> s²
        nodes = radial_nodes(self.log_power.numel())
        x = np.minimum(wavenumber((hgt, wid)).numpy() / nodes[1], len(nodes) - 1.0).ravel()
        i = np.minimum(np.floor(x).astype(int), len(nodes) - 2)
        f = x - i
        weight = np.bincount(i, 1 - f, len(nodes)) + np.bincount(i + 1, f, len(nodes))
        power = (np.bincount(i, (1 - f) * periodogram.ravel(), len(nodes))
                 + np.bincount(i + 1, f * periodogram.ravel(), len(nodes)))
        empty = weight <= 0
        if empty.all():
            raise ValueError("the residual's spectrum has no modes")
        power = np.where(empty, np.nan, power / np.where(empty, 1.0, weight))
        power = np.interp(nodes, nodes[~empty], power[~empty])                    # nodes no mode reached
        if not (power > 0).all():
            raise ValueError(f"the residual's spectrum is not positive at every node: {power.min():.3g}")
        self.level.copy_(torch.from_numpy(coef))
        self.log_power.copy_(torch.from_numpy(np.log(power)))
        return {"level": coef.tolist(), "level_std": float(levels.std()),
                "level_std_after": float((levels - design @ coef).std()), "p0_over_s2": float(power[0] / r.var()),
                "maps": n}

    def extra_repr(self) -> str:
        return (f"smooth_px={self.smooth_px}, reach_px={self.reach_px}, n_params={self.n_params}, "
                f"level_log={self.level_log}, receptive_radius={self.receptive_radius}")
