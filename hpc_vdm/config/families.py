"""The model families' options, each under ``model.<kind>``: the VDM's schedule and bound (``model.vdm``), the
dm2gal patch network and its training centres (``model.dm2gal``), the two-phase CNN (``model.two_phase``); the
emulator's are in :mod:`.emulate`."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import param


@dataclass
class VDMOptions:
    """The VDM family's noise schedule and bound (``model.vdm``)."""

    schedule: str = param("learned_linear", "gamma(t) = b + |w| t, learned or fixed",
                          choices=("learned_linear", "fixed_linear"))
    gamma_min: float = param(-13.3, "gamma(0) at initialisation", range=(-30.0, 30.0))
    gamma_max: float = param(13.3, "gamma(1) at initialisation", range=(-30.0, 30.0))
    data_noise: float = param(1e-3, "std of the Gaussian reconstruction likelihood p(x | z_0)", range=(1e-8, None))
    loss_recon: bool = param(True, "include loss_recon in the bound (the Nov-2023 runs left it out)")
    antithetic: bool = param(True, "antithetic (stratified) diffusion times within a batch")
    weighting: str = param("elbo", "training weight of loss_diff: elbo (the bound itself) or sigmoid (w = "
                                   "sigmoid(b - log-SNR), Kingma & Gao 2023: less weight on nearly clean levels); "
                                   "edm (Karras+22's weight over noise levels: more on very noisy levels, where the "
                                   "posterior mean is decided); validation always reports the bound",
                         choices=("elbo", "sigmoid", "edm"))
    weighting_bias: float = param(2.0, "b of the sigmoid weighting [log-SNR units]", range=(-20.0, 20.0))
    prior: str = param("none", "base of the score network's ε̂: none (model.add_zt's), linear_transfer (the exact "
                               "denoiser of a Gaussian around A (K_w * condition) + B in log, fitted on the training "
                               "maps: the untrained posterior mean is the linear transfer estimate; replaces add_zt) "
                               "or regressor (the same around the frozen prediction of the trained regressor "
                               "model.vdm.prior_model: CorrDiff's regression plus a diffusion residual) or "
                               "correlated_transfer (linear_transfer with a level linear in the parameters and "
                               "the residual's fitted power spectrum in place of white noise, its kernel truncated "
                               "at prior_reach_px)",
                       choices=("none", "linear_transfer", "regressor", "correlated_transfer"))
    prior_model: str = param("", "prior=regressor: the export (model.pt) of a regressor of backbone unet trained on "
                                 "the same store, with this model's U-Net options and params; its weights are "
                                 "copied into the model when training starts (its export does not need the file)")
    prior_smooth_px: float = param(1.0, "w of the linear-transfer prior's periodic Gaussian K_w [pixels] (reach "
                                        "ceil(3 w) pixels; 0: no smoothing)", range=(0.0, 16.0))
    prior_reach_px: int = param(24, "prior=correlated_transfer: the radius [pixels] at which the kernel of its "
                                    "denoiser is truncated (the prior reads prior_reach_px + ceil(3 w) pixels; keep "
                                    "it within the U-Net's reach, or the tiling halo grows)", range=(0, 256))
    prior_level: str = param("linear", "prior=correlated_transfer: the level's regressors: linear (b₀ + β·θ in the "
                                       "normalised model.params) or log_cdm (also log10(Ω_m − Ω_b), the log of the "
                                       "slab's mean CDM density, which the log map's level follows; needs Omega_m "
                                       "in model.params)", choices=("linear", "log_cdm"))


@dataclass
class Dm2galOptions:
    """The dm2gal family (``model.dm2gal``): the 3D patch network and how its training centres are drawn."""

    patch: int = param(65, "voxels per side of an input patch (odd; the paper: 65)", range=(3, 513))
    kernels: list[int] = param([7, 7, 3, 5, 5, 3, 3, 3, 3], "kernel of every conv layer (paper: 65^3 -> 1)")
    strides: list[int] = param([1, 1, 2, 1, 1, 2, 1, 1, 2], "stride of every conv layer")
    widths: list[int] = param([1, 1, 2, 2, 2, 4, 4, 4, 8], "channels of every conv layer, in units of channels")
    channels: int = param(16, "channels of the first layers (paper code: 16 class default, 128 in its runs)",
                          range=(1, 1024))
    hidden: int = param(256, "width of the first dense layer", range=(1, 65536))
    min_log_mstar: float = param(8.0, "patch centres: voxels with log10(1 + M*/(Msun/h)) above this", range=(0.0, 20.0))
    centres: str = param("stellar", "patch centres: stellar (the paper: voxels above min_log_mstar) or subhalo (also "
                                    "every voxel with subhalo mass, starless ones at a floor 0.5 dex below; the "
                                    "painter then empties voxels predicted below the threshold)",
                         choices=("stellar", "subhalo"))
    weight_bins: int = param(100, "bins of the log target for the inverse-count sampling weights", range=(1, 10_000))
    rotations: bool = param(True, "one of the 24 proper rotations of the cube per draw, same for both channels")
    samples_per_epoch: int = param(0, "weighted draws per epoch (0 = the number of training centres)",
                                   range=(0, None))
    val_voxels: int = param(4096, "validation centres (above the threshold) for val_mse", range=(1, None))


@dataclass
class TwoPhaseOptions:
    """The two-phase CNN (``model.two_phase``, Zhang+19): phase 1 a per-pixel classifier of galaxy presence,
    phase 2 a regressor of the log target trained through the frozen classifier's gate."""

    classifier: str = param("inception", "classifier: inception (the paper's) or unet (the model.* U-Net)",
                            choices=("inception", "unet"))
    regressor: str = param("unet", "regressor: unet (the model.* U-Net, deterministic) or inception",
                           choices=("inception", "unet"))
    inception_widths: list[int] = param([6, 8, 10, 3], "channels of an Inception block's 1x1, 3x3, 5x5 and pool "
                                                      "branches (Zhang+19)", range=(1, 4096))
    inception_blocks: int = param(1, "Inception blocks before two 3x3 convs (receptive radius 2 n + 2)", range=(1, 64))
    loss: str = param("bce", "classifier loss: class-weighted bce, or focal (same weight)", choices=("bce", "focal"))
    pos_weight: float = param(80.0, "weight of galaxy pixels in the classifier loss (Zhang+19: 80)", range=(1e-3, 1e6))
    focal_gamma: float = param(2.0, "focal loss exponent (0: weighted bce)", range=(0.0, 10.0))
    threshold: float = param(0.5, "the gate: a galaxy where the classifier's probability exceeds this, in (0, 1)",
                             range=(0.0, 1.0))
    switch_step: int = param(1000, "optimizer steps of phase 1; then the classifier is frozen and the regressor "
                                   "trains through its gate", range=(1, None))
