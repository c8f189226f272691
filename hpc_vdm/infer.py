"""``python -m hpc_vdm.infer``: the parameters of input maps from an emulator's bound, on a grid, calibrated.

    python -m hpc_vdm.infer --model runs/emu/export/model.pt --maps 3,17 --out out/infer.zarr
    python -m hpc_vdm.infer --model M --split test --n-maps 40 --set infer.centre=coarse \\
        --set infer.cv_store=data/maps_cv.zarr --out out/calibration.zarr
    srun python -m hpc_vdm.infer ...       # or mpiexec -n 4 / torchrun: ranks split the grid's batches

For every input map, the bound's terms L_j(x | θ) (Mudur+23 in continuous time: the share of slice j of the
diffusion times, nats) on a grid of two parameters — default 50 x 50 over ±0.1 around each map's true
parameters clipped to the prior; any box; or a coarse grid over the prior first — with common random numbers
(the same noise for every θ, keyed by (seed, map, term, draw)); optionally NUTS chains on the bound with
that noise held fixed. Units (a map's batch of grid points, a chain) are split over the ranks into a resumable
Zarr store (:mod:`hpc_vdm.emulate.front`); at the end ``OUT.json`` holds −2Δln L summaries per map (maximum,
marginal 68%/95% intervals, FoM), the coverage of the intervals, HPD levels and TARP over the maps with
known parameters, and the P(k) baseline beside them (``infer.cv_store``); ``OUT.png`` is the paper's Fig. 3
(contours per term and summed, predicted vs true) with calibration curves. Everything is checked before
anything is written.
"""
from __future__ import annotations

from . import cli, dist
from .emulate import front, units
from .inference.apply import apply

SHORTCUTS = {"model": "trained.model", "store": "infer.store", "maps": "infer.maps", "split": "infer.split",
             "n_maps": "infer.n_maps", "grid": "infer.grid", "centre": "infer.centre", "box": "infer.box",
             "times": "infer.times", "seed": "infer.seed", "batch_size": "infer.batch_size", "out": "infer.out",
             "device": "trained.device", "which": "trained.which"}


def run(cfg):
    p = front.plan(cfg)
    env = dist.detect()
    device = dist.pick_device(env, cfg.trained.device, "trained.device")
    f = cfg.infer
    note = (f"{len(p.maps)} maps, grid {f.grid[0]}x{f.grid[1]}{' after a coarse ' + 'x'.join(map(str, f.coarse)) if p.coarse else ''}"
            f", {f.times} terms x {f.noise_draws} draws, {min(f.mcmc_maps, len(p.maps))} chains on {device}")
    return apply(units.job(cfg, p, device), env, progress=f.progress, note=note)


main = cli.command("python -m hpc_vdm.infer", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
