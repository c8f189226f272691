"""2D slabs of a big volume through a trained map model: the ``tile`` front of :func:`hpc_vdm.inference.apply.apply`.

:func:`plan` checks a run (volume, input, model, tiling) before anything is written; :func:`job` says what a
unit is (one slab: its condition, then its draws in passes, then their mean and std) for the one apply
routine; :func:`figure_slab` draws one slab. The model is any map family whose condition is stellar mass:
a diffusion model draws posterior samples with the fused tiled sampler, a deterministic one one draw, both
through the family's ``predict`` with noise keyed by (seed, slab, sample, step).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tiling import TileGrid

from .. import figures
from ..bundle import ModelBundle, load_bundle
from ..config import to_dict
from ..diffusion import check_window
from ..families import DrawSpec, Family, MapsFamily, for_bundle
from ..io import TILE, save_figure, sha256_file
from ..models import freeze, locality
from .apply import Job
from .sources import FIELD, SlabSource, source_for
from .store import TileRows, all_done, layout, tile_store
from .volumes import Volume, check_model, load_volume

log = logging.getLogger("hpc_vdm.tile")


@dataclass
class Plan:
    """A checked tile run: volume, (axis, slab) pairs, model and its family, input source, draws, fingerprint."""

    volume: Volume
    pairs: list[tuple[int, int]]
    bundle: ModelBundle
    family: Family
    source: SlabSource
    n_samples: int
    fingerprint: dict


def plan(cfg) -> Plan:
    """Everything that can be wrong with a ``tile`` run, checked before the store is touched."""
    t, m = cfg.tile, cfg.trained
    vol = load_volume(t.volume)
    source = source_for(t)
    # [] = every axis / slab the input has (the thin-slab mock: slab 0.. along axis 2)
    pairs = vol.select(t.axes or list(source.axes(vol)), t.slabs or source.slab_indices(vol))
    TileGrid.make((vol.pixels, vol.pixels), t.tile, t.halo)           # halo < tile <= field
    bundle = load_bundle(m.model, m.which)
    family = for_bundle(bundle)
    if not isinstance(family, MapsFamily):
        raise ValueError(f"python -m hpc_vdm.tile applies map models, but {m.model!r} is a {bundle.kind} model "
                         f"(use python -m hpc_vdm.paint for 3D volumes)")
    if bundle.norm.condition != FIELD:
        raise ValueError(f"{m.model!r} is conditioned on {bundle.norm.condition or 'no map'!r}, but tile inputs give "
                         f"stellar mass ({FIELD!r}); use a model trained with data.condition={FIELD}")
    check_model(vol, bundle.store)
    check_window(bundle.module, t.tile, t.halo)
    if t.tile < vol.pixels:  # windows smaller than the slab: the network must be local within the halo
        bundle = local_bundle(bundle, family, t)
    source.check(vol, pairs)
    n_samples = 1 if family.deterministic else t.n_samples
    fp = {"volume": vol.as_dict(), "slabs": [list(p) for p in pairs], "n_samples": n_samples,
          "steps": cfg.sampler.steps, "seed": t.seed, "tiling": {"tile": t.tile, "halo": t.halo, "blend": t.blend},
          "model": {"sha256": sha256_file(Path(m.model)), "which": m.which}, "input": source.describe()}
    if cfg.sampler.kind != "ancestral":
        fp["sampler"] = cfg.sampler.kind
    if cfg.sampler.clip_log is not None:  # absent when off, so stores written before the option still resume
        fp["clip_log"] = list(cfg.sampler.clip_log)
    return Plan(vol, pairs, bundle, family, source, n_samples, fp)


def local_bundle(bundle: ModelBundle, family: Family, t) -> ModelBundle:
    """The bundle to tile with: its network as is when it is local within the halo on the stride grid; a
    GroupNorm network with the statistics frozen at export (per γ, from training maps); else refused naming
    why and what to use, unless ``tile.force``."""
    net = family.compiled(bundle.module)
    loc = bundle.locality or locality(net)                          # exports before locality was recorded
    if not loc["tile_safe"] and bundle.frozen_norm is not None and loc["attention"] != "global":
        module = copy.deepcopy(bundle.module)
        frozen = freeze(family.compiled(module), bundle.frozen_norm)
        if hasattr(module, "score"):
            module.score = frozen
        else:
            module = frozen
        log.info("GroupNorm statistics frozen from the export (per γ, training maps): the network is local")
        bundle, loc = dataclasses.replace(bundle, module=module), locality(frozen)
    stride, radius = loc["stride"], loc.get("receptive_radius")
    why = list(loc["not_local"])
    if radius is not None and t.halo < radius:
        why.append(f"tile.halo={t.halo} is below the network's receptive radius {radius} px: use --halo "
                   f"{-(-radius // stride) * stride} or more")
    if t.tile % stride or t.halo % stride:
        why.append(f"tile {t.tile} and halo {t.halo} must be multiples of the network's stride {stride} so that "
                   f"every window lies on its stride grid")
    if why and not t.force:
        raise ValueError(f"{str(bundle.path)!r} cannot be tiled exactly: " + "; ".join(why) + ". Tiles would "
                         f"show in the slab; fix that, or pass --set tile.force=true to tile it anyway")
    if why:
        log.warning("tiling anyway (tile.force): %s", "; ".join(why))
    return bundle


def job(cfg, p: Plan, device) -> Job:
    """The tile run as a :class:`~hpc_vdm.inference.apply.Job` over slab rows."""
    t, m = cfg.tile, cfg.trained
    d = p.bundle.config.data
    provenance = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                  "host": platform.node(), "model": str(Path(m.model).resolve()), "model_step": p.bundle.step,
                  "model_tag": p.bundle.tag, "model_kind": p.bundle.kind, "torch": torch.__version__,
                  "config": to_dict(cfg), "units": {"cond": d.condition, "samples": d.target}}
    store = tile_store(t.out)
    spec = DrawSpec.of(cfg.sampler, seed=t.seed, tile=t.tile, halo=t.halo, blend=t.blend, batch_size=t.batch_size,
                       device=device)

    def work(root, rows: list[int], progress: bool) -> None:
        sample_slabs(p, TileRows(store, root), rows, spec, t.samples_per_pass, progress)

    return Job(store=store, kind=TILE, fingerprint=p.fingerprint,
               layout=layout(p.pairs, p.volume.pixels, p.n_samples), attrs={"provenance": provenance, "units": "(Msun/h)/(Mpc/h)^2"},
               units=list(range(len(p.pairs))), pending=lambda root, i: not root["summary_done"][i],
               work=work, finished=all_done, figure=lambda root, png: figure_slab(root, 0, png),
               inputs=(m.model,) + ((t.input,) if Path(t.input).exists() else ()))  # "mock" names no file


def sample_slabs(p: Plan, rows: TileRows, mine: list[int], spec: DrawSpec, per_pass: int, progress: bool) -> None:
    """Condition, draws and summary of this rank's slab rows ``mine``."""
    pairs = rows.pairs
    need = [i for i in mine if not rows.cond_done(i)]
    if need:
        slabs = p.source.read(p.volume, [pairs[i] for i in need], progress=progress)
        for i in need:
            rows.write_cond(i, slabs[pairs[i]])
    left = {i: rows.samples_left(i) for i in mine}
    bar = tqdm(total=sum(len(v) for v in left.values()), desc="tile", unit="sample", disable=not progress)
    for i in mine:
        t0 = time.time()
        cond = rows.read_cond(i)[None]                                                 # (1, P, P) physical
        todo = left[i]
        for start in range(0, len(todo), per_pass):
            group = todo[start:start + per_pass]
            draws = p.family.predict(p.bundle, cond, keys=[p.volume.slab_key(*pairs[i])], samples=group, spec=spec)
            for j, x in zip(group, draws[:, 0]):                                      # (S, 1, P, P)
                rows.write_sample(i, j, x)
            bar.update(len(group))
        rows.write_summary(i)
        log.info("slab axis %d #%d: %d draws in %.1f s", *pairs[i], len(todo), time.time() - t0)
    bar.close()


def figure_slab(root, i: int, png: Path) -> None:
    """Stellar map, one draw, mean and std of slab ``i`` (log10 surface densities)."""
    plt = figures.pyplot()
    axis, slab = (int(v) for v in root["slabs"][i])
    with np.errstate(divide="ignore", invalid="ignore"):   # empty pixels (a stellar target) -> ±inf/NaN, masked
        panels = [("stellar (condition)", np.log10(root["cond"][i] + 1.0), "magma"),
                  ("one draw", np.log10(root["samples"][0, i]), "viridis"),
                  ("mean of the draws", np.log10(root["mean"][i]), "viridis"),
                  ("std / mean of the draws", root["std"][i] / root["mean"][i], "cividis")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), constrained_layout=True)
    for ax, (title, img, cmap) in zip(axes, panels):
        figures.map_panel(fig, ax, img, title=title, cmap=cmap)
    fp = root.attrs["fingerprint"]
    fig.suptitle(f"{fp['volume']['name']}: axis {axis}, slab {slab} ({fp['volume']['box_mpc_h']:g} Mpc/h, "
                 f"{root['samples'].shape[0]} draws, tile {fp['tiling']['tile']} + halo {fp['tiling']['halo']}); "
                 f"log10 surface density [(Msun/h)/(Mpc/h)^2]")
    save_figure(fig, png, dpi=90)
    plt.close(fig)
