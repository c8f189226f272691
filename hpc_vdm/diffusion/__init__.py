"""Variational diffusion: the γ schedule, the bound (loss_diff, loss_klz, loss_recon), the sampler (whole maps, or any
size by fused periodic tiling), the EMA.

Torch only: no DeepSpeed, SLURM or config objects. Everything derives from γ(t):
α_t² = sigmoid(−γ_t), σ_t² = sigmoid(γ_t), z_t = α_t x + σ_t ε.
"""
from .ema import EMA
from .sampler import ancestral_step, key_seed, keyed_generator, sample, sample_loop, time_grid
from .schedule import LinearSchedule, alpha_sigma
from .tiled import check_window, keyed_noise, sample_tiled
from .vdm import VDM, VDMOutput, antithetic_times, build_vdm

__all__ = ["EMA", "LinearSchedule", "VDM", "VDMOutput", "alpha_sigma", "ancestral_step", "antithetic_times",
           "build_vdm", "check_window", "key_seed", "keyed_generator", "keyed_noise", "sample", "sample_loop",
           "sample_tiled", "time_grid"]
