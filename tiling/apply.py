"""One-pass tiled application of a function to a periodic field: gather windows, run, blend back.

``tile_apply(fn, field, tile, halo, blend, batch_size)``: ``field`` is (C, X, Y[, Z]) — a numpy array, a
torch tensor, or anything indexable per axis like a Zarr or dask array (read window by window, so the
input need not fit in memory) — and ``fn`` maps a batch (B, C, *window) to (B, C_out, *window). Windows
run in batches of ``batch_size`` on ``device`` (torch), while the result stays on the field's device.
With ``blend="core"`` every pixel comes from the one tile that owns it; for an operator whose reach fits
in the halo the result equals the operator applied to the whole torus.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .blend import check_blend, window_weights
from .grid import TileGrid


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def gather(field, index: Sequence[np.ndarray]):
    """(C, *window) values of ``field`` at the per-axis wrapped indices (numpy, torch, zarr, dask)."""
    if isinstance(field, np.ndarray):
        return field[(slice(None),) + np.ix_(*index)]
    if _is_torch(field):
        import torch

        out = field
        for ax, ix in enumerate(index):
            out = out.index_select(ax + 1, torch.as_tensor(ix, device=field.device))
        return out
    if hasattr(field, "oindex"):  # zarr: orthogonal indexing reads only the chunks it needs
        return np.asarray(field.oindex[(slice(None),) + tuple(index)])
    out = field
    for ax, ix in enumerate(index):  # dask and other array-likes: one fancy index per axis
        out = out[(slice(None),) * (ax + 1) + (ix,)]
    return np.asarray(out)


class Accumulator:
    """The output field and, for smooth blends, the accumulated weight (numpy or torch)."""

    def __init__(self, like, grid: TileGrid, channels: int, blend: str, out=None):
        self.grid, self.blend = grid, blend
        shape = (channels, *grid.shape)
        if out is not None:  # a writable array (zarr, memmap): each tile's core is written once, in tile order
            if tuple(out.shape) != shape:
                raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
            self.out, self.weight, self.streamed = out, None, True
            return
        self.streamed = False
        if _is_torch(like):
            import torch

            self.out = torch.zeros(shape, dtype=like.dtype, device=like.device)
            self.weight = None if blend == "core" else torch.zeros(grid.shape, dtype=like.dtype, device=like.device)
            self.w_window = None if blend == "core" else torch.as_tensor(
                window_weights(grid.window, blend), dtype=like.dtype, device=like.device)
        else:
            dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64
            self.out = np.zeros(shape, dtype=dtype)
            self.weight = None if blend == "core" else np.zeros(grid.shape, dtype=dtype)
            self.w_window = None if blend == "core" else window_weights(grid.window, blend).astype(dtype)

    def add(self, tile: Sequence[int], values) -> None:
        """Put one window's result (C_out, *window) back into the field."""
        if self.blend == "core":
            glob, local = self.grid.owned_slices(tile)
            core = values[(slice(None),) + local]
            if self.streamed and _is_torch(core):
                core = core.detach().cpu().numpy()
            self.out[(slice(None),) + glob] = core
            return
        flat = np.ravel_multi_index(np.ix_(*self.grid.window_index(tile)), self.grid.shape).ravel()
        c = self.out.shape[0]
        if _is_torch(self.out):
            import torch

            idx = torch.as_tensor(flat, device=self.out.device)
            self.out.view(c, -1).index_add_(1, idx, (values * self.w_window).reshape(c, -1))
            self.weight.view(-1).index_add_(0, idx, self.w_window.reshape(-1))
        else:  # np.add.at: windows wider than the field revisit pixels
            np.add.at(self.out.reshape(c, -1), (slice(None), flat), (values * self.w_window).reshape(c, -1))
            np.add.at(self.weight.reshape(-1), flat, self.w_window.reshape(-1))

    def result(self):
        if self.blend != "core":
            self.out /= self.weight[None]
        return self.out


def tile_apply(fn: Callable, field, tile: int | Sequence[int], halo: int | Sequence[int] = 0, blend: str = "core",
               batch_size: int = 8, device=None, out=None):
    """Apply ``fn`` tile by tile to a periodic (C, *spatial) field; returns (C_out, *spatial) like the field.

    ``out``: a writable (C_out, *spatial) array (a Zarr array, a numpy memmap) that receives the result
    instead of memory, for fields larger than memory (with a Zarr or dask ``field``); ``blend="core"`` only,
    since smooth blends normalise by a weight accumulated over the whole field. Returns ``out``.
    """
    check_blend(blend)
    if out is not None and blend != "core":
        raise ValueError(f"out= streams tile cores and needs blend='core', got blend={blend!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(field.shape) < 2:
        raise ValueError(f"field must be (C, *spatial), got shape {tuple(field.shape)}")
    grid = TileGrid.make(field.shape[1:], tile, halo)
    tiles = list(grid.tiles())
    acc = None
    for b0 in range(0, len(tiles), batch_size):
        batch = tiles[b0:b0 + batch_size]
        windows = [gather(field, grid.window_index(t)) for t in batch]
        if _is_torch(windows[0]):
            import torch

            x = torch.stack(windows)                                   # (B, C, *window)
            y = fn(x if device is None else x.to(device))
            y = y.to(windows[0].device)
        else:
            x = np.stack(windows)
            if device is not None:  # numpy field, torch function on a device
                import torch

                y = fn(torch.as_tensor(x, device=device)).cpu().numpy()
            else:
                y = np.asarray(fn(x))
        if tuple(y.shape[2:]) != grid.window or y.shape[0] != len(batch):
            raise ValueError(f"fn must map (B, C, *{grid.window}) to (B, C_out, *{grid.window}); "
                             f"got {tuple(y.shape)} for a batch of {len(batch)}")
        if acc is None:
            acc = Accumulator(field if _is_torch(field) or isinstance(field, np.ndarray) else y, grid, y.shape[1],
                              blend, out)
        for t, values in zip(batch, y):
            acc.add(t, values)
    return acc.result()
