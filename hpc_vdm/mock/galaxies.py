"""Galaxies on friends-of-friends halos: centrals, Poisson satellites and resolved star particles.

For every FoF group (:mod:`hpc_vdm.mock.fof`, >= 20 particles) of mass M = n m_p:

* a **central** of stellar mass M f*(M) 10^(s g), g ~ N(0, 1), on the group's densest particle;
* **satellites**: subhalos of infall mass m = x M with dN/dln x = A x^-0.9 on [m_sub_min / M, 0.1]
  (Poisson number, the subhalo mass function of Giocoli et al. 2008 in shape), each with stellar mass
  m f*(m) 10^(s g), on a random member particle (so they trace the halo's dark matter);
* a diffuse **stellar halo**: a fraction of the central's stars on random member particles;
* halos the FoF misses (below 20 particles, and the deficit of the PM's too-diffuse small halos up to
  400 particles) are topped up to the mass function (Watson et al. 2013, colossus) down to
  ``m_sub_min``, on ungrouped particles drawn with probability ~ (1 + delta)^FILL_BIAS, with centrals
  only: the galaxy population, hence the maps' statistics, then depends little on the particle count.

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


def _subhalo_masses(host_mass: np.ndarray, amplitude: float, m_min: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Poisson satellites: host index (k,) and infall mass (k,) drawn from dN/dln x = A x^-a."""
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


def populate(pos: np.ndarray, labels: np.ndarray, sizes: np.ndarray, density: np.ndarray, m_particle: float,
             params, model, rng: np.random.Generator, unresolved=(np.zeros(0), np.zeros(0, dtype=np.int64))
             ) -> tuple[Catalogue, np.ndarray]:
    """Galaxies of one simulation: the catalogue and the stellar mass per particle (n,) [M_sun/h].

    pos (n, 3) [Mpc/h], labels (n,) and sizes (g,) from :func:`hpc_vdm.mock.fof.find_groups`, density
    (n,) 1 + delta at the particles (picks each group's centre), m_particle [M_sun/h] (total matter),
    params the row (Omega_m, sigma_8, A_SN1, A_AGN1, A_SN2, A_AGN2), model a ``StellarModel``;
    ``unresolved`` (masses (u,), anchors (u,)) adds central-only halos below the FoF threshold
    (:func:`unresolved_halos`), listed after all groups' subhalos with group -1.
    """
    omega_m, _, a_sn1, a_agn1, a_sn2, a_agn2 = (float(p) for p in params)
    n_groups = sizes.size
    order, starts = members(labels, n_groups)
    centre = densest_members(order, starts, density)
    mass = sizes * m_particle
    shmr = lambda m: model.shmr(m, omega_m, a_sn1, a_agn1, a_sn2, a_agn2)  # noqa: E731
    s = model.scatter_dex

    mstar_cen = mass * shmr(mass) * 10 ** (s * rng.standard_normal(n_groups))
    host, m_sat = _subhalo_masses(mass, model.sat_amplitude, model.m_sub_min, rng)
    mstar_sat = m_sat * shmr(m_sat) * 10 ** (s * rng.standard_normal(host.size))
    sat_anchor = order[starts[host] + np.floor(rng.random(host.size) * sizes[host]).astype(np.int64)]

    m_un, un_anchor = unresolved
    mstar_un = m_un * shmr(m_un) * 10 ** (s * rng.standard_normal(m_un.size))

    # subhalos by group, central first; then the unresolved halos (group -1)
    sub_group = np.concatenate([np.arange(n_groups), host])
    sub_central = np.concatenate([np.ones(n_groups, bool), np.zeros(host.size, bool)])
    rank = np.lexsort((~sub_central, sub_group))
    sub_group = np.concatenate([sub_group[rank], np.full(m_un.size, -1)])
    sub_central = np.concatenate([sub_central[rank], np.ones(m_un.size, bool)])
    sub_mass = np.concatenate([np.concatenate([mass, m_sat])[rank], m_un])
    sub_anchor = np.concatenate([np.concatenate([centre, sat_anchor])[rank], un_anchor]).astype(np.int64)
    mstar = np.concatenate([np.concatenate([mstar_cen * (1.0 - model.halo_fraction), mstar_sat])[rank], mstar_un])

    m_sp = model.star_particle_mass
    n_star = rng.poisson(mstar / m_sp)
    sub_mstar = n_star * m_sp
    per_particle = np.bincount(sub_anchor, weights=sub_mstar, minlength=pos.shape[0])
    # the stellar halo: Poisson star particles on random members of each group
    n_halo = rng.poisson(mstar_cen * model.halo_fraction / m_sp)
    g = np.repeat(np.arange(n_groups), n_halo)
    on = order[starts[g] + np.floor(rng.random(g.size) * sizes[g]).astype(np.int64)]
    per_particle += np.bincount(on, minlength=pos.shape[0]) * m_sp
    first = np.searchsorted(sub_group[:sub_group.size - m_un.size], np.arange(n_groups))
    sub_mstar[first] += n_halo * m_sp  # a central's stars include its stellar halo, as in Subfind

    cat = Catalogue(group_pos=pos[centre], group_mass=mass, group_len=sizes.astype(np.int64),
                    group_r200c=r200c(mass), group_first_sub=first,
                    group_n_subs=np.bincount(sub_group[sub_group >= 0], minlength=n_groups), sub_pos=pos[sub_anchor],
                    sub_mass=sub_mass, sub_mstar=sub_mstar, sub_group=sub_group, sub_central=sub_central,
                    sub_anchor=sub_anchor)
    return cat, per_particle
