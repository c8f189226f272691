"""Per-map posterior summaries in the space the papers use (the spectral scores are :mod:`hpc_vdm.spectra.scores`).

z-scores are of the log field, where the model works and the posterior is close to Gaussian:
z = (log10 truth − mean_s log10 draw_s) / std_s log10 draw_s; they need at least two draws.
"""
from __future__ import annotations

import numpy as np

from ..spectra.scores import draw_scores


def log10_floor(mass: np.ndarray) -> np.ndarray:
    """log10 of a mass field, zeros floored at the smallest positive float (no -inf)."""
    return np.log10(np.maximum(np.asarray(mass, dtype=np.float64), np.finfo(np.float64).tiny))


def zscore_log(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """(N, N) z-score of the truth in log10 space over draws (S, N, N); NaN where the draws do not spread."""
    log_d, log_t = log10_floor(draws), log10_floor(truth)
    spread = log_d.std(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, (log_t - log_d.mean(0)) / spread, np.nan)


def map_summary(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Accuracy and calibration of one map's draws: truth (N, N), draws (S, N, N), physical units."""
    mean = np.asarray(draws, dtype=np.float64).mean(0)
    of_mean, of_draws = draw_scores(truth, mean, box_mpc_h), draw_scores(truth, draws, box_mpc_h)
    out = {"pk_ratio_err_mean_map": of_mean["pk_ratio_err"], "pk_ratio_err_samples": of_draws["pk_ratio_err"],
           "r_mean_samples": of_draws["r_mean"], "r_mean_posterior_mean": of_mean["r_mean"]}
    if np.shape(draws)[0] < 2:  # one draw has no spread: no z-score, no coverage
        return out
    z = zscore_log(truth, draws)
    finite = z[np.isfinite(z)]
    return out | {"zscore_mean": float(finite.mean()) if finite.size else float("nan"),
                  "zscore_std": float(finite.std()) if finite.size else float("nan"),
                  "coverage_1sigma": float(np.mean(np.abs(finite) < 1)) if finite.size else float("nan"),
                  "zero_spread_pixels": int(z.size - finite.size)}
