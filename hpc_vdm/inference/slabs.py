"""2D slab sampling of a big volume: the fused tiled sampler over every selected slab, into the tile store.

:func:`plan` checks a ``tile`` config against the model and the input and returns what a run needs;
:func:`sample_slabs` draws this rank's slabs (conditioning, then samples, then the summary), skipping
what the store records as done; :func:`figure_slab` draws one slab.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tiling import TileGrid

from .. import figures
from ..diffusion import check_window, sample_tiled
from ..training.artifact import ModelBundle, load_bundle
from ..training.checkpoint import sha256_file
from .sources import FIELD, SlabSource, source_for
from .store import TileStore
from .volumes import Volume, check_model, load_volume

log = logging.getLogger("hpc_vdm.tile")


@dataclass
class Plan:
    """A checked tile run: volume, (axis, slab) pairs, model, input source and the store fingerprint."""

    volume: Volume
    pairs: list[tuple[int, int]]
    bundle: ModelBundle
    source: SlabSource
    fingerprint: dict


def plan(t) -> Plan:
    """Everything that can be wrong with a ``tile`` section, checked before the store is touched."""
    vol = load_volume(t.volume)
    source = source_for(t)
    # [] = every axis / slab the input has (the thin-slab mock: slab 0.. along axis 2)
    pairs = vol.select(t.axes or list(source.axes(vol)), t.slabs or source.slab_indices(vol))
    TileGrid.make((vol.pixels, vol.pixels), t.tile, t.halo)           # halo < tile <= field
    bundle = load_bundle(t.model, t.which).require("vdm", "python -m hpc_vdm.tile")
    if bundle.norm.condition != FIELD:
        raise ValueError(f"{t.model!r} is conditioned on {bundle.norm.condition!r}, but tile inputs give stellar "
                         f"mass ({FIELD!r}); use a model trained with data.condition={FIELD}")
    check_model(vol, bundle.store)
    check_window(bundle.module, t.tile, t.halo)
    source.check(vol, pairs)
    fp = {"volume": vol.as_dict(), "slabs": [list(p) for p in pairs], "n_samples": t.n_samples,
          "steps": t.steps, "seed": t.seed, "tiling": {"tile": t.tile, "halo": t.halo, "blend": t.blend},
          "model": {"sha256": sha256_file(Path(t.model)), "which": t.which}, "input": source.describe()}
    return Plan(vol, pairs, bundle, source, fp)


def sample_slabs(t, p: Plan, store: TileStore, mine: list[int], device, progress: bool) -> None:
    """Conditioning, samples and summary of this rank's slabs ``mine`` (rows of the store)."""
    vdm, norm = p.bundle.module.to(device), p.bundle.norm
    pairs = store.pairs
    need = [i for i in mine if not store.cond_done(i)]
    if need:
        slabs = p.source.read(p.volume, [pairs[i] for i in need], progress=progress)
        for i in need:
            store.write_cond(i, slabs[pairs[i]])
    params = p.bundle.params()  # the fiducial point for a parameter-conditioned model
    left = {i: store.samples_left(i) for i in mine}
    bar = tqdm(total=sum(len(v) for v in left.values()), desc="tile", unit="sample", disable=not progress)
    for i in mine:
        t0 = time.time()
        cond = torch.from_numpy(norm.condition_in(store.read_cond(i)))[None]     # (1, P, P)
        todo = left[i]
        for start in range(0, len(todo), t.samples_per_pass):
            group = todo[start:start + t.samples_per_pass]
            z = sample_tiled(vdm, cond, tile=t.tile, halo=t.halo, n_steps=t.steps, seed=t.seed,
                             slab=p.volume.slab_key(*pairs[i]), samples=group, blend=t.blend,
                             batch_size=t.batch_size, device=device, params=params)
            for j, x in zip(group, z.numpy()):
                store.write_sample(i, j, norm.target_out(x))
            bar.update(len(group))
        store.write_summary(i)
        log.info("slab axis %d #%d: %d samples in %.1f s", *pairs[i], len(todo), time.time() - t0)
    bar.close()


def figure_slab(store: TileStore, i: int, png: Path) -> None:
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
