"""``python -m hpc_vdm.tile``: posterior dark-matter maps of a big volume, slab by slab, by fused periodic tiling.

    python -m hpc_vdm.tile --volume tng300 --model runs/x/export/model.pt --out out/tng300.zarr
    python -m hpc_vdm.tile --volume tng100 --input snapdir/ --axes 0,1,2 --n-samples 4 --out out/tng100.zarr
    srun python -m hpc_vdm.tile ...        # or mpiexec -n 4: ranks split the slabs (slurm/tile_tng300.sh)

The volume preset fixes the box, the 5 Mpc/h slabs and the training pixel scale; the conditioning slabs
come from a 3D stellar-mass grid, TNG-style snapshot chunks or the embedded mock
(:mod:`hpc_vdm.inference.sources`). Each slab is sampled whole on the torus by the fused tiled sampler;
the results go to a resumable Zarr store (:mod:`hpc_vdm.inference.store`) and a figure of one slab beside
it. Everything is checked before anything is written; rank 0 holds the output's lock while any rank
writes, so a second command on the same ``--out`` is refused naming the first.
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
from .inference import slabs, store as tile_store
from .io import TILE, acquire_lock, check_output, writing

log = logging.getLogger("hpc_vdm.tile")

SHORTCUTS = {"volume": "tile.volume", "model": "tile.model", "input": "tile.input", "axes": "tile.axes",
             "slabs": "tile.slabs", "n_samples": "tile.n_samples", "steps": "tile.steps", "tile": "tile.tile",
             "halo": "tile.halo", "blend": "tile.blend", "batch_size": "tile.batch_size", "seed": "tile.seed",
             "out": "tile.out", "device": "tile.device", "which": "tile.which"}


def run(cfg) -> Path:
    t = cfg.tile
    p = slabs.plan(t)
    out = Path(t.out)
    inputs = [t.model] + ([t.input] if Path(t.input).exists() else [])  # "mock" names no file
    check_output(out, TILE, inputs=inputs, reuse=True)  # never a foreign path, nor an input's
    resume = tile_store.check_existing(out, p.fingerprint)
    env = dist.detect()
    device = dist.pick_device(env, t.device, "tile.device")
    launch = f"{env.master_addr}:{env.master_port}"  # the same on every rank of one launch
    if env.rank != 0:
        tile_store.wait_for(out, launch)
        return _write(cfg, p, out, resume, env, device)
    with writing(out, "what the store records as done is kept; rerun to resume"):
        out.parent.mkdir(parents=True, exist_ok=True)
        with acquire_lock(out, extra={"launch": launch}):  # rank 0 holds it until every rank is done
            resume = tile_store.check_existing(out, p.fingerprint)  # another writer finished meanwhile?
            png = out.with_suffix(".png")
            if not resume and (png.exists() or png.is_symlink()):
                raise FileExistsError(f"{str(png)!r} exists beside a new tile store {str(out)!r}; it would be "
                                      f"replaced by this store's figure: choose another --out or remove it")
            if not resume:
                _create(cfg, p, out)
            return _write(cfg, p, out, resume, env, device)


def _create(cfg, p, out: Path) -> None:
    d = p.bundle.config.data
    provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                  "host": platform.node(), "model": str(Path(cfg.tile.model).resolve()), "model_step": p.bundle.step,
                  "model_tag": p.bundle.tag, "torch": torch.__version__, "config": to_dict(cfg),
                  "units": {"cond": d.condition, "samples": d.target}}
    tile_store.create(out, pairs=p.pairs, pixels=p.volume.pixels, n_samples=cfg.tile.n_samples,
                      fingerprint=p.fingerprint, provenance=provenance)


def _write(cfg, p, out: Path, resume: bool, env, device) -> Path:
    t = cfg.tile
    store = tile_store.TileStore(out)
    log.info("%s %s: %d slabs of %d^2 pixels x %d samples, %d steps, tile %d + halo %d (%s), rank %d/%d on %s",
             "resuming" if resume else "writing", out, len(p.pairs), p.volume.pixels, t.n_samples, t.steps, t.tile,
             t.halo, t.blend, env.rank, env.world, device)

    mine = [i for i in range(len(p.pairs)) if i % env.world == env.rank and not store.summary_done(i)]
    slabs.sample_slabs(t, p, store, mine, device, env.rank == 0 and t.progress)

    if env.rank == 0:
        while not store.all_done():  # the other ranks' slabs
            time.sleep(1.0)
        store.mark_complete()
        png = out.with_suffix(".png")
        slabs.figure_slab(store, 0, png)
        log.info("complete: %s and %s", out, png)
    return out


main = cli.command("python -m hpc_vdm.tile", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
