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
The store is created under a temporary name and renamed, so a half-created store never exists.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import zarr

from ..config import describe, differing
from ..io import atomic_dir

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
        root.create_array(name, shape=(n, p, p), chunks=slab, dtype="float32", fill_value=np.nan)
    root.create_array("samples", shape=(n_samples, n, p, p), chunks=(1, *slab), dtype="float32", fill_value=np.nan)
    root.create_array("cond_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
    root.create_array("summary_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
    root.create_array("done", shape=(n, n_samples), chunks=(1, n_samples), dtype="uint8", fill_value=0)


def wait_for(path: Path, timeout_s: float = 600.0) -> None:
    """Ranks other than 0 wait for rank 0 to create the store."""
    deadline = time.time() + timeout_s
    while not (path / "zarr.json").is_file():
        if time.time() > deadline:
            raise TimeoutError(f"rank 0 did not create {str(path)!r} within {timeout_s:.0f} s")
        time.sleep(0.2)


class TileStore:
    """Reads and writes of one rank on an existing store."""

    def __init__(self, path: Path, mode: str = "r+"):
        self.path = Path(path)
        self.root = zarr.open_group(str(path), mode=mode)

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
        return self.root["cond"][i]

    def write_sample(self, i: int, j: int, x: np.ndarray) -> None:
        self.root["samples"][j, i] = x.astype(np.float32)
        row = self.root["done"][i]
        row[j] = 1
        self.root["done"][i] = row

    def write_summary(self, i: int) -> None:
        """Posterior mean and (population) standard deviation of slab ``i`` over its samples, in float64."""
        x = self.root["samples"][:, i].astype(np.float64)  # (S, P, P)
        self.root["mean"][i] = x.mean(axis=0).astype(np.float32)
        self.root["std"][i] = x.std(axis=0).astype(np.float32)
        self.root["summary_done"][i] = 1

    def all_done(self) -> bool:
        return bool(self.root["summary_done"][:].all())

    def mark_complete(self) -> None:
        self.root.attrs["complete"] = True
