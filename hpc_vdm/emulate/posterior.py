"""Posteriors of two parameters on a grid from −ln L values (the bound's terms, or the P(k) baseline's χ²/2).

With a flat prior over the box, −2Δln L(θ) = 2 (L(θ) − min L) is the χ² surface; p(θ) ∝ exp(−½ Δχ²) on the
grid points. The paper's summaries, and a few more:

* contours at Δχ² = 2.30, 6.18, 11.83 (1, 2, 3σ for 2 degrees of freedom);
* marginals (the posterior summed over the other axis), their maximum (the paper's "predicted" value) and
  central 68% / 95% intervals from the marginal CDF, each grid point the centre of a cell of its spacing;
* mean, standard deviations and covariance; the figure of merit FoM = 1 / sqrt(det Cov);
* the highest-posterior-density level of a point (the mass of the grid points denser than it), whose
  uniformity over many maps is the 2D calibration test; the mass on the box's edge (a box too small) and
  the sigma in grid spacings (a grid too coarse).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RectBivariateSpline
from scipy.signal import fftconvolve
from scipy.stats import chi2

DCHI2 = {s: float(chi2.ppf(chi2.cdf(s ** 2, 1), 2)) for s in (1, 2, 3)}  # 2.2958, 6.1801, 11.8290
LEVELS = (0.68, 0.95)


def delta_chi2(neg_log_like: np.ndarray) -> np.ndarray:
    """−2Δln L = 2 (L − min L) of −ln L values (any shape)."""
    neg = np.asarray(neg_log_like, dtype=np.float64)
    return 2.0 * (neg - neg.min())


def probabilities(neg_log_like: np.ndarray) -> np.ndarray:
    """Normalised posterior p ∝ exp(−(L − min L)) on the grid (flat prior over the box)."""
    p = np.exp(-0.5 * delta_chi2(neg_log_like))
    return p / p.sum()


def marginal_interval(axis: np.ndarray, marginal: np.ndarray, level: float) -> tuple[float, float]:
    """Central ``level`` interval of a 1D marginal on grid ``axis``: the CDF of cells centred on the points,
    linear within each cell, inverted at (1 ∓ level)/2."""
    axis = np.asarray(axis, dtype=np.float64)
    edges = np.concatenate([[axis[0] - (axis[1] - axis[0]) / 2], (axis[1:] + axis[:-1]) / 2,
                            [axis[-1] + (axis[-1] - axis[-2]) / 2]])
    cdf = np.concatenate([[0.0], np.cumsum(marginal / marginal.sum())])
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.interp(q, cdf, edges)
    return float(max(lo, axis[0])), float(min(hi, axis[-1]))


def hpd_level(neg_log_like: np.ndarray, point_neg_log_like: float) -> float:
    """Posterior mass of the grid points denser than a point with −ln L = ``point_neg_log_like``."""
    p = probabilities(neg_log_like)
    return float(p[np.asarray(neg_log_like) < point_neg_log_like].sum())


def interpolate(axes: tuple[np.ndarray, np.ndarray], values: np.ndarray, point) -> float:
    """``values`` (n0, n1) on the grid ``axes`` at ``point`` (inside the box): a bicubic spline through the grid
    values (bilinear with fewer than 4 points along an axis; a linear interpolation of a convex −ln L would
    overstate it between points, and so every HPD level)."""
    k = [3 if len(a) >= 4 else 1 for a in axes]
    spline = RectBivariateSpline(axes[0], axes[1], np.asarray(values, dtype=np.float64), kx=k[0], ky=k[1])
    return float(spline(point[0], point[1])[0, 0])


@dataclass
class GridPosterior:
    """The posterior of one map on one grid: ``axes`` (two 1D arrays), ``neg`` (n0, n1) −ln L."""

    axes: tuple[np.ndarray, np.ndarray]
    neg: np.ndarray

    @property
    def p(self) -> np.ndarray:
        return probabilities(self.neg)

    def marginal(self, i: int) -> np.ndarray:
        return self.p.sum(axis=1 - i)

    def summary(self, truth=None) -> dict:
        """Mode, marginal maxima, mean, std, covariance, intervals, FoM, edge mass, resolution; and for a truth
        (2,): whether each interval holds it, its HPD level (1 outside the box) and its z-scores."""
        p = self.p
        a, b = np.meshgrid(*self.axes, indexing="ij")
        mean = np.array([(p * a).sum(), (p * b).sum()])
        da, db = a - mean[0], b - mean[1]
        cov = np.array([[(p * da * da).sum(), (p * da * db).sum()], [(p * da * db).sum(), (p * db * db).sum()]])
        spacing = np.array([ax[1] - ax[0] for ax in self.axes])
        cov = cov + np.diag(spacing ** 2 / 12)  # the cells' own width: never a zero-width posterior
        std = np.sqrt(np.diag(cov))
        mode = np.unravel_index(int(np.argmin(self.neg)), self.neg.shape)
        out = {"mode": [float(self.axes[i][mode[i]]) for i in range(2)],
               "marginal_max": [float(self.axes[i][int(np.argmax(self.marginal(i)))]) for i in range(2)],
               "mean": mean.tolist(), "std": std.tolist(), "cov": cov.tolist(),
               "fom": float(1.0 / np.sqrt(np.linalg.det(cov))),
               "edge_mass": float(p[0].sum() + p[-1].sum() + p[1:-1, 0].sum() + p[1:-1, -1].sum()),
               "sigma_in_spacings": (std / spacing).tolist()}
        for level in LEVELS:
            out[f"interval_{int(level * 100)}"] = [list(marginal_interval(self.axes[i], self.marginal(i), level))
                                                   for i in range(2)]
        if truth is not None and np.all(np.isfinite(truth)):
            inside = all(self.axes[i][0] <= truth[i] <= self.axes[i][-1] for i in range(2))
            out["truth"] = [float(v) for v in truth]
            for level in LEVELS:
                iv = out[f"interval_{int(level * 100)}"]
                out[f"covers_{int(level * 100)}"] = [bool(iv[i][0] <= truth[i] <= iv[i][1]) for i in range(2)]
            out["truth_in_box"] = bool(inside)  # outside: inside no credible region of the box (level 1)
            out["hpd_level"] = hpd_level(self.neg, interpolate(self.axes, self.neg, truth)) if inside else 1.0
            out["zscore"] = ((np.asarray(truth) - mean) / std).tolist()
        return out


def grid_posterior(theta: np.ndarray, terms: np.ndarray, n: tuple[int, int], select=()) -> GridPosterior:
    """The posterior of one map from its stored grid points (G, 2) and terms (G, K, D) [nats] on an n0 x n1 grid
    in C order: the terms ``select`` (all if empty) summed, each the mean over its D noise draws."""
    return _posterior(theta, np.asarray(terms).mean(-1), n, select)


def _posterior(theta, terms, n, select) -> GridPosterior:
    pts = np.asarray(theta).reshape(n[0], n[1], 2)
    neg = (terms[:, list(select)] if len(select) else terms).sum(1).reshape(n)
    return GridPosterior((pts[:, 0, 0], pts[0, :, 1]), neg)


def replica_cov(theta: np.ndarray, terms: np.ndarray, n: tuple[int, int], select=()) -> np.ndarray | None:
    """(2, 2) covariance of the location noise of the D-draw estimate: the D single-draw posteriors' means
    scatter by the noise of one draw, so their sample covariance / D is the averaged estimate's (None if D < 2)."""
    terms = np.asarray(terms)
    d = terms.shape[-1]
    if d < 2:
        return None
    means = np.array([_posterior(theta, terms[..., r], n, select).summary()["mean"] for r in range(d)])  # (D, 2)
    return np.cov(means, rowvar=False) / d


def smoothed(post: GridPosterior, cov: np.ndarray) -> GridPosterior:
    """The posterior convolved with N(0, cov) (the estimate's location noise added to its width), on the same
    grid; mass moved outside the box is dropped and the rest renormalised."""
    (a, b), p = post.axes, post.p
    h = np.array([a[1] - a[0], b[1] - b[0]])
    w, v = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    cov = (v * np.maximum(w, 1e-12 * h.min() ** 2)) @ v.T
    i, j = np.meshgrid(np.arange(-(len(a) - 1), len(a)) * h[0], np.arange(-(len(b) - 1), len(b)) * h[1],
                       indexing="ij")
    d = np.stack([i, j], -1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
    q = np.maximum(fftconvolve(p, kernel / kernel.sum(), mode="same"), 0.0)
    q = q / q.sum()
    return GridPosterior(post.axes, -np.log(np.maximum(q, 1e-300)))
