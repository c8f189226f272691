"""The tile output store (``OUT.zarr``): resumable, one writer per chunk.

Layout (n selected slabs of P x P pixels, S samples; maps in (M☉/h)/(Mpc/h)²)::

    slabs        (n, 2) int32            (axis, slab) of every row
    cond         (n, P, P) float32       stellar surface density (the conditioning)
    samples      (S, n, P, P) float32    posterior samples of the dark-matter surface density
    mean, std    (n, P, P) float32       posterior mean and standard deviation over the S samples
    cond_done    (n,) uint8              completion record: cond[i] written
    done         (n, S) uint8            completion record: samples[j, i] written
    summary_done (n,) uint8              completion record: mean[i] and std[i] written
    attrs        format, fingerprint (everything the numbers depend on), provenance, units, complete

Every chunk holds one slab (rows of ``done`` included), and a slab belongs to one rank, so no two writers
ever share a chunk. A record is set only after its data; a rerun does what is not recorded and, because
every sample is keyed by (seed, slab, sample, step), ends with the store an uninterrupted run writes.
The store is created under a temporary name and renamed, so a half-created store never exists. Every
data chunk carries a CRC-32C, and opening a store checks that each chunk its records list is on disk
(:func:`verify`), so a lost or damaged chunk is an error naming the array and the slab, never NaNs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import zarr

from ..config import describe, differing
from ..data.store import CODECS, WRITE_ALL, chunk_files, read_checked
from ..io import atomic_dir, holder_text, is_stale, read_lock

FORMAT = "hpc_vdm.tile/1"
UNITS = "(Msun/h)/(Mpc/h)^2"


def check_existing(path: Path, fingerprint: dict) -> bool:
    """True if ``path`` is a tile store of this fingerprint (resume); False if absent; raises otherwise."""
    if not path.exists():
        return False
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as e:  # not a zarr group at all
        raise FileExistsError(f"{str(path)!r} exists and is not a tile output store ({e}); choose another --out")
    if attrs.get("format") != FORMAT:
        raise FileExistsError(f"{str(path)!r} exists and is not a tile output store (format "
                              f"{attrs.get('format')!r}); choose another --out")
    diff = differing(attrs.get("fingerprint", {}), fingerprint)
    if diff:
        raise FileExistsError(f"{str(path)!r} holds an output from another configuration ("
                              f"{describe(diff, ('stored', 'this run'))}); choose another --out or rerun with "
                              f"the same settings")
    return True


def create(path: Path, *, pairs: Sequence[tuple[int, int]], pixels: int, n_samples: int, fingerprint: dict,
           provenance: dict) -> None:
    """Write an empty store under a temporary name and rename it into place."""
    n, p = len(pairs), pixels
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        _layout(root, n, p, pairs, n_samples)
        root.attrs.update({"format": FORMAT, "fingerprint": fingerprint, "provenance": provenance, "units": UNITS,
                           "complete": False})


def _layout(root, n: int, p: int, pairs, n_samples: int) -> None:
    slab = (1, p, p)
    root.create_array("slabs", data=np.asarray(pairs, dtype=np.int32).reshape(n, 2))
    for name in ("cond", "mean", "std"):
        root.create_array(name, shape=(n, p, p), chunks=slab, dtype="float32", fill_value=np.nan,
                          compressors=CODECS, config=WRITE_ALL, dimension_names=("slab", "y", "x"))
    root.create_array("samples", shape=(n_samples, n, p, p), chunks=(1, *slab), dtype="float32", fill_value=np.nan,
                      compressors=CODECS, config=WRITE_ALL, dimension_names=("sample", "slab", "y", "x"))
    root.create_array("cond_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
    root.create_array("summary_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
    root.create_array("done", shape=(n, n_samples), chunks=(1, n_samples), dtype="uint8", fill_value=0)


def wait_for(path: Path, launch: str | None = None, timeout_s: float = 600.0) -> None:
    """Ranks other than 0 wait for rank 0 to create the store (and, given ``launch``, to hold its lock:
    a lock of another launch that is alive means another command writes ``path``)."""
    deadline = time.time() + timeout_s
    while True:
        holder = read_lock(path) if launch else None
        if holder and holder.get("launch") != launch and not is_stale(holder):
            raise FileExistsError(f"{str(path)!r} is being written by another command: {holder_text(holder)}")
        if (path / "zarr.json").is_file() and (not launch or (holder and holder.get("launch") == launch)):
            return
        if time.time() > deadline:
            raise TimeoutError(f"rank 0 did not create {str(path)!r} within {timeout_s:.0f} s")
        time.sleep(0.2)


def verify(path: Path, root) -> None:
    """Every chunk that a completion record lists is on disk (one directory walk per array)."""
    path = Path(path)
    pairs = root["slabs"][:]
    records = {"cond": (root["cond_done"][:], "cond_done"), "mean": (root["summary_done"][:], "summary_done"),
               "std": (root["summary_done"][:], "summary_done")}
    for name, (done, record) in records.items():
        present = set(chunk_files(path / name))
        for i in np.flatnonzero(done):
            if f"c/{i}/0/0" not in present:
                _missing(path, name, record, pairs, i)
    present = set(chunk_files(path / "samples"))
    for i, j in np.argwhere(root["done"][:]):
        if f"c/{j}/{i}/0/0" not in present:
            _missing(path, "samples", "done", pairs, i, j)


def _missing(path: Path, name: str, record: str, pairs, i: int, j: int | None = None):
    axis, slab = (int(v) for v in pairs[i])
    what = f"slab {i} (axis {axis}, slab {slab})" + (f", sample {j}" if j is not None else "")
    raise ValueError(f"tile store {str(path)!r} is damaged: array {name!r} has no chunk for {what}, which its "
                     f"record {record!r} lists as written; remove {str(path)!r} and rerun (or use another --out)")


class TileStore:
    """Reads and writes of one rank on an existing store."""

    def __init__(self, path: Path, mode: str = "r+"):
        self.path = Path(path)
        self.root = zarr.open_group(str(path), mode=mode)
        verify(self.path, self.root)

    def _read(self, name: str, index, what: str) -> np.ndarray:
        return read_checked(self.root[name], index, store=self.path, name=name, what=what)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [tuple(int(v) for v in row) for row in self.root["slabs"][:]]

    @property
    def n_samples(self) -> int:
        return self.root["samples"].shape[0]

    def cond_done(self, i: int) -> bool:
        return bool(self.root["cond_done"][i])

    def samples_left(self, i: int) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.root["done"][i] == 0)]

    def summary_done(self, i: int) -> bool:
        return bool(self.root["summary_done"][i])

    def write_cond(self, i: int, cond: np.ndarray) -> None:
        self.root["cond"][i] = cond.astype(np.float32)
        self.root["cond_done"][i] = 1

    def read_cond(self, i: int) -> np.ndarray:
        return self._read("cond", i, f"slab {i}")

    def write_sample(self, i: int, j: int, x: np.ndarray) -> None:
        self.root["samples"][j, i] = x.astype(np.float32)
        row = self.root["done"][i]
        row[j] = 1
        self.root["done"][i] = row

    def write_summary(self, i: int) -> None:
        """Posterior mean and (population) standard deviation of slab ``i`` over its samples, in float64."""
        x = self._read("samples", (slice(None), i), f"slab {i}").astype(np.float64)  # (S, P, P)
        self.root["mean"][i] = x.mean(axis=0).astype(np.float32)
        self.root["std"][i] = x.std(axis=0).astype(np.float32)
        self.root["summary_done"][i] = 1

    def all_done(self) -> bool:
        return bool(self.root["summary_done"][:].all())

    def mark_complete(self) -> None:
        self.root.attrs["complete"] = True
