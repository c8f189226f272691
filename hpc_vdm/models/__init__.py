"""Networks. Plain torch modules: no DeepSpeed, SLURM or config imports (``build_*`` read attributes)."""
from .regressor import FieldRegressor, build_regressor
from .unet import UNet, build_unet, unet_stride

__all__ = ["FieldRegressor", "UNet", "build_regressor", "build_unet", "unet_stride"]
