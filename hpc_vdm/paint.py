"""``python -m hpc_vdm.paint``: paint stellar mass over a whole 3D volume with a trained dm2gal, densely.

    python -m hpc_vdm.paint --model runs/dm2gal/export/model.pt --volume data/tng100_dmo.zarr --out out/tng100.zarr
    srun python -m hpc_vdm.paint ...        # or mpiexec -n 4: ranks split the blocks (slurm/paint_3d.sh)

The patch network is evaluated as its fully convolutional rewrite over blocks of ``--block`` voxels with
a periodic halo of its receptive radius (32 for the paper's 65^3 patch), out of core, into a resumable
Zarr store with one writer per chunk and a figure of slices beside it (:mod:`hpc_vdm.inference.paint`,
:mod:`hpc_vdm.inference.apply`). Everything is checked before anything is written.
"""
from __future__ import annotations

from . import cli, dist
from .inference import paint as painter
from .inference.apply import apply

SHORTCUTS = {"model": "trained.model", "volume": "paint.volume", "out": "paint.out", "block": "paint.block",
             "halo": "paint.halo", "mask": "paint.mask", "which": "trained.which", "device": "trained.device"}


def run(cfg):
    p = painter.plan(cfg)
    env = dist.detect()
    device = dist.pick_device(env, cfg.trained.device, "trained.device")
    n = p.grid.shape[0]
    note = f"{n}^3 voxels in {len(p.grid)} blocks of {cfg.paint.block}^3 + halo {cfg.paint.halo} on {device}"
    return apply(painter.job(cfg, p, device), env, progress=cfg.paint.progress, note=note)


main = cli.command("python -m hpc_vdm.paint", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
