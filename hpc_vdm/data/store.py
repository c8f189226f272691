"""The Zarr maps store (``maps.zarr``): CMD maps in physical units, splits by simulation, train-only statistics.

Layout::

    maps.zarr/
      Mstar, Mcdm, ...   (N, H, W) float32 [(Msun/h)/(Mpc/h)^2]; chunks of whole maps, shards per writer
      params             (n_sims, n_params) float64
      sim                (N,) int32, the simulation of every map (n // maps_per_sim)
      attrs: format (hpc_vdm.maps/1), complete, chunks {array: chunk files written}, suite, set, box_size_mpc_h, pixel_size_mpc_h, slab_thickness_mpc_h, maps_per_sim,
             param_names, fields, units, splits {train, val, test: [sim ids]}, split_seed,
             split_fractions, stats {field: {offset, mean, std, n_pixels}} over the training simulations

The statistics are of log10(x + offset) (offset 1 for Mstar, 0 for Mcdm as in the papers).
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from .. import __version__
from ..io import MAPS, MAPS_KEYS, atomic_dir, check_output, marker
from ..io.inputs import check_store_facts, input_dir

SPLITS = ("train", "val", "test")
COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
CODECS = (COMPRESSOR, Crc32cCodec())  # a damaged chunk fails its checksum on read instead of decoding to junk
WRITE_ALL = {"write_empty_chunks": True}  # every chunk is a file, so a missing file is always damage
# ... also for arrays reopened to be written (a resumed store's): zarr keeps an array's config per handle, not in
# the store, and would otherwise skip a chunk that is all fill value (a paint block with no stars), which the
# store's completion record then lists as written but missing
zarr.config.set({"array.write_empty_chunks": True})


def split_by_simulation(n_sims: int, fractions: Sequence[float], seed: int) -> dict[str, list[int]]:
    """Disjoint train/val/test lists of simulation ids; every split with a positive fraction gets >= 1 sim
    when there are enough simulations, and train takes what the rounding leaves."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(n_sims)
    counts = np.floor(f * n_sims).astype(int)
    wanted = [i for i in (1, 2) if f[i] > 0]
    if n_sims > len(wanted):
        for i in wanted:
            counts[i] = max(counts[i], 1)
    counts[0] = n_sims - counts[1] - counts[2]
    bounds = np.cumsum([0, *counts])
    return {name: sorted(int(s) for s in order[bounds[i]:bounds[i + 1]]) for i, name in enumerate(SPLITS)}


@dataclass
class RunningMoments:
    """Mean and variance merged over blocks (Chan et al.), float64."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta**2 * self.n * n_b / n
        self.n = n

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


# -- written-chunk records: what a complete store holds, checked on open ------------------------------------
def chunk_files(array_dir: Path) -> list[str]:
    """Keys (``c/3/0/0``) of the chunk or shard files of one Zarr v3 array, in index order."""
    base = Path(array_dir) / "c"
    keys = [os.path.relpath(os.path.join(d, f), array_dir).replace(os.sep, "/")
            for d, _, files in os.walk(base) for f in files if not f.startswith(".")]
    return sorted(keys, key=lambda k: [int(v) if v.isdigit() else -1 for v in k.split("/")[1:]])


def record_chunks(store: Path, names) -> dict[str, list[str]]:
    """{array: its chunk keys}: what a complete store holds, recorded in its attrs by the writer."""
    return {name: chunk_files(Path(store) / name) for name in names}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def chunk_span(array_dir: Path, key: str) -> str:
    """What a chunk key covers, by dimension name: ``map 32-47``, ``sample 0, map 3``."""
    meta = _read_json(Path(array_dir) / "zarr.json")
    shape = meta.get("shape", [])
    chunks = meta.get("chunk_grid", {}).get("configuration", {}).get("chunk_shape", shape)
    names = meta.get("dimension_names") or [None] * len(shape)
    parts = []
    for axis, (i, n, c, name) in enumerate(zip((int(v) for v in key.split("/")[1:]), shape, chunks, names)):
        if c >= n:
            continue
        lo, hi = i * c, min((i + 1) * c, n) - 1
        parts.append(f"{name or f'axis {axis}'} {lo}" + (f"-{hi}" if hi > lo else ""))
    return ", ".join(parts) or "the whole array"


def verify_chunks(store: Path, recorded: dict[str, list[str]]) -> None:
    """Every recorded chunk file is present (one directory walk per array); else an error naming it."""
    store = Path(store)
    for name, keys in recorded.items():
        missing = sorted(set(keys) - set(chunk_files(store / name)), key=keys.index)
        if missing:
            raise ValueError(f"store {str(store)!r} is damaged: array {name!r} lacks {len(missing)} of its "
                             f"{len(keys)} chunk files, first {missing[0]} ({chunk_span(store / name, missing[0])}); "
                             f"rewrite the store with the command that made it")


def read_checked(array, index, *, store, name: str, what: str):
    """``array[index]``, a chunk that fails its checksum or decoding raised naming the array and ``what``."""
    try:
        return array[index]
    except ValueError as e:  # zarr's Crc32cCodec and decoders raise ValueError on damaged bytes
        raise ValueError(f"store {str(store)!r} is damaged: {what} of array {name!r} cannot be read "
                         f"({str(e).splitlines()[0]}); rewrite the store with the command that made it") from None


def log_transform(x: np.ndarray, offset: float) -> np.ndarray:
    return np.log10(np.asarray(x, dtype=np.float64) + offset)


def write_store(path: str | Path, fields: Mapping[str, np.ndarray], params: np.ndarray, attrs: dict, *,
                maps_per_chunk: int, maps_per_shard: int, overwrite: bool = False, progress=None) -> Path:
    """Write a store at a temporary path beside ``path`` and rename it into place when complete.

    ``fields`` are (N, H, W) arrays (memory maps are read block by block, one shard at a time, so every
    write owns whole shards). An existing ``path`` is replaced only with ``overwrite``, only if it is a
    maps store (:func:`hpc_vdm.io.check_output`), and only after the new store is complete. Every chunk
    carries a CRC-32C, and the attrs record every chunk file written (``chunks``) and ``complete``.
    """
    path = Path(path)
    check_output(path, MAPS, overwrite=overwrite)
    if maps_per_shard % maps_per_chunk:
        raise ValueError(f"maps_per_shard ({maps_per_shard}) must be a multiple of maps_per_chunk ({maps_per_chunk})")
    first = next(iter(fields.values()))
    n, h, w = first.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(path, replace=overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        shards = (maps_per_shard, h, w) if maps_per_shard > maps_per_chunk else None
        for name, src in fields.items():
            arr = root.create_array(name, shape=(n, h, w), dtype="float32", chunks=(maps_per_chunk, h, w),
                                    shards=shards, compressors=CODECS, fill_value=0.0,
                                    dimension_names=("map", "y", "x"), config=WRITE_ALL)
            for s in range(0, n, maps_per_shard):
                arr[s:s + maps_per_shard] = np.asarray(src[s:s + maps_per_shard], dtype=np.float32)
                if progress is not None:
                    progress(min(maps_per_shard, n - s))
        root.create_array("params", data=np.asarray(params, dtype=np.float64), dimension_names=("sim", "param"),
                          compressors=CODECS, config=WRITE_ALL)
        maps_per_sim = attrs["maps_per_sim"]
        root.create_array("sim", data=(np.arange(n) // maps_per_sim).astype(np.int32), dimension_names=("map",),
                          compressors=CODECS, config=WRITE_ALL)
        root.attrs.update({**attrs, "format": marker(MAPS), "hpc_vdm_version": __version__,
                           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "chunks": record_chunks(tmp, [*fields, "params", "sim"])})
        root.attrs["complete"] = True  # last: the store holds everything ``chunks`` lists
    return path


def verify_store(path: str | Path, attrs: dict) -> None:
    """A maps store is complete and every chunk file it was written with is present (no zarr needed)."""
    if attrs.get("format") != marker(MAPS) and not MAPS_KEYS <= attrs.keys():
        raise ValueError(f"{str(path)!r} is not an hpc_vdm maps store (format {attrs.get('format')!r}, expected "
                         f"{marker(MAPS)!r})")
    if attrs.get("format") != marker(MAPS) or "chunks" not in attrs:
        raise ValueError(f"{str(path)!r} is a maps store without integrity records (format "
                         f"{attrs.get('format')!r}, expected {marker(MAPS)!r}); rewrite it with "
                         f"`python -m hpc_vdm.prepare --overwrite`")
    check_store_facts(attrs, f"maps store {str(path)!r}")
    if attrs.get("complete") is not True:
        raise ValueError(f"maps store {str(path)!r} is incomplete (its writer did not finish); rewrite it with "
                         f"`python -m hpc_vdm.prepare --overwrite`")
    verify_chunks(Path(path), attrs["chunks"])


def store_attrs(path: str | Path, what: str = "maps store", hint: str = "run `python -m hpc_vdm.prepare` first") -> dict:
    """The attrs of the Zarr store at ``path`` read as JSON; a missing path, a file, a folder that is not a
    Zarr store or an unreadable ``zarr.json`` is one error naming the path."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"no {what} at {str(path)!r} ({hint})")
    input_dir(path, what)
    meta = path / "zarr.json"
    if not meta.is_file():
        raise ValueError(f"{what} {str(path)!r} is a folder without zarr.json: not a Zarr store ({hint})")
    try:
        doc = json.loads(meta.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(meta)!r} is not valid JSON ({e}); {str(path)!r} is damaged") from None
    attrs = doc.get("attributes", {}) if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        raise ValueError(f"{str(meta)!r} holds no attributes mapping; {str(path)!r} is damaged")
    return attrs


def open_store(path: str | Path) -> zarr.Group:
    """Open a maps store read-only, checking that it is one, complete, with every chunk it was written with."""
    path = Path(path)
    store_attrs(path)
    root = zarr.open_group(str(path), mode="r")
    missing = [k for k in ("fields", "splits", "stats", "maps_per_sim") if k not in root.attrs]
    if missing:
        raise ValueError(f"{path} is not an hpc_vdm maps store: attrs {missing} missing")
    verify_store(path, dict(root.attrs))
    return root


def read_maps(root: zarr.Group, name: str, maps, store) -> np.ndarray:
    """(n, H, W) maps ``maps`` of array ``name``, a damaged chunk raised naming the array and the map."""
    return np.stack([read_checked(root[name], int(m), store=store, name=name, what=f"map {int(m)}") for m in maps])
