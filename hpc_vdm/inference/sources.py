"""Stellar surface-density slabs of a big volume, from three kinds of input: one typed source object each.

:func:`source_for` turns ``tile.input`` into a :class:`GridSource`, :class:`SnapshotSource` or
:class:`MockSource`; each checks itself against the volume before anything runs (:meth:`SlabSource.check`),
says which axes it can give, reads slabs and describes itself for the output's fingerprint.
Every source returns, for (axis, slab) pairs of a :class:`~hpc_vdm.inference.volumes.Volume`, maps (P, P) float64 in
(M☉/h)/(Mpc/h)², the training maps' unit. A slab along ``axis`` covers [slab·t, (slab+1)·t) Mpc/h on that axis
and its map spans the plane ((axis+1) % 3, (axis+2) % 3), as in CAMELS' map making.

* ``grid``: a 3D stellar mass per voxel [M☉/h] (Zarr array or HDF5 dataset, N³ with N a multiple of the
  map pixels); a voxel belongs to the slab of its centre; read one slab of voxels at a time.
* ``snapshot``: TNG-style HDF5 chunks (``PartType4/Coordinates`` in kpc/h or Mpc/h by the header's
  BoxSize, ``PartType4/Masses`` in 10^10 M☉/h, wind particles with ``GFM_StellarFormationTime`` <= 0
  dropped), read file by file and painted with CIC.
* ``mock`` (the embedded default): the thin-slab particle-mesh box of reference/mock_data.md,
  box × box × (mock_slabs · slab) Mpc/h at the fiducial CAMELS parameters, with the mock's stellar model,
  its stars painted as the mock's maps (CIC at CMD's pixel, pooled to the volume's: :mod:`.painting`);
  slabs along axis 2 only, unless ``mock_slabs`` covers the whole box (a cube: every axis).
"""
from __future__ import annotations

import abc
import contextlib
import glob
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io.inputs import check_values, finite_number, hdf5_dataset, input_dir, open_hdf5, real_floats
from .painting import Pairs, cmd_subpixels, paint, paint_as_cmd, plane_axes
from .volumes import Volume

log = logging.getLogger(__name__)

FIELD = "Mstar"  # what every source gives: stellar surface density; a model must be conditioned on it
TNG_MASS_MSUN_H = 1e10  # PartType4/Masses unit of TNG snapshots


def check_masses(values: np.ndarray, where: str, name: str = "masses", offset=None) -> None:
    """Masses must be finite and non-negative: a NaN or a negative voxel or particle is an error, not a map."""
    check_values(values, name, where, lo=0.0, offset=offset)


@contextlib.contextmanager
def torch_threads_kept():
    """Reading a source may run threaded kernels (numba's OpenMP layer shares libgomp with torch and resets
    its thread count): restore torch's threads after, so the draws use the same kernels whatever was read
    in this process before (a resumed run computes bit for bit what an uninterrupted one does)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# grid
# ---------------------------------------------------------------------------------------------
def open_grid(path: str, key: str):
    """The 3D array (lazy: zarr array or h5py dataset) and the file to close (or None); a file that is not
    HDF5, a key that is missing or a group, and data that are not real floats are refused by name."""
    if path.endswith((".h5", ".hdf5")):
        f = open_hdf5(path, "grid input")
        try:
            ds = hdf5_dataset(f, key, path, "grid input (tile.input_key)")
            real_floats(ds.dtype, f"dataset {key!r}", f"grid input {path!r}")
        except BaseException:
            f.close()
            raise
        return ds, f
    import zarr

    folder = input_dir(path, "grid input")
    if not (folder / "zarr.json").is_file():
        raise ValueError(f"grid input {path!r} is a folder without zarr.json: not a Zarr array or group")
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:  # noqa: BLE001 - any reason it is not a readable Zarr node
        raise ValueError(f"grid input {path!r} cannot be opened as Zarr ({type(e).__name__}: {e})") from None
    if isinstance(node, zarr.Group):
        if key not in node:
            raise ValueError(f"grid input {path!r} has no array {key!r} (tile.input_key; it has "
                             f"{sorted(node.keys())})")
        node = node[key]
        if isinstance(node, zarr.Group):
            raise ValueError(f"{key!r} in grid input {path!r} is a group, not an array (tile.input_key)")
    real_floats(node.dtype, f"array {key!r}", f"grid input {path!r}")
    return node, None


def check_grid(shape, vol: Volume, path: str) -> int:
    """Voxels per map pixel of an N³ grid."""
    if len(shape) != 3 or len(set(shape)) != 1 or shape[0] % vol.pixels:
        raise ValueError(f"grid input {path!r} has shape {tuple(shape)}; volume {vol.name!r} needs a cube of "
                         f"a multiple of {vol.pixels} voxels per side")
    return shape[0] // vol.pixels


def grid_slabs(path: str, key: str, vol: Volume, pairs: Pairs) -> dict:
    arr, handle = open_grid(path, key)
    try:
        f = check_grid(arr.shape, vol, path)
        n, p = arr.shape[0], vol.pixels
        out = {}
        for axis, s in pairs:
            # voxels whose centre (i + 1/2) box/N lies in [s t, (s+1) t)
            lo, hi = (math.ceil(edge * vol.slab_mpc_h * n / vol.box_mpc_h - 0.5) for edge in (s, s + 1))
            index = [slice(None)] * 3
            index[axis] = slice(lo, hi)
            voxels = np.asarray(arr[tuple(index)], dtype=np.float64)
            start = [0, 0, 0]
            start[axis] = lo
            check_masses(voxels, f"grid input {path!r}", f"voxel masses of {key!r}", offset=start)
            block = voxels.sum(axis=axis)  # plane in (min, max) axis order
            if axis == 1:
                block = block.T  # plane (2, 0)
            block = block.reshape(p, f, p, f).sum(axis=(1, 3))
            out[(axis, s)] = block / (vol.box_mpc_h / p) ** 2
        return out
    finally:
        if handle is not None:
            handle.close()


# ---------------------------------------------------------------------------------------------
# TNG-style snapshot chunks
# ---------------------------------------------------------------------------------------------
def snapshot_files(spec: str) -> list[str]:
    if Path(spec).is_symlink() and not Path(spec).exists():
        input_dir(spec, "snapshot input")  # a loop or a dangling link, said so
    if Path(spec).is_dir():
        files = sorted(glob.glob(str(Path(spec) / "*.hdf5")))
    else:
        files = sorted(glob.glob(spec))
    if not files:
        raise FileNotFoundError(f"no snapshot files match {spec!r}")
    return files


def snapshot_length_unit(path: str, f, vol: Volume) -> float:
    """Mpc/h per coordinate unit of one snapshot file, from its header's BoxSize (Mpc/h or kpc/h)."""
    if "Header" not in f or "BoxSize" not in f["Header"].attrs:
        raise ValueError(f"snapshot {path!r} has no Header/BoxSize attribute")
    box = finite_number(np.asarray(f["Header"].attrs["BoxSize"]).ravel()[0] if np.size(f["Header"].attrs["BoxSize"])
                        else None, "Header/BoxSize", f"snapshot {path!r}", positive=True)
    if abs(box / vol.box_mpc_h - 1) < 1e-3:
        return 1.0
    if abs(box / (1e3 * vol.box_mpc_h) - 1) < 1e-3:
        return 1e-3  # kpc/h
    raise ValueError(f"snapshot {path!r} has BoxSize {box:g}; volume {vol.name!r} is "
                     f"{vol.box_mpc_h:g} Mpc/h (or {1e3 * vol.box_mpc_h:g} kpc/h)")


def check_snapshots(spec: str, vol: Volume) -> list[str]:
    """Every file's header and PartType4 datasets (shapes only, no data read); at least one file has stars."""
    import h5py

    files, with_stars = snapshot_files(spec), 0
    for path in files:
        with open_hdf5(path, "snapshot") as f:
            snapshot_length_unit(path, f, vol)
            if "PartType4" not in f:
                continue
            if not isinstance(f["PartType4"], h5py.Group):
                raise ValueError(f"PartType4 in snapshot {path!r} is a dataset, not a group of particle fields")
            for key in ("PartType4/Coordinates", "PartType4/Masses") + (
                    ("PartType4/GFM_StellarFormationTime",) if "GFM_StellarFormationTime" in f["PartType4"] else ()):
                real_floats(hdf5_dataset(f, key, path, "snapshot").dtype, key, f"snapshot {path!r}")
            stars = f["PartType4"]
            n = stars["Masses"].shape[0] if stars["Masses"].ndim == 1 else -1
            if stars["Coordinates"].shape != (n, 3) or n < 0:
                raise ValueError(f"snapshot {path!r}: PartType4/Coordinates {stars['Coordinates'].shape} and "
                                 f"Masses {stars['Masses'].shape} must be (n, 3) and (n,)")
            with_stars += 1
    if not with_stars:
        raise ValueError(f"none of the {len(files)} snapshot files of {spec!r} has PartType4 (stars)")
    return files


def snapshot_slabs(spec: str, vol: Volume, pairs: Pairs, progress: bool = False) -> dict:
    from tqdm import tqdm

    files = snapshot_files(spec)
    out: dict = {}
    for path in tqdm(files, desc="paint snapshot", unit="file", disable=not progress):
        with open_hdf5(path, "snapshot") as f:
            length = snapshot_length_unit(path, f, vol)
            if "PartType4" not in f:
                continue
            stars = f["PartType4"]
            pos = np.asarray(stars["Coordinates"], dtype=np.float64)
            mass = np.asarray(stars["Masses"], dtype=np.float64)
            check_values(pos, "PartType4/Coordinates", f"snapshot {path!r}")
            check_masses(mass, f"snapshot {path!r}", "PartType4/Masses")
            pos, mass = pos * length, mass * TNG_MASS_MSUN_H
            pos %= vol.box_mpc_h
            if "GFM_StellarFormationTime" in stars:
                real = np.asarray(stars["GFM_StellarFormationTime"]) > 0  # drop wind particles
                pos, mass = pos[real], mass[real]
        paint(pos, mass, vol, pairs, out)
    p = vol.pixels
    return {key: out.get(key, np.zeros((p, p))) for key in pairs}


# ---------------------------------------------------------------------------------------------
# mock thin-slab PM box
# ---------------------------------------------------------------------------------------------
def mock_axes(vol: Volume, mock_slabs: int) -> tuple[int, ...]:
    return (0, 1, 2) if mock_slabs >= vol.n_slabs else (2,)


def mock_slabs(vol: Volume, pairs: Pairs, *, slabs: int, spacing_mpc_h: float, pm_steps: int, seed: int,
               suite: str = "IllustrisTNG") -> dict:
    from ..data import camels
    from ..mock import stars
    from ..mock.cosmology import Cosmology
    from ..mock.pm import run_pm

    slabs = min(slabs, vol.n_slabs)
    box = (vol.box_mpc_h, vol.box_mpc_h, slabs * vol.slab_mpc_h)
    shape = tuple(max(2, int(round(b / spacing_mpc_h))) for b in box)
    params = camels.fiducial_params()
    log.info("mock volume: PM box %s Mpc/h, %s particles, %d steps", box, shape, pm_steps)
    ic_seed, star_seed = (np.random.SeedSequence([seed, 300, i]) for i in (0, 1))
    parts = run_pm(Cosmology(params[0], params[1]), shape, box, n_steps=pm_steps, a_start=0.1,
                   rng=np.random.default_rng(ic_seed))
    mstar = stars.stellar_masses(parts, params, stars.SUITES[suite], np.random.default_rng(star_seed))
    return paint_as_cmd(parts.pos, mstar, vol, pairs)


# ---------------------------------------------------------------------------------------------
# the typed sources
# ---------------------------------------------------------------------------------------------
class SlabSource(abc.ABC):
    kind = ""

    @abc.abstractmethod
    def axes(self, vol: Volume) -> tuple[int, ...]:
        """Projection axes this source can give for ``vol``."""

    def slab_indices(self, vol: Volume) -> list[int]:
        """Slab indices this source can give along each of its axes."""
        return list(range(vol.n_slabs))

    @abc.abstractmethod
    def check(self, vol: Volume, pairs: Pairs) -> None:
        """Raise (naming the value) if the source cannot give these slabs of this volume."""

    @abc.abstractmethod
    def read(self, vol: Volume, pairs: Pairs, progress: bool = False) -> dict:
        """{(axis, slab): (P, P) float64 stellar surface density}."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """What the output's numbers depend on (for the store fingerprint)."""

    def memory_bytes(self, vol: Volume, pairs: Pairs) -> float:
        """Working memory of reading ``pairs``: the (P, P) float64 slabs it returns, and what it reads at once."""
        return 8.0 * vol.pixels**2 * len(pairs)


class GridSource(SlabSource):
    kind = "grid"

    def __init__(self, path: str, key: str):
        self.path, self.key = path, key

    def axes(self, vol: Volume) -> tuple[int, ...]:
        return (0, 1, 2)

    def check(self, vol: Volume, pairs: Pairs) -> None:
        arr, handle = open_grid(self.path, self.key)
        try:
            check_grid(arr.shape, vol, self.path)
        finally:
            if handle is not None:
                handle.close()

    def read(self, vol: Volume, pairs: Pairs, progress: bool = False) -> dict:
        with torch_threads_kept():
            return grid_slabs(self.path, self.key, vol, pairs)

    def memory_bytes(self, vol: Volume, pairs: Pairs) -> float:
        """The slabs, and one slab of voxels (float64) read at a time."""
        arr, handle = open_grid(self.path, self.key)
        n = arr.shape[0]
        if handle is not None:
            handle.close()
        return 8.0 * n * n * math.ceil(n * vol.slab_mpc_h / vol.box_mpc_h) + super().memory_bytes(vol, pairs)

    def describe(self) -> dict:
        return {"kind": self.kind, "input": str(Path(self.path).resolve()), "key": self.key}


class SnapshotSource(SlabSource):
    kind = "snapshot"

    def __init__(self, spec: str):
        self.spec = spec

    def axes(self, vol: Volume) -> tuple[int, ...]:
        return (0, 1, 2)

    def check(self, vol: Volume, pairs: Pairs) -> None:
        check_snapshots(self.spec, vol)

    def read(self, vol: Volume, pairs: Pairs, progress: bool = False) -> dict:
        with torch_threads_kept():
            return snapshot_slabs(self.spec, vol, pairs, progress)

    def describe(self) -> dict:
        return {"kind": self.kind, "input": str(Path(self.spec).resolve())}


class MockSource(SlabSource):
    kind = "mock"

    def __init__(self, *, slabs: int, spacing_mpc_h: float, pm_steps: int, seed: int):
        self.slabs, self.spacing_mpc_h, self.pm_steps, self.seed = slabs, spacing_mpc_h, pm_steps, seed

    def axes(self, vol: Volume) -> tuple[int, ...]:
        return mock_axes(vol, self.slabs)

    def slab_indices(self, vol: Volume) -> list[int]:
        return list(range(min(self.slabs, vol.n_slabs)))

    def check(self, vol: Volume, pairs: Pairs) -> None:
        bad = sorted({a for a, _ in pairs if a not in self.axes(vol)})
        if bad:
            raise ValueError(f"the mock volume is a thin-slab box with slabs along axis 2 only (tile.mock_slabs="
                             f"{self.slabs} < {vol.n_slabs}); asked for axes {bad}")
        over = sorted({s for _, s in pairs if s >= self.slabs})
        if over:
            raise ValueError(f"the mock volume has {self.slabs} slab(s) along axis 2 (tile.mock_slabs); "
                             f"asked for slabs {over}")

    def read(self, vol: Volume, pairs: Pairs, progress: bool = False) -> dict:
        with torch_threads_kept():
            return mock_slabs(vol, pairs, slabs=self.slabs, spacing_mpc_h=self.spacing_mpc_h,
                              pm_steps=self.pm_steps, seed=self.seed)

    def describe(self) -> dict:
        return {"kind": self.kind, "input": "mock", "slabs": self.slabs, "spacing_mpc_h": self.spacing_mpc_h,
                "pm_steps": self.pm_steps, "seed": self.seed}

    def memory_bytes(self, vol: Volume, pairs: Pairs) -> float:
        """The PM box's particles (~250 bytes each at its peak, measured) and the slabs."""
        box = (vol.box_mpc_h, vol.box_mpc_h, min(self.slabs, vol.n_slabs) * vol.slab_mpc_h)
        particles = math.prod(max(2, int(round(b / self.spacing_mpc_h))) for b in box)
        fine = 8.0 * (vol.pixels * cmd_subpixels(vol.pixel_mpc_h)) ** 2 * len(pairs)   # maps at CMD's pixel
        return 250.0 * particles + fine + super().memory_bytes(vol, pairs)


def _is_snapshot(path: str) -> bool:
    if not path.endswith((".h5", ".hdf5")):
        return False
    with open_hdf5(path, "tile input") as f:
        return "Header" in f and "PartType4" in f


def source_for(tile_cfg) -> SlabSource:
    """The source ``tile.input`` names: ``mock``, a grid (.zarr/.h5/.hdf5 with an array), or snapshot chunks."""
    spec = tile_cfg.input
    if spec == "mock":
        return MockSource(slabs=tile_cfg.mock_slabs, spacing_mpc_h=tile_cfg.mock_spacing_mpc_h,
                          pm_steps=tile_cfg.mock_pm_steps, seed=tile_cfg.mock_seed)
    if spec.endswith((".zarr", ".h5", ".hdf5")) and Path(spec).exists() and not _is_snapshot(spec):
        return GridSource(spec, tile_cfg.input_key)
    return SnapshotSource(spec)
