"""The CAMELS Multifield Dataset (CMD) file layout, units and constants.

Files (one per field, suite and set), as distributed by CMD and written by ``hpc_vdm.mock``::

    Maps_{field}_{suite}_{set}_z=0.00.npy     (15 * n_sims, 256, 256) float32, (Msun/h)/(Mpc/h)^2
    params_{set}_{suite}.txt                  (n_sims, 6): Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2
    Maps_Mtot_Nbody_{suite}_{set}_z=0.00.npy  the N-body twins (same ICs and map order as the hydro maps)
    Grids_{field}_{suite}_{set}_{N}_z=0.00.npy  (n_sims, N, N, N) float32 3D densities, (Msun/h)/(Mpc/h)^3
    FOF_Subfind_{suite}_{set}_z=0.00/fof_subhalo_tab_{sim:04d}.hdf5   halo/galaxy catalogue per simulation

Map ``n`` belongs to simulation ``n // 15``; inside a simulation ``n % 15 = 5 * axis + slab``, the
slab being ``[slab * L/5, (slab + 1) * L/5)`` along ``axis`` and the image axes ``(axis+1) % 3, (axis+2) % 3``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.inputs import check_values, input_file, read_npy, real_floats

PARAM_NAMES = ("Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2")
PARAM_RANGES = {  # the LH prior of CAMELS; A's are sampled log-uniformly
    "Omega_m": (0.1, 0.5), "sigma_8": (0.6, 1.0),
    "A_SN1": (0.25, 4.0), "A_AGN1": (0.25, 4.0), "A_SN2": (0.5, 2.0), "A_AGN2": (0.5, 2.0),
}
LOG_PARAMS = ("A_SN1", "A_AGN1", "A_SN2", "A_AGN2")
FIDUCIAL = {"Omega_m": 0.3, "sigma_8": 0.8, "A_SN1": 1.0, "A_AGN1": 1.0, "A_SN2": 1.0, "A_AGN2": 1.0}

# Fixed CAMELS cosmology besides (Omega_m, sigma_8).
H = 0.6711
OMEGA_B = 0.049
N_S = 0.9624
RHO_CRIT = 2.77536627e11  # (Msun/h) / (Mpc/h)^3
BOX_MPC_H = 25.0
MAP_PIXELS = 256
N_SLABS = 5
N_AXES = 3
MAPS_PER_SIM = N_SLABS * N_AXES
MAP_UNITS = "(Msun/h)/(Mpc/h)^2"


NBODY = "_Nbody"  # a field named e.g. 'Mtot_Nbody' is that field of the suite's N-body twins


def maps_path(root: str | Path, field: str, suite: str, set_: str, z: float = 0.0) -> Path:
    """A CMD maps file; ``field`` 'Mtot_Nbody' names the suite's N-body twin file
    ``Maps_Mtot_Nbody_{suite}_{set}`` (CMD spells the twins as a suite, 'Nbody_IllustrisTNG')."""
    if field.endswith(NBODY):
        field, suite = field[:-len(NBODY)], nbody_suite(suite)
    return Path(root) / f"Maps_{field}_{suite}_{set_}_z={z:.2f}.npy"


def nbody_suite(suite: str) -> str:
    """CMD's name of a suite's N-body twins, e.g. 'Nbody_IllustrisTNG'."""
    return f"Nbody_{suite}"


def grids_path(root: str | Path, field: str, suite: str, set_: str, n: int, z: float = 0.0) -> Path:
    return Path(root) / f"Grids_{field}_{suite}_{set_}_{n}_z={z:.2f}.npy"


def catalogue_dir(root: str | Path, suite: str, set_: str, z: float = 0.0) -> Path:
    return Path(root) / f"FOF_Subfind_{suite}_{set_}_z={z:.2f}"


def catalogue_path(root: str | Path, suite: str, set_: str, sim: int, z: float = 0.0) -> Path:
    """The Subfind-like HDF5 group file of one simulation (TNG units: kpc/h, 1e10 Msun/h)."""
    return catalogue_dir(root, suite, set_, z) / f"fof_subhalo_tab_{sim:04d}.hdf5"


def params_path(root: str | Path, suite: str, set_: str) -> Path:
    return Path(root) / f"params_{set_}_{suite}.txt"


def map_index(sim: int, axis: int, slab: int, n_slabs: int = N_SLABS) -> int:
    """Index of a map in a CMD file: ``sim * 15 + 5 * axis + slab``."""
    return sim * n_slabs * N_AXES + n_slabs * axis + slab


def mean_surface_density(omega_m: float, slab_mpc_h: float = BOX_MPC_H / N_SLABS) -> float:
    """Mean CDM surface density of a slab, (Omega_m - Omega_b) rho_crit * thickness [(Msun/h)/(Mpc/h)^2]."""
    return (omega_m - OMEGA_B) * RHO_CRIT * slab_mpc_h


def cdm_level_regressor(names) -> tuple[int, float, float]:
    """(i, scale, shift) with shift + scale θ_i = Omega_m − Omega_b for θ the parameters ``names`` normalised by
    :func:`normalise_params`: the regressor log10(Omega_m − Omega_b) of a log map's level (the slab's mean CDM
    surface density, :func:`mean_surface_density`), for ``model.vdm.prior_level: log_cdm``."""
    names = list(names)
    if "Omega_m" not in names:
        raise ValueError(f"the log10(Omega_m - Omega_b) level regressor reads Omega_m, which the model is not given "
                         f"(model.params = {names})")
    lo, hi = PARAM_RANGES["Omega_m"]
    return names.index("Omega_m"), hi - lo, lo - OMEGA_B


def open_maps(root: str | Path, field: str, suite: str, set_: str) -> np.ndarray:
    """Memory-map one CMD maps file (never read whole into RAM)."""
    path = maps_path(root, field, suite, set_)
    if not (path.exists() or path.is_symlink()):
        twin = " (the N-body twins: CMD's Maps_Mtot_Nbody_* files, or a mock with mock.nbody=true)" if field.endswith(NBODY) else ""
        raise FileNotFoundError(f"missing CMD maps file {str(path)!r} (field {field!r}, suite {suite!r}, set {set_!r}){twin}")
    maps = read_npy(path, f"CMD maps file (field {field})")
    real_floats(maps.dtype, f"maps of field {field!r}", repr(str(path)))
    return maps


def load_params(root: str | Path, suite: str, set_: str) -> np.ndarray:
    """The (n_sims, n_params) parameter table; '#' lines are comments."""
    path = params_path(root, suite, set_)
    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"missing CMD params file {str(path)!r} (suite {suite!r}, set {set_!r})")
    input_file(path, "CMD params file")
    try:
        params = np.loadtxt(path, ndmin=2, dtype=np.float64)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not a table of numbers: {e}") from None
    if params.size == 0:
        raise ValueError(f"CMD params file {str(path)!r} holds no rows (only comments or blank lines)")
    if params.shape[1] < len(PARAM_NAMES):
        raise ValueError(f"{str(path)!r} has {params.shape[1]} columns; a CAMELS params file has at least "
                         f"{len(PARAM_NAMES)} ({' '.join(PARAM_NAMES)})")
    check_values(params[:, :len(PARAM_NAMES)], "params (rows, columns)", f"CMD params file {str(path)!r}", lo=0.0)
    check_values(params, "params (rows, columns)", f"CMD params file {str(path)!r}")
    if (params[:, :len(PARAM_NAMES)] <= 0).any():
        row, col = np.argwhere(params[:, :len(PARAM_NAMES)] <= 0)[0]
        raise ValueError(f"CMD params file {str(path)!r}: {PARAM_NAMES[col]} of simulation {row} is "
                         f"{params[row, col]!r}; CAMELS parameters are positive")
    return params


def save_params(path: str | Path, params: np.ndarray) -> None:
    np.savetxt(path, params, fmt="%.8e", header=" ".join(PARAM_NAMES))


def normalise_params(params: np.ndarray, names=PARAM_NAMES) -> np.ndarray:
    """(..., 6) CAMELS parameter rows -> (..., len(names)) of the named ones, each scaled to [0, 1] over the
    LH prior (log-uniform for the feedback A's)."""
    params = np.asarray(params, dtype=np.float64)
    unknown = [n for n in names if n not in PARAM_NAMES]
    if unknown:
        raise ValueError(f"{unknown} are not CAMELS parameters {list(PARAM_NAMES)}")
    out = np.empty((*params.shape[:-1], len(names)))
    for j, name in enumerate(names):
        lo, hi = PARAM_RANGES[name]
        x = params[..., PARAM_NAMES.index(name)]
        out[..., j] = (np.log(x / lo) / np.log(hi / lo)) if name in LOG_PARAMS else (x - lo) / (hi - lo)
    return out.astype(np.float32)


def fiducial_params() -> np.ndarray:
    """(6,) the CAMELS fiducial parameters in :data:`PARAM_NAMES` order (the 1P and CV sets' centre)."""
    return np.array([FIDUCIAL[n] for n in PARAM_NAMES], dtype=np.float64)
