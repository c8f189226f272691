"""The report's figures and its Markdown summary: the papers' Fig. 1 and Fig. 2, calibration, 1P, suites, tiles.

Every function takes arrays or the metrics dict and writes one PNG (headless matplotlib); :func:`markdown`
writes the summary that sits beside them and links them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import figures
from ..io import save_figure
from ..spectra import stats
from ..spectra.scores import BANDS
from . import calibration as cal
from . import significance as sig
from .baselines import LINEAR
from .posterior import log10_floor


@dataclass(frozen=True)
class Labels:
    """What the maps are, for titles: the condition and target fields, and whether draws are samples."""

    condition: str = "Mstar"
    target: str = "Mcdm"
    deterministic: bool = False
    log_offset: float = 0.0      # the target's log space: log10(x + log_offset)

    def cond_title(self) -> str:
        return f"log10(1 + {self.condition}) condition" if self.condition else ""

    @property
    def log_target(self) -> str:
        return f"log10(1 + {self.target})" if self.log_offset == 1 else (
            f"log10({self.target} + {self.log_offset:g})" if self.log_offset else f"log10 {self.target}")

    @property
    def draw(self) -> str:
        return "prediction" if self.deterministic else "sample"


def fig1(cond, truth, draws, png: Path, labels: Labels = Labels(), rows: int = 3) -> None:
    """The papers' Fig. 1, one row per map: condition, truth, one draw; for samples also their mean, std and
    the z-score of the truth (log10 space)."""
    plt = figures.pyplot()
    log_t, log_d = log10_floor(truth, labels.log_offset), log10_floor(draws, labels.log_offset)
    n = min(rows, truth.shape[0])
    stochastic = not labels.deterministic and draws.shape[0] >= 2
    cols = (cond is not None) + 2 + 3 * stochastic
    fig, axes = plt.subplots(n, cols, figsize=(3.2 * cols, 3.3 * n), squeeze=False, constrained_layout=True)
    t = labels.log_target
    for k in range(n):
        lo, hi = np.percentile(log_t[k], [1, 99.5])
        panels = [(labels.cond_title(), np.log10(cond[k] + 1.0), "magma", None)] if cond is not None else []
        panels += [(f"{t} truth", log_t[k], "viridis", (lo, hi)),
                   (f"{t} {labels.draw}", log_d[0, k], "viridis", (lo, hi))]
        if stochastic:
            spread = log_d[:, k].std(0)
            z = np.where(spread > 0, (log_t[k] - log_d[:, k].mean(0)) / np.maximum(spread, 1e-300), np.nan)
            panels += [("posterior mean of log10", log_d[:, k].mean(0), "viridis", (lo, hi)),
                       ("posterior std of log10 [dex]", spread, "cividis", None),
                       ("z-score (log10)", z, "RdBu_r", (-3, 3))]
        for ax, (title, img, cmap, lim) in zip(axes[k], panels):
            figures.map_panel(fig, ax, img, title=title if k == 0 else None, cmap=cmap, vlim=lim)
    save_figure(fig, png, dpi=70)
    plt.close(fig)


def fig2(truth, draws, c: dict, png: Path, labels: Labels = Labels()) -> None:
    """Pixel PDF (10-90% bands), P(k) of the condition, truth and draws, r(k) (draws and condition vs the
    truth), transfer ratio: the papers' Fig. 2, from :func:`hpc_vdm.evaluate.analysis.curves`."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(18, 3.9), constrained_layout=True)
    lt = log10_floor(truth, labels.log_offset)
    edges = np.linspace(lt.min() - 0.2, lt.max() + 0.2, 41)
    centres, pdf_t, _ = stats.pixel_pdf(truth, edges)
    _, _, b = stats.pixel_pdf(draws.reshape(-1, *truth.shape[1:]), edges)
    ax[0].plot(centres, pdf_t.mean(0), "k-", label="truth")
    ax[0].plot(centres, b.median, "C1--", label=f"{labels.draw}s")
    ax[0].fill_between(centres, b.lo, b.hi, color="C1", alpha=0.3)
    ax[0].set(xlabel=f"log10 {labels.target} [(M☉/h)/(Mpc/h)²]", ylabel="PDF", yscale="log")
    k = c["k"]
    if "p_cond" in c:
        ax[1].loglog(k, np.median(c["p_cond"], 0), "C3:", label=f"{labels.condition} (condition)")
    ax[1].loglog(k, np.median(c["p_true"], 0), "k-", label=f"true {labels.target}")
    pb = stats.bands(c["p_draws"])
    ax[1].loglog(k, pb.median, "C1--", label=f"{labels.draw}s")
    ax[1].fill_between(k, pb.lo, pb.hi, color="C1", alpha=0.3)
    ax[1].set(xlabel="k [h/Mpc]", ylabel="P(k) of δ [(Mpc/h)²]")
    rb = stats.bands(c["r_draws"])
    ax[2].semilogx(k, rb.median, "C1-", label=f"{labels.draw}s vs truth")
    ax[2].fill_between(k, rb.lo, rb.hi, color="C1", alpha=0.3)
    if "r_cond" in c:
        ax[2].semilogx(k, np.median(c["r_cond"], 0), "C3:", label="condition vs truth")
    ax[2].set(xlabel="k [h/Mpc]", ylabel="r(k)", ylim=(min(0.0, rb.lo.min()), 1.05))
    tb = stats.bands(c["ratio"].reshape(-1, k.size))
    ax[3].semilogx(k, tb.median, "C2-")
    ax[3].fill_between(k, tb.lo, tb.hi, color="C2", alpha=0.3)
    ax[3].axhline(1.0, color="k", lw=0.8)
    inside = 0.4 < np.nanmin(tb.median) and np.nanmax(tb.median) < 1.6
    ax[3].set(xlabel="k [h/Mpc]", ylabel=f"P_{labels.draw} / P_true", ylim=(0.4, 1.6) if inside else None,
              yscale="linear" if inside else "log")
    for a in ax[:3]:
        a.legend(fontsize=8)
    for a in ax[1:]:
        figures.log_k_ticks(a)
    save_figure(fig, png, dpi=80)
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
    save_figure(fig, png, dpi=80)
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
    figures.log_k_ticks(ax)
    save_figure(fig, png, dpi=80)
    plt.close(fig)


ROWS = (("samples", "{draw}s"), ("posterior_mean", "posterior mean"),
        ("posterior_mean_limit", "posterior mean, S → ∞ (estimated)"), ("condition", "the condition itself"))


CONDITION_ROW, LINEAR_ROW = dict(ROWS)["condition"], f"baseline: {LINEAR}"


def row_sources(draw: str) -> dict[str, str]:
    """{label: source} of the rows that are one estimator for the leads: the evaluated model's own (its draws,
    their mean, the mean's limit), and the condition with its linear transfer function (an isotropic filter of the
    condition: the same r(k) in every k bin)."""
    return {label.format(draw=draw): "model" for who, label in ROWS if who != "condition"} | {
        CONDITION_ROW: "condition", LINEAR_ROW: "condition"}


def score_rows(m: dict, draw: str) -> dict[str, dict]:
    """{label: band scores} of the model's draws, their mean, the condition and every baseline."""
    rows = {label.format(draw=draw): m[who] for who, label in ROWS if who in m}
    return rows | {f"baseline: {name}": s for name, s in m.get("baselines", {}).items()}


def _spectra_table(m: dict, draw: str) -> list[str]:
    lines = ["| space | quantity | " + " | ".join(BANDS) + " |", "|---|---|" + "---|" * len(BANDS)]
    samples_label = dict(ROWS)["samples"].format(draw=draw)
    for space in ("overdensity", "log"):
        for q, key in (("r(k)", "r"), ("P ratio", "pk_ratio")):
            for label, s in score_rows(m, draw).items():
                if label == CONDITION_ROW and key == "pk_ratio":
                    continue
                lines.append(f"| {space} | {q} of {label} | " + " | ".join(f"{s[space][b][key]:.3f}" for b in BANDS)
                             + " |")
                if key == "pk_ratio" and label == samples_label and "samples_if_calibrated" in m:
                    c = m["samples_if_calibrated"][space]
                    lines.append(f"| {space} | P ratio a calibrated posterior's {draw}s score (each draw as the "
                                 "truth) | " + " | ".join(f"{c[b]['pk_ratio']:.3f}" for b in BANDS) + " |")
    return lines


def leads_lines(leads: dict) -> list[str]:
    """The report's one line on which row has the highest r(k) in each band and space, by how much over the best
    other estimator (± its standard error over the simulations, :mod:`.significance`)."""
    spaces = [space for space in sig.SPACES if space in leads]
    if not spaces:
        return []
    line = "; ".join(f"{space}: " + ", ".join(f"{b} {sig.lead_phrase(v)}" for b, v in leads[space].items())
                     for space in spaces)
    left = (f" Not ranked (a map left empty): {', '.join(leads['not_ranked'])}." if leads["not_ranked"] else "")
    return ["", f"Highest r(k), with its lead over the best other estimator ± the standard error of that paired "
                f"difference over the {leads['n_sims']} simulations of the {leads['n_maps']} maps ('ahead' beyond "
                f"{leads['z_ahead']:g} of them, else 'level'): {line}.{left}"]


def _calibration_lines(m: dict) -> list[str]:
    z = m["zscore_log_pixel"]
    want = (f"expected {z['expected_std']:.3f}" if np.isfinite(z["expected_std"])
            else "no finite expectation: a t-variate with ≤ 2 degrees of freedom has infinite variance")
    lines = ["", "## Calibration", "", f"Pixel z-score of the log10 target: mean {z['mean']:.3f} (expected 0), std "
             f"{z['std']:.3f} ({want} for {m['n_samples']} samples).", "",
             "Observed coverage ± its standard error over the simulations (the ranks of one simulation counted as "
             "correlated) / its exact expectation:", "",
             "| quantity | 68% observed / exact expected | 95% observed / exact expected | max curve gap |",
             "|---|---|---|---|"]
    for name, c in m["calibration"].items():
        cov = " | ".join(f"{x['observed']:.3f}" + (f" ± {x['observed_se']:.3f}" if "observed_se" in x else "")
                         + f" / {x['expected']:.3f}" for x in c["coverage"])
        lines.append(f"| {name} ({c['n']}) | {cov} | {c['curve_max_gap']:.3f} |")
    off = m["map_level_offsets_dex"]
    return lines + ["", f"Map mean level: truth − posterior mean {off['truth_minus_mean']:+.3f} dex on average, "
                    f"rms {off['rms_truth_minus_mean']:.3f} dex, against a sample spread of "
                    f"{off['sample_spread']:.3f} dex."]


def _panel_lines(metrics: dict) -> list[str]:
    lines = []
    for key, title in (("one_p", "1P set: drawn / true P(k) of δ"), ("cross_suite", "Other suites")):
        if key in metrics:
            lines += ["", f"## {title}", "", "| maps | P ratio (median over k ≤ k_Nyq) | mean r(k) | n |",
                      "|---|---|---|---|"]
            lines += [f"| {name} | {v['pk_ratio_median']:.3f} | {v['r_mean']:.3f} | {len(v['maps'])} |"
                      for name, v in metrics[key].items()]
    if "tiled" in metrics:
        t = metrics["tiled"]
        bands = list(t["pk_ratio_by_band"])
        rows = []
        if "tiled_over_whole_pk_ratio_by_band" in t:
            rows.append(("the tiled slab / the same slab drawn whole (same noise)",
                         t["tiled_over_whole_pk_ratio_by_band"]))
        ref = t.get("reference", "held-out maps")
        rows.append((f"the slab's condition / the conditions of the {ref}", t.get("cond_pk_ratio_by_band")))
        rows.append((f"the tiled slab's draws / the truths of the {ref}", t["pk_ratio_by_band"]))
        whole = (f"rms(tiled − whole) of log10 = {t['tiled_minus_whole_rms_over_spread']:.2g} of the posterior spread"
                 if "tiled_minus_whole_rms_over_spread" in t else f"the slab was {t.get('whole', 'not drawn whole')}")
        lines += ["", f"## Tiled {t['volume']} slab ({t['slab_pixels']}², {t['samples']} draws)", "",
                  f"P(k) of δ, median per band. Tiling against the whole field: {whole}. The other two rows compare "
                  "across volumes: a condition ratio far from 1 says the slab's input is unlike the training maps, and "
                  "the draws' ratio then measures that shift and the cosmology, not the tiling.", "",
                  "| ratio | " + " | ".join(bands) + " |", "|---|" + "---|" * len(bands)]
        lines += [f"| {name} | " + " | ".join(f"{v[b]:.3f}" for b in bands) + " |" for name, v in rows if v]
    return lines


def markdown(metrics: dict, figures_: list[str], path: Path) -> None:
    """summary.md: the headline numbers in tables, each with its space, and the figures."""
    m = metrics["posterior"]
    det = m.get("deterministic", False)
    clip = metrics.get("clip_log")
    what = ("a deterministic model: one prediction per map, scored against the truth (no posterior, no "
            "calibration)" if det else f"{m['n_samples']} posterior samples per map")
    sampler = (f", {metrics.get('sampler', 'ancestral')} with {metrics['steps']} network evaluations"
               + (f", x̂ clipped to log10 {clip[0]:g} … {clip[1]:g}" if clip else ""))
    lines = [f"# Evaluation of `{metrics['model']['path']}` ({metrics['model'].get('kind', 'vdm')})", "",
             f"{m['n_maps']} held-out maps ({metrics['split']} split of `{metrics['store']}`, spread over "
             f"{metrics['n_sims']} simulations); {what}" + ("" if det else sampler) + ".",
             "", "## Spectra (k bands up to k_Nyq)", ""] + _spectra_table(m, "prediction" if det else "sample")
    lines += leads_lines(m.get("r_leads", {}))
    if "calibration" in m:
        lines += _calibration_lines(m)
    if "chi2_r" in m:
        lines.append(f"Reduced χ² of the drawn P(k) against CV truths (leave-one-out): {m['chi2_r']['samples']:.3f} "
                     f"(truths among themselves: {m['chi2_r']['truths_floor']:.3f}).")
    lines += _panel_lines(metrics)
    if "comparison" in metrics:
        from .compare_report import table

        lines += ["", "## Comparison on the same maps", ""] + table(metrics["comparison"])
    lines += [""] + [f"![{f}]({f})" for f in figures_]
    path.write_text("\n".join(lines) + "\n")
