"""Paired normalisations and the symmetries of periodic square maps.

Normalisation (as in the papers, with statistics from the training simulations only):
    x -> (log10(x + offset) - mean) / std,   inverse  10^(y std + mean) - offset.

Augmentation: one element of the dihedral group D4 (8 flips/rotations) and one periodic roll, drawn
once and applied identically to condition and target, so a pair stays aligned pixel for pixel; an
optional crop then keeps the rolled map's corner (a periodic crop of the original at the drawn position).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


N_DIHEDRAL = 8
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class LogNorm:
    """The one log normalisation of the project: x -> (log10(x + offset) - mean) / std and its inverse.

    numpy in: float64 maths, float32 out (``forward``) or float64 out (``inverse``); torch in: the tensor's
    dtype forward, float64 inverse. Statistics are of the training simulations (or voxels) only."""

    offset: float
    mean: float
    std: float

    @classmethod
    def of(cls, stats: Mapping) -> "LogNorm":
        return cls(float(stats["offset"]), float(stats["mean"]), float(stats["std"]))

    def forward(self, x):
        """Physical field -> standardised log field."""
        if type(x).__module__ == "torch":
            return ((x + self.offset).log10() - self.mean) / self.std
        y = (np.log10(np.asarray(x, dtype=np.float64) + self.offset) - self.mean) / self.std
        return y.astype(np.float32)

    def inverse(self, y):
        """Standardised log field -> physical field (float64)."""
        y64 = y.double() if type(y).__module__ == "torch" else np.asarray(y, dtype=np.float64)
        return 10.0 ** (y64 * self.std + self.mean) - self.offset


def finite_draws(x, what: str):
    """``x`` (numpy or torch), refused with a ValueError naming ``what`` unless every value is finite in
    float32, the dtype every output store holds: a model's draws that overflow are an error, never inf."""
    if type(x).__module__ == "torch":
        bad, size = int((~(x.abs() <= FLOAT32_MAX)).sum()), x.numel()
    else:
        bad, size = int(np.count_nonzero(~(np.abs(x) <= FLOAT32_MAX))), np.size(x)
    if bad:
        raise ValueError(f"{what}: {bad} of {size} values of the model's draws are NaN or beyond float32's "
                         f"±{FLOAT32_MAX:.1e}; is the export trained? (a VDM's sampler.clip_log=[lo, hi] bounds "
                         f"its draws' log10)")
    return x


def normalise(x: np.ndarray, stats: Mapping) -> np.ndarray:
    """Physical surface density -> standardised log field (float32)."""
    return LogNorm.of(stats).forward(x)


def denormalise(y: np.ndarray, stats: Mapping) -> np.ndarray:
    """Standardised log field -> physical surface density."""
    return LogNorm.of(stats).inverse(y)


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


def crop(x: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` corner of the last two axes (a copy): after a periodic roll by (dy, dx), the
    periodic crop of the original map whose corner is at (-dy, -dx) modulo its side."""
    if not 1 <= size <= min(x.shape[-2:]):
        raise ValueError(f"crop size must be in [1, {min(x.shape[-2:])}] for maps of {x.shape[-2:]}, got {size!r}")
    return np.ascontiguousarray(x[..., :size, :size])


@dataclass(frozen=True)
class MapNormalisation:
    """The normalisation a map model was trained with: its condition (``""`` for a model without a map
    condition) and target fields and their statistics. One object serves training, validation, ``sample``,
    ``evaluate`` and ``tile``."""

    condition: str
    target: str
    stats: Mapping[str, Mapping]  # field -> {"offset", "mean", "std"} of log10(x + offset), training sims only

    def condition_in(self, x: np.ndarray) -> np.ndarray:
        """Physical condition map(s) -> the model's input space."""
        if not self.condition:
            raise ValueError("this model has no map condition (data.condition is empty)")
        return normalise(x, self.stats[self.condition])

    def target_in(self, x: np.ndarray) -> np.ndarray:
        return normalise(x, self.stats[self.target])

    def target_out(self, y: np.ndarray) -> np.ndarray:
        """The model's output space -> physical target map(s)."""
        return denormalise(y, self.stats[self.target])

    def draws_out(self, y: np.ndarray, what: str) -> np.ndarray:
        """:meth:`target_out` of a model's draws for use (not validation): refused unless finite in float32."""
        with np.errstate(over="ignore"):                  # an overflow is refused below, naming the draw
            x = self.target_out(y)
        return finite_draws(x, what)

    def target_log_in(self, v):
        """Values of log10(target + offset) -> the model's output space."""
        n = LogNorm.of(self.stats[self.target])
        return (np.asarray(v, dtype=np.float64) - n.mean) / n.std

    @property
    def target_offset(self) -> float:
        """The target's log offset: its log space is log10(x + offset) (1 for stellar maps, 0 for dark matter)."""
        return float(self.stats[self.target].get("offset", 0.0))


class Pooled:
    """A lazy (N, H/f, W/f) view of a stack of maps (N, H, W) averaged over f x f pixels: surface densities
    stay surface densities (the mean of a pixel block), and a memory map is read block by block."""

    def __init__(self, maps, factor: int):
        h, w = maps.shape[1:]
        if factor < 1 or h % factor or w % factor:
            raise ValueError(f"data.pool={factor} must divide the map size {h}x{w}")
        self.maps, self.factor = maps, factor
        self.shape = (maps.shape[0], h // factor, w // factor)
        self.dtype = maps.dtype
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        block = np.asarray(self.maps[index], dtype=np.float64)
        f = self.factor
        out = block.reshape(*block.shape[:-2], block.shape[-2] // f, f, block.shape[-1] // f, f).mean(axis=(-3, -1))
        return out.astype(self.dtype)

    def __array__(self, dtype=None, copy=None):
        return self[:].astype(dtype) if dtype is not None else self[:]
