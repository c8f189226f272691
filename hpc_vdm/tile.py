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

import math
from pathlib import Path

from . import cli, dist
from .io.inputs import need_disk, need_memory
from .inference import slabs
from .inference.apply import apply

SHORTCUTS = {"volume": "tile.volume", "model": "trained.model", "input": "tile.input", "axes": "tile.axes",
             "slabs": "tile.slabs", "n_samples": "tile.n_samples", "steps": "sampler.steps", "sampler": "sampler.kind",
             "tile": "tile.tile", "halo": "tile.halo", "blend": "tile.blend", "batch_size": "tile.batch_size",
             "seed": "tile.seed", "out": "tile.out", "device": "trained.device", "which": "trained.which"}


def check_sizes(cfg, p: slabs.Plan, env: dist.DistEnv, force: bool = False) -> None:
    """Refuse a run whose slabs, draws and network windows cannot fit in this machine's memory, or whose store
    cannot fit on the disk (estimates, stated in the message; ``--force`` for a user who knows better)."""
    t, m = cfg.tile, p.bundle.config.model
    pixels, mine = p.volume.pixels, math.ceil(len(p.pairs) / env.world)
    per_pass = min(t.samples_per_pass, p.n_samples)
    window = t.tile + 2 * t.halo
    network = 4.0 * 8 * t.batch_size * per_pass * window**2 * m.channels * sum(m.channel_mults)
    draws = 4.0 * 24 * per_pass * pixels**2  # the field, its ε, the sampler's history, blending, float64 copies
    need_memory(p.source.memory_bytes(p.volume, p.pairs[:mine]) + draws + network,
                f"tile: {mine} slab(s) of {pixels}^2 pixels on this rank from a {p.source.kind} input, {per_pass} "
                f"draw(s) per pass, {t.batch_size} windows of {window}^2 per network call", force=force,
                hint="use fewer slabs per rank (--slabs, more ranks), a smaller tile.samples_per_pass, "
                     "tile.batch_size or --tile")
    if not Path(t.out).exists():
        need_disk(4.0 * pixels**2 * len(p.pairs) * (p.n_samples + 3), Path(t.out).parent,
                  f"the tile store {t.out!r} ({len(p.pairs)} slabs of {pixels}^2 float32 x ({p.n_samples} draws + "
                  f"condition, mean, std), before compression)", force=force)


def run(cfg, force: bool = False):
    p = slabs.plan(cfg)
    env = dist.detect()
    device = dist.pick_device(env, cfg.trained.device, "trained.device")
    check_sizes(cfg, p, env, force)
    t = cfg.tile
    note = (f"{len(p.pairs)} slabs of {p.volume.pixels}^2 x {p.n_samples} draws, {cfg.sampler.steps} steps, tile "
            f"{t.tile} + halo {t.halo} ({t.blend}), {p.bundle.kind} on {device}")
    return apply(slabs.job(cfg, p, device), env, progress=t.progress, note=note)


main = cli.command("python -m hpc_vdm.tile", __doc__.splitlines()[0], SHORTCUTS, run,
                   flags={"force": "run even when the slabs look larger than this machine's memory or disk"})


if __name__ == "__main__":
    raise SystemExit(main())
