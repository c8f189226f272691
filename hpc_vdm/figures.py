"""Figures beside the numbers: a headless pyplot and the map panel every command draws."""
from __future__ import annotations

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (batch nodes have no display); imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_k_ticks(ax) -> None:
    """A log-k axis labelled in plain numbers at 1, 2 and 5 per decade, minor ticks unlabelled (matplotlib's
    default labels only powers of ten: a single "10⁰" on the k range of a 25 Mpc/h map)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def map_panel(fig, ax, img: np.ndarray, *, title: str | None = None, cmap: str = "viridis",
              vlim: tuple[float, float] | None = None) -> None:
    """One (H, W) map with x to the right and y up (``img.T``, origin lower), no ticks, and its colour bar."""
    im = ax.imshow(img.T, origin="lower", cmap=cmap, vmin=vlim and vlim[0], vmax=vlim and vlim[1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
