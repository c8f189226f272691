"""Halo and galaxy catalogues as HDF5 files shaped like CAMELS' FoF/Subfind group files.

One file per simulation, ``FOF_Subfind_{suite}_{set}_z=0.00/fof_subhalo_tab_{sim:04d}.hdf5``, in the
units of the TNG/CAMELS group files (positions and radii in kpc/h, masses in 1e10 Msun/h), so code that
reads the real catalogues (illustris_python, h5py) reads these::

    Header (attributes)  BoxSize [kpc/h], Ngroups_Total, Nsubgroups_Total, Omega0, OmegaBaryon,
                         OmegaLambda, HubbleParam, Redshift, Time; mock extras: suite, set, sim,
                         params (Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2), particles, linking_b
    Group/GroupPos          (g, 3) float32  position of the central galaxy (densest member particle)
    Group/GroupMass         (g,)   float32  FoF mass (total matter)
    Group/GroupLen          (g,)   int32    member particles
    Group/GroupMassType     (g, 6) float32  [0] gas = M Omega_b/Omega_m - stars, [1] dark matter, [4] stars
    Group/Group_M_Crit200   (g,)   float32  = GroupMass (the mock's approximation)
    Group/Group_R_Crit200   (g,)   float32  radius of 200 rho_crit mean density at Group_M_Crit200
    Group/GroupFirstSub     (g,)   int32    index of the central subhalo
    Group/GroupNsubs        (g,)   int32    subhalos of the group
    Group/GroupEnvironment  (g,)   float32  mock extra: 1 + delta smoothed on 3 Mpc/h at the centre
    Group/GroupConcentration (g,)  float32  mock extra: ln(R_Crit200 / r_1/2), r_1/2 the members' median radius
    Subhalo/SubhaloPos      (s, 3) float32
    Subhalo/SubhaloMass     (s,)   float32  halo mass (central) or infall mass (satellite)
    Subhalo/SubhaloMassType (s, 6) float32  [1] dark matter, [4] stars (resolved: n star particles * m_sp)
    Subhalo/SubhaloGrNr     (s,)   int32    host group; -1 for halos below the FoF threshold (drawn from
                                            the mass function, listed last, centrals only)
    Subhalo/SubhaloIsCentral (s,)  uint8    1 for centrals (mock extra; Subfind: GroupFirstSub[GrNr] == i)

Groups are ordered by decreasing mass, subhalos by group with the central first. The file is written to
a temporary name and renamed into place.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..data import camels
from .galaxies import Catalogue

KPC = 1e3        # kpc/h per Mpc/h
MASS_UNIT = 1e10  # Msun/h per file mass unit


def _mass_type(total: np.ndarray, stars: np.ndarray, omega_m: float) -> np.ndarray:
    out = np.zeros((total.size, 6), dtype=np.float32)
    f_b = camels.OMEGA_B / omega_m
    out[:, 0] = np.maximum(total * f_b - stars, 0.0) / MASS_UNIT
    out[:, 1] = total * (1.0 - f_b) / MASS_UNIT
    out[:, 4] = stars / MASS_UNIT
    return out


def write(path: str | Path, cat: Catalogue, *, box_mpc_h: float, params, attrs: dict) -> Path:
    """Write one simulation's catalogue (atomically); ``attrs`` go into Header besides the standard ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    omega_m = float(params[0])
    grouped = cat.sub_group >= 0
    group_stars = np.bincount(cat.sub_group[grouped], weights=cat.sub_mstar[grouped], minlength=cat.n_groups)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        h = f.create_group("Header").attrs
        h.update({"BoxSize": box_mpc_h * KPC, "Ngroups_Total": cat.n_groups, "Nsubgroups_Total": cat.sub_mass.size,
                  "Omega0": omega_m, "OmegaBaryon": camels.OMEGA_B, "OmegaLambda": 1.0 - omega_m,
                  "HubbleParam": camels.H, "Redshift": 0.0, "Time": 1.0,
                  "params": np.asarray(params, dtype=np.float64), "param_names": list(camels.PARAM_NAMES),
                  "units": "positions, radii kpc/h; masses 1e10 Msun/h (as the TNG group files)", **attrs})
        g = f.create_group("Group")
        g["GroupPos"] = (cat.group_pos * KPC).astype(np.float32)
        g["GroupMass"] = (cat.group_mass / MASS_UNIT).astype(np.float32)
        g["GroupLen"] = cat.group_len.astype(np.int32)
        g["GroupMassType"] = _mass_type(cat.group_mass, group_stars, omega_m)
        g["Group_M_Crit200"] = (cat.group_mass / MASS_UNIT).astype(np.float32)
        g["Group_R_Crit200"] = (cat.group_r200c * KPC).astype(np.float32)
        g["GroupFirstSub"] = cat.group_first_sub.astype(np.int32)
        g["GroupNsubs"] = cat.group_n_subs.astype(np.int32)
        g["GroupEnvironment"] = cat.group_env.astype(np.float32)
        g["GroupConcentration"] = cat.group_conc.astype(np.float32)
        s = f.create_group("Subhalo")
        s["SubhaloPos"] = (cat.sub_pos * KPC).astype(np.float32)
        s["SubhaloMass"] = (cat.sub_mass / MASS_UNIT).astype(np.float32)
        mass_type = _mass_type(cat.sub_mass, cat.sub_mstar, omega_m)
        mass_type[:, 0] = 0.0  # subhalo gas is not modelled
        s["SubhaloMassType"] = mass_type
        s["SubhaloGrNr"] = cat.sub_group.astype(np.int32)
        s["SubhaloIsCentral"] = cat.sub_central.astype(np.uint8)
    tmp.replace(path)
    return path


def read(path: str | Path) -> dict[str, np.ndarray]:
    """Every dataset of a catalogue file as {'Group/GroupPos': array, ...} in the file's units, plus
    'Header' (a dict of attributes)."""
    out: dict = {}
    with h5py.File(path, "r") as f:
        out["Header"] = dict(f["Header"].attrs)
        for part in ("Group", "Subhalo"):
            for name, ds in f[part].items():
                out[f"{part}/{name}"] = ds[()]
    return out
