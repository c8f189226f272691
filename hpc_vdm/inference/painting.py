"""Particles to a volume's slab maps of surface density [(M☉/h)/(Mpc/h)²]: CIC at the volume's pixel, or as the
training maps were made (CIC at CMD's pixel, then average-pooled by ``prepare``)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .volumes import Volume

Pairs = Sequence[tuple[int, int]]


def plane_axes(axis: int) -> tuple[int, int]:
    return (axis + 1) % 3, (axis + 2) % 3


def paint(pos_mpc_h: np.ndarray, mass: np.ndarray, vol: Volume, pairs: Pairs, out: dict) -> None:
    """Add CIC surface densities of particles (n, 3), masses (n,) [M☉/h] into ``out[(axis, slab)]``."""
    from ..mock import mesh

    p, pixel = vol.pixels, vol.box_mpc_h / vol.pixels
    for axis in sorted({a for a, _ in pairs}):
        wanted = [s for a, s in pairs if a == axis]
        slot = np.full(vol.n_slabs, -1, dtype=np.int64)
        slot[wanted] = np.arange(len(wanted))
        slab = np.clip(np.floor(pos_mpc_h[:, axis] / vol.slab_mpc_h).astype(np.int64), 0, vol.n_slabs - 1)
        keep = slot[slab] >= 0
        cells = pos_mpc_h[keep][:, list(plane_axes(axis))] / pixel - 0.5  # pixel centres at (i + 1/2) pixel
        grids = mesh.cic_deposit(cells, (p, p), weights=mass[keep], group=slot[slab[keep]], n_groups=len(wanted))
        for s, g in zip(wanted, grids):
            out.setdefault((axis, s), np.zeros((p, p)))
            out[(axis, s)] += g / pixel**2


def paint_as_cmd(pos_mpc_h: np.ndarray, mass: np.ndarray, vol: Volume, pairs: Pairs) -> dict:
    """Stars painted as the mock's maps are: CIC at CMD's pixel, then average-pooled to the volume's pixel (as
    `prepare` pools the training maps). CIC straight at a 4x coarser pixel spreads every star over ~4 pixels
    and lights 3x the pixels of the training maps (10% against 3.3% at 0.39 Mpc/h)."""
    sub, p = cmd_subpixels(vol.pixel_mpc_h), vol.pixels
    out: dict = {}   # the fine grid has exactly sub·p pixels over the box (TNG300's 205 Mpc/h is 524.8 pixels)
    paint(pos_mpc_h, mass, dataclasses.replace(vol, pixel_mpc_h=vol.box_mpc_h / (p * sub)), pairs, out)
    return {key: out[key].reshape(p, sub, p, sub).mean(axis=(1, 3)) if key in out else np.zeros((p, p))
            for key in pairs}


def cmd_subpixels(pixel_mpc_h: float) -> int:
    """CMD pixels per side in one pixel of ``pixel_mpc_h`` when it is a whole multiple (2 or more) of CMD's
    (25/256 Mpc/h: maps pooled by ``prepare``), else 1."""
    from ..data import camels

    n = int(round(pixel_mpc_h / (camels.BOX_MPC_H / camels.MAP_PIXELS)))
    return n if n >= 2 and abs(n * camels.BOX_MPC_H / camels.MAP_PIXELS - pixel_mpc_h) <= 1e-9 * pixel_mpc_h else 1
