"""``python -m hpc_vdm.evaluate``: the report of an exported map model on held-out maps.

    python -m hpc_vdm.evaluate --model runs/x/export/model.pt --n-maps 8 --n-samples 10 --out runs/x/eval
    python -m hpc_vdm.evaluate --model M --set evaluate.one_p_store=data/maps_1p.zarr \\
        --set 'evaluate.suites={SIMBA: data/maps_simba.zarr}' --set evaluate.tile_store=out/tng100.zarr

Draws held-out maps chosen from every simulation of the split in turn through the model's family (posterior
samples of a diffusion model, one prediction of a deterministic one: its report says so and has no
calibration), and writes
``OUT/metrics.json`` (every number says its space: spectra of the overdensity and of the log field in k
bands up to k_Nyq; log-space z-scores beside their finite-sample expectation; rank-based coverage and
calibration per pixel and per map-level summary; χ²_r against a CV set; per band the row with the highest r(k),
its lead over the best other estimator and the standard errors of leads and coverages over the simulations,
:mod:`.significance`) and ``OUT/report/`` (the papers' Fig. 1 and Fig. 2, calibration curves, the 1P,
cross-suite and tiled panels when asked, ``summary.md``).

With other models (``evaluate.baselines``) or the 2D HOD (``evaluate.hod``) it also compares every row on
the same maps, one scoring path for all (:mod:`hpc_vdm.evaluate.compare`): MSE in log space, P(k), transfer
ratio, cross power and r(k) with 25–75% bands, P(k) error per k band in h/Mpc, pixel PDF, cost (training and
drawing seconds) and the families' diagnostics (a two-phase CNN's classifier scores): metrics.json's
``comparison``, ``report/comparison_maps.png`` and ``comparison_spectra.png`` (Sether+24's Fig. 2 and 3) and
a table in ``summary.md``.

An emulator (a family conditioned on parameters, no map) gets Mudur+23's checks instead: generated against
simulated fields at the split's parameter points, the CV set and the 1P set (:mod:`.emulation`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path


from .. import cli, dist
from ..bundle import load_bundle
from ..data.dataset import held_out_maps, stratified_maps
from ..data.store import read_maps, store_attrs
from ..families import DrawSpec, for_bundle
from ..inference.maps import open_for, read_pairs
from ..inference.volumes import check_scale
from ..io import FORMATS, METRICS, TILE, acquire_lock, atomic_dir, check_disjoint, marker, writing
from ..io.inputs import check_store_facts, finite_number
from ..spectra.scores import band_scores, k_nyquist, mean_of
from . import analysis, baselines, compare, compare_report, emulation, panels, report, rows, significance

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
    others = check_inputs(cfg, bundle, store_path, out)                       # all checked before any draw
    if family.conditioned_on == "params":  # an emulator: generated against simulated fields (Mudur+23)
        spec = DrawSpec.of(cfg.sampler, seed=e.seed, progress=e.progress,
                           device=dist.pick_device(dist.detect(), m.device, "trained.device"), desc="evaluate")
        return emulation.run(cfg, bundle, root, attrs, store_path, spec, out)
    maps = stratified_maps(attrs, e.split, e.n_maps, e.seed)
    if len(maps) < e.n_maps:
        raise ValueError(f"evaluate.n_maps={e.n_maps}, but split {e.split!r} of {store_path!r} holds {len(maps)} "
                         f"maps; ask for at most {len(maps)}")
    hod_plan = rows.plan_hod(cfg, root, attrs, maps) if e.hod else None
    device = dist.pick_device(dist.detect(), m.device, "trained.device")
    spec = DrawSpec.of(cfg.sampler, seed=e.seed, device=device, progress=e.progress, desc="evaluate")
    cond, truth, params = read_pairs(bundle, root, store_path, maps)
    n_samples, offset = 1 if family.deterministic else e.n_samples, bundle.norm.target_offset
    log.info("evaluating %s (%s) on %d maps of %s (%s) x %d draws%s", m.model, bundle.kind, len(maps), store_path,
             e.split, n_samples, "" if family.deterministic else f", {cfg.sampler.steps} steps")
    main_row = rows.model_row(bundle.kind, bundle, cond, maps, truth, params, spec, n_samples, device)
    draws, box = main_row.draws, attrs["box_size_mpc_h"]
    cv, tile_ref = None, (cond, truth, f"held-out {e.split}")
    if e.cv_store:  # the CV set: the fiducial cosmology, as a mock slab's (and close to TNG's)
        cv_root, _ = open_for(bundle, e.cv_store, "CV store")
        cv_cond, cv, _ = read_pairs(bundle, cv_root, e.cv_store, range(cv_root[bundle.norm.target].shape[0]))
        tile_ref = (cv_cond, cv, "CV")
    sims = [mp // attrs["maps_per_sim"] for mp in maps]
    posterior, ranks = analysis.analyse(truth, cond, draws, box, seed=e.seed, deterministic=family.deterministic,
                                        cv_truths=cv, log_offset=offset, groups=sims)
    extra = [rows.model_row(name, b, cond, maps, truth, params, spec, 1, device) for name, b in others.items()]
    if hod_plan is not None:
        extra.append(rows.hod_row(cfg, hod_plan, root, attrs, store_path, bundle.norm.target, maps))
    posterior["baselines"] = baseline_scores(cfg, bundle, root, attrs, store_path, cond, truth, extra, offset)
    draw = "prediction" if family.deterministic else "sample"
    posterior["r_leads"] = significance.band_leads(report.score_rows(posterior, draw), sims, report.row_sources(draw))
    metrics = {"format": marker(METRICS),
               "model": {"path": str(Path(m.model).resolve()), "kind": bundle.kind, "step": bundle.step,
                         "tag": bundle.tag, "suite": bundle.store.get("suite")},
               "store": str(store_path), "split": e.split, "maps": maps, "steps": cfg.sampler.steps,
               "sampler": cfg.sampler.kind, "clip_log": cfg.sampler.clip_log, "seed": e.seed,
               "n_sims": len(set(sims)),
               "spaces": {"spectra": f"overdensity m/mean - 1 and log10(m + {offset:g}) - mean, bins k <= k_Nyq",
                          "zscore": f"log10({bundle.norm.target} + {offset:g})",
                          "calibration": "rank of the truth among the samples (exact)"},
               "posterior": posterior}
    labels = report.Labels(bundle.norm.condition, bundle.norm.target, family.deterministic, offset)
    if extra:
        metrics["comparison"] = comparison(main_row, extra, truth, box, offset, thresholds(root, attrs, bundle, store_path))
    write(cfg, bundle, metrics, out, (cond, truth, draws, box, ranks, labels), n_samples, spec, tile_ref,
          [main_row] + extra if extra else [])
    log.info("wrote %s/metrics.json and %s/report/", out, out)
    return out


def write(cfg, bundle, metrics: dict, out: Path, arrays, n_samples: int, spec, tile_ref, all_rows) -> None:
    """metrics.json and report/ (figures, summary.md), written atomically under the output's lock; ``tile_ref``
    (cond, truth, name): the whole maps a tiled slab is compared with."""
    e, kw = cfg.evaluate, dict(n_samples=n_samples, spec=spec)
    cond, truth, draws, box, ranks, labels = arrays
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
            metrics["tiled"] = panels.tiled(e.tile_store, bundle, *tile_ref, box, tmp / "report" / "tiled.png",
                                            e.tile_whole_max_pixels)
            figs.append("tiled.png")
        if all_rows:
            c = metrics["comparison"]
            compare_report.maps_figure(cond, truth, {r.name: r.draws for r in all_rows},
                                       tmp / "report" / "comparison_maps.png", labels.log_offset, labels)
            compare_report.spectra_figure(c["truth"], c["rows"], tmp / "report" / "comparison_spectra.png", labels)
            figs += ["comparison_maps.png", "comparison_spectra.png"]
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
        report.markdown(metrics, figs, tmp / "report" / "summary.md")


def check_inputs(cfg, bundle, store_path: str, out: Path) -> dict:
    """The output is new and apart from every input; every optional store opens, holds the model's fields at its
    pixel scale (a tile store: complete, at the model's pixel scale) — all before any draw. Returns the
    ``evaluate.baselines`` models, loaded once here."""
    e, m = cfg.evaluate, cfg.trained
    extra = [p for p in (e.one_p_store, e.cv_store, e.tile_store, *e.suites.values(), *e.baselines.values(),
                         cfg.baselines.hod_catalogues if e.hod else "") if p]
    check_disjoint(out, [m.model, store_path, *extra])
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{str(out)!r} exists; choose another --out (nothing was written)")
    for what, path in (("1P store", e.one_p_store), ("CV store", e.cv_store),
                       *((f"suite {k!r} store", v) for k, v in e.suites.items())):
        if path:
            open_for(bundle, path, f"{what} (evaluate)")
    if e.tile_store:
        check_tile_store(e.tile_store, bundle)
    return baseline_bundles(cfg, bundle, store_path)


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


def baseline_bundles(cfg, bundle, store_path) -> dict:
    """The ``evaluate.baselines`` models, loaded and checked against the model (same fields, the store)."""
    out = {}
    for name, path in cfg.evaluate.baselines.items():
        other = load_bundle(path, cfg.trained.which)
        open_for(other, store_path, f"store of baseline {name!r}")
        if (other.norm.condition, other.norm.target) != (bundle.norm.condition, bundle.norm.target):
            raise ValueError(f"baseline {name!r} ({path!r}) maps {other.norm.condition} -> {other.norm.target}, the "
                             f"model {bundle.norm.condition} -> {bundle.norm.target}")
        out[name] = other
    return out


def baseline_scores(cfg, bundle, root, attrs, store_path, cond, truth, extra, offset: float) -> dict:
    """Band scores of the baselines on the same maps: the linear transfer function, each other model, the HOD."""
    e, box, out = cfg.evaluate, attrs["box_size_mpc_h"], {}
    if e.linear and cond is not None:
        transfer = baselines.fit_transfer(root, attrs, bundle.norm.condition, bundle.norm.target, store_path, offset)
        out[baselines.LINEAR] = baselines.linear_scores(transfer, truth, cond, box)
    for r in extra:   # a map a baseline leaves empty has no overdensity: left out of its band scores, counted
        lit = [i for i in range(len(truth)) if (r.draws[:, i].sum(axis=(-2, -1)) > 0).all()]
        if lit:
            out[r.name] = mean_of([band_scores(truth[i], r.draws[:, i], box, offset) for i in lit],
                                  significance.PER_MAP)
            out[r.name]["empty_maps"] = len(truth) - len(lit)
        log.info("baseline %s (%s) scored on the same %d maps (%d left empty)", r.name, r.kind, len(truth),
                 len(truth) - len(lit))
    return out


def thresholds(root, attrs, bundle, store_path) -> float:
    """The smallest positive target pixel of (up to 60) training maps: below it a draw is sub-resolution mass."""
    t = read_maps(root, bundle.norm.target, held_out_maps(attrs, "train", 60), store_path)
    return float(t[t > 0].min()) if (t > 0).any() else 0.0


def comparison(main_row, extra, truth, box: float, offset: float, floor: float) -> dict:
    """metrics.json's comparison: every row scored one way (:mod:`.compare`), cost, diagnostics, the paper's order."""
    all_rows = [main_row] + extra
    scored = {main_row.name: compare.row_scores(truth, main_row.draws, box, offset)}
    if main_row.draws.shape[0] > 1 and floor > 0:   # a sampler's sub-resolution mass counted as empty
        scored[f"{main_row.name}, thresholded"] = compare.row_scores(truth, compare.thresholded(main_row.draws, floor),
                                                                    box, offset)
    scored |= {r.name: compare.row_scores(truth, r.draws, box, offset) for r in extra}
    kinds = {"vdm": "vdm", "cnn": "two_phase", "hod": "hod"}
    names = {who: next((r.name for r in all_rows if r.kind == kind), None) for who, kind in kinds.items()}
    return {"rows": scored, "truth": compare.truth_curves(truth, box), "threshold": floor,
            "cost": {r.name: r.cost for r in all_rows}, "diagnostics": {r.name: r.diagnostics for r in all_rows
                                                                        if r.diagnostics},
            "kinds": {r.name: r.kind for r in all_rows}, "order": compare.order_note(scored, names),
            "k_nyquist": k_nyquist(box, truth.shape[-1]), "pixels": int(truth.shape[-1]), "box_mpc_h": float(box),
            "log_offset": float(offset)}


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
