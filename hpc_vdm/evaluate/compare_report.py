"""The comparison's figures and tables: Sether+24's Fig. 2 (maps) and Fig. 3 (P(k) and cross power with
residuals), the table of every row (MSE, P(k) error and r per k band, cost), the classifier's Table 1."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from ..io import save_figure
from .compare import K_BANDS
from .posterior import log10_floor


def maps_figure(cond, truth, rows: dict, png: Path, offset: float, labels, n_rows: int = 2) -> None:
    """Per held-out map: the condition, the truth, each row's first draw and, for several draws of the first
    row, their log-space mean and the truth's z-score; log10(offset + x), one colour scale per map."""
    plt = figures.pyplot()
    names = list(rows)
    first = rows[names[0]]
    stochastic = first.shape[0] >= 2
    n = min(n_rows, truth.shape[0])
    cols = (cond is not None) + 1 + len(names) + 2 * stochastic
    fig, axes = plt.subplots(n, cols, figsize=(2.9 * cols, 2.9 * n), squeeze=False, constrained_layout=True)
    for k in range(n):
        lt = log10_floor(truth[k], offset)
        lim = (0.0, float(np.percentile(lt, 99.9)) or 1.0)
        panels = [(f"log10(1 + {labels.condition})", np.log10(1.0 + cond[k]), "magma", None)] if cond is not None else []
        panels.append((f"{labels.log_target} truth", lt, "viridis", lim))
        panels += [(name, log10_floor(d[0, k], offset), "viridis", lim) for name, d in rows.items()]
        if stochastic:
            ld = log10_floor(first[:, k], offset)
            spread = ld.std(0)
            z = np.where(spread > 0, (lt - ld.mean(0)) / np.maximum(spread, 1e-300), np.nan)
            panels += [(f"{names[0]}: mean of log", ld.mean(0), "viridis", lim), (f"{names[0]}: z-score", z, "RdBu_r", (-3, 3))]
        for ax, (title, img, cmap, vl) in zip(axes[k], panels):
            figures.map_panel(fig, ax, img, title=title if k == 0 else None, cmap=cmap, vlim=vl)
    save_figure(fig, png, dpi=70)
    plt.close(fig)


def _band(ax, k, q: dict, color: str, label: str, scale: float = 1.0, shift: float = 0.0) -> None:
    med, lo, hi = (np.asarray(q[x]) * scale - shift for x in ("median", "q25", "q75"))
    ax.plot(k, med, "-", color=color, label=label)
    ax.fill_between(k, lo, hi, color=color, alpha=0.2)


def spectra_figure(truth_curves: dict, rows: dict, png: Path, labels) -> None:
    """P(k), cross power with the truth and r(k) (top) with residuals and the pixel PDF (bottom); medians and
    25–75% bands over the test maps."""
    plt = figures.pyplot()
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(2, 3, figsize=(16, 8), constrained_layout=True)
    k = np.asarray(truth_curves["k"])
    _band(ax[0, 0], k, truth_curves["p_true"], "k", "truth")
    _band(ax[0, 1], k, truth_curves["p_true"], "k", "truth P(k)")
    for i, (name, r) in enumerate(rows.items()):
        if "curves" not in r:
            continue
        c, color = r["curves"], f"C{i}"
        kk = np.asarray(c["k"])
        _band(ax[0, 0], kk, c["p_draw"], color, name)
        _band(ax[1, 0], kk, c["transfer"], color, name, shift=1.0)
        _band(ax[0, 1], kk, c["p_cross"], color, f"{name} x truth")
        _band(ax[1, 1], kk, c["cross_ratio"], color, name, shift=1.0)
        _band(ax[0, 2], kk, c["r"], color, name)
        ax[1, 2].step(truth_curves["pdf_edges"][:-1], r["pdf_lit"], where="post", color=color, label=name)
    ax[1, 2].step(truth_curves["pdf_edges"][:-1], truth_curves["pdf_lit"], where="post", color="k", label="truth")
    for a in (ax[0, 0], ax[0, 1]):
        a.set(xscale="log", yscale="log")
    ax[0, 0].set(ylabel="P(k) of δ [(Mpc/h)²]", title=f"{labels.target} power spectrum")
    ax[0, 1].set(ylabel="P×(k) with the truth", title="cross power")
    ax[0, 2].set(xscale="log", ylabel="r(k)", title="cross-correlation coefficient", ylim=(-0.1, 1.05))
    ax[1, 0].set(xscale="log", xlabel="k [h/Mpc]", ylabel="P / P_true − 1")
    ax[1, 1].set(xscale="log", xlabel="k [h/Mpc]", ylabel="P× / P_true − 1")
    ax[1, 2].set(xlabel=f"log10 {labels.target} of lit pixels", ylabel="fraction of all pixels", yscale="log",
                 title="pixel PDF (empty pixels left out)")
    for a in (ax[1, 0], ax[1, 1]):
        a.axhline(0.0, color="k", lw=0.8)
    for a in (ax[0, 0], ax[0, 1], ax[0, 2], ax[1, 0], ax[1, 1]):
        figures.log_k_ticks(a)
    for a in ax.ravel():
        a.legend(fontsize=7)
    for a in (ax[0, 0], ax[0, 1], ax[0, 2], ax[1, 0], ax[1, 1]):
        a.xaxis.set_minor_formatter(NullFormatter())
    save_figure(fig, png, dpi=75)
    plt.close(fig)


def _fmt(v, spec: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def table(comparison: dict) -> list[str]:
    """The Markdown table of every row, Table 1 of the classifiers, and the paper's order."""
    rows, bands = comparison["rows"], list(K_BANDS)
    head = ["model", "MSE log (draws)", "MSE log (mean of draws)", "MSE log (posterior mean)"] + \
           [f"P err {b}" for b in bands] + \
           [f"r {b}" for b in bands] + ["train [s]", "draws/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        b = {x: r["bands"].get(x) or {} for x in bands}
        cost = comparison["cost"].get(name, {})
        mse = r["mse_log"]
        lines.append("| " + " | ".join([name] + [_fmt(mse.get(m)) for m in ("draws", "log_mean", "posterior_mean")]
                                       + [_fmt(b[x].get("pk_err")) for x in bands] + [_fmt(b[x].get("r")) for x in bands]
                                       + [_fmt(cost.get("train_s"), ".0f"), _fmt(cost.get("draws_per_s"), ".3g")]) + " |")
    off = comparison.get("log_offset", 1.0)
    lines += ["", f"k bands in h/Mpc over bins k ≤ k_Nyq = {comparison['k_nyquist']:.2f} h/Mpc "
              f"({comparison['pixels']}² maps of {comparison['box_mpc_h']:g} Mpc/h; bands cut there); "
              "n/a: not resolved (a band), not finite (an MSE with pixels at log10(0)). "
              "P err: mean over the band of |median P_draw/P_true − 1|; "
              f"MSE of {'log10(x)' if off == 0 else f'log10({off:g} + x)'} over all pixels (of each "
              "draw; of the mean of the draws' logs; of the posterior mean that the mean of the draws estimates, "
              "its own sampling variance removed, as a deterministic network's MSE is; the paper's order is judged "
              "on it); draws are clipped at 0 (below the empty pixel's "
              f"value); 'thresholded': draws below the smallest positive training pixel ({comparison['threshold']:.3g}) "
              "set to 0."]
    lines += _classifier_lines(comparison) + _order_lines(comparison.get("order", {}))
    return lines


def _classifier_lines(comparison: dict) -> list[str]:
    out = []
    for name, d in comparison.get("diagnostics", {}).items():
        c = d.get("classifier")
        if c:
            phase = comparison["cost"].get(name, {}).get("phase_1")
            out.append(f"| {name} | {100 * c['accuracy']:.2f}% | {100 * c['recall']:.2f}% | {100 * c['precision']:.3f}% "
                       f"| {100 * c['positive_fraction']:.2f}% | {_fmt(phase, '.0f')} |")
    if not out:
        return []
    return ["", "Classifier at its threshold on the same maps (Table 1 of Sether+24):", "",
            "| model | accuracy | recall | precision | galaxy pixels | phase-1 training [s] |", "|---|---|---|---|---|---|"] + out


def _order_lines(o: dict) -> list[str]:
    if not o:
        return []
    mse = ", ".join(f"{k} {_fmt(v)}" for k, v in o["mse"].items())
    pk = ", ".join(f"{k} {_fmt(v)}" for k, v in o["pk_err"].items())
    where = "k ≈ 20 h/Mpc" if o["k20_resolved"] else f"the band {o['pk_band']} (k ≈ 20 h/Mpc is beyond these maps' k_Nyq)"
    holds = {True: "holds", False: "does not hold",
             None: "is undecided (an MSE is not finite)"}[o["mse_order_holds"]]
    return ["", f"The paper's order: MSE VDM < CNN < HOD {holds} ({mse}); "
            f"the VDM {'is' if o['vdm_best_pk'] else 'is not'} best in P(k) at {where} ({pk})."]
