"""Calibration of parameter posteriors over many maps: interval coverage, HPD levels, TARP.

* coverage: the fraction of maps whose truth lies in the marginal central 68% / 95% intervals (per parameter)
  and in the 2D highest-posterior-density regions of 68% / 95% mass, beside the binomial standard error of
  a calibrated posterior over that many maps;
* the HPD curve: for every credibility α, the fraction of maps whose truth's HPD level is below α (the
  diagonal for a calibrated posterior; below it: over-confident);
* TARP (Lemos et al. 2023, "Sampling-based accuracy testing of posterior estimators"): for map i, a random
  reference point r_i (uniform over the prior box), f_i = posterior mass closer to r_i than the truth is
  (distances in prior-normalised units); the expected coverage ECP(α) = mean_i [f_i < α] is α for a
  calibrated posterior, whatever the references. Posteriors come as samples (MCMC) or weighted grid points.
"""
from __future__ import annotations

import numpy as np

from .posterior import LEVELS


def coverage(summaries: list[dict]) -> dict:
    """Coverage of the summaries (of :meth:`GridPosterior.summary`) that carry a truth."""
    rows = [s for s in summaries if "truth" in s]
    n = len(rows)
    if n == 0:
        return {"n": 0}
    levels = np.asarray([s["hpd_level"] for s in rows])
    out = {"n": n, "mean_abs_z": np.mean(np.abs([s["zscore"] for s in rows]), axis=0).tolist(),
           "truth_in_box": float(np.mean([s["truth_in_box"] for s in rows]))}
    for level in LEVELS:
        tag = int(level * 100)
        out[f"marginal_{tag}"] = np.mean([s[f"covers_{tag}"] for s in rows], axis=0).tolist()
        out[f"hpd_{tag}"] = float(np.mean(levels < level))
        out[f"stderr_{tag}"] = float(np.sqrt(level * (1 - level) / n))
    alpha = np.linspace(0, 1, 21)
    out["hpd_curve"] = {"alpha": alpha.tolist(), "observed": [float(np.mean(levels < a)) for a in alpha]}
    return out


def tarp(samples: np.ndarray, truths: np.ndarray, lo, hi, *, weights: np.ndarray | None = None, seed: int = 0,
         n_alpha: int = 51) -> dict:
    """TARP expected coverage: samples (N, S, d) with optional weights (N, S), truths (N, d), prior box lo/hi (d,)."""
    samples, truths = np.asarray(samples, dtype=np.float64), np.asarray(truths, dtype=np.float64)
    if samples.ndim != 3 or truths.shape != (samples.shape[0], samples.shape[2]):
        raise ValueError(f"expected samples (N, S, d) and truths (N, d), got {samples.shape} and {truths.shape}")
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    unit, truth_u = (samples - lo) / (hi - lo), (truths - lo) / (hi - lo)                  # prior-normalised
    refs = np.random.default_rng(np.random.SeedSequence([seed, 2023])).random(truths.shape)   # (N, d)
    w = np.ones(samples.shape[:2]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum(1, keepdims=True)
    d_samples = np.linalg.norm(unit - refs[:, None], axis=-1)                               # (N, S)
    d_truth = np.linalg.norm(truth_u - refs, axis=-1)                                       # (N,)
    f = (w * (d_samples < d_truth[:, None])).sum(1)                                         # (N,)
    alpha = np.linspace(0, 1, n_alpha)
    ecp = np.array([np.mean(f < a) for a in alpha])
    band = 2 * np.sqrt(alpha * (1 - alpha) / len(f))
    return {"alpha": alpha.tolist(), "ecp": ecp.tolist(), "max_gap": float(np.max(np.abs(ecp - alpha))),
            "band_2sigma": band.tolist(), "n": int(len(f)), "f": f.tolist()}
