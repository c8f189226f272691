"""Variational diffusion: the γ schedule, the bound (loss_diff, loss_klz, loss_recon), the samplers (the papers'
ancestral reference and few-step solvers; whole maps, or any size by fused periodic tiling), the EMA, and an exact
Gaussian-field oracle to check samplers against.

Torch only: no DeepSpeed, SLURM or config objects. Everything derives from γ(t):
α_t² = sigmoid(−γ_t), σ_t² = sigmoid(γ_t), z_t = α_t x + σ_t ε.
"""
from .ema import EMA
from .oracle import GaussianFieldOracle, ParamFieldOracle
from .sampler import (DEFAULT_SAMPLER, DEFAULT_STEPS, SAMPLERS, ancestral_step, key_seed, keyed_generator, sample,
                      sample_loop, time_grid)
from .schedule import LinearSchedule, alpha_sigma
from .tiled import check_window, keyed_noise, sample_tiled, stride_of, window_align
from .vdm import VDM, VDMOutput, antithetic_times, build_vdm

__all__ = ["DEFAULT_SAMPLER", "DEFAULT_STEPS", "EMA", "GaussianFieldOracle", "LinearSchedule", "ParamFieldOracle",
           "SAMPLERS", "VDM",
           "VDMOutput", "alpha_sigma", "ancestral_step", "antithetic_times", "build_vdm", "check_window", "key_seed",
           "keyed_generator", "keyed_noise", "sample", "sample_loop", "sample_tiled", "stride_of", "time_grid",
           "window_align"]
