"""``evaluate`` of an emulator — a family that draws maps from parameters (``conditioned_on == "params"``):
Mudur+23's checks of generated against simulated fields.

* **spectra** (Fig. 1): for ``evaluate.emulator_sims`` simulations of the split, ``n_samples`` fields generated at
  each one's parameters against its maps (15: five slabs by three axes): k²P(k) mean ± std of both and the
  z-score per k bin of the difference of the means, z_k = (⟨P_gen⟩ − ⟨P_true⟩) / sqrt(s²_true/n_true + s²_gen/n_gen)
  (≈ N(0, 1) per bin when the generated fields share the truths' distribution);
* **pixel histograms** (Fig. 4): the density of log10 pixel values, mean ± std over fields, truth and generated;
* **χ²_r** (Fig. 5): each generated field's P(k) against its point's truths (:func:`~hpc_vdm.spectra.scores.chi2_r`),
  beside the leave-one-out χ²_r of the truths themselves (cosmic variance; the floor), and against the CV set
  at the CV parameters (``evaluate.cv_store``) beside the CV maps' own leave-one-out floor;
* **1P response** (Fig. 2, ``evaluate.one_p_store``): for each of ``evaluate.one_p_params``, P(k; θ)/P(k; θ_fid)
  of the 1P set's maps (one realisation across the set: the ratio of the same slice) against generated fields
  with the same noise at every value (the paper's "same seed"), mean ± std over slices and over seeds.

Every statistic is of the log10 field (the paper's): P(k) of log10 m minus its mean, bins up to k_Nyq.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..data import camels
from ..data.dataset import spread
from ..data.store import read_maps
from ..families.emulator import SPACE
from ..inference.maps import draw_maps, open_for
from ..io import METRICS, acquire_lock, atomic_dir, marker, writing
from ..spectra.scores import chi2_r, overdensity_spectra
from . import emulation_figures as figs

log = logging.getLogger("hpc_vdm.evaluate")
CV_KEY = 1_000_000  # the noise key of the fields generated at the CV parameters


def z_per_bin(p_true: np.ndarray, p_gen: np.ndarray) -> np.ndarray:
    """(nk,) z-score of the difference of the mean spectra, in units of its standard error."""
    se = np.sqrt(p_true.var(0, ddof=1) / len(p_true) + p_gen.var(0, ddof=1) / len(p_gen))
    return (p_gen.mean(0) - p_true.mean(0)) / se


def point(truth: np.ndarray, gen: np.ndarray, box: float, edges: np.ndarray) -> dict:
    """Spectra, z-scores, χ²_r and pixel histograms of one parameter point: truth (n, H, W), gen (S, H, W)."""
    k, p_t = overdensity_spectra(truth, box, SPACE)
    _, p_g = overdensity_spectra(gen, box, SPACE)
    z = z_per_bin(p_t, p_g)
    hist = lambda maps: np.stack([np.histogram(np.log10(np.maximum(m, 1e-300)).ravel(), bins=edges, density=True)[0]
                                  for m in maps])  # noqa: E731
    h_t, h_g = hist(truth), hist(gen)
    return {"k": k, "k2p_true": k ** 2 * p_t, "k2p_gen": k ** 2 * p_g, "z": z,
            "chi2_gen": chi2_r(p_g, p_t), "chi2_floor": chi2_r(p_t, p_t), "hist_true": h_t, "hist_gen": h_g,
            "summary": {"mean_abs_z": float(np.mean(np.abs(z))), "max_abs_z": float(np.max(np.abs(z))),
                        "frac_abs_z_above_2": float(np.mean(np.abs(z) > 2)),
                        "chi2_r_generated": float(chi2_r(p_g, p_t).mean()),
                        "chi2_r_floor": float(chi2_r(p_t, p_t).mean()),
                        "log10_mean_true": float(np.log10(truth).mean()), "log10_mean_gen": float(np.log10(gen).mean())}}


def one_p(bundle, path: str, names: list[str], n_truth: int, n_samples: int, spec, box: float) -> dict:
    """P(k) ratios to the fiducial of the 1P set and of generated fields with the same noise at every value."""
    root, attrs = open_for(bundle, path, "1P store")
    table, per_sim = np.asarray(root["params"][:], np.float64), int(attrs["maps_per_sim"])
    fid = camels.fiducial_params()
    out = {}
    for name in names:
        j = camels.PARAM_NAMES.index(name)
        others = np.delete(np.arange(len(fid)), j)
        sims = np.flatnonzero(np.all(np.isclose(table[:, others], fid[others], rtol=1e-6), axis=1))
        sims = sims[np.argsort(table[sims, j], kind="stable")]
        sims = sims[np.unique(table[sims, j], return_index=True)[1]]  # the fiducial point once (each block has it)
        if sims.size < 2:
            raise ValueError(f"1P store {path!r} has no simulations varying {name} alone")
        f_sim = sims[np.argmin(np.abs(table[sims, j] - fid[j]))]
        maps = lambda s: [int(s) * per_sim + m for m in range(min(n_truth, per_sim))]  # noqa: E731
        _, p_fid = overdensity_spectra(read_maps(root, bundle.norm.target, maps(f_sim), path), box, SPACE)
        gen = draw_maps(bundle, None, [0] * len(sims), n_samples=n_samples, spec=spec, params=table[sims],
                        shape=(attrs["map_pixels"],) * 2)                            # (S, n_values, H, W), same noise
        g_fid = overdensity_spectra(gen[:, list(sims).index(f_sim)], box, SPACE)[1]
        rows = []
        for v, s in enumerate(sims):
            k, p_t = overdensity_spectra(read_maps(root, bundle.norm.target, maps(s), path), box, SPACE)
            r_t, r_g = p_t / p_fid, overdensity_spectra(gen[:, v], box, SPACE)[1] / g_fid
            rows.append({"value": float(table[s, j]), "true_mean": r_t.mean(0), "true_std": r_t.std(0),
                         "gen_mean": r_g.mean(0), "gen_std": r_g.std(0)})
        out[name] = {"k": k, "fiducial": float(table[f_sim, j]), "rows": rows}
    return out


def cv_chi2(bundle, path: str, n_samples: int, spec, box: float) -> dict:
    """χ²_r of fields generated at the CV parameters against the CV maps, and the CV maps' own floor."""
    root, attrs = open_for(bundle, path, "CV store")
    n = root[bundle.norm.target].shape[0]
    truth = read_maps(root, bundle.norm.target, range(n), path).astype(np.float64)
    row = np.asarray(root["params"][0], np.float64)
    gen = draw_maps(bundle, None, [CV_KEY], n_samples=n_samples, spec=spec, params=row[None],
                    shape=truth.shape[-2:])[:, 0]
    _, p_t = overdensity_spectra(truth, box, SPACE)
    _, p_g = overdensity_spectra(gen, box, SPACE)
    return {"generated": chi2_r(p_g, p_t), "floor": chi2_r(p_t, p_t), "n_cv": int(n), "params": row.tolist()}


def run(cfg, bundle, root, attrs, store_path: str, spec, out: Path) -> Path:
    """The emulator's report: OUT/metrics.json and OUT/report/ (fig1, histograms, chi2, one_p, summary.md)."""
    e = cfg.evaluate
    sims = [int(s) for s in attrs["splits"].get(e.split, [])]
    if not sims:
        raise ValueError(f"split {e.split!r} of {store_path!r} has no simulations")
    sims = [sims[i] for i in spread(len(sims), e.emulator_sims)]
    for path in (e.cv_store, e.one_p_store):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"evaluate input {path!r} does not exist")
    per_sim, box = int(attrs["maps_per_sim"]), float(attrs["box_size_mpc_h"])
    table = np.asarray(root["params"][:], np.float64)
    truths = [read_maps(root, bundle.norm.target, range(s * per_sim, (s + 1) * per_sim), store_path) for s in sims]
    lo, hi = np.log10(np.min([t.min() for t in truths])) - 0.3, np.log10(np.max([t.max() for t in truths])) + 0.3
    edges = np.linspace(lo, hi, 41)
    log.info("emulator: %d points x %d generated fields (%d steps)", len(sims), e.n_samples, cfg.sampler.steps)
    gen = draw_maps(bundle, None, [s * per_sim for s in sims], n_samples=e.n_samples, spec=spec, params=table[sims],
                    shape=truths[0].shape[-2:])                                           # (S, n_points, H, W)
    points = [point(t.astype(np.float64), gen[:, i], box, edges) for i, t in enumerate(truths)]
    params = {s: dict(zip(camels.PARAM_NAMES, table[s].tolist())) for s in sims}
    metrics = {"format": marker(METRICS), "kind": "emulator",
               "model": {"path": str(Path(cfg.trained.model).resolve()), "kind": bundle.kind, "step": bundle.step,
                         "tag": bundle.tag, "params": bundle.param_names},
               "store": str(store_path), "split": e.split, "steps": cfg.sampler.steps, "sampler": cfg.sampler.kind,
               "clip_log": cfg.sampler.clip_log, "seed": e.seed, "n_samples": e.n_samples,
               "space": "log10 field minus its mean, bins k <= k_Nyq",
               "points": [{"sim": s, "params": params[s], **pt["summary"]} for s, pt in zip(sims, points)]}
    chi_gen = np.concatenate([pt["chi2_gen"] for pt in points])
    chi_floor = np.concatenate([pt["chi2_floor"] for pt in points])
    metrics["chi2_r"] = {"generated": float(chi_gen.mean()), "floor_loo_truths": float(chi_floor.mean()),
                         "n_generated": int(chi_gen.size), "n_truths": int(chi_floor.size)}
    cv = cv_chi2(bundle, e.cv_store, e.n_samples, spec, box) if e.cv_store else None
    if cv is not None:
        metrics["chi2_r"]["cv"] = {"generated": float(cv["generated"].mean()), "floor_loo": float(cv["floor"].mean()),
                                   "n_cv": cv["n_cv"], "params": cv["params"]}
    resp = one_p(bundle, e.one_p_store, e.one_p_params, e.one_p_maps, e.n_samples, spec, box) if e.one_p_store else None
    if resp is not None:
        metrics["one_p"] = {name: {"fiducial": v["fiducial"], "values": [r["value"] for r in v["rows"]],
                                   "max_abs_mean_ratio_gap": float(max(np.max(np.abs(r["gen_mean"] - r["true_mean"]))
                                                                       for r in v["rows"]))}
                            for name, v in resp.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing(out), acquire_lock(out), atomic_dir(out) as tmp:
        report = tmp / "report"
        report.mkdir(parents=True)
        names = figs.draw_all(report, sims, params, points, edges, chi_gen, chi_floor, cv, resp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
        figs.markdown(metrics, names, report / "summary.md")
    log.info("wrote %s/metrics.json and %s/report/", out, out)
    return out
