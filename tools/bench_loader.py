#!/usr/bin/env python
"""Benchmark: training samples/s read from maps.zarr with 0 and 2 DataLoader workers (JSON on stdout).

    python tools/bench_loader.py [--store maps.zarr] [--batches 50] [--batch-size 12]

Without --store it builds a small mock store in a temporary folder first. The baseline is the
same loader with 0 workers in the same run; `ratio` = samples/s with N workers / samples/s with 0.
Each sample is one (Mstar, Mcdm) 256^2 pair, normalised and augmented (dihedral + roll).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch

from hpc_vdm.config import load_config
from hpc_vdm.data.dataset import build_loader


def measure(cfg, n_batches: int) -> dict:
    _, sampler, loader = build_loader(cfg.data, "train")
    seen, t0, t_first = 0, time.perf_counter(), None
    epoch = 0
    while seen < n_batches * cfg.data.batch_size:
        sampler.set_epoch(epoch)
        for batch in loader:
            if t_first is None:  # exclude worker start-up from the rate, report it separately
                t_first = time.perf_counter()
                start_seen = batch["target"].shape[0]
            seen += batch["target"].shape[0]
            if seen >= n_batches * cfg.data.batch_size:
                break
        epoch += 1
    elapsed = time.perf_counter() - t_first
    return {"samples_per_s": (seen - start_seen) / elapsed if elapsed > 0 else float("nan"),
            "startup_s": t_first - t0, "samples": seen}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--store", help="maps.zarr (default: a fresh mock store)")
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            from hpc_vdm.mock.cli import generate
            from hpc_vdm.prepare import prepare

            cfg = load_config(None, [f"mock.out_dir={tmp}/cmd", "mock.n_sims=4", f"data.source_dir={tmp}/cmd",
                                     f"data.store={tmp}/maps.zarr"])
            generate(cfg, progress=False)
            store = prepare(cfg, progress=False)
        results = {}
        for w in args.workers:
            cfg = load_config(None, [f"data.store={store}", f"data.batch_size={args.batch_size}",
                                     f"data.num_workers={w}"])
            results[f"workers_{w}"] = measure(cfg, args.batches)
    base = results[f"workers_{args.workers[0]}"]["samples_per_s"]
    out = {"bench": "loader", "store": str(store), "batch_size": args.batch_size, "batches": args.batches,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "results": results,
           "ratio_vs_workers_0": {k: v["samples_per_s"] / base for k, v in results.items()}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
