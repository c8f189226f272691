"""The report's figures and its Markdown summary: the papers' Fig. 1 and Fig. 2, calibration, 1P, suites, tiles.

Every function takes arrays or the metrics dict and writes one PNG (headless matplotlib); :func:`markdown`
writes the summary that sits beside them and links them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from ..spectra import stats
from . import calibration as cal
from .posterior import BANDS


def fig1(cond, truth, draws, png: Path, rows: int = 3) -> None:
    """Stellar map, true DM, one sample, posterior mean, std and z-score (log10 space) per row."""
    plt = figures.pyplot()
    log_t, log_d = np.log10(truth), np.log10(draws)
    n = min(rows, truth.shape[0])
    fig, axes = plt.subplots(n, 6, figsize=(19, 3.3 * n), squeeze=False, constrained_layout=True)
    for k in range(n):
        lo, hi = np.percentile(log_t[k], [1, 99.5])
        z = (log_t[k] - log_d[:, k].mean(0)) / np.maximum(log_d[:, k].std(0), 1e-12)
        panels = [("log10(1 + M*) condition", np.log10(cond[k] + 1.0), "magma", None),
                  ("log10 M_cdm truth", log_t[k], "viridis", (lo, hi)),
                  ("log10 M_cdm sample", log_d[0, k], "viridis", (lo, hi)),
                  ("posterior mean of log10", log_d[:, k].mean(0), "viridis", (lo, hi)),
                  ("posterior std of log10 [dex]", log_d[:, k].std(0), "cividis", None),
                  ("z-score (log10)", z, "RdBu_r", (-3, 3))]
        for ax, (title, img, cmap, lim) in zip(axes[k], panels):
            figures.map_panel(fig, ax, img, title=title if k == 0 else None, cmap=cmap, vlim=lim)
    fig.savefig(png, dpi=70)
    plt.close(fig)


def fig2(truth, draws, c: dict, png: Path) -> None:
    """Pixel PDF (10-90% bands), P(k) of stars/true/sampled DM, r(k) (samples and stars vs DM), transfer ratio."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(18, 3.9), constrained_layout=True)
    edges = np.linspace(np.log10(truth).min() - 0.2, np.log10(truth).max() + 0.2, 41)
    centres, pdf_t, _ = stats.pixel_pdf(truth, edges)
    _, _, b = stats.pixel_pdf(draws.reshape(-1, *truth.shape[1:]), edges)
    ax[0].plot(centres, pdf_t.mean(0), "k-", label="truth")
    ax[0].plot(centres, b.median, "C1--", label="samples")
    ax[0].fill_between(centres, b.lo, b.hi, color="C1", alpha=0.3)
    ax[0].set(xlabel="log10 M_cdm [(M☉/h)/(Mpc/h)²]", ylabel="PDF", yscale="log")
    k = c["k"]
    for key, style, label in (("p_stars", "C3:", "stars"), ("p_true", "k-", "true DM")):
        ax[1].loglog(k, np.median(c[key], 0), style, label=label)
    pb = stats.bands(c["p_draws"])
    ax[1].loglog(k, pb.median, "C1--", label="sampled DM")
    ax[1].fill_between(k, pb.lo, pb.hi, color="C1", alpha=0.3)
    ax[1].set(xlabel="k [h/Mpc]", ylabel="P(k) of δ [(Mpc/h)²]")
    rb = stats.bands(c["r_draws"])
    ax[2].semilogx(k, rb.median, "C1-", label="samples vs truth")
    ax[2].fill_between(k, rb.lo, rb.hi, color="C1", alpha=0.3)
    ax[2].semilogx(k, np.median(c["r_stars"], 0), "C3:", label="stars vs DM")
    ax[2].set(xlabel="k [h/Mpc]", ylabel="r(k)", ylim=(min(0.0, rb.lo.min()), 1.05))
    tb = stats.bands(c["ratio"].reshape(-1, k.size))
    ax[3].semilogx(k, tb.median, "C2-")
    ax[3].fill_between(k, tb.lo, tb.hi, color="C2", alpha=0.3)
    ax[3].axhline(1.0, color="k", lw=0.8)
    inside = 0.4 < np.nanmin(tb.median) and np.nanmax(tb.median) < 1.6
    ax[3].set(xlabel="k [h/Mpc]", ylabel="P_sample / P_true", ylim=(0.4, 1.6) if inside else None,
              yscale="linear" if inside else "log")
    for a in ax[:3]:
        a.legend(fontsize=8)
    for a in ax[1:]:
        _plain_minor_ticks(a)
    fig.savefig(png, dpi=80)
    plt.close(fig)


def calibration_figure(ranks: dict, n_samples: int, png: Path) -> None:
    """Observed against expected coverage of central intervals, per quantity (pixels, map levels, P bands)."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.6), constrained_layout=True)
    for name, rank in ranks.items():
        e, o = cal.calibration_curve(rank, n_samples)
        ax.plot(np.r_[0, e], np.r_[0, o], ".-", label=f"{name} ({np.size(rank)})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="expected coverage (exact, S + 1 ranks)", ylabel="observed coverage",
           title=f"rank calibration, {n_samples} samples")
    ax.legend(fontsize=7)
    fig.savefig(png, dpi=80)
    plt.close(fig)


def ratio_panel(k, groups: dict, png: Path, title: str, ylabel: str = "P_sample / P_true") -> None:
    """One line with a 10-90% band per group: {label: (n, nk) ratios or r}."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    for i, (label, values) in enumerate(groups.items()):
        b = stats.bands(np.atleast_2d(values))
        ax.semilogx(k, b.median, f"C{i}-", label=label)
        ax.fill_between(k, b.lo, b.hi, color=f"C{i}", alpha=0.2)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="k [h/Mpc]", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    _plain_minor_ticks(ax)
    fig.savefig(png, dpi=80)
    plt.close(fig)


def _plain_minor_ticks(ax) -> None:
    """No labels on the minor ticks of a log axis (on a short k range matplotlib labels every one, overlapping)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def markdown(metrics: dict, figures_: list[str], path: Path) -> None:
    """summary.md: the headline numbers in tables, each with its space, and the figures."""
    m = metrics["posterior"]
    lines = [f"# Evaluation of `{metrics['model']['path']}`", "",
             f"{m['n_maps']} held-out maps ({metrics['split']} split of `{metrics['store']}`, spread over "
             f"{metrics['n_sims']} simulations), {m['n_samples']} samples each, {metrics['steps']} sampler steps.",
             "", "## Spectra (k bands up to k_Nyq)", "",
             "| space | quantity | " + " | ".join(BANDS) + " |", "|---|---|" + "---|" * len(BANDS)]
    for who in ("samples", "posterior_mean", "stars_vs_dm"):
        for space in ("overdensity", "log"):
            for q, key in (("r(k)", "r"), ("P ratio", "pk_ratio")):
                if who == "stars_vs_dm" and key == "pk_ratio":
                    continue
                row = " | ".join(f"{m[who][space][b][key]:.3f}" for b in BANDS)
                lines.append(f"| {space} | {q} of {who.replace('_', ' ')} | {row} |")
    z = m["zscore_log_pixel"]
    lines += ["", "## Calibration", "", f"Pixel z-score of log10 M_cdm: mean {z['mean']:.3f} (expected 0), std "
              f"{z['std']:.3f} (expected {z['expected_std']:.3f} for {m['n_samples']} samples).", "",
              "| quantity | 68% observed / exact expected | 95% observed / exact expected | max curve gap |",
              "|---|---|---|---|"]
    for name, c in m["calibration"].items():
        cov = " | ".join(f"{x['observed']:.3f} / {x['expected']:.3f}" for x in c["coverage"])
        lines.append(f"| {name} ({c['n']}) | {cov} | {c['curve_max_gap']:.3f} |")
    off = m["map_level_offsets_dex"]
    lines += ["", f"Map mean level: truth − posterior mean {off['truth_minus_mean']:+.3f} dex on average, "
              f"rms {off['rms_truth_minus_mean']:.3f} dex, against a sample spread of {off['sample_spread']:.3f} dex."]
    if "chi2_r" in m:
        lines.append(f"Reduced χ² of sampled P(k) against CV truths (leave-one-out): {m['chi2_r']['samples']:.3f} "
                     f"(truths among themselves: {m['chi2_r']['truths_floor']:.3f}).")
    for key, title in (("one_p", "1P set: sampled / true P(k) of δ"), ("cross_suite", "Other suites")):
        if key in metrics:
            lines += ["", f"## {title}", "", "| maps | P ratio (median over k ≤ k_Nyq) | mean r(k) | n |", "|---|---|---|---|"]
            lines += [f"| {name} | {v['pk_ratio_median']:.3f} | {v['r_mean']:.3f} | {len(v['maps'])} |"
                      for name, v in metrics[key].items()]
    if "tiled" in metrics:
        t = metrics["tiled"]
        lines += ["", f"## Tiled {t['volume']} slab ({t['slab_pixels']}², {t['samples']} samples)", "",
                  "P(k) of δ of the tiled slab's samples / median P(k) of the held-out whole maps' truths:", "",
                  "| " + " | ".join(t["pk_ratio_by_band"]) + " | all |", "|" + "---|" * (len(t["pk_ratio_by_band"]) + 1),
                  "| " + " | ".join(f"{v:.3f}" for v in t["pk_ratio_by_band"].values())
                  + f" | {t['pk_ratio_to_whole_truths_median']:.3f} |"]
    lines += [""] + [f"![{f}]({f})" for f in figures_]
    path.write_text("\n".join(lines) + "\n")
