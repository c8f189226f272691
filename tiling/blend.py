"""Blend windows: how much each window pixel counts when overlapping tiles are put back together.

Weights are separable (a product of 1D profiles over the window) and always normalised by the weight
accumulated at each field pixel, so any positive profile reproduces an input that every tile returns
unchanged. ``core`` keeps only each tile's owned pixels (a partition: no averaging at all); ``cosine``
(sin² over the window, the Hann profile) and ``gaussian`` (σ = window/4) fade tiles into each other.
"""
from __future__ import annotations

import numpy as np

BLENDS = ("core", "cosine", "gaussian")


def check_blend(blend: str) -> str:
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of {list(BLENDS)}")
    return blend


def profile(length: int, blend: str) -> np.ndarray:
    """(length,) positive 1D weights of a smooth blend."""
    x = np.arange(length) + 0.5
    if blend == "cosine":
        return np.sin(np.pi * x / length) ** 2
    if blend == "gaussian":
        return np.exp(-0.5 * ((x - length / 2) / (length / 4)) ** 2)
    raise ValueError(f"{blend!r} has no smooth profile")


def window_weights(window: tuple[int, ...], blend: str) -> np.ndarray:
    """Separable weights over a whole window (shape ``window``), float64."""
    w = np.ones(())
    for n in window:
        w = np.multiply.outer(w, profile(n, blend))
    return w
