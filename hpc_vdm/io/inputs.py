"""Inputs checked at the boundary, the same way by every command: files, HDF5 keys, arrays, numbers, sizes.

Every error names the thing (the file, the key or dataset, the config key) and the offending value, and is
raised before anything is written:

* :func:`input_file` / :func:`input_dir`: exists, is what is expected (a folder where a file is expected
  is said so, and the reverse), is not empty, is not a symlink loop or a dangling link, can be read;
* :func:`read_npy`, :func:`open_hdf5`, :func:`hdf5_dataset`: a ``.npy`` or HDF5 file that opens, a key that
  exists and is a dataset (not a group), with :func:`real_floats` (real floating-point numbers only:
  complex, bool, integer, string, object and compound data are refused by name) and a shape;
* :func:`check_values` / :func:`finite_number`: finite and in range, naming the first bad element;
* :func:`need_memory` / :func:`need_disk`: a size that cannot fit is refused up front with what it needs and
  what this machine has (``--force`` for a user who knows better).
"""
from __future__ import annotations

import errno
import math
import os
import shutil
import stat
from pathlib import Path
from typing import Sequence

import numpy as np

_KINDS = {"b": "booleans", "i": "integers", "u": "unsigned integers", "c": "complex numbers", "O": "Python objects",
          "S": "byte strings", "U": "strings", "V": "compound records", "M": "datetimes", "m": "time deltas"}


# -- paths ------------------------------------------------------------------------------------------------
def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError(f"{what} {str(path)!r} is a symlink loop (too many levels of symbolic links)") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            if path.is_symlink():
                raise FileNotFoundError(f"{what} {str(path)!r} is a dangling symlink (to "
                                        f"{os.readlink(path)!r}, which does not exist)") from None
            raise FileNotFoundError(f"no {what} at {str(path)!r}") from None
        raise ValueError(f"{what} {str(path)!r} cannot be read: {os.strerror(e.errno)}") from None


def input_file(path: str | Path, what: str = "input file", *, empty_ok: bool = False) -> Path:
    """``path`` as an existing regular file with content that this process may read; errors name ``what``."""
    path = Path(path)
    st = _stat(path, what)
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{what} {str(path)!r} is a folder; expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {str(path)!r} is not a regular file (a device, pipe or socket)")
    if st.st_size == 0 and not empty_ok:
        raise ValueError(f"{what} {str(path)!r} is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} {str(path)!r} cannot be read: {os.strerror(errno.EACCES)}")
    return path


def input_dir(path: str | Path, what: str = "input folder") -> Path:
    """``path`` as an existing folder this process may list."""
    path = Path(path)
    st = _stat(path, what)
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{what} {str(path)!r} is a file; expected a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r} cannot be listed: {os.strerror(errno.EACCES)}")
    return path


# -- arrays -----------------------------------------------------------------------------------------------
def real_floats(dtype, name: str, where: str) -> None:
    """Refuse every dtype that is not real floating point, naming the array and what it holds."""
    dtype = np.dtype(dtype)
    if dtype.names or dtype.kind not in "f":
        held = _KINDS["V"] if dtype.names else _KINDS.get(dtype.kind, f"kind {dtype.kind!r}")
        raise ValueError(f"{name} in {where} holds {held} (dtype {dtype}); expected real floating-point numbers")


def check_shape(shape: Sequence[int], name: str, where: str, *, ndim: int | Sequence[int] | None = None,
                cube: bool = False) -> tuple[int, ...]:
    """A shape with the right number of axes (and equal sides for a cube), nothing empty."""
    shape = tuple(int(s) for s in shape)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim or ())
    if allowed and len(shape) not in allowed:
        raise ValueError(f"{name} in {where} has shape {shape}; expected {' or '.join(map(str, allowed))} axes")
    if cube and len(set(shape[-3:])) != 1:
        raise ValueError(f"{name} in {where} has shape {shape}; expected a cube (N, N, N)")
    if 0 in shape:
        raise ValueError(f"{name} in {where} is empty (shape {shape})")
    return shape


def check_values(values, name: str, where: str, *, lo: float | None = None, hi: float | None = None,
                 offset: Sequence[int] | None = None) -> None:
    """Every element finite and within [lo, hi]; the first bad one is named by its index (plus ``offset``,
    the position of this block in the whole array) and value."""
    v = np.asarray(values)
    bad = ~np.isfinite(v)
    why = "NaN or inf"
    if not bad.any() and lo is not None:
        bad, why = v < lo, f"below {lo:g}"
    if not bad.any() and hi is not None:
        bad, why = v > hi, f"above {hi:g}"
    if bad.any():
        first = np.argwhere(bad)[0]
        index = tuple(int(i) + int(o) for i, o in zip(first, offset or (0,) * len(first)))
        rule = "finite" + (f" and >= {lo:g}" if lo is not None else "") + (f" and <= {hi:g}" if hi is not None else "")
        raise ValueError(f"{name} in {where}: {int(bad.sum())} value(s) {why}, first {float(v[tuple(first)])!r} "
                         f"at {index if len(index) > 1 else index[0]} (they must be {rule})")


def finite_number(value, key: str, where: str, *, lo: float | None = None, hi: float | None = None,
                  positive: bool = False) -> float:
    """A number read from a file (an attribute, a header): finite, in range; returns it as a float."""
    try:
        if isinstance(value, (str, bytes, bool, np.bool_)):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} of {where} is {value!r}; expected a number") from None
    if not math.isfinite(x) or (positive and x <= 0) or (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = "a finite positive number" if positive else "a finite number" + (
            f" in [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]" if (lo, hi) != (None, None)
            else "")
        raise ValueError(f"{key} of {where} is {x!r}; expected {rng}")
    return x


# lengths a store or a model records (Mpc/h); they must be finite and positive
LENGTHS = ("pixel_size_mpc_h", "slab_thickness_mpc_h", "box_size_mpc_h", "voxel_mpc_h", "box_mpc_h", "pixel_mpc_h",
           "slab_mpc_h")


def check_store_facts(store: dict, where: str) -> None:
    """The lengths and statistics a model carries (or a store records) are finite; std and lengths > 0."""
    for key in LENGTHS:
        if key in store:
            finite_number(store[key], key, where, positive=True)
    stats = store.get("stats", {})
    if not isinstance(stats, dict):
        raise ValueError(f"stats of {where} is {stats!r}; expected a mapping of fields to statistics")
    for name, s in stats.items():
        if not isinstance(s, dict):
            raise ValueError(f"stats.{name} of {where} is {s!r}; expected a mapping with mean and std")
        for key in ("mean", "std", "offset"):
            if key in s:
                finite_number(s[key], f"stats.{name}.{key}", where, positive=key == "std")


def read_npy(path: str | Path, what: str = ".npy file", *, mmap: bool = True) -> np.ndarray:
    """A ``.npy`` array, memory-mapped; empty, truncated, pickled or non-numpy files refused by name."""
    path = input_file(path, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{what} {str(path)!r} is not a readable .npy array ({str(e).splitlines()[0]})") from None


# -- HDF5 -------------------------------------------------------------------------------------------------
def open_hdf5(path: str | Path, what: str = "HDF5 file"):
    """An HDF5 file opened read-only (the caller closes it); a non-HDF5 or unreadable file is refused by name."""
    import h5py

    path = input_file(path, what)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{what} {str(path)!r} is not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{what} {str(path)!r} cannot be opened as HDF5 ({e})") from None


def hdf5_dataset(f, key: str, path: str | Path, what: str = "HDF5 file"):
    """The dataset ``key`` of an open file; missing keys and groups are refused naming the keys there are."""
    import h5py

    parent = key.rpartition("/")[0]
    if key not in f:
        there = sorted(f.keys()) if not parent else sorted(f[parent].keys()) if parent in f else []
        raise ValueError(f"{what} {str(path)!r} has no dataset {key!r} (it has {there})")
    node = f[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{key!r} in {what} {str(path)!r} is a group, not a dataset (it holds {sorted(node.keys())})")
    return node


def read_hdf5_floats(f, key: str, path: str | Path, what: str = "HDF5 file", *, ndim=None, lo=None, hi=None,
                     columns: int | None = None) -> np.ndarray:
    """Dataset ``key`` read whole as float64 after its dtype, shape and values are checked."""
    ds = hdf5_dataset(f, key, path, what)
    where = f"{what} {str(path)!r}"
    real_floats(ds.dtype, key, where)
    shape = check_shape(ds.shape, key, where, ndim=ndim) if ds.size else tuple(ds.shape)
    if columns is not None and (len(shape) != 2 or shape[1] != columns):
        raise ValueError(f"{key} in {where} has shape {shape}; expected (n, {columns})")
    values = np.asarray(ds[()], dtype=np.float64)
    check_values(values, key, where, lo=lo, hi=hi)
    return values


# -- sizes ------------------------------------------------------------------------------------------------
def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PiB"


def available_memory() -> tuple[int, int]:
    """(available, total) bytes of memory on this machine."""
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def need_memory(n_bytes: float, what: str, *, force: bool = False, hint: str = "") -> None:
    """Refuse a job whose working memory ``n_bytes`` exceeds what this machine has available."""
    available, total = available_memory()
    if n_bytes > available and not force:
        raise ValueError(f"{what} needs about {human_bytes(n_bytes)} of memory; this machine has "
                         f"{human_bytes(available)} available ({human_bytes(total)} in all)"
                         f"{'; ' + hint if hint else ''}; pass --force to try anyway (nothing was written)")


def need_disk(n_bytes: float, path: str | Path, what: str, *, force: bool = False) -> None:
    """Refuse an output of about ``n_bytes`` that cannot fit on the filesystem of ``path``."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if n_bytes > free and not force:
        raise ValueError(f"{what} needs about {human_bytes(n_bytes)} of disk; {str(folder)!r} has "
                         f"{human_bytes(free)} free; pass --force to try anyway (nothing was written)")
