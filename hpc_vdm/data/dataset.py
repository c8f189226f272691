"""The torch dataset over ``maps.zarr`` and its deterministic, rank-sharded, resumable sampler.

* :class:`EpochSampler` fixes, for a (seed, epoch), the order of the maps *and* every augmentation draw,
  then gives rank ``r`` of ``w`` the items ``r::w``. Batches therefore do not depend on the number of
  DataLoader workers, and a resumed run that restores (epoch, position) sees the same samples.
* :class:`MapsDataset` reads one map pair per item, normalises it with the store's training statistics
  and applies the drawn augmentation; with ``crop`` > 0 it returns the ``crop`` x ``crop`` periodic crop
  (wrap-around) at the drawn roll, the same for condition and target, so that a network meant for tiled
  windows trains on window-sized pieces that are not whole simulation maps. It opens Zarr lazily in each process (never before workers
  start); workers are spawned, not forked, because zarr's event loop does not survive a fork.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from . import transforms
from .store import read_checked, store_attrs, verify_store


def read_attrs(store: str | Path) -> dict:
    """The store's attributes, read as JSON without starting zarr (safe before spawning workers), after
    checking that the store is complete and holds every chunk file it was written with."""
    attrs = store_attrs(store)
    verify_store(store, attrs)  # one directory walk per array
    return attrs


class MapsDataset(Dataset):
    """(condition, target, params) of the maps of one split; items are ints or (map, dihedral, dy, dx) plans."""

    def __init__(self, store: str | Path, split: str = "train", *, condition: str = "Mstar", target: str = "Mcdm",
                 crop: int = 0, cache_mb: float = 0.0):
        self.store = str(store)
        attrs = read_attrs(store)
        for name in [f for f in (condition, target) if f]:  # condition "": maps alone (an emulator)
            if name not in attrs.get("fields", []):
                raise ValueError(f"field {name!r} not in store {self.store!r} (fields: {attrs.get('fields')})")
        if split not in attrs["splits"]:
            raise ValueError(f"unknown split {split!r}; the store has {sorted(attrs['splits'])}")
        self.condition, self.target, self.split = condition, target, split
        self.stats = {name: attrs["stats"][name] for name in (condition, target) if name}
        mps = int(attrs["maps_per_sim"])
        self.sims = list(attrs["splits"][split])
        self.maps = np.array([s * mps + j for s in self.sims for j in range(mps)], dtype=np.int64)
        self.maps_per_sim = mps
        self.map_pixels = int(attrs["map_pixels"])
        if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or not 0 <= crop <= self.map_pixels:
            raise ValueError(f"crop must be 0 (whole maps) or a side in [1, {self.map_pixels}] pixels (the maps' "
                             f"side), got {crop!r}")
        self.crop = int(crop)
        if not (isinstance(cache_mb, (int, float)) and 0 <= cache_mb < float("inf")):
            raise ValueError(f"cache_mb must be a size in MB >= 0, got {cache_mb!r}")
        self.cache_bytes = int(cache_mb * 2**20)
        self._arrays = None
        self._pid = None
        self._cache, self._cached_bytes = {}, 0   # map -> its normalised fields, read (and checked) once

    def __len__(self) -> int:
        return int(self.maps.size)

    def _open(self):
        if self._arrays is None or self._pid != os.getpid():
            import zarr

            root = zarr.open_group(self.store, mode="r")
            params = read_checked(root["params"], slice(None), store=self.store, name="params", what="the rows")
            self._arrays = (root[self.condition] if self.condition else None, root[self.target], params)
            self._pid = os.getpid()
        return self._arrays

    def __getstate__(self):  # never ship open zarr handles (or a cache) to another process
        return {**self.__dict__, "_arrays": None, "_pid": None, "_cache": {}, "_cached_bytes": 0}

    def _normalised(self, n: int) -> list[np.ndarray]:
        """[target, condition] (1, H, W) float32 of store map ``n``, normalised: kept while the first
        ``cache_bytes`` last (a training split is read again every epoch), copied out of the cache."""
        hit = self._cache.get(n)
        if hit is not None:
            return [m.copy() for m in hit]
        cond_arr, tgt_arr, _ = self._open()
        tgt = read_checked(tgt_arr, n, store=self.store, name=self.target, what=f"map {n}")
        pair = [transforms.normalise(tgt, self.stats[self.target])[None]]                 # (1, H, W)
        if self.condition:
            cond = read_checked(cond_arr, n, store=self.store, name=self.condition, what=f"map {n}")
            pair.append(transforms.normalise(cond, self.stats[self.condition])[None])     # (1, H, W)
        size = sum(m.nbytes for m in pair)
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[n], self._cached_bytes = [m.copy() for m in pair], self._cached_bytes + size
        return pair

    def __getitem__(self, item) -> dict:
        i, k, dy, dx = (int(item), 0, 0, 0) if np.isscalar(item) else (int(v) for v in item)
        params = self._open()[2]
        n = int(self.maps[i])
        pair = self._normalised(n)
        if k or dy or dx:
            pair = [transforms.augment(m, k, (dy, dx)) for m in pair]
        if self.crop:  # the periodic crop whose corner the roll brought to (0, 0)
            pair = [transforms.crop(m, self.crop) for m in pair]
        item = {"target": torch.from_numpy(pair[0]),
                "params": torch.from_numpy(params[n // self.maps_per_sim].astype(np.float32)), "index": n}
        return item | ({"condition": torch.from_numpy(pair[1])} if self.condition else {})


class EpochSampler(Sampler):
    """Deterministic per-(seed, epoch) order and augmentation draws, sharded over ranks, resumable.

    Yields (item, dihedral, dy, dx) plans. Every rank gets ceil(n / world) items (the order wraps
    around to pad), as torch's DistributedSampler does.
    """

    def __init__(self, n_items: int, *, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True,
                 dihedral: bool = True, roll_pixels: int = 0):
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, world={world}), got {rank}")
        if n_items <= 0:
            raise ValueError(f"cannot sample from an empty split (n_items={n_items})")
        self.n_items, self.seed, self.rank, self.world = n_items, seed, rank, world
        self.shuffle, self.dihedral, self.roll_pixels = shuffle, dihedral, roll_pixels
        self.epoch, self.position = 0, 0

    def __len__(self) -> int:
        return math.ceil(self.n_items / self.world)

    def plan(self, epoch: int) -> np.ndarray:
        """(len, 4) int64 plan of this rank for ``epoch``: item, dihedral element, dy, dx."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        n = self.n_items
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        k = rng.integers(0, transforms.N_DIHEDRAL, n) if self.dihedral else np.zeros(n, np.int64)
        shifts = rng.integers(0, self.roll_pixels, (n, 2)) if self.roll_pixels else np.zeros((n, 2), np.int64)
        full = np.column_stack([order, k, shifts]).astype(np.int64)  # independent of the world size
        full = np.resize(full, (len(self) * self.world, 4))  # wrap around to pad
        return full[self.rank::self.world]

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = int(epoch), int(position)

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        plan = self.plan(self.epoch)
        start, self.position = self.position, 0  # a resume position applies to one pass only
        for row in plan[start:]:
            yield tuple(int(v) for v in row)


def make_loader(dataset: MapsDataset, sampler: EpochSampler, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A DataLoader whose workers are spawned (zarr is not fork-safe) and persist across epochs."""
    extra = {}
    if num_workers > 0:
        extra = {"multiprocessing_context": "spawn", "persistent_workers": True, "prefetch_factor": 2}
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=False, **extra)


def build_loader(data_cfg, split: str, *, rank: int = 0, world: int = 1, train: bool = True):
    """Dataset, sampler and loader of one split from a :class:`~hpc_vdm.config.DataConfig`."""
    crop = int(getattr(data_cfg, "crop", 0)) if train else 0  # crops train; held-out maps stay whole
    ds = MapsDataset(data_cfg.store, split, condition=data_cfg.condition, target=data_cfg.target, crop=crop,
                     cache_mb=data_cfg.cache_mb if train else 0.0)
    sampler = EpochSampler(len(ds), seed=data_cfg.seed, rank=rank, world=world, shuffle=train,
                           dihedral=train and data_cfg.augment_dihedral,  # a crop's position is the roll's draw
                           roll_pixels=ds.map_pixels if train and (data_cfg.augment_roll or crop) else 0)
    return ds, sampler, make_loader(ds, sampler, data_cfg.batch_size, data_cfg.num_workers if train else 0)


def spread(n_items: int, n: int) -> list[int]:
    """``n`` item indices spread evenly over ``range(n_items)`` (every simulation of a split, not the first
    maps of one): held-out maps for validation and ``sample``. Deterministic; all items if n >= n_items."""
    n = min(n, n_items)
    return [(i * n_items) // n for i in range(n)]


def held_out_maps(attrs: dict, split: str, n_maps: int) -> list[int]:
    """``n_maps`` store indices spread over every simulation of ``split`` of a maps store (its attrs)."""
    sims = attrs["splits"][split]
    per_sim = attrs["maps_per_sim"]
    index = [s * per_sim + k for s in sims for k in range(per_sim)]
    if not index:
        raise ValueError(f"split {split!r} of the store has no simulations")
    return [index[i] for i in spread(len(index), n_maps)]


def stratified_maps(attrs: dict, split: str, n_maps: int, seed: int) -> list[int]:
    """``n_maps`` store indices from every simulation of ``split`` in turn (seed-fixed order of simulations
    and of maps within each), sorted: the held-out maps of ``evaluate``."""
    sims = list(attrs["splits"].get(split, []))
    per_sim = int(attrs["maps_per_sim"])
    if not sims:
        raise ValueError(f"split {split!r} of the store has no simulations")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
    order = [int(s) for s in rng.permutation(sims)]
    within = {s: rng.permutation(per_sim) for s in order}
    n = min(n_maps, len(sims) * per_sim)
    picked = [order[i % len(order)] * per_sim + int(within[order[i % len(order)]][i // len(order)]) for i in range(n)]
    return sorted(picked)
