"""Scores of draws against a truth from their spectra: one definition of each number, for every user.

Validation, ``sample``, ``evaluate``, ``spectra compare`` and the dm2gal comparison all score with these:

* **space**: ``overdensity`` δ = m/m̄ − 1 (the papers' P(k)), ``log`` = log10(m + offset) minus its mean (where
  the models work: offset 0 for dark matter, the target's log offset, 1, for stellar maps whose empty pixels
  are zeros), or ``mass`` (the field itself: stellar mass per voxel, whose total matters);
* **k range**: bins with k ≤ k_Nyq = π N / L only (the 2D/3D bins beyond run into the grid corners, where
  few modes and the pixel window dominate); the report's three **bands** split (0, k_Nyq] at k_Nyq/4 and
  k_Nyq/2;
* ``pk_ratio_err`` = mean over draws and bins of |P_draw/P_true − 1|; ``r_mean`` = mean of r(k) =
  P_×/sqrt(P_draw P_true); ``pk_ratio`` = mean of P_draw/P_true;
* the **posterior mean's limit** (:func:`mean_limit_scores`): r(k) and P ratio of E[field | condition] estimated
  from S draws without their finite-S noise, which biases the plain S-draw mean's r(k) low;
* the **calibrated P ratio** (:func:`calibrated_ratio`, scored beside the samples by :func:`sample_scores`): what
  ``pk_ratio`` would be if the truth were one more draw (a mean of ratios exceeds 1 where few modes or bright
  pixels carry the power), the reference a posterior's P ratio is read against.
"""
from __future__ import annotations

import numpy as np

from .pk import cross_spectrum, overdensity, power_spectrum

BANDS = ("k<kN/4", "kN/4-kN/2", "kN/2-kN")
TOL = 1 + 1e-12  # a bin at exactly a band edge belongs to the lower band


def k_nyquist(box_mpc_h: float, pixels: int) -> float:
    """The Nyquist wavenumber π N / L [h/Mpc]."""
    return np.pi * pixels / box_mpc_h


def band_edges(box_mpc_h: float, pixels: int) -> dict[str, tuple[float, float]]:
    """The three k bands of the report [h/Mpc], up to the Nyquist frequency (no corner bins)."""
    kn = k_nyquist(box_mpc_h, pixels)
    return dict(zip(BANDS, ((0.0, kn / 4), (kn / 4, kn / 2), (kn / 2, kn))))


def in_band(k: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (np.asarray(k) > lo) & (np.asarray(k) <= hi * TOL)


def log_fluctuation(mass: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """log10(mass + offset) minus its mean over the field (zeros floored at the smallest float when offset is 0):
    the 'log space' spectra are of this."""
    lg = np.log10(np.maximum(np.asarray(mass, dtype=np.float64) + offset, np.finfo(np.float64).tiny))
    return lg - lg.mean()


SPACES = {"overdensity": overdensity, "log": log_fluctuation, "mass": lambda m: np.asarray(m, dtype=np.float64)}


def _space(name: str, offset: float = 0.0):
    if name not in SPACES:
        raise ValueError(f"space must be one of {list(SPACES)}, got {name!r}")
    return (lambda m: log_fluctuation(m, offset)) if name == "log" and offset else SPACES[name]


def ratio_scores(k: np.ndarray, ratio: np.ndarray, r: np.ndarray, k_max: float) -> dict:
    """``pk_ratio_err`` and ``r_mean`` of P ratios and r(k) (..., nk) at bins ``k``, over 0 < k ≤ ``k_max``."""
    keep = in_band(k, 0.0, k_max)
    if not keep.any():
        raise ValueError(f"no k bin at or below k_max={k_max:g} h/Mpc (first bin at {np.min(k):g})")
    return {"pk_ratio_err": float(np.mean(np.abs(np.asarray(ratio)[..., keep] - 1.0))),
            "r_mean": float(np.mean(np.asarray(r)[..., keep]))}


def spectra(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, space: str = "overdensity", offset: float = 0.0):
    """(k, P ratio (S, nk), r (S, nk)) of draws (S, *shape) or one draw against ``truth`` (*shape), physical
    fields, over the bins with k ≤ k_Nyq; ``offset`` of the log space."""
    f = _space(space, offset)
    draws = np.asarray(draws, dtype=np.float64).reshape(-1, *np.shape(truth))
    ft = f(np.asarray(truth, dtype=np.float64))
    xs = [cross_spectrum(ft, f(d), box_mpc_h) for d in draws]
    k = xs[0].k
    keep = in_band(k, 0.0, k_nyquist(box_mpc_h, np.shape(truth)[-1]))
    if not keep.any():
        raise ValueError(f"no k bin at or below k_Nyq (first bin at {np.min(k):g} h/Mpc)")
    ratio = np.stack([x.power_b / x.power_a for x in xs])[:, keep]
    r = np.stack([x.r for x in xs])[:, keep]
    return k[keep], ratio, r


def draw_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, space: str = "overdensity") -> dict:
    """``pk_ratio_err`` and ``r_mean`` of draws (S, *shape) or one draw (*shape) against a truth, k ≤ k_Nyq."""
    k, ratio, r = spectra(truth, draws, box_mpc_h, space)
    return ratio_scores(k, ratio, r, k_nyquist(box_mpc_h, np.shape(truth)[-1]))


def space_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, space: str, offset: float = 0.0) -> dict:
    """Per k band of one space: ``pk_ratio``, ``pk_ratio_err``, ``r`` and the number of bins."""
    k, ratio, r = spectra(truth, draws, box_mpc_h, space, offset)
    return _per_band(k, ratio, r, box_mpc_h, np.shape(truth)[-1])


def _per_band(k: np.ndarray, ratio: np.ndarray, r: np.ndarray | None, box_mpc_h: float, pixels: int) -> dict:
    """{band: pk_ratio, pk_ratio_err, r (unless ``r`` is None), n_bins} of P ratios and r(k) (S, nk) at bins ``k``
    (all ≤ k_Nyq)."""
    out = {}
    for band, (lo, hi) in band_edges(box_mpc_h, pixels).items():
        sel = in_band(k, lo, hi)
        out[band] = {"pk_ratio": float(ratio[:, sel].mean()), "pk_ratio_err": float(np.abs(ratio[:, sel] - 1).mean()),
                     **({} if r is None else {"r": float(r[:, sel].mean())}), "n_bins": int(sel.sum())}
    return out


def calibrated_ratio(power: np.ndarray) -> np.ndarray:
    """(S, nk) P ratios each draw would score as the truth of the other S − 1: mean_{j≠i} P_j / P_i, from the
    draws' powers (S, nk) or their ratios to any one reference field (the reference cancels)."""
    power = np.asarray(power, dtype=np.float64)
    s = power.shape[0]
    if s < 2:
        raise ValueError(f"a calibrated posterior's P ratio needs at least 2 draws (one as the truth), got {s}")
    others = (power.sum(0) - power) / (s - 1)                                    # (S, nk): the other draws' mean
    return others / np.maximum(power, np.finfo(np.float64).tiny)


def calibrated_ratio_space_scores(draws: np.ndarray, box_mpc_h: float, space: str, offset: float = 0.0) -> dict:
    """Per k band of one space: the ``pk_ratio`` (and ``pk_ratio_err``) that draws (S, N, N) of one map would score
    if the posterior were calibrated, i.e. if the truth were one more draw of it.

    The report's P ratio is a mean of per-map ratios P_draw / P_truth, and E[1 / P_truth] > 1 / E[P_truth]: where a
    band's power is carried by few modes, or by a few bright pixels (δ of a halo map), a calibrated posterior
    scores above 1. With the truth exchangeable with the draws, the expectation is the mean over ordered pairs
    i ≠ j of P_i / P_j, estimated without bias from the draws alone: each draw in turn is the truth, the other
    S − 1 its draws (:func:`calibrated_ratio`). :func:`sample_scores` gives the same from the draws' ratios to
    the truth without a second pass of FFTs."""
    draws = np.asarray(draws, dtype=np.float64)
    f = _space(space, offset)
    spectra_ = [power_spectrum(f(d), box_mpc_h) for d in draws]
    k = spectra_[0].k
    keep = in_band(k, 0.0, k_nyquist(box_mpc_h, draws.shape[-1]))
    ratio = calibrated_ratio(np.stack([x.power for x in spectra_])[:, keep])    # (S, nk)
    return _per_band(k[keep], ratio, None, box_mpc_h, draws.shape[-1])


def sample_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, offset: float = 0.0) -> dict:
    """{"samples": :func:`band_scores`, "samples_if_calibrated": :func:`calibrated_ratio_space_scores` per
    space} of draws (S ≥ 2, N, N) of one map, from one pass of cross spectra per space
    (P_j / P_i = ratio_j / ratio_i)."""
    out = {"samples": {}, "samples_if_calibrated": {}}
    for space in ("overdensity", "log"):
        k, ratio, r = spectra(truth, draws, box_mpc_h, space, offset)
        out["samples"][space] = _per_band(k, ratio, r, box_mpc_h, np.shape(truth)[-1])
        out["samples_if_calibrated"][space] = _per_band(k, calibrated_ratio(ratio), None, box_mpc_h,
                                                         np.shape(truth)[-1])
    return out


def mean_limit_space_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, space: str,
                            offset: float = 0.0) -> dict:
    """Per k band of one space: ``pk_ratio`` (with ``pk_ratio_err``) and ``r`` of the posterior mean μ = E[f(x) | c]
    (f the space's field) estimated from S ≥ 2 draws (S, *shape) without the noise of their finite number.

    The mean ḡ of the draws' fields g_s has, per mode, the power P_μ + V/S in expectation (V the posterior
    variance), and V is estimated without bias by the draws' scatter V̂ = Σ_s P(g_s − ḡ) / (S − 1); the cross
    power with the truth is unbiased as it stands (the truth does not know the draws' noise). Hence
    P̂_μ = P(ḡ) − V̂/S, ``pk_ratio`` = P̂_μ / P_t and r̂ = P_×(ḡ, t) / sqrt(P̂_μ P_t), the latter clipped to
    [−1, 1] (Cauchy–Schwarz) where noise makes P̂_μ too small (bins where V/S is comparable to P_μ)."""
    draws = np.asarray(draws, dtype=np.float64).reshape(-1, *np.shape(truth))
    s = draws.shape[0]
    if s < 2:
        raise ValueError(f"the posterior mean's limit needs at least 2 draws to estimate their scatter, got {s}")
    f = _space(space, offset)
    g = np.stack([f(d) for d in draws])                                          # (S, *shape)
    g_bar = g.mean(0)
    x = cross_spectrum(f(np.asarray(truth, dtype=np.float64)), g_bar, box_mpc_h)
    scatter = np.mean([power_spectrum(gs - g_bar, box_mpc_h).power for gs in g], axis=0) * s / (s - 1)  # V̂ (nk,)
    p_mu = x.power_b - scatter / s
    r = np.clip(x.cross / np.sqrt(np.maximum(p_mu, np.finfo(np.float64).tiny) * x.power_a), -1.0, 1.0)
    keep = in_band(x.k, 0.0, k_nyquist(box_mpc_h, np.shape(truth)[-1]))
    return _per_band(x.k[keep], (p_mu / x.power_a)[None, keep], r[None, keep], box_mpc_h, np.shape(truth)[-1])


def mean_limit_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, offset: float = 0.0) -> dict:
    """:func:`mean_limit_space_scores` in overdensity and in log space."""
    return {space: mean_limit_space_scores(truth, draws, box_mpc_h, space, offset) for space in ("overdensity", "log")}


def band_scores(truth: np.ndarray, draws: np.ndarray, box_mpc_h: float, offset: float = 0.0) -> dict:
    """:func:`space_scores` of draws (S, N, N) or one draw against a truth, in overdensity and in log space
    (log10(x + ``offset``))."""
    return {space: space_scores(truth, draws, box_mpc_h, space, offset) for space in ("overdensity", "log")}


def mean_of(scores: list[dict], per_map: tuple[str, ...] = ()) -> dict:
    """Element-wise mean of nested score dicts (one per map); integers (bin counts) are taken as they are. For the
    keys named in ``per_map`` the per-map values are kept beside the mean, as ``{key}_maps`` (their standard errors
    and paired comparisons: :mod:`hpc_vdm.evaluate.significance`)."""
    out = {}
    for key, v in scores[0].items():
        if isinstance(v, dict):
            out[key] = mean_of([d[key] for d in scores], per_map)
        elif isinstance(v, int):
            out[key] = v
        else:
            values = [float(d[key]) for d in scores]
            out[key] = float(np.mean(values))
            if key in per_map:
                out[f"{key}_maps"] = values
    return out


def band_powers(maps: np.ndarray, box_mpc_h: float) -> np.ndarray:
    """(..., 3) mean overdensity power of every map (..., N, N) in each band."""
    flat = np.asarray(maps, dtype=np.float64).reshape(-1, *np.shape(maps)[-2:])
    edges = band_edges(box_mpc_h, flat.shape[-1])
    out = []
    for m in flat:
        ps = power_spectrum(overdensity(m), box_mpc_h)
        out.append([ps.power[in_band(ps.k, lo, hi)].mean() for lo, hi in edges.values()])
    return np.asarray(out).reshape(*np.shape(maps)[:-2], len(edges))


def overdensity_spectra(maps: np.ndarray, box_mpc_h: float, space: str = "overdensity") -> tuple[np.ndarray, np.ndarray]:
    """(k, P (m, nk)) of the overdensity (or another ``space``) of mass maps (m, N, N), bins up to k_Nyq."""
    f = _space(space)
    ps = [power_spectrum(f(m), box_mpc_h) for m in np.asarray(maps, dtype=np.float64)]
    keep = in_band(ps[0].k, 0.0, k_nyquist(box_mpc_h, np.shape(maps)[-1]))
    return ps[0].k[keep], np.stack([p.power[keep] for p in ps])


def chi2_r(power: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(m,) reduced χ² of each spectrum (m, nk) against reference spectra (M, nk), Mudur+23:
    χ²_r = 1/(nk − 1) Σ_k (P_k − mean_ref,k)² / std_ref,k² (std with ddof 1). A spectrum equal to one of the
    references is scored against the others (leave-one-out: the cosmic-variance floor of the truths)."""
    reference = np.asarray(reference, dtype=np.float64)
    out = []
    for p in np.atleast_2d(np.asarray(power, dtype=np.float64)):
        same = np.all(np.isclose(reference, p, rtol=1e-12, atol=0), axis=1)  # leave the map itself out
        ref = reference[~same]
        if len(ref) < 2:
            raise ValueError(f"chi^2_r needs at least 2 reference spectra besides the one scored, got {len(ref)}")
        mu, sd = ref.mean(0), ref.std(0, ddof=1)
        out.append(np.sum((p - mu) ** 2 / sd ** 2) / (p.size - 1))
    return np.asarray(out)
