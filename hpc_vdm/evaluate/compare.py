"""Several models side by side on the same held-out maps (Sether+24's comparison): one scoring path for every row.

A *row* is a model's draws of the held-out maps, (S, n, H, W) physical: the evaluated model's posterior
samples (or its one prediction), each ``evaluate.baselines`` model's draw, the HOD's maps
(:mod:`hpc_vdm.baselines.hod2d`). Every row is scored by :func:`row_scores`:

* **MSE in log space**: mean over pixels and maps of (log10(o + d) − log10(o + t))², o the target's log offset
  (1 for stellar maps, so empty pixels are 0); for several samples also of their log-space mean (the point
  estimate that minimises the expected log MSE);
* **spectra of the overdensity** per map and draw: P(k), the transfer ratio P_draw/P_true, the cross power
  P_x(draw, truth) and r(k), medians and 25–75% bands over the test maps (Sether+24's bands), bins k ≤ k_Nyq;
* **P(k) error per k band** in h/Mpc (k < 5, 5–10, above 10, and k ≈ 20 (17.5–22.5) when the maps resolve it):
  mean over the band's bins of |median transfer ratio − 1|; r(k) per band likewise;
* the **pixel PDF** of log10 of the lit pixels and the empty-pixel fraction.

A map whose draw holds no mass has no overdensity: it is left out of that row's spectra and counted.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..spectra import cross_spectrum, overdensity
from ..spectra.scores import in_band, k_nyquist

K_BANDS = {"k<5": (0.0, 5.0), "5<k<10": (5.0, 10.0), "k>10": (10.0, math.inf), "k~20": (17.5, 22.5)}
PDF_EDGES = np.linspace(4.0, 14.0, 41)   # log10 of a lit pixel [(Msun/h)/(Mpc/h)^2]
Q = (25.0, 75.0)


def band_limits(box_mpc_h: float, pixels: int) -> dict[str, tuple[float, float] | None]:
    """The k bands [h/Mpc] the maps resolve, capped at k_Nyq; None for a band that starts beyond k_Nyq, and for
    k ≈ 20 unless the maps resolve all of it (64² maps of 25 Mpc/h: k_Nyq = 8.04 h/Mpc; 256²: 32.2)."""
    kn = k_nyquist(box_mpc_h, pixels) * (1 + 1e-12)
    return {b: None if lo >= kn or (b == "k~20" and hi > kn) else (lo, min(hi, kn)) for b, (lo, hi) in K_BANDS.items()}


def _quartiles(values: np.ndarray) -> dict[str, list]:
    v = np.asarray(values, dtype=np.float64)
    lo, med, hi = np.nanpercentile(v, [Q[0], 50.0, Q[1]], axis=0) if len(v) else (np.nan,) * 3
    return {"median": np.atleast_1d(med).tolist(), "q25": np.atleast_1d(lo).tolist(), "q75": np.atleast_1d(hi).tolist()}


def spectra_rows(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float) -> dict:
    """Per (map, draw) spectra of the overdensity, k ≤ k_Nyq: k, P_true (m,), P_draw, P_x, r (m S, nk)."""
    out = {"p_true": [], "p_draw": [], "p_cross": [], "r": [], "empty_maps": 0}
    k = None
    for i in range(truth.shape[0]):
        dt = overdensity(truth[i])
        for s in range(draws.shape[0]):
            if not draws[s, i].sum() > 0:
                out["empty_maps"] += 1
                continue
            x = cross_spectrum(dt, overdensity(draws[s, i]), box_mpc_h)
            k = x.k
            out["p_true"].append(x.power_a)
            out["p_draw"].append(x.power_b)
            out["p_cross"].append(x.cross)
            out["r"].append(x.r)
    if k is None:
        return {"k": np.zeros(0), "empty_maps": out["empty_maps"]}
    keep = in_band(k, 0.0, k_nyquist(box_mpc_h, truth.shape[-1]))
    return {"k": k[keep], "empty_maps": out["empty_maps"],
            **{name: np.asarray(out[name])[:, keep] for name in ("p_true", "p_draw", "p_cross", "r")}}


def mse_log(truth: np.ndarray, draws: np.ndarray, offset: float) -> dict:
    """MSE of log10(offset + x) of the draws (S, n, H, W) against the truth (n, H, W): of each draw (``draws``, the
    mean over draws), and, with several draws, of their log-space mean m (``log_mean``) and of the posterior mean
    E[log x | condition] that m estimates (``posterior_mean``, unbiased: the S-draw mean's MSE less its own sampling
    variance, ``log_mean − (draws − log_mean)/(S − 1)``, since Σ_s‖l_s − t‖²/S = ‖m − t‖² + Σ_s‖l_s − m‖²/S). The
    last is what a deterministic MSE-trained network estimates: the like-for-like comparison with it. A draw's own
    MSE is the posterior mean's plus the posterior variance, about twice it for a calibrated sampler.

    Where a pixel of the truth or of a draw (clipped at 0) has offset + x ≤ 0, its log is not finite and neither
    is the MSE: the values are None and ``undefined`` says how many pixels (a thresholded row with offset 0)."""
    truth, draws = np.asarray(truth, dtype=np.float64), np.maximum(np.asarray(draws, dtype=np.float64), 0.0)
    bad = int(np.sum(offset + truth <= 0) + np.sum(offset + draws <= 0))
    if bad:
        return {"draws": None, "undefined": f"{bad} pixels with log10({offset:g} + x) not finite"}
    lt, ld = np.log10(offset + truth), np.log10(offset + draws)
    out = {"draws": float(np.mean((ld - lt) ** 2))}
    n = draws.shape[0]
    if n > 1:
        out["log_mean"] = float(np.mean((ld.mean(0) - lt) ** 2))
        out["posterior_mean"] = out["log_mean"] - (out["draws"] - out["log_mean"]) / (n - 1)
    return out


def row_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, offset: float) -> dict:
    """Every comparison number of one row (see the module doc), plain data."""
    sp = spectra_rows(truth, draws, box_mpc_h)
    lit = np.asarray(draws)[np.asarray(draws) > 0]
    pdf = np.histogram(np.log10(lit), PDF_EDGES)[0] / max(np.asarray(draws).size, 1)
    out = {"n_draws": int(draws.shape[0]), "mse_log": mse_log(truth, draws, offset), "empty_maps": sp["empty_maps"],
           "empty_pixel_fraction": float(np.mean(np.asarray(draws) <= 0)), "pdf_lit": pdf.tolist()}
    if not len(sp["k"]):
        return out | {"bands": {b: None for b in K_BANDS}}
    ratio, cross = sp["p_draw"] / sp["p_true"], sp["p_cross"] / sp["p_true"]
    t_med, r_med = np.median(ratio, 0), np.median(sp["r"], 0)
    bands = {}
    for b, lim in band_limits(box_mpc_h, truth.shape[-1]).items():
        sel = None if lim is None else in_band(sp["k"], *lim)
        bands[b] = None if sel is None or not sel.any() else {
            "pk_err": float(np.mean(np.abs(t_med[sel] - 1.0))), "transfer": float(np.mean(t_med[sel])),
            "cross_ratio": float(np.mean(np.median(cross, 0)[sel])), "r": float(np.mean(r_med[sel])),
            "k_range": [float(sp["k"][sel].min()), float(sp["k"][sel].max())]}
    curves = {"k": sp["k"].tolist(), "p_draw": _quartiles(sp["p_draw"]), "transfer": _quartiles(ratio),
              "p_cross": _quartiles(sp["p_cross"]), "cross_ratio": _quartiles(cross), "r": _quartiles(sp["r"])}
    return out | {"bands": bands, "curves": curves}


def truth_curves(truth: np.ndarray, box_mpc_h: float) -> dict:
    """k and the truth's P(k) quartiles over the maps (overdensity, k ≤ k_Nyq), and its pixel PDF."""
    sp = spectra_rows(truth, truth[None], box_mpc_h)
    lit = truth[truth > 0]
    return {"k": sp["k"].tolist(), "p_true": _quartiles(sp["p_true"]),
            "pdf_lit": (np.histogram(np.log10(lit), PDF_EDGES)[0] / truth.size).tolist(),
            "empty_pixel_fraction": float(np.mean(truth <= 0)), "pdf_edges": PDF_EDGES.tolist()}


def thresholded(draws: np.ndarray, floor: float) -> np.ndarray:
    """Draws with every pixel below ``floor`` (physical) set to 0: sub-resolution mass counted as empty."""
    return np.where(draws < floor, 0.0, draws)


def training_seconds(model_path: str | Path) -> dict | None:
    """Wall seconds of the run that exported ``model_path`` (run_dir/export/model.pt), from its metrics.csv:
    the sum over train rows of (samples since the previous row) / samples_per_s, validations included; per
    ``phase`` as well when the family reports one. None without a metrics.csv beside the export."""
    path = Path(model_path).resolve().parent.parent / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("kind") == "train" and r.get("samples_per_s")]
    total, by_phase, prev = 0.0, {}, 0.0
    for r in rows:
        samples, rate = float(r["samples"]), float(r["samples_per_s"])
        dt = (samples - prev) / rate if rate > 0 else 0.0
        prev = samples
        total += dt
        if r.get("phase"):
            key = f"phase_{int(float(r['phase']))}"
            by_phase[key] = by_phase.get(key, 0.0) + dt
    return {"train_s": total, **by_phase}


def posterior_mse(mse: dict) -> float:
    """The MSE a row's order is judged by: its posterior mean's (estimated from several draws), else its one draw's."""
    return mse.get("posterior_mean", mse["draws"])


def order_note(rows: dict[str, dict], names: dict[str, str]) -> dict:
    """Whether the paper's order holds: MSE VDM < CNN < HOD, and the VDM best in P(k) at k ≈ 20 h/Mpc (or, when
    the maps do not resolve it, in the highest band they do). ``names`` maps 'vdm', 'cnn', 'hod' to row names."""
    if not all(names.get(r) in rows for r in ("vdm", "cnn", "hod")):
        return {}
    mse = {r: posterior_mse(rows[names[r]]["mse_log"]) for r in ("vdm", "cnn", "hod")}
    band = next((b for b in ("k~20", "k>10", "5<k<10", "k<5") if rows[names["vdm"]]["bands"].get(b)), None)
    pk = {r: (rows[names[r]]["bands"].get(band) or {}).get("pk_err", math.inf) for r in ("vdm", "cnn", "hod")}
    holds = None if None in mse.values() else mse["vdm"] < mse["cnn"] < mse["hod"]     # None: an MSE not finite
    return {"mse": mse, "mse_order_holds": holds, "pk_band": band, "pk_err": pk,
            "vdm_best_pk": pk["vdm"] < min(pk["cnn"], pk["hod"]), "k20_resolved": band == "k~20"}
