"""3D patches for dm2gal: centres above a stellar-mass threshold, the 24 cube rotations, weighted sampling.

* Centres: voxels of a region whose true log10(1 + M*) exceeds ``min_log_mstar``; the input is the
  periodic (2, P, P, P) patch of normalised [dm, subhalo] around the centre (context may straddle region
  borders and wraps around the box), the target the normalised log stellar mass of the centre.
* Rotations: the 24 proper rotations of the cube (axis permutations with flips, determinant +1), the
  same for both channels; they fix the central voxel of an odd patch, so the target is unchanged.
* ``centres=subhalo`` (an extension for painting gravity-only runs, where the true stars are unknown):
  every voxel with subhalo mass is a centre too, starless ones at a floor below the threshold; the
  painter then leaves voxels predicted below the threshold empty.
* Weights: 1 / count of the target's bin among ``bins`` equal bins in log mass between the smallest and
  largest training target (the paper: 100 bins from 1e8 to 1e11.5 Msun/h). :class:`WeightedSampler` draws
  with replacement with these weights and a rotation per draw, keyed by (seed, epoch), split over ranks
  and resumable like :class:`~hpc_vdm.data.dataset.EpochSampler`.
"""
from __future__ import annotations

import itertools
import math
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from . import volume as vol


def _rotations() -> list[tuple[tuple[int, int, int], tuple[bool, bool, bool]]]:
    """(axis permutation, flips) of the 24 proper rotations, identity first."""
    out = []
    for perm in itertools.permutations(range(3)):
        sign = np.linalg.det(np.eye(3)[list(perm)])
        for flips in itertools.product((False, True), repeat=3):
            if sign * (-1) ** sum(flips) > 0:
                out.append((perm, flips))
    return out


ROTATIONS = _rotations()
FLOOR_DEX = 0.5   # centres=subhalo: starless subhalo voxels are trained towards min_log_mstar - 0.5


def rotation_matrix(r: int) -> np.ndarray:
    """(3, 3) integer matrix R of rotation ``r``: rotate(x, r)[R v + c] = x[v + c] about the centre c."""
    perm, flips = ROTATIONS[r]
    m = np.zeros((3, 3), dtype=int)
    for new_ax, old_ax in enumerate(perm):
        m[new_ax, old_ax] = -1 if flips[new_ax] else 1
    return m


def rotate(x: np.ndarray, r: int) -> np.ndarray:
    """Rotation ``r`` in [0, 24) of the last three axes of x (..., P, P, P), about the cube's centre."""
    perm, flips = ROTATIONS[r]
    lead = x.ndim - 3
    y = np.transpose(x, tuple(range(lead)) + tuple(lead + p for p in perm))
    for ax, f in enumerate(flips):
        if f:
            y = np.flip(y, lead + ax)
    return np.ascontiguousarray(y)


def centres(stellar, box: list[int] | None, n: int, min_log_mstar: float, exclude: list[list[int]] = (),
            subhalo=None):
    """((m, 3) int voxel centres, (m,) log10(1 + M*)) above the threshold, inside ``box`` (None: the whole
    volume) and outside every sub-cube of ``exclude``; streamed by x-slabs. Given ``subhalo`` (the
    ``centres=subhalo`` extension), voxels with subhalo mass are centres too, their log mass floored at
    ``min_log_mstar - FLOOR_DEX``, so that a painter can learn where a subhalo holds no galaxy."""
    lo, hi = box if box is not None else (0, n)
    found, logs = [], []
    for x0 in range(lo, hi, vol.SLAB):
        x1 = min(x0 + vol.SLAB, hi)
        y = np.log10(vol.OFFSET + np.asarray(stellar[x0:x1, lo:hi, lo:hi], dtype=np.float64))  # (slab, h, h)
        ix, iy, iz = np.ogrid[x0:x1, lo:hi, lo:hi]
        keep = y > min_log_mstar
        if subhalo is not None:
            keep |= np.asarray(subhalo[x0:x1, lo:hi, lo:hi]) > 0
            y = np.maximum(y, min_log_mstar - FLOOR_DEX)
        for ex in exclude:
            keep &= ~vol.in_region(ix, iy, iz, ex)
        idx = np.argwhere(keep)
        found.append(idx + [x0, lo, lo])
        logs.append(y[keep])
    return np.concatenate(found).astype(np.int64), np.concatenate(logs)


def bin_index(log_target: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """Bin of each target among ``bins`` equal bins of [lo, hi] (clipped)."""
    width = (hi - lo) / bins if hi > lo else 1.0
    return np.clip(((log_target - lo) / width).astype(np.int64), 0, bins - 1)


def inverse_count_weights(log_target: np.ndarray, bins: int) -> np.ndarray:
    """Weight 1 / (count of the sample's bin) of each sample: every occupied bin gets equal total weight."""
    b = bin_index(log_target, bins, float(log_target.min()), float(log_target.max()))
    counts = np.bincount(b, minlength=bins)
    return 1.0 / counts[b]


def gather_patch(field, centre, patch: int) -> np.ndarray:
    """(C, P, P, P) periodic patch of a (C, N, N, N) array-like around voxel ``centre``."""
    from tiling import gather

    half = patch // 2
    index = [(c - half + np.arange(patch)) % n for c, n in zip(centre, field.shape[1:])]
    return gather(field, index)


class PatchDataset(Dataset):
    """Items (index, rotation) -> {"input": (2, P, P, P) float32 normalised, "target": (1,) float32}."""

    def __init__(self, store, centres_: np.ndarray, log_target: np.ndarray, patch: int, stats: dict):
        self.store, self.centres, self.patch, self.stats = str(store), centres_, patch, stats
        self.target = ((log_target - stats["stellar"]["mean"]) / stats["stellar"]["std"]).astype(np.float32)
        self._inputs = None

    def inputs(self) -> np.ndarray:
        """(2, N, N, N) normalised [dm, subhalo], read once per process (training volumes fit in memory)."""
        if self._inputs is None:
            root = vol.open_volume(self.store)
            self._inputs = np.stack([vol.normalise(root[f][:], self.stats[f]) for f in vol.INPUTS])
        return self._inputs

    def __getstate__(self):  # workers read the store themselves
        return {**self.__dict__, "_inputs": None}

    def __len__(self) -> int:
        return len(self.centres)

    def __getitem__(self, item) -> dict:
        i, r = item if isinstance(item, tuple) else (item, 0)
        x = gather_patch(self.inputs(), self.centres[i], self.patch)              # (2, P, P, P)
        return {"input": torch.from_numpy(rotate(x, r)), "target": torch.tensor([self.target[i]])}


class WeightedSampler(Sampler):
    """(item, rotation) draws with replacement, probability proportional to ``weights``, keyed by (seed,
    epoch), independent of the world size and split over ranks; ``set_epoch(epoch, position)`` resumes."""

    def __init__(self, weights: np.ndarray, n_draws: int, *, seed: int, rank: int = 0, world: int = 1,
                 rotations: bool = True):
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, world={world}), got {rank}")
        if len(weights) == 0:
            raise ValueError("no patch centres to sample from (is min_log_mstar above every voxel?)")
        self.p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.n_draws, self.seed, self.rank, self.world, self.rotations = n_draws, seed, rank, world, rotations
        self.epoch, self.position = 0, 0

    def __len__(self) -> int:
        return math.ceil(self.n_draws / self.world)

    def plan(self, epoch: int) -> np.ndarray:
        """(len, 2) int64 draws of this rank for ``epoch``: item, rotation."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        items = rng.choice(len(self.p), size=len(self) * self.world, p=self.p)
        rots = rng.integers(0, len(ROTATIONS), items.size) if self.rotations else np.zeros(items.size, np.int64)
        return np.column_stack([items, rots]).astype(np.int64)[self.rank::self.world]

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = int(epoch), int(position)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        plan = self.plan(self.epoch)
        start, self.position = self.position, 0
        for row in plan[start:]:
            yield int(row[0]), int(row[1])
