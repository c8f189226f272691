"""stellar_check.json: log10(1 + M*) mean and std against CMD, and the lit-pixel fraction, of the shipped
stellar model on mock LH sets (the stellar half of :func:`hpc_vdm.mock.simulate.observe`):

    OMP_NUM_THREADS=2 python docs/results/mock/stellar_check.py 11 128:20 256:20   # ~45 min on 2 cores
    python docs/results/mock/stellar_check.py 11 128:20 256:20 --cache /tmp/gravity     # keeps the PM runs

Arguments: mock.seed, then N:K for K simulations at N^3 (20 PM steps, CMD's painting kernel). One gravity
run per simulation is observed by every suite. With ``--cache DIR`` every gravity run (particles, FoF
groups and sub-clumps, ~0.45 GB per simulation at 256^3) is kept in DIR and read back by the next call:
iterations of the stellar model then cost only the galaxies and the maps.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from hpc_vdm.config import load_config
from hpc_vdm.mock import simulate, stars, substructure
from hpc_vdm.mock.calibration import CMD, cmd_n_ngb
from hpc_vdm.mock.pm import Particles


def gravity(row, cfg, sim: int, cache: Path | None):
    """The particles and groups of one simulation (:func:`hpc_vdm.mock.simulate.evolve`), from ``cache``
    when it holds them (written there otherwise)."""
    n, seed = cfg.particles, cfg.seed
    path = cache / f"g{n}_s{seed}_{sim:03d}.npz" if cache else None
    if path is None or not path.exists():
        parts, groups = simulate.evolve(row, cfg, simulate.sim_seed(cfg, sim))
        if path is not None:
            cl = groups[2]
            np.savez(path.with_suffix(".tmp.npz"), pos=parts.pos, density=parts.density, labels=groups[0],
                     sizes=groups[1], params=row, c_host=cl.host, c_size=cl.size, c_anchor=cl.anchor, c_first=cl.first)
            path.with_suffix(".tmp.npz").replace(path)
        return parts, groups
    d = np.load(path)
    parts = Particles((n,) * 3, (cfg.box_mpc_h,) * 3, d["pos"], None, d["density"])
    return parts, (d["labels"], d["sizes"], substructure.Clumps(d["c_host"], d["c_size"], d["c_anchor"], d["c_first"]))


def stellar_statistics(n: int, n_sims: int, seed: int, cache: Path | None = None) -> dict:
    cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", "mock.upsample=1",
                             f"mock.n_ngb={cmd_n_ngb(n)}", f"mock.n_sims={n_sims}", f"mock.seed={seed}"]).mock
    acc = {s: np.zeros(4) for s in CMD}  # pixels, sum y, sum y^2, lit pixels
    for sim, row in enumerate(simulate.parameter_table(cfg)):
        sim_seed = simulate.sim_seed(cfg, sim)
        parts, groups = gravity(row, cfg, sim, cache)
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seed", type=int)
    p.add_argument("sets", nargs="+", help="N:K, K simulations at N^3")
    p.add_argument("--cache", type=Path, help="folder that keeps the gravity runs")
    args = p.parse_args()
    sets = {spec: stellar_statistics(*(int(v) for v in spec.split(":")), args.seed, args.cache) for spec in args.sets}
    out = {"what": "log10(1 + Mstar) pooled mean/std relative to CMD and the lit-pixel fraction of the shipped "
                   f"stellar model, LH sets of mock.seed {args.seed}, 20 PM steps, CMD's painting kernel",
           "command": f"python docs/results/mock/stellar_check.py {args.seed} " + " ".join(args.sets), "sets": sets}
    (Path(__file__).parent / "stellar_check.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
