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

from ..io import atomic_dir
from . import camels
from .transforms import LogNorm

FORMAT = "hpc_vdm.volume/1"
FIELDS = ("dm", "subhalo", "stellar")       # store names; CMD: dm_field, Msubhalo, Mstar
INPUTS = ("dm", "subhalo")
OFFSET = 1.0                                # log10(1 + x), x in Msun/h per voxel
SLAB = 16                                   # x-planes per streamed read


def open_grid(spec: str, sim: int = 0):
    """A (N, N, N) array-like of one grid file: ``.npy`` (memory-mapped; 4D = stacked simulations, row
    ``sim``) or ``.h5``/``.hdf5`` with ``:dataset`` (default: its only dataset)."""
    path, key = str(spec), ""
    if ":" in path and path.rsplit(":", 1)[0].endswith((".h5", ".hdf5")):
        path, key = path.rsplit(":", 1)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no grid file {path!r}")
    if path.endswith(".npy"):
        arr = np.load(path, mmap_mode="r")
    elif path.endswith((".h5", ".hdf5")):
        import h5py

        f = h5py.File(path, "r")
        names = [k for k in f if isinstance(f[k], h5py.Dataset)]
        if not key and len(names) != 1:
            raise ValueError(f"{path!r} holds datasets {names}; name one as {path}:NAME")
        arr = f[key or names[0]]
    else:
        raise ValueError(f"grid {path!r} must be .npy, .h5 or .hdf5")
    if arr.ndim == 4:
        if not 0 <= sim < arr.shape[0]:
            raise ValueError(f"{path!r} holds {arr.shape[0]} simulations; sim={sim} is not one of them")
        return _Row(arr, sim)
    if arr.ndim != 3 or len(set(arr.shape)) != 1:
        raise ValueError(f"grid {path!r} must be a cube (N, N, N) or (n_sims, N, N, N), got shape {arr.shape}")
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


def _write_and_sum(src, dst, scale: float, n: int, reg: dict, threshold: float | None) -> np.ndarray:
    """Copy one grid slab by slab (times ``scale``); returns [count, sum, sum^2] of log10(1 + x) over training
    voxels (above ``threshold`` if given)."""
    sums = np.zeros(3)
    for x0 in range(0, n, SLAB):
        x1 = min(x0 + SLAB, n)
        m = np.asarray(src[x0:x1], dtype=np.float64) * scale          # (slab, N, N) Msun/h per voxel
        if not np.isfinite(m).all() or (m < 0).any():
            raise ValueError(f"grid values must be finite and >= 0 (planes {x0}..{x1} are not)")
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


def prepare_volume(d, data, out: str | Path) -> Path:
    """Write the volume store ``out`` from the grids of ``d`` (a ``Dm2galConfig``); returns its path."""
    specs = grid_specs(d, data)
    grids = {k: open_grid(v, d.sim) for k, v in specs.items()}
    n = check_grids(grids)
    reg = regions(n, d.test_box, d.val_box)
    voxel = d.box_mpc_h / n
    scale = voxel**3 if d.grid_units == "density" else 1.0
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{str(out)!r} exists; remove it or choose another data.store")
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = {}
    with atomic_dir(out) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        for name, g in grids.items():
            arr = root.create_array(name, shape=(n, n, n), chunks=(min(d.chunk, n),) * 3, dtype="float32")
            c, s1, s2 = _write_and_sum(g, arr, scale, n, reg, d.min_log_mstar if name == "stellar" else None)
            if c < 2:
                raise ValueError(f"field {name!r} has {int(c)} training voxels to take statistics from")
            mean = s1 / c
            stats[name] = {"offset": OFFSET, "mean": mean, "std": float(np.sqrt(max(s2 / c - mean**2, 1e-12)))}
        root.attrs.update({"format": FORMAT, "n": n, "box_mpc_h": d.box_mpc_h, "voxel_mpc_h": voxel,
                           "fields": list(grids), "regions": reg, "stats": stats, "min_log_mstar": d.min_log_mstar,
                           "source": {k: str(v) for k, v in specs.items()}, "grid_units": d.grid_units})
    return out


def open_volume(path: str | Path, need: tuple[str, ...] = INPUTS) -> zarr.Group:
    """An existing volume store holding the fields ``need``; one clear error otherwise."""
    path = Path(path)
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as e:
        raise FileNotFoundError(f"no volume store at {str(path)!r} (python -m hpc_vdm.prepare_volume): {e}") from None
    if root.attrs.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a dm2gal volume store (format {root.attrs.get('format')!r})")
    missing = [f for f in need if f not in root.attrs["fields"]]
    if missing:
        raise ValueError(f"volume {str(path)!r} lacks fields {missing} (has {root.attrs['fields']})")
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
        self.shape = (len(names), *self.arrays[0].shape)

    @property
    def oindex(self):
        return self

    def __getitem__(self, index):
        spatial = index[1:]
        return np.stack([np.asarray(a.oindex[spatial]) for a in self.arrays])
