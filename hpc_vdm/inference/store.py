"""The tile output store (``OUT.zarr``), an :class:`~hpc_vdm.inference.output.OutputStore` of slabs.

Layout (n selected slabs of P x P pixels, S draws — posterior samples, or one for a deterministic model;
maps in (M☉/h)/(Mpc/h)²)::

    slabs        (n, 2) int32            (axis, slab) of every row
    cond         (n, P, P) float32       the condition (stellar surface density)
    samples      (S, n, P, P) float32    the model's draws of the target (dark-matter surface density)
    mean, std    (n, P, P) float32       mean and standard deviation over the S draws
    cond_done    (n,) uint8              completion record: cond[i] written
    done         (n, S) uint8            completion record: samples[j, i] written
    summary_done (n,) uint8              completion record: mean[i] and std[i] written
    attrs        format, fingerprint (everything the numbers depend on), provenance, units, complete

Every chunk holds one slab (rows of ``done`` included), and a slab belongs to one rank. Every data chunk
carries a CRC-32C; a rerun does what is not recorded and, because every draw is keyed by (seed, slab,
sample, step), ends with the store an uninterrupted run writes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import zarr

from ..data.store import CODECS, WRITE_ALL, read_checked
from .output import OutputStore, Record

FORMAT = "hpc_vdm.tile/1"
UNITS = "(Msun/h)/(Mpc/h)^2"


def _slab(root, index) -> str:
    axis, slab = (int(v) for v in root["slabs"][index[0]])
    return f"slab {index[0]} (axis {axis}, slab {slab})" + (f", sample {index[1]}" if len(index) > 1 else "")


RECORDS = (Record("cond_done", lambda i: [("cond", f"c/{i[0]}/0/0")], _slab),
           Record("summary_done", lambda i: [("mean", f"c/{i[0]}/0/0"), ("std", f"c/{i[0]}/0/0")], _slab),
           Record("done", lambda i: [("samples", f"c/{i[1]}/{i[0]}/0/0")], _slab))


def tile_store(path: str | Path) -> OutputStore:
    return OutputStore(path, format=FORMAT, what="tile store", records=RECORDS)


def layout(pairs: Sequence[tuple[int, int]], pixels: int, n_samples: int):
    """The arrays of a new tile store of ``pairs`` slabs of ``pixels``² and ``n_samples`` draws."""
    n, p = len(pairs), pixels

    def make(root: zarr.Group) -> None:
        slab = (1, p, p)
        root.create_array("slabs", data=np.asarray(pairs, dtype=np.int32).reshape(n, 2))
        for name in ("cond", "mean", "std"):
            root.create_array(name, shape=(n, p, p), chunks=slab, dtype="float32", fill_value=np.nan,
                              compressors=CODECS, config=WRITE_ALL, dimension_names=("slab", "y", "x"))
        root.create_array("samples", shape=(n_samples, n, p, p), chunks=(1, *slab), dtype="float32",
                          fill_value=np.nan, compressors=CODECS, config=WRITE_ALL,
                          dimension_names=("sample", "slab", "y", "x"))
        root.create_array("cond_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
        root.create_array("summary_done", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0)
        root.create_array("done", shape=(n, n_samples), chunks=(1, n_samples), dtype="uint8", fill_value=0)

    return make


class TileRows:
    """One rank's reads and writes of slab rows of an open (verified) tile store."""

    def __init__(self, store: OutputStore, root: zarr.Group):
        self.store, self.root = store, root

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [tuple(int(v) for v in row) for row in self.root["slabs"][:]]

    def cond_done(self, i: int) -> bool:
        return bool(self.root["cond_done"][i])

    def samples_left(self, i: int) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.root["done"][i] == 0)]

    def summary_done(self, i: int) -> bool:
        return bool(self.root["summary_done"][i])

    def write_cond(self, i: int, cond: np.ndarray) -> None:
        self.root["cond"][i] = cond.astype(np.float32)
        self.store.mark(self.root, "cond_done", i)

    def read_cond(self, i: int) -> np.ndarray:
        return read_checked(self.root["cond"], i, store=self.store.path, name="cond", what=f"slab {i}")

    def write_sample(self, i: int, j: int, x: np.ndarray) -> None:
        self.root["samples"][j, i] = x.astype(np.float32)
        self.store.mark(self.root, "done", (i, j))

    def write_summary(self, i: int) -> None:
        """Mean and (population) standard deviation of slab ``i`` over its draws, in float64."""
        x = read_checked(self.root["samples"], (slice(None), i), store=self.store.path, name="samples",
                         what=f"slab {i}").astype(np.float64)                                    # (S, P, P)
        self.root["mean"][i] = x.mean(axis=0).astype(np.float32)
        self.root["std"][i] = x.std(axis=0).astype(np.float32)
        self.store.mark(self.root, "summary_done", i)


def all_done(root: zarr.Group) -> bool:
    return bool(root["summary_done"][:].all())


def verify(path: Path, root: zarr.Group) -> None:
    """Every chunk that a completion record of the tile store at ``path`` lists is on disk."""
    tile_store(path).verify(root)
