"""Posterior metrics, each in the space the papers use, shared by validation, ``sample`` and ``spectra``.

* Spectra are of the overdensity δ = m/m̄ − 1 (Pylians conventions, :mod:`hpc_vdm.spectra`), scored over
  the bins with k ≤ k_Nyq = π N / L only: the 2D bins beyond run into the grid corners, where few modes
  and the pixel window dominate. ``pk_ratio_err`` = mean |P_sample/P_true − 1|, ``r_mean`` = mean r(k).
* z-scores are of the log field, where the model works and the posterior is close to Gaussian:
  z = (log10 truth − mean_s log10 draw_s) / std_s log10 draw_s.
"""
from __future__ import annotations

import numpy as np

from ..spectra import cross_spectrum, overdensity


def k_nyquist(box_mpc_h: float, pixels: int) -> float:
    """The Nyquist wavenumber π N / L [h/Mpc]."""
    return np.pi * pixels / box_mpc_h


def spectra_scores(k: np.ndarray, ratio: np.ndarray, r: np.ndarray, k_max: float) -> dict:
    """Mean |ratio − 1| and mean r over the bins with k <= k_max; ratio and r are (..., nk), averaged over all."""
    band = np.asarray(k) <= k_max * (1 + 1e-12)
    if not band.any():
        raise ValueError(f"no k bin at or below k_max={k_max:g} h/Mpc (first bin at {np.min(k):g})")
    return {"pk_ratio_err": float(np.mean(np.abs(np.asarray(ratio)[..., band] - 1.0))),
            "r_mean": float(np.mean(np.asarray(r)[..., band]))}


def draw_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Spectral scores of draws (S, N, N) or one draw (N, N) against a truth (N, N), physical masses."""
    draws = np.asarray(draws, dtype=np.float64).reshape(-1, *np.shape(truth))
    delta_t = overdensity(np.asarray(truth, dtype=np.float64))
    spectra = [cross_spectrum(delta_t, overdensity(d), box_mpc_h) for d in draws]
    k = spectra[0].k
    ratio = np.stack([s.power_b / s.power_a for s in spectra])           # (S, nk)
    r = np.stack([s.r for s in spectra])
    return spectra_scores(k, ratio, r, k_nyquist(box_mpc_h, np.shape(truth)[-1]))


def zscore_log(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """(N, N) z-score of the truth in log10 space over draws (S, N, N); a zero spread gives ±inf (or nan)."""
    log_d = np.log10(np.maximum(np.asarray(draws, dtype=np.float64), np.finfo(np.float64).tiny))
    log_t = np.log10(np.maximum(np.asarray(truth, dtype=np.float64), np.finfo(np.float64).tiny))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (log_t - log_d.mean(0)) / log_d.std(0)


BANDS = ("k<kN/4", "kN/4-kN/2", "kN/2-kN")


def band_edges(box_mpc_h: float, pixels: int) -> dict[str, tuple[float, float]]:
    """The three k bands of the report [h/Mpc], up to the Nyquist frequency (no corner bins)."""
    kn = k_nyquist(box_mpc_h, pixels)
    return dict(zip(BANDS, ((0.0, kn / 4), (kn / 4, kn / 2), (kn / 2, kn))))


def log_fluctuation(mass: np.ndarray) -> np.ndarray:
    """log10 of a mass map minus its mean: the 'log space' spectra are of this field."""
    lg = np.log10(np.maximum(np.asarray(mass, dtype=np.float64), np.finfo(np.float64).tiny))
    return lg - lg.mean(axis=(-2, -1), keepdims=True)


def band_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Per space (overdensity, log) and k band: mean P_sample/P_true, mean |ratio − 1| and mean r(k) of
    draws (S, N, N) against a truth (N, N), physical masses."""
    draws = np.asarray(draws, dtype=np.float64).reshape(-1, *np.shape(truth))
    out = {}
    for space, f in (("overdensity", overdensity), ("log", log_fluctuation)):
        ft = f(np.asarray(truth, dtype=np.float64))
        spectra = [cross_spectrum(ft, f(d), box_mpc_h) for d in draws]
        k = spectra[0].k
        ratio = np.stack([s.power_b / s.power_a for s in spectra])                   # (S, nk)
        r = np.stack([s.r for s in spectra])
        out[space] = {}
        for band, (lo, hi) in band_edges(box_mpc_h, np.shape(truth)[-1]).items():
            sel = (k > lo) & (k <= hi * (1 + 1e-12))
            out[space][band] = {"pk_ratio": float(ratio[:, sel].mean()),
                                "pk_ratio_err": float(np.abs(ratio[:, sel] - 1).mean()),
                                "r": float(r[:, sel].mean()), "n_bins": int(sel.sum())}
    return out


def map_summary(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Accuracy and calibration of one map's posterior: truth (N, N), draws (S, N, N), physical units."""
    mean = np.asarray(draws, dtype=np.float64).mean(0)
    of_mean, of_draws = draw_scores(truth, mean, box_mpc_h), draw_scores(truth, draws, box_mpc_h)
    z = zscore_log(truth, draws)
    finite = z[np.isfinite(z)]
    return {"pk_ratio_err_mean_map": of_mean["pk_ratio_err"], "pk_ratio_err_samples": of_draws["pk_ratio_err"],
            "r_mean_samples": of_draws["r_mean"], "r_mean_posterior_mean": of_mean["r_mean"],
            "zscore_mean": float(finite.mean()) if finite.size else float("nan"),
            "zscore_std": float(finite.std()) if finite.size else float("nan"),
            "coverage_1sigma": float(np.mean(np.abs(z) < 1)), "zero_spread_pixels": int(z.size - finite.size)}
