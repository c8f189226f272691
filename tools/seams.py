#!/usr/bin/env python
"""Tiles showing or not: a slab of a mock volume sampled whole and tiled with the same keyed noise (JSON + PNG).

    python tools/seams.py --model out/science/run/export/model.pt --box 150 --tiles 64,128 --halo 48 \\
                          [--steps 24] [--samples 4] [--out docs/results/tiling]

A thin-slab PM mock (``--box`` Mpc/h, one 5 Mpc/h slab) is painted at the model's pixel scale; its stellar map
is sampled **whole** (one window: the network sees the whole torus) and **tiled** (tile + 2 halo windows,
cut with wrap-around on the stride grid) with noise keyed by the same (seed, slab, sample, step). For each
tile size, in the model's normalised log space, against the posterior spread (the pixel std over the whole
samples):

* ``tile_mean_std_over_spread``: std over tiles of the mean of tiled − whole in each tile core (a tile that
  comes out brighter or darker than the whole field shows here); the acceptance is < 0.01;
* ``seam_over_interior``: the power of tiled − whole within ``--band`` pixels of the core boundaries over
  its power inside the cores (1 ± 0.1: the seams are no worse than anywhere else);
* ``pk_ratio_by_band``: P(k) of the overdensity of the tiled samples over the whole ones, in the report's
  three bands (1 ± 0.02);
* and between tile sizes, the same P(k) ratio of the first tile size over the second.
``--volume`` instead samples only tiled (a slab too big to sample whole: TNG300) and compares tile sizes.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hpc_vdm import figures
from hpc_vdm.bundle import load_bundle
from hpc_vdm.diffusion import sample_tiled
from hpc_vdm.inference.sources import MockSource
from hpc_vdm.inference.volumes import load_volume
from hpc_vdm.io import save_figure
from hpc_vdm.spectra import overdensity, power_spectrum
from hpc_vdm.spectra.scores import band_edges, in_band


def seam_mask(n: int, tile: int, band: int) -> np.ndarray:
    """(n, n) True within ``band`` pixels of a core boundary (multiples of ``tile``, periodic) on either axis."""
    edges = np.arange(0, n, tile)
    d = np.abs((np.arange(n)[:, None] - edges[None, :] + n // 2) % n - n // 2)   # distance to each edge
    d = np.minimum(d, np.abs((np.arange(n)[:, None] + 1 - edges[None, :] + n // 2) % n - n // 2))
    near = d.min(axis=1) < band
    return near[:, None] | near[None, :]


def band_ratios(a: np.ndarray, b: np.ndarray, box: float) -> dict:
    """Median over k bins in each band of mean P(δ of a) / mean P(δ of b); a, b (S, N, N) physical."""
    pa = np.mean([power_spectrum(overdensity(x), box).power for x in a], 0)
    ps = power_spectrum(overdensity(b[0]), box)
    pb = np.mean([power_spectrum(overdensity(x), box).power for x in b], 0)
    return {name: float(np.median(pa[in_band(ps.k, lo, hi)] / pb[in_band(ps.k, lo, hi)]))
            for name, (lo, hi) in band_edges(box, a.shape[-1]).items()}


def draw(bundle, cond, *, tile, halo, steps, samples, sampler, seed=0):
    t0 = time.time()
    z = sample_tiled(bundle.module, cond, tile=tile, halo=halo, n_steps=steps, seed=seed, slab=0,
                     samples=range(samples), batch_size=4, params=bundle.params(), sampler=sampler)
    return z.double().numpy(), time.time() - t0                                        # (S, N, N) normalised


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--box", type=float, default=150.0, help="side of the mock slab [Mpc/h] (sampled whole too)")
    p.add_argument("--volume", help="a volume preset instead (tiled only; e.g. tng300_64)")
    p.add_argument("--tiles", default="64,128")
    p.add_argument("--halo", type=int, default=48)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--sampler", default="unipc")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--band", type=int, default=4)
    p.add_argument("--out", default="out/seams")
    a = p.parse_args(argv)
    b = load_bundle(a.model)
    px = b.store["pixel_size_mpc_h"]
    with tempfile.TemporaryDirectory() as tmp:
        spec = a.volume or f"{tmp}/slab.yaml"
        if not a.volume:
            Path(spec).write_text(f"name: mock{a.box:g}\nbox_mpc_h: {a.box}\nslab_mpc_h: 5.0\npixel_mpc_h: {px}\n")
        vol = load_volume(spec)
    cond_phys = MockSource(slabs=1, spacing_mpc_h=px, pm_steps=10, seed=0).read(vol, [(2, 0)])[(2, 0)]
    cond = torch.from_numpy(b.norm.condition_in(cond_phys))[None]                         # (1, N, N)
    n, box = vol.pixels, vol.box_mpc_h
    tiles = [int(t) for t in a.tiles.split(",")]
    out = {"model": str(a.model), "volume": vol.as_dict(), "halo": a.halo, "steps": a.steps, "sampler": a.sampler,
           "samples": a.samples, "locality": b.locality, "tiles": {}}
    runs = {t: draw(b, cond, tile=t, halo=a.halo, steps=a.steps, samples=a.samples, sampler=a.sampler) for t in tiles}
    if not a.volume:
        whole, out["whole_s"] = draw(b, cond, tile=n, halo=0, steps=a.steps, samples=a.samples, sampler=a.sampler)
        spread = whole.std(0).mean()                                                   # posterior pixel std
        for t, (z, secs) in runs.items():
            d = z - whole                                                              # (S, N, N)
            k = n // t
            cores = d[:, :k * t, :k * t].reshape(a.samples, k, t, k, t).mean(axis=(2, 4))   # (S, k, k)
            seams = seam_mask(n, t, a.band)
            out["tiles"][t] = {
                "tiled_s": secs, "max_abs_diff": float(np.abs(d).max()), "posterior_spread": float(spread),
                "tile_mean_std_over_spread": float(cores.std() / spread),
                "seam_over_interior": float(np.mean(d[:, seams] ** 2) / max(np.mean(d[:, ~seams] ** 2), 1e-300)),
                "pk_ratio_by_band": band_ratios(b.norm.target_out(z), b.norm.target_out(whole), box)}
    if len(tiles) > 1:
        za, zb = runs[tiles[0]][0], runs[tiles[1]][0]
        out[f"pk_ratio_tile{tiles[0]}_over_tile{tiles[1]}"] = band_ratios(b.norm.target_out(za),
                                                                         b.norm.target_out(zb), box)
        out["seconds"] = {t: runs[t][1] for t in tiles}
    folder = Path(a.out)
    folder.mkdir(parents=True, exist_ok=True)
    name = vol.name
    (folder / f"seams_{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    figure(folder / f"seams_{name}.png", cond_phys, b, runs, None if a.volume else whole, name)
    print(json.dumps(out, indent=1), file=sys.stdout)
    return 0


def figure(png, cond_phys, b, runs, whole, name) -> None:
    plt = figures.pyplot()
    cols = 2 + len(runs) + (whole is not None)
    fig, ax = plt.subplots(1, cols, figsize=(4.2 * cols, 4.4), constrained_layout=True)
    figures.map_panel(fig, ax[0], np.log10(1 + cond_phys), title="stellar (condition)", cmap="magma")
    i = 1
    if whole is not None:
        figures.map_panel(fig, ax[i], whole[0], title="sample 0, whole field", cmap="viridis")
        i += 1
    for t, (z, _) in runs.items():
        figures.map_panel(fig, ax[i], z[0], title=f"sample 0, tiles {t} + halo", cmap="viridis")
        i += 1
    if whole is not None:
        t, (z, _) = next(iter(runs.items()))
        figures.map_panel(fig, ax[i], z[0] - whole[0], title=f"tiled ({t}) − whole", cmap="RdBu_r")
    fig.suptitle(f"{name}: normalised log10 M_cdm; {b.path}")
    save_figure(fig, png, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
