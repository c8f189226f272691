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

Stacks of maps are spread over dask tasks (one per chunk of maps); results are per map.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import fft

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


@lru_cache(maxsize=8)
def plan(n: int, d: int, mas_order: int = 0):
    """Binning of the whole rfft half-grid: flat bin index, weight, n_modes (nb,), k_mean / kF (nb,) for bins 1..nb."""
    bins, weight, kmod, keep = mode_block(n, d, mas_order)
    nb = n_bins(n, d) + 1
    n_modes = np.bincount(bins.ravel(), weights=keep.ravel().astype(np.float64), minlength=nb)
    ksum = np.bincount(bins.ravel(), weights=(kmod * keep).ravel(), minlength=nb)
    return bins.ravel(), weight.ravel(), n_modes[1:], ksum[1:] / n_modes[1:]


def _binned(values: np.ndarray, bins: np.ndarray, nb: int) -> np.ndarray:
    return np.bincount(bins, weights=values, minlength=nb + 1)[1:]


def _modes(field: np.ndarray, d: int, threads) -> np.ndarray:
    """rfft of the last d axes, flattened per leading index: (..., half-grid size)."""
    fk = fft.rfftn(field, axes=tuple(range(field.ndim - d, field.ndim)), threads=threads)
    return fk.reshape(*fk.shape[:field.ndim - d], -1)


def _spectra(fields, box_size: float, d: int, mas_order: int, threads, cross: bool):
    """Power of each field (and their cross) for arrays with leading batch axes; returns sums per bin."""
    n = fields[0].shape[-1]
    bins, weight, n_modes, kmean = plan(n, d, mas_order)
    norm = (box_size / n**2) ** d
    modes = [_modes(f, d, threads) for f in fields]
    lead = modes[0].shape[:-1]
    flat = [m.reshape(-1, m.shape[-1]) for m in modes]
    out = {"auto": [], "cross": None}
    for fm in flat:
        p = np.stack([_binned(weight * (row.real.astype(np.float64) ** 2 + row.imag.astype(np.float64) ** 2),
                              bins, n_modes.size) for row in fm])
        out["auto"].append((p / n_modes * norm).reshape(*lead, -1))
    if cross:
        a, b = flat
        x = np.stack([_binned(weight * (ra.real.astype(np.float64) * rb.real + ra.imag.astype(np.float64) * rb.imag),
                              bins, n_modes.size) for ra, rb in zip(a, b)])
        out["cross"] = (x / n_modes * norm).reshape(*lead, -1)
    k = kmean * 2 * np.pi / box_size
    return k, n_modes, out


def power_spectrum(field, box_size: float, *, mas: str | None = None, threads: int | None = None) -> PowerSpectrum:
    """P(k) of one 2D map (N, N) or 3D cube (N, N, N) overdensity, Pylians conventions."""
    field = np.asarray(field)
    n, d = check_field(field.shape, box_size)
    if not np.isfinite(field).all():
        raise ValueError("field contains NaN or inf")
    k, n_modes, out = _spectra([field], box_size, d, check_mas(mas), threads, cross=False)
    return PowerSpectrum(k=k, power=out["auto"][0], n_modes=n_modes)


def cross_spectrum(a, b, box_size: float, *, mas: str | tuple | None = None,
                   threads: int | None = None) -> CrossSpectrum:
    """Auto spectra of ``a`` and ``b``, their cross spectrum and r(k) (one MAS, or a pair)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cross spectrum needs fields of one shape, got {a.shape} and {b.shape}")
    n, d = check_field(a.shape, box_size, name="a")
    for name, f in (("a", a), ("b", b)):
        if not np.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or inf")
    mas_a, mas_b = (mas, mas) if not isinstance(mas, (tuple, list)) else mas
    oa, ob = check_mas(mas_a), check_mas(mas_b)
    if oa != ob:  # deconvolve each field by its own scheme before the common binning
        a = _deconvolved(a, oa)
        b = _deconvolved(b, ob)
        oa = 0
    k, n_modes, out = _spectra([a, b], box_size, d, oa, threads, cross=True)
    pa, pb = out["auto"]
    x = out["cross"]
    return CrossSpectrum(k=k, power_a=pa, power_b=pb, cross=x, r=x / np.sqrt(pa * pb), n_modes=n_modes)


def _deconvolved(field: np.ndarray, order: int) -> np.ndarray:
    if not order:
        return field
    n, d = field.shape[-1], field.ndim
    fk = np.fft.rfftn(field.astype(np.float64))
    comps = [signed_index(np.arange(n), n)] * (d - 1) + [np.arange(n // 2 + 1)]
    fk = fk * mas_correction(np.meshgrid(*comps, indexing="ij", sparse=True), n, order)
    return np.fft.irfftn(fk, s=field.shape, axes=tuple(range(d))).astype(field.dtype)


# ---------------------------------------------------------------------------------------------
# Stacks of maps, one dask task per chunk of maps
# ---------------------------------------------------------------------------------------------
def _as_dask(maps, chunk_maps: int):
    import dask.array as da

    if isinstance(maps, da.Array):
        return maps.rechunk({0: chunk_maps, 1: -1, 2: -1})
    return da.from_array(maps, chunks=(chunk_maps, *np.shape(maps)[1:]))


def _block_auto(block, box_size, mas_order):
    _, _, out = _spectra([np.asarray(block)], box_size, 2, mas_order, 1, cross=False)
    return out["auto"][0]


def _block_cross(a, b, box_size, mas_order):
    _, _, out = _spectra([np.asarray(a), np.asarray(b)], box_size, 2, mas_order, 1, cross=True)
    pa, pb = out["auto"]
    return np.stack([pa, pb, out["cross"]], axis=1)  # (maps, 3, nk)


def power_spectrum_stack(maps, box_size: float, *, mas: str | None = None, chunk_maps: int = 64,
                         overdensity_of_mass: bool = False, scheduler=None) -> PowerSpectrum:
    """P(k) of every map of a stack (n_maps, N, N): numpy, Zarr or dask; one dask task per chunk of maps.

    ``overdensity_of_mass`` turns each mass map into m / mean - 1 first. ``scheduler`` is passed to
    ``dask.compute`` (None: the current default, e.g. a connected distributed Client).
    """
    import dask

    if np.ndim(maps) != 3:
        raise ValueError(f"expected a stack of maps (n_maps, N, N), got shape {np.shape(maps)}")
    n, _ = check_field(np.shape(maps), box_size, spatial_dims=2, name="maps")
    order = check_mas(mas)
    x = _as_dask(maps, chunk_maps)
    nb = plan(n, 2, order)[2].size
    if overdensity_of_mass:
        x = x.map_blocks(overdensity, 2, dtype=x.dtype)
    power = x.map_blocks(_block_auto, box_size, order, dtype=np.float64, drop_axis=2, chunks=(x.chunks[0], (nb,)))
    (p,) = dask.compute(power, scheduler=scheduler)
    if not np.isfinite(p).all():
        raise ValueError("maps contain NaN or inf")
    _, _, n_modes, kmean = plan(n, 2, order)
    return PowerSpectrum(k=kmean * 2 * np.pi / box_size, power=p, n_modes=n_modes)


def cross_spectrum_stack(a, b, box_size: float, *, mas: str | None = None, chunk_maps: int = 64,
                         overdensity_of_mass: bool = False, scheduler=None) -> CrossSpectrum:
    """Per-map auto, cross and r(k) of two aligned stacks (n_maps, N, N)."""
    import dask

    if np.shape(a) != np.shape(b):
        raise ValueError(f"cross spectrum needs stacks of one shape, got {np.shape(a)} and {np.shape(b)}")
    if np.ndim(a) != 3:
        raise ValueError(f"expected stacks of maps (n_maps, N, N), got shape {np.shape(a)}")
    n, _ = check_field(np.shape(a), box_size, spatial_dims=2, name="maps")
    order = check_mas(mas)
    xa, xb = _as_dask(a, chunk_maps), _as_dask(b, chunk_maps)
    if overdensity_of_mass:
        xa, xb = (x.map_blocks(overdensity, 2, dtype=x.dtype) for x in (xa, xb))
    _, _, n_modes, kmean = plan(n, 2, order)
    res = xa.map_blocks(_block_cross, xb, box_size, order, dtype=np.float64, drop_axis=2, new_axis=1,
                        chunks=(xa.chunks[0], (3,), (n_modes.size,)))
    (r,) = dask.compute(res, scheduler=scheduler)
    if not np.isfinite(r).all():
        raise ValueError("maps contain NaN or inf")
    pa, pb, x = r[:, 0], r[:, 1], r[:, 2]
    return CrossSpectrum(k=kmean * 2 * np.pi / box_size, power_a=pa, power_b=pb, cross=x, r=x / np.sqrt(pa * pb),
                         n_modes=n_modes)
