"""dm2gal against the HOD benchmark on the test sub-cube: P(k), bispectrum and PDF, and the paper's Fig. 1.

Truth: the hydro stellar field of the volume store's test cube. dm2gal: the dense network over the test
cube (the dm2gal family's ``predict``: periodic context from the whole volume; stars where ``paint.mask``
puts them). HOD
(:mod:`.hod`): fitted on the hydro catalogue's subhalos outside the test and validation cubes, drawn for
the gravity-only subhalos and painted by CIC. Scores (lower is better): ``pk_ratio_err`` of the stellar mass
per voxel (:mod:`hpc_vdm.spectra.scores`: mean |P/P_true - 1| over the bins up to k_Nyq), ``bk_err`` = mean |B/B_true - 1| over 25 angles, ``pdf_err`` = mean |log10((n + 1)/(n_true
+ 1))| over bins of log10 M* per voxel.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..bundle import load_bundle
from ..data import volume as vol
from ..families import DrawSpec, for_bundle
from ..io import FIGURE, METRICS, acquire_lock, atomic_write_text, check_folder, check_output, marker, writing
from ..spectra import power_spectrum
from ..spectra.scores import draw_scores
from ..spectra.stats import bispectrum
from . import hod as hod_mod
from .figure import figure1

PDF_EDGES = np.linspace(6.0, 13.0, 29)   # log10 M* per voxel [Msun/h]
N_THETA = 25


def catalogue_paths(cfg) -> tuple[str, str]:
    b, v, data = cfg.baselines, cfg.volume, cfg.data
    hydro = b.catalogue or str(Path(v.source_dir) / f"FOF_Subfind_{data.suite}_{data.set}_z=0.00"
                               / f"fof_subhalo_tab_{v.sim:04d}.hdf5")
    return hydro, b.catalogue_dmo or hydro


def hod_test_cube(cfg, root) -> np.ndarray:
    """(h, h, h) HOD stellar mass per voxel [Msun/h] of the test cube."""
    a = dict(root.attrs)
    hydro_path, dmo_path = catalogue_paths(cfg)
    hydro, dmo = hod_mod.read_catalogue(hydro_path), hod_mod.read_catalogue(dmo_path)
    held_out = (hod_mod.in_box(hydro.pos_mpc_h, a["regions"]["test"], a["voxel_mpc_h"])
                | hod_mod.in_box(hydro.pos_mpc_h, a["regions"]["val"], a["voxel_mpc_h"]))
    model = hod_mod.fit_hod(hydro, dmo, cfg.baselines.hod_bins, fit=~held_out)
    pos, mass = model.draw(dmo, seed=cfg.baselines.seed)
    grid = hod_mod.cic_paint(pos, mass, a["n"], a["box_mpc_h"])
    lo, hi = a["regions"]["test"]
    return grid[lo:hi, lo:hi, lo:hi]


def statistics(fields: dict[str, np.ndarray], box_mpc_h: float, bk_kf) -> dict:
    """P(k), B(theta) at (k1, k2) = bk_kf x k_F, and the voxel PDF of every field."""
    kf = 2 * np.pi / box_mpc_h
    theta = np.linspace(0, np.pi, N_THETA)
    out = {}
    for name, m in fields.items():
        m = np.asarray(m, dtype=np.float64)
        pk = power_spectrum(m, box_mpc_h)
        delta = m / m.mean() - 1.0 if m.mean() > 0 else m
        bk = bispectrum(delta, box_mpc_h, bk_kf[0] * kf, bk_kf[1] * kf, theta)
        pdf = np.histogram(np.log10(m[m > 0]), PDF_EDGES)[0]
        out[name] = {"k": pk.k.tolist(), "pk": pk.power.tolist(), "theta": theta.tolist(), "bk": bk.bk.tolist(),
                     "pdf_edges": PDF_EDGES.tolist(), "pdf": pdf.tolist(), "total_msun_h": float(m.sum())}
    return out


def scores(stats: dict, fields: dict[str, np.ndarray], box_mpc_h: float, truth: str = "truth") -> dict:
    t = stats[truth]
    out = {}
    for name, s in stats.items():
        if name == truth:
            continue
        bt = np.array(t["bk"])
        out[name] = {"pk_ratio_err": draw_scores(fields[truth], fields[name], box_mpc_h, space="mass")["pk_ratio_err"],
                     "bk_err": float(np.mean(np.abs(np.array(s["bk"]) / bt - 1))),
                     "pdf_err": float(np.mean(np.abs(np.log10((np.array(s["pdf"]) + 1) / (np.array(t["pdf"]) + 1)))))}
    return out


def check_outputs(out: Path, inputs, overwrite: bool) -> None:
    """metrics.json and fig1.png in ``out`` may be written: new, or with ``overwrite`` this command's own."""
    check_output(out / "metrics.json", METRICS, inputs=inputs, overwrite=overwrite)
    check_output(out / "fig1.png", FIGURE, inputs=inputs, overwrite=overwrite)


def compare(cfg, device="cpu", overwrite: bool = False) -> dict:
    """metrics.json and fig1.png of dm2gal vs HOD vs truth on the test cube into ``baselines.out``."""
    m, out = cfg.trained, Path(cfg.baselines.out)
    bundle = load_bundle(m.model, m.which).require("dm2gal", "python -m hpc_vdm.baselines")
    root = vol.open_volume(cfg.data.store, need=vol.FIELDS)
    inputs = [m.model, cfg.data.store, *catalogue_paths(cfg)]
    check_folder(out, "--out (baselines.out)")
    check_outputs(out, inputs, overwrite)
    a = dict(root.attrs)
    lo, hi = a["regions"]["test"]
    hod_cube = hod_test_cube(cfg, root)   # reads the catalogues first: a missing one fails early
    painted = for_bundle(bundle).predict(bundle, root, mask=cfg.paint.mask, spec=DrawSpec(device=device),
                                         region=(lo, hi - lo))
    fields = {"truth": np.asarray(root["stellar"][lo:hi, lo:hi, lo:hi], dtype=np.float64), "dm2gal": painted,
              "hod": hod_cube}
    box = (hi - lo) * a["voxel_mpc_h"]
    stats = statistics(fields, box, cfg.baselines.bk_kf)
    result = {"format": marker(METRICS), "test_cube_voxels": hi - lo, "test_cube_mpc_h": box, "mask": cfg.paint.mask,
              "model_step": bundle.step, "scores": scores(stats, fields, box), "stats": stats}
    with writing(out), acquire_lock(out / "metrics.json"):
        check_outputs(out, inputs, overwrite)  # another writer finished meanwhile?
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
        figure1(root, fields, stats, out / "fig1.png")
    return result
