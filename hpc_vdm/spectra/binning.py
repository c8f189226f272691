"""One pass of binning over the rfft half-grid: sums of w |F|^2 (and of w Re(F_a F_b*)) per k bin.

The modes of a field (or of each field of a batch) come as a contiguous (m, M) complex buffer, M the
half-grid size; ``bins`` (M,) int32 is the bin index of each mode, with the modes that Pylians skips
(dependent half-space modes) sent to bin 0, which is dropped with the DC mode. ``weight`` (M,) float64
is the squared mass-assignment correction, or empty for none. Squares and sums are float64 whatever the
precision of the modes, as in Pylians. Compiled with numba (``nogil``, so dask threads bin side by side;
``cache=True`` keeps the JIT cost to the first call on a machine); a numpy ``bincount`` path is the
fallback and the reference the tests hold the kernels equal to.
"""
from __future__ import annotations

import os

import numpy as np

try:
    import numba
except ImportError:  # the numpy path still works, only slower
    numba = None

BACKENDS = ("numba", "numpy")
_BACKEND = os.environ.get("HPC_VDM_SPECTRA_KERNELS", "numba" if numba is not None else "numpy")
if _BACKEND not in BACKENDS or (_BACKEND == "numba" and numba is None):
    raise ValueError(f"HPC_VDM_SPECTRA_KERNELS must be one of {BACKENDS} (numba installed), got {_BACKEND!r}")


def backend() -> str:
    """The binning in use: 'numba' (one compiled pass) or 'numpy' (bincount)."""
    return _BACKEND


def _jit(fn):
    return numba.njit(cache=True, nogil=True, boundscheck=False)(fn) if numba is not None else fn


@_jit
def _auto_kernel(modes, bins, weight, out):  # modes (m, M) complex, bins (M,), weight (M,) or (0,), out (m, nb)
    weighted = weight.size > 0
    for i in range(modes.shape[0]):
        row = modes[i]
        acc = out[i]
        for j in range(row.size):
            re = np.float64(row[j].real)
            im = np.float64(row[j].imag)
            p = re * re + im * im
            if weighted:
                p *= weight[j]
            acc[bins[j]] += p


@_jit
def _cross_kernel(a, b, bins, weight, out):  # a, b (m, M) complex; out (m, 3, nb): |a|^2, |b|^2, Re(a b*)
    weighted = weight.size > 0
    for i in range(a.shape[0]):
        ra, rb = a[i], b[i]
        acc = out[i]
        for j in range(ra.size):
            ar, ai = np.float64(ra[j].real), np.float64(ra[j].imag)
            br, bi = np.float64(rb[j].real), np.float64(rb[j].imag)
            w = weight[j] if weighted else 1.0
            k = bins[j]
            acc[0, k] += w * (ar * ar + ai * ai)
            acc[1, k] += w * (br * br + bi * bi)
            acc[2, k] += w * (ar * br + ai * bi)


def _numpy_auto(modes, bins, weight, nb):
    out = np.empty((modes.shape[0], nb))
    for i, row in enumerate(modes):  # one bincount per field of the batch
        p = row.real.astype(np.float64) ** 2 + row.imag.astype(np.float64) ** 2
        out[i] = np.bincount(bins, weights=p * weight if weight.size else p, minlength=nb)
    return out


def _numpy_cross(a, b, bins, weight, nb):
    out = np.empty((a.shape[0], 3, nb))
    for i, (ra, rb) in enumerate(zip(a, b)):
        ar, ai, br, bi = (v.astype(np.float64) for v in (ra.real, ra.imag, rb.real, rb.imag))
        for c, p in enumerate((ar * ar + ai * ai, br * br + bi * bi, ar * br + ai * bi)):
            out[i, c] = np.bincount(bins, weights=p * weight if weight.size else p, minlength=nb)
    return out


def _check(modes, bins, weight):
    if modes.ndim != 2 or modes.shape[1] != bins.size or weight.size not in (0, bins.size):
        raise ValueError(f"binning expects modes (m, {bins.size}) and weight ({bins.size},) or (0,), "
                         f"got {modes.shape} and {weight.shape}")
    return np.ascontiguousarray(modes)


def bin_power(modes: np.ndarray, bins: np.ndarray, weight: np.ndarray, nb: int) -> np.ndarray:
    """Sums of weight |F|^2 per bin for each row of ``modes`` (m, M): (m, nb) float64."""
    modes = _check(modes, bins, weight)
    if _BACKEND == "numpy":
        return _numpy_auto(modes, bins, weight, nb)
    out = np.zeros((modes.shape[0], nb))
    _auto_kernel(modes, bins, weight, out)
    return out


def bin_cross(a: np.ndarray, b: np.ndarray, bins: np.ndarray, weight: np.ndarray, nb: int) -> np.ndarray:
    """Sums of weight |a|^2, weight |b|^2 and weight Re(a b*) per bin, row by row: (m, 3, nb) float64."""
    a, b = _check(a, bins, weight), _check(b, bins, weight)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"cross binning needs modes of one shape and dtype, got {a.shape} {a.dtype} "
                         f"and {b.shape} {b.dtype}")
    if _BACKEND == "numpy":
        return _numpy_cross(a, b, bins, weight, nb)
    out = np.zeros((a.shape[0], 3, nb))
    _cross_kernel(a, b, bins, weight, out)
    return out
