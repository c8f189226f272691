"""One mock simulation (PM run + stars + 15 slab maps per field) and the CAMELS parameter sets."""
from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from ..config import MockConfig
from ..data import camels
from . import paint, stars
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
    fid = np.array([camels.FIDUCIAL[n] for n in camels.PARAM_NAMES])
    if cfg.set == "LH":
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, SET_CODES["LH"]]))
        return _from_unit(qmc.LatinHypercube(d=len(fid), seed=rng).random(cfg.n_sims))
    if cfg.set == "CV":
        return np.tile(fid, (cfg.n_sims, 1))
    rows = []  # 1P
    grid = np.linspace(0.0, 1.0, cfg.n_1p_values)
    for j in range(len(fid)):
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


def _upsampled(parts: Particles, u: int, lattice_fields: dict):
    """Per sub-offset: sub-particle positions (n, 3) and the lattice fields interpolated there.

    Sub-particle ``o`` of each particle sits at q + ((o + 1/2)/u - 1/2) cells; its displacement (and every
    field in ``lattice_fields``) is the multi-linear interpolation of the lattice values, a fixed shift
    for all particles, hence done with rolls of whole grids.
    """
    disp = parts.displacement()  # (3, *shape)
    lattice = parts.lattice()
    box = np.asarray(parts.box)
    for off in np.ndindex(*(u,) * 3):
        shift = (np.asarray(off) + 0.5) / u - 0.5
        d = mesh.shift_interpolate(disp, shift).reshape(3, -1).T
        pos = (lattice + shift * parts.cell + d) % box
        yield pos, {k: mesh.shift_interpolate(v, shift).ravel() for k, v in lattice_fields.items()}


def simulate(params: np.ndarray, cfg: MockConfig, model: stars.StellarModel, seed: np.random.SeedSequence) -> dict:
    """Run one simulation; returns {'Mcdm': (15, P, P), 'Mstar': (15, P, P)} float32 surface densities."""
    omega_m, sigma_8 = float(params[0]), float(params[1])
    ic_seed, star_seed = (np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i)) for i in (0, 1))
    shape, box = (cfg.particles,) * 3, (cfg.box_mpc_h,) * 3
    parts = run_pm(Cosmology(omega_m, sigma_8), shape, box, n_steps=cfg.pm_steps, a_start=cfg.a_start,
                   rng=np.random.default_rng(ic_seed))
    mstar_lattice = stars.stellar_masses(parts, params, model, np.random.default_rng(star_seed)).reshape(shape)

    u = cfg.upsample
    n_sub = u**3
    m_cdm = (omega_m - camels.OMEGA_B) * camels.RHO_CRIT * np.prod(box) / (np.prod(shape) * n_sub)
    particle_volume = np.prod(box) / (np.prod(shape) * n_sub)
    maps = {f: np.zeros((3 * cfg.n_slabs, cfg.map_pixels, cfg.map_pixels)) for f in ("Mcdm", "Mstar")}
    # 1 + delta at every particle sets its kernel; sub-particles inherit their parent's
    rho = cic_readout(parts.density, parts.pos / parts.cell).reshape(shape)
    fields = {"mstar": mstar_lattice / n_sub, "rho": rho}
    batches = _upsampled(parts, u, fields) if u > 1 else [(parts.pos, {k: v.ravel() for k, v in fields.items()})]
    for pos, at in batches:
        sigma = paint.SIGMA_PER_H * paint.smoothing_length(at["rho"], particle_volume, cfg.n_ngb)
        cdm, star = paint.paint_slabs(pos, [m_cdm, at["mstar"]], cfg.box_mpc_h, n_slabs=cfg.n_slabs,
                                      pixels=cfg.map_pixels, sigma_mpc_h=[sigma, None])
        maps["Mcdm"] += cdm
        maps["Mstar"] += star
    return {f: np.maximum(m, 0.0).astype(np.float32) for f, m in maps.items()}
