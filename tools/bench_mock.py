#!/usr/bin/env python
"""Benchmark: wall seconds of one mock simulation (PM + FoF + galaxies + 15+15 maps) and the CMD statistics, JSON.

    python tools/bench_mock.py [--particles 64 128 256] [--steps 5 20 20] [--upsample 1 1 1]
                               [--numpy-up-to 128] [--throughput 128:4] [--stats 128:40 256:4] [--seed 3]
                               [--shuffle 128:20] [--shuffle-seed 11]

The defaults take about 25 minutes on 2 cores (the 40 statistics simulations at 128^3 and 4 at 256^3
dominate); ``--stats`` with no value skips the statistics.

Timing: every configuration runs with the compiled (numba) kernels; up to ``--numpy-up-to`` particles per
side it also runs with the numpy reference kernels in the same process, and ``speedup_vs_numpy`` is the
ratio. The first compiled call of each kernel (JIT or cache load) is done before timing.

Throughput: for ``N:K`` in ``--throughput``, the mock CLI writes a K-simulation set with one worker per
core and with one worker; ``seconds_per_sim_workers_W`` is wall time / K (files included).

Statistics: for ``N:K`` in ``--stats``, K LH simulations at N^3 (20 PM steps, no sub-particles, CMD's
painting kernel: ``mock.n_ngb`` from :func:`hpc_vdm.mock.calibration.cmd_n_ngb`) are observed by every
suite, and the four pooled pixel statistics (log10 Mcdm mean/std, log10(1 + Mstar) mean/std) are printed
beside the CMD values with their relative errors.

Assembly bias: for ``N:K`` in ``--shuffle`` (default none), K LH simulations at N^3 (seed ``--shuffle-seed``)
are populated by every suite with its assembly bias on and off, and measured as hydrodynamic simulations
are (:mod:`hpc_vdm.mock.shuffle`): the shuffle test (the 3D stellar P(k), original over galaxies shuffled
among halos of the same 0.1 dex mass bin, at k < 2 h/Mpc, with a jackknife error over simulations), the
HOD's P(k) over the original's against what the shuffle predicts, and the correlations at fixed mass of
the centrals' stellar mass with environment and concentration. ``--shuffle 128:20`` takes about 8 minutes
on 2 free cores (``--stats`` and ``--throughput`` empty and ``--particles`` with no value run it alone).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from _timing import best_of

from hpc_vdm.baselines import hod
from hpc_vdm.config import load_config
from hpc_vdm.mock import kernels, simulate, stars
from hpc_vdm.mock import shuffle as shuffle_test
from hpc_vdm.mock.calibration import CMD, NAMES, cmd_n_ngb, pixel_statistics


def _stages(row, cfg, seed) -> dict:
    """Seconds per stage of one simulation (compiled kernels)."""
    from hpc_vdm.mock import pm
    from hpc_vdm.mock.cosmology import Cosmology

    t0 = time.perf_counter()
    parts = pm.run_pm(Cosmology(0.3, 0.8), (cfg.particles,) * 3, (cfg.box_mpc_h,) * 3, n_steps=cfg.pm_steps,
                      a_start=cfg.a_start, rng=np.random.default_rng(0))
    t1 = time.perf_counter()
    groups = stars.halos(parts)
    t2 = time.perf_counter()
    simulate.observe(parts, groups, row, cfg, stars.SUITES["IllustrisTNG"], seed)
    t3 = time.perf_counter()
    return {"pm": t1 - t0, "fof": t2 - t1, "galaxies_and_maps": t3 - t2}


def timing(n: int, steps: int, up: int, numpy_up_to: int, repeat: int) -> dict:
    cfg = load_config(None, [f"mock.particles={n}", f"mock.pm_steps={steps}", f"mock.upsample={up}",
                             f"mock.n_ngb={cmd_n_ngb(n, up)}"]).mock
    row = np.array([0.3, 0.8, 1, 1, 1, 1], dtype=float)
    seed = np.random.SeedSequence(0)
    run = lambda: simulate.simulate(row, cfg, stars.SUITES["IllustrisTNG"], seed)  # noqa: E731
    with kernels.use("numba"):
        small = load_config(None, ["mock.particles=16", "mock.pm_steps=1", f"mock.upsample={up}"]).mock
        simulate.simulate(row, small, stars.SUITES["IllustrisTNG"], seed)  # JIT / cache load
        compiled = best_of(run, repeat)
        stages = _stages(row, cfg, seed)
    out = {"particles": n, "pm_steps": steps, "upsample": up, "seconds_per_sim": compiled, "stages_s": stages}
    if n <= numpy_up_to:
        with kernels.use("numpy"):
            reference = best_of(run, 1)
        out.update(numpy_seconds_per_sim=reference, speedup_vs_numpy=reference / compiled)
    return out


def statistics(n: int, n_sims: int, seed: int) -> dict:
    cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", "mock.upsample=1",
                             f"mock.n_ngb={cmd_n_ngb(n)}", f"mock.n_sims={n_sims}", f"mock.seed={seed}"]).mock
    got = pixel_statistics(cfg, list(CMD), n_sims)
    out = {"particles": n, "pm_steps": 20, "upsample": 1, "n_ngb": cfg.n_ngb, "n_sims": n_sims, "seed": seed,
           "suites": {}}
    for suite, want in CMD.items():
        values, nonzero = got[suite]
        out["suites"][suite] = {name: {"mock": float(g), "cmd": w, "rel_err": float(g / w - 1)}
                                for name, g, w in zip(NAMES, values, want)}
        out["suites"][suite]["nonzero_fraction"] = nonzero
    return out


def assembly_bias(n: int, n_sims: int, seed: int) -> dict:
    """The shuffle test, the HOD against it, and the correlations at fixed mass, per suite, on and off."""
    cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", "mock.upsample=1",
                             f"mock.n_ngb={cmd_n_ngb(n)}", f"mock.n_sims={n_sims}", f"mock.seed={seed}"]).mock
    got = shuffle_test.shuffle_statistics(cfg, list(CMD), n_sims, models={"hod": hod.draw_on_catalogue})
    return {"particles": n, "pm_steps": 20, "n_sims": n_sims, "seed": seed, "k_max_h_mpc": shuffle_test.K_MAX,
            "suites": shuffle_test.summary(got)}


def throughput(n: int, n_sims: int, workers: int) -> dict:
    """Wall seconds per simulation of a whole LH set made by ``python -m hpc_vdm.mock`` (files written),
    ``workers`` simulations side by side, against the same set made one simulation at a time."""
    import tempfile

    from hpc_vdm.mock.cli import generate

    out = {"particles": n, "pm_steps": 20, "upsample": 1, "n_sims": n_sims}
    for w in sorted({1, workers}):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(None, [f"mock.out_dir={tmp}", f"mock.particles={n}", "mock.pm_steps=20",
                                     "mock.upsample=1", f"mock.n_ngb={cmd_n_ngb(n)}", f"mock.n_sims={n_sims}",
                                     f"mock.workers={w}"])
            t = time.perf_counter()
            generate(cfg, progress=False)
            out[f"seconds_per_sim_workers_{w}"] = (time.perf_counter() - t) / n_sims
    out["speedup_workers"] = out["seconds_per_sim_workers_1"] / out[f"seconds_per_sim_workers_{workers}"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--particles", type=int, nargs="*", default=[64, 128, 256])
    p.add_argument("--steps", type=int, nargs="+", default=[5, 20, 20])
    p.add_argument("--upsample", type=int, nargs="+", default=[1, 1, 1])
    p.add_argument("--numpy-up-to", type=int, default=128, help="also time the numpy kernels up to this size")
    p.add_argument("--stats", nargs="*", default=["128:40", "256:4"], help="N:K, K simulations at N^3")
    p.add_argument("--seed", type=int, default=3, help="mock.seed of the --stats LH sets")
    p.add_argument("--throughput", nargs="*", default=["128:4"],
                   help="N:K, a K-simulation set at N^3 written by the mock CLI with one worker per core")
    p.add_argument("--shuffle", nargs="*", default=[], help="N:K, the assembly-bias measures on K simulations at N^3")
    p.add_argument("--shuffle-seed", type=int, default=11, help="mock.seed of the --shuffle LH sets")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    results, stats, sets, shuffles = [], [], [], []
    for n, s, u in zip(args.particles, args.steps, args.upsample):
        results.append(timing(n, s, u, args.numpy_up_to, args.repeat))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress: a long run can be read early
    for spec in args.throughput:
        n, k = (int(v) for v in spec.split(":"))
        sets.append(throughput(n, k, os.cpu_count() or 1))
        print(json.dumps(sets[-1]), file=sys.stderr, flush=True)
    for spec in args.stats:
        stats.append(statistics(*(int(v) for v in spec.split(":")), args.seed))
        print(json.dumps(stats[-1]), file=sys.stderr, flush=True)
    for spec in args.shuffle:
        shuffles.append(assembly_bias(*(int(v) for v in spec.split(":")), args.shuffle_seed))
        print(json.dumps(shuffles[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"bench": "mock", "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                   "load_avg": os.getloadavg()},
                      "timing": results, "throughput": sets, "statistics": stats, "assembly_bias": shuffles}, indent=2))


if __name__ == "__main__":
    main()
