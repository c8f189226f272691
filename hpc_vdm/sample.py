"""``python -m hpc_vdm.sample``: draws of held-out maps from an exported map model.

    python -m hpc_vdm.sample --model runs/x/export/model.pt --n-maps 4 --n-samples 16 --out runs/x/samples

For ``n_maps`` maps spread over the simulations of a held-out split: ``n_samples`` posterior samples of the
target map (one prediction for a deterministic model), their mean and standard deviation, and the pixelwise z-score of the truth in log space
(:mod:`hpc_vdm.evaluate.posterior`). Written to ``OUT/samples.zarr`` (arrays cond, truth, samples
(S, n, H, W), mean, std in physical units; zscore; attrs format hpc_vdm.samples/1, chunks, complete),
``OUT/summary.json`` (format hpc_vdm.sample_summary/1) (per map: P(k) error of the mean
and of the samples and r(k), of the overdensity up to k_Nyq; z-score mean and spread, 1σ coverage) and
``OUT/samples.png`` (the papers' Fig. 1, :func:`hpc_vdm.evaluate.report.fig1`). Noise is keyed by (seed,
map index, sample, step): the same seed gives the same numbers whatever the device batch, and sample 0 is what validation draws.
Existing outputs are replaced only with ``--overwrite`` and only if they are this command's own.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import zarr

from . import cli, dist
from .bundle import load_bundle
from .data.dataset import held_out_maps
from .data.store import CODECS, WRITE_ALL, record_chunks
from .evaluate import map_summary, zscore_log
from .evaluate.report import Labels, fig1
from .families import DrawSpec, for_bundle
from .inference.maps import draw_maps, open_for, read_pairs
from .io import (FIGURE, SAMPLES, SUMMARY, acquire_lock, atomic_dir, atomic_write_text, check_folder, check_output,
                 marker, writing)

log = logging.getLogger("hpc_vdm.sample")

SHORTCUTS = {"model": "trained.model", "store": "sample.store", "split": "sample.split", "n_maps": "sample.n_maps",
             "n_samples": "sample.n_samples", "steps": "sampler.steps", "sampler": "sampler.kind",
             "seed": "sample.seed", "out": "sample.out", "device": "trained.device", "which": "trained.which"}


def check_outputs(out: Path, inputs, overwrite: bool) -> None:
    """samples.zarr, summary.json and samples.png may be written: new, or with ``overwrite`` our own."""
    check_output(out / "samples.zarr", SAMPLES, inputs=inputs, overwrite=overwrite)
    check_output(out / "summary.json", SUMMARY, inputs=inputs, overwrite=overwrite)
    check_output(out / "samples.png", FIGURE, inputs=inputs, overwrite=overwrite)


def run(cfg, overwrite: bool = False) -> Path:
    s, m = cfg.sample, cfg.trained
    bundle = load_bundle(m.model, m.which)
    family = for_bundle(bundle)
    store_path = s.store or bundle.config.data.store
    root, attrs = open_for(bundle, store_path)
    out = Path(s.out)
    check_folder(out, "--out (sample.out)")
    check_outputs(out, [m.model, store_path], overwrite)
    maps = held_out_maps(attrs, s.split, s.n_maps)
    if len(maps) < s.n_maps:
        raise ValueError(f"sample.n_maps={s.n_maps}, but split {s.split!r} of {store_path!r} holds {len(maps)} "
                         f"maps; ask for at most {len(maps)}")
    n_samples = 1 if family.deterministic else s.n_samples
    if n_samples < 2:
        log.warning("%d draw per map: no spread, so no z-score and no coverage (they need 2 or more samples)",
                    n_samples)
    device = dist.pick_device(dist.detect(), m.device, "trained.device")
    cond_maps, truth, params = read_pairs(bundle, root, store_path, maps)                 # (n, H, W) x 2, (n, 6)
    log.info("drawing %d maps of split %r (%s) x %d, %d steps, on %s", len(maps), s.split, store_path,
             n_samples, cfg.sampler.steps, device)
    spec = DrawSpec.of(cfg.sampler, seed=s.seed, device=device, progress=s.progress)
    draws = draw_maps(bundle, cond_maps, maps, n_samples=n_samples, spec=spec, params=params,
                      shape=truth.shape[-2:])                                              # (S, n, H, W)
    mean, std = draws.mean(0), draws.std(0)
    zscore = np.stack([zscore_log(truth[k], draws[:, k]) for k in range(len(maps))])
    box = attrs["box_size_mpc_h"]
    summary = {"format": marker(SUMMARY), "model": str(Path(m.model).resolve()), "kind": bundle.kind,
               "store": str(store_path), "split": s.split, "maps": maps, "n_samples": n_samples,
               "steps": cfg.sampler.steps, "sampler": cfg.sampler.kind, "clip_log": cfg.sampler.clip_log,
               "seed": s.seed, "zscore_space": "log10",
               "per_map": [map_summary(truth[k], draws[:, k], box) for k in range(len(maps))]}
    arrays = [("cond", cond_maps), ("truth", truth), ("samples", draws), ("mean", mean), ("std", std),
              ("zscore", zscore)]
    arrays = [(name, a) for name, a in arrays if a is not None]
    labels = Labels(bundle.norm.condition, bundle.norm.target, family.deterministic)
    created = not out.exists()
    with writing(out), acquire_lock(out / "samples.zarr"):
        try:
            check_outputs(out, [m.model, store_path], overwrite)  # another writer finished meanwhile?
            write_outputs(out, arrays, maps, summary, overwrite, labels)
        except BaseException:
            if created:  # the folder this run made (holding its lock) has nothing else in it
                shutil.rmtree(out, ignore_errors=True)
            raise
    log.info("wrote %s, summary.json and samples.png in %s", "samples.zarr", out)
    return out


def write_outputs(out: Path, arrays, maps, summary: dict, overwrite: bool, labels: Labels) -> None:
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
    fig1(named.get("cond"), named["truth"], named["samples"], out / "samples.png", labels)


main = cli.command("python -m hpc_vdm.sample", __doc__.splitlines()[0], SHORTCUTS, run,
                   overwrite="samples.zarr, summary.json and samples.png in --out")


if __name__ == "__main__":
    raise SystemExit(main())
