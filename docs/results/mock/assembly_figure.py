"""assembly_bias.png: the shuffle test of the mock per suite, and the HOD against its prediction.

    python docs/results/mock/assembly_figure.py      # reads assembly_bias.json beside it

Left: the stellar P(k) ratio original / shuffled (galaxies moved among halos of the same 0.1 dex mass
bin), assembly bias on and off, summed over the simulations of ``assembly_bias.json`` (written by
``tools/bench_mock.py --shuffle``). Right: what a mass-only model should miss (shuffled / original) and
what the dm2gal paper's HOD, fitted on the same catalogues, does miss (HOD / original).
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
COLOURS = {"IllustrisTNG": "C0", "Astrid": "C1", "SIMBA": "C2"}


def main() -> None:
    run = json.loads((HERE / "assembly_bias.json").read_text())["assembly_bias"][0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for suite, switches in run["suites"].items():
        c = COLOURS[suite]
        for switch, style in (("on", "-"), ("off", ":")):
            r = switches[switch]["shuffle_ratio"]
            left.plot(r["k"], r["ratio_k"], style, color=c, marker="o", ms=3,
                      label=f"{suite} {switch}: {r['band']:.3f} ± {r['err']:.3f}")
        shuf, hod = switches["on"]["shuffled_over_original"], switches["on"]["hod_over_original"]
        right.plot(shuf["k"], shuf["ratio_k"], "-", color=c, label=f"{suite} shuffled: {shuf['band']:.3f}")
        right.plot(hod["k"], hod["ratio_k"], "--", color=c, marker="s", ms=3, label=f"{suite} HOD: {hod['band']:.3f}")
    left.axhspan(1.10, 1.20, color="0.9", zorder=0)
    left.axhline(1.0, color="k", lw=0.8)
    right.axhline(1.0, color="k", lw=0.8)
    left.set(xlabel="k [h/Mpc]", ylabel="P_original / P_shuffled", title=f"shuffle test, {run['n_sims']} simulations, "
             f"{run['particles']}^3 (band k < {run['k_max_h_mpc']:g})")
    right.set(xlabel="k [h/Mpc]", ylabel="P / P_original", title="assembly bias on: a mass-only model's loss")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "assembly_bias.png", dpi=120)


if __name__ == "__main__":
    main()
