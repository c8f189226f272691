"""Tile grids on a periodic field of any size: per-axis tile and halo, core ownership, wrap-around windows.

Along an axis of n pixels with tile t and halo h there are ceil(n / t) tiles. Tile i *owns* the pixels
[i t, min((i + 1) t, n)) — together the tiles partition the field — and its core is the t pixels from
start_i = min(i t, n − t), so every tile has the same size even when n is not a multiple of t (the last
core overlaps its neighbour). Its window is the core plus h pixels each side, taken modulo n: windows near
the edges wrap around the torus. Every window has the same shape, tile + 2 halo per axis.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


def per_axis(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    values = (int(value),) * ndim if np.isscalar(value) else tuple(int(v) for v in value)
    if len(values) != ndim:
        raise ValueError(f"{name} needs one value per spatial axis ({ndim}), got {value!r}")
    return values


@dataclass(frozen=True)
class TileGrid:
    shape: tuple[int, ...]  # spatial shape of the field
    tile: tuple[int, ...]   # core size per axis
    halo: tuple[int, ...]   # context each side per axis

    @classmethod
    def make(cls, shape: Sequence[int], tile: int | Sequence[int], halo: int | Sequence[int] = 0) -> "TileGrid":
        """Validate and build; errors name the axis and the values."""
        shape = tuple(int(n) for n in shape)
        if len(shape) not in (1, 2, 3):
            raise ValueError(f"fields must have 1 to 3 spatial axes, got shape {shape}")
        tile, halo = per_axis(tile, len(shape), "tile"), per_axis(halo, len(shape), "halo")
        for ax, (n, t, h) in enumerate(zip(shape, tile, halo)):
            if t < 1:
                raise ValueError(f"tile must be >= 1 on axis {ax}, got {t}")
            if h < 0:
                raise ValueError(f"halo must be >= 0 on axis {ax}, got {h}")
            if t > n:
                raise ValueError(f"tile {t} is larger than the field ({n} pixels) on axis {ax}")
            if h >= t:
                raise ValueError(f"halo {h} must be smaller than the tile {t} on axis {ax}")
        return cls(shape, tile, halo)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / t) for n, t in zip(self.shape, self.tile))

    @property
    def window(self) -> tuple[int, ...]:
        return tuple(t + 2 * h for t, h in zip(self.tile, self.halo))

    def __len__(self) -> int:
        return math.prod(self.counts)

    def tiles(self) -> Iterator[tuple[int, ...]]:
        """Tile multi-indices in C order."""
        return itertools.product(*(range(c) for c in self.counts))

    def start(self, ax: int, i: int) -> int:
        return min(i * self.tile[ax], self.shape[ax] - self.tile[ax])

    def owned(self, ax: int, i: int) -> tuple[int, int]:
        return i * self.tile[ax], min((i + 1) * self.tile[ax], self.shape[ax])

    def window_index(self, tile: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Per-axis global indices (wrapped modulo the field) of a tile's window."""
        return tuple((self.start(ax, i) - self.halo[ax] + np.arange(self.window[ax])) % self.shape[ax]
                     for ax, i in enumerate(tile))

    def owned_slices(self, tile: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """(slices of the owned region in the field, the same region's slices in the window)."""
        glob, local = [], []
        for ax, i in enumerate(tile):
            a, b = self.owned(ax, i)
            off = self.halo[ax] + a - self.start(ax, i)
            glob.append(slice(a, b))
            local.append(slice(off, off + b - a))
        return tuple(glob), tuple(local)
