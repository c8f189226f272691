"""Astrid's stellar mean at 128^3 and 256^3 on 2 cosmologies for fill-in anchor weights density^alpha
(docs/results/mock/README.md): OMP_NUM_THREADS=2 python docs/results/mock/fill_anchor_check.py (~4 min)."""
import numpy as np

from hpc_vdm.config import load_config
from hpc_vdm.mock import galaxies, simulate, stars
from hpc_vdm.mock.calibration import CMD, cmd_n_ngb

orig = galaxies.unresolved_halos
alpha = {"v": 1.0}
def patched(hmf, m_lo, m_hi, volume, labels, density, rng, fof_masses=np.zeros(0), n_bins=32):
    return orig(hmf, m_lo, m_hi, volume, labels, density ** alpha["v"], rng, fof_masses, n_bins)
galaxies.unresolved_halos = patched
for n in (128, 256):
    cfg = load_config(None, [f"mock.particles={n}", "mock.pm_steps=20", f"mock.n_ngb={cmd_n_ngb(n)}", "mock.n_sims=8", "mock.seed=11"]).mock
    params = simulate.parameter_table(cfg)
    acc = {a: [] for a in (1.0, 0.5, 0.0)}
    for sim in (0, 1):
        sd = simulate.sim_seed(cfg, sim); parts, groups = simulate.evolve(params[sim], cfg, sd)
        for a in acc:
            alpha["v"] = a
            m = simulate.observe(parts, groups, params[sim], cfg, stars.SUITES["Astrid"], sd)["Mstar"].astype(np.float64)
            acc[a].append(np.log10(1 + m).ravel())
    for a, ys in acc.items():
        y = np.concatenate(ys); print(n, "alpha", a, "Astrid mean %+.2f%%  lit %.3f%%" % (100*(y.mean()/CMD["Astrid"][2]-1), 100*(y > 0).mean()), flush=True)
