"""statistics.png: the mock's four CMD pixel statistics, relative to CMD, per suite and set.

    python docs/results/mock/figure.py      # reads bench_mock.json and stellar_check.json beside it

log10 Mcdm mean/std come from ``bench_mock.json`` (the DM does not depend on the stellar model);
log10(1 + M*) mean/std from ``stellar_check.json`` (the shipped stellar model, seed-11 LH sets).
The grey bands are the targets of #12: 2% for the DM, 5% for the stars.
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).parent
SUITES = ("IllustrisTNG", "Astrid", "SIMBA")


def main() -> None:
    bench = json.loads((HERE / "bench_mock.json").read_text())
    stellar = json.loads((HERE / "stellar_check.json").read_text())["sets"]
    dm = {f"{s['particles']}:{s['n_sims']}": s["suites"] for s in bench["statistics"]}
    panels = [("log10 Mcdm mean", dm, lambda v: v["log10_Mcdm_mean"]["rel_err"], 0.02),
              ("log10 Mcdm std", dm, lambda v: v["log10_Mcdm_std"]["rel_err"], 0.02),
              ("log10(1+M*) mean", stellar, lambda v: v["mean_rel_err"], 0.05),
              ("log10(1+M*) std", stellar, lambda v: v["std_rel_err"], 0.05)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=False)
    for ax, (title, table, get, tol) in zip(axes, panels):
        sets = list(table)
        width = 0.8 / len(sets)
        for j, name in enumerate(sets):
            n, k = name.split(":")
            y = [100 * get(table[name][s]) for s in SUITES]
            ax.bar(np.arange(3) + (j - (len(sets) - 1) / 2) * width, y, width, label=f"{n}³, {k} sims")
        ax.axhspan(-100 * tol, 100 * tol, color="0.9", zorder=0)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(title=title, xticks=range(3), xticklabels=SUITES, ylim=(-8, 8))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mock / CMD − 1 [%]")
    for ax in axes[::2]:  # the DM and the stellar panels come from different sets
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Mock LH sets (seed 11, held out) against CMD's pixel statistics; grey: the #12 targets")
    fig.tight_layout()
    fig.savefig(HERE / "statistics.png", dpi=120)


if __name__ == "__main__":
    main()
