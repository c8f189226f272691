"""3D grids of one simulation in the CMD layout: CIC densities of dark matter, stars and subhalos.

Every field is a cloud-in-cell density [(Msun/h)/(Mpc/h)^3] on an N^3 grid over the box with voxel
centres at (i + 1/2) L / N (CMD's ``Grids_{field}_{suite}_{set}_{N}_z=0.00.npy``):

* ``Mcdm``: hydro dark matter; ``Mtot``: total matter of the N-body twin (only when it is made);
* ``Mstar``: star particles (the stellar mass per particle of :mod:`hpc_vdm.mock.galaxies`);
* ``Msubhalo``: subhalo masses at the subhalo positions (dm2gal's subhalo field; a central carries its
  group's mass, a satellite its infall mass).
"""
from __future__ import annotations

import numpy as np

from . import mesh
from .galaxies import Catalogue
from .pm import Particles

FIELDS = ("Mcdm", "Mstar", "Msubhalo", "Mtot")


def cic_density(pos: np.ndarray, mass, n: int, box_mpc_h: float) -> np.ndarray:
    """(n, n, n) CIC density [(Msun/h)/(Mpc/h)^3] of points pos (m, 3) [Mpc/h] with masses (m,) or a scalar."""
    voxel = box_mpc_h / n
    grid = mesh.cic_deposit(pos / voxel - 0.5, (n, n, n), weights=mass)[0]
    return grid / voxel**3


def fields(parts: Particles, hydro_pos: np.ndarray, mstar: np.ndarray, cat: Catalogue, n: int, m_cdm: float,
           m_tot: float, *, nbody: bool) -> dict[str, np.ndarray]:
    """The grids {field: (n, n, n) float32} of one simulation (``Mtot`` only with the N-body twin)."""
    box = float(parts.box[0])
    on = mstar > 0
    out = {"Mcdm": cic_density(hydro_pos, m_cdm, n, box),
           "Mstar": cic_density(hydro_pos[on], mstar[on], n, box),
           "Msubhalo": cic_density(cat.sub_pos, cat.sub_mass, n, box)}
    if nbody:
        out["Mtot"] = cic_density(parts.pos, m_tot, n, box)
    return {k: v.astype(np.float32) for k, v in out.items()}
