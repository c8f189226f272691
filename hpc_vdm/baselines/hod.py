"""The dm2gal paper's HOD benchmark: stellar masses drawn per halo-mass bin, for centrals and satellites.

Fit (hydro catalogue, subhalos of the training region): halos in ``n_bins`` log bins of host mass; in each
bin the empirical stellar masses of its centrals and of its satellites (zeros included: dark subhalos
count). Apply (gravity-only catalogue): every subhalo draws a stellar mass from its bin's distribution of
its type (the nearest non-empty bin if its own is empty). Corrections, as the paper's: host masses are
multiplied by the ratio of the total halo mass of the two runs, and satellites are kept with probability
(or duplicated in expectation by) the ratio of their numbers. The result is painted by cloud-in-cell onto
the volume's grid (voxel centres at (i + 1/2) L / N, as the mock's grids), in Msun/h per voxel.

Catalogues: CAMELS/TNG FoF-Subfind HDF5 (kpc/h, 1e10 Msun/h): ``Subhalo/SubhaloPos``, ``SubhaloMass``,
``SubhaloMassType[:, 4]``, ``SubhaloGrNr`` (-1: a halo below the FoF threshold, its own host),
``SubhaloIsCentral`` (or ``Group/GroupFirstSub``), ``Group/GroupMass``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.inputs import hdf5_dataset, open_hdf5, read_hdf5_floats

KPC = 1e3          # kpc/h per Mpc/h
MASS_UNIT = 1e10   # Msun/h per catalogue mass unit


@dataclass
class Subhalos:
    pos_mpc_h: np.ndarray      # (s, 3)
    host_msun_h: np.ndarray    # (s,) mass of the host halo
    central: np.ndarray        # (s,) bool
    mstar_msun_h: np.ndarray   # (s,) stellar mass (zeros in a gravity-only catalogue)

    def select(self, keep: np.ndarray) -> "Subhalos":
        return Subhalos(self.pos_mpc_h[keep], self.host_msun_h[keep], self.central[keep], self.mstar_msun_h[keep])


def _ints(f, key: str, path: Path, n: int | None = None):
    """An integer (or boolean) dataset, checked for dtype and length."""
    ds = hdf5_dataset(f, key, path, "catalogue")
    if ds.dtype.kind not in "iub" or ds.dtype.names:
        raise ValueError(f"{key} in catalogue {str(path)!r} holds dtype {ds.dtype}; expected integers")
    values = np.asarray(ds[()])
    if values.ndim != 1 or (n is not None and len(values) != n):
        raise ValueError(f"{key} in catalogue {str(path)!r} has shape {values.shape}; expected ({n},)")
    return values


def read_catalogue(path: str | Path) -> Subhalos:
    """Subhalos of one FoF/Subfind HDF5 group file; every dataset checked (dtype, shape, finite, >= 0)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"no catalogue file {str(path)!r}")
    where = "catalogue"
    with open_hdf5(path, where) as f:
        for group in ("Subhalo", "Group"):
            if group not in f:
                raise ValueError(f"{str(path)!r} is not a FoF/Subfind group file (needs Group/ and Subhalo/)")
        pos = read_hdf5_floats(f, "Subhalo/SubhaloPos", path, where, columns=3) / KPC
        n = len(pos)
        sub_mass = read_hdf5_floats(f, "Subhalo/SubhaloMass", path, where, ndim=1, lo=0.0) * MASS_UNIT
        group_mass = read_hdf5_floats(f, "Group/GroupMass", path, where, ndim=1, lo=0.0) * MASS_UNIT
        if len(sub_mass) != n:
            raise ValueError(f"Subhalo/SubhaloMass in catalogue {str(path)!r} has {len(sub_mass)} rows, SubhaloPos {n}")
        grnr = _ints(f, "Subhalo/SubhaloGrNr", path, n).astype(np.int64)
        if (grnr >= len(group_mass)).any():
            raise ValueError(f"Subhalo/SubhaloGrNr in catalogue {str(path)!r} names group {int(grnr.max())}, but "
                             f"Group/GroupMass has {len(group_mass)} groups")
        if "SubhaloMassType" in f["Subhalo"]:
            types = read_hdf5_floats(f, "Subhalo/SubhaloMassType", path, where, ndim=2, lo=0.0)
            if types.shape[0] != n or types.shape[1] < 5:
                raise ValueError(f"Subhalo/SubhaloMassType in catalogue {str(path)!r} has shape {types.shape}; "
                                 f"expected ({n}, 6)")
            mstar = types[:, 4] * MASS_UNIT
        else:
            mstar = np.zeros(n)
        if "SubhaloIsCentral" in f["Subhalo"]:
            central = _ints(f, "Subhalo/SubhaloIsCentral", path, n).astype(bool)
        else:
            first = _ints(f, "Group/GroupFirstSub", path, len(group_mass))
            central = (grnr < 0) | (first[np.maximum(grnr, 0)] == np.arange(n))
    host = np.where(grnr >= 0, group_mass[np.maximum(grnr, 0)], sub_mass)
    return Subhalos(pos, host, central, mstar)


@dataclass
class HOD:
    edges: np.ndarray                  # (n_bins + 1,) log10 host mass [Msun/h]
    centrals: list[np.ndarray]         # per bin: stellar masses of the fitted centrals
    satellites: list[np.ndarray]       # per bin: stellar masses of the fitted satellites
    mass_ratio: float = 1.0            # total halo mass hydro / gravity-only
    satellite_ratio: float = 1.0       # satellites hydro / gravity-only

    def _pool(self, pools: list[np.ndarray], b: int) -> np.ndarray:
        filled = [i for i, p in enumerate(pools) if len(p)]
        return pools[min(filled, key=lambda i: abs(i - b))]

    def draw(self, subs: Subhalos, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(positions (m, 3), stellar masses (m,)) of the gravity-only subhalos ``subs``."""
        rng = np.random.default_rng(seed)
        logm = np.log10(np.maximum(subs.host_msun_h * self.mass_ratio, 1.0))
        b = np.clip(np.searchsorted(self.edges, logm, side="right") - 1, 0, len(self.centrals) - 1)
        n_copies = np.ones(len(logm), dtype=np.int64)
        sat = ~subs.central
        r = self.satellite_ratio
        n_copies[sat] = np.floor(r).astype(np.int64) + (rng.random(sat.sum()) < r - np.floor(r))
        pos, mass = [], []
        for i in np.flatnonzero(n_copies):
            pools = self.centrals if subs.central[i] else self.satellites
            pool = self._pool(pools, int(b[i]))
            pos += [subs.pos_mpc_h[i]] * int(n_copies[i])
            mass += list(rng.choice(pool, size=int(n_copies[i])))
        return np.asarray(pos).reshape(-1, 3), np.asarray(mass, dtype=np.float64)


def fit_hod(hydro: Subhalos, gravity_only: Subhalos, n_bins: int = 20, fit: np.ndarray | None = None) -> HOD:
    """The binned central/satellite stellar-mass distributions of the ``fit`` subhalos of ``hydro`` (default
    all: the training region's) and the two corrections between the whole catalogues."""
    unique_hydro = hydro.host_msun_h[hydro.central].sum()
    unique_dmo = gravity_only.host_msun_h[gravity_only.central].sum()
    n_sat_hydro, n_sat_dmo = int((~hydro.central).sum()), int((~gravity_only.central).sum())
    hydro = hydro if fit is None else hydro.select(fit)
    if not hydro.central.any():
        raise ValueError("the hydro catalogue has no central subhalos to fit the HOD on")
    logm = np.log10(np.maximum(hydro.host_msun_h, 1.0))
    edges = np.linspace(logm.min(), logm.max() + 1e-9, n_bins + 1)
    b = np.clip(np.searchsorted(edges, logm, side="right") - 1, 0, n_bins - 1)
    cen = [hydro.mstar_msun_h[(b == i) & hydro.central] for i in range(n_bins)]
    sat = [hydro.mstar_msun_h[(b == i) & ~hydro.central] for i in range(n_bins)]
    if not any(len(s) for s in sat):
        sat = cen  # no satellites fitted: they draw like centrals
    return HOD(edges, cen, sat, mass_ratio=float(unique_hydro / unique_dmo),
               satellite_ratio=n_sat_hydro / n_sat_dmo if n_sat_dmo else 1.0)


def cic_paint(pos_mpc_h: np.ndarray, mass: np.ndarray, n: int, box_mpc_h: float) -> np.ndarray:
    """(n, n, n) mass per voxel [Msun/h] of points by cloud-in-cell, periodic, voxel centres (i + 1/2) L / n."""
    grid = np.zeros(n**3)
    u = pos_mpc_h / (box_mpc_h / n) - 0.5                        # (m, 3) in voxel units from the first centre
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    for corner in np.ndindex(2, 2, 2):
        w = np.prod(np.where(np.array(corner), f, 1.0 - f), axis=1)
        idx = (i0 + corner) % n
        np.add.at(grid, np.ravel_multi_index(idx.T, (n, n, n)), mass * w)
    return grid.reshape(n, n, n)


def in_box(pos_mpc_h: np.ndarray, box_voxels: list[int], voxel_mpc_h: float) -> np.ndarray:
    """Points inside the sub-cube [lo, hi)^3 of voxels."""
    lo, hi = box_voxels
    v = np.floor(pos_mpc_h / voxel_mpc_h)
    return ((v >= lo) & (v < hi)).all(axis=1)
