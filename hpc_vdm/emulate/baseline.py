"""The baseline to beat: parameters from the P(k) of the same maps, with a Gaussian likelihood.

The summary of a map is the P(k) of its log field, log10 m minus its mean (the paper's statistic; that of the
overdensity δ = m/m̄ − 1 is dominated by the few densest halos of a slab: ln P scatters by ~0.6 between CV maps),
bins up to k_Nyq (:func:`hpc_vdm.spectra.scores.overdensity_spectra`) averaged in ``n_bins`` bands of log-spaced
bin index, as ln P, and — since the spectrum drops it — the map's mean log10 level, which the field-level
likelihood sees (``with_mean``). Its mean μ(θ) is a cubic
polynomial in the two prior-normalised parameters fitted by least squares to every training map of the
store; its covariance C is that of the CV set's maps (cosmic variance at the fiducial point), inverted with
the Hartlap factor (n − p − 2)/(n − 1). Then −ln L(θ) = ½ (d − μ(θ))ᵀ C⁻¹ (d − μ(θ)), evaluated on a dense
grid over the prior and summarised like the bound's grid (:mod:`.posterior`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import camels
from ..data.store import read_maps
from ..inference.maps import open_for
from ..spectra.scores import overdensity_spectra
from .grid import Box, prior_of
from .posterior import GridPosterior

DEGREE = 3
SPACE = "log"  # P(k) of log10 m minus its mean: the emulator's statistic (that of δ is dominated by a few halos)


def band_index(n_k: int, n_bins: int) -> np.ndarray:
    """(n_bins' + 1,) edges in k-bin index, log-spaced, every band non-empty (n_bins' <= n_bins)."""
    return np.unique(np.round(np.geomspace(1, n_k + 1, n_bins + 1)).astype(int)) - 1


def summaries(maps: np.ndarray, box_mpc_h: float, n_bins: int, *, with_mean: bool = True,
              space: str = SPACE) -> np.ndarray:
    """(n, [1 +] bands) summaries of physical maps (n, H, W): [mean log10 m,] ln of band-averaged P(k)."""
    maps = np.asarray(maps, dtype=np.float64)
    _, power = overdensity_spectra(maps, box_mpc_h, space)                               # (n, nk)
    edges = band_index(power.shape[1], n_bins)
    bands = np.stack([power[:, a:b].mean(1) for a, b in zip(edges[:-1], edges[1:])], 1)  # (n, bands)
    out = np.log(bands)
    if with_mean:
        level = np.log10(np.maximum(maps, np.finfo(np.float64).tiny)).mean(axis=(1, 2))
        out = np.concatenate([level[:, None], out], 1)
    return out


def design(u: np.ndarray) -> np.ndarray:
    """(n, terms) monomials of two prior-normalised parameters u (n, 2) up to :data:`DEGREE`."""
    a, b = np.asarray(u, dtype=np.float64).T
    return np.stack([a ** i * b ** (d - i) for d in range(DEGREE + 1) for i in range(d + 1)], 1)


@dataclass
class PkBaseline:
    """μ(θ) = design(u(θ)) @ coef and the Hartlap-corrected precision of the CV summaries."""

    coef: np.ndarray         # (terms, m)
    precision: np.ndarray    # (m, m)
    lo: np.ndarray           # (2,) prior box of the two parameters
    hi: np.ndarray
    residual_rms: np.ndarray  # (m,) of the fit over the training maps, in units of the CV std

    def unit(self, theta: np.ndarray) -> np.ndarray:
        return (np.asarray(theta, dtype=np.float64) - self.lo) / (self.hi - self.lo)

    def mean(self, theta: np.ndarray) -> np.ndarray:
        return design(self.unit(theta)) @ self.coef                                     # (G, m)

    def neg_log_like(self, d: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(G,) ½ (d − μ)ᵀ C⁻¹ (d − μ) of one summary d (m,) at grid points theta (G, 2)."""
        r = np.asarray(d)[None] - self.mean(theta)
        return 0.5 * np.einsum("gi,ij,gj->g", r, self.precision, r)


def fit(train: np.ndarray, train_theta: np.ndarray, cv: np.ndarray, lo, hi) -> PkBaseline:
    """The baseline from training summaries (n, m) at their parameters (n, 2) and CV summaries (M, m)."""
    n_cv, m = cv.shape
    if n_cv <= m + 2:
        raise ValueError(f"the P(k) baseline's covariance needs more CV maps than summaries + 2: {n_cv} maps for "
                         f"{m} summaries; use a larger CV set or fewer infer.baseline_bins")
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    x = design((np.asarray(train_theta, dtype=np.float64) - lo) / (hi - lo))
    if len(train) < 2 * x.shape[1]:
        raise ValueError(f"the P(k) baseline's cubic mean needs at least {2 * x.shape[1]} training maps, got "
                         f"{len(train)}")
    coef, *_ = np.linalg.lstsq(x, train, rcond=None)
    cov = np.cov(cv, rowvar=False)
    precision = (n_cv - m - 2) / (n_cv - 1) * np.linalg.inv(cov)
    rms = np.sqrt(np.mean((train - x @ coef) ** 2, axis=0)) / np.sqrt(np.diag(cov))
    return PkBaseline(coef, precision, lo, hi, rms)


def run(bundle, names: list[str], maps_physical: np.ndarray, truths: np.ndarray, cv_store: str, n_bins: int, *,
        with_mean: bool = True, n_grid: int = 200) -> tuple[list, "PkBaseline"]:
    """Posteriors of the baseline for maps (n, H, W) physical: fitted on the training maps of the model's store,
    covariance from ``cv_store``, on an ``n_grid``² grid over the prior; [GridPosterior], the fitted baseline."""
    target, box_mpc_h = bundle.norm.target, float(bundle.store["box_size_mpc_h"])
    cols = [camels.PARAM_NAMES.index(n) for n in names]
    train_path = bundle.config.data.store
    root, attrs = open_for(bundle, train_path, "training store")
    per_sim = int(attrs["maps_per_sim"])
    sims = [int(s) for s in attrs["splits"]["train"]]
    train_maps = [s * per_sim + j for s in sims for j in range(per_sim)]
    train = summaries(read_maps(root, target, train_maps, train_path), box_mpc_h, n_bins, with_mean=with_mean)
    theta = np.asarray(root["params"][:], np.float64)[[m // per_sim for m in train_maps]][:, cols]
    cv_root, _ = open_for(bundle, cv_store, "CV store")
    cv_maps = read_maps(cv_root, target, range(cv_root[target].shape[0]), cv_store)
    lo, hi = prior_of(names)
    model = fit(train, theta, summaries(cv_maps, box_mpc_h, n_bins, with_mean=with_mean), lo, hi)
    box = Box(lo, hi, (n_grid, n_grid))
    pts, axes = box.points(), box.axes()
    data = summaries(maps_physical, box_mpc_h, n_bins, with_mean=with_mean)
    return [GridPosterior(axes, model.neg_log_like(d, pts).reshape(n_grid, n_grid)) for d in data], model
