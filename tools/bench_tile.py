#!/usr/bin/env python
"""Benchmark: the fused periodic tiled sampler on a big field against the same network evaluations untiled (JSON).

    python tools/bench_tile.py [--field 2048] [--tile 192] [--halo 32] [--steps 2] [--batch-size 8]
                               [--device auto|cpu|cuda] [--paper] [--samples 1]

``tiled``: ``hpc_vdm.diffusion.sample_tiled`` for ``--steps`` ancestral steps of a field² map: per step, gather
every (tile + 2 halo)² window with wrap-around, predict ε̂ in batches, keep the cores, one global step with
keyed global noise. ``untiled`` (the baseline, measured in the same run): exactly the same number of network
evaluations on random (tile + 2 halo)² batches of the same size, nothing else. ``overhead_pct`` is what the
gather, scatter, noise and step cost on top of the network. ``tiles_per_s`` counts windows × samples.
The projection to one TNG300 slab (2099², 250 steps) and to all 123 slabs of one posterior sample scales the
measured seconds per window; it is labelled with the device it was measured on.
Default network: a 16-channel demo U-Net (the papers' 32.7 M with ``--paper``; slow on CPU).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402

from hpc_vdm import dist  # noqa: E402
from hpc_vdm.config import RunConfig  # noqa: E402
from hpc_vdm.diffusion import build_vdm  # noqa: E402
from hpc_vdm.diffusion.tiled import check_window, sample_tiled  # noqa: E402
from tiling import TileGrid  # noqa: E402

TNG300 = {"pixels": 2099, "slabs": 3 * 41, "steps": 250}


def make_vdm(paper: bool, device):
    cfg = RunConfig()
    if not paper:
        cfg.model.channels, cfg.model.channel_mults, cfg.model.dropout = 16, [1, 2, 2, 2], 0.0
    torch.manual_seed(0)
    return build_vdm(cfg.model, cfg.diffusion).to(device).eval()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--field", type=int, default=2048)
    p.add_argument("--tile", type=int, default=192)
    p.add_argument("--halo", type=int, default=32)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--paper", action="store_true", help="the papers' 32.7 M U-Net instead of the demo one")
    a = p.parse_args(argv)
    device = dist.pick_device(dist.detect(), a.device)
    vdm = make_vdm(a.paper, device)
    check_window(vdm, a.tile, a.halo)
    grid = TileGrid.make((a.field, a.field), a.tile, a.halo)
    window = a.tile + 2 * a.halo
    n_windows = len(grid) * a.steps * a.samples
    cond = torch.randn(1, a.field, a.field)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def tiled():
        sample_tiled(vdm, cond, tile=a.tile, halo=a.halo, n_steps=a.steps, seed=0, samples=range(a.samples),
                     batch_size=a.batch_size, device=device)
        sync()

    z = torch.randn(a.batch_size * a.samples, 1, window, window, device=device)
    c = torch.randn_like(z)
    g = torch.zeros(z.shape[0], device=device)

    @torch.no_grad()
    def untiled():
        for start in range(0, len(grid) * a.steps, a.batch_size):
            b = min(a.batch_size, len(grid) * a.steps - start) * a.samples
            vdm.eps_hat(z[:b], g[:b], c[:b])
        sync()

    untiled()  # warm-up (allocator, cuDNN autotune)
    t_untiled = best_of(untiled, a.repeat)
    t_tiled = best_of(tiled, a.repeat)
    s_per_window = t_tiled / n_windows
    tng_windows = math.ceil(TNG300["pixels"] / a.tile) ** 2 * TNG300["steps"]
    out = {
        "benchmark": "bench_tile", "device": str(device), "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "network": "paper 32.7M" if a.paper else "demo 16-channel",
        "params": sum(q.numel() for q in vdm.score.parameters()), "field": a.field, "tile": a.tile,
        "halo": a.halo, "window": window, "tiles_per_step": len(grid), "steps": a.steps, "samples": a.samples,
        "batch_size": a.batch_size, "network_evaluations": n_windows,
        "tiled_s": round(t_tiled, 4), "untiled_same_nfe_s": round(t_untiled, 4),
        "overhead_pct": round(100 * (t_tiled / t_untiled - 1), 2), "ratio_tiled_vs_untiled": round(t_tiled / t_untiled, 4),
        "tiles_per_s": round(n_windows / t_tiled, 3),
        "projected_s_per_tng300_slab_250_steps": round(s_per_window * tng_windows, 1),
        "projected_h_all_123_tng300_slabs_one_sample": round(s_per_window * tng_windows * TNG300["slabs"] / 3600, 2),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
