"""The numbers of a report: held-out truths against a model's draws, each in the space the papers use.

* spectra of the overdensity and of the log field, in three k bands up to k_Nyq
  (:mod:`hpc_vdm.spectra.scores`), of the draws, of their mean, of the posterior mean's S → ∞ limit (the
  mean's power less the draws' own scatter / S) and of the condition itself, with the P ratio the draws
  would score if the posterior were calibrated (each draw in turn as the truth: a mean of per-map ratios is
  above 1 even then where few modes or bright pixels carry a band's power);
* pixel z-scores of the log field beside their finite-sample expectation (:mod:`.calibration`);
* rank-based coverage (68%, 95%) and calibration curves per pixel and for map-level summaries: the mean
  log level of a map and its overdensity power in each k band;
* the reduced χ² of the samples' P(k) against cosmic-variance truths (leave-one-out, as Mudur+23) when a
  CV set is given.
"""
from __future__ import annotations

import numpy as np

from ..spectra import cross_spectrum, overdensity
from ..spectra.scores import (BANDS, band_powers, band_scores, chi2_r, in_band, k_nyquist,
                              mean_limit_scores, mean_of, overdensity_spectra, sample_scores)
from . import calibration as cal
from .baselines import condition_scores
from .posterior import log10_floor
from .significance import PER_MAP


def curves(truth: np.ndarray, cond: np.ndarray | None, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Per-k spectra for the Fig. 2 panels: (n,) maps, (S, n) draws, the condition (n,) if any; overdensity,
    k <= k_Nyq."""
    n, s = truth.shape[0], draws.shape[0]
    rows = {"p_true": [], "p_cond": [], "p_draws": [], "r_draws": [], "r_cond": []}
    for i in range(n):
        dt = overdensity(truth[i])
        if cond is not None:
            xs = cross_spectrum(overdensity(cond[i]), dt, box_mpc_h)
            rows["p_cond"].append(xs.power_a)
            rows["r_cond"].append(xs.r)
        for j in range(s):
            xd = cross_spectrum(dt, overdensity(draws[j, i]), box_mpc_h)
            rows["p_draws"].append(xd.power_b)
            rows["r_draws"].append(xd.r)
            if j == 0:
                rows["p_true"].append(xd.power_a)
    keep = in_band(xd.k, 0.0, k_nyquist(box_mpc_h, truth.shape[-1]))
    out = {k: np.asarray(v)[:, keep] for k, v in rows.items() if v}
    out["ratio"] = out["p_draws"].reshape(n, s, -1) / out["p_true"][:, None]                # (n, S, nk)
    out["k"] = xd.k[keep]
    return out


def chi2_loo(power_test: np.ndarray, power_cv: np.ndarray) -> float:
    """Mean reduced χ² of spectra (m, nk) against the CV truths (M, nk): each against the others' mean/std
    (:func:`hpc_vdm.spectra.scores.chi2_r`)."""
    return float(np.mean(chi2_r(power_test, power_cv)))


def calibration(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, seed: int,
                log_offset: float = 0.0, groups: np.ndarray | None = None) -> tuple[dict, dict]:
    """(metrics, ranks) of the posterior's calibration: pixel z-scores of the log field (log10(x + log_offset)),
    rank coverage per pixel, per map mean level and per P(k) band (with standard errors over ``groups``, each
    map's simulation, when given), and the map-level offsets; ranks for the figure."""
    log_t, log_d = log10_floor(truth, log_offset), log10_floor(draws, log_offset)
    level_t, level_d = log_t.mean(axis=(-2, -1)), log_d.mean(axis=(-2, -1))               # (n,), (S, n)
    bp_t, bp_d = band_powers(truth, box_mpc_h), band_powers(draws, box_mpc_h)              # (n, 3), (S, n, 3)
    pairs = {"pixel": (log_t, log_d), "map_mean_level": (level_t, level_d),
             **{f"pk_{b}": (bp_t[:, j], bp_d[:, :, j]) for j, b in enumerate(BANDS)}}
    metrics = {"zscore_log_pixel": cal.zscores(log_t, log_d),
               "calibration": {name: cal.calibration(t, d, seed, groups) for name, (t, d) in pairs.items()},
               "map_level_offsets_dex": {
                   "truth_minus_mean": float(np.mean(level_t - level_d.mean(0))),
                   "rms_truth_minus_mean": float(np.sqrt(np.mean((level_t - level_d.mean(0)) ** 2))),
                   "sample_spread": float(np.mean(level_d.std(0)))}}
    return metrics, {name: cal.ranks(t, d, seed)[0] for name, (t, d) in pairs.items()}


def analyse(truth: np.ndarray, cond: np.ndarray | None, draws: np.ndarray, box_mpc_h: float, *, seed: int = 0,
            deterministic: bool = False, cv_truths: np.ndarray | None = None, log_offset: float = 0.0,
            groups: np.ndarray | None = None) -> tuple[dict, dict]:
    """(metrics.json's posterior section, calibration ranks) of truth and cond (n, N, N) — cond None for a
    model without a map condition — and draws (S, n, N, N), physical units. A deterministic model's one
    draw is scored as the prediction: no posterior mean, no calibration. The log space is log10(x +
    ``log_offset``) (the target's offset: 1 for stellar maps); ``groups`` (n,), each map's simulation, gives the
    coverages' standard errors."""
    n, s = truth.shape[0], draws.shape[0]
    if n == 0 or s == 0:
        raise ValueError(f"nothing to evaluate: {n} maps with {s} draws each")
    if draws.shape[1:] != truth.shape or (cond is not None and cond.shape != truth.shape):
        raise ValueError(f"shapes disagree: truth {truth.shape}, cond {None if cond is None else cond.shape}, "
                         f"draws {draws.shape}")
    out = {"deterministic": bool(deterministic), "n_maps": int(n), "n_samples": int(s)}
    if deterministic or s < 2:
        out["samples"] = mean_of([band_scores(truth[i], draws[:, i], box_mpc_h, log_offset) for i in range(n)],
                                 PER_MAP)
    else:   # and the P ratio the draws would score were the posterior calibrated
        out |= mean_of([sample_scores(truth[i], draws[:, i], box_mpc_h, log_offset) for i in range(n)], PER_MAP)
    if cond is not None:
        out["condition"] = condition_scores(truth, cond, box_mpc_h, log_offset)
    ranks = {}
    if not deterministic:
        mean_map = draws.mean(0)
        out["posterior_mean"] = mean_of([band_scores(truth[i], mean_map[i], box_mpc_h, log_offset) for i in range(n)],
                                        PER_MAP)
        if s >= 2:
            out["posterior_mean_limit"] = mean_of([mean_limit_scores(truth[i], draws[:, i], box_mpc_h, log_offset)
                                                   for i in range(n)], PER_MAP)
            metrics, ranks = calibration(truth, draws, box_mpc_h, seed, log_offset, groups)
            out |= metrics
    if cv_truths is not None and len(cv_truths) >= 3:
        _, p_cv = overdensity_spectra(np.asarray(cv_truths, dtype=np.float64), box_mpc_h)
        _, p_s = overdensity_spectra(draws.reshape(-1, *truth.shape[1:]), box_mpc_h)
        out["chi2_r"] = {"samples": chi2_loo(p_s, p_cv), "truths_floor": chi2_loo(p_cv, p_cv),
                         "n_cv": int(len(cv_truths))}
    return out, ranks
