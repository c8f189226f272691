"""One resumable output store for every command that applies a trained model: ``tile``, ``paint`` and later ones.

A store is a Zarr group with

* a ``format`` marker (its kind, :mod:`hpc_vdm.io`), a ``fingerprint`` of everything its numbers depend on,
  provenance, and ``complete`` once every unit of work is recorded;
* **completion records**: uint8 arrays, one entry per unit of work (a slab, a sample of a slab, a block),
  each set only after the data it vouches for is written. A unit's data and its record entry live in
  chunks that only the unit's rank writes, so no two writers ever share a chunk.

:class:`OutputStore` creates a store under a temporary name and renames it (a half-created store never
exists), says whether a path is absent, this run's to resume, or someone else's (:meth:`state`), lets other
ranks wait for rank 0 to create it, and verifies on open that every chunk a record lists is on disk, so a
lost or damaged chunk is an error naming the array and the unit, never fill values.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import zarr

from ..config import describe, differing
from ..data.store import chunk_files
from ..io import atomic_dir, holder_text, is_stale, read_lock


@dataclass(frozen=True)
class Record:
    """A completion record: the uint8 array ``name`` (indexed by unit), the data chunks each set entry vouches
    for (``chunks(index)`` -> [(array, chunk key)]), and how a unit is named in errors."""

    name: str
    chunks: Callable[[tuple[int, ...]], list[tuple[str, str]]]
    label: Callable[[zarr.Group, tuple[int, ...]], str]


class OutputStore:
    """A resumable output store of one ``format`` at ``path`` (``what`` names its kind in messages)."""

    def __init__(self, path: str | Path, *, format: str, what: str, records: Sequence[Record]):
        self.path, self.format, self.what, self.records = Path(path), format, what, tuple(records)

    # -- before writing ---------------------------------------------------------------------------------
    def state(self, fingerprint: dict) -> bool:
        """True if ``path`` is a store of this kind and fingerprint (resume), False if absent; raises otherwise."""
        if not (self.path.exists() or self.path.is_symlink()):
            return False
        try:
            attrs = dict(zarr.open_group(str(self.path), mode="r").attrs)
        except Exception as e:  # noqa: BLE001 - any reason it is not a readable group
            raise FileExistsError(f"{str(self.path)!r} exists and is not a {self.what} ({type(e).__name__}); choose "
                                  f"another --out") from None
        if attrs.get("format") != self.format:
            raise FileExistsError(f"{str(self.path)!r} exists and is not a {self.what} (format "
                                  f"{attrs.get('format')!r}); choose another --out")
        diff = differing(attrs.get("fingerprint", {}), fingerprint)
        if diff:
            raise FileExistsError(f"{str(self.path)!r} holds a {self.what} of another configuration ("
                                  f"{describe(diff, ('stored', 'this run'))}); choose another --out or rerun with "
                                  f"the same settings")
        return True

    def create(self, layout: Callable[[zarr.Group], None], attrs: dict) -> None:
        """Write an empty store (``layout`` makes its arrays) under a temporary name and rename it into place."""
        with atomic_dir(self.path) as tmp:
            root = zarr.open_group(str(tmp), mode="w")
            layout(root)
            root.attrs.update({**attrs, "format": self.format, "complete": False})

    def wait_for(self, launch: str | None = None, timeout_s: float = 600.0) -> None:
        """Ranks other than 0 wait for rank 0 to create the store (and, given ``launch``, to hold its lock: a
        lock of another launch that is alive means another command writes ``path``)."""
        deadline = time.time() + timeout_s
        while True:
            holder = read_lock(self.path) if launch else None
            if holder and holder.get("launch") != launch and not is_stale(holder):
                raise FileExistsError(f"{str(self.path)!r} is being written by another command: {holder_text(holder)}")
            if (self.path / "zarr.json").is_file() and (not launch or (holder and holder.get("launch") == launch)):
                return
            if time.time() > deadline:
                raise TimeoutError(f"rank 0 did not create {str(self.path)!r} within {timeout_s:.0f} s")
            time.sleep(0.2)

    # -- reading and writing ----------------------------------------------------------------------------
    def open(self, mode: str = "r+") -> zarr.Group:
        """The store's group, after :meth:`verify`."""
        root = zarr.open_group(str(self.path), mode=mode)
        self.verify(root)
        return root

    def verify(self, root: zarr.Group) -> None:
        """Every chunk that a completion record lists is on disk (one directory walk per array)."""
        present: dict[str, set[str]] = {}
        for rec in self.records:
            for index in np.argwhere(np.atleast_1d(root[rec.name][:])):
                index = tuple(int(v) for v in index)
                for array, key in rec.chunks(index):
                    if array not in present:
                        present[array] = set(chunk_files(self.path / array))
                    if key not in present[array]:
                        raise ValueError(f"{self.what} {str(self.path)!r} is damaged: array {array!r} has no chunk for "
                                         f"{rec.label(root, index)}, which its record {rec.name!r} lists as written; "
                                         f"remove {str(self.path)!r} and rerun (or use another --out)")

    def done(self, root: zarr.Group, record: str) -> np.ndarray:
        return np.asarray(root[record][:]).astype(bool)

    def mark(self, root: zarr.Group, record: str, index) -> None:
        """Set one entry of a record (after its data is written); the entry's chunk is its unit's."""
        arr = root[record]
        if arr.ndim == 1:
            arr[index] = 1
            return
        row = arr[index[0]]
        row[index[1:]] = 1
        arr[index[0]] = row

    def recorded(self) -> bool:
        """Does any completion record have an entry set (is there work in the store to resume from)?"""
        root = zarr.open_group(str(self.path), mode="r")
        return any(np.asarray(root[rec.name][:]).any() for rec in self.records)

    def remove(self) -> None:
        """Delete the store (only ever one this run created and recorded nothing in)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def mark_complete(self) -> None:
        zarr.open_group(str(self.path), mode="r+").attrs["complete"] = True
