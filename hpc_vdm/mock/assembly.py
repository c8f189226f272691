"""Assembly bias of the mock's galaxies: halo properties besides mass, at fixed mass, and the shuffle test.

Two secondary properties of every FoF halo, measured on the particles:

* **environment** ``1 + delta_R``: the PM density smoothed by a Gaussian of R = ``ENV_RADIUS_MPC_H`` at the
  halo's centre (for a fill-in halo, at its anchor particle);
* **concentration** ``ln(r_200c / r_1/2)``: r_1/2 the median distance of the members from the centre
  (concentrated halos formed early). Fill-in halos have no members: their score is drawn at random.

Each becomes a *normal score at fixed mass* (:func:`normal_scores`): its rank among the halos of the same
0.1 dex bin of mass (``MASS_BIN_DEX``), mapped to a standard normal (a halo alone in its bin scores 0).
FoF groups and fill-in halos are ranked and shuffled apart: they are two halo populations of the mock.

The suite's :class:`~hpc_vdm.mock.stars.StellarModel` turns the scores z_c, z_e into

    log10 M*_cen = log10(M f*(M)) + s [rho_c z_c + rho_e(M) z_e + sqrt(1 - var(rho_c z_c + rho_e z_e)) g]
    <N_sat> = <N_sat(M)> max(1 + gamma_e z_e, 0)

with g ~ N(0, 1): at fixed mass the mean log M* and the scatter s stay those of the stellar-halo relation
(:func:`central_scatter`), the feedback responses of f* are untouched.

:mod:`hpc_vdm.mock.shuffle` measures the effect as the literature does (the shuffle test).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from . import mesh

ENV_RADIUS_MPC_H = 3.0   # Gaussian smoothing of the environment (Yang et al. 2025 use 5 Mpc/h in 205 Mpc/h)
MASS_BIN_DEX = 0.1       # width of the bins of log10 M in which properties are ranked and galaxies shuffled


@dataclass
class Scores:
    """Normal scores at fixed mass (z ~ N(0, 1) per mass bin) of the FoF groups and the fill-in halos."""

    conc: np.ndarray          # (g,) concentration of each FoF group
    env: np.ndarray           # (g,) environment of each FoF group
    conc_fill: np.ndarray     # (u,) fill-in halos: random (no members to measure)
    env_fill: np.ndarray      # (u,) environment of each fill-in halo


def mass_bins(mass: np.ndarray, dex: float = MASS_BIN_DEX) -> np.ndarray:
    """(n,) integer bin of log10 M in bins of ``dex`` (bin b holds [b dex, (b + 1) dex))."""
    return np.floor(np.log10(np.maximum(mass, 1.0)) / dex + 1e-9).astype(np.int64)


def normal_scores(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(n,) z = Phi^-1((rank + 1/2) / count): the rank of each value among those of its bin (ties by index)."""
    n = values.size
    order = np.lexsort((np.arange(n), values, bins))   # by bin, then value, then index
    b = bins[order]
    first = np.searchsorted(b, b, side="left")
    count = np.searchsorted(b, b, side="right") - first
    z = np.empty(n)
    z[order] = ndtri((np.arange(n) - first + 0.5) / np.maximum(count, 1))
    return z


def smoothed_density(density: np.ndarray, box, radius_mpc_h: float = ENV_RADIUS_MPC_H) -> np.ndarray:
    """(*shape) 1 + delta of the mesh ``density`` (*shape) smoothed by a Gaussian of ``radius_mpc_h``."""
    ks = mesh.wavevectors(density.shape, tuple(box))
    return mesh.irfftn(mesh.smooth_gaussian(mesh.rfftn(density), ks, radius_mpc_h), density.shape)


def environment(smoothed: np.ndarray, pos: np.ndarray, box) -> np.ndarray:
    """(m,) the smoothed 1 + delta (*shape) at points pos (m, 3) [Mpc/h]."""
    cell = np.asarray(box, dtype=np.float64) / np.asarray(smoothed.shape)
    return mesh.cic_readout(smoothed, pos / cell)


def half_mass_radius(pos: np.ndarray, centre: np.ndarray, order: np.ndarray, starts: np.ndarray, box) -> np.ndarray:
    """(g,) median distance [Mpc/h] of each group's members from its centre particle.

    pos (n, 3) [Mpc/h]; centre (g,) particle indices; order (m,) members sorted by group with each group's
    start in starts (g + 1,) (:func:`hpc_vdm.mock.galaxies.members`)."""
    box = np.asarray(box, dtype=np.float64)
    group = np.repeat(np.arange(starts.size - 1), np.diff(starts))   # (m,)
    d = pos[order] - pos[centre[group]]
    d -= box * np.rint(d / box)                                       # minimum image
    r = np.sqrt((d * d).sum(axis=1))
    by_radius = np.lexsort((r, group))                               # by group, nearest first
    return r[by_radius[starts[:-1] + (np.diff(starts) - 1) // 2]]


def scores(conc: np.ndarray, env: np.ndarray, mass: np.ndarray, env_fill: np.ndarray, mass_fill: np.ndarray,
           rng: np.random.Generator) -> Scores:
    """Normal scores at fixed mass of the raw properties: conc, env, mass (g,) of the FoF groups, env_fill
    and mass_fill (u,) of the fill-in halos (whose concentration is drawn: N(0, 1))."""
    groups, fills = mass_bins(mass), mass_bins(mass_fill)
    return Scores(conc=normal_scores(conc, groups), env=normal_scores(env, groups),
                  conc_fill=rng.standard_normal(mass_fill.size), env_fill=normal_scores(env_fill, fills))


def central_scatter(z_conc: np.ndarray, z_env: np.ndarray, rho_conc: float, rho_env: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """(n,) unit-variance deviates rho_c z_c + rho_e z_e + sqrt(1 - var(signal)) g, g ~ N(0, 1): the
    standardised scatter of log M* at fixed mass. rho_env is a scalar or (n,); var is the sample's own."""
    signal = rho_conc * z_conc + rho_env * z_env
    var = float(np.mean(signal**2)) if signal.size else 0.0
    if var > 1.0:
        raise ValueError(f"secondary correlations too strong: the signal's variance is {var:.3f} > 1")
    return signal + np.sqrt(1.0 - var) * rng.standard_normal(signal.size)


def env_corr(log10_mass: np.ndarray, low: float, high: float, lo_dex: float = 11.5, hi_dex: float = 12.5) -> np.ndarray:
    """(n,) the environment's correlation rho_e(M): ``low`` below 10^lo_dex, ``high`` above 10^hi_dex,
    linear in log10 M between."""
    t = np.clip((log10_mass - lo_dex) / (hi_dex - lo_dex), 0.0, 1.0)
    return low + (high - low) * t
