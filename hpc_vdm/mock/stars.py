"""A toy stellar model per galaxy-formation suite: excursion-set halo masses and a stellar-halo relation.

Per particle (on the Lagrangian lattice):

* M_h = the largest (2 pi)^{3/2} R^3 rho_m for which the linear field smoothed on R exceeds 1.686;
* M*_p = m_p Omega_m/(Omega_m - Omega_b) f*(M_h) 10^(s g - ln10 s^2 / 2), g a unit Gaussian field
  smoothed on 0.5 Mpc/h (correlated scatter of s dex);
* M*_p *= (1 + delta_E)^alpha, delta_E the final density smoothed on 0.15 Mpc/h, renormalised to keep
  the total (concentrates stars in dense cores).

f*(M) = 2 N / [(M/M1)^-beta + (M/M1)^gamma] (Moster-like). How N, M1, beta, gamma move with the four
feedback parameters is invented but qualitatively CAMELS-like (more feedback, fewer stars), and it
differs per suite so that cross-suite evaluation means something.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import camels
from . import mesh
from .pm import Particles

DELTA_C = 1.686
SMOOTHING_RADII_MPC_H = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
SCATTER_RADIUS_MPC_H = 0.5
CONCENTRATION_RADIUS_MPC_H = 0.15


@dataclass(frozen=True)
class StellarModel:
    """f*(M_h) of one suite at the fiducial point, and its feedback exponents."""

    norm: float           # N at the fiducial point
    log10_m1: float       # log10 M1 [Msun/h]
    beta: float           # low-mass slope
    gamma: float          # high-mass slope
    scatter_dex: float    # correlated log-normal scatter
    alpha: float          # concentration exponent on the final density
    sn1: tuple[float, float, float]   # d(log N), d(log M1), d(beta) per ln A_SN1
    agn1: tuple[float, float, float]  # d(log N), d(gamma), d(log M1) per ln A_AGN1
    sn2: tuple[float, float, float]   # as sn1, per ln A_SN2
    agn2: tuple[float, float, float]  # as agn1, per ln A_AGN2

    def shmr(self, m_halo: np.ndarray, omega_m: float, a_sn1: float, a_agn1: float, a_sn2: float,
             a_agn2: float) -> np.ndarray:
        """Stellar-to-halo mass ratio f*(M_h) at the given parameters (0 where M_h = 0)."""
        l1, la1, l2, la2 = np.log([a_sn1, a_agn1, a_sn2, a_agn2])
        f_b = camels.OMEGA_B / omega_m
        norm = self.norm * (f_b / 0.163) ** 0.5 * np.exp(self.sn1[0] * l1 + self.sn2[0] * l2
                                                         + self.agn1[0] * la1 + self.agn2[0] * la2)
        m1 = 10 ** self.log10_m1 * np.exp(self.sn1[1] * l1 + self.sn2[1] * l2 + self.agn1[2] * la1
                                          + self.agn2[2] * la2)
        beta = self.beta + self.sn1[2] * l1 + self.sn2[2] * l2
        gamma = self.gamma + self.agn1[1] * la1 + self.agn2[1] * la2
        x = np.where(m_halo > 0, m_halo / m1, 1.0)
        ratio = 2 * norm / (x ** (-beta) + x ** gamma)
        return np.where(m_halo > 0, ratio, 0.0)


SUITES = {
    # reference/mock_data.md's model: N = 0.05 (f_b/0.163)^0.5 A_SN1^-0.15 A_SN2^-0.25,
    # M1 = 10^11.45 A_SN1^0.25 A_SN2^0.6, beta = 1.3 + 0.15 ln A_SN2, gamma = 0.6 + 0.12 ln A_AGN1 + 0.2 ln A_AGN2
    "IllustrisTNG": StellarModel(norm=0.05, log10_m1=11.45, beta=1.3, gamma=0.6, scatter_dex=0.2, alpha=1.0,
                                 sn1=(-0.15, 0.25, 0.0), agn1=(0.0, 0.12, 0.0),
                                 sn2=(-0.25, 0.6, 0.15), agn2=(0.0, 0.2, 0.0)),
    # SIMBA-like: fewer stars overall, strong AGN-jet quenching of massive haloes, broader scatter.
    "SIMBA": StellarModel(norm=0.035, log10_m1=11.6, beta=1.1, gamma=0.45, scatter_dex=0.25, alpha=0.8,
                          sn1=(-0.1, 0.15, 0.0), agn1=(-0.05, 0.25, 0.1),
                          sn2=(-0.2, 0.4, 0.1), agn2=(-0.1, 0.3, 0.15)),
    # Astrid-like: more stars in small haloes (shallow low-mass slope), largest scatter in log Mstar.
    "Astrid": StellarModel(norm=0.07, log10_m1=11.3, beta=0.9, gamma=0.7, scatter_dex=0.3, alpha=1.2,
                           sn1=(-0.2, 0.3, 0.05), agn1=(0.0, 0.08, 0.0),
                           sn2=(-0.3, 0.5, 0.2), agn2=(0.0, 0.1, 0.0)),
}


def halo_mass(delta_lin: np.ndarray, box, omega_m: float) -> np.ndarray:
    """Excursion-set halo mass [Msun/h] per lattice site (0 where no smoothing scale collapses)."""
    shape = delta_lin.shape
    ks = mesh.wavevectors(shape, box)
    delta_k = mesh.rfftn(delta_lin)
    rho_m = omega_m * camels.RHO_CRIT
    m_halo = np.zeros(shape)
    for radius in SMOOTHING_RADII_MPC_H:  # ascending: larger collapsed scales overwrite smaller ones
        collapsed = mesh.irfftn(mesh.smooth_gaussian(delta_k, ks, radius), shape) > DELTA_C
        m_halo[collapsed] = (2 * np.pi) ** 1.5 * radius**3 * rho_m
    return m_halo


def stellar_masses(parts: Particles, params: np.ndarray, model: StellarModel, rng: np.random.Generator) -> np.ndarray:
    """(n,) stellar mass per particle [Msun/h] for the parameter row (Omega_m, sigma_8, A_SN1, A_AGN1, A_SN2, A_AGN2)."""
    omega_m, _, a_sn1, a_agn1, a_sn2, a_agn2 = (float(p) for p in params)
    shape, box = parts.shape, parts.box
    m_cdm = (omega_m - camels.OMEGA_B) * camels.RHO_CRIT * np.prod(box) / np.prod(shape)
    m_total = m_cdm * omega_m / (omega_m - camels.OMEGA_B)

    m_halo = halo_mass(parts.delta_lin, box, omega_m).ravel()
    ks = mesh.wavevectors(shape, box)
    g = mesh.irfftn(mesh.smooth_gaussian(mesh.rfftn(rng.standard_normal(shape)), ks, SCATTER_RADIUS_MPC_H), shape)
    g = (g / g.std()).ravel()
    s = model.scatter_dex
    mstar = m_total * model.shmr(m_halo, omega_m, a_sn1, a_agn1, a_sn2, a_agn2) * 10 ** (s * g - 0.5 * np.log(10) * s**2)

    dens = mesh.irfftn(mesh.smooth_gaussian(mesh.rfftn(parts.density), ks, CONCENTRATION_RADIUS_MPC_H), shape)
    boost = np.clip(mesh.cic_readout(dens, parts.pos / parts.cell), 1e-3, None) ** model.alpha
    total = mstar.sum()
    mstar *= boost
    if total > 0:
        mstar *= total / mstar.sum()
    return mstar
