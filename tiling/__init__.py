"""Model-agnostic periodic tiling of 2D/3D fields (tile grids, wrap-around gather/scatter, blending).

``tile_apply(fn, field, tile, halo, blend="core", batch_size=...)`` applies ``fn`` to (C, *spatial) fields of
any size in overlapping, wrap-around windows and blends the results back (core-only, cosine, Gaussian).
This package never imports ``hpc_vdm``; numpy first, torch duck-typed, Zarr/dask inputs read window by window.
"""
from .apply import Accumulator, gather, tile_apply
from .blend import BLENDS, window_weights
from .grid import TileGrid

__all__ = ["Accumulator", "BLENDS", "TileGrid", "gather", "tile_apply", "window_weights"]
