"""Independent oracles for the tests (deliberately not hpc_vdm code)."""
from __future__ import annotations

import numpy as np


def power_2d(delta: np.ndarray, box: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain full-plane FFT P(k) of a 2D overdensity with kF-wide floor bins (DC dropped)."""
    n = delta.shape[-1]
    fk = np.fft.fftn(delta, axes=(-2, -1))
    p = (np.abs(fk) ** 2) * (box / n**2) ** 2
    kx = np.fft.fftfreq(n, d=1.0 / n)
    kmag = np.sqrt(kx[:, None] ** 2 + kx[None, :] ** 2)
    idx = np.floor(kmag).astype(int).ravel()
    p = p.reshape(*p.shape[:-2], -1)
    counts = np.bincount(idx)
    sums = np.stack([np.bincount(idx, weights=row, minlength=counts.size) for row in p.reshape(-1, idx.size)])
    pk = (sums / counts)[:, 1:n // 2]
    k = np.arange(1, n // 2) * 2 * np.pi / box
    return k, pk.reshape(*p.shape[:-1], -1)


def cross_r_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """r(k) = P_ab / sqrt(P_aa P_bb) per floor bin (1..N/2-1) of two 2D fields."""
    n = a.shape[-1]
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    kx = np.fft.fftfreq(n, d=1.0 / n)
    idx = np.floor(np.sqrt(kx[:, None] ** 2 + kx[None, :] ** 2)).astype(int).ravel()
    pab = np.bincount(idx, (fa * fb.conj()).real.ravel())
    paa = np.bincount(idx, (np.abs(fa) ** 2).ravel())
    pbb = np.bincount(idx, (np.abs(fb) ** 2).ravel())
    return (pab / np.sqrt(paa * pbb))[1:n // 2]


def write_cmd(root, n_sims: int = 2, pixels: int = 16, suite: str = "IllustrisTNG", set_: str = "LH",
              seed: int = 0, mstar=None, mcdm=None, params=None, dtype=np.float32):
    """A small valid CMD set of positive random maps (or the given arrays) in the real file layout."""
    from hpc_vdm.data import camels

    rng = np.random.default_rng(seed)
    n = 15 * n_sims
    if mstar is None:
        mstar = (rng.lognormal(8, 2, (n, pixels, pixels)) * (rng.random((n, pixels, pixels)) < 0.3)).astype(dtype)
    if mcdm is None:
        mcdm = rng.lognormal(25, 0.5, (n, pixels, pixels)).astype(dtype)
    if params is None:
        params = rng.random((n_sims, 6)) + 0.5
    np.save(camels.maps_path(root, "Mstar", suite, set_), mstar)
    np.save(camels.maps_path(root, "Mcdm", suite, set_), mcdm)
    camels.save_params(camels.params_path(root, suite, set_), params)
    return mstar, mcdm, params
