"""Out-of-core P(k) and cross P(k) of cubic volumes larger than memory (Zarr, numpy or dask input).

Two passes over an intermediate Zarr store on disk, each a set of independent dask tasks:

1. slabs along axis 0: read ``slab`` planes, rfft over axes (1, 2), write them (whole chunks, so
   concurrent writers never share one);
2. pencils along axis 1: read all of axis 0 for ``pencil`` columns (the transpose is a read pattern of
   the intermediate store, not an all-to-all in memory), fft along axis 0, bin the modes of the block
   with the global Pylians rules (:func:`~hpc_vdm.spectra.pk.mode_block`) and return partial sums.

Peak memory is a few slabs/pencils, independent of the volume: N^2 * slab * 16 B per task.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import fft
from .pk import CrossSpectrum, PowerSpectrum, check_field, check_mas, mode_block, n_bins


def _open(volume):
    if isinstance(volume, (str, Path)):
        import zarr

        return zarr.open_array(str(volume), mode="r")
    return volume


def _forward_slab(src, dst, s0: int, s1: int) -> None:
    block = np.asarray(src[s0:s1])
    if not np.isfinite(block).all():
        raise ValueError(f"volume contains NaN or inf in planes {s0}:{s1}")
    dst[s0:s1] = fft.rfftn(block, axes=(1, 2), threads=1)


def _bin_pencil(fields, n: int, j0: int, j1: int, mas_order: int, nb: int):
    """Partial sums of |F_a|^2, |F_b|^2, Re(F_a F_b*), counts and |n| for columns j0:j1."""
    modes = [fft.fftn(np.asarray(f[:, j0:j1, :]), axes=(0,), threads=1) for f in fields]
    bins, weight, kmod, keep = mode_block(n, 3, mas_order, [(0, n), (j0, j1), (0, n // 2 + 1)])
    bins, weight, keep = bins.ravel(), weight.ravel(), keep.ravel().astype(np.float64)
    sums = [np.bincount(bins, weights=keep, minlength=nb), np.bincount(bins, weights=(kmod.ravel() * keep),
                                                                     minlength=nb)]
    flat = [m.reshape(-1) for m in modes]
    for m in flat:
        sums.append(np.bincount(bins, weights=weight * (m.real.astype(np.float64) ** 2 + m.imag.astype(np.float64) ** 2),
                                minlength=nb))
    if len(flat) == 2:
        a, b = flat
        sums.append(np.bincount(bins, weights=weight * (a.real.astype(np.float64) * b.real
                                                        + a.imag.astype(np.float64) * b.imag), minlength=nb))
    return np.stack(sums)


def volume_spectrum(a, box_size: float, b=None, *, mas: str | None = None, slab: int | None = None,
                    workdir: str | Path | None = None, scheduler=None):
    """P(k) of a cubic volume (or, with ``b``, both autos, the cross and r) out of core.

    ``a``/``b``: Zarr arrays or paths, numpy or dask arrays of shape (N, N, N), overdensities.
    ``slab``: planes per task (default: ~32 MiB of float32 per slab). ``workdir``: where the intermediate
    Fourier store goes (default: a temporary folder, removed at the end).
    """
    import dask
    import zarr

    va = _open(a)
    if np.ndim(va) != 3:
        raise ValueError(f"volume_spectrum needs a cube, got shape {np.shape(va)}")
    n, _ = check_field(np.shape(va), box_size, name="volume")
    vb = None if b is None else _open(b)
    if vb is not None and np.shape(vb) != np.shape(va):
        raise ValueError(f"cross spectrum needs volumes of one shape, got {np.shape(va)} and {np.shape(vb)}")
    order = check_mas(mas)
    slab = slab or max(1, min(n, (32 << 20) // (4 * n * n)))
    dtype = np.complex64 if np.dtype(va.dtype) == np.float32 else np.complex128
    nb = n_bins(n, 3) + 1
    tmp = Path(tempfile.mkdtemp(prefix="hpc_vdm-volpk-", dir=workdir))
    try:
        fourier = []
        for i, vol in enumerate(v for v in (va, vb) if v is not None):
            f = zarr.create_array(str(tmp / f"F{i}.zarr"), shape=(n, n, n // 2 + 1), dtype=dtype,
                                  chunks=(slab, slab, n // 2 + 1), compressors=None, fill_value=0)
            tasks = [dask.delayed(_forward_slab)(vol, f, s0, min(n, s0 + slab)) for s0 in range(0, n, slab)]
            dask.compute(*tasks, scheduler=scheduler)
            fourier.append(f)
        parts = [dask.delayed(_bin_pencil)(fourier, n, j0, min(n, j0 + slab), order, nb) for j0 in range(0, n, slab)]
        total = np.sum(dask.compute(*parts, scheduler=scheduler), axis=0)[:, 1:]  # drop bin 0 (DC)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_modes, ksum = total[0], total[1]
    norm = (box_size / n**2) ** 3
    k = ksum / n_modes * 2 * np.pi / box_size
    pa = total[2] / n_modes * norm
    if vb is None:
        return PowerSpectrum(k=k, power=pa, n_modes=n_modes)
    pb, x = total[3] / n_modes * norm, total[4] / n_modes * norm
    return CrossSpectrum(k=k, power_a=pa, power_b=pb, cross=x, r=x / np.sqrt(pa * pb), n_modes=n_modes)
