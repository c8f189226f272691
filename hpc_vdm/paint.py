"""``python -m hpc_vdm.paint``: paint stellar mass over a whole 3D volume with a trained dm2gal, densely.

    python -m hpc_vdm.paint --model runs/dm2gal/export/model.pt --volume data/tng100_dmo.zarr --out out/tng100.zarr
    srun python -m hpc_vdm.paint ...        # or mpiexec -n 4: ranks split the blocks (slurm/paint_3d.sh)

The patch network is evaluated as its fully convolutional rewrite over blocks of ``--block`` voxels with
a periodic halo of its receptive radius (32 for the paper's 65^3 patch), out of core, into a resumable
Zarr store (:mod:`hpc_vdm.inference.paint`) with one writer per chunk, and a figure of slices beside it.
Everything is checked before anything is written.
"""
from __future__ import annotations

import logging
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import cli, dist
from .config import to_dict
from .inference import paint as painter
from .io import acquire_lock, writing

log = logging.getLogger("hpc_vdm.paint")

SHORTCUTS = {"model": "dm2gal.model", "volume": "dm2gal.volume", "out": "dm2gal.out", "block": "dm2gal.block",
             "halo": "dm2gal.halo", "mask": "dm2gal.mask", "which": "dm2gal.which", "device": "dm2gal.device"}


def run(cfg) -> Path:
    env = dist.detect()
    if env.rank != 0:
        return _run(cfg, env)
    out = Path(cfg.dm2gal.out)
    with writing(out, "what the store records as done is kept; rerun to resume"):
        out.parent.mkdir(parents=True, exist_ok=True)
        with acquire_lock(out):  # rank 0 holds the output's lock until every rank is done
            return _run(cfg, env)


def _run(cfg, env) -> Path:
    d = cfg.dm2gal
    p = painter.plan(d)
    out = Path(d.out)
    resume = painter.check_existing(out, p.fingerprint)
    device = dist.pick_device(env, d.device, "dm2gal.device")
    if env.rank == 0 and not resume:
        out.parent.mkdir(parents=True, exist_ok=True)
        painter.create(out, p, {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "argv": sys.argv, "host": platform.node(), "torch": torch.__version__,
                                "model_step": p.bundle.step, "config": to_dict(cfg)})
    elif env.rank != 0:
        painter.wait_for(out)
    n = p.grid.shape[0]
    log.info("%s %s: %d^3 voxels in %d blocks of %d^3 + halo %d, rank %d/%d on %s", "resuming" if resume else
             "writing", out, n, len(p.grid), d.block, d.halo, env.rank, env.world, device)
    t0 = time.time()
    k = painter.paint_blocks(p, d, out, env.rank, env.world, device, progress=env.rank == 0 and d.progress)
    log.info("rank %d painted %d blocks in %.1f s", env.rank, k, time.time() - t0)
    if env.rank == 0:
        while not painter.all_done(out):  # the other ranks' blocks
            time.sleep(0.5)
        painter.mark_complete(out)
        png = out.with_suffix(".png")
        painter.figure_slices(p.root, out, png)
        log.info("complete: %s and %s", out, png)
    return out


main = cli.command("python -m hpc_vdm.paint", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
