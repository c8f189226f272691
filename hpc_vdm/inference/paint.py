"""A whole 3D volume through a trained dm2gal, densely: the ``paint`` front of :func:`hpc_vdm.inference.apply.apply`.

The dm2gal family's ``predict`` paints blocks of ``paint.block`` voxels with a periodic halo of at least
the network's receptive radius (``tiling.tile_apply`` in valid mode, windows read from the volume store
chunk by chunk); an output chunk is one block and a block belongs to one rank. Output ``OUT.zarr``::

    stellar   (1, N, N, N) float32   painted stellar mass per voxel [Msun/h] (0 where the mask puts none)
    done      (n_blocks,) uint8      completion record per block (C order of the block grid)
    attrs     format, fingerprint (everything the numbers depend on), provenance, complete

A record is set only after its block is written, so a rerun paints what is missing and ends with the
store an uninterrupted run writes; a block whose record is set but whose chunk is gone is an error.
"""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from tiling import TileGrid

from .. import figures
from ..bundle import ModelBundle, load_bundle
from ..config import to_dict
from ..data import volume as vol
from ..data.store import CODECS, WRITE_ALL
from ..families import DrawSpec, for_bundle
from ..families.dm2gal import Dm2galFamily, mask_fields
from ..io import PAINT, save_figure, sha256_file
from .apply import Job
from .output import OutputStore, Record

FORMAT = "hpc_vdm.paint/1"
VOXEL_RTOL = 1e-3


@dataclass
class PaintPlan:
    bundle: ModelBundle
    family: Dm2galFamily
    root: zarr.Group
    grid: TileGrid
    fingerprint: dict


def block_bytes(d, block: int, halo: int) -> int:
    """Working memory of one block: two float32 activations of the widest layer over the window."""
    widest = max(d.widths) * d.channels
    return 4 * (block + 2 * halo) ** 3 * 2 * max(widest, d.hidden)


def plan(cfg) -> PaintPlan:
    """Everything that can be wrong with a paint, checked before anything is written."""
    p, m = cfg.paint, cfg.trained
    bundle = load_bundle(m.model, m.which).require("dm2gal", "python -m hpc_vdm.paint")
    root = vol.open_volume(p.volume, need=mask_fields(p.mask))
    a, trained = dict(root.attrs), bundle.store
    if abs(a["voxel_mpc_h"] / trained["voxel_mpc_h"] - 1.0) > VOXEL_RTOL:
        raise ValueError(f"volume {p.volume!r} has voxels of {a['voxel_mpc_h']:.6g} Mpc/h but the model was "
                         f"trained on {trained['voxel_mpc_h']:.6g} Mpc/h voxels; paint a volume at the model's "
                         f"resolution")
    need = bundle.module.receptive_radius
    if p.halo < need:
        raise ValueError(f"paint.halo={p.halo} is smaller than the receptive radius {need} of the model "
                         f"(its {bundle.config.model.dm2gal.patch}^3 patch); use a halo of at least {need}")
    n = a["n"]
    if n % p.block:
        raise ValueError(f"paint.block={p.block} does not divide the volume's {n} voxels per side; choose a "
                         f"divisor of {n}")
    grid = TileGrid.make((n,) * 3, p.block, p.halo, mode="valid")  # raises for a block larger than the volume
    gb = block_bytes(bundle.config.model.dm2gal, p.block, p.halo) / 1e9
    if gb > p.max_block_gb:
        raise ValueError(f"paint.block={p.block} with halo {p.halo} needs about {gb:.3g} GB per block, above "
                         f"paint.max_block_gb={p.max_block_gb:g}; use a smaller block")
    d = bundle.config.model.dm2gal
    fp = {"model": {"sha256": sha256_file(Path(m.model)), "which": m.which},
          "volume": {"path": str(Path(p.volume).resolve()), "n": n, "voxel_mpc_h": a["voxel_mpc_h"]},
          "block": p.block, "halo": p.halo, "mask": p.mask, "min_log_mstar": d.min_log_mstar, "centres": d.centres}
    return PaintPlan(bundle, for_bundle(bundle), root, grid, fp)


def paint_store(path, grid: TileGrid) -> OutputStore:
    counts = grid.counts

    def chunk(index):
        b = np.unravel_index(index[0], counts)
        return [("stellar", "c/0/" + "/".join(str(int(v)) for v in b))]

    return OutputStore(path, format=FORMAT, what="paint store",
                       records=[Record("done", chunk, lambda root, i: f"block {i[0]}")])


def job(cfg, p: PaintPlan, device) -> Job:
    """The paint as a :class:`~hpc_vdm.inference.apply.Job` over the blocks of the volume."""
    c, m = cfg.paint, cfg.trained
    n, b = p.grid.shape[0], p.grid.tile[0]
    tiles = list(p.grid.tiles())
    order = {t: i for i, t in enumerate(tiles)}
    store = paint_store(c.out, p.grid)
    spec = DrawSpec(tile=c.block, halo=c.halo, device=device)

    def layout(root) -> None:
        root.create_array("stellar", shape=(1, n, n, n), chunks=(1, b, b, b), dtype="float32", fill_value=0.0,
                          compressors=CODECS, config=WRITE_ALL)
        root.create_array("done", shape=(len(tiles),), chunks=(1,), dtype="uint8", fill_value=0)

    def work(root, mine: list, progress: bool) -> None:
        bar = tqdm(total=len(mine), desc="paint", unit="block", disable=not progress)

        def record(t) -> None:
            store.mark(root, "done", order[t])
            bar.update(1)

        if mine:
            p.family.predict(p.bundle, p.root, mask=c.mask, spec=spec, out=root["stellar"], tiles=mine, done=record)
        bar.close()

    provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                  "host": platform.node(), "torch": torch.__version__, "model": str(Path(m.model).resolve()),
                  "model_step": p.bundle.step, "config": to_dict(cfg)}
    return Job(store=store, kind=PAINT, fingerprint=p.fingerprint, layout=layout,
               attrs={"provenance": provenance, "units": "Msun/h per voxel"}, units=tiles,
               pending=lambda root, t: not root["done"][order[t]], work=work,
               finished=lambda root: bool(root["done"][:].all()),
               figure=lambda root, png: figure_slices(p.root, root, png), inputs=(m.model, c.volume))


def figure_slices(volume: zarr.Group, painted: zarr.Group, png: Path, depth: int = 4) -> None:
    """The paper's Fig. 1 top row: slices (``depth`` voxels thick, through the middle) of dark matter,
    subhalos, the painted and (if the volume has it) the true stellar mass, log10(1 + M) per voxel."""
    plt = figures.pyplot()
    n = volume.attrs["n"]
    a, b = n // 2 - depth // 2, n // 2 - depth // 2 + depth
    panels = [("dark matter", volume["dm"][a:b].sum(0)), ("subhalos", volume["subhalo"][a:b].sum(0)),
              ("dm2gal (painted)", painted["stellar"][0, a:b].sum(0))]
    if "stellar" in volume.attrs["fields"]:
        panels.append(("hydro (truth)", volume["stellar"][a:b].sum(0)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.4), constrained_layout=True)
    for ax, (title, img) in zip(axes, panels):
        figures.map_panel(fig, ax, np.log10(1.0 + np.asarray(img, dtype=np.float64)), title=title,
                          cmap="viridis" if "dark" in title or "sub" in title else "magma")
    fig.suptitle(f"x slice of {depth} voxels through the middle of {n}^3 ({volume.attrs['box_mpc_h']:g} Mpc/h); "
                 f"log10(1 + M/(Msun/h))")
    save_figure(fig, png, dpi=90)
    plt.close(fig)
