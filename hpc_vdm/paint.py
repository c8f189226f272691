"""``python -m hpc_vdm.paint``: paint stellar mass over a whole 3D volume with a trained dm2gal, densely.

    python -m hpc_vdm.paint --model runs/dm2gal/export/model.pt --volume data/tng100_dmo.zarr --out out/tng100.zarr
    srun python -m hpc_vdm.paint ...        # or mpiexec -n 4: ranks split the blocks (slurm/paint_3d.sh)

The patch network is evaluated as its fully convolutional rewrite over blocks of ``--block`` voxels with
a periodic halo of its receptive radius (32 for the paper's 65^3 patch), out of core, into a resumable
Zarr store with one writer per chunk and a figure of slices beside it (:mod:`hpc_vdm.inference.paint`,
:mod:`hpc_vdm.inference.apply`). Everything is checked before anything is written.
"""
from __future__ import annotations

from pathlib import Path

from . import cli, dist
from .io.inputs import need_disk, need_memory
from .inference import paint as painter
from .inference.apply import apply

SHORTCUTS = {"model": "trained.model", "volume": "paint.volume", "out": "paint.out", "block": "paint.block",
             "halo": "paint.halo", "mask": "paint.mask", "which": "trained.which", "device": "trained.device"}


def check_sizes(cfg, p: painter.PaintPlan, force: bool = False) -> None:
    """Refuse a paint whose blocks cannot fit in this machine's memory, or whose store cannot fit on the disk."""
    c, n = cfg.paint, p.grid.shape[0]
    need_memory(painter.block_bytes(p.bundle.config.model.dm2gal, c.block, c.halo),
                f"paint: one block of {c.block}^3 voxels + halo {c.halo}", force=force, hint="use a smaller --block")
    if not Path(c.out).exists():
        need_disk(4.0 * n**3, Path(c.out).parent, f"the paint store {c.out!r} ({n}^3 float32, before compression)",
                  force=force)


def run(cfg, force: bool = False):
    p = painter.plan(cfg)
    env = dist.detect()
    device = dist.pick_device(env, cfg.trained.device, "trained.device")
    check_sizes(cfg, p, force)
    n = p.grid.shape[0]
    note = f"{n}^3 voxels in {len(p.grid)} blocks of {cfg.paint.block}^3 + halo {cfg.paint.halo} on {device}"
    return apply(painter.job(cfg, p, device), env, progress=cfg.paint.progress, note=note)


main = cli.command("python -m hpc_vdm.paint", __doc__.splitlines()[0], SHORTCUTS, run,
                   flags={"force": "run even when a block looks larger than this machine's memory or the store "
                                   "than its disk"})


if __name__ == "__main__":
    raise SystemExit(main())
