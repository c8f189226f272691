"""stellar_check.json: log10(1 + M*) mean and std against CMD, and the lit-pixel fraction, of the shipped
stellar model on mock LH sets (the stellar half of :func:`hpc_vdm.mock.simulate.observe`):

    OMP_NUM_THREADS=2 python docs/results/mock/stellar_check.py 11 128:20 256:20   # ~45 min on 2 cores

Arguments: mock.seed, then N:K for K simulations at N^3 (20 PM steps, CMD's painting kernel). One gravity
run per simulation is observed by every suite.
"""
import json
import sys
from pathlib import Path

import numpy as np

from hpc_vdm.config import load_config
from hpc_vdm.mock import simulate, stars
from hpc_vdm.mock.calibration import CMD, cmd_n_ngb


def stellar_statistics(n: int, n_sims: int, seed: int) -> dict:
    cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", "mock.upsample=1",
                             f"mock.n_ngb={cmd_n_ngb(n)}", f"mock.n_sims={n_sims}", f"mock.seed={seed}"]).mock
    acc = {s: np.zeros(4) for s in CMD}  # pixels, sum y, sum y^2, lit pixels
    for sim, row in enumerate(simulate.parameter_table(cfg)):
        sim_seed = simulate.sim_seed(cfg, sim)
        parts, groups = simulate.evolve(row, cfg, sim_seed)
        for suite in CMD:
            model = stars.SUITES[suite]
            rng = np.random.default_rng(simulate._seeds(sim_seed)[1])
            cat, mstar = stars.galaxies_of(parts, row, model, rng, groups)
            hydro = stars.hydro_positions(parts, cat, groups[0], model.expansion(float(row[2]), float(row[3])))
            maps = np.maximum(simulate.star_maps(hydro, mstar, cfg), 0.0).astype(np.float32)
            y = np.log10(1.0 + maps.astype(np.float64)).ravel()
            acc[suite] += [y.size, y.sum(), (y * y).sum(), (y > 0).sum()]
        print(f"{n}^3 simulation {sim + 1}/{n_sims}", flush=True)
    out = {}
    for suite, (c, s1, s2, lit) in acc.items():
        mean = s1 / c
        std = np.sqrt(s2 / c - mean * mean)
        out[suite] = {"mean_rel_err": mean / CMD[suite][2] - 1, "std_rel_err": std / CMD[suite][3] - 1,
                      "nonzero": lit / c}
    return out


def main() -> None:
    seed, specs = int(sys.argv[1]), sys.argv[2:]
    sets = {spec: stellar_statistics(*(int(v) for v in spec.split(":")), seed) for spec in specs}
    out = {"what": "log10(1 + Mstar) pooled mean/std relative to CMD and the lit-pixel fraction of the shipped "
                   f"stellar model, LH sets of mock.seed {seed}, 20 PM steps, CMD's painting kernel",
           "command": "python docs/results/mock/stellar_check.py " + " ".join(sys.argv[1:]), "sets": sets}
    (Path(__file__).parent / "stellar_check.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
