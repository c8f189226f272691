"""dm2gal against the HOD benchmark on the test sub-cube: P(k), bispectrum and PDF, and the paper's Fig. 1.

Truth: the hydro stellar field of the volume store's test cube. dm2gal: the dense network over the test
cube (periodic context from the whole volume; stars where ``dm2gal.mask`` puts them). HOD
(:mod:`.hod`): fitted on the hydro catalogue's subhalos outside the test and validation cubes, drawn for
the gravity-only subhalos and painted by CIC. Scores (lower is better): ``pk_err`` = mean |P/P_true - 1|
over k bins, ``bk_err`` = mean |B/B_true - 1| over 25 angles, ``pdf_err`` = mean |log10((n + 1)/(n_true
+ 1))| over bins of log10 M* per voxel.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data import volume as vol
from ..io import atomic_write_text
from ..models import DenseDM2Gal
from ..spectra import power_spectrum
from ..spectra.stats import bispectrum
from ..training.artifact import load_bundle
from . import hod as hod_mod
from .figure import figure1

PDF_EDGES = np.linspace(6.0, 13.0, 29)   # log10 M* per voxel [Msun/h]
N_THETA = 25


def catalogue_paths(d, data) -> tuple[str, str]:
    hydro = d.catalogue or str(Path(d.source_dir) / f"FOF_Subfind_{data.suite}_{data.set}_z=0.00"
                               / f"fof_subhalo_tab_{d.sim:04d}.hdf5")
    return hydro, d.catalogue_dmo or hydro


def predict_test_cube(bundle, root, d, device) -> np.ndarray:
    """(h, h, h) dm2gal stellar mass per voxel [Msun/h] of the test cube."""
    from ..inference.paint import masked_stellar, paint_region

    a, stats = dict(root.attrs), bundle.store["stats"]
    lo, hi = a["regions"]["test"]
    inputs = np.stack([vol.normalise(root[f][:], stats[f]) for f in vol.INPUTS])     # (2, N, N, N)
    with torch.no_grad():
        pred = paint_region(DenseDM2Gal(bundle.module.to(device).eval()), inputs, lo, hi - lo, device)
    cube = (slice(lo, hi),) * 3
    return masked_stellar(vol.denormalise(pred, stats["stellar"]), d.mask, subhalo=root["subhalo"][cube],
                          truth=root["stellar"][cube] if "stellar" in a["fields"] else None,
                          min_log_mstar=bundle.config.dm2gal.min_log_mstar,
                          cut=bundle.config.dm2gal.centres == "subhalo")


def hod_test_cube(d, data, root) -> np.ndarray:
    """(h, h, h) HOD stellar mass per voxel [Msun/h] of the test cube."""
    a = dict(root.attrs)
    hydro_path, dmo_path = catalogue_paths(d, data)
    hydro, dmo = hod_mod.read_catalogue(hydro_path), hod_mod.read_catalogue(dmo_path)
    held_out = (hod_mod.in_box(hydro.pos_mpc_h, a["regions"]["test"], a["voxel_mpc_h"])
                | hod_mod.in_box(hydro.pos_mpc_h, a["regions"]["val"], a["voxel_mpc_h"]))
    model = hod_mod.fit_hod(hydro, dmo, d.hod_bins, fit=~held_out)
    pos, mass = model.draw(dmo, seed=d.seed)
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


def scores(stats: dict, truth: str = "truth") -> dict:
    t = stats[truth]
    out = {}
    for name, s in stats.items():
        if name == truth:
            continue
        pt, bt = np.array(t["pk"]), np.array(t["bk"])
        ok = pt > 0
        out[name] = {"pk_err": float(np.mean(np.abs(np.array(s["pk"])[ok] / pt[ok] - 1))),
                     "bk_err": float(np.mean(np.abs(np.array(s["bk"]) / bt - 1))),
                     "pdf_err": float(np.mean(np.abs(np.log10((np.array(s["pdf"]) + 1) / (np.array(t["pdf"]) + 1)))))}
    return out


def compare(cfg, device="cpu") -> dict:
    """metrics.json and fig1.png of dm2gal vs HOD vs truth on the test cube into ``dm2gal.eval_out``."""
    d = cfg.dm2gal
    bundle = load_bundle(d.model, d.which).require("dm2gal", "python -m hpc_vdm.baselines")
    root = vol.open_volume(cfg.data.store, need=vol.FIELDS)
    a = dict(root.attrs)
    lo, hi = a["regions"]["test"]
    hod_cube = hod_test_cube(d, cfg.data, root)   # reads the catalogues first: a missing one fails early
    fields = {"truth": np.asarray(root["stellar"][lo:hi, lo:hi, lo:hi], dtype=np.float64),
              "dm2gal": predict_test_cube(bundle, root, d, device), "hod": hod_cube}
    box = (hi - lo) * a["voxel_mpc_h"]
    stats = statistics(fields, box, d.bk_kf)
    result = {"test_cube_voxels": hi - lo, "test_cube_mpc_h": box, "mask": d.mask, "model_step": bundle.step,
              "scores": scores(stats), "stats": stats}
    out = Path(d.eval_out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    figure1(root, fields, stats, out / "fig1.png")
    return result
