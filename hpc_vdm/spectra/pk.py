"""Auto and cross power spectra of 2D maps and 3D cubes with the conventions of Pylians3 (Pk_library).

* Independent half-space modes only: the rfft half along the last axis, and on its self-conjugate planes
  (index 0 and, for even N, N/2) the "negative" half of the remaining axes is skipped, first axis first.
  Integer indices are n = i for i <= N//2, else i - N (the Nyquist index stays +N/2).
* Bins of width kF = 2 pi / L with index floor(|n|), running to the grid corner; bin 0 (the DC mode) is
  dropped; ``k`` is kF times the mean |n| of the modes in the bin; ``n_modes`` counts independent modes.
* P = <|delta_k|^2> (L / N^2)^d for an overdensity delta (see :func:`overdensity`); the cross spectrum is
  <Re(delta_a delta_b*)> times the same factor and r = P_ab / sqrt(P_aa P_bb).
* Mass-assignment deconvolution when asked: delta_k *= prod_j (x_j / sin x_j)^p, x_j = pi n_j / N,
  p = 1, 2, 3, 4 for NGP, CIC, TSC, PCS.

The cost is one real FFT and one pass of binning: the bin index, MAS weight and mode counts of the half-grid
are computed once per (N, d, MAS) (:func:`plan`) and the modes are binned straight from the FFT's output
buffer by one compiled pass (:mod:`hpc_vdm.spectra.binning`), squares and sums in float64. Stacks of maps
are spread over dask tasks, one per chunk of maps sized to the workers, each one batched FFT and one
binning pass; results are per map.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import binning, fft

MAS_ORDER = {"NGP": 1, "CIC": 2, "TSC": 3, "PCS": 4}


@dataclass
class PowerSpectrum:
    k: np.ndarray        # (nk,) h/Mpc when the box is in Mpc/h
    power: np.ndarray    # (nk,) or (n_maps, nk)
    n_modes: np.ndarray  # (nk,) independent modes per bin


@dataclass
class CrossSpectrum:
    k: np.ndarray
    power_a: np.ndarray
    power_b: np.ndarray
    cross: np.ndarray
    r: np.ndarray
    n_modes: np.ndarray


def overdensity(mass: np.ndarray, spatial_dims: int | None = None) -> np.ndarray:
    """delta = m / mean(m) - 1 over the last ``spatial_dims`` axes (default: all), per map for stacks."""
    m = np.asarray(mass)
    d = m.ndim if spatial_dims is None else spatial_dims
    axes = tuple(range(m.ndim - d, m.ndim))
    mean = m.mean(axis=axes, keepdims=True, dtype=np.float64)
    if (mean == 0).any():
        raise ValueError("overdensity of a field with zero mean mass is undefined")
    return (m / mean - 1.0).astype(m.dtype if m.dtype in (np.float32, np.float64) else np.float64)


def check_mas(mas: str | None) -> int:
    """The deconvolution order of a mass-assignment scheme (0 for None)."""
    if mas is None or mas == "None":
        return 0
    if mas not in MAS_ORDER:
        close = difflib.get_close_matches(str(mas).upper(), list(MAS_ORDER), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown MAS {mas!r}; expected one of {[None, *MAS_ORDER]}{hint}")
    return MAS_ORDER[mas]


def check_field(shape: tuple, box_size: float, *, spatial_dims: int | None = None, name: str = "field"):
    """Validate the shape of a square/cubic field (last ``spatial_dims`` axes) and a positive box; returns (N, d)."""
    if not np.isfinite(box_size) or box_size <= 0:
        raise ValueError(f"box_size must be a positive length, got {box_size}")
    shape = tuple(shape)
    d = len(shape) if spatial_dims is None else spatial_dims
    if d not in (2, 3) or len(shape) < d:
        raise ValueError(f"{name}: expected a 2D map or 3D cube, got shape {shape}")
    spatial = shape[-d:]
    if len(set(spatial)) != 1:
        raise ValueError(f"{name}: expected a {'square' if d == 2 else 'cubic'} field, got spatial shape {spatial}")
    if spatial[0] < 2:
        raise ValueError(f"{name}: needs at least 2 cells per side, got {spatial}")
    return spatial[0], d


def signed_index(i: np.ndarray, n: int) -> np.ndarray:
    """Integer mode index of FFT position i: i for i <= N//2, else i - N (Pylians: the Nyquist stays +N/2)."""
    return np.where(i <= n // 2, i, i - n)


def mas_correction(grids, n: int, mas_order: int) -> np.ndarray:
    """prod_j (x_j / sin x_j)^p, x_j = pi n_j / N, over broadcastable integer mode grids (1 at x = 0)."""
    corr = np.ones((1,) * len(grids))
    for g in grids:
        x = np.pi * g / n
        safe = np.where(x == 0, 1.0, x)
        corr = corr * np.where(x == 0, 1.0, safe / np.sin(safe)) ** mas_order
    return corr


def mode_block(n: int, d: int, mas_order: int = 0, ranges=None):
    """Bin index, weight (keep * MAS^2) and |n| of a block of the rfft half-grid of an N^d field.

    ``ranges`` gives per axis the (start, stop) of the block (default: the whole half-grid), so that
    out-of-core code can bin one block at a time with exactly the global rules.
    """
    half = n // 2
    full = [(0, n)] * (d - 1) + [(0, half + 1)]
    ranges = full if ranges is None else ranges
    comps = []
    for axis, (lo, hi) in enumerate(ranges):
        i = np.arange(lo, hi)
        comps.append(i if axis == d - 1 else signed_index(i, n))
    grids = np.meshgrid(*comps, indexing="ij", sparse=True)
    kmod = np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))
    self_conj = [(g == 0) | ((n % 2 == 0) & (g == half)) for g in grids]
    keep_prefix = np.ones((1,) * d, dtype=bool)  # keep(a_0..a_m) = a_0 >= 0 and (a_0 not sc or keep(a_1..))
    for j in reversed(range(d - 1)):
        keep_prefix = (grids[j] >= 0) & (~self_conj[j] | keep_prefix)
    keep = np.broadcast_to(~self_conj[d - 1] | keep_prefix, kmod.shape)
    weight = keep.astype(np.float64)
    if mas_order:
        weight = weight * mas_correction(grids, n, mas_order) ** 2
    return np.floor(kmod).astype(np.int64), weight, kmod, keep


def n_bins(n: int, d: int) -> int:
    """Bins 1..n_bins of an N^d field: floor of the corner |n|."""
    return int(np.floor(np.sqrt(d) * (n // 2)))


class Binning(NamedTuple):
    """The binning of the whole rfft half-grid of an N^d field, computed once per (N, d, MAS) and reused."""

    bins: np.ndarray       # (M,) int32 bin index per mode; modes Pylians skips go to bin 0 (dropped, as DC)
    weight: np.ndarray     # (M,) float64 squared MAS correction, or (0,) for no deconvolution
    n_modes: np.ndarray    # (nb,) independent modes in bins 1..nb
    k_over_kf: np.ndarray  # (nb,) mean |n| of the modes of each bin


@lru_cache(maxsize=8)
def plan(n: int, d: int, mas_order: int = 0) -> Binning:
    """The cached :class:`Binning` of an N^d field (its arrays are read-only: shared by every call)."""
    bins, weight, kmod, keep = mode_block(n, d, mas_order)
    nb = n_bins(n, d) + 1
    bins, keep = bins.ravel(), keep.ravel()
    n_modes = np.bincount(bins, weights=keep.astype(np.float64), minlength=nb)
    ksum = np.bincount(bins, weights=np.where(keep, kmod.ravel(), 0.0), minlength=nb)
    flat = np.where(keep, bins, 0).astype(np.int32)
    w = weight.ravel() if mas_order else np.empty(0)
    out = Binning(flat, np.ascontiguousarray(w), n_modes[1:], ksum[1:] / n_modes[1:])
    for a in out:
        a.flags.writeable = False
    return out


def _modes(field: np.ndarray, d: int, threads, copy: bool) -> np.ndarray:
    """rfft of the last d axes, one row per leading index: (m, half-grid size), complex."""
    fk = fft.rfftn(field, axes=tuple(range(field.ndim - d, field.ndim)), threads=threads, copy=copy)
    return fk.reshape(-1, int(np.prod(fk.shape[field.ndim - d:])))


def _finite_or_raise(sums: np.ndarray, fields, names) -> None:
    """A NaN or inf anywhere in a field reaches every bin's sum, so the sums are checked, not the fields."""
    if np.isfinite(sums).all():
        return
    for name, f in zip(names, fields):
        if not np.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or inf")
    raise ValueError(f"the power of {' x '.join(names)} overflows float64 (|values| up to "
                     f"{max(float(np.abs(f).max()) for f in fields):.3g})")


def _auto_sums(field: np.ndarray, b: Binning, d: int, threads) -> np.ndarray:
    """Sums of w |delta_k|^2 over bins 1..nb for each leading index: (m, nb)."""
    return binning.bin_power(_modes(field, d, threads, copy=False), b.bins, b.weight, b.n_modes.size + 1)[:, 1:]


def _cross_sums(a: np.ndarray, c: np.ndarray, b: Binning, d: int, threads) -> np.ndarray:
    """Sums of w |a_k|^2, w |c_k|^2, w Re(a_k c_k*) over bins 1..nb: (m, 3, nb)."""
    ma = _modes(a, d, threads, copy=True)  # the second transform reuses the plan's buffer
    mc = _modes(c, d, threads, copy=False)
    return binning.bin_cross(ma, mc, b.bins, b.weight, b.n_modes.size + 1)[:, :, 1:]


def power_spectrum(field, box_size: float, *, mas: str | None = None, threads: int | None = None) -> PowerSpectrum:
    """P(k) of one 2D map (N, N) or 3D cube (N, N, N) overdensity, Pylians conventions."""
    field = np.asarray(field)
    n, d = check_field(field.shape, box_size)
    b = plan(n, d, check_mas(mas))
    sums = _auto_sums(field, b, d, threads)[0]
    _finite_or_raise(sums, [field], ["field"])
    return PowerSpectrum(k=b.k_over_kf * 2 * np.pi / box_size, power=sums / b.n_modes * (box_size / n**2) ** d,
                         n_modes=b.n_modes)


def cross_spectrum(a, b, box_size: float, *, mas: str | tuple | None = None,
                   threads: int | None = None) -> CrossSpectrum:
    """Auto spectra of ``a`` and ``b``, their cross spectrum and r(k) (one MAS, or a pair)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cross spectrum needs fields of one shape, got {a.shape} and {b.shape}")
    n, d = check_field(a.shape, box_size, name="a")
    mas_a, mas_b = (mas, mas) if not isinstance(mas, (tuple, list)) else mas
    oa, ob = check_mas(mas_a), check_mas(mas_b)
    if oa != ob:  # deconvolve each field by its own scheme before the common binning
        for name, f in (("a", a), ("b", b)):
            if not np.isfinite(f).all():
                raise ValueError(f"{name} contains NaN or inf")
        a = _deconvolved(a, oa)
        b = _deconvolved(b, ob)
        oa = 0
    if a.dtype != b.dtype:  # one precision for both transforms: the wider one
        a, b = (a.astype(np.float64), b.astype(np.float64))
    binning_ = plan(n, d, oa)
    pa, pb, x = _cross_sums(a, b, binning_, d, threads)[0] / binning_.n_modes * (box_size / n**2) ** d
    _finite_or_raise(np.stack([pa, pb, x]), [a, b], ["a", "b"])
    return CrossSpectrum(k=binning_.k_over_kf * 2 * np.pi / box_size, power_a=pa, power_b=pb, cross=x,
                         r=x / np.sqrt(pa * pb), n_modes=binning_.n_modes)


def _deconvolved(field: np.ndarray, order: int) -> np.ndarray:
    if not order:
        return field
    n, d = field.shape[-1], field.ndim
    fk = np.fft.rfftn(field.astype(np.float64))
    comps = [signed_index(np.arange(n), n)] * (d - 1) + [np.arange(n // 2 + 1)]
    fk = fk * mas_correction(np.meshgrid(*comps, indexing="ij", sparse=True), n, order)
    return np.fft.irfftn(fk, s=field.shape, axes=tuple(range(d))).astype(field.dtype)


# ---------------------------------------------------------------------------------------------
# Stacks of maps: one dask task per chunk of maps, batched FFTs and one binning pass per batch
# ---------------------------------------------------------------------------------------------
CHUNK_BYTES = 64 << 20  # input maps per task: 64 MiB is 256 maps of 256^2 float32
BATCH_BYTES = 4 << 20   # modes per FFT inside a task, kept in cache (measured at 256^2 on one thread:
                        # 0.105 ms a map in batches of 8-32 maps, 0.135 ms in one batch of 125)


def _workers(scheduler) -> int:
    """Threads that will run the chunks: a distributed client's (given or current), else this machine's cores."""
    client = scheduler if hasattr(scheduler, "nthreads") else None
    if client is None and scheduler is None and "distributed" in sys.modules:
        try:
            from distributed import default_client

            client = default_client()
        except ValueError:  # no client running: the local threaded scheduler
            client = None
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return os.cpu_count() or 1


def _even_split(total: int, most: int) -> int:
    """The size of ceil(total / most) near-equal parts."""
    return max(1, -(-total // max(1, -(-total // max(1, most)))))


def chunk_size(n_maps: int, n: int, workers: int) -> int:
    """Maps per task: a multiple of ``workers`` tasks in all, each reading at most CHUNK_BYTES of float32 maps."""
    n_chunks = max(workers, -(-n_maps * n * n * 4 // CHUNK_BYTES))
    n_chunks = -(-n_chunks // workers) * workers
    return max(1, -(-n_maps // n_chunks))


def _blocks(maps, chunk_maps: int) -> list:
    """The stack cut into chunks of maps for dask tasks: numpy views, dask blocks, or (array, slice) read in the task.

    A numpy stack is never copied nor hashed (``da.from_array`` would do both: 60 ms and more per GiB).
    """
    import dask.array as da

    if isinstance(maps, da.Array):
        return list(maps.rechunk({0: chunk_maps, 1: -1, 2: -1}).to_delayed().ravel())
    starts = range(0, np.shape(maps)[0], chunk_maps)
    if isinstance(maps, np.ndarray):
        return [maps[s:s + chunk_maps] for s in starts]
    return [(maps, slice(s, s + chunk_maps)) for s in starts]  # Zarr & co.: read inside the task


def _chunk(block, of_mass: bool) -> np.ndarray:
    if isinstance(block, tuple):
        block = block[0][block[1]]
    x = np.ascontiguousarray(block)
    return overdensity(x, 2) if of_mass else x


def _batched(fn, *fields) -> np.ndarray:
    """``fn`` over cache-sized batches of maps of the chunk, results stacked: fn(*batches) -> (batch, ...)."""
    n = fields[0].shape[-1]
    step = _even_split(len(fields[0]), BATCH_BYTES // (n * (n // 2 + 1) * 8))
    return np.concatenate([fn(*(f[i:i + step] for f in fields)) for i in range(0, len(fields[0]), step)])


def _block_auto(block, box_size, mas_order, of_mass):  # (maps, N, N) -> (maps, nb)
    x = _chunk(block, of_mass)
    n = x.shape[-1]
    b = plan(n, 2, mas_order)
    return _batched(lambda f: _auto_sums(f, b, 2, 1), x) / b.n_modes * (box_size / n**2) ** 2


def _block_cross(a, c, box_size, mas_order, of_mass):  # (maps, N, N) x 2 -> (maps, 3, nb)
    a, c = _chunk(a, of_mass), _chunk(c, of_mass)
    if a.dtype != c.dtype:
        a, c = a.astype(np.float64), c.astype(np.float64)
    n = a.shape[-1]
    b = plan(n, 2, mas_order)
    return _batched(lambda f, g: _cross_sums(f, g, b, 2, 1), a, c) / b.n_modes * (box_size / n**2) ** 2


def _stack_setup(maps, box_size, mas, chunk_maps, scheduler):
    if np.ndim(maps) != 3:
        raise ValueError(f"expected a stack of maps (n_maps, N, N), got shape {np.shape(maps)}")
    n, _ = check_field(np.shape(maps), box_size, spatial_dims=2, name="maps")
    order = check_mas(mas)
    if chunk_maps is None:
        chunk_maps = chunk_size(np.shape(maps)[0], n, _workers(scheduler))
    elif chunk_maps < 1:
        raise ValueError(f"chunk_maps must be a positive number of maps, got {chunk_maps!r}")
    return n, order, plan(n, 2, order), chunk_maps


def power_spectrum_stack(maps, box_size: float, *, mas: str | None = None, chunk_maps: int | None = None,
                         overdensity_of_mass: bool = False, scheduler=None) -> PowerSpectrum:
    """P(k) of every map of a stack (n_maps, N, N): numpy, Zarr or dask; one dask task per chunk of maps.

    Each task transforms its chunk in cache-sized batched FFTs (one thread) and bins each batch in one pass;
    dask runs the tasks side by side. ``chunk_maps`` None sizes the chunks to the workers (:func:`chunk_size`).
    ``overdensity_of_mass`` turns each mass map into m / mean - 1 first. ``scheduler`` is passed to
    ``dask.compute`` (None: the current default, e.g. a connected distributed Client).
    """
    import dask

    n, order, b, chunk_maps = _stack_setup(maps, box_size, mas, chunk_maps, scheduler)
    tasks = [dask.delayed(_block_auto)(blk, box_size, order, overdensity_of_mass) for blk in _blocks(maps, chunk_maps)]
    p = np.concatenate(dask.compute(*tasks, scheduler=scheduler))
    if not np.isfinite(p).all():
        raise ValueError("maps contain NaN or inf")
    return PowerSpectrum(k=b.k_over_kf * 2 * np.pi / box_size, power=p, n_modes=b.n_modes)


def cross_spectrum_stack(a, b, box_size: float, *, mas: str | None = None, chunk_maps: int | None = None,
                         overdensity_of_mass: bool = False, scheduler=None) -> CrossSpectrum:
    """Per-map auto, cross and r(k) of two aligned stacks (n_maps, N, N), chunked as :func:`power_spectrum_stack`."""
    import dask

    if np.shape(a) != np.shape(b):
        raise ValueError(f"cross spectrum needs stacks of one shape, got {np.shape(a)} and {np.shape(b)}")
    n, order, bn, chunk_maps = _stack_setup(a, box_size, mas, chunk_maps, scheduler)
    tasks = [dask.delayed(_block_cross)(ba, bb, box_size, order, overdensity_of_mass)
             for ba, bb in zip(_blocks(a, chunk_maps), _blocks(b, chunk_maps))]
    r = np.concatenate(dask.compute(*tasks, scheduler=scheduler))
    if not np.isfinite(r).all():
        raise ValueError("maps contain NaN or inf")
    pa, pb, x = r[:, 0], r[:, 1], r[:, 2]
    return CrossSpectrum(k=bn.k_over_kf * 2 * np.pi / box_size, power_a=pa, power_b=pb, cross=x,
                         r=x / np.sqrt(pa * pb), n_modes=bn.n_modes)
