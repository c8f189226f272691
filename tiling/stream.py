"""Chunk-aligned streaming: several writers put tiles into one chunked output without sharing a chunk.

A chunked store (Zarr) writes whole chunks — or whole shards, for a sharded Zarr 3 array — by read, modify,
write, so two processes writing different pixels of one chunk at once can lose each other's pixels. With
``blend="core"`` a tile writes exactly the region it owns, [i t, min((i + 1) t, n)) per axis, so the writes
are disjoint per chunk iff every interior owned-region boundary (a multiple of the tile t) is a chunk
boundary: t is a multiple of the chunk c on every axis with more than one tile. The last tile of an axis
whose size is not a multiple of t owns a shorter region that ends at the array's end, so it needs nothing
more (its core starts earlier, at n − t, but only its owned region is written). Channels do not matter:
each tile writes all channels of its region.

>>> from tiling import TileGrid
>>> check_aligned(TileGrid.make((40, 20), 16, 32, mode="valid"), (1, 8, 4))  # (C, X, Y) chunks are fine
>>> check_aligned(TileGrid.make((40, 20), 12, 2), (8, 8))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: tile 12 on axis 0 is not a multiple of the chunk 8: ... use a tile of 8 or 16 on that axis
"""
from __future__ import annotations

from typing import Sequence

from .grid import TileGrid


def write_chunks(out) -> tuple[int, ...] | None:
    """The shape of the unit a writer must own in ``out``: its shards if sharded, else its chunks; None if
    ``out`` is not chunked (a numpy array or memmap)."""
    unit = getattr(out, "shards", None) or getattr(out, "chunks", None)
    if unit is None or not all(isinstance(c, int) for c in unit):  # dask's chunks are tuples of tuples
        return None
    return tuple(unit)


def check_aligned(grid: TileGrid, chunks: Sequence[int]) -> None:
    """Raise unless every chunk of an output with chunk shape ``chunks`` meets the owned region of one tile only.

    ``chunks`` is per spatial axis, or (C, *spatial) as an output array reports it (the channel chunk is
    ignored). The error names the axis, the tile and the chunk, and the nearest tiles that align.
    """
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) == grid.ndim + 1:
        chunks = chunks[1:]
    if len(chunks) != grid.ndim:
        raise ValueError(f"chunks {chunks} must have one value per spatial axis ({grid.ndim}) or a leading "
                         f"channel axis too")
    for ax, (t, c, count) in enumerate(zip(grid.tile, chunks, grid.counts)):
        if c < 1:
            raise ValueError(f"chunk must be >= 1 on axis {ax}, got {c}")
        if count > 1 and t % c:
            below, above = (t // c) * c, (t // c + 1) * c
            hint = f"{below} or {above}" if below else f"{above}"
            raise ValueError(f"tile {t} on axis {ax} is not a multiple of the chunk {c}: two tiles' owned regions "
                             f"would share a chunk and concurrent writers could overwrite each other; use a tile "
                             f"of {hint} on that axis")
