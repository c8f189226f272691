"""3D grids -> a Zarr volume store for dm2gal: mass per voxel, sub-cube regions, training statistics.

Layout of ``VOLUME.zarr`` (N^3 voxels of side ``voxel_mpc_h``)::

    dm, subhalo    (N, N, N) float32   dark matter (gravity-only run) and subhalo mass per voxel [Msun/h]
    stellar        (N, N, N) float32   stellar mass per voxel of the matching hydro run [Msun/h] (optional:
                                       a gravity-only volume to paint has none)
    attrs          format, n, box_mpc_h, voxel_mpc_h, fields, regions {test, val: [lo, hi) voxels per
                   axis}, stats {field: {offset, mean, std}} of log10(offset + x) over the training
                   voxels (stellar: the training voxels above min_log_mstar), min_log_mstar, source

Regions follow the paper (Kasmanoff+20 on TNG100 at 2048^3): a test sub-cube at voxels 64..932 and a
validation one at 1000..1800 per axis, scaled to N; training is every voxel outside both. Sources: the
CMD layout ``Grids_{field}_{suite}_{set}_{N}_z=0.00.npy`` ((n_sims, N, N, N) or (N, N, N) densities,
row ``sim``), or explicit files ``{dm, subhalo[, stellar]: path.npy | path.h5[:dataset]}`` (TNG-style).
Everything streams slab by slab along x, so the grids need not fit in memory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from ..io import VOLUME, atomic_dir, check_output
from ..io.inputs import (check_shape, check_store_facts, check_values, hdf5_dataset, need_disk, need_memory,
                         open_hdf5, read_npy, real_floats)
from . import camels
from .store import store_attrs
from .transforms import LogNorm

FORMAT = "hpc_vdm.volume/1"
FIELDS = ("dm", "subhalo", "stellar")       # store names; CMD: dm_field, Msubhalo, Mstar
INPUTS = ("dm", "subhalo")
OFFSET = 1.0                                # log10(1 + x), x in Msun/h per voxel
SLAB = 16                                   # x-planes per streamed read


def open_grid(spec: str, sim: int = 0, name: str = "grid"):
    """A (N, N, N) array-like of one grid file: ``.npy`` (memory-mapped; 4D = stacked simulations, row
    ``sim``) or ``.h5``/``.hdf5`` with ``:dataset`` (default: its only dataset); real floats only."""
    path, key = str(spec), ""
    if ":" in path and path.rsplit(":", 1)[0].endswith((".h5", ".hdf5")):
        path, key = path.rsplit(":", 1)
    what = f"{name} grid file"
    if not (Path(path).exists() or Path(path).is_symlink()):
        raise FileNotFoundError(f"no grid file {path!r} (the {name} grid)")
    if path.endswith(".npy"):
        arr = read_npy(path, what)
    elif path.endswith((".h5", ".hdf5")):
        import h5py

        f = open_hdf5(path, what)
        names = [k for k in f if isinstance(f[k], h5py.Dataset)]
        if not key and len(names) != 1:
            raise ValueError(f"{what} {path!r} holds datasets {names}; name one as {path}:NAME")
        arr = hdf5_dataset(f, key or names[0], path, what)
    else:
        raise ValueError(f"{what} {path!r} must be .npy, .h5 or .hdf5")
    where = f"{what} {path!r}"
    real_floats(arr.dtype, "grid values", where)
    check_shape(arr.shape, "grid", where, ndim=(3, 4))
    if arr.ndim == 4:
        if not 0 <= sim < arr.shape[0]:
            raise ValueError(f"{where} holds {arr.shape[0]} simulations; volume.sim={sim} is not one of them")
        return _Row(arr, sim)
    check_shape(arr.shape, "grid", where, cube=True)
    return arr


class _Row:
    """One simulation of a stacked (n_sims, N, N, N) grid, sliced lazily."""

    def __init__(self, arr, sim: int):
        self.arr, self.sim, self.shape = arr, sim, tuple(arr.shape[1:])

    def __getitem__(self, item):
        return self.arr[(self.sim,) + (item if isinstance(item, tuple) else (item,))]


def grid_specs(d, data) -> dict[str, str]:
    """{store field: file} of a dm2gal section (explicit ``grids`` or the CMD layout of ``data.suite/set``)."""
    if d.grids:
        unknown = set(d.grids) - set(FIELDS)
        if unknown or not set(INPUTS) <= set(d.grids):
            raise ValueError(f"dm2gal.grids must name dm and subhalo (and optionally stellar), got {sorted(d.grids)}")
        return dict(d.grids)
    names = {"dm": d.dm_field, "subhalo": "Msubhalo", "stellar": "Mstar"}
    specs = {k: str(camels.grids_path(d.source_dir, v, data.suite, data.set, d.grid_n)) for k, v in names.items()}
    if not Path(specs["stellar"]).is_file():
        del specs["stellar"]  # a gravity-only volume
    return specs


def regions(n: int, test_box, val_box) -> dict[str, list[int]]:
    """{test, val: [lo, hi)} voxels per axis from box fractions; errors when they overlap or are empty."""
    out = {}
    for name, (a, b) in (("test", test_box), ("val", val_box)):
        lo, hi = int(round(a * n)), int(round(b * n))
        if not 0 <= lo < hi <= n:
            raise ValueError(f"dm2gal.{name}_box {[a, b]} gives voxels [{lo}, {hi}) of {n}: empty or outside the box")
        out[name] = [lo, hi]
    (t0, t1), (v0, v1) = out["test"], out["val"]
    if t0 < v1 and v0 < t1:
        raise ValueError(f"test voxels {out['test']} and validation voxels {out['val']} overlap")
    return out


def in_region(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, box: list[int]) -> np.ndarray:
    """Boolean mask of voxels (broadcast index arrays) inside the [lo, hi)^3 sub-cube ``box``."""
    lo, hi = box
    return ((ix >= lo) & (ix < hi)) & ((iy >= lo) & (iy < hi)) & ((iz >= lo) & (iz < hi))


def train_mask(x0: int, x1: int, n: int, reg: dict) -> np.ndarray:
    """(x1 - x0, N, N) mask of training voxels (outside test and validation) of planes x0..x1."""
    ix, iy, iz = np.ogrid[x0:x1, 0:n, 0:n]
    return ~(in_region(ix, iy, iz, reg["test"]) | in_region(ix, iy, iz, reg["val"]))


def _write_and_sum(src, dst, scale: float, n: int, reg: dict, threshold: float | None, where: str) -> np.ndarray:
    """Copy one grid slab by slab (times ``scale``); returns [count, sum, sum^2] of log10(1 + x) over training
    voxels (above ``threshold`` if given). Every value must be finite and >= 0 (``where`` names the grid)."""
    sums = np.zeros(3)
    for x0 in range(0, n, SLAB):
        x1 = min(x0 + SLAB, n)
        raw = np.asarray(src[x0:x1], dtype=np.float64)
        check_values(raw, "grid values", where, lo=0.0, offset=(x0, 0, 0))
        m = raw * scale                                                  # (slab, N, N) Msun/h per voxel
        check_values(m, f"grid values x {scale:.6g} (mass per voxel)", where, offset=(x0, 0, 0))
        dst[x0:x1] = m.astype(np.float32)
        y = np.log10(OFFSET + m)[train_mask(x0, x1, n, reg)]
        if threshold is not None:
            y = y[y > threshold]
        sums += [y.size, y.sum(), (y * y).sum()]
    return sums


def check_grids(grids: dict) -> int:
    shapes = {k: tuple(g.shape) for k, g in grids.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"grids differ in shape: {shapes}")
    return shapes["dm"][0]


def check_volume(d, data, out: str | Path, *, overwrite: bool = False, force: bool = False) -> dict:
    """Everything about a volume store to write, before anything is written: the grids (files, datasets,
    dtypes, shapes), the regions, the output (not an input, nor around one) and the sizes."""
    specs = grid_specs(d, data)
    grids = {k: open_grid(v, d.sim, k) for k, v in specs.items()}
    n = check_grids(grids)
    reg = regions(n, d.test_box, d.val_box)
    out = Path(out)
    files = [v.rsplit(":", 1)[0] if v.rsplit(":", 1)[0].endswith((".h5", ".hdf5")) else v for v in specs.values()]
    check_output(out, VOLUME, inputs=files, overwrite=overwrite)
    need_memory(8.0 * 4 * SLAB * n * n, f"a {n}^3 volume (reading {SLAB} planes of {n}^2 at a time)", force=force)
    need_disk(4.0 * n**3 * len(grids), out.parent, f"the {n}^3 volume store {str(out)!r} ({len(grids)} float32 "
              f"fields)", force=force)
    return {"specs": specs, "grids": grids, "n": n, "regions": reg}


def prepare_volume(d, data, out: str | Path, *, overwrite: bool = False, force: bool = False,
                   checked: dict | None = None) -> Path:
    """Write the volume store ``out`` from the grids of ``d`` (a ``Dm2galConfig``); returns its path."""
    c = checked or check_volume(d, data, out, overwrite=overwrite, force=force)
    specs, grids, n, reg = c["specs"], c["grids"], c["n"], c["regions"]
    voxel = d.box_mpc_h / n
    scale = voxel**3 if d.grid_units == "density" else 1.0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = {}
    with atomic_dir(out, replace=overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        for name, g in grids.items():
            arr = root.create_array(name, shape=(n, n, n), chunks=(min(d.chunk, n),) * 3, dtype="float32")
            c, s1, s2 = _write_and_sum(g, arr, scale, n, reg, d.min_log_mstar if name == "stellar" else None,
                                       f"{name} grid file {specs[name]!r}")
            if c < 2:
                raise ValueError(f"field {name!r} has {int(c)} training voxels to take statistics from")
            mean = s1 / c
            stats[name] = {"offset": OFFSET, "mean": mean, "std": float(np.sqrt(max(s2 / c - mean**2, 1e-12)))}
        root.attrs.update({"format": FORMAT, "n": n, "box_mpc_h": d.box_mpc_h, "voxel_mpc_h": voxel,
                           "fields": list(grids), "regions": reg, "stats": stats, "min_log_mstar": d.min_log_mstar,
                           "source": {k: str(v) for k, v in specs.items()}, "grid_units": d.grid_units})
    return out


def open_volume(path: str | Path, need: tuple[str, ...] = INPUTS) -> zarr.Group:
    """An existing volume store holding the fields ``need``, its facts finite; one clear error otherwise."""
    path = Path(path)
    attrs = store_attrs(path, "volume store", "python -m hpc_vdm.prepare_volume")
    where = f"volume store {str(path)!r}"
    if attrs.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a dm2gal volume store (format {attrs.get('format')!r}, expected "
                         f"{FORMAT!r})")
    n = attrs.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n of {where} is {n!r}; expected a positive number of voxels per side")
    check_store_facts(attrs, where)
    fields = attrs.get("fields")
    if not isinstance(fields, list):
        raise ValueError(f"fields of {where} is {fields!r}; expected a list of field names")
    missing = [f for f in need if f not in fields]
    if missing:
        raise ValueError(f"volume {str(path)!r} lacks fields {missing} (has {fields})")
    root = zarr.open_group(str(path), mode="r")
    for f in fields:
        if f not in root or not isinstance(root[f], zarr.Array):
            raise ValueError(f"{where} lists field {f!r} but holds no array {f!r}; it is damaged")
        real_floats(root[f].dtype, f"array {f!r}", where)
        if tuple(root[f].shape) != (n, n, n):
            raise ValueError(f"array {f!r} of {where} has shape {tuple(root[f].shape)}; its n says ({n}, {n}, {n})")
    return root


def normalise(mass, stats: dict) -> np.ndarray:
    """Mass per voxel [Msun/h] -> (log10(offset + mass) - mean) / std (float32)."""
    return LogNorm.of(stats).forward(mass)


def denormalise(y, stats: dict) -> np.ndarray:
    """The network's normalised log stellar mass -> mass per voxel [Msun/h] (float64)."""
    return LogNorm.of(stats).inverse(y)


class Channels:
    """A (C, N, N, N) read-only view of volume fields for ``tiling.gather`` (orthogonal reads per field)."""

    def __init__(self, root: zarr.Group, names: tuple[str, ...]):
        self.arrays = [root[f] for f in names]
        self.names, self.store = names, root.store
        self.shape = (len(names), *self.arrays[0].shape)

    @property
    def oindex(self):
        return self

    def __getitem__(self, index):
        """Voxels of every field at an orthogonal index; a NaN, inf or negative mass is an error naming the
        field, the store and the voxel (a comparison with NaN is false: it would pass any mask quietly)."""
        spatial = index[1:]
        out = []
        for name, a in zip(self.names, self.arrays):
            block = np.asarray(a.oindex[spatial])
            if not (np.isfinite(block).all() and (block >= 0).all()):
                bad = np.argwhere(~(np.isfinite(block) & (block >= 0)))[0]
                where = tuple(int(np.atleast_1d(np.arange(s)[i] if isinstance(i, slice) else i)[b])
                              for i, s, b in zip(spatial, a.shape, bad))
                raise ValueError(f"volume store {str(self.store)!r}: field {name!r} holds {float(block[tuple(bad)])!r} "
                                 f"at voxel {where}; masses must be finite and >= 0")
            out.append(block)
        return np.stack(out)
