"""The mock against CMD: the pixel statistics of the real CAMELS LH maps and the mock's, measured the same way.

The four statistics are the normalisation constants of the papers' public code
(../shared/reference/seed_code.md section 6): log10(Mcdm) mean and std, log10(1 + Mstar) mean and std,
pooled over every pixel of every map of an LH set. The tests and ``tools/bench_mock.py`` both use
:func:`pixel_statistics`.
"""
from __future__ import annotations

import functools

import numpy as np

from ..config import MockConfig
from . import simulate, stars

# CMD LH maps: log10(Mcdm) mean, std; log10(1 + Mstar) mean, std
CMD = {"IllustrisTNG": (10.983874, 0.508252, 0.120691, 1.084848),
       "Astrid": (10.980798, 0.508634, 0.251111, 1.500970),
       "SIMBA": (10.984281, 0.508499, 0.154420, 1.228990)}
NAMES = ("log10_Mcdm_mean", "log10_Mcdm_std", "log10_1p_Mstar_mean", "log10_1p_Mstar_std")
CMD_NGB = 64          # neighbours of CMD's SubfindHsml radii, of CAMELS' 256^3 particles per 25 Mpc/h
CMD_PARTICLES = 256


def cmd_n_ngb(particles: int, upsample: int = 1) -> float:
    """``mock.n_ngb`` whose kernels are CMD's: as many of the mock's (sub-)particles as hold the mass
    of 64 CAMELS particles, 64 (particles * upsample / 256)^3 (8 at 128^3, 64 at 256^3); at least 1
    (below 64^3 one particle outweighs CMD's 64 neighbours, and the kernel is wider than CMD's)."""
    return max(1.0, CMD_NGB * (particles * upsample / CMD_PARTICLES) ** 3)


def pixel_values(cfg: MockConfig, suites):
    """A measure for :func:`simulate.over_simulations`: per suite, log10(Mcdm) and log10(1 + Mstar) of every
    pixel of one simulation's maps (each suite observes the same gravity run, as in CAMELS)."""
    return functools.partial(_pixel_values, cfg, tuple(suites))


def _pixel_values(cfg: MockConfig, suites, sim, row, seed, parts, groups) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for suite in suites:
        maps = simulate.observe(parts, groups, row, cfg, stars.SUITES[suite], seed)
        out[suite] = (np.log10(maps["Mcdm"].astype(np.float64)).ravel(),
                      np.log10(1.0 + maps["Mstar"].astype(np.float64)).ravel())
    return out


def pixel_summary(per_sim: list[dict]) -> dict[str, tuple[np.ndarray, float]]:
    """Per suite: the four statistics (4,) pooled over the simulations of :func:`pixel_values`, and the
    fraction of non-zero stellar pixels."""
    out = {}
    for s in per_sim[0]:
        xs, ys = (np.concatenate([sim[s][j] for sim in per_sim]) for j in (0, 1))
        out[s] = np.array([xs.mean(), xs.std(), ys.mean(), ys.std()]), float((ys > 0).mean())
    return out


def pixel_statistics(cfg: MockConfig, suites, n_sims: int) -> dict[str, tuple[np.ndarray, float]]:
    """:func:`pixel_summary` of every map of the first ``n_sims`` simulations of the LH set of ``cfg``."""
    return pixel_summary(simulate.over_simulations(cfg, n_sims, pixel_values(cfg, suites))[0])
