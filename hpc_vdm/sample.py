"""``python -m hpc_vdm.sample``: posterior samples of held-out maps from an exported model.

    python -m hpc_vdm.sample --model runs/x/export/model.pt --n-maps 4 --n-samples 16 --out runs/x/samples

For ``n_maps`` maps spread over the simulations of a held-out split: ``n_samples`` posterior samples of the
dark-matter map, their mean and standard deviation, and the pixelwise z-score of the truth in log space
(:mod:`hpc_vdm.evaluate.posterior`). Written to ``OUT/samples.zarr`` (arrays cond, truth, samples
(S, n, H, W), mean, std in physical units; zscore; attrs format hpc_vdm.samples/1, chunks, complete),
``OUT/summary.json`` (format hpc_vdm.sample_summary/1) (per map: P(k) error of the mean
and of the samples and r(k), of the overdensity up to k_Nyq; z-score mean and spread, 1σ coverage) and
``OUT/samples.png`` (the papers' Fig. 1 layout). Noise is keyed by (seed, map index, sample, step): the
same seed gives the same numbers whatever the device batch, and sample 0 is what validation draws.
Existing outputs are replaced only with ``--overwrite`` and only if they are this command's own.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import zarr

from . import cli, dist, figures
from .data.dataset import held_out_maps
from .data.store import CODECS, WRITE_ALL, record_chunks
from .evaluate import map_summary, zscore_log
from .inference.maps import draw_maps, open_for, read_pairs
from .io import (FIGURE, SAMPLES, SUMMARY, acquire_lock, atomic_dir, atomic_write_text, check_output, marker,
                 save_figure, writing)
from .training.artifact import load_bundle

log = logging.getLogger("hpc_vdm.sample")

SHORTCUTS = {"model": "sample.model", "store": "sample.store", "split": "sample.split", "n_maps": "sample.n_maps",
             "n_samples": "sample.n_samples", "steps": "sample.steps", "seed": "sample.seed", "out": "sample.out",
             "device": "sample.device", "which": "sample.which"}


def check_outputs(out: Path, inputs, overwrite: bool) -> None:
    """samples.zarr, summary.json and samples.png may be written: new, or with ``overwrite`` our own."""
    check_output(out / "samples.zarr", SAMPLES, inputs=inputs, overwrite=overwrite)
    check_output(out / "summary.json", SUMMARY, inputs=inputs, overwrite=overwrite)
    check_output(out / "samples.png", FIGURE, inputs=inputs, overwrite=overwrite)


def run(cfg, overwrite: bool = False) -> Path:
    s = cfg.sample
    bundle = load_bundle(s.model, s.which).require("vdm", "python -m hpc_vdm.sample")
    d = bundle.config.data
    store_path = s.store or d.store
    root, attrs = open_for(bundle, store_path)
    out = Path(s.out)
    check_outputs(out, [s.model, store_path], overwrite)
    maps = held_out_maps(attrs, s.split, s.n_maps)
    device = dist.pick_device(dist.detect(), s.device, "sample.device")
    cond_maps, truth, params = read_pairs(bundle, root, store_path, maps)                 # (n, H, W) x 2, (n, 6)
    log.info("sampling %d maps of split %r (%s) x %d samples, %d steps, on %s", len(maps), s.split, store_path,
             s.n_samples, s.steps, device)
    draws = draw_maps(bundle, cond_maps, maps, n_samples=s.n_samples, steps=s.steps, seed=s.seed, device=device,
                      params=params, progress=s.progress)                                  # (S, n, H, W)
    mean, std = draws.mean(0), draws.std(0)
    zscore = np.stack([zscore_log(truth[k], draws[:, k]) for k in range(len(maps))])
    box = attrs["box_size_mpc_h"]
    summary = {"format": marker(SUMMARY), "model": str(Path(s.model).resolve()), "store": str(store_path),
               "split": s.split, "maps": maps, "n_samples": s.n_samples, "steps": s.steps, "seed": s.seed,
               "zscore_space": "log10",
               "per_map": [map_summary(truth[k], draws[:, k], box) for k in range(len(maps))]}
    arrays = [("cond", cond_maps), ("truth", truth), ("samples", draws), ("mean", mean), ("std", std),
              ("zscore", zscore)]
    created = not out.exists()
    with writing(out), acquire_lock(out / "samples.zarr"):
        try:
            check_outputs(out, [s.model, store_path], overwrite)  # another writer finished meanwhile?
            write_outputs(out, arrays, maps, summary, overwrite)
        except BaseException:
            if created:  # the folder this run made (holding its lock) has nothing else in it
                shutil.rmtree(out, ignore_errors=True)
            raise
    log.info("wrote %s, summary.json and samples.png in %s", "samples.zarr", out)
    return out


def write_outputs(out: Path, arrays, maps, summary: dict, overwrite: bool) -> None:
    """samples.zarr (every chunk recorded, CRC-32C), then summary.json and the figure."""
    h = arrays[0][1].shape[-1]
    with atomic_dir(out / "samples.zarr", replace=overwrite) as tmp:
        g = zarr.open_group(str(tmp), mode="w")
        for name, arr in arrays:
            dims = ("sample", "map", "y", "x")[4 - arr.ndim:]
            g.create_array(name, data=arr.astype(np.float32), chunks=(1,) * (arr.ndim - 2) + (h, h),
                           compressors=CODECS, config=WRITE_ALL, dimension_names=dims)
        g.create_array("map_index", data=np.asarray(maps, dtype=np.int64), compressors=CODECS, config=WRITE_ALL)
        g.attrs.update({k: v for k, v in summary.items() if k not in ("per_map", "format")}
                       | {"units": "(Msun/h)/(Mpc/h)^2", "format": marker(SAMPLES),
                          "chunks": record_chunks(tmp, [name for name, _ in arrays] + ["map_index"])})
        g.attrs["complete"] = True
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    named = dict(arrays)
    figure(named["cond"], named["truth"], named["samples"], named["mean"], named["std"], named["zscore"],
           out / "samples.png")


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
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    def body(argv) -> int:
        p = cli.parser("python -m hpc_vdm.sample", __doc__.splitlines()[0])
        cli.add_shortcuts(p, SHORTCUTS)
        p.add_argument("--overwrite", action="store_true",
                       help="replace this command's own samples.zarr, summary.json and samples.png in --out")
        args = p.parse_args(argv)
        cli.setup_logging()
        run(cli.resolve(args, SHORTCUTS), overwrite=args.overwrite)
        return 0

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
