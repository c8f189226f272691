"""The dm2gal paper's Fig. 1: slices of dark matter, subhalos, dm2gal, truth and HOD; P(k), B(theta), PDF."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from ..io import save_figure

COLOURS = {"truth": "tab:blue", "dm2gal": "tab:red", "hod": "tab:green"}


def figure1(root, fields: dict[str, np.ndarray], stats: dict, png: Path, depth: int = 2) -> None:
    """Top: ``depth``-voxel slices through the middle of the test cube (log10(1 + M) per voxel); bottom: the
    three statistics of truth (blue), dm2gal (red) and HOD (green)."""
    plt = figures.pyplot()
    lo, hi = root.attrs["regions"]["test"]
    mid = (lo + hi) // 2
    a, b = mid - depth // 2, mid - depth // 2 + depth
    cube = (slice(a, b), slice(lo, hi), slice(lo, hi))
    h0 = a - lo
    top = [("dark matter", root["dm"][cube].sum(0)), ("subhalos", root["subhalo"][cube].sum(0)),
           ("dm2gal", fields["dm2gal"][h0:h0 + depth].sum(0)), ("hydro (truth)", fields["truth"][h0:h0 + depth].sum(0)),
           ("HOD", fields["hod"][h0:h0 + depth].sum(0))]
    fig = plt.figure(figsize=(22, 10))
    grid = fig.add_gridspec(2, 15)
    stars = [np.log10(1 + np.asarray(img, dtype=np.float64)) for _, img in top[2:]]
    vlim = (0.0, max(float(s.max()) for s in stars))
    for i, (title, img) in enumerate(top):
        ax = fig.add_subplot(grid[0, 3 * i:3 * i + 3])
        figures.map_panel(fig, ax, np.log10(1 + np.asarray(img, dtype=np.float64)), title=title,
                          cmap="viridis" if i < 2 else "magma", vlim=None if i < 2 else vlim)
    axes = [fig.add_subplot(grid[1, 5 * j:5 * j + 5]) for j in range(3)]
    for name, s in stats.items():
        c = COLOURS.get(name, "k")
        axes[0].loglog(s["k"], np.maximum(s["pk"], 1e-300), color=c, label=name)
        axes[1].plot(s["theta"], s["bk"], color=c, label=name)
        centres = 0.5 * (np.array(s["pdf_edges"][1:]) + np.array(s["pdf_edges"][:-1]))
        axes[2].step(centres, s["pdf"], where="mid", color=c, label=name)
    axes[0].set(xlabel="k [h/Mpc]", ylabel="P(k) of M* per voxel")
    axes[1].set(xlabel="theta [rad]", ylabel="B(k1, k2, theta) of the overdensity")
    axes[2].set(xlabel="log10 M* per voxel [Msun/h]", ylabel="voxels", yscale="log")
    for ax in axes:
        ax.legend()
    fig.subplots_adjust(left=0.05, right=0.97, top=0.95, bottom=0.07, hspace=0.3, wspace=1.2)
    save_figure(fig, png, dpi=80)
    plt.close(fig)
