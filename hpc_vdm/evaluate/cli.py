"""``python -m hpc_vdm.evaluate``: the report of an exported VDM on held-out maps.

    python -m hpc_vdm.evaluate --model runs/x/export/model.pt --n-maps 8 --n-samples 10 --out runs/x/eval
    python -m hpc_vdm.evaluate --model M --set evaluate.one_p_store=data/maps_1p.zarr \\
        --set 'evaluate.suites={SIMBA: data/maps_simba.zarr}' --set evaluate.tile_store=out/tng100.zarr

Draws posterior samples of held-out maps chosen from every simulation of the split in turn, and writes
``OUT/metrics.json`` (every number says its space: spectra of the overdensity and of the log field in k
bands up to k_Nyq; log-space z-scores beside their finite-sample expectation; rank-based coverage and
calibration per pixel and per map-level summary; χ²_r against a CV set) and ``OUT/report/`` (the papers'
Fig. 1 and Fig. 2, calibration curves, the 1P, cross-suite and tiled panels when asked, ``summary.md``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .. import cli, dist
from ..data.dataset import stratified_maps
from ..inference.maps import draw_maps, open_for, read_pairs
from ..io import acquire_lock, atomic_dir, writing
from ..training.artifact import load_bundle
from . import analysis, calibration, panels, report

log = logging.getLogger("hpc_vdm.evaluate")

SHORTCUTS = {"model": "evaluate.model", "store": "evaluate.store", "split": "evaluate.split",
             "n_maps": "evaluate.n_maps", "n_samples": "evaluate.n_samples", "steps": "evaluate.steps",
             "seed": "evaluate.seed", "out": "evaluate.out", "device": "evaluate.device"}


def run(cfg) -> Path:
    e = cfg.evaluate
    bundle = load_bundle(e.model, e.which).require("vdm", "python -m hpc_vdm.evaluate")
    store_path = e.store or bundle.config.data.store
    root, attrs = open_for(bundle, store_path)
    out = Path(e.out)
    if out.exists():
        raise FileExistsError(f"{str(out)!r} exists; choose another --out (nothing was written)")
    for path in (e.one_p_store, e.cv_store, e.tile_store, *e.suites.values()):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"evaluate input {path!r} does not exist")
    maps = stratified_maps(attrs, e.split, e.n_maps, e.seed)
    device = dist.pick_device(dist.detect(), e.device, "evaluate.device")
    kw = dict(n_samples=e.n_samples, steps=e.steps, seed=e.seed, device=device, progress=e.progress)
    cond, truth, params = read_pairs(bundle, root, store_path, maps)
    log.info("evaluating %s on %d maps of %s (%s) x %d samples, %d steps", e.model, len(maps), store_path, e.split,
             e.n_samples, e.steps)
    draws = draw_maps(bundle, cond, maps, params=params, desc="evaluate", **kw)
    box = attrs["box_size_mpc_h"]
    cv = None
    if e.cv_store:
        cv_root, cv_attrs = open_for(bundle, e.cv_store, "CV store")
        cv = read_pairs(bundle, cv_root, e.cv_store, range(cv_root[bundle.norm.target].shape[0]))[1]
    metrics = {"model": {"path": str(Path(e.model).resolve()), "step": bundle.step, "tag": bundle.tag,
                         "suite": bundle.store.get("suite")},
               "store": str(store_path), "split": e.split, "maps": maps, "steps": e.steps, "seed": e.seed,
               "n_sims": len({m // attrs["maps_per_sim"] for m in maps}),
               "spaces": {"spectra": "overdensity m/mean - 1 and log10 m - mean, bins k <= k_Nyq",
                          "zscore": "log10 M_cdm", "calibration": "rank of the truth among the samples (exact)"},
               "posterior": analysis.analyse(truth, cond, draws, box, seed=e.seed, cv_truths=cv)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing(out), acquire_lock(out), atomic_dir(out) as tmp:
        figs = write_figures(tmp / "report", cond, truth, draws, box, e.seed)
        if e.one_p_store:
            metrics["one_p"] = panels.one_p(bundle, e.one_p_store, e.one_p_params, e.one_p_maps, kw,
                                            tmp / "report" / "one_p.png")
            figs.append("one_p.png")
        if e.suites:
            metrics["cross_suite"] = panels.suites(bundle, e.suites, e.suite_maps, kw, tmp / "report" / "suites.png")
            figs.append("suites.png")
        if e.tile_store:
            metrics["tiled"] = panels.tiled(e.tile_store, truth, draws, box, tmp / "report" / "tiled.png")
            figs.append("tiled.png")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
        report.markdown(metrics, figs, tmp / "report" / "summary.md")
    log.info("wrote %s/metrics.json and %s/report/", out, out)
    return out


def write_figures(folder: Path, cond, truth, draws, box: float, seed: int) -> list[str]:
    folder.mkdir(parents=True)
    report.fig1(cond, truth, draws, folder / "fig1.png")
    report.fig2(truth, draws, analysis.curves(truth, cond, draws, box), folder / "fig2.png")
    log_t, log_d = np.log10(truth), np.log10(draws)
    level_t, level_d = log_t.mean(axis=(-2, -1)), log_d.mean(axis=(-2, -1))
    ranks = {"pixels": calibration.ranks(log_t, log_d, seed)[0], "map mean level": calibration.ranks(
        level_t, level_d, seed)[0]}
    bp_t, bp_d = analysis.band_powers(truth, box), analysis.band_powers(draws, box)
    for j, b in enumerate(analysis.BANDS):
        ranks[f"P(k) {b}"] = calibration.ranks(bp_t[:, j], bp_d[:, :, j], seed)[0]
    report.calibration_figure(ranks, draws.shape[0], folder / "calibration.png")
    return ["fig1.png", "fig2.png", "calibration.png"]


main = cli.command("python -m hpc_vdm.evaluate", __doc__.splitlines()[0], SHORTCUTS, run)
