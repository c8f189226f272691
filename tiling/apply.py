"""One-pass tiled application of a function to a periodic field: gather windows, run, blend back.

``tile_apply(fn, field, tile, halo, blend, batch_size)``: ``field`` is (C, X, Y[, Z]) — a numpy array, a
torch tensor, or anything indexable per axis like a Zarr or dask array (read window by window, so the
input need not fit in memory) — and ``fn`` maps a batch (B, C, *window) to (B, C_out, *window), or with
``mode="valid"`` to (B, C_out, *tile) (the core only, as valid convolutions of receptive radius halo and
the dense dm2gal network return). Windows run in batches of ``batch_size`` on ``device`` (torch), while
the result stays on the field's device. With ``blend="core"`` every pixel comes from the one tile that
owns it; for an operator whose reach fits in the halo the result equals the operator applied to the
whole torus. ``tiles=`` runs a subset (one rank's share, or the tiles a resumed run still lacks) and
``out=`` streams each owned region into a writable array (see :mod:`tiling.stream` for chunk alignment).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .blend import check_blend, window_weights
from .grid import TileGrid
from .stream import check_aligned, write_chunks


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


def _check_tiles(grid: TileGrid, tiles) -> list[tuple[int, ...]]:
    """``tiles`` as a list of in-range multi-indices, each once (None: every tile, in C order)."""
    if tiles is None:
        return list(grid.tiles())
    picked = [tuple(int(i) for i in t) for t in tiles]
    for t in picked:
        if len(t) != grid.ndim or not all(0 <= i < c for i, c in zip(t, grid.counts)):
            raise ValueError(f"tile {t} is not in the grid: expected {grid.ndim} indices below {grid.counts}")
    if len(set(picked)) != len(picked):
        raise ValueError(f"tiles lists a tile more than once: {sorted(t for t in set(picked) if picked.count(t) > 1)}")
    return picked


def _run(fn, windows: list, device):
    """fn on a stacked batch (B, C, *window), on ``device`` if given; the result on the windows' side."""
    if _is_torch(windows[0]):
        import torch

        x = torch.stack(windows)                                       # (B, C, *window)
        return fn(x if device is None else x.to(device)).to(windows[0].device)
    x = np.stack(windows)                                              # (B, C, *window)
    if device is not None:  # numpy field, torch function on a device
        import torch

        return fn(torch.as_tensor(x, device=device)).cpu().numpy()
    return np.asarray(fn(x))


def tile_apply(fn: Callable, field, tile: int | Sequence[int], halo: int | Sequence[int] = 0, blend: str = "core",
               batch_size: int = 8, device=None, out=None, *, mode: str = "same", tiles=None,
               done: Callable | None = None, align: int = 1):
    """Apply ``fn`` tile by tile to a periodic (C, *spatial) field; returns (C_out, *spatial) like the field.

    ``mode``: ``"same"`` (fn returns the whole window) or ``"valid"`` (fn returns the core, (B, C_out, *tile);
    any halo, even >= tile; ``blend="core"`` only). ``out``: a writable (C_out, *spatial) array (a Zarr
    array, a numpy memmap) that receives the result instead of memory, for fields larger than memory;
    ``blend="core"`` only, since smooth blends normalise by a weight accumulated over the whole field.
    Returns ``out``. ``tiles``: the multi-indices to run (default all, e.g. ``grid.tiles_of(rank, world)``;
    ``blend="core"`` only); pixels owned by other tiles are left as they are (zeros in a new result).
    Given a chunked ``out`` too, the grid must be chunk-aligned (:func:`check_aligned`), so that ranks
    writing their own tiles into one store never share a chunk. ``done(tile)`` is called once a tile's
    owned region has been written, so a caller can record progress and resume with the remaining tiles.
    ``align``: every window starts on a multiple of it (a strided network's total stride; see
    :class:`~tiling.grid.TileGrid`).

    >>> import numpy as np
    >>> x = np.arange(10.0)[None]                                    # (C, X) on a ring of 10
    >>> diff = lambda w: w[..., 3:-3] - w[..., :-6]                  # valid: (B, C, 10) -> (B, C, 4), reach 3
    >>> y = tile_apply(diff, x, 4, 3, mode="valid")
    >>> bool(np.array_equal(y, x - np.roll(x, 3, axis=1)))
    True
    """
    check_blend(blend)
    if out is not None and blend != "core":
        raise ValueError(f"out= streams tile cores and needs blend='core', got blend={blend!r}")
    if mode == "valid" and blend != "core":
        raise ValueError(f"mode='valid' returns only each tile's core, so only blend='core' applies; "
                         f"got blend={blend!r}")
    if tiles is not None and blend != "core":
        raise ValueError(f"tiles= runs a subset of tiles and needs blend='core' (smooth blends normalise by the "
                         f"weight of every window); got blend={blend!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(field.shape) < 2:
        raise ValueError(f"field must be (C, *spatial), got shape {tuple(field.shape)}")
    grid = TileGrid.make(field.shape[1:], tile, halo, mode, align)
    todo = _check_tiles(grid, tiles)
    if tiles is not None and out is not None and write_chunks(out) is not None:
        check_aligned(grid, write_chunks(out))
    acc = None
    for b0 in range(0, len(todo), batch_size):
        batch = todo[b0:b0 + batch_size]
        y = _run(fn, [gather(field, grid.window_index(t)) for t in batch], device)
        if tuple(y.shape[2:]) != grid.output or y.shape[0] != len(batch):
            raise ValueError(f"fn must map (B, C, *{grid.window}) to (B, C_out, *{grid.output}) in mode={mode!r}; "
                             f"expected ({len(batch)}, C_out, *{grid.output}), got {tuple(y.shape)}")
        if acc is None:
            acc = Accumulator(field if _is_torch(field) or isinstance(field, np.ndarray) else y, grid, y.shape[1],
                              blend, out)
        for t, values in zip(batch, y):
            acc.add(t, values)
            if done is not None:
                done(t)
    if acc is None:  # no tiles to run: nothing tells the output's channels unless out= gives them
        if out is None:
            raise ValueError("tiles= selected no tiles and no out= was given, so there is no result to return")
        return out
    return acc.result()
