"""Periodic meshes: wavevectors, Gaussian smoothing and cloud-in-cell deposit/read-out in any dimension.

All operations are vectorised over particles (chunks of 2**20 to bound memory); nothing loops over
cells or particles in Python. Coordinates passed here are in *cell units*: a particle at ``u`` deposits
onto nodes ``floor(u)`` and ``floor(u) + 1`` along every axis with linear weights, periodic.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.fft as sfft

from . import kernels

CHUNK = 1 << 16  # points per block: temporaries stay in cache
WORKERS = max(1, int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count() or 1)


def set_threads(n: int) -> None:
    """Threads of the FFTs and of the threaded kernels in this process."""
    global WORKERS
    WORKERS = max(1, int(n))
    kernels.set_numba_threads(n)


def rfftn(x: np.ndarray, axes=None) -> np.ndarray:
    return sfft.rfftn(x, axes=axes, workers=WORKERS)


def irfftn(x: np.ndarray, shape, axes=None) -> np.ndarray:
    return sfft.irfftn(x, s=shape, axes=axes, workers=WORKERS)


def wavevectors(shape: tuple[int, ...], box: tuple[float, ...]) -> list[np.ndarray]:
    """Broadcastable k_i [h/Mpc] of the rfftn half-space of a grid ``shape`` over a box ``box`` [Mpc/h]."""
    ks = []
    for i, (n, length) in enumerate(zip(shape, box)):
        cell = length / n
        k = (np.fft.rfftfreq(n, d=cell) if i == len(shape) - 1 else np.fft.fftfreq(n, d=cell)) * 2 * np.pi
        view = [1] * len(shape)
        view[i] = k.size
        ks.append(k.reshape(view))
    return ks


def k_squared(ks: list[np.ndarray]) -> np.ndarray:
    k2 = sum(k**2 for k in ks)
    return k2


def smooth_gaussian(field_k: np.ndarray, ks: list[np.ndarray], radius: float) -> np.ndarray:
    """Multiply a Fourier field by exp(-k^2 R^2 / 2)."""
    return field_k * np.exp(-0.5 * k_squared(ks) * radius**2)


def _stencil(cells: np.ndarray, shape: tuple[int, ...]):
    """Yield (flat index, weight) of the 2^d CIC corners for points (m, d) in cell units."""
    base = np.floor(cells)
    frac = cells - base
    base = base.astype(np.int64)
    terms = [(0, 1.0)]
    for a, n in enumerate(shape):
        stride = int(np.prod(shape[a + 1:]))
        i0 = base[:, a] % n
        i1 = (i0 + 1) % n
        options = ((i0 * stride, 1.0 - frac[:, a]), (i1 * stride, frac[:, a]))
        terms = [(idx + oi, w * ow) for idx, w in terms for oi, ow in options]
    return terms


def stencils(cells: np.ndarray, shape: tuple[int, ...]) -> list:
    """Precomputed CIC stencils of points, per chunk: reuse for a deposit and a read-out at the same points."""
    return [_stencil(cells[s:s + CHUNK], shape) for s in range(0, cells.shape[0], CHUNK)]


def _chunks(cells, shape, terms):
    for i, s in enumerate(range(0, cells.shape[0], CHUNK)):
        yield s, (terms[i] if terms is not None else _stencil(cells[s:s + CHUNK], shape))


def cic_deposit(cells: np.ndarray, shape: tuple[int, ...], weights=None, group=None, n_groups: int = 1,
                terms: list | None = None) -> np.ndarray:
    """Cloud-in-cell deposit of points onto periodic grids.

    cells: (n, d) float coordinates in cell units; weights: (n,) or scalar; group: (n,) int in
    [0, n_groups) selecting one of ``n_groups`` independent grids. Returns (n_groups, *shape) float64.
    The compiled kernel runs 2D and 3D grids (``terms`` is then unused); this numpy code is its reference.
    """
    if kernels.compiled() and len(shape) in (2, 3):
        return kernels.cic_deposit(cells, tuple(shape), weights, group, n_groups)
    size = int(np.prod(shape))
    out = np.zeros(n_groups * size, dtype=np.float64)
    per_point = weights is not None and not np.isscalar(weights)
    for s, stencil in _chunks(cells, shape, terms):
        offset = 0 if group is None else np.asarray(group[s:s + CHUNK], dtype=np.int64) * size
        w_pt = np.asarray(weights[s:s + CHUNK], dtype=np.float64) if per_point else 1.0
        for idx, w in stencil:  # np.add.at with matching dtypes: no output-sized temporaries
            np.add.at(out, idx + offset if group is not None else idx, w * w_pt)
    if weights is not None and np.isscalar(weights):
        out *= weights
    return out.reshape((n_groups, *shape))


def cic_readout(grid: np.ndarray, cells: np.ndarray, terms: list | None = None) -> np.ndarray:
    """Cloud-in-cell interpolation of a periodic grid (..., *shape) at points (n, d) in cell units.

    Leading axes of ``grid`` are components: returns (n,) for a scalar grid, (n, c) for (c, *shape).
    """
    d = cells.shape[1]
    if kernels.compiled() and d == 3 and grid.ndim in (3, 4):
        return kernels.cic_readout(grid, cells)
    shape = grid.shape[-d:]
    comps = np.ascontiguousarray(grid).reshape(-1, int(np.prod(shape)))  # (c, cells)
    out = np.zeros((comps.shape[0], cells.shape[0]), dtype=np.float64)
    for s, stencil in _chunks(cells, shape, terms):
        for idx, w in stencil:
            for c in range(comps.shape[0]):
                out[c, s:s + CHUNK] += comps[c].take(idx) * w
    return out[0] if grid.ndim == d else out.T


def shift_interpolate(grid: np.ndarray, shift_cells) -> np.ndarray:
    """CIC (multi-linear) interpolation of a periodic grid at every node + ``shift_cells`` (one shift for all).

    Equal to :func:`cic_readout` at the shifted lattice, but as 2^d weighted rolls of the whole grid.
    ``grid`` is (..., *shape) with the last ``len(shift_cells)`` axes spatial.
    """
    d = len(shift_cells)
    axes = tuple(range(grid.ndim - d, grid.ndim))
    base = np.floor(np.asarray(shift_cells, dtype=np.float64))
    frac = np.asarray(shift_cells, dtype=np.float64) - base
    out = np.zeros(grid.shape, dtype=np.float64)
    for corner in np.ndindex(*(2,) * d):
        w = np.prod([f if c else 1.0 - f for f, c in zip(frac, corner)])
        if w == 0.0:
            continue
        out += w * np.roll(grid, [-(int(b) + c) for b, c in zip(base, corner)], axis=axes)
    return out
