"""The emulator report's figures (Mudur+23 Fig. 1, 2, 4, 5) and its Markdown summary; numbers from
:mod:`.emulation`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from ..io import save_figure


def _title(params: dict) -> str:
    return f"Ω_m={params['Omega_m']:.3f}, σ_8={params['sigma_8']:.3f}"


def _band(ax, x, values, color, label, style="-"):
    m, s = values.mean(0), values.std(0)
    ax.plot(x, m, style, color=color, label=label)
    ax.fill_between(x, m - s, m + s, color=color, alpha=0.25)


def fig1(png: Path, sims, params, points) -> None:
    """k²P(k) of the log field, truth and generated (mean ± std), and the z-score per k bin."""
    plt = figures.pyplot()
    n = len(points)
    fig, ax = plt.subplots(2, n, figsize=(4.6 * n, 6.4), squeeze=False, sharex=True, constrained_layout=True,
                           gridspec_kw={"height_ratios": [2, 1]})
    for i, (s, pt) in enumerate(zip(sims, points)):
        k = pt["k"]
        _band(ax[0, i], k, pt["k2p_true"], "k", f"simulated ({len(pt['k2p_true'])})")
        _band(ax[0, i], k, pt["k2p_gen"], "C1", f"generated ({len(pt['k2p_gen'])})", "--")
        ax[0, i].set(xscale="log", yscale="log", title=f"sim {s}: {_title(params[s])}", ylabel="k² P(k) of log10 field")
        ax[0, i].legend(fontsize=8)
        ax[1, i].semilogx(k, pt["z"], "C1.-")
        ax[1, i].axhspan(-2, 2, color="0.9")
        ax[1, i].axhline(0, color="k", lw=0.8)
        ax[1, i].set(xlabel="k [h/Mpc]", ylabel="z-score of the mean")
        figures.log_k_ticks(ax[1, i])
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def histograms(png: Path, sims, params, points, edges) -> None:
    """Density of log10 pixel values: mean ± std over simulated and generated fields (Fig. 4)."""
    plt = figures.pyplot()
    n = len(points)
    fig, ax = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False, constrained_layout=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for i, (s, pt) in enumerate(zip(sims, points)):
        _band(ax[0, i], centres, pt["hist_true"], "k", "simulated")
        _band(ax[0, i], centres, pt["hist_gen"], "C1", "generated", "--")
        ax[0, i].set(xlabel="log10 M_cdm [(M☉/h)/(Mpc/h)²]", ylabel="density", title=_title(params[s]))
        ax[0, i].legend(fontsize=8)
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def chi2_figure(png: Path, chi_gen, chi_floor, cv) -> None:
    """Histograms of χ²_r: truths leave-one-out, generated against the truths, and the CV set (Fig. 5)."""
    plt = figures.pyplot()
    panels = [("truths, leave-one-out", chi_floor), ("generated vs truths", chi_gen)]
    if cv is not None:
        panels += [("CV maps, leave-one-out", cv["floor"]), ("generated at CV params vs CV", cv["generated"])]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    hi = max(np.percentile(np.concatenate([v for _, v in panels]), 99), 2.5)
    bins = np.linspace(0, hi, 30)
    for j, (label, v) in enumerate(panels):
        a = ax[j // 2]
        a.hist(v, bins=bins, histtype="step", lw=1.5, color=f"C{j}",
               label=f"{label}: mean {np.mean(v):.2f} ({len(v)})")
        a.set(xlabel="χ²_r of P(k) (log field)", ylabel="fields")
        a.legend(fontsize=8)
    ax[0].set_title("validation parameter points")
    ax[1].set_title("CV set (fiducial)" if cv is not None else "no CV set given")
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def one_p_figure(png: Path, resp: dict) -> None:
    """P(k; θ)/P(k; θ_fid) per value of each parameter: simulated (solid) and generated (dashed), ± std (Fig. 2)."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(1, len(resp), figsize=(5.5 * len(resp), 4), squeeze=False, constrained_layout=True)
    for a, (name, v) in zip(ax[0], resp.items()):
        for c, r in enumerate(v["rows"]):
            color = f"C{c}"
            a.plot(v["k"], r["true_mean"], "-", color=color, label=f"{name}={r['value']:.3g}")
            a.fill_between(v["k"], r["true_mean"] - r["true_std"], r["true_mean"] + r["true_std"], color=color, alpha=0.15)
            a.plot(v["k"], r["gen_mean"], "--", color=color)
            a.fill_between(v["k"], r["gen_mean"] - r["gen_std"], r["gen_mean"] + r["gen_std"], color=color, alpha=0.1,
                           hatch="//")
        a.set(xscale="log", xlabel="k [h/Mpc]", ylabel=f"P(k) / P(k; {name}={v['fiducial']:.3g})",
              title=f"1P {name}: simulated (solid), generated (dashed)")
        figures.log_k_ticks(a)
        a.legend(fontsize=7)
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def draw_all(folder: Path, sims, params, points, edges, chi_gen, chi_floor, cv, resp) -> list[str]:
    fig1(folder / "fig1_spectra.png", sims, params, points)
    histograms(folder / "fig4_histograms.png", sims, params, points, edges)
    chi2_figure(folder / "fig5_chi2.png", chi_gen, chi_floor, cv)
    names = ["fig1_spectra.png", "fig4_histograms.png", "fig5_chi2.png"]
    if resp is not None:
        one_p_figure(folder / "fig2_one_p.png", resp)
        names.append("fig2_one_p.png")
    return names


def markdown(metrics: dict, names: list[str], path: Path) -> None:
    """summary.md of an emulator's report."""
    c = metrics["chi2_r"]
    lines = [f"# Emulator `{metrics['model']['path']}` (conditioned on {', '.join(metrics['model']['params'])})", "",
             f"{len(metrics['points'])} parameter points of the {metrics['split']} split of `{metrics['store']}`, "
             f"{metrics['n_samples']} generated fields each ({metrics['sampler']}, {metrics['steps']} steps); "
             f"statistics of the {metrics['space']}.", "",
             "| sim | Ω_m | σ_8 | χ²_r generated | χ²_r floor (LOO truths) | mean abs z | bins abs z > 2 | "
             "mean log10 true / generated |", "|---|---|---|---|---|---|---|---|"]
    for p in metrics["points"]:
        lines.append(f"| {p['sim']} | {p['params']['Omega_m']:.3f} | {p['params']['sigma_8']:.3f} | "
                     f"{p['chi2_r_generated']:.2f} | {p['chi2_r_floor']:.2f} | {p['mean_abs_z']:.2f} | "
                     f"{p['frac_abs_z_above_2']:.2f} | {p['log10_mean_true']:.3f} / {p['log10_mean_gen']:.3f} |")
    lines += ["", f"χ²_r of the generated fields against their points' truths: {c['generated']:.3f} "
              f"({c['n_generated']} fields), against the truths' own leave-one-out floor {c['floor_loo_truths']:.3f}."]
    if "cv" in c:
        lines.append(f"CV set ({c['cv']['n_cv']} maps): generated {c['cv']['generated']:.3f} against the floor "
                     f"{c['cv']['floor_loo']:.3f}.")
    for name, v in metrics.get("one_p", {}).items():
        lines.append(f"1P {name}: values {', '.join(f'{x:.3g}' for x in v['values'])}; largest gap between the "
                     f"generated and simulated mean ratio to the fiducial: {v['max_abs_mean_ratio_gap']:.3f}.")
    lines += [""] + [f"![{n}]({n})" for n in names]
    path.write_text("\n".join(lines) + "\n")
