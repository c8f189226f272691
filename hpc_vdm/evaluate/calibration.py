"""Calibration of posterior samples from the rank of the truth among them (simulation-based calibration).

For S samples of a calibrated posterior, the number of samples below the truth is uniform on {0, ..., S},
whatever S: so the coverage of a central interval of c ranks is exactly c / (S + 1), and the calibration
curve (observed against expected coverage for c = 1 .. S + 1) is exact, not asymptotic. Ties (samples
equal to the truth, e.g. a zero-width posterior) take a rank uniformly among the tied positions, drawn
from a fixed seed, and are counted so that a report can flag them.

The pixelwise z-score z = (t − mean_S) / std_S (population std) of a calibrated Gaussian posterior is
sqrt((S + 1)/(S − 1)) times a Student t with S − 1 degrees of freedom: mean 0, standard deviation
sqrt((S + 1)/(S − 3)) for S > 3 (1.29 for S = 10, 1.02 for S = 100).
"""
from __future__ import annotations

import numpy as np

from .significance import cluster_se

LEVELS = (0.68, 0.95)


def ranks(truth: np.ndarray, draws: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rank in 0..S of ``truth`` (...) among ``draws`` (S, ...), tie count per element).

    rank = #(draws < truth) + a uniform draw in 0..#(draws == truth), keyed by ``seed``.
    """
    truth, draws = np.asarray(truth), np.asarray(draws)
    if draws.shape[1:] != truth.shape:
        raise ValueError(f"draws {draws.shape} must be (S, *{truth.shape})")
    below = (draws < truth).sum(0)
    ties = (draws == truth).sum(0)
    jitter = np.random.default_rng(seed).integers(0, ties + 1) if ties.any() else 0
    return below + jitter, ties


def central_ranks(n_samples: int, level: float) -> tuple[int, int]:
    """The central set of ranks [lo, hi] of a level-``level`` interval: c = round(level (S + 1)) ranks."""
    c = int(np.clip(round(level * (n_samples + 1)), 1, n_samples + 1))
    lo = (n_samples + 1 - c) // 2
    return lo, lo + c - 1


def coverage(rank: np.ndarray, n_samples: int, level: float, groups: np.ndarray | None = None) -> dict:
    """Observed fraction of truths inside the central interval of ``level`` and its exact expectation; with
    ``groups`` (one per map, rank's first axis: each map's simulation) also the observed fraction's standard error,
    the ranks of one simulation counted as correlated (:func:`hpc_vdm.evaluate.significance.cluster_se`)."""
    lo, hi = central_ranks(n_samples, level)
    r = np.asarray(rank)
    inside = (r >= lo) & (r <= hi)
    out = {"level": level, "observed": float(np.mean(inside)), "expected": (hi - lo + 1) / (n_samples + 1),
           "n": int(r.size)}
    if groups is not None:
        per = np.broadcast_to(np.reshape(groups, (-1,) + (1,) * (r.ndim - 1)), r.shape)
        out["observed_se"] = cluster_se(inside.ravel().astype(np.float64), per.ravel())
    return out


def calibration_curve(rank: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(expected, observed) coverage of every central interval, c = 1 .. S + 1 ranks."""
    r = np.asarray(rank).ravel()
    hist = np.bincount(r, minlength=n_samples + 1)[: n_samples + 1] / max(r.size, 1)   # (S + 1,)
    expected, observed = [], []
    for c in range(1, n_samples + 2):
        lo = (n_samples + 1 - c) // 2
        expected.append(c / (n_samples + 1))
        observed.append(hist[lo:lo + c].sum())
    return np.array(expected), np.array(observed)


def zscore_expected_std(n_samples: int) -> float:
    """Standard deviation of the pixel z-score of a calibrated Gaussian posterior from S samples."""
    return float(np.sqrt((n_samples + 1) / (n_samples - 3))) if n_samples > 3 else float("nan")


def calibration(truth: np.ndarray, draws: np.ndarray, seed: int = 0, groups: np.ndarray | None = None) -> dict:
    """Coverage at 68% and 95% (with standard errors over ``groups``, each map's simulation, when given), the
    calibration curve's largest gap and the ties of one quantity."""
    s = np.asarray(draws).shape[0]
    rank, ties = ranks(truth, draws, seed)
    expected, observed = calibration_curve(rank, s)
    return {"coverage": [coverage(rank, s, lv, groups) for lv in LEVELS],
            "curve_max_gap": float(np.max(np.abs(observed - expected))),
            "zero_width": int(np.sum(ties == s)), "tied": int(np.sum(ties > 0)), "n": int(np.size(rank)),
            "n_samples": int(s)}


def zscores(truth: np.ndarray, draws: np.ndarray) -> dict:
    """z-score moments of ``truth`` (...) over ``draws`` (S, ...) beside their calibrated expectation."""
    draws = np.asarray(draws, dtype=np.float64)
    spread = draws.std(0)
    ok = spread > 0
    z = (np.asarray(truth, dtype=np.float64)[ok] - draws.mean(0)[ok]) / spread[ok]
    s = draws.shape[0]
    return {"mean": float(z.mean()) if z.size else float("nan"), "std": float(z.std()) if z.size else float("nan"),
            "expected_mean": 0.0, "expected_std": zscore_expected_std(s), "zero_spread": int((~ok).sum()),
            "n": int(ok.size)}
