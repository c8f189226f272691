#!/usr/bin/env python
"""Benchmark: what the prior base costs on the science network (JSON on stdout).

    python tools/bench_prior.py [--batch 8] [--pixels 64] [--rounds 15] [--config configs/science.yaml]

The score network of ``--config`` (with its six parameters) is built with each prior base: ``linear_transfer``
(the baseline, measured in the same run), ``correlated_transfer`` (its per-γ Wiener kernel built and applied by a
direct convolution on every call) and ``correlated_transfer`` with ``prior_level: log_cdm``. For each it times,
interleaved so that a shared machine's load falls on all alike: the prior's ε̂_G alone; one sampling call of the
network (forward, every map at one γ, as the samplers call it); one training pass (forward and backward of the
bound at random times). The priors are unfitted (costs do not depend on the fitted values). Ratios are against
the linear-transfer baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_best  # noqa: E402

from hpc_vdm.bundle import build_module  # noqa: E402
from hpc_vdm.config import load_config  # noqa: E402

VARIANTS = {"linear_transfer": ("linear_transfer", "linear"), "correlated_transfer": ("correlated_transfer", "linear"),
            "correlated_transfer+log_cdm": ("correlated_transfer", "log_cdm")}


def runners(config: str, prior: str, level: str, batch: int, pixels: int) -> dict:
    cfg = load_config(config, [f"model.vdm.prior={prior}", f"model.vdm.prior_level={level}"])
    names = cfg.model.params
    torch.manual_seed(0)
    vdm = build_module(cfg)                                                             # as make science builds it
    g = torch.Generator().manual_seed(1)
    x, cond = (torch.randn(batch, 1, pixels, pixels, generator=g) for _ in range(2))   # normalised maps
    params = torch.rand(batch, len(names), generator=g)                                 # (B, P) in [0, 1]
    gamma = torch.full((batch,), 0.0)                                                    # one level, as sampling

    def prior_call():
        with torch.no_grad():
            vdm.score.prior.eps_hat(x, gamma, cond, params)

    def sample_call():
        with torch.no_grad():
            vdm.eps_hat(x, gamma, cond, params)

    def train_pass():
        vdm.zero_grad(set_to_none=True)
        vdm(x, cond, params).loss.mean().backward()

    return {"prior_eps_hat": prior_call, "network_sampling_call": sample_call, "training_pass": train_pass}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/science.yaml")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pixels", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    for name in ("batch", "pixels", "rounds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    calls = {name: runners(args.config, *spec, args.batch, args.pixels) for name, spec in VARIANTS.items()}
    for fns in calls.values():                                                          # warm-up
        for fn in fns.values():
            fn()
    best = interleaved_best({f"{v}/{k}": fn for v, fns in calls.items() for k, fn in fns.items()},
                            min_rounds=args.rounds, max_rounds=args.rounds)
    seconds = {v: {k: best[f"{v}/{k}"] for k in fns} for v, fns in calls.items()}
    base = seconds["linear_transfer"]
    result = {"bench": "prior", "config": args.config, "batch": args.batch, "pixels": args.pixels,
              "rounds": best["rounds"], "threads": torch.get_num_threads(), "machine": platform.machine(),
              "baseline": "linear_transfer", "seconds": seconds,
              "ratio_vs_baseline": {v: {k: s / base[k] for k, s in t.items()} for v, t in seconds.items()}}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
