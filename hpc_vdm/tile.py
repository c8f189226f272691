"""``python -m hpc_vdm.tile``: a trained map model over a big volume, slab by slab, by periodic tiling.

    python -m hpc_vdm.tile --volume tng300 --model runs/x/export/model.pt --out out/tng300.zarr
    python -m hpc_vdm.tile --volume tng100 --input snapdir/ --axes 0,1,2 --n-samples 4 --out out/tng100.zarr
    srun python -m hpc_vdm.tile ...        # or mpiexec -n 4: ranks split the slabs (slurm/tile_tng300.sh)

The volume preset fixes the box, the 5 Mpc/h slabs and the training pixel scale; the conditioning slabs
come from a 3D stellar-mass grid, TNG-style snapshot chunks or the embedded mock
(:mod:`hpc_vdm.inference.sources`). Each slab is drawn whole on the torus — posterior samples by the
fused tiled sampler for a diffusion model, one draw for a deterministic one — into a resumable Zarr store
with a figure of one slab beside it (:mod:`hpc_vdm.inference.slabs`, :mod:`hpc_vdm.inference.apply`).
Everything is checked before anything is written; rank 0 holds the output's lock while any rank writes,
so a second command on the same ``--out`` is refused naming the first.
"""
from __future__ import annotations

from . import cli, dist
from .inference import slabs
from .inference.apply import apply

SHORTCUTS = {"volume": "tile.volume", "model": "trained.model", "input": "tile.input", "axes": "tile.axes",
             "slabs": "tile.slabs", "n_samples": "tile.n_samples", "steps": "sampler.steps", "sampler": "sampler.kind",
             "tile": "tile.tile", "halo": "tile.halo", "blend": "tile.blend", "batch_size": "tile.batch_size",
             "seed": "tile.seed", "out": "tile.out", "device": "trained.device", "which": "trained.which"}


def run(cfg):
    p = slabs.plan(cfg)
    env = dist.detect()
    device = dist.pick_device(env, cfg.trained.device, "trained.device")
    t = cfg.tile
    note = (f"{len(p.pairs)} slabs of {p.volume.pixels}^2 x {p.n_samples} draws, {cfg.sampler.steps} steps, tile "
            f"{t.tile} + halo {t.halo} ({t.blend}), {p.bundle.kind} on {device}")
    return apply(slabs.job(cfg, p, device), env, progress=t.progress, note=note)


main = cli.command("python -m hpc_vdm.tile", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
