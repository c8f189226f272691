"""Networks. Plain torch modules: no DeepSpeed, SLURM or config imports (``build_*`` read attributes)."""
from .dm2gal import DM2Gal, DenseDM2Gal, build_dm2gal
from .regressor import FieldRegressor, build_regressor
from .unet import UNet, build_unet, unet_stride

__all__ = ["DM2Gal", "DenseDM2Gal", "FieldRegressor", "UNet", "build_dm2gal", "build_regressor", "build_unet",
           "unet_stride"]
