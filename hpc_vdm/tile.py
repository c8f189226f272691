"""``python -m hpc_vdm.tile``: posterior dark-matter maps of a big volume, slab by slab, by fused periodic tiling.

    python -m hpc_vdm.tile --volume tng300 --model runs/x/export/model.pt --out out/tng300.zarr
    python -m hpc_vdm.tile --volume tng100 --input snapdir/ --axes 0,1,2 --n-samples 4 --out out/tng100.zarr
    srun python -m hpc_vdm.tile ...        # or mpiexec -n 4: ranks split the slabs (slurm/tile_tng300.sh)

The volume preset (configs/volumes/) fixes the box, the 5 Mpc/h slabs and the training pixel scale; the
conditioning slabs come from a 3D stellar-mass grid, TNG-style snapshot chunks or the embedded mock
(:mod:`hpc_vdm.slab_inputs`). Each slab is sampled whole on the torus by :func:`hpc_vdm.tiled.sample_tiled`;
the results go to a resumable Zarr store (:mod:`hpc_vdm.tile_store`) and a figure of one slab beside it.
Everything is checked before anything is written.
"""
from __future__ import annotations

import logging
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tiling import TileGrid

from . import cli, dist, figures, slab_inputs, tile_store
from .checkpoint import sha256_file
from .config import to_dict
from .data import camels, transforms
from .export import load_model
from .tiled import check_window, sample_tiled
from .volumes import Volume, check_model, load_volume

log = logging.getLogger("hpc_vdm.tile")

SHORTCUTS = {"volume": "tile.volume", "model": "tile.model", "input": "tile.input", "axes": "tile.axes",
             "slabs": "tile.slabs", "n_samples": "tile.n_samples", "steps": "tile.steps", "tile": "tile.tile",
             "halo": "tile.halo", "blend": "tile.blend", "batch_size": "tile.batch_size", "seed": "tile.seed",
             "out": "tile.out", "device": "tile.device", "which": "tile.which"}


def fingerprint(t, vol: Volume, pairs, kind: str, model_sha: str) -> dict:
    """Everything the stored numbers depend on (batch sizes, device and rank count do not)."""
    source = {"kind": kind, "input": t.input if kind == "mock" else str(Path(t.input).resolve())}
    if kind == "grid":
        source["key"] = t.input_key
    if kind == "mock":
        source |= {"slabs": t.mock_slabs, "spacing_mpc_h": t.mock_spacing_mpc_h, "pm_steps": t.mock_pm_steps,
                   "seed": t.mock_seed}
    return {"volume": vol.as_dict(), "slabs": [list(p) for p in pairs], "n_samples": t.n_samples,
            "steps": t.steps, "seed": t.seed, "tiling": {"tile": t.tile, "halo": t.halo, "blend": t.blend},
            "model": {"sha256": model_sha, "which": t.which}, "input": source}


def fiducial_params(vdm) -> torch.Tensor | None:
    """(1, n) normalised fiducial CAMELS parameters for a model that conditions on them."""
    if not getattr(vdm.score, "n_params", 0):
        return None
    fid = np.array([[camels.FIDUCIAL[n] for n in camels.PARAM_NAMES]])
    return torch.as_tensor(camels.normalise_params(fid), dtype=torch.float32)


def run(cfg) -> Path:
    t = cfg.tile
    # -- everything that can be wrong is checked before the store is touched ---------------------
    vol = load_volume(t.volume)
    pairs = vol.select(t.axes, t.slabs)
    TileGrid.make((vol.pixels, vol.pixels), t.tile, t.halo)  # halo < tile <= field
    model_path = Path(t.model)
    vdm, meta = load_model(model_path, t.which)
    check_model(vol, meta["store"])
    check_window(vdm, t.tile, t.halo)
    kind = slab_inputs.check_input(t, vol, pairs)
    out = Path(t.out)
    fp = fingerprint(t, vol, pairs, kind, sha256_file(model_path))
    resume = tile_store.check_existing(out, fp)

    env = dist.detect()
    device = dist.pick_device(env, t.device, "tile.device")
    if env.rank == 0 and not resume:
        out.parent.mkdir(parents=True, exist_ok=True)
        provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                      "host": platform.node(), "model": str(model_path.resolve()), "model_step": meta.get("step"),
                      "model_tag": meta.get("tag"), "torch": torch.__version__, "config": to_dict(cfg),
                      "units": {"cond": meta["config"]["data"]["condition"],
                                "samples": meta["config"]["data"]["target"]}}
        tile_store.create(out, pairs=pairs, pixels=vol.pixels, n_samples=t.n_samples, fingerprint=fp,
                          provenance=provenance)
    elif env.rank != 0:
        tile_store.wait_for(out)
    store = tile_store.TileStore(out)
    log.info("%s %s: %d slabs of %d^2 pixels x %d samples, %d steps, tile %d + halo %d (%s), rank %d/%d on %s",
             "resuming" if resume else "writing", out, len(pairs), vol.pixels, t.n_samples, t.steps, t.tile,
             t.halo, t.blend, env.rank, env.world, device)

    mine = [i for i in range(len(pairs)) if i % env.world == env.rank and not store.summary_done(i)]
    sample_slabs(cfg, vdm.to(device), meta, vol, store, mine, kind, device, env.rank == 0 and t.progress)

    if env.rank == 0:
        while not store.all_done():  # the other ranks' slabs
            time.sleep(1.0)
        store.mark_complete()
        png = out.with_suffix(".png")
        figure_slab(store, 0, png)
        log.info("complete: %s and %s", out, png)
    return out


def sample_slabs(cfg, vdm, meta, vol: Volume, store, mine: list[int], kind: str, device, progress: bool) -> None:
    """Conditioning then samples then summary of this rank's slabs, skipping what the store records as done."""
    t = cfg.tile
    data = meta["config"]["data"]
    stats = meta["store"]["stats"]
    pairs = store.pairs
    need = [i for i in mine if not store.cond_done(i)]
    if need:
        slabs = slab_inputs.read_slabs(t, vol, [pairs[i] for i in need], kind, progress=progress)
        for i in need:
            store.write_cond(i, slabs[pairs[i]])
    params = fiducial_params(vdm)
    left = {i: store.samples_left(i) for i in mine}
    bar = tqdm(total=sum(len(v) for v in left.values()), desc="tile", unit="sample", disable=not progress)
    for i in mine:
        t0 = time.time()
        cond = torch.from_numpy(transforms.normalise(store.read_cond(i), stats[data["condition"]]))[None]
        todo = left[i]
        for start in range(0, len(todo), t.samples_per_pass):
            group = todo[start:start + t.samples_per_pass]
            z = sample_tiled(vdm, cond, tile=t.tile, halo=t.halo, n_steps=t.steps, seed=t.seed,
                             slab=vol.slab_key(*pairs[i]), samples=group, blend=t.blend,
                             batch_size=t.batch_size, device=device, params=params)
            for j, x in zip(group, z.numpy()):
                store.write_sample(i, j, transforms.denormalise(x, stats[data["target"]]))
            bar.update(len(group))
        store.write_summary(i)
        log.info("slab axis %d #%d: %d samples in %.1f s", *pairs[i], len(todo), time.time() - t0)
    bar.close()


def figure_slab(store, i: int, png: Path) -> None:
    """Stellar map, one sample, posterior mean and std of slab ``i`` (log10 surface densities)."""
    plt = figures.pyplot()

    root = store.root
    axis, slab = store.pairs[i]
    panels = [("stellar (condition)", np.log10(root["cond"][i] + 1.0), "magma"),
              ("one sample", np.log10(root["samples"][0, i]), "viridis"),
              ("posterior mean", np.log10(root["mean"][i]), "viridis"),
              ("posterior std / mean", root["std"][i] / root["mean"][i], "cividis")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), constrained_layout=True)
    for ax, (title, img, cmap) in zip(axes, panels):
        figures.map_panel(fig, ax, img, title=title, cmap=cmap)
    fp = root.attrs["fingerprint"]
    fig.suptitle(f"{fp['volume']['name']}: axis {axis}, slab {slab} ({fp['volume']['box_mpc_h']:g} Mpc/h, "
                 f"{root['samples'].shape[0]} samples, tile {fp['tiling']['tile']} + halo {fp['tiling']['halo']}); "
                 f"log10 surface density [(Msun/h)/(Mpc/h)^2]")
    fig.savefig(png, dpi=90)
    plt.close(fig)


main = cli.command("python -m hpc_vdm.tile", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
