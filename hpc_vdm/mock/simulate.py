"""One mock simulation (PM run, FoF halos and galaxies, 15 slab maps per field, optional N-body twin maps
and 3D grids) and the CAMELS parameter sets."""
from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from ..config import MockConfig
from ..data import camels
from . import grids, kernels, paint, stars, workers
from .cosmology import Cosmology
from .pm import Particles, run_pm
from . import mesh
from .mesh import cic_readout

SET_CODES = {"LH": 1, "1P": 2, "CV": 3}


def _from_unit(u: np.ndarray) -> np.ndarray:
    """Map unit-cube samples (n, 6) to the CAMELS LH prior (A's log-uniform)."""
    out = np.empty_like(u)
    for j, name in enumerate(camels.PARAM_NAMES):
        lo, hi = camels.PARAM_RANGES[name]
        out[:, j] = lo * (hi / lo) ** u[:, j] if name in camels.LOG_PARAMS else lo + (hi - lo) * u[:, j]
    return out


def parameter_table(cfg: MockConfig) -> np.ndarray:
    """(n_sims, 6) parameters of the set: LH Latin hypercube, 1P one parameter at a time, CV fiducial."""
    fid = camels.fiducial_params()
    if cfg.set == "LH":
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, SET_CODES["LH"]]))
        return _from_unit(qmc.LatinHypercube(d=len(fid), seed=rng).random(cfg.n_sims))
    if cfg.set == "CV":
        return np.tile(fid, (cfg.n_sims, 1))
    rows = []  # 1P: the parameters of mock.one_p_params ([] = all six), one at a time
    grid = np.linspace(0.0, 1.0, cfg.n_1p_values)
    for j in [camels.PARAM_NAMES.index(n) for n in cfg.one_p_params] or range(len(fid)):
        unit = np.tile(np.full(len(fid), np.nan), (grid.size, 1))
        unit[:, j] = grid
        values = _from_unit(np.nan_to_num(unit, nan=0.5))
        block = np.tile(fid, (grid.size, 1))
        block[:, j] = values[:, j]
        rows.append(block)
    return np.concatenate(rows)


def sim_seed(cfg: MockConfig, sim: int) -> np.random.SeedSequence:
    """Initial-condition seed of one simulation: 1P shares one realisation, LH and CV differ per simulation."""
    index = 0 if cfg.set == "1P" else sim
    return np.random.SeedSequence([cfg.seed, SET_CODES[cfg.set], index])


def _upsampled(parts: Particles, pos: np.ndarray, u: int, lattice_fields: dict):
    """Per sub-offset: sub-particle positions (n, 3) and the lattice fields interpolated there.

    Sub-particle ``o`` of each particle sits at q + ((o + 1/2)/u - 1/2) cells; its displacement (from
    ``pos`` (n, 3), the particles' final positions) and every field in ``lattice_fields`` are the
    multi-linear interpolation of the lattice values, a fixed shift for all particles, hence done with
    rolls of whole grids.
    """
    box = np.asarray(parts.box)
    lattice = parts.lattice()
    disp = ((pos - lattice + box / 2) % box - box / 2).T.reshape(3, *parts.shape)  # (3, *shape)
    for off in np.ndindex(*(u,) * 3):
        shift = (np.asarray(off) + 0.5) / u - 0.5
        d = mesh.shift_interpolate(disp, shift).reshape(3, -1).T
        sub = (lattice + shift * parts.cell + d) % box
        yield sub, {k: mesh.shift_interpolate(v, shift).ravel() for k, v in lattice_fields.items()}


def dm_maps(parts: Particles, pos: np.ndarray, rho: np.ndarray, mass_per_particle: float, cfg: MockConfig) -> np.ndarray:
    """(3 n_slabs, P, P) surface density of particles at pos (n, 3) [Mpc/h], each of mass
    ``mass_per_particle`` [Msun/h], with the adaptive kernel set by 1 + delta ``rho`` (n,) and split into
    ``cfg.upsample``^3 sub-particles."""
    u = cfg.upsample
    if kernels.compiled() and u > 1:
        box = np.asarray(parts.box)
        disp = ((pos - parts.lattice() + box / 2) % box - box / 2).T.reshape(3, *parts.shape)
        return paint.paint_upsampled(disp, rho.reshape(parts.shape), u, parts.box, mass_per_particle,
                                     n_slabs=cfg.n_slabs, pixels=cfg.map_pixels, n_ngb=cfg.n_ngb)
    n_sub = u**3
    particle_volume = np.prod(parts.box) / (np.prod(parts.shape) * n_sub)
    fields = {"rho": rho.reshape(parts.shape)}
    batches = _upsampled(parts, pos, u, fields) if u > 1 else [(pos, {"rho": rho})]
    out = np.zeros((3 * cfg.n_slabs, cfg.map_pixels, cfg.map_pixels))
    for sub, at in batches:
        sigma = paint.SIGMA_PER_H * paint.smoothing_length(at["rho"], particle_volume, cfg.n_ngb)
        out += paint.paint_slabs(sub, [mass_per_particle / n_sub], cfg.box_mpc_h, n_slabs=cfg.n_slabs,
                                 pixels=cfg.map_pixels, sigma_mpc_h=[sigma])[0]
    return out


def star_maps(pos: np.ndarray, mstar: np.ndarray, cfg: MockConfig) -> np.ndarray:
    """(3 n_slabs, P, P) CIC surface density of the star particles (stellar mass per particle (n,))."""
    on = mstar > 0
    return paint.paint_slabs(pos[on], [mstar[on]], cfg.box_mpc_h, n_slabs=cfg.n_slabs, pixels=cfg.map_pixels,
                             sigma_mpc_h=[None])[0]


def _seeds(seed: np.random.SeedSequence):
    """(initial conditions, galaxies) seeds of one simulation."""
    return tuple(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i)) for i in (0, 1))


def evolve(params: np.ndarray, cfg: MockConfig, seed: np.random.SeedSequence) -> tuple[Particles, tuple]:
    """The gravity of one simulation (suite-independent): the PM particles and their FoF groups
    (:func:`hpc_vdm.mock.stars.halos`: labels, sizes, sub-clumps)."""
    shape, box = (cfg.particles,) * 3, (cfg.box_mpc_h,) * 3
    parts = run_pm(Cosmology(float(params[0]), float(params[1])), shape, box, n_steps=cfg.pm_steps,
                   a_start=cfg.a_start, rng=np.random.default_rng(_seeds(seed)[0]))
    return parts, stars.halos(parts)


def over_simulations(cfg: MockConfig, n_sims: int, *measures) -> list[list]:
    """Each of ``measures`` — ``measure(sim, params, seed, parts, groups) -> value``, picklable (a module-level
    function or a ``functools.partial`` of one) — on the first ``n_sims`` simulations of ``cfg``'s set, with
    one gravity run (:func:`evolve`) per simulation shared by all of them, ``cfg.workers`` simulations side by
    side -> one list of ``n_sims`` values per measure."""
    jobs = [(cfg, sim, row, measures) for sim, row in enumerate(parameter_table(cfg)[:n_sims])]
    per_sim = list(workers.run_all(_measured, jobs, workers=max(1, min(cfg.workers, len(jobs))),
                                   kernel_backend=cfg.kernels))
    return [[values[i] for values in per_sim] for i in range(len(measures))]


def _measured(cfg: MockConfig, sim: int, row: np.ndarray, measures) -> list:
    """The values of ``measures`` on simulation ``sim`` (one gravity run)."""
    seed = sim_seed(cfg, sim)
    parts, groups = evolve(row, cfg, seed)
    return [measure(sim, row, seed, parts, groups) for measure in measures]


def observe(parts: Particles, groups: tuple, params: np.ndarray, cfg: MockConfig, model: stars.StellarModel,
            seed: np.random.SeedSequence) -> dict:
    """Galaxies, maps, catalogue and grids of one suite on evolved particles (see :func:`simulate`)."""
    omega_m, a_sn1, a_agn1 = float(params[0]), float(params[2]), float(params[3])
    labels = groups[0]
    cat, mstar = stars.galaxies_of(parts, params, model, np.random.default_rng(_seeds(seed)[1]), groups)
    hydro = stars.hydro_positions(parts, cat, labels, model.expansion(a_sn1, a_agn1))
    m_tot = stars.particle_mass(parts, omega_m)
    m_cdm = m_tot * (omega_m - camels.OMEGA_B) / omega_m
    rho = cic_readout(parts.density, parts.pos / parts.cell)  # 1 + delta at every particle sets its kernel
    out = {"Mcdm": dm_maps(parts, hydro, rho, m_cdm, cfg), "Mstar": star_maps(hydro, mstar, cfg)}
    if cfg.nbody:
        out["Mtot_Nbody"] = dm_maps(parts, parts.pos, rho, m_tot, cfg)
    out = {f: np.maximum(m, 0.0).astype(np.float32) for f, m in out.items()}
    out["catalogue"] = cat
    out["grids"] = {n: grids.fields(parts, hydro, mstar, cat, n, m_cdm, m_tot, nbody=cfg.nbody) for n in cfg.grids}
    return out


def simulate(params: np.ndarray, cfg: MockConfig, model: stars.StellarModel, seed: np.random.SeedSequence) -> dict:
    """Run one simulation.

    Returns {'Mcdm': (15, P, P), 'Mstar': (15, P, P)} float32 surface densities [(Msun/h)/(Mpc/h)^2] of the
    hydro run, 'Mtot_Nbody' (15, P, P) of its N-body twin (same initial conditions, no feedback) when
    ``cfg.nbody``, 'catalogue' (a :class:`~hpc_vdm.mock.galaxies.Catalogue`) and 'grids'
    {N: {field: (N, N, N) float32 density [(Msun/h)/(Mpc/h)^3]}} for every N of ``cfg.grids``.
    """
    parts, groups = evolve(params, cfg, seed)
    return observe(parts, groups, params, cfg, model, seed)
