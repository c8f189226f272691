"""``python -m hpc_vdm.sample``: posterior samples of held-out maps from an exported model.

    python -m hpc_vdm.sample --model runs/x/export/model.pt --n-maps 4 --n-samples 16 --out runs/x/samples

For ``n_maps`` maps spread over the simulations of a held-out split: ``n_samples`` posterior samples of the
dark-matter map, their mean and standard deviation, and the pixelwise z-score of the truth in log space
(:mod:`hpc_vdm.evaluate.posterior`). Written to ``OUT/samples.zarr`` (arrays cond, truth, samples
(S, n, H, W), mean, std in physical units; zscore), ``OUT/summary.json`` (per map: P(k) error of the mean
and of the samples and r(k), of the overdensity up to k_Nyq; z-score mean and spread, 1σ coverage) and
``OUT/samples.png`` (the papers' Fig. 1 layout). Noise is keyed by (seed, map index, sample, step): the
same seed gives the same numbers whatever the device batch, and sample 0 is what validation draws.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from . import cli, dist, figures
from .data.dataset import held_out_maps
from .data.store import open_store
from .diffusion import sample_tiled
from .evaluate import map_summary, zscore_log
from .inference.volumes import check_scale
from .io import atomic_dir, atomic_write_text
from .training.artifact import load_bundle

log = logging.getLogger("hpc_vdm.sample")

SHORTCUTS = {"model": "sample.model", "store": "sample.store", "split": "sample.split", "n_maps": "sample.n_maps",
             "n_samples": "sample.n_samples", "steps": "sample.steps", "seed": "sample.seed", "out": "sample.out",
             "device": "sample.device", "which": "sample.which"}


def run(cfg) -> Path:
    s = cfg.sample
    bundle = load_bundle(s.model, s.which).require("vdm", "python -m hpc_vdm.sample")
    d, norm = bundle.config.data, bundle.norm
    store_path = s.store or d.store
    root = open_store(store_path)
    attrs = dict(root.attrs)
    check_scale("pixel scale", "pixels", bundle.store["pixel_size_mpc_h"], attrs["pixel_size_mpc_h"],
                f"store {store_path!r}")
    out = Path(s.out)
    if (out / "samples.zarr").exists():
        raise FileExistsError(f"{str(out / 'samples.zarr')!r} exists; choose another --out (nothing was written)")
    maps = held_out_maps(attrs, s.split, s.n_maps)
    device = dist.pick_device(dist.detect(), s.device, "sample.device")
    vdm = bundle.module.to(device)
    cond_maps = root[d.condition].oindex[maps].astype(np.float64)  # (n, H, W)
    truth = root[d.target].oindex[maps].astype(np.float64)
    h = cond_maps.shape[-1]
    log.info("sampling %d maps of split %r (%s) x %d samples, %d steps, on %s", len(maps), s.split, store_path,
             s.n_samples, s.steps, device)

    draws = np.empty((s.n_samples, len(maps), h, h))
    for k, m in enumerate(tqdm(maps, desc="sample", unit="map", disable=not s.progress)):
        cond = torch.from_numpy(norm.condition_in(cond_maps[k]))[None]
        params = bundle.params(root["params"][int(root["sim"][m])]) if bundle.conditions_on_params else None
        z = sample_tiled(vdm, cond, tile=h, halo=0, n_steps=s.steps, seed=s.seed, slab=m,
                         samples=range(s.n_samples), batch_size=1, device=device, params=params)
        draws[:, k] = norm.target_out(z.numpy())
    mean, std = draws.mean(0), draws.std(0)
    zscore = np.stack([zscore_log(truth[k], draws[:, k]) for k in range(len(maps))])
    box = attrs["box_size_mpc_h"]
    summary = {"model": str(Path(s.model).resolve()), "store": str(store_path), "split": s.split, "maps": maps,
               "n_samples": s.n_samples, "steps": s.steps, "seed": s.seed, "zscore_space": "log10",
               "per_map": [map_summary(truth[k], draws[:, k], box) for k in range(len(maps))]}

    out.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out / "samples.zarr") as tmp:
        g = zarr.open_group(str(tmp), mode="w")
        for name, arr in [("cond", cond_maps), ("truth", truth), ("samples", draws), ("mean", mean), ("std", std),
                          ("zscore", zscore)]:
            g.create_array(name, data=arr.astype(np.float32), chunks=(1,) * (arr.ndim - 2) + (h, h))
        g.create_array("map_index", data=np.asarray(maps, dtype=np.int64))
        g.attrs.update({k: v for k, v in summary.items() if k != "per_map"} | {"units": "(Msun/h)/(Mpc/h)^2"})
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    figure(cond_maps, truth, draws, mean, std, zscore, out / "samples.png")
    log.info("wrote %s, summary.json and samples.png in %s", "samples.zarr", out)
    return out


def figure(cond, truth, draws, mean, std, zscore, png: Path, rows: int = 3) -> None:
    """The papers' Fig. 1: stellar map, true dark matter, a sample, posterior mean, std and z-score per row."""
    plt = figures.pyplot()

    n = min(rows, cond.shape[0])
    fig, axes = plt.subplots(n, 6, figsize=(19, 3.3 * n), squeeze=False, constrained_layout=True)
    for k in range(n):
        lo, hi = np.percentile(np.log10(truth[k]), [1, 99.5])
        panels = [("log10 M* (condition)", np.log10(cond[k] + 1.0), "magma", None),
                  ("log10 M_cdm truth", np.log10(truth[k]), "viridis", (lo, hi)),
                  ("log10 M_cdm sample", np.log10(draws[0, k]), "viridis", (lo, hi)),
                  ("log10 posterior mean", np.log10(mean[k]), "viridis", (lo, hi)),
                  ("posterior std / mean", std[k] / mean[k], "cividis", None),
                  ("z-score of log10 truth", zscore[k], "RdBu_r", (-3, 3))]
        for ax, (title, img, cmap, lim) in zip(axes[k], panels):
            figures.map_panel(fig, ax, img, title=title if k == 0 else None, cmap=cmap, vlim=lim)
    fig.savefig(png, dpi=80)
    plt.close(fig)


main = cli.command("python -m hpc_vdm.sample", __doc__.splitlines()[0], SHORTCUTS, run)


if __name__ == "__main__":
    raise SystemExit(main())
