"""Tile grids on a periodic field of any size: per-axis tile and halo, core ownership, wrap-around windows.

Along an axis of n pixels with tile t and halo h there are ceil(n / t) tiles. Tile i *owns* the pixels
[i t, min((i + 1) t, n)) — together the tiles partition the field — and its core is the t pixels from
start_i = min(i t, n − t), so every tile has the same size even when n is not a multiple of t (the last
core overlaps its neighbour). Its window is the core plus h pixels each side, taken modulo n: windows near
the edges wrap around the torus. Every window has the same shape, tile + 2 halo per axis.

With ``align`` a (the total stride of a downsampling network) every window starts on a multiple of a:
the last core starts at min(i t, n − t) rounded *up* to a multiple of a (its window then wraps past the
end of the torus), so a stride-a network sees every window on the same sub-lattice even when n is not a
multiple of a (TNG300's 2099-pixel slabs); tile and halo must then be multiples of a.

The grid's ``mode`` says what a function applied to a window returns: ``"same"`` the whole window (a
same-padded network; owned pixels are read at offset halo + i t − start_i), ``"valid"`` only the core, as
valid convolutions with receptive radius halo do (owned pixels at offset i t − start_i). ``tiles_of`` splits
the tiles among ranks, contiguously in C order.

>>> g = TileGrid.make((40, 20), 16, 32, mode="valid")  # halo >= tile and window (80) > field: fine if valid
>>> g.counts, g.window, g.output, g.owned(0, 2), g.start(0, 2)
((3, 2), (80, 80), (16, 16), (32, 40), 24)
>>> [g.tiles_of(r, 4) for r in range(4)]
[[(0, 0)], [(0, 1), (1, 0)], [(1, 1)], [(2, 0), (2, 1)]]
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


MODES = ("same", "valid")


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
    mode: str = "same"      # what fn returns per window: "same" (the window) or "valid" (the core)
    align: int = 1          # window starts are multiples of this (a network's total stride)

    @classmethod
    def make(cls, shape: Sequence[int], tile: int | Sequence[int], halo: int | Sequence[int] = 0,
             mode: str = "same", align: int = 1) -> "TileGrid":
        """Validate and build; errors name the axis and the values.

        ``halo >= tile`` is refused in ``"same"`` mode only: there the halo is a choice, and a halo as wide as
        the tile costs (1 + 2 halo / tile)^d ≥ 3^d window pixels per owned pixel for no gain over a larger
        tile (``hpc_vdm.tile`` relies on this check). In ``"valid"`` mode the halo is the network's receptive
        radius, fixed by the model (32 voxels for dm2gal), and the tile may be smaller (CPU blocks of 16³).
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {list(MODES)}")
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
            if h >= t and mode == "same":
                raise ValueError(f"halo {h} must be smaller than the tile {t} on axis {ax} "
                                 f"(mode='same'; mode='valid' allows any halo)")
            if align < 1 or t % align or h % align:
                raise ValueError(f"tile {t} and halo {h} must be multiples of align={align} on axis {ax} (windows "
                                 f"start on multiples of the network's stride)")
        return cls(shape, tile, halo, mode, int(align))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / t) for n, t in zip(self.shape, self.tile))

    @property
    def window(self) -> tuple[int, ...]:
        return tuple(t + 2 * h for t, h in zip(self.tile, self.halo))

    @property
    def output(self) -> tuple[int, ...]:
        """Spatial shape of what fn returns per window: the window ("same") or the core ("valid")."""
        return self.window if self.mode == "same" else self.tile

    def __len__(self) -> int:
        return math.prod(self.counts)

    def tiles(self) -> Iterator[tuple[int, ...]]:
        """Tile multi-indices in C order."""
        return itertools.product(*(range(c) for c in self.counts))

    def tiles_of(self, rank: int, world: int) -> list[tuple[int, ...]]:
        """The tiles rank ``rank`` of ``world`` owns: a contiguous run in C order, sizes within one of each other.

        Over ranks 0 .. world − 1 every tile appears exactly once; ranks beyond the tile count get none.
        """
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"need 0 <= rank < world and world >= 1, got rank {rank}, world {world}")
        n = len(self)
        return list(itertools.islice(self.tiles(), rank * n // world, (rank + 1) * n // world))

    def start(self, ax: int, i: int) -> int:
        s = min(i * self.tile[ax], self.shape[ax] - self.tile[ax])
        return -(-s // self.align) * self.align  # rounded up to the alignment (a no-op for align 1)

    def owned(self, ax: int, i: int) -> tuple[int, int]:
        return i * self.tile[ax], min((i + 1) * self.tile[ax], self.shape[ax])

    def window_index(self, tile: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Per-axis global indices (wrapped modulo the field) of a tile's window."""
        return tuple((self.start(ax, i) - self.halo[ax] + np.arange(self.window[ax])) % self.shape[ax]
                     for ax, i in enumerate(tile))

    def owned_slices(self, tile: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """(slices of the owned region in the field, the same region's slices in fn's output: window or core)."""
        glob, local = [], []
        for ax, i in enumerate(tile):
            a, b = self.owned(ax, i)
            off = (self.halo[ax] if self.mode == "same" else 0) + a - self.start(ax, i)
            glob.append(slice(a, b))
            local.append(slice(off, off + b - a))
        return tuple(glob), tuple(local)
