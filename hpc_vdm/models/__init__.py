"""Networks. Plain torch modules: no DeepSpeed, SLURM or config imports (``build_*`` take keywords)."""
from .unet import UNet, build_unet

__all__ = ["UNet", "build_unet"]
