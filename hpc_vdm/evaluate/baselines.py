"""The honest baselines a map model is read against, scored exactly like its draws (:mod:`hpc_vdm.spectra.scores`).

* **the condition itself** (:func:`hpc_vdm.evaluate.analysis.analyse`'s ``condition`` row): r(k) of the
  stellar map against the dark matter — what the input already says;
* **a linear transfer function**: per k bin, T(k) = ⟨P_×(truth, condition)⟩ / ⟨P(condition)⟩ over the
  training maps, separately in each space (overdensity, log fluctuation), applied to a held-out condition
  map: the best linear, isotropic, scale-by-scale estimate of the truth from the condition;
* **other trained models** (``evaluate.baselines``: name -> exported model; e.g. the deterministic
  ``regressor`` family trained with the VDM's budget): their draw (one, for a deterministic model) of the
  same held-out maps.
"""
from __future__ import annotations

import numpy as np

from ..data.dataset import held_out_maps
from ..data.store import read_maps
from ..spectra.scores import SPACES, mean_of, space_scores
from .significance import PER_MAP

LINEAR = "linear transfer"  # the baseline's name in metrics.json and the report
FIT_MAPS = 120  # training maps the transfer function is averaged over (spread over the training simulations)


def _fourier_bins(n: int) -> np.ndarray:
    """(n, n//2 + 1) floor(|k|/k_F) of the rfft2 half-plane: the spectra module's binning."""
    kx = np.fft.fftfreq(n, d=1.0 / n)
    ky = np.fft.rfftfreq(n, d=1.0 / n)
    return np.floor(np.sqrt(kx[:, None] ** 2 + ky[None, :] ** 2)).astype(np.int64)


def fit_transfer(root, attrs: dict, condition: str, target: str, path: str, offset: float = 0.0) -> dict[str, np.ndarray]:
    """{space: T per integer |k|/k_F bin} from up to ``FIT_MAPS`` training maps of a maps store (the log space
    of the target: log10(x + ``offset``))."""
    maps = held_out_maps(attrs, "train", FIT_MAPS)
    cond = read_maps(root, condition, maps, path).astype(np.float64)
    truth = read_maps(root, target, maps, path).astype(np.float64)
    n, box = truth.shape[-1], attrs["box_size_mpc_h"]
    bins = _fourier_bins(n).ravel()
    out = {}
    for space in ("overdensity", "log"):
        f = SPACES[space]
        cross, auto = np.zeros(bins.max() + 1), np.zeros(bins.max() + 1)
        for c, t in zip(cond, truth):
            fc = np.fft.rfft2(f(c + (1e-30 if space == "overdensity" else 1.0)))
            ft = np.fft.rfft2(f(t + (offset if space == "log" else 0.0)))
            cross += np.bincount(bins, (ft * fc.conj()).real.ravel(), minlength=cross.size)
            auto += np.bincount(bins, (np.abs(fc) ** 2).ravel(), minlength=auto.size)
        out[space] = np.divide(cross, auto, out=np.zeros_like(cross), where=auto > 0)
    out["box_size_mpc_h"], out["offset"] = np.asarray(box), np.asarray(offset)
    return out


def apply_transfer(transfer: dict, cond: np.ndarray, space: str) -> np.ndarray:
    """A physical-like map whose ``space`` field is T applied to the condition's: 1 + δ̂ (overdensity) or
    10^l̂ (log), so that :func:`~hpc_vdm.spectra.scores.space_scores` scores the estimate itself."""
    n = cond.shape[-1]
    f = SPACES[space](cond + (1e-30 if space == "overdensity" else 1.0))
    est = np.fft.irfft2(np.fft.rfft2(f) * transfer[space][_fourier_bins(n)], s=(n, n))
    est -= est.mean()
    return 1.0 + est if space == "overdensity" else 10.0 ** est - float(transfer.get("offset", 0.0))


def linear_scores(transfer: dict, truth: np.ndarray, cond: np.ndarray, box_mpc_h: float) -> dict:
    """Band scores (both spaces) of the linear transfer estimate, averaged over maps (n, N, N)."""
    offset = float(transfer.get("offset", 0.0))
    return mean_of([{space: space_scores(t, apply_transfer(transfer, c, space), box_mpc_h, space, offset)
                           for space in ("overdensity", "log")} for t, c in zip(truth, cond)],
                   PER_MAP)


def condition_scores(truth: np.ndarray, cond: np.ndarray, box_mpc_h: float, offset: float = 0.0) -> dict:
    """Band scores of the condition map itself as an estimate of the truth: its overdensity, and in log space
    log10(1 + condition) (the offset the models' normalisation uses, so empty pixels stay finite)."""
    per_map = [{"overdensity": space_scores(t, c + 1e-30, box_mpc_h, "overdensity"),
                "log": space_scores(t, c + 1.0 - offset, box_mpc_h, "log", offset)} for t, c in zip(truth, cond)]
    return mean_of(per_map, PER_MAP)
