"""Dense, periodic, out-of-core dm2gal paint of a whole volume, block by block, into a resumable Zarr store.

The trained patch network, rewritten as :class:`~hpc_vdm.models.DenseDM2Gal`, predicts every voxel of a
block from the block plus a periodic halo of its receptive radius (``tiling.tile_apply`` in valid mode,
windows read from the volume store chunk by chunk). Ranks own contiguous runs of blocks
(``TileGrid.tiles_of``); an output chunk is one block, so no two writers share a chunk. Output
``OUT.zarr``::

    stellar   (1, N, N, N) float32   painted stellar mass per voxel [Msun/h] (0 where the mask puts none)
    done      (n_blocks,) uint8      completion record per block (C order of the block grid)
    attrs     format, fingerprint (everything the numbers depend on), provenance, complete

A record is set only after its block is written, so a rerun paints what is missing and ends with the
store an uninterrupted run writes. Everything is checked before anything is written.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from tiling import TileGrid, tile_apply

from ..config import describe, differing
from ..data import volume as vol
from ..io import atomic_dir
from ..models import DenseDM2Gal
from ..training.artifact import ModelBundle, load_bundle
from ..training.checkpoint import sha256_file

FORMAT = "hpc_vdm.paint/1"
VOXEL_RTOL = 1e-3


def masked_stellar(mass: np.ndarray, mask: str, *, subhalo=None, truth=None, min_log_mstar: float = 0.0,
                   cut: bool = False):
    """Stellar mass per voxel kept where ``mask`` puts galaxies: voxels with subhalo mass (``subhalo``),
    voxels whose true log10(1 + M*) exceeds the threshold (``truth``, the paper's test cube), or all;
    ``cut`` (a model trained with ``centres=subhalo``) also empties voxels predicted below the threshold."""
    if cut:
        mass = np.where(np.log10(1.0 + mass) > min_log_mstar, mass, 0.0)
    if mask == "subhalo":
        return np.where(np.asarray(subhalo) > 0, mass, 0.0)
    if mask == "truth":
        return np.where(np.log10(1.0 + np.asarray(truth, dtype=np.float64)) > min_log_mstar, mass, 0.0)
    return mass


def paint_region(dense: DenseDM2Gal, inputs, lo: int, size: int, device) -> np.ndarray:
    """(size,)^3 normalised predictions of the sub-cube [lo, lo + size)^3 of (2, N, N, N) normalised inputs
    in one dense pass (periodic context); for validation cubes that fit in memory."""
    from tiling import gather

    r = dense.receptive_radius
    window = gather(inputs, [np.arange(lo - r, lo + size + r) % n for n in inputs.shape[1:]])   # (2, W, W, W)
    x = torch.from_numpy(np.ascontiguousarray(window))[None].to(device)              # (1, 2, W, W, W)
    return dense.core(x, r)[0, 0].float().cpu().numpy()


class Channels:
    """A (C, N, N, N) read-only view of volume fields for ``tiling.gather`` (orthogonal reads per field)."""

    def __init__(self, root: zarr.Group, names: tuple[str, ...]):
        self.arrays = [root[f] for f in names]
        self.shape = (len(names), *self.arrays[0].shape)

    @property
    def oindex(self):
        return self

    def __getitem__(self, index):
        spatial = index[1:]
        return np.stack([np.asarray(a.oindex[spatial]) for a in self.arrays])


@dataclass
class PaintPlan:
    bundle: ModelBundle
    root: zarr.Group
    grid: TileGrid
    fields: tuple[str, ...]
    fingerprint: dict


def block_bytes(d, block: int, halo: int) -> int:
    """Working memory of one block: two float32 activations of the widest layer over the window."""
    widest = max(d.widths) * d.channels
    return 4 * (block + 2 * halo) ** 3 * 2 * max(widest, d.hidden)


def plan(d) -> PaintPlan:
    """Everything that can be wrong with a paint (``cfg.dm2gal``), checked before anything is written."""
    bundle = load_bundle(d.model, d.which).require("dm2gal", "python -m hpc_vdm.paint")
    fields = vol.INPUTS + (("stellar",) if d.mask == "truth" else ())
    root = vol.open_volume(d.volume, need=fields)
    a, trained = dict(root.attrs), bundle.store
    if abs(a["voxel_mpc_h"] / trained["voxel_mpc_h"] - 1.0) > VOXEL_RTOL:
        raise ValueError(f"volume {d.volume!r} has voxels of {a['voxel_mpc_h']:.6g} Mpc/h but the model was "
                         f"trained on {trained['voxel_mpc_h']:.6g} Mpc/h voxels; paint a volume at the model's "
                         f"resolution")
    need = bundle.module.receptive_radius
    if d.halo < need:
        raise ValueError(f"dm2gal.halo={d.halo} is smaller than the receptive radius {need} of the model "
                         f"(its {bundle.config.dm2gal.patch}^3 patch); use a halo of at least {need}")
    n = a["n"]
    if n % d.block:
        raise ValueError(f"dm2gal.block={d.block} does not divide the volume's {n} voxels per side; choose a "
                         f"divisor of {n}")
    grid = TileGrid.make((n,) * 3, d.block, d.halo, mode="valid")  # raises for a block larger than the volume
    gb = block_bytes(bundle.config.dm2gal, d.block, d.halo) / 1e9
    if gb > d.max_block_gb:
        raise ValueError(f"dm2gal.block={d.block} with halo {d.halo} needs about {gb:.3g} GB per block, above "
                         f"dm2gal.max_block_gb={d.max_block_gb:g}; use a smaller block")
    fp = {"model": {"sha256": sha256_file(Path(d.model)), "which": d.which},
          "volume": {"path": str(Path(d.volume).resolve()), "n": n, "voxel_mpc_h": a["voxel_mpc_h"]},
          "block": d.block, "halo": d.halo, "mask": d.mask, "min_log_mstar": bundle.config.dm2gal.min_log_mstar,
          "centres": bundle.config.dm2gal.centres}
    return PaintPlan(bundle, root, grid, fields, fp)


def check_existing(path: Path, fingerprint: dict) -> bool:
    """True if ``path`` is a paint store of this fingerprint (resume), False if absent; raises otherwise."""
    if not path.exists():
        return False
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as e:
        raise FileExistsError(f"{str(path)!r} exists and is not a paint store ({e}); choose another --out") from None
    if attrs.get("format") != FORMAT:
        raise FileExistsError(f"{str(path)!r} exists and is not a paint store; choose another --out")
    diff = differing(attrs.get("fingerprint", {}), fingerprint)
    if diff:
        raise FileExistsError(f"{str(path)!r} holds a paint of another configuration "
                              f"({describe(diff, ('stored', 'this run'))}); choose another --out")
    return True


def create(path: Path, p: PaintPlan, provenance: dict) -> None:
    n, b = p.grid.shape[0], p.grid.tile[0]
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        root.create_array("stellar", shape=(1, n, n, n), chunks=(1, b, b, b), dtype="float32", fill_value=0.0)
        root.create_array("done", shape=(len(p.grid),), chunks=(1,), dtype="uint8", fill_value=0)
        root.attrs.update({"format": FORMAT, "fingerprint": p.fingerprint, "provenance": provenance,
                           "units": "Msun/h per voxel", "complete": False})


def wait_for(path: Path, timeout_s: float = 600.0) -> None:
    deadline = time.time() + timeout_s
    while not (path / "zarr.json").is_file():
        if time.time() > deadline:
            raise TimeoutError(f"rank 0 did not create {str(path)!r} within {timeout_s:.0f} s")
        time.sleep(0.2)


def block_fn(p: PaintPlan, d, device):
    """Valid-mode tile function: physical (B, C, W, W, W) windows -> painted (B, 1, b, b, b) [Msun/h]."""
    dense = DenseDM2Gal(p.bundle.module.to(device).eval())
    stats = p.bundle.store["stats"]
    halo, thr = d.halo, p.bundle.config.dm2gal.min_log_mstar
    cut = p.bundle.config.dm2gal.centres == "subhalo"
    mean = torch.tensor([stats[f]["mean"] for f in vol.INPUTS], device=device)[None, :, None, None, None]
    std = torch.tensor([stats[f]["std"] for f in vol.INPUTS], device=device)[None, :, None, None, None]
    st = stats["stellar"]

    @torch.no_grad()
    def fn(w: torch.Tensor) -> torch.Tensor:
        w = w.to(device=device, dtype=torch.float32)
        x = (torch.log10(vol.OFFSET + w[:, :2]) - mean) / std                    # (B, 2, W, W, W) normalised
        y = dense.core(x, halo)                                                  # (B, 1, b, b, b)
        mass = 10.0 ** (y.double() * st["std"] + st["mean"]) - st["offset"]
        b = y.shape[-1]
        core = w[:, :, halo:halo + b, halo:halo + b, halo:halo + b]              # (B, C, b, b, b)
        if cut:  # trained on starless subhalos too: below the threshold means no galaxy
            mass = torch.where(y.double() * st["std"] + st["mean"] > thr, mass, 0.0)
        if d.mask == "subhalo":
            mass = torch.where(core[:, 1:2] > 0, mass, 0.0)
        elif d.mask == "truth":
            mass = torch.where(torch.log10(1.0 + core[:, 2:3].double()) > thr, mass, 0.0)
        return mass.float()

    return fn


def paint_blocks(p: PaintPlan, d, out: Path, rank: int, world: int, device, progress: bool = False) -> int:
    """Paint this rank's blocks that the store does not record as done; returns how many were painted."""
    root = zarr.open_group(str(out), mode="r+")
    done = root["done"]
    tiles = list(p.grid.tiles())
    order = {t: i for i, t in enumerate(tiles)}
    mine = [t for t in p.grid.tiles_of(rank, world) if not done[order[t]]]
    if not mine:
        return 0
    from tqdm import tqdm

    bar = tqdm(total=len(mine), desc="paint", unit="block", disable=not progress)

    def record(t) -> None:
        done[order[t]] = 1
        bar.update(1)

    tile_apply(block_fn(p, d, device), Channels(p.root, p.fields), d.block, d.halo, mode="valid", batch_size=1,
               device=device, out=root["stellar"], tiles=mine, done=record)
    bar.close()
    return len(mine)


def all_done(out: Path) -> bool:
    return bool(zarr.open_group(str(out), mode="r")["done"][:].all())


def mark_complete(out: Path) -> None:
    zarr.open_group(str(out), mode="r+").attrs["complete"] = True


def figure_slices(volume: zarr.Group, out: Path, png: Path, depth: int = 4) -> None:
    """The paper's Fig. 1 top row: slices (``depth`` voxels thick, through the middle) of dark matter,
    subhalos, the painted and (if the volume has it) the true stellar mass, log10(1 + M) per voxel."""
    from .. import figures

    plt = figures.pyplot()
    n = volume.attrs["n"]
    a, b = n // 2 - depth // 2, n // 2 - depth // 2 + depth
    panels = [("dark matter", volume["dm"][a:b].sum(0)), ("subhalos", volume["subhalo"][a:b].sum(0)),
              ("dm2gal (painted)", zarr.open_group(str(out), mode="r")["stellar"][0, a:b].sum(0))]
    if "stellar" in volume.attrs["fields"]:
        panels.append(("hydro (truth)", volume["stellar"][a:b].sum(0)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.4), constrained_layout=True)
    for ax, (title, img) in zip(axes, panels):
        figures.map_panel(fig, ax, np.log10(1.0 + np.asarray(img, dtype=np.float64)), title=title,
                          cmap="viridis" if "dark" in title or "sub" in title else "magma")
    fig.suptitle(f"x slice of {depth} voxels through the middle of {n}^3 ({volume.attrs['box_mpc_h']:g} Mpc/h); "
                 f"log10(1 + M/(Msun/h))")
    fig.savefig(png, dpi=90)
    plt.close(fig)
