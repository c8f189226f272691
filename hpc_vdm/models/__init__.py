"""Networks. Plain torch modules: no DeepSpeed, SLURM or config imports (``build_*`` read attributes)."""
from .blocks import ATTENTIONS, NORMS, PixelNorm
from .dm2gal import DM2Gal, DenseDM2Gal, build_dm2gal
from .frozen_norm import FrozenGroupNorm, calibrate, freeze, record_stats
from .reach import effective_reach, locality, misaligned_windows, receptive_radius, unet_receptive_radius
from .regressor import FieldRegressor, build_regressor
from .unet import UNet, build_unet, unet_stride

__all__ = ["ATTENTIONS", "DM2Gal", "DenseDM2Gal", "FieldRegressor", "FrozenGroupNorm", "NORMS", "PixelNorm", "UNet",
           "build_dm2gal", "build_regressor", "build_unet", "calibrate", "effective_reach", "freeze", "locality",
           "misaligned_windows", "receptive_radius", "record_stats", "unet_receptive_radius", "unet_stride"]
