"""The conditional VDM: a score network plus a γ schedule, trained on the variational bound.

``VDM.forward`` returns the bound per example in bits per dimension as its three named terms
(Kingma et al. 2021; the papers' variant with a Gaussian reconstruction likelihood):

1. ``loss_diff``  = ½ γ'(t) ‖ε̂(z_t, γ_t, cond) − ε‖²                 (continuous time, t ~ U(0, 1))
2. ``loss_klz``   = KL(q(z_1 | x) ‖ N(0, 1)) = ½ Σ (σ_1² + α_1² x² − log σ_1² − 1)  (in fp64)
3. ``loss_recon`` = −log N(x; z_0 / α_0, data_noise²)

each multiplied by 1 / (D ln 2), D = pixels per example. With ``weighting="sigmoid"`` the training
objective weights ``loss_diff`` by w(λ_t) = sigmoid(b − λ_t), λ = −γ the log-SNR (Kingma & Gao 2023, "Understanding
Diffusion Objectives": a monotone weighting is the bound of noise-augmented data; it moves emphasis from
nearly clean to noisier levels). ``weighting="edm"`` is EDM's (Karras+22) importance over noise levels written
in these terms (Kingma & Gao, their Table 1): w(λ) ∝ N(λ; 2.4, 2.4²) · (e^{−λ} + σ_d²)/σ_d², σ_d = 1 for
standardised maps, scaled to a peak of 1. It weights the x̂ error of very noisy levels — where the posterior
mean and the largest scales are decided — e^{γ} times more than the bound does.
``forward(..., weighted=False)`` always returns the bound itself.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import nn

from .schedule import LinearSchedule, alpha_sigma


class VDMOutput(NamedTuple):
    loss_diff: torch.Tensor   # [B] bits per dim
    loss_klz: torch.Tensor    # [B]
    loss_recon: torch.Tensor  # [B] (zeros when the term is switched off)
    gamma_0: torch.Tensor     # [] γ(0)
    gamma_1: torch.Tensor     # [] γ(1)

    @property
    def loss(self) -> torch.Tensor:
        """[B] the bound per example."""
        return self.loss_diff + self.loss_klz + self.loss_recon


WEIGHTINGS = ("elbo", "sigmoid", "edm")
EDM_LOGSNR_MEAN, EDM_LOGSNR_STD = 2.4, 2.4   # EDM's ln σ ~ N(−1.2, 1.2²) as a log-SNR λ = −2 ln σ


def edm_log_weight(gamma_t: torch.Tensor) -> torch.Tensor:
    """log of EDM's weight over γ = −λ (σ_d = 1), unnormalised: −(λ − μ)²/(2 s²) + log(1 + e^{γ})."""
    lam = -gamma_t
    return -0.5 * ((lam - EDM_LOGSNR_MEAN) / EDM_LOGSNR_STD) ** 2 + torch.nn.functional.softplus(gamma_t)


@functools.cache
def edm_log_peak() -> float:
    """max over γ of :func:`edm_log_weight` (found once, on first use, on a fine grid), so that max w = 1."""
    return float(edm_log_weight(torch.linspace(-30.0, 30.0, 60001, dtype=torch.float64)).max())


def antithetic_times(batch: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B,) stratified times t_i = t_0 + i/B with t_0 ~ U(0, 1/B): lower-variance estimates of the bound."""
    t0 = torch.rand((), generator=generator, device=device) / batch
    return t0 + torch.arange(batch, device=device, dtype=torch.float32) / batch


class VDM(nn.Module):
    """ε̂-parameterised conditional VDM. ``score(z_t, γ_t, cond, params)`` -> ε̂ of the shape of z_t."""

    def __init__(self, score: nn.Module, gamma: nn.Module, *, data_noise: float = 1e-3,
                 loss_recon: bool = True, antithetic: bool = True, weighting: str = "elbo", weighting_bias: float = 2.0):
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {list(WEIGHTINGS)}, got {weighting!r}")
        self.score, self.gamma = score, gamma
        self.data_noise, self.use_recon, self.antithetic = float(data_noise), loss_recon, antithetic
        self.weighting, self.weighting_bias = weighting, float(weighting_bias)

    @property
    def dtype(self) -> torch.dtype:
        """The network's dtype: that of its weights (a prior's constants stay fp32 whatever the network's)."""
        return next(p for name, p in self.score.named_parameters() if not name.startswith("prior.")).dtype

    def eps_hat(self, z_t: torch.Tensor, gamma_t: torch.Tensor, cond: torch.Tensor | None,
                params: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ in fp32 whatever the network's dtype (bf16 networks see bf16 inputs); ``cond`` None for a model
        without a map condition."""
        dt = self.dtype
        p = None if params is None else params.to(dt)
        c = None if cond is None else cond.to(dt)
        return self.score(z_t.to(dt), gamma_t.to(dt), c, p).float()

    def weight(self, gamma_t: torch.Tensor) -> torch.Tensor:
        """w(λ_t) of the training objective's loss_diff: 1 (the bound), sigmoid(b + γ_t) (λ = −γ) or EDM's."""
        if self.weighting == "elbo":
            return torch.ones_like(gamma_t)
        if self.weighting == "edm":
            return torch.exp(edm_log_weight(gamma_t) - edm_log_peak())
        return torch.sigmoid(self.weighting_bias + gamma_t)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, params: torch.Tensor | None = None, *,
                t: torch.Tensor | None = None, eps: torch.Tensor | None = None,
                eps_0: torch.Tensor | None = None, weighted: bool = True) -> VDMOutput:
        """x, cond (B, 1, H, W) normalised maps (cond None: no map condition) -> the terms per example.

        ``t`` (B,), ``eps`` and ``eps_0`` (like x) fix the Monte-Carlo draws (deterministic validation);
        by default they come from torch's global generator. ``weighted=False``: ``loss_diff`` of the bound
        whatever the training weighting.
        """
        x = x.float()
        b = x.shape[0]
        bpd = 1.0 / (x[0].numel() * math.log(2.0))
        if t is None:
            t = antithetic_times(b, device=x.device) if self.antithetic else torch.rand(b, device=x.device)
        eps = torch.randn_like(x) if eps is None else eps

        # 1. diffusion loss (continuous time)
        g_t = self.gamma(t)                                              # (B,)
        alpha_t, sigma_t = alpha_sigma(g_t.view(b, 1, 1, 1))
        z_t = alpha_t * x + sigma_t * eps                                # (B, 1, H, W)
        mse = (self.eps_hat(z_t, g_t, cond, params) - eps).pow(2).flatten(1).sum(1)  # (B,)
        loss_diff = bpd * 0.5 * self.gamma.dgamma_dt(t) * mse
        if weighted and self.weighting != "elbo":
            loss_diff = loss_diff * self.weight(g_t.detach())

        # 2. latent loss: KL(q(z_1|x) || N(0, 1)) = ½ Σ (σ_1² + α_1² x² − log σ_1² − 1); with σ_1² = 1 − α_1²
        #    the constant part is −α_1² − log1p(−α_1²) ≈ α_1⁴/2, which fp32 would lose (α_1² ~ 1e-6)
        g_1 = self.gamma(torch.ones((), device=x.device))
        a1_sq = torch.sigmoid(-g_1).double()
        klz = 0.5 * (a1_sq * x.double().pow(2) - a1_sq - torch.log1p(-a1_sq))
        loss_klz = (bpd * klz.flatten(1).sum(1)).float()

        # 3. reconstruction loss: -log N(x; z_0/α_0, data_noise²)
        g_0 = self.gamma(torch.zeros((), device=x.device))
        if self.use_recon:
            eps_0 = torch.randn_like(x) if eps_0 is None else eps_0
            alpha_0, sigma_0 = alpha_sigma(g_0)
            x_hat = (alpha_0 * x + sigma_0 * eps_0) / alpha_0
            nll = 0.5 * ((x - x_hat) / self.data_noise).pow(2) + math.log(self.data_noise) + 0.5 * math.log(2 * math.pi)
            loss_recon = bpd * nll.flatten(1).sum(1)
        else:
            loss_recon = torch.zeros_like(loss_diff)
        return VDMOutput(loss_diff, loss_klz, loss_recon, g_0.detach(), g_1.detach())


def build_vdm(model_cfg, vdm_cfg, *, n_params: int = 0, cond_channels: int = 1, param_mlp: bool = False,
              level_log: tuple[int, float, float] | None = None) -> VDM:
    """A :class:`VDM` from ``ModelConfig``/``VDMOptions``-like objects (read by attribute): a score U-Net
    conditioned on ``cond_channels`` maps (0: none) and ``n_params`` scalars (through an MLP with ``param_mlp``),
    with the prior base ``vdm_cfg.prior`` names (unfitted, a regressor's untrained: the family fits it).
    ``level_log``: the correlated prior's log regressor (``vdm_cfg.prior_level: log_cdm`` needs it; the caller,
    who knows the parameters' names, gives :func:`hpc_vdm.data.camels.cdm_level_regressor`'s)."""
    from ..models import build_unet
    from ..models.prior import CorrelatedTransferPrior, LinearTransferPrior, RegressorPrior
    from ..models.regressor import build_regressor, regressor_options

    gamma_range = (vdm_cfg.gamma_min, vdm_cfg.gamma_max)
    kind = getattr(vdm_cfg, "prior", "none")
    level = getattr(vdm_cfg, "prior_level", "linear")
    if level != "linear" and kind != "correlated_transfer":
        raise ValueError(f"model.vdm.prior_level={level!r} is read with model.vdm.prior='correlated_transfer' only, "
                         f"not with prior={kind!r}")
    if (level == "log_cdm") != (level_log is not None):
        raise ValueError(f"model.vdm.prior_level={level!r} and level_log={level_log!r} disagree: log_cdm, and only "
                         f"it, takes the regressor (hpc_vdm.data.camels.cdm_level_regressor)")
    prior = (LinearTransferPrior(vdm_cfg.prior_smooth_px) if kind == "linear_transfer" else
             CorrelatedTransferPrior(vdm_cfg.prior_smooth_px, vdm_cfg.prior_reach_px, n_params=n_params,
                                     level_log=level_log)
             if kind == "correlated_transfer" else
             RegressorPrior(build_regressor(regressor_options(model_cfg), n_params=n_params)) if kind == "regressor"
             else None)
    return VDM(build_unet(model_cfg, gamma_range=gamma_range, n_params=n_params, cond_channels=cond_channels,
                          param_mlp=param_mlp, prior=prior),
               LinearSchedule(*gamma_range, learned=vdm_cfg.schedule == "learned_linear"),
               data_noise=vdm_cfg.data_noise, loss_recon=vdm_cfg.loss_recon, antithetic=vdm_cfg.antithetic,
               weighting=getattr(vdm_cfg, "weighting", "elbo"), weighting_bias=getattr(vdm_cfg, "weighting_bias", 2.0))
