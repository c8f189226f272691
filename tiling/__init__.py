"""Model-agnostic periodic tiling of 2D/3D fields (tile grids, wrap-around gather/scatter, blending, streaming).

``tile_apply(fn, field, tile, halo, blend="core", batch_size=..., mode="same"|"valid", tiles=..., out=...)``
applies ``fn`` to (C, *spatial) fields of any size in overlapping, wrap-around windows and blends the
results back (core-only, cosine, Gaussian); ``mode="valid"`` takes functions that return only the core
(valid convolutions). ``TileGrid.tiles_of(rank, world)`` splits the tiles among ranks and
``check_aligned(grid, chunks)`` makes sure ranks streaming into one Zarr output never share a chunk.
This package never imports ``hpc_vdm``; numpy first, torch duck-typed, Zarr/dask inputs read window by window.
"""
from .apply import Accumulator, gather, tile_apply
from .blend import BLENDS, window_weights
from .grid import MODES, TileGrid
from .stream import check_aligned, write_chunks

__all__ = ["Accumulator", "BLENDS", "MODES", "TileGrid", "check_aligned", "gather", "tile_apply", "window_weights",
           "write_chunks"]
