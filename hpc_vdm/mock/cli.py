"""``python -m hpc_vdm.mock``: mock CAMELS CMD files (maps + params) from particle-mesh simulations.

    python -m hpc_vdm.mock --out data/cmd --suite IllustrisTNG --sim-set LH --n-sims 8 --particles 64
    python -m hpc_vdm.mock --config configs/demo.yaml --preview out/preview.png

Files are written to a temporary folder beside the output and moved into place only when every
simulation has finished: an interrupted run leaves nothing behind, and existing files are kept unless
``--overwrite``.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import cli, figures
from ..config import RunConfig
from ..data import camels
from . import simulate, stars

log = logging.getLogger("hpc_vdm.mock")
FIELDS = ("Mstar", "Mcdm")
SHORTCUTS = {"out": "mock.out_dir", "suite": "mock.suite", "sim_set": "mock.set", "n_sims": "mock.n_sims",
             "particles": "mock.particles", "pm_steps": "mock.pm_steps", "upsample": "mock.upsample",
             "seed": "mock.seed", "pixels": "mock.map_pixels"}


def output_paths(cfg: RunConfig) -> dict[str, Path]:
    m = cfg.mock
    paths = {f: camels.maps_path(m.out_dir, f, m.suite, m.set) for f in FIELDS}
    paths["params"] = camels.params_path(m.out_dir, m.suite, m.set)
    return paths


def generate(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True) -> dict[str, Path]:
    """Run every simulation of ``cfg.mock`` and write the CMD files; returns their paths."""
    m = cfg.mock
    paths = output_paths(cfg)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output exists: {existing}; pass --overwrite to replace it")
    params = simulate.parameter_table(m)
    n_sims = params.shape[0]
    n_maps = n_sims * 3 * m.n_slabs
    out_dir = Path(m.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mock-", dir=out_dir))
    try:
        arrays = {f: np.lib.format.open_memmap(tmp / paths[f].name, mode="w+", dtype=np.float32,
                                               shape=(n_maps, m.map_pixels, m.map_pixels)) for f in FIELDS}
        model = stars.SUITES[m.suite]
        log.info("mock %s %s: %d simulations, %d^3 particles, %d PM steps, upsample %d -> %d maps of %d^2",
                 m.suite, m.set, n_sims, m.particles, m.pm_steps, m.upsample, n_maps, m.map_pixels)
        t0 = time.time()
        for sim in tqdm(range(n_sims), desc=f"mock {m.suite} {m.set}", unit="sim", disable=not progress):
            maps = simulate.simulate(params[sim], m, model, simulate.sim_seed(m, sim))
            block = slice(sim * 3 * m.n_slabs, (sim + 1) * 3 * m.n_slabs)
            for f in FIELDS:
                arrays[f][block] = maps[f]
        for a in arrays.values():
            a.flush()
        del arrays
        camels.save_params(tmp / paths["params"].name, params)
        for p in paths.values():
            (tmp / p.name).replace(p)
        log.info("wrote %s in %.1f s", ", ".join(str(p) for p in paths.values()), time.time() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def preview(paths: dict[str, Path], png: str | Path, n_pairs: int = 3) -> None:
    """A figure of a few (stellar, dark-matter) map pairs in log10 surface density."""
    plt = figures.pyplot()

    mstar, mcdm = np.load(paths["Mstar"], mmap_mode="r"), np.load(paths["Mcdm"], mmap_mode="r")
    idx = np.linspace(0, mstar.shape[0] - 1, n_pairs).astype(int)
    fig, axes = plt.subplots(2, n_pairs, figsize=(3.2 * n_pairs, 6.4), squeeze=False)
    for j, i in enumerate(idx):
        a = axes[0, j].imshow(np.log10(mstar[i] + 1.0), cmap="magma")
        axes[0, j].set_title(f"map {i}: log10(1 + M*)", fontsize=9)
        fig.colorbar(a, ax=axes[0, j], fraction=0.046)
        b = axes[1, j].imshow(np.log10(mcdm[i]), cmap="viridis")
        axes[1, j].set_title(f"map {i}: log10 Mcdm", fontsize=9)
        fig.colorbar(b, ax=axes[1, j], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{paths['Mcdm'].name}  [{camels.MAP_UNITS}]", fontsize=10)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _main(argv) -> int:
    p = cli.parser("python -m hpc_vdm.mock", __doc__.splitlines()[0])
    p.add_argument("--out", help="output folder (mock.out_dir)")
    p.add_argument("--suite", help="IllustrisTNG, SIMBA or Astrid (mock.suite)")
    p.add_argument("--sim-set", help="LH, 1P or CV (mock.set)")
    p.add_argument("--n-sims", type=int, help="simulations (mock.n_sims)")
    p.add_argument("--particles", type=int, help="particles per side: 64 tests, 128 demos (mock.particles)")
    p.add_argument("--pm-steps", type=int, help="PM steps (mock.pm_steps)")
    p.add_argument("--upsample", type=int, help="sub-particles per side per particle (mock.upsample)")
    p.add_argument("--pixels", type=int, help="pixels per map side (mock.map_pixels)")
    p.add_argument("--seed", type=int, help="master seed (mock.seed)")
    p.add_argument("--preview", metavar="PNG", help="write a figure of a few map pairs")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = p.parse_args(argv)
    cli.setup_logging()
    cfg = cli.resolve(args, SHORTCUTS)
    paths = generate(cfg, overwrite=args.overwrite)
    if args.preview:
        preview(paths, args.preview)
        log.info("preview: %s", args.preview)
    return 0


def main(argv=None) -> int:
    return cli.run(_main, argv)
