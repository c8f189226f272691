#!/usr/bin/env python
"""Benchmark: what recording the frozen-GroupNorm statistics costs at export (JSON on stdout).

    python tools/bench_export.py [--channels 8] [--mults 1 2 2 2] [--maps 4] [--pixels 256] [--gammas 33] [--rounds 3]

An export of a GroupNorm VDM calls :func:`hpc_vdm.models.calibrate`: one forward pass of ``--maps`` held-out maps
per γ of ``--gammas`` (configs/train_tiny.yaml's network at 256² by default). The baseline, in the same run, is the
same forward passes without recording; ``overhead_ratio`` is calibrate's time over it (1.0: recording is free,
as when the statistics come from the normalisation's own pass). Rounds interleave the two; best of each.
"""
from __future__ import annotations

import argparse
import json

import torch

from _timing import interleaved_best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--mults", type=int, nargs="+", default=[1, 2, 2, 2])
    ap.add_argument("--maps", type=int, default=4)
    ap.add_argument("--pixels", type=int, default=256)
    ap.add_argument("--gammas", type=int, default=33)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from hpc_vdm.models import UNet, calibrate

    torch.manual_seed(0)
    net = UNet(channels=args.channels, channel_mults=tuple(args.mults), norm="group", norm_groups=4,
               attention="none", dropout=0.0).eval()
    x = torch.randn(args.maps, 1, args.pixels, args.pixels)             # (N, 1, H, W) targets
    cond = torch.randn(args.maps, 1, args.pixels, args.pixels)          # (N, 1, H, W) conditions
    gammas = torch.linspace(-10.0, 5.0, args.gammas)

    @torch.no_grad()
    def forward_only():
        for g in gammas:
            net(x, torch.full((args.maps,), float(g)), cond)

    best = interleaved_best({"forward_only_s": forward_only, "calibrate_s": lambda: calibrate(net, x, cond, gammas)},
                            min_rounds=args.rounds)
    print(json.dumps({"network": {"channels": args.channels, "mults": args.mults, "norm": "group"},
                      "maps": args.maps, "pixels": args.pixels, "gammas": args.gammas,
                      "threads": torch.get_num_threads(), **best,
                      "overhead_ratio": best["calibrate_s"] / best["forward_only_s"]}, indent=1))


if __name__ == "__main__":
    main()
