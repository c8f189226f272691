"""The numbers of a report: held-out truths against their posterior samples, each in the space the papers use.

* spectra of the overdensity and of the log field, in three k bands up to k_Nyq (:mod:`.posterior`);
* pixel z-scores of the log field beside their finite-sample expectation (:mod:`.calibration`);
* rank-based coverage (68%, 95%) and calibration curves per pixel and for map-level summaries: the mean
  log level of a map and its overdensity power in each k band;
* the reduced χ² of the samples' P(k) against cosmic-variance truths (leave-one-out, as Mudur+23) when a
  CV set is given.
"""
from __future__ import annotations

import numpy as np

from ..spectra import cross_spectrum, overdensity, power_spectrum
from . import calibration as cal
from .posterior import BANDS, band_edges, band_scores, k_nyquist


def _mean(dicts: list[dict]) -> dict:
    """Element-wise mean of nested dicts of numbers."""
    out = {}
    for key, v in dicts[0].items():
        if isinstance(v, dict):
            out[key] = _mean([d[key] for d in dicts])
        else:
            out[key] = v if isinstance(v, int) else float(np.mean([d[key] for d in dicts]))
    return out


def band_powers(maps: np.ndarray, box_mpc_h: float) -> np.ndarray:
    """(..., 3) mean overdensity power of every map (..., N, N) in each k band."""
    flat = np.asarray(maps, dtype=np.float64).reshape(-1, *np.shape(maps)[-2:])
    edges = band_edges(box_mpc_h, flat.shape[-1])
    out = []
    for m in flat:
        ps = power_spectrum(overdensity(m), box_mpc_h)
        out.append([ps.power[(ps.k > lo) & (ps.k <= hi * (1 + 1e-12))].mean() for lo, hi in edges.values()])
    return np.asarray(out).reshape(*np.shape(maps)[:-2], len(edges))


def curves(truth: np.ndarray, cond: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Per-k spectra for the Fig. 2 panels: (n,) maps, (S, n) draws; overdensity, k <= k_Nyq."""
    n, s = truth.shape[0], draws.shape[0]
    rows = {"p_true": [], "p_stars": [], "p_draws": [], "r_draws": [], "r_stars": []}
    for i in range(n):
        dt = overdensity(truth[i])
        xs = cross_spectrum(overdensity(cond[i]), dt, box_mpc_h)
        rows["p_true"].append(xs.power_b)
        rows["p_stars"].append(xs.power_a)
        rows["r_stars"].append(xs.r)
        for j in range(s):
            xd = cross_spectrum(dt, overdensity(draws[j, i]), box_mpc_h)
            rows["p_draws"].append(xd.power_b)
            rows["r_draws"].append(xd.r)
    keep = xs.k <= k_nyquist(box_mpc_h, truth.shape[-1]) * (1 + 1e-12)
    out = {k: np.asarray(v)[:, keep] for k, v in rows.items()}
    out["ratio"] = out["p_draws"].reshape(n, s, -1) / out["p_true"][:, None]                # (n, S, nk)
    out["k"] = xs.k[keep]
    return out


def chi2_loo(power_test: np.ndarray, power_cv: np.ndarray) -> float:
    """Mean reduced χ² of spectra (m, nk) against the CV truths (M, nk): each against the others' mean/std."""
    power_cv = np.asarray(power_cv, dtype=np.float64)
    out = []
    for p in np.atleast_2d(power_test):
        same = np.all(np.isclose(power_cv, p, rtol=1e-12, atol=0), axis=1)  # leave the map itself out
        ref = power_cv[~same]
        mu, sd = ref.mean(0), ref.std(0, ddof=1)
        out.append(np.sum((p - mu) ** 2 / sd**2) / (p.size - 1))
    return float(np.mean(out))


def analyse(truth: np.ndarray, cond: np.ndarray, draws: np.ndarray, box_mpc_h: float, *, seed: int = 0,
            cv_truths: np.ndarray | None = None) -> dict:
    """metrics.json's posterior section: truth and cond (n, N, N), draws (S, n, N, N), physical units."""
    n, s = truth.shape[0], draws.shape[0]
    if n == 0 or s == 0:
        raise ValueError(f"nothing to evaluate: {n} maps with {s} samples each")
    if draws.shape[1:] != truth.shape or cond.shape != truth.shape:
        raise ValueError(f"shapes disagree: truth {truth.shape}, cond {cond.shape}, samples {draws.shape}")
    mean_map = draws.mean(0)
    log_t = np.log10(np.maximum(truth, np.finfo(float).tiny))
    log_d = np.log10(np.maximum(draws, np.finfo(float).tiny))
    level_t, level_d = log_t.mean(axis=(-2, -1)), log_d.mean(axis=(-2, -1))               # (n,), (S, n)
    bp_t, bp_d = band_powers(truth, box_mpc_h), band_powers(draws, box_mpc_h)              # (n, 3), (S, n, 3)
    out = {
        "samples": _mean([band_scores(truth[i], draws[:, i], box_mpc_h) for i in range(n)]),
        "posterior_mean": _mean([band_scores(truth[i], mean_map[i], box_mpc_h) for i in range(n)]),
        "stars_vs_dm": _mean([band_scores(truth[i], cond[i] + 1e-30, box_mpc_h) for i in range(n)]),
        "zscore_log_pixel": cal.zscores(log_t, log_d),
        "calibration": {
            "pixel": cal.calibration(log_t, log_d, seed),
            "map_mean_level": cal.calibration(level_t, level_d, seed),
            **{f"pk_{b}": cal.calibration(bp_t[:, j], bp_d[:, :, j], seed) for j, b in enumerate(BANDS)}},
        "map_level_offsets_dex": {"truth_minus_mean": float(np.mean(level_t - level_d.mean(0))),
                                  "rms_truth_minus_mean": float(np.sqrt(np.mean((level_t - level_d.mean(0)) ** 2))),
                                  "sample_spread": float(np.mean(level_d.std(0)))},
        "n_maps": int(n), "n_samples": int(s),
    }
    if cv_truths is not None and len(cv_truths) >= 3:
        p_cv = overdensity_spectra(np.asarray(cv_truths, dtype=np.float64), box_mpc_h)
        p_s = overdensity_spectra(draws.reshape(-1, *truth.shape[1:]), box_mpc_h)
        out["chi2_r"] = {"samples": chi2_loo(p_s, p_cv), "truths_floor": chi2_loo(p_cv, p_cv),
                         "n_cv": int(len(cv_truths))}
    return out


def overdensity_spectra(maps: np.ndarray, box_mpc_h: float) -> np.ndarray:
    """(m, nk) overdensity P(k) of mass maps (m, N, N) over the bins up to k_Nyq."""
    ps = [power_spectrum(overdensity(m), box_mpc_h) for m in maps]
    keep = ps[0].k <= k_nyquist(box_mpc_h, maps.shape[-1]) * (1 + 1e-12)
    return np.stack([p.power[keep] for p in ps])
