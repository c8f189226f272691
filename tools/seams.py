#!/usr/bin/env python
"""Seam study: fused tiled sampling against the model applied to whole periodic maps (JSON + PNG).

    python tools/seams.py --model out/demo/run/export/model.pt --store out/demo/maps.zarr \\
                          [--tile 128 --halo 32] [--n-maps 4] [--steps 100] [--blend core] [--out out/seams]

For held-out maps that fit the network whole (256²), draw one sample whole (tile = map, no halo) and one
fused-tiled (tile + 2 halo windows) with the same keyed noise, so the two differ only by the tiling. Reports
P(k) of both (ratio), the pixel PDF of log10 M_cdm, and the power of their difference in a band of
``--band`` pixels around the tile-core boundaries (the seams) against the interiors, each relative to the
sample-to-sample variance of the posterior (a second whole-map sample with another seed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from hpc_vdm import figures
from hpc_vdm.data.store import open_store
from hpc_vdm.training.artifact import load_bundle
from hpc_vdm.data.dataset import held_out_maps
from hpc_vdm.spectra import power_spectrum
from hpc_vdm.diffusion.tiled import check_window, sample_tiled


def seam_mask(n: int, tile: int, band: int) -> np.ndarray:
    """(n, n) True within ``band`` pixels of a tile-core boundary (periodic) along either axis."""
    edges = np.arange(0, n, tile)
    d = np.min(np.abs((np.arange(n)[:, None] - edges[None, :] + n // 2) % n - n // 2), axis=1)
    near = d < band  # pixels i with |i - edge| < band; edge pixel itself is the first of a core
    near |= np.min(np.abs((np.arange(n)[:, None] + 1 - edges[None, :] + n // 2) % n - n // 2), axis=1) < band
    return near[:, None] | near[None, :]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--n-maps", type=int, default=4)
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--halo", type=int, default=32)
    p.add_argument("--blend", default="core")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--band", type=int, default=4)
    p.add_argument("--out", default="out/seams")
    a = p.parse_args(argv)
    bundle = load_bundle(a.model).require("vdm", "tools/seams.py")
    vdm, norm = bundle.module, bundle.norm
    check_window(vdm, a.tile, a.halo)
    root = open_store(a.store)
    attrs = dict(root.attrs)
    maps = held_out_maps(attrs, a.split, a.n_maps)
    box = attrs["box_size_mpc_h"]
    n = root[norm.condition].shape[-1]
    seams = seam_mask(n, a.tile, a.band)
    rows, pk_whole, pk_tiled, logs = [], [], [], {"whole": [], "tiled": []}
    for m in maps:
        cond = torch.from_numpy(norm.condition_in(root[norm.condition][m]))[None]
        kw = dict(n_steps=a.steps, slab=m, samples=[0])
        whole = sample_tiled(vdm, cond, tile=n, halo=0, seed=0, **kw)[0].numpy()
        other = sample_tiled(vdm, cond, tile=n, halo=0, seed=1, **kw)[0].numpy()
        tiled = sample_tiled(vdm, cond, tile=a.tile, halo=a.halo, blend=a.blend, seed=0, batch_size=8, **kw)[0].numpy()
        d = tiled.astype(np.float64) - whole  # in the model's normalised log space
        spread = other.astype(np.float64) - whole  # two posterior samples: the scale that matters
        rows.append({"map": m, "diff_power_seams": float(np.mean(d[seams] ** 2)),
                     "diff_power_interior": float(np.mean(d[~seams] ** 2)),
                     "sample_spread_power": float(np.mean(spread ** 2)),
                     "max_abs_diff": float(np.abs(d).max())})
        phys = {k: norm.target_out(v) for k, v in (("whole", whole), ("tiled", tiled))}
        pw, pt = power_spectrum(phys["whole"], box), power_spectrum(phys["tiled"], box)
        pk_whole.append(pw.power)
        pk_tiled.append(pt.power)
        for k in logs:
            logs[k].append(np.log10(phys[k]).ravel())
        k_h = pw.k
        print(f"map {m}: {rows[-1]}", file=sys.stderr)
    ratio = np.mean(pk_tiled, 0) / np.mean(pk_whole, 0)
    bins = np.linspace(min(map(np.min, logs["whole"])), max(map(np.max, logs["whole"])), 60)
    pdf = {k: np.histogram(np.concatenate(v), bins=bins, density=True)[0] for k, v in logs.items()}
    summary = {
        "model": a.model, "maps": maps, "tile": a.tile, "halo": a.halo, "blend": a.blend, "steps": a.steps,
        "band_px": a.band, "seam_fraction": float(seams.mean()),
        "diff_power_seams": float(np.mean([r["diff_power_seams"] for r in rows])),
        "diff_power_interior": float(np.mean([r["diff_power_interior"] for r in rows])),
        "sample_spread_power": float(np.mean([r["sample_spread_power"] for r in rows])),
        "pk_ratio_tiled_over_whole_max_dev": float(np.max(np.abs(ratio - 1))),
        "pk_ratio_tiled_over_whole_mean_dev": float(np.mean(np.abs(ratio - 1))),
        "pdf_l1_distance": float(np.sum(np.abs(pdf["tiled"] - pdf["whole"])) * (bins[1] - bins[0])),
        "per_map": rows,
    }
    summary["seam_over_interior"] = summary["diff_power_seams"] / max(summary["diff_power_interior"], 1e-30)
    summary["interior_over_spread"] = summary["diff_power_interior"] / summary["sample_spread_power"]
    summary["seams_over_spread"] = summary["diff_power_seams"] / summary["sample_spread_power"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seams.json").write_text(json.dumps(summary, indent=1))

    plt = figures.pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(20, 4.4), constrained_layout=True)
    ax[0].loglog(k_h, np.mean(pk_whole, 0), label="whole map")
    ax[0].loglog(k_h, np.mean(pk_tiled, 0), "--", label=f"tiled {a.tile}+2x{a.halo}")
    ax[0].set(xlabel="k [h/Mpc]", ylabel="P(k)", title="P(k) of M_cdm samples")
    ax[0].legend()
    ax[1].semilogx(k_h, ratio)
    ax[1].axhline(1, color="k", lw=0.5)
    ax[1].set(xlabel="k [h/Mpc]", title="P_tiled / P_whole")
    centres = 0.5 * (bins[1:] + bins[:-1])
    ax[2].plot(centres, pdf["whole"], label="whole")
    ax[2].plot(centres, pdf["tiled"], "--", label="tiled")
    ax[2].set(xlabel="log10 M_cdm", title="pixel PDF")
    ax[2].legend()
    figures.map_panel(fig, ax[3], np.abs(d), cmap="magma",
                      title=f"|tiled - whole| (last map); seams/interior power {summary['seam_over_interior']:.2f}")
    fig.savefig(out / "seams.png", dpi=80)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_map"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
