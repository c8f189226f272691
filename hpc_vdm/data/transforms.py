"""Paired normalisations and the symmetries of periodic square maps.

Normalisation (as in the papers, with statistics from the training simulations only):
    x -> (log10(x + offset) - mean) / std,   inverse  10^(y std + mean) - offset.

Augmentation: one element of the dihedral group D4 (8 flips/rotations) and one periodic roll, drawn
once and applied identically to condition and target, so a pair stays aligned pixel for pixel.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

N_DIHEDRAL = 8


def normalise(x: np.ndarray, stats: Mapping) -> np.ndarray:
    """Physical surface density -> standardised log field (float32)."""
    y = (np.log10(np.asarray(x, dtype=np.float64) + stats["offset"]) - stats["mean"]) / stats["std"]
    return y.astype(np.float32)


def denormalise(y: np.ndarray, stats: Mapping) -> np.ndarray:
    """Standardised log field -> physical surface density."""
    return 10.0 ** (np.asarray(y, dtype=np.float64) * stats["std"] + stats["mean"]) - stats["offset"]


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Element ``k`` in [0, 8) of D4 on the last two axes: bit 2 transposes, bit 1 flips y, bit 0 flips x."""
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral element must be in [0, 8), got {k}")
    if k & 4:
        x = np.swapaxes(x, -1, -2)
    if k & 2:
        x = x[..., ::-1, :]
    if k & 1:
        x = x[..., :, ::-1]
    return x


def augment(x: np.ndarray, k: int, shift: tuple[int, int]) -> np.ndarray:
    """Dihedral element ``k`` then a periodic roll by ``shift`` pixels on the last two axes (a copy)."""
    return np.ascontiguousarray(np.roll(dihedral(x, k), shift, axis=(-2, -1)))
