"""``python -m hpc_vdm.evaluate``: the report of an exported map model on held-out maps.

    python -m hpc_vdm.evaluate --model runs/x/export/model.pt --n-maps 8 --n-samples 10 --out runs/x/eval
    python -m hpc_vdm.evaluate --model M --set evaluate.one_p_store=data/maps_1p.zarr \\
        --set 'evaluate.suites={SIMBA: data/maps_simba.zarr}' --set evaluate.tile_store=out/tng100.zarr

Draws held-out maps chosen from every simulation of the split in turn through the model's family (posterior
samples of a diffusion model, one prediction of a deterministic one: its report says so and has no
calibration), and writes
``OUT/metrics.json`` (every number says its space: spectra of the overdensity and of the log field in k
bands up to k_Nyq; log-space z-scores beside their finite-sample expectation; rank-based coverage and
calibration per pixel and per map-level summary; χ²_r against a CV set) and ``OUT/report/`` (the papers'
Fig. 1 and Fig. 2, calibration curves, the 1P, cross-suite and tiled panels when asked, ``summary.md``).
An emulator (a family conditioned on parameters, no map) gets Mudur+23's checks instead: generated against
simulated fields at the split's parameter points, the CV set and the 1P set (:mod:`.emulation`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path


from .. import cli, dist
from ..bundle import load_bundle
from ..data.dataset import stratified_maps
from ..families import DrawSpec, for_bundle
from ..inference.maps import draw_maps, open_for, read_pairs
from ..data.store import store_attrs
from ..inference.volumes import check_scale
from ..io import FORMATS, METRICS, TILE, acquire_lock, atomic_dir, check_disjoint, marker, writing
from ..io.inputs import check_store_facts, finite_number
from ..spectra.scores import band_scores, mean_of
from . import analysis, baselines, emulation, panels, report

log = logging.getLogger("hpc_vdm.evaluate")

SHORTCUTS = {"model": "trained.model", "store": "evaluate.store", "split": "evaluate.split",
             "n_maps": "evaluate.n_maps", "n_samples": "evaluate.n_samples", "steps": "sampler.steps",
             "sampler": "sampler.kind", "seed": "evaluate.seed", "out": "evaluate.out", "device": "trained.device",
             "which": "trained.which"}


def run(cfg) -> Path:
    e, m = cfg.evaluate, cfg.trained
    bundle = load_bundle(m.model, m.which)
    family = for_bundle(bundle)
    store_path = e.store or bundle.config.data.store
    root, attrs = open_for(bundle, store_path)
    out = Path(e.out)
    check_inputs(cfg, bundle, store_path, out)
    if family.conditioned_on == "params":  # an emulator: generated against simulated fields (Mudur+23)
        spec = DrawSpec(sampler=cfg.sampler.kind, steps=cfg.sampler.steps, seed=e.seed, progress=e.progress,
                        device=dist.pick_device(dist.detect(), m.device, "trained.device"), desc="evaluate")
        return emulation.run(cfg, bundle, root, attrs, store_path, spec, out)
    maps = stratified_maps(attrs, e.split, e.n_maps, e.seed)
    if len(maps) < e.n_maps:
        raise ValueError(f"evaluate.n_maps={e.n_maps}, but split {e.split!r} of {store_path!r} holds {len(maps)} "
                         f"maps; ask for at most {len(maps)}")
    device = dist.pick_device(dist.detect(), m.device, "trained.device")
    spec = DrawSpec(sampler=cfg.sampler.kind, steps=cfg.sampler.steps, seed=e.seed, device=device,
                    progress=e.progress, desc="evaluate")
    cond, truth, params = read_pairs(bundle, root, store_path, maps)
    n_samples = 1 if family.deterministic else e.n_samples
    log.info("evaluating %s (%s) on %d maps of %s (%s) x %d draws%s", m.model, bundle.kind, len(maps), store_path,
             e.split, n_samples, "" if family.deterministic else f", {cfg.sampler.steps} steps")
    draws = draw_maps(bundle, cond, maps, n_samples=n_samples, spec=spec, params=params, shape=truth.shape[-2:])
    box = attrs["box_size_mpc_h"]
    cv = None
    if e.cv_store:
        cv_root, _ = open_for(bundle, e.cv_store, "CV store")
        cv = read_pairs(bundle, cv_root, e.cv_store, range(cv_root[bundle.norm.target].shape[0]))[1]
    posterior, ranks = analysis.analyse(truth, cond, draws, box, seed=e.seed, deterministic=family.deterministic,
                                        cv_truths=cv)
    posterior["baselines"] = baseline_rows(cfg, bundle, root, attrs, store_path, maps, cond, truth, params, spec)
    metrics = {"format": marker(METRICS),
               "model": {"path": str(Path(m.model).resolve()), "kind": bundle.kind, "step": bundle.step,
                         "tag": bundle.tag, "suite": bundle.store.get("suite")},
               "store": str(store_path), "split": e.split, "maps": maps, "steps": cfg.sampler.steps,
               "sampler": cfg.sampler.kind, "seed": e.seed, "n_sims": len({mp // attrs["maps_per_sim"] for mp in maps}),
               "spaces": {"spectra": "overdensity m/mean - 1 and log10 m - mean, bins k <= k_Nyq",
                          "zscore": f"log10 {bundle.norm.target}",
                          "calibration": "rank of the truth among the samples (exact)"},
               "posterior": posterior}
    labels = report.Labels(bundle.norm.condition, bundle.norm.target, family.deterministic)
    kw = dict(n_samples=n_samples, spec=spec)
    with writing(out), acquire_lock(out), atomic_dir(out) as tmp:
        figs = write_figures(tmp / "report", cond, truth, draws, box, ranks, labels)
        if e.one_p_store:
            metrics["one_p"] = panels.one_p(bundle, e.one_p_store, e.one_p_params, e.one_p_maps, kw,
                                            tmp / "report" / "one_p.png")
            figs.append("one_p.png")
        if e.suites:
            metrics["cross_suite"] = panels.suites(bundle, e.suites, e.suite_maps, e.seed, kw,
                                                   tmp / "report" / "suites.png")
            figs.append("suites.png")
        if e.tile_store:
            metrics["tiled"] = panels.tiled(e.tile_store, truth, draws, box, tmp / "report" / "tiled.png")
            figs.append("tiled.png")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
        report.markdown(metrics, figs, tmp / "report" / "summary.md")
    log.info("wrote %s/metrics.json and %s/report/", out, out)
    return out


def check_inputs(cfg, bundle, store_path: str, out: Path) -> None:
    """The output is new and apart from every input; every optional store opens, holds the model's fields at its
    pixel scale (a tile store: complete, at the model's pixel scale) — all before any draw."""
    e, m = cfg.evaluate, cfg.trained
    extra = [p for p in (e.one_p_store, e.cv_store, e.tile_store, *e.suites.values(), *e.baselines.values()) if p]
    check_disjoint(out, [m.model, store_path, *extra])
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{str(out)!r} exists; choose another --out (nothing was written)")
    for what, path in (("1P store", e.one_p_store), ("CV store", e.cv_store),
                       *((f"suite {k!r} store", v) for k, v in e.suites.items())):
        if path:
            open_for(bundle, path, f"{what} (evaluate)")
    if e.tile_store:
        check_tile_store(e.tile_store, bundle)
    for name, path in e.baselines.items():
        open_for(load_bundle(path, m.which), store_path, f"store of baseline {name!r}")


def check_tile_store(path: str, bundle) -> None:
    """A complete tile store (hpc_vdm.tile) whose pixels are the model's: the panel compares its P(k) with the
    whole maps' in the same k bins, and another scale would fill the top bands by extrapolation."""
    attrs = store_attrs(path, "tile store (evaluate.tile_store)", "python -m hpc_vdm.tile")
    if FORMATS.get(attrs.get("format")) != TILE:
        raise ValueError(f"evaluate.tile_store {path!r} is not a tile store (format {attrs.get('format')!r}, "
                         f"expected {marker(TILE)!r})")
    if attrs.get("complete") is not True:
        raise ValueError(f"tile store {path!r} is not complete; finish `python -m hpc_vdm.tile` first")
    vol = (attrs.get("fingerprint") or {}).get("volume") or {}
    check_store_facts(vol, f"the volume of tile store {path!r}")
    check_scale("pixel scale", "pixels", float(bundle.store["pixel_size_mpc_h"]),
                finite_number(vol.get("pixel_mpc_h"), "pixel_mpc_h", f"tile store {path!r}", positive=True),
                f"tile store {path!r}")


def baseline_rows(cfg, bundle, root, attrs, store_path, maps, cond, truth, params, spec) -> dict:
    """Band scores of the baselines on the same maps: the linear transfer function and ``evaluate.baselines``."""
    e, box, rows = cfg.evaluate, attrs["box_size_mpc_h"], {}
    if e.linear and cond is not None:
        transfer = baselines.fit_transfer(root, attrs, bundle.norm.condition, bundle.norm.target, store_path)
        rows["linear transfer"] = baselines.linear_scores(transfer, truth, cond, box)
    for name, path in e.baselines.items():
        other = load_bundle(path, cfg.trained.which)
        open_for(other, store_path, f"store of baseline {name!r}")
        if (other.norm.condition, other.norm.target) != (bundle.norm.condition, bundle.norm.target):
            raise ValueError(f"baseline {name!r} ({path!r}) maps {other.norm.condition} -> {other.norm.target}, the "
                             f"model {bundle.norm.condition} -> {bundle.norm.target}")
        d = draw_maps(other, cond, maps, n_samples=1, spec=spec, params=params, shape=truth.shape[-2:])
        rows[name] = mean_of([band_scores(truth[i], d[:, i], box) for i in range(len(maps))])
        log.info("baseline %s (%s) scored on the same %d maps", name, other.kind, len(maps))
    return rows


def write_figures(folder: Path, cond, truth, draws, box: float, ranks: dict, labels: report.Labels) -> list[str]:
    folder.mkdir(parents=True)
    report.fig1(cond, truth, draws, folder / "fig1.png", labels)
    report.fig2(truth, draws, analysis.curves(truth, cond, draws, box), folder / "fig2.png", labels)
    if not ranks:  # a deterministic model, or one draw: nothing to calibrate
        return ["fig1.png", "fig2.png"]
    names = {"pixel": "pixels", "map_mean_level": "map mean level"}
    report.calibration_figure({names.get(k, k.replace("pk_", "P(k) ")): v for k, v in ranks.items()},
                              draws.shape[0], folder / "calibration.png")
    return ["fig1.png", "fig2.png", "calibration.png"]


main = cli.command("python -m hpc_vdm.evaluate", __doc__.splitlines()[0], SHORTCUTS, run)
