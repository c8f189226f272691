"""``python -m hpc_vdm.mock``: mock CAMELS CMD files (maps + params) from particle-mesh simulations.

    python -m hpc_vdm.mock --out data/cmd --suite IllustrisTNG --sim-set LH --n-sims 8 --particles 64
    python -m hpc_vdm.mock --config configs/demo.yaml --preview out/preview.png

Outputs (``mock.*`` flags): the CMD maps ``Maps_{Mstar,Mcdm}_{suite}_{set}`` and ``params``; the halo/galaxy
catalogues ``FOF_Subfind_{suite}_{set}_z=0.00/`` (on by default); with ``mock.nbody=true`` the N-body twins
``Maps_Mtot_Nbody_{suite}_{set}``; with ``mock.grids=[64,128]`` the 3D grids ``Grids_{field}_{suite}_{set}_{N}``.

Simulations are staged in a hidden folder beside the output, one at a time, and everything is moved
into place only when every simulation has finished: an interrupted run leaves no output file, and
running the same command again resumes from the last finished simulation and ends with the same files.
Existing outputs are kept unless ``--overwrite``. ``--workers N`` runs N simulations side by side.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import cli, figures
from ..config import RunConfig
from ..data import camels
from ..io import FIGURE, acquire_lock, check_output, check_recorded, save_figure, write_record, writing
from ..io.inputs import input_dir, need_disk, need_memory
from . import catalogue, fof, grids, kernels, simulate, stars, workers

log = logging.getLogger("hpc_vdm.mock")
FIELDS = ("Mstar", "Mcdm")
SHORTCUTS = {"out": "mock.out_dir", "suite": "mock.suite", "sim_set": "mock.set", "n_sims": "mock.n_sims",
             "particles": "mock.particles", "pm_steps": "mock.pm_steps", "upsample": "mock.upsample",
             "seed": "mock.seed", "pixels": "mock.map_pixels", "workers": "mock.workers"}
GRID_RANGE = (8, 2048)
MOVING = "moving"  # in a stage: every simulation is done and its outputs are being moved into place


def output_paths(cfg: RunConfig) -> dict[str, Path]:
    """Every output of ``cfg.mock``: maps ('Mstar', 'Mcdm', 'Mtot_Nbody'), 'params', grids
    ('grid_{field}_{N}'), and 'catalogues' (the folder of per-simulation HDF5 files)."""
    m = cfg.mock
    paths = {f: camels.maps_path(m.out_dir, f, m.suite, m.set) for f in FIELDS}
    if m.nbody:
        paths["Mtot_Nbody"] = camels.maps_path(m.out_dir, "Mtot_Nbody", m.suite, m.set)
    paths["params"] = camels.params_path(m.out_dir, m.suite, m.set)
    for n in m.grids:
        for f in grids.FIELDS:
            if f != "Mtot" or m.nbody:
                paths[f"grid_{f}_{n}"] = camels.grids_path(m.out_dir, f, m.suite, m.set, n)
    if m.catalogues:
        paths["catalogues"] = camels.catalogue_dir(m.out_dir, m.suite, m.set)
    return paths


# peak working memory of one simulation: the slopes of tracemalloc's peak between 32^3 and 48^3 particles (162
# B/particle, 95 B/sub-particle, 1640 B/map pixel, 28 B/grid voxel), rounded up for what it does not see
# (numba's and FFTW's own buffers); at 96^3 and 64^3 x 2^3 the estimate is 2.5x and 4x tracemalloc's peak
BYTES_PER_PARTICLE, BYTES_PER_SUBPARTICLE, BYTES_PER_PIXEL, BYTES_PER_VOXEL = 250, 150, 2500, 60


def sizes(cfg: RunConfig) -> tuple[float, float]:
    """(working memory of the simulations running at once, bytes of the output files) of ``cfg.mock``."""
    m = cfg.mock
    n_p = float(m.particles) ** 3
    one = (BYTES_PER_PARTICLE * n_p + BYTES_PER_SUBPARTICLE * n_p * m.upsample**3
           + BYTES_PER_PIXEL * float(m.map_pixels) ** 2 * (2 if m.nbody else 1)
           + BYTES_PER_VOXEL * sum(float(n) ** 3 for n in m.grids))
    n_sims = m.n_sims if m.set != "1P" else m.n_1p_values * (len(m.one_p_params) or 6)
    n_fields = len(FIELDS) + bool(m.nbody)
    disk = 4.0 * n_sims * (3 * m.n_slabs * float(m.map_pixels) ** 2 * n_fields
                           + sum(float(n) ** 3 for n in m.grids) * (len(grids.FIELDS) - (not m.nbody)))
    return one * min(m.workers, n_sims), disk


def check_sizes(cfg: RunConfig, force: bool = False) -> None:
    """A mock that cannot fit in this machine's memory, or whose files cannot fit on the disk, is refused."""
    m = cfg.mock
    memory, disk = sizes(cfg)
    what = (f"the mock (mock.particles={m.particles}, mock.upsample={m.upsample}, mock.map_pixels={m.map_pixels}, "
            f"mock.grids={m.grids}, {min(m.workers, max(m.n_sims, 1))} worker(s))")
    need_memory(memory, what, force=force, hint="lower mock.particles, mock.upsample, mock.map_pixels, mock.grids "
                                                "or mock.workers")
    need_disk(disk, m.out_dir, f"the output files of {what}", force=force)


def check(cfg: RunConfig, force: bool = False) -> None:
    """Reject values the config types cannot (grid sizes, an output that is not a folder, sizes that cannot
    fit) before anything is written."""
    m = cfg.mock
    out = Path(m.out_dir)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        input_dir(out, "mock.out_dir")  # a file, a loop or a dangling link, said so
    for n in m.grids:
        if not (isinstance(n, int) and GRID_RANGE[0] <= n <= GRID_RANGE[1]):
            raise ValueError(f"mock.grids: expected grid sizes in [{GRID_RANGE[0]}, {GRID_RANGE[1]}], got {n!r}")
    if len(set(m.grids)) != len(m.grids):
        raise ValueError(f"mock.grids: sizes must be distinct, got {m.grids}")
    unknown = [n for n in m.one_p_params if n not in camels.PARAM_NAMES]
    if unknown or len(set(m.one_p_params)) != len(m.one_p_params):
        raise ValueError(f"mock.one_p_params: expected distinct names among {list(camels.PARAM_NAMES)}, "
                         f"got {m.one_p_params}")
    if m.kernels == "numba":
        with kernels.use("numba"):  # raises a clear error when numba is missing
            pass
    check_sizes(cfg, force)


def _staging_dir(cfg: RunConfig) -> Path:
    """A folder named by everything that changes the output (not workers): a rerun resumes in it."""
    m = dataclasses.asdict(cfg.mock)
    for k in ("out_dir", "workers"):
        m.pop(k)
    digest = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cfg.mock.out_dir) / f".mock-partial-{digest}"


def _arrays(cfg: RunConfig, stage: Path, paths: dict, n_sims: int) -> dict[str, np.ndarray]:
    """The output arrays, memory-mapped in the staging folder (created, or reopened to resume)."""
    m = cfg.mock
    out = {}
    for key, p in paths.items():
        if key in ("params", "catalogues"):
            continue
        shape = ((n_sims * 3 * m.n_slabs, m.map_pixels, m.map_pixels) if not key.startswith("grid_")
                 else (n_sims, *(int(key.rsplit("_", 1)[1]),) * 3))
        f = stage / p.name
        out[key] = (np.lib.format.open_memmap(f, mode="r+") if f.exists()
                    else np.lib.format.open_memmap(f, mode="w+", dtype=np.float32, shape=shape))
        if out[key].shape != shape:
            raise ValueError(f"staged {f} has shape {out[key].shape}, expected {shape}; delete {stage}")
    return out


def _store(cfg, sim, result, arrays, stage, params) -> None:
    """Write one simulation's outputs into the staged arrays and catalogue, then mark it done."""
    m = cfg.mock
    block = slice(sim * 3 * m.n_slabs, (sim + 1) * 3 * m.n_slabs)
    for key, a in arrays.items():
        if key.startswith("grid_"):
            _, f, n = key.split("_")
            a[sim] = result["grids"][int(n)][f]
        else:
            a[block] = result[key]
        a.flush()
    if m.catalogues:
        catalogue.write(stage / "catalogues" / camels.catalogue_path("", m.suite, m.set, sim).name,
                        result["catalogue"], box_mpc_h=m.box_mpc_h, params=params[sim],
                        attrs={"suite": m.suite, "set": m.set, "sim": sim, "particles": m.particles,
                               "linking_b": fof.B_LINK})
    (stage / f"done_{sim:05d}").touch()


def _results(cfg: RunConfig, todo: list[int], params: np.ndarray):
    """Yield (sim, outputs) for the simulations ``todo``, in this process or in spawned workers."""
    m = cfg.mock
    yield from zip(todo, workers.run_all(simulate.simulate, [(params[sim], m, stars.SUITES[m.suite],
                                                              simulate.sim_seed(m, sim)) for sim in todo],
                                         workers=m.workers, kernel_backend=m.kernels))


def generate(cfg: RunConfig, *, overwrite: bool = False, progress: bool = True, force: bool = False) -> dict[str, Path]:
    """Run every simulation of ``cfg.mock`` and write the CMD files; returns their paths.

    Simulations are staged in ``out_dir/.mock-partial-<config digest>``: a killed run resumes there
    (per simulation) and ends with the same files; outputs move into place only when all are done, and a
    rerun of a run killed while moving them finishes the move (``moving`` marks that stage).
    """
    m = cfg.mock
    check(cfg, force)
    paths = output_paths(cfg)
    moving = _staging_dir(cfg) / MOVING
    if not moving.exists():
        check_recorded(paths, Path(m.out_dir), overwrite)
    Path(m.out_dir).mkdir(parents=True, exist_ok=True)
    with writing(paths["params"]), acquire_lock(paths["params"]):  # one writer per set of a folder
        if moving.exists():  # a run killed while moving its finished outputs into place: finish its move
            log.warning("finishing the move into place of the outputs staged in %s (its run was killed while "
                        "moving them)", moving.parent)
            pending = {k: p for k, p in paths.items() if _staged(moving.parent, k, p).exists()}
            check_recorded(pending, Path(m.out_dir), overwrite=True)  # what it has still to replace is still ours
            return _place(moving.parent, paths, Path(m.out_dir))
        check_recorded(paths, Path(m.out_dir), overwrite)  # another writer finished meanwhile?
        return _generate(cfg, paths, progress)


def _generate(cfg: RunConfig, paths: dict[str, Path], progress: bool) -> dict[str, Path]:
    m = cfg.mock
    params = simulate.parameter_table(m)
    n_sims = params.shape[0]
    stage = _staging_dir(cfg)
    created = not stage.exists()
    stage.mkdir(parents=True, exist_ok=True)
    for tmp in stage.glob("catalogues/.*.tmp*"):  # a catalogue a killed run was writing: its simulation reruns
        log.warning("removing %s, left by an interrupted run", tmp)
        tmp.unlink()
    try:
        arrays = _arrays(cfg, stage, paths, n_sims)
        todo = [s for s in range(n_sims) if not (stage / f"done_{s:05d}").exists()]
        log.info("mock %s %s: %d simulations (%d staged), %d^3 particles, %d PM steps, upsample %d, %d worker(s)",
                 m.suite, m.set, n_sims, n_sims - len(todo), m.particles, m.pm_steps, m.upsample, m.workers)
        t0 = time.time()
        bar = tqdm(total=n_sims, initial=n_sims - len(todo), desc=f"mock {m.suite} {m.set}", unit="sim",
                   disable=not progress)
        for sim, result in _results(cfg, todo, params):
            _store(cfg, sim, result, arrays, stage, params)
            bar.update()
        bar.close()
        del arrays
    except BaseException:
        if created and not list(stage.glob("done_*")):  # nothing finished to resume from: leave no trace
            shutil.rmtree(stage, ignore_errors=True)
        raise
    camels.save_params(stage / paths["params"].name, params)
    if m.catalogues:
        (stage / "catalogues").mkdir(exist_ok=True)
    (stage / MOVING).touch()  # from here on a rerun finishes this move instead of refusing what it placed
    _place(stage, paths, Path(m.out_dir))
    log.info("wrote %s in %.1f s", ", ".join(str(p) for p in paths.values()), time.time() - t0)
    return paths


def _staged(stage: Path, key: str, path: Path) -> Path:
    """Where output ``key`` (its final ``path``) waits in ``stage``."""
    return stage / ("catalogues" if key == "catalogues" else path.name)


def _place(stage: Path, paths: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Move every finished output still in ``stage`` into place (replacing the project's own older ones),
    record them, and remove the stage. Idempotent: a rerun after a kill anywhere in here ends the same."""
    for key, p in paths.items():
        src = _staged(stage, key, p)
        if not src.exists():  # moved before the kill
            continue
        if p.is_dir():
            shutil.rmtree(p)
        src.replace(p)
    write_record(paths, folder)
    for leftover in stage.iterdir():  # the marker goes last: a kill in here still leaves a stage to finish
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.name != MOVING:
            leftover.unlink()
    (stage / MOVING).unlink()
    stage.rmdir()
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
    save_figure(fig, png, dpi=110)
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
    p.add_argument("--workers", type=int, help="simulations run side by side (mock.workers)")
    p.add_argument("--preview", metavar="PNG", help="write a figure of a few map pairs")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--force", action="store_true", help="run even when the mock looks larger than this machine's "
                                                        "memory or disk")
    args = p.parse_args(argv)
    cli.setup_logging()
    cfg = cli.resolve(args, SHORTCUTS)
    if args.preview:
        check_output(args.preview, FIGURE, inputs=output_paths(cfg).values(), overwrite=args.overwrite)
    paths = generate(cfg, overwrite=args.overwrite, force=args.force)
    if args.preview:
        preview(paths, args.preview)
        log.info("preview: %s", args.preview)
    return 0


def main(argv=None) -> int:
    return cli.run(_main, argv)
