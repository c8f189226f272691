"""Galaxies on friends-of-friends halos: centrals, Poisson satellites on substructure and star particles.

For every FoF group (:mod:`hpc_vdm.mock.fof`, >= 20 particles) of mass M = n m_p:

* a **central** of stellar mass M f*(M) 10^(s d) on the group's densest particle, d a unit-variance
  deviate that carries the halo's **assembly bias** (:mod:`hpc_vdm.mock.assembly`): correlated with the
  halo's concentration and environment at fixed mass, by the suite's strengths (plain N(0, 1) with the
  suite's ``secondary`` switch off);
* **satellites**: subhalos of infall mass m = x M with dN/dln x = A (1 + gamma_e z_e) x^-0.9 on
  [m_sub_min / M, 0.1] (Poisson number, the subhalo mass function of Giocoli et al. 2008 in shape, more
  of them in dense environments), each with stellar mass m f*(m) 10^(s g), on the halo's **substructure**
  (:mod:`hpc_vdm.mock.substructure`: the most massive on the largest sub-clump, and so on; those beyond
  its clumps on random member particles);
* a diffuse **stellar halo**: a fraction of the central's stars on random member particles;
* halos the FoF misses (below 20 particles, and the deficit of the PM's too-diffuse small halos up to
  400 particles) are topped up to the mass function (Watson et al. 2013, colossus) down to
  ``m_sub_min``, on ungrouped particles drawn with probability ~ (1 + delta)^FILL_BIAS, with centrals
  only (their deviate d carries the environment of their particle): the galaxy population, hence the
  maps' statistics, then depends little on the particle count.

f* is the suite's stellar-to-halo mass relation :meth:`hpc_vdm.mock.stars.StellarModel.shmr`, with its
response to the four feedback parameters. Stellar mass is then *resolved* into star particles of mass
``m_star_particle`` (CAMELS' baryon resolution, 1.27e7 M_sun/h): a galaxy gets Poisson(M* / m_sp)
particles, so dwarfs are mostly dark and every painted galaxy is a compact object, as in CMD's maps.
Star particles sit on the galaxy's anchor particle: at 98 kpc/h pixels a galaxy (r_1/2 of a few kpc/h)
is a point, spread over <= 4 pixels by the CIC painter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import camels
from . import substructure
from .assembly import Scores
from .substructure import Clumps

SUB_SLOPE = 0.9          # dN/dln x ~ x^-0.9
SUB_X_MAX = 0.1          # the most massive subhalo, as a fraction of its host
DELTA_200C = 200.0
# Fill-in halos sit on ungrouped particles with probability ~ (1 + delta)^FILL_BIAS (delta on the PM mesh).
# Such halos (1e9-1e10.5 M_sun/h) cluster less than the matter (linear bias ~0.6, Tinker et al. 2010),
# and the exponent sets how many land on pixels a resolved galaxy already lights, which is what made the
# maps depend on the particle count: with 1, Astrid's stellar mean was 9 points (of CMD's value) higher
# at 256^3 than at 128^3 on the same 8 cosmologies; with 0.3, 0.6 points on 20
# (docs/results/mock/README.md; fill_anchor_check.py there scans the exponent).
FILL_BIAS = 0.3


@dataclass
class Catalogue:
    """Halos (FoF groups) and galaxies (subhalos) of one simulation, CAMELS/Subfind-like.

    Positions [Mpc/h] in [0, box), masses [M_sun/h] (total matter). Subhalos are ordered by group,
    each group's central first (so ``group_first_sub`` and ``group_n_subs`` index them, as in Subfind).
    """

    group_pos: np.ndarray         # (g, 3) position of the central (densest member particle)
    group_mass: np.ndarray        # (g,) FoF mass n m_p
    group_len: np.ndarray         # (g,) member particles
    group_r200c: np.ndarray       # (g,) radius enclosing 200 rho_crit at mass group_mass
    group_first_sub: np.ndarray   # (g,) index of the central subhalo
    group_n_subs: np.ndarray      # (g,) subhalos (central + satellites)
    sub_pos: np.ndarray           # (s, 3)
    sub_mass: np.ndarray          # (s,) halo mass of a central; infall mass of a satellite
    sub_mstar: np.ndarray         # (s,) resolved stellar mass n_star m_sp (0: dark)
    sub_group: np.ndarray         # (s,) host group
    sub_central: np.ndarray       # (s,) True for centrals
    sub_anchor: np.ndarray        # (s,) index of the particle the galaxy sits on
    group_env: np.ndarray         # (g,) environment: smoothed 1 + delta at the centre (assembly.ENV_RADIUS_MPC_H)
    group_conc: np.ndarray        # (g,) concentration proxy ln(r_200c / r_1/2), r_1/2 the members' median radius

    @property
    def n_groups(self) -> int:
        return self.group_mass.size


def r200c(mass_msun_h: np.ndarray) -> np.ndarray:
    """Radius [Mpc/h] of a sphere of mean density 200 rho_crit holding ``mass``."""
    return (3.0 * mass_msun_h / (4.0 * np.pi * DELTA_200C * camels.RHO_CRIT)) ** (1.0 / 3.0)


def members(labels: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Particle indices sorted by group (order (m,)) and each group's start in it (starts (g + 1,))."""
    grouped = np.flatnonzero(labels >= 0)
    order = grouped[np.argsort(labels[grouped], kind="stable")]
    starts = np.searchsorted(labels[order], np.arange(n_groups + 1))
    return order, starts


def densest_members(order: np.ndarray, starts: np.ndarray, density: np.ndarray) -> np.ndarray:
    """(g,) the particle of highest density in each group (ties: the first in ``order``)."""
    group = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    best = np.lexsort((-density[order], group))  # by group, densest first
    return order[best[starts[:-1]]]


def _subhalo_masses(host_mass: np.ndarray, amplitude: np.ndarray, m_min: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Poisson satellites: host index (k,) and infall mass (k,) drawn from dN/dln x = A x^-a (A scalar or
    one per host (g,))."""
    a = SUB_SLOPE
    x_min = np.minimum(m_min / host_mass, SUB_X_MAX)
    mean = amplitude / a * (x_min**-a - SUB_X_MAX**-a)
    n_sat = rng.poisson(mean)
    host = np.repeat(np.arange(host_mass.size), n_sat)
    u = rng.random(host.size)
    lo = x_min[host] ** -a
    x = (lo - u * (lo - SUB_X_MAX**-a)) ** (-1.0 / a)
    return host, x * host_mass[host]


def unresolved_halos(hmf, m_lo: float, m_hi: float, volume: float, labels: np.ndarray, density: np.ndarray,
                     rng: np.random.Generator, fof_masses: np.ndarray = np.zeros(0),
                     n_bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Halos the FoF misses below ``m_hi`` (the completeness mass): per log-mass bin on [m_lo, m_hi), the mass
    function ``hmf`` (dn/dln M) times ``volume`` less the FoF groups found there (``fof_masses``), as a
    Poisson number of halos with masses (u,) log-uniform in the bin, on ungrouped particles drawn with
    probability ~ density^FILL_BIAS (density (n,) 1 + delta at the particles): anchors (u,)."""
    if not m_hi > m_lo:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    edges = np.linspace(np.log(m_lo), np.log(m_hi), n_bins + 1)
    fine = np.linspace(edges[0], edges[-1], 8 * n_bins + 1)
    dn = hmf(np.exp(fine)) * volume
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dn[1:] + dn[:-1]) * np.diff(fine))])[::8]  # (n_bins + 1,)
    found = np.histogram(np.log(fof_masses), edges)[0] if fof_masses.size else np.zeros(n_bins)
    n = rng.poisson(np.maximum(np.diff(cum) - found, 0.0))
    lo = np.repeat(edges[:-1], n)
    masses = np.exp(lo + rng.random(lo.size) * (edges[1] - edges[0]))
    free = np.flatnonzero(labels < 0)
    weight = density[free] ** FILL_BIAS
    weight /= weight.sum()
    return masses, free[rng.choice(free.size, size=masses.size, p=weight)] if masses.size else np.zeros(0, np.int64)




@dataclass
class Halos:
    """The halos of one simulation as :func:`populate` needs them (:func:`hpc_vdm.mock.stars.halos_of`)."""

    labels: np.ndarray       # (n,) FoF group of every particle (-1: none)
    sizes: np.ndarray        # (g,) members per group
    order: np.ndarray        # (m,) grouped particles, by group (:func:`members`)
    starts: np.ndarray       # (g + 1,) each group's start in ``order``
    centre: np.ndarray       # (g,) each group's densest member
    fill_mass: np.ndarray    # (u,) fill-in halos (:func:`unresolved_halos`): masses [M_sun/h]
    fill_anchor: np.ndarray  # (u,) and their particles
    env: np.ndarray          # (g,) environment of each group (Catalogue.group_env)
    conc: np.ndarray         # (g,) concentration proxy of each group (Catalogue.group_conc)
    scores: Scores           # the secondary properties' normal scores at fixed mass
    clumps: Clumps           # the groups' sub-clumps


def _random_members(h: Halos, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(k,) a random member particle of each group in ``group`` (k,)."""
    return h.order[h.starts[group] + np.floor(rng.random(group.size) * h.sizes[group]).astype(np.int64)]


def _stellar_mass(mstar: np.ndarray, sub_group: np.ndarray, h: Halos, halo_mstar: np.ndarray, n_part: int,
                  m_sp: float, rng: np.random.Generator, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resolved stellar masses (s,) of the subhalos (``mstar`` (s,) their target masses) and the stellar
    mass per particle (n,), with each group's stellar halo (``halo_mstar`` (g,)) on random members."""
    sub_mstar = rng.poisson(mstar / m_sp) * m_sp
    per_particle = np.bincount(anchor, weights=sub_mstar, minlength=n_part)
    n_halo = rng.poisson(halo_mstar / m_sp)
    per_particle += np.bincount(_random_members(h, np.repeat(np.arange(n_halo.size), n_halo), rng),
                                minlength=n_part) * m_sp
    first = np.searchsorted(sub_group[:np.count_nonzero(sub_group >= 0)], np.arange(n_halo.size))
    sub_mstar[first] += n_halo * m_sp  # a central's stars include its stellar halo, as in Subfind
    return sub_mstar, per_particle


def populate(pos: np.ndarray, h: Halos, m_particle: float, params, model, rng: np.random.Generator
             ) -> tuple[Catalogue, np.ndarray]:
    """Galaxies of one simulation: the catalogue and the stellar mass per particle (n,) [M_sun/h].

    pos (n, 3) [Mpc/h]; ``h`` the halos (FoF groups, fill-in halos, their secondary properties and
    sub-clumps); m_particle [M_sun/h] (total matter); params the row (Omega_m, sigma_8, A_SN1, A_AGN1,
    A_SN2, A_AGN2); model a ``StellarModel``. The fill-in halos are listed after all groups' subhalos,
    with group -1.
    """
    omega_m, _, a_sn1, a_agn1, a_sn2, a_agn2 = (float(p) for p in params)
    n_groups, m_un = h.sizes.size, h.fill_mass
    mass = h.sizes * m_particle
    shmr = lambda m: model.shmr(m, omega_m, a_sn1, a_agn1, a_sn2, a_agn2)  # noqa: E731
    s = model.scatter_dex

    dev_cen, dev_un, sat_boost = model.deviates(h.scores, mass, m_un, rng)
    mstar_cen = mass * shmr(mass) * 10 ** (s * dev_cen)
    host, m_sat = _subhalo_masses(mass, model.sat_amplitude * sat_boost, model.m_sub_min, rng)
    mstar_sat = m_sat * shmr(m_sat) * 10 ** (s * rng.standard_normal(host.size))
    sat_anchor = substructure.satellite_anchors(h.clumps, host, m_sat, h.order, h.starts, rng)
    mstar_un = m_un * shmr(m_un) * 10 ** (s * dev_un)

    # subhalos by group, central first; then the unresolved halos (group -1)
    sub_group = np.concatenate([np.arange(n_groups), host])
    sub_central = np.concatenate([np.ones(n_groups, bool), np.zeros(host.size, bool)])
    rank = np.lexsort((~sub_central, sub_group))
    sub_group = np.concatenate([sub_group[rank], np.full(m_un.size, -1)])
    sub_central = np.concatenate([sub_central[rank], np.ones(m_un.size, bool)])
    sub_mass = np.concatenate([np.concatenate([mass, m_sat])[rank], m_un])
    sub_anchor = np.concatenate([np.concatenate([h.centre, sat_anchor])[rank], h.fill_anchor]).astype(np.int64)
    mstar = np.concatenate([np.concatenate([mstar_cen * (1.0 - model.halo_fraction), mstar_sat])[rank], mstar_un])
    sub_mstar, per_particle = _stellar_mass(mstar, sub_group, h, mstar_cen * model.halo_fraction, pos.shape[0],
                                            model.star_particle_mass, rng, sub_anchor)

    cat = Catalogue(group_pos=pos[h.centre], group_mass=mass, group_len=h.sizes.astype(np.int64),
                    group_r200c=r200c(mass), group_first_sub=np.searchsorted(sub_group[sub_group >= 0],
                                                                             np.arange(n_groups)),
                    group_n_subs=np.bincount(sub_group[sub_group >= 0], minlength=n_groups), sub_pos=pos[sub_anchor],
                    sub_mass=sub_mass, sub_mstar=sub_mstar, sub_group=sub_group, sub_central=sub_central,
                    sub_anchor=sub_anchor, group_env=h.env, group_conc=h.conc)
    return cat, per_particle
