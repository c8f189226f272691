#!/usr/bin/env python
"""Benchmark: fused periodic tiled sampling in wall time, projected to TNG300 (123 slabs of 2099²) (JSON on stdout).

    python tools/bench_tile.py [--networks science paper] [--sampler ancestral unipc] [--steps 16 32]
                               [--reference-steps 250] [--measure-nfe 2] [--field 0] [--samples 1]
                               [--batch-size 8] [--posterior-samples 1 10 100] [--device auto|cpu|cuda]

For each network and sampler, ``hpc_vdm.diffusion.sample_tiled`` runs ``--measure-nfe`` network evaluations
(NFE) on a ``--field``² map (default: k − ½ tiles with k² ≥ the batch size, so that network calls are full
batches and the size is not a multiple of the tile, as 2099 is not);
``sampler=NAME`` is passed through for every sampler but "ancestral". The cost of a sampler is its NFE times
the cost of one tiled evaluation (gather every window, predict ε̂ in batches, blend, one global step; the
samplers' own arithmetic is a few field-sized operations), so the measured seconds per window per NFE per
sample project linearly to a whole slab: windows per NFE = ceil(2099 / tile)² (:class:`tiling.TileGrid`, the
last core overlapping its neighbour), times NFE — ``--reference-steps`` for the ancestral sampler (the
papers' 250), each of ``--steps`` for the others. ``node_hours`` are for all 123 slabs × N posterior samples
on the measuring device (its threads and cores are in the JSON). ``untiled_overhead_pct``: the tiled run
against exactly the same network evaluations on random windows, untiled. Every contender (each sampler, the
untiled baseline) runs once per round, rounds interleaved, best of each over the rounds. Memory per rank:
the process's peak RSS while one network samples (reset between networks), and the GPU's peak allocation.

Networks: ``science`` is configs/science.yaml's model (32 channels, x1/x2/x2, trained on 64² maps of
0.39 Mpc/h pixels), windows of 64² (tile 48, halo 8), projected at 2099² and at its own pixel scale (2099/4);
``paper`` the papers' 32.7 M U-Net, windows of 256² (tile 192, halo 32). Weights are random (cost only).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from hpc_vdm import dist  # noqa: E402
from hpc_vdm.config import load_config  # noqa: E402
from hpc_vdm.bundle import build_module  # noqa: E402
from hpc_vdm.diffusion import sampler as sampler_module  # noqa: E402
from hpc_vdm.diffusion.tiled import check_window, sample_tiled  # noqa: E402
from tiling import TileGrid  # noqa: E402

from _timing import interleaved_best  # noqa: E402

TNG300 = {"pixels": 2099, "box_mpc_h": 205.0, "slabs": 3 * 41, "reference_nfe": 250}
NETWORKS = {
    "science": {"config": REPO / "configs" / "science.yaml", "tile": 48, "halo": 8, "pool": 4,
                "label": "science (configs/science.yaml: 32 channels, x1/x2/x2, 64^2 maps)"},
    "paper": {"config": None, "tile": 192, "halo": 32, "pool": 1,
              "label": "papers' U-Net (48 channels, x1/x2/x4/x8, attention)"},
}
FEW_STEP_SAMPLER = getattr(sampler_module, "DEFAULT_SAMPLER", "ancestral")
FEW_STEP_NFE = getattr(sampler_module, "DEFAULT_STEPS", None)


def make_vdm(network: str, device):
    """The untrained network of ``network``'s config as ``make science`` builds it (its prior and parameters)
    and a (1, P) parameter vector for it, or None where it takes none."""
    cfg = load_config(NETWORKS[network]["config"])
    torch.manual_seed(0)
    n = len(cfg.model.params)
    return build_module(cfg).to(device).eval(), (torch.full((1, n), 0.5, device=device) if n else None)


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM) since start or the last :func:`reset_peak_rss`."""
    with open("/proc/self/status") as f:
        return 1024 * int(next(line for line in f if line.startswith("VmHWM")).split()[1])


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def tng300_windows(tile: int, halo: int, pool: int = 1) -> int:
    """Windows per network evaluation over one TNG300 slab (2099 / pool pixels a side), as sample_tiled cuts them."""
    pixels = math.ceil(TNG300["pixels"] / pool)
    return len(TileGrid.make((pixels, pixels), tile, halo))


def projection(s_per_window: float, windows: int, nfe: int, posterior_samples) -> dict:
    s_slab = s_per_window * windows * nfe
    return {"nfe": nfe, "windows_per_nfe": windows, "s_per_slab_per_sample": round(s_slab, 2),
            "hours_all_123_slabs_per_sample": round(s_slab * TNG300["slabs"] / 3600, 3),
            "node_hours_all_123_slabs": {str(n): round(s_slab * TNG300["slabs"] * n / 3600, 2)
                                         for n in posterior_samples}}


def vdm_device(vdm):
    return next(vdm.parameters()).device


def tiled_runner(vdm, params, name, a, net, cond, sync):
    """A call of ``measure_nfe`` tiled evaluations with sampler ``name`` (warmed up once: allocator, cuDNN
    autotune; a sampler that refuses the name fails here)."""
    kwargs = {} if name == "ancestral" else {"sampler": name}

    def run(nfe=a.measure_nfe):
        sample_tiled(vdm, cond, tile=net["tile"], halo=net["halo"], n_steps=nfe, seed=0, samples=range(a.samples),
                     batch_size=a.batch_size, device=vdm_device(vdm), params=params, **kwargs)
        sync()

    run(1)
    return run


def untiled_runner(vdm, params, a, net, windows: int, sync):
    """The same number of network evaluations as one tiled run, on random windows, nothing else."""
    device, window = vdm_device(vdm), net["tile"] + 2 * net["halo"]
    z = torch.randn(a.batch_size * a.samples, 1, window, window, device=device)
    c, g = torch.randn_like(z), torch.zeros(z.shape[0], device=device)
    p = None if params is None else params.expand(z.shape[0], -1)                     # (B·S, P)
    calls = windows * a.measure_nfe

    @torch.no_grad()
    def run():
        for start in range(0, calls, a.batch_size):
            b = min(a.batch_size, calls - start) * a.samples
            vdm.eps_hat(z[:b], g[:b], c[:b], None if p is None else p[:b])
        sync()

    run()
    return run


def bench_network(name: str, a, device, sync) -> dict:
    net = NETWORKS[name]
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    vdm, params = make_vdm(name, device)
    check_window(vdm, net["tile"], net["halo"])
    k = math.ceil(math.sqrt(a.batch_size))  # >= batch_size windows, so that network calls are full batches
    field = a.field or (k - 1) * net["tile"] + net["tile"] // 2
    cond = torch.randn(1, field, field)
    windows = len(TileGrid.make((field, field), net["tile"], net["halo"]))
    out = {"label": net["label"], "params": sum(q.numel() for q in vdm.score.parameters()), "tile": net["tile"],
           "halo": net["halo"], "window": net["tile"] + 2 * net["halo"], "field": field,
           "windows_per_nfe_measured": windows, "samplers": {}}
    runners = {}
    for s in a.sampler:
        try:
            runners[s] = tiled_runner(vdm, params, s, a, net, cond, sync)
        except Exception as e:  # a sampler that is not there (yet) is reported, the others still run
            out["samplers"][s] = {"error": f"{type(e).__name__}: {e}"}
    if a.untiled:
        runners["untiled"] = untiled_runner(vdm, params, a, net, windows, sync)
    best = interleaved_best(runners, a.min_rounds, a.repeat, a.min_time_s)
    out["rounds"] = best.pop("rounds")
    scales = {"tng300_2099": 1} | ({f"tng300_native_{math.ceil(TNG300['pixels'] / net['pool'])}": net["pool"]}
                                   if net["pool"] > 1 else {})
    for s in (s for s in a.sampler if s in best):
        per_window = best[s] / (windows * a.measure_nfe * a.samples)
        nfes = [a.reference_steps] if s == "ancestral" else a.steps
        out["samplers"][s] = {"nfe_measured": a.measure_nfe, "tiled_s": round(best[s], 4),
                              "s_per_window_nfe_sample": per_window, "projections": {
                                  scale: [projection(per_window, tng300_windows(net["tile"], net["halo"], pool), n,
                                                     a.posterior_samples) for n in nfes]
                                  for scale, pool in scales.items()}}
        if "untiled" in best:
            out["samplers"][s]["untiled_overhead_pct"] = round(100 * (best[s] / best["untiled"] - 1), 2)
    if "untiled" in best:
        out["untiled_same_nfe_s"] = round(best["untiled"], 4)
    out["peak_rss_bytes"] = peak_rss_bytes()
    out["gpu_peak_bytes"] = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return out


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--networks", nargs="+", default=["science", "paper"], choices=list(NETWORKS))
    p.add_argument("--sampler", nargs="+",
                   default=["ancestral"] + ([FEW_STEP_SAMPLER] if FEW_STEP_SAMPLER != "ancestral" else []),
                   help="samplers to time (default: ancestral and the product's few-step default, if any)")
    p.add_argument("--steps", nargs="+", type=int, default=[FEW_STEP_NFE] if FEW_STEP_NFE else [16, 32],
                   help="NFE of the few-step samplers' projections")
    p.add_argument("--reference-steps", type=int, default=TNG300["reference_nfe"], help="NFE of the ancestral one")
    p.add_argument("--measure-nfe", type=int, default=2, help="NFE actually run per measurement")
    p.add_argument("--field", type=int, default=0,
                   help="measured field side (0: k - 1/2 tiles, k^2 >= batch size: full batches, not a multiple)")
    p.add_argument("--samples", type=int, default=1, help="posterior samples drawn together per window")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--min-rounds", type=int, default=2, help="interleaved rounds at least (every sampler and the "
                                                                "untiled baseline once a round; best of) ...")
    p.add_argument("--repeat", type=int, default=5, help="... at most ...")
    p.add_argument("--min-time-s", type=float, default=10.0, help="... until this long was spent per contender")
    p.add_argument("--posterior-samples", nargs="+", type=int, default=[1, 10, 100])
    p.add_argument("--no-untiled", dest="untiled", action="store_false", help="skip the untiled baseline")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    device = dist.pick_device(dist.detect(), a.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    out = {"benchmark": "bench_tile", "device": str(device),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "tng300": TNG300,
           "samplers": a.sampler, "few_step_nfe": a.steps, "reference_nfe": a.reference_steps,
           "measure_nfe": a.measure_nfe, "samples_per_window": a.samples, "batch_size": a.batch_size,
           "projection": "linear in NFE: s_per_slab = s_per_window_nfe_sample x ceil(2099/tile)^2 windows x NFE; "
                         "measured on a smaller field with measure_nfe evaluations; node_hours on this device",
           "networks": {}}
    for name in a.networks:
        out["networks"][name] = bench_network(name, a, device, sync)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
