"""Astrid's log10(1 + M*) mean at 128^3 and 256^3 on the same 2 cosmologies, for fill-in anchor weights
density^alpha (docs/results/mock/README.md, "The fill-in anchors"), which chose ``galaxies.FILL_BIAS``:

    OMP_NUM_THREADS=2 python docs/results/mock/fill_anchor_check.py     # ~5 min on 2 cores

The mass-function fill-in halos (:func:`hpc_vdm.mock.galaxies.unresolved_halos`) sit on ungrouped
particles drawn with probability ~ density^FILL_BIAS; this check sets FILL_BIAS to each alpha in turn.
"""
import numpy as np

from hpc_vdm.config import load_config
from hpc_vdm.mock import galaxies, simulate, stars
from hpc_vdm.mock.calibration import CMD, cmd_n_ngb

ALPHAS = (1.0, 0.5, 0.3, 0.0)


def main() -> None:
    for n in (128, 256):
        cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", f"mock.n_ngb={cmd_n_ngb(n)}",
                                 "mock.n_sims=8", "mock.seed=11"]).mock
        params = simulate.parameter_table(cfg)
        pixels = {alpha: [] for alpha in ALPHAS}
        for sim in (0, 1):
            seed = simulate.sim_seed(cfg, sim)
            parts, groups = simulate.evolve(params[sim], cfg, seed)
            for alpha, out in pixels.items():
                default, galaxies.FILL_BIAS = galaxies.FILL_BIAS, alpha
                try:
                    maps = simulate.observe(parts, groups, params[sim], cfg, stars.SUITES["Astrid"], seed)
                finally:
                    galaxies.FILL_BIAS = default
                out.append(np.log10(1.0 + maps["Mstar"].astype(np.float64)).ravel())
        for alpha, out in pixels.items():
            y = np.concatenate(out)
            print(f"{n}^3 alpha {alpha}: Astrid mean {100 * (y.mean() / CMD['Astrid'][2] - 1):+.2f}% vs CMD, "
                  f"lit {100 * (y > 0).mean():.3f}%", flush=True)


if __name__ == "__main__":
    main()
