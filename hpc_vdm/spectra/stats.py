"""Summary statistics for evaluation: pixel PDFs, transfer ratios, r(k) bands, reduced chi^2, bispectrum.

Every function takes plain arrays (samples first) and returns plain arrays, so the same code serves
posterior samples of one map, stacks of maps and 3D volumes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fft
from .pk import check_field


@dataclass
class Bands:
    """Median and a lower/upper percentile band over samples, per bin."""

    median: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    q: tuple[float, float]


def bands(values: np.ndarray, q: tuple[float, float] = (10.0, 90.0)) -> Bands:
    """Percentile bands over axis 0 of (n_samples, n_bins)."""
    v = np.asarray(values, dtype=np.float64)
    lo, med, hi = np.percentile(v, [q[0], 50.0, q[1]], axis=0)
    return Bands(median=med, lo=lo, hi=hi, q=q)


def pixel_pdf(samples: np.ndarray, edges: np.ndarray, *, log10: bool = True, q=(10.0, 90.0)):
    """Normalised histogram (density) of pixel values per sample and its percentile bands.

    samples: (n_samples, ...) fields; ``log10`` histograms log10 of the values (non-positive pixels dropped).
    Returns (centres, pdf (n_samples, n_bins), Bands).
    """
    s = np.asarray(samples, dtype=np.float64).reshape(np.shape(samples)[0], -1)
    if log10:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(s > 0, np.log10(np.where(s > 0, s, 1.0)), np.nan)
    pdf = np.stack([np.histogram(row[np.isfinite(row)], bins=edges, density=True)[0] for row in s])
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres, pdf, bands(pdf, q)


def transfer(power_samples: np.ndarray, power_true: np.ndarray, q=(10.0, 90.0)) -> Bands:
    """Bands of the transfer ratio P_sample(k) / P_true(k) over samples (n_samples, nk)."""
    return bands(np.asarray(power_samples) / np.asarray(power_true), q)


def reduced_chi2(power_a: np.ndarray, power_b: np.ndarray) -> float:
    """Reduced chi^2 between two sets of spectra (n_a, nk) and (n_b, nk) (Mudur et al. style):

        chi2_nu = 1/nk sum_k (mean_a - mean_b)^2 / (var_a / n_a + var_b / n_b)

    i.e. the squared difference of the mean spectra in units of its standard error; ~1 when both
    sets come from the same distribution.
    """
    a, b = np.atleast_2d(power_a).astype(np.float64), np.atleast_2d(power_b).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"spectra have different numbers of bins: {a.shape[1]} and {b.shape[1]}")
    if a.shape[0] + b.shape[0] < 3:
        raise ValueError("reduced chi^2 needs at least 3 spectra in all to estimate variances")
    var = (a.var(axis=0, ddof=1) / a.shape[0] if a.shape[0] > 1 else 0.0) + \
          (b.var(axis=0, ddof=1) / b.shape[0] if b.shape[0] > 1 else 0.0)
    return float(np.mean((a.mean(axis=0) - b.mean(axis=0)) ** 2 / var))


@dataclass
class Bispectrum:
    theta: np.ndarray  # (n_theta,) angle between k1 and k2 [rad]
    k3: np.ndarray     # (n_theta,) |k1 + k2| ... |k3| of the closed triangle [h/Mpc]
    bk: np.ndarray     # (n_theta,) B(k1, k2, k3) [(Mpc/h)^6]
    qk: np.ndarray     # (n_theta,) reduced Q = B / (P1 P2 + P2 P3 + P3 P1)
    pk: np.ndarray     # (n_theta, 3) shell powers P(k1), P(k2), P(k3)


def bispectrum(delta: np.ndarray, box_size: float, k1: float, k2: float, theta: np.ndarray,
               *, dk: float | None = None, threads: int | None = None) -> Bispectrum:
    """FFT shell estimator of B(k1, k2, theta) of a 3D overdensity (N, N, N).

    Each shell field d_i(x) = IFFT(delta_k 1[|k - k_i| < dk/2]); B = sum_x d1 d2 d3 / sum_x I1 I2 I3 * V^2 / N^9,
    with I_i the shell indicator fields (the triangle count). k3 = sqrt(k1^2 + k2^2 + 2 k1 k2 cos theta)
    for the angle theta between k1 and k2, as in Pylians' ``Bk``.
    """
    delta = np.asarray(delta)
    n, d = check_field(delta.shape, box_size)
    if d != 3:
        raise ValueError(f"bispectrum needs a 3D cube, got shape {delta.shape}")
    kf = 2 * np.pi / box_size
    dk = kf if dk is None else dk
    fk = fft.rfftn(delta.astype(np.float64), threads=threads)
    freq = np.fft.fftfreq(n, d=1.0 / n) * kf
    kmod = np.sqrt(freq[:, None, None] ** 2 + freq[None, :, None] ** 2 + freq[None, None, :n // 2 + 1] ** 2)

    def shell(k):
        mask = np.abs(kmod - k) < dk / 2
        if not mask.any():
            raise ValueError(f"no modes within {dk / 2:.4g} of k={k:.4g} for N={n}, L={box_size}")
        field = np.fft.irfftn(np.where(mask, fk, 0), s=delta.shape, axes=(0, 1, 2))
        indicator = np.fft.irfftn(mask.astype(np.float64), s=delta.shape, axes=(0, 1, 2))
        power = (np.abs(fk[mask]) ** 2).mean() * box_size**3 / n**6
        return field, indicator, power

    d1, i1, p1 = shell(k1)
    d2, i2, p2 = shell(k2)
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    k3 = np.sqrt(k1**2 + k2**2 + 2 * k1 * k2 * np.cos(theta))
    d12, i12 = d1 * d2, i1 * i2
    bk, pk = [], []
    for k in k3:
        d3, i3, p3 = shell(k)
        bk.append((d12 * d3).sum() / (i12 * i3).sum() * box_size**6 / n**9)
        pk.append((p1, p2, p3))
    bk, pk = np.array(bk), np.array(pk)
    qk = bk / (pk[:, 0] * pk[:, 1] + pk[:, 1] * pk[:, 2] + pk[:, 2] * pk[:, 0])
    return Bispectrum(theta=theta, k3=k3, bk=bk, qk=qk, pk=pk)
