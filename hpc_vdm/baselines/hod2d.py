"""The three-parameter HOD of Sether+24 on 2D maps: halos of the N-body twin populated, painted as the targets are.

Occupation (Sether+24 §2.4; Zheng+07 in the limit σ_logM -> 0, M_0 -> 0): a **central** at the centre of
every halo of mass M > M_min; **satellites** only in halos with a central, a Poisson number of mean
(M / M_1)^α, placed uniformly at random within the halo's R_200c ("randomly within the dark matter halo")
or on an NFW profile of concentration c_200c(M) (Duffy+08, z = 0). Positions wrap periodically.

Halos: the hosts of a FoF/Subfind catalogue (:func:`hpc_vdm.baselines.hod.read_catalogue`): every FoF group
(its central subhalo's position, the group mass) and every central-only halo below the FoF threshold
(``SubhaloGrNr`` −1), R_200c from the mass. The mock writes one catalogue per simulation and no second one
for the N-body twin: its halos come from the one gravity run that both the twin's maps and the galaxies
are drawn from (the hydro run only expands halo dark matter by a few per cent), so the hydro catalogue's
halos *are* the N-body twin's; real CAMELS twins have their own catalogues (``baselines.hod_catalogues``).

Stellar masses come from the stellar–halo relation of the training simulations, the 3D HOD's occupation
code (:func:`hpc_vdm.baselines.hod.fit_hod`): per log bin of host mass, the empirical stellar masses of the
galaxies (subhalos with M* > 0) of the training catalogues, centrals and satellites apart; a drawn galaxy
takes one of its bin's at random (the nearest non-empty bin's if its own is empty).

Painting is the mock's star painting (:func:`hpc_vdm.mock.paint.paint_slabs`: CIC onto 3 x n_slabs slab
maps at the native resolution, map order 5 axis + slab) followed by the store's average pooling, so HOD
maps are made exactly as the target maps are. Fit (:func:`fit`): M_min first, on a grid, at a given
(M_1, α); then (M_1, α) on a coarse grid and a finer one around the best, minimising the mean squared
difference of log10 P(k) (overdensity, mean over the training maps, k ≤ k_Nyq) between HOD and truth.
M_1 and α are degenerate along lines of equal satellite numbers in the massive halos at these pixel scales
(satellites share their central's pixel), and M_min trades shot noise against satellites: the fit pins the
occupation the maps show, not each parameter (tests/test_hod2d.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import camels
from ..spectra.scores import overdensity_spectra
from . import hod

RANGES = {"log_m_min": (8.0, 15.5), "log_m1": (8.0, 16.5), "alpha": (0.0, 3.0)}  # log10 Msun/h; alpha
SATELLITES = ("random", "nfw")
DELTA_200C = 200.0


@dataclass(frozen=True)
class HODParams:
    """log10 M_min, log10 M_1 [Msun/h] and α; each checked against :data:`RANGES` on construction."""

    log_m_min: float
    log_m1: float
    alpha: float

    def __post_init__(self):
        for name, (lo, hi) in RANGES.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"HOD parameter {name}={v!r} is outside its range [{lo}, {hi}] (log10 M in Msun/h; "
                                 f"alpha the satellites' power-law index)")

    @classmethod
    def of(cls, values) -> "HODParams":
        """From [log10 M_min, log10 M_1, alpha] (``baselines.hod_params``)."""
        values = list(values)
        if len(values) != 3:
            raise ValueError(f"baselines.hod_params must be [log10 M_min, log10 M_1, alpha], got {values!r}")
        return cls(*(float(v) for v in values))

    def as_dict(self) -> dict:
        return {"log_m_min": self.log_m_min, "log_m1": self.log_m1, "alpha": self.alpha}


@dataclass
class Halos:
    """One simulation's host halos."""

    pos_mpc_h: np.ndarray     # (h, 3)
    mass_msun_h: np.ndarray   # (h,)
    radius_mpc_h: np.ndarray  # (h,) R_200c

    @classmethod
    def of(cls, subs: hod.Subhalos) -> "Halos":
        m = subs.host_msun_h[subs.central]
        return cls(subs.pos_mpc_h[subs.central], m, r200c(m))


@dataclass(frozen=True)
class Geometry:
    """How a simulation becomes maps: box, slabs per axis, native pixels, average pooling."""

    box_mpc_h: float
    n_slabs: int
    pixels: int       # native (painting) pixels per side
    pool: int = 1

    @classmethod
    def of_store(cls, attrs: dict) -> "Geometry":
        pool = int(attrs.get("pool", 1))
        return cls(float(attrs["box_size_mpc_h"]), int(attrs["maps_per_sim"]) // camels.N_AXES,
                   int(attrs["map_pixels"]) * pool, pool)


def r200c(mass_msun_h: np.ndarray) -> np.ndarray:
    """Radius [Mpc/h] of mean density 200 rho_crit around ``mass`` (the mock's Group_R_Crit200)."""
    return (3.0 * np.asarray(mass_msun_h) / (4.0 * np.pi * DELTA_200C * camels.RHO_CRIT)) ** (1.0 / 3.0)


def concentration(mass_msun_h: np.ndarray) -> np.ndarray:
    """c_200c(M) at z = 0 (Duffy et al. 2008, full sample): 5.71 (M / 2e12 Msun/h)^-0.084."""
    return 5.71 * (np.asarray(mass_msun_h) / 2e12) ** -0.084


def mean_occupation(mass_msun_h: np.ndarray, p: HODParams) -> tuple[np.ndarray, np.ndarray]:
    """(⟨N_cen⟩, ⟨N_sat⟩) per halo: 1 above M_min; (M / M_1)^α in halos with a central."""
    m = np.asarray(mass_msun_h, dtype=np.float64)
    cen = (m > 10.0 ** p.log_m_min).astype(np.float64)
    return cen, cen * (m / 10.0 ** p.log_m1) ** p.alpha


def _nfw_radius(u: np.ndarray, c: np.ndarray, iterations: int = 50) -> np.ndarray:
    """x in (0, 1] with μ(c x) / μ(c) = u, μ(y) = ln(1 + y) − y / (1 + y) (bisection, vectorised)."""
    mu = lambda y: np.log1p(y) - y / (1.0 + y)  # noqa: E731
    lo, hi, target = np.zeros_like(u), np.ones_like(u), u * mu(c)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mu(c * mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def keyed_uniform(seed: int, sim: int, halo: np.ndarray, member: np.ndarray | int, channel: int) -> np.ndarray:
    """Uniforms in [0, 1) keyed by (seed, sim, halo, member, channel) (splitmix64 of the key, vectorised): a galaxy
    keeps its draws whatever the HOD parameters, so the fit's objective changes only through the occupation."""
    h = np.asarray(halo, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for k in (seed, sim, channel):
        h = (h ^ np.uint64(int(k) & 0xFFFFFFFF)) * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (np.asarray(member, dtype=np.uint64) + np.uint64(0x632BE59BD9B4E019))
    for mult, shift in ((0xBF58476D1CE4E5B9, 30), (0x94D049BB133111EB, 27)):
        h = (h ^ (h >> np.uint64(shift))) * np.uint64(mult)
    h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def satellite_offsets(radius: np.ndarray, mass: np.ndarray, u: np.ndarray, profile: str = "random") -> np.ndarray:
    """(k, 3) offsets from the halo centre [Mpc/h] from uniforms ``u`` (k, 3): an isotropic direction and a radius
    uniform in the volume of the sphere of ``radius`` (k,), or from an NFW profile of c_200c(M)."""
    if profile not in SATELLITES:
        raise ValueError(f"satellite placement must be one of {list(SATELLITES)}, got {profile!r}")
    cos_t, phi = 2.0 * u[:, 0] - 1.0, 2.0 * np.pi * u[:, 1]
    sin_t = np.sqrt(np.maximum(1.0 - cos_t**2, 0.0))
    direction = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    x = np.cbrt(u[:, 2]) if profile == "random" else _nfw_radius(u[:, 2], concentration(mass))
    return (x * radius)[:, None] * direction


def populate(halos: Halos, p: HODParams, box_mpc_h: float, *, seed: int = 0, sim: int = 0,
             profile: str = "random") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Galaxies of one simulation: positions (g, 3) [Mpc/h], host masses (g,), central flags (g,) and the uniform
    (g,) that picks each one's stellar mass. Satellite numbers are the Poisson quantiles of keyed uniforms."""
    from scipy.stats import poisson

    n_cen, mean_sat = mean_occupation(halos.mass_msun_h, p)
    idx = np.arange(len(mean_sat))
    cen = n_cen > 0
    n_sat = poisson.ppf(keyed_uniform(seed, sim, idx, 0, 0), mean_sat).astype(np.int64)
    host = np.repeat(idx, n_sat)                                                            # (k,)
    member = np.arange(len(host)) - np.repeat(np.cumsum(n_sat) - n_sat, n_sat) + 1          # 1.. within a halo
    u = np.stack([keyed_uniform(seed, sim, host, member, c) for c in (1, 2, 3)], axis=1)
    sat_pos = halos.pos_mpc_h[host] + satellite_offsets(halos.radius_mpc_h[host], halos.mass_msun_h[host], u, profile)
    pos = np.concatenate([halos.pos_mpc_h[cen], sat_pos]) % box_mpc_h
    mass = np.concatenate([halos.mass_msun_h[cen], halos.mass_msun_h[host]])
    pick = np.concatenate([keyed_uniform(seed, sim, idx[cen], 0, 4), keyed_uniform(seed, sim, host, member, 4)])
    return pos, mass, np.concatenate([np.ones(int(cen.sum()), bool), np.zeros(len(host), bool)]), pick


def fit_stellar(catalogues: list[hod.Subhalos], n_bins: int = 20) -> hod.HOD:
    """The stellar–halo relation of the training simulations: per host-mass bin, the stellar masses of their
    galaxies (M* > 0), centrals and satellites apart (:func:`hpc_vdm.baselines.hod.fit_hod`)."""
    cat = hod.Subhalos(*(np.concatenate([getattr(c, f) for c in catalogues]) for f in
                         ("pos_mpc_h", "host_msun_h", "central", "mstar_msun_h")))
    lit = cat.mstar_msun_h > 0
    if not (lit & cat.central).any():
        raise ValueError("the training catalogues hold no central galaxy with stellar mass; the HOD has no "
                         "stellar-halo relation to draw from")
    return hod.fit_hod(cat, cat, n_bins, fit=lit)


def draw_stellar(model: hod.HOD, host_mass: np.ndarray, central: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(g,) stellar masses [Msun/h]: the galaxy of its host-mass bin's pool of its type (centrals, satellites) that
    the uniform ``u`` (g,) picks (vectorised)."""
    n_bins = len(model.centrals)
    b = np.clip(np.searchsorted(model.edges, np.log10(np.maximum(host_mass, 1.0)), side="right") - 1, 0, n_bins - 1)
    out = np.empty(len(host_mass))
    for pools, who in ((model.centrals, central), (model.satellites, ~central)):
        filled = np.array([i for i, pool in enumerate(pools) if len(pool)])
        nearest = filled[np.abs(np.arange(n_bins)[:, None] - filled[None]).argmin(1)]       # (n_bins,)
        sizes = np.array([len(pool) for pool in pools])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = np.concatenate(pools)
        k = nearest[b[who]]
        out[who] = flat[starts[k] + np.minimum(np.floor(u[who] * sizes[k]).astype(np.int64), sizes[k] - 1)]
    return out


def paint(pos: np.ndarray, mstar: np.ndarray, g: Geometry) -> np.ndarray:
    """(3 n_slabs, P / pool, P / pool) surface density [(Msun/h)/(Mpc/h)^2]: the mock's CIC star painting at the
    native pixels, then the store's average pooling."""
    from ..mock import paint as mock_paint

    on = mstar > 0
    maps = mock_paint.paint_slabs(pos[on], [mstar[on]], g.box_mpc_h, n_slabs=g.n_slabs, pixels=g.pixels,
                                  sigma_mpc_h=[None])[0]                                    # (3 n_slabs, P, P)
    f, n = g.pool, g.pixels // g.pool
    return maps.reshape(-1, n, f, n, f).mean(axis=(2, 4)) if f > 1 else maps


def draw_maps(halos: dict[int, Halos], stellar: hod.HOD, p: HODParams, g: Geometry, seed: int = 0,
              profile: str = "random") -> dict[int, np.ndarray]:
    """{sim: (3 n_slabs, H, W) HOD stellar maps}; every draw keyed by (seed, sim, halo, member)."""
    out = {}
    for sim, h in halos.items():
        pos, host, central, pick = populate(h, p, g.box_mpc_h, seed=seed, sim=int(sim), profile=profile)
        out[sim] = paint(pos, draw_stellar(stellar, host, central, pick), g)
    return out


# -- the fit ---------------------------------------------------------------------------------------------------
def log_power(maps: np.ndarray, box_mpc_h: float) -> np.ndarray:
    """log10 of the mean overdensity P(k) over maps (m, H, W), k ≤ k_Nyq; [-inf] when a map holds no mass."""
    maps = np.asarray(maps, dtype=np.float64)
    if (maps.reshape(len(maps), -1).sum(1) <= 0).any():
        return np.full(1, -np.inf)
    _, p = overdensity_spectra(maps, box_mpc_h)
    return np.log10(np.maximum(p.mean(0), 1e-300))


def objective(halos: dict[int, Halos], stellar: hod.HOD, p: HODParams, g: Geometry, target: np.ndarray,
              seed: int, profile: str) -> float:
    """Mean squared difference of log10 P(k) (overdensity, mean over the maps) between HOD and truth."""
    drawn = draw_maps(halos, stellar, p, g, seed, profile)
    lp = log_power(np.concatenate([drawn[s] for s in halos]), g.box_mpc_h)
    return float(np.mean((lp - target) ** 2)) if lp.shape == target.shape and np.isfinite(lp).all() else np.inf


def _grid(lo: float, hi: float, step: float, name: str) -> np.ndarray:
    r_lo, r_hi = RANGES[name]
    lo, hi = max(lo, r_lo), min(hi, r_hi)
    return np.arange(lo, hi + 0.5 * step, step) if hi > lo else np.array([lo])


def _inside(q) -> bool:
    return all(lo <= v <= hi for v, (lo, hi) in zip(q, RANGES.values()))


def fit(halos: dict[int, Halos], truth: dict[int, np.ndarray], stellar: hod.HOD, g: Geometry, *, seed: int = 0,
        profile: str = "random", start: tuple[float, float] = (1.3, 1.0), polish: bool = False) -> tuple[HODParams, dict]:
    """(HODParams, record) minimising :func:`objective` on the simulations ``halos`` against their true maps
    ``truth`` {sim: (3 n_slabs, H, W)}, by coordinate search as Sether+24: log10 M_min on a 0.1-dex grid spanning
    the halo masses at log10 M_1 = log10 M_min + start[0], α = start[1]; then (log10 M_1, α) on a grid of 0.25 dex
    x 0.1 and a finer one (0.05 x 0.025) around its best (7 x 7 points each); then once more M_min (0.025 dex) and (M_1, α) (fine)
    at the others' best. With ``polish`` a search of the 26 neighbours of the best point follows (steps 0.1, 0.05,
    0.025 dex in the masses, half that in α) until none is better: it follows the M_min–α valleys a coordinate
    search crosses slowly, but on few maps also the realisation's noise. Common random numbers: every galaxy's draws are keyed (:func:`keyed_uniform`)."""
    target = log_power(np.concatenate([truth[s] for s in halos]), g.box_mpc_h)
    if not np.isfinite(target).all():
        raise ValueError("a training map of the HOD fit holds no stellar mass; its P(k) of the overdensity is "
                         "undefined")
    masses = np.log10(np.concatenate([h.mass_msun_h for h in halos.values()]))
    evals: dict[tuple, float] = {}

    def score(lm, l1, a) -> float:
        key = tuple(round(float(v), 6) for v in (lm, min(max(l1, RANGES["log_m1"][0]), RANGES["log_m1"][1]), a))
        if key not in evals:
            evals[key] = objective(halos, stellar, HODParams(*key), g, target, seed, profile)
        return evals[key]

    def satellites(m_min, centre, steps):
        for d1, da in steps:
            ones = _grid(centre[0] - 3 * d1, centre[0] + 3 * d1, d1, "log_m1")
            alphas = _grid(centre[1] - 3 * da, centre[1] + 3 * da, da, "alpha")
            centre = min(((l1, a) for l1 in ones for a in alphas), key=lambda q: score(m_min, *q))
        return centre

    grid_m = _grid(masses.min(), np.sort(masses)[-min(10, len(masses))], 0.1, "log_m_min")
    m_min = min(grid_m, key=lambda lm: score(lm, lm + start[0], start[1]))
    sat = satellites(m_min, (m_min + start[0], start[1]), ((0.25, 0.1), (0.05, 0.025)))
    m_min = min(_grid(m_min - 0.3, m_min + 0.3, 0.025, "log_m_min"), key=lambda lm: score(lm, *sat))
    sat = satellites(m_min, sat, ((0.05, 0.025),))
    if polish:
        best = min(evals, key=evals.get)
        for step in ((0.1, 0.1, 0.05), (0.05, 0.05, 0.025), (0.025, 0.025, 0.0125)):   # follow the valleys
            for _ in range(20):
                around = [q for q in (tuple(b + (m - 1) * s for b, m, s in zip(best, move, step))
                                      for move in np.ndindex(3, 3, 3)) if _inside(q)]
                if score(*min(around, key=lambda q: score(*q))) >= evals[best]:
                    break
                best = min(evals, key=evals.get)
    (lm, l1, a), value = min(evals.items(), key=lambda e: e[1])
    if not np.isfinite(value):
        raise ValueError("no HOD parameters on the fit's grids paint maps with stellar mass in every training map")
    return HODParams(lm, l1, a), {"objective": value, "evaluations": len(evals),
                                  "m_min_grid": [float(grid_m[0]), float(grid_m[-1])]}


# -- the catalogues of a maps store's simulations ---------------------------------------------------------------
def read_simulations(folder, sims, params: np.ndarray, box_mpc_h: float) -> dict[int, hod.Subhalos]:
    """{sim: subhalos} of the FoF/Subfind files ``folder/fof_subhalo_tab_{sim:04d}.hdf5``, each checked against
    the maps store: a file per simulation, its BoxSize the store's box, its parameters (``Header/params``, the
    mock's; else ``Omega0``) the store's row for that simulation."""
    import h5py
    from pathlib import Path

    out = {}
    for sim in sims:
        path = Path(folder) / f"fof_subhalo_tab_{int(sim):04d}.hdf5"
        if not path.is_file():
            raise FileNotFoundError(f"no halo catalogue {str(path)!r} for simulation {sim} of the maps store "
                                    f"(baselines.hod_catalogues must hold one per simulation of the store)")
        with h5py.File(path, "r") as f:
            head = dict(f["Header"].attrs) if "Header" in f else {}
        box = float(head.get("BoxSize", box_mpc_h * hod.KPC)) / hod.KPC
        if not np.isclose(box, box_mpc_h, rtol=1e-4):
            raise ValueError(f"catalogue {str(path)!r} is of a {box:g} Mpc/h box, the maps of {box_mpc_h:g} Mpc/h")
        row = np.asarray(params[int(sim)], dtype=np.float64)
        theirs = np.atleast_1d(np.asarray(head.get("params", [head.get("Omega0", row[0])]), dtype=np.float64))
        if not np.allclose(theirs[:len(row)], row[:len(theirs)], rtol=1e-5):
            raise ValueError(f"catalogue {str(path)!r} belongs to a simulation with parameters {theirs.tolist()}, but "
                             f"simulation {sim} of the maps store has {row.tolist()}: the catalogues do not match "
                             f"the maps' simulations")
        out[int(sim)] = hod.read_catalogue(path)
    return out
