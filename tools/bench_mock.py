#!/usr/bin/env python
"""Benchmark: wall seconds of one mock simulation (PM + stars + 15+15 maps), JSON on stdout.

    python tools/bench_mock.py [--particles 64 128] [--steps 5 20] [--upsample 1 2]

The baseline measured in the same run is the 2LPT initial conditions alone at the same size;
`ratio_vs_2lpt` says what the particle-mesh run, the stellar model and the painting cost on top.
"""
from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np
from _timing import best_of

from hpc_vdm.config import load_config
from hpc_vdm.mock import pm, simulate, stars
from hpc_vdm.mock.cosmology import Cosmology


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--particles", type=int, nargs="+", default=[64, 128])
    p.add_argument("--steps", type=int, nargs="+", default=[5, 20])
    p.add_argument("--upsample", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    row = np.array([0.3, 0.8, 1, 1, 1, 1], dtype=float)
    cosmo = Cosmology(0.3, 0.8)
    results = []
    for n, steps, up in zip(args.particles, args.steps, args.upsample):
        cfg = load_config(None, [f"mock.particles={n}", f"mock.pm_steps={steps}", f"mock.upsample={up}"]).mock
        shape, box = (n,) * 3, (cfg.box_mpc_h,) * 3

        def lpt_only():
            dk = pm.gaussian_field(shape, box, cosmo, np.random.default_rng(0))
            pm.lpt_displacements(dk, shape, box)

        full = best_of(lambda: simulate.simulate(row, cfg, stars.SUITES["IllustrisTNG"], np.random.SeedSequence(0)),
                       args.repeat)
        base = best_of(lpt_only, args.repeat)
        results.append({"particles": n, "pm_steps": steps, "upsample": up, "seconds_per_sim": full,
                        "baseline_2lpt_seconds": base, "ratio_vs_2lpt": full / base,
                        "maps_per_second": 30 / full})
    print(json.dumps({"bench": "mock", "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
