"""The end of an ``infer`` run (rank 0, every unit recorded): the posteriors, their calibration, the P(k)
baseline beside them, ``OUT.json`` and the figure ``OUT.png``.

The figure: the paper's Fig. 3 — top, the 1σ contour (Δχ² = 2.30) of several single terms and the 1/2/3σ
contours of their sum for the first map (with the NUTS samples and the baseline's contours when there are);
middle, predicted (the marginal maximum) against true Ω_m and σ_8 with 68% intervals, the baseline beside;
bottom, calibration: the HPD curve and TARP's expected coverage of the bound (grid and chains) and the baseline.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import figures
from ..data import camels
from ..data.store import read_maps
from ..inference.maps import open_for
from ..io import INFER_SUMMARY, atomic_write_text, marker, save_figure
from . import baseline
from .calibration import coverage, tarp
from .posterior import DCHI2, LEVELS, delta_chi2, grid_posterior, replica_cov, smoothed

LABELS = {"Omega_m": "Ω_m", "sigma_8": "σ_8"}


def _label(name: str) -> str:
    return LABELS.get(name, name)


def chain_summary(samples: np.ndarray, truth) -> dict:
    """Mean, std, central intervals of NUTS samples (S, 2), and whether they hold the truth."""
    out = {"mean": samples.mean(0).tolist(), "std": samples.std(0, ddof=1).tolist()}
    for level in LEVELS:
        q = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)], axis=0)           # (2, 2)
        out[f"interval_{int(level * 100)}"] = q.T.tolist()
        if truth is not None and np.all(np.isfinite(truth)):
            out[f"covers_{int(level * 100)}"] = [bool(q[0, i] <= truth[i] <= q[1, i]) for i in range(2)]
    return out


def headline(rows: list[dict], cov: dict) -> dict:
    """The figure of merit and the errors of the predictions over maps."""
    out = {"fom_median": float(np.median([r["fom"] for r in rows])),
           "sigma_median": np.median([r["std"] for r in rows], axis=0).tolist(), "coverage": cov}
    with_truth = [r for r in rows if "truth" in r]
    if with_truth:
        err = np.array([np.subtract(r["marginal_max"], r["truth"]) for r in with_truth])
        out["rms_error"] = np.sqrt((err ** 2).mean(0)).tolist()
        out["mean_error"] = err.mean(0).tolist()
    return out


def block(posts: list, truths: np.ndarray, maps, lo, hi, seed: int) -> dict:
    """Summaries of one kind of posterior over the maps: per map, headline numbers, coverage, TARP."""
    rows = [dict(post.summary(truths[i]), map=int(maps[i])) for i, post in enumerate(posts)]
    out = {"maps": rows, **headline(rows, coverage(rows))}
    known = np.all(np.isfinite(truths), axis=1)
    if known.sum() >= 2:
        pts = np.stack([np.stack(np.meshgrid(*post.axes, indexing="ij"), -1).reshape(-1, 2) for post in posts])
        weights = np.stack([post.p.ravel() for post in posts])
        out["tarp"] = tarp(pts[known], truths[known], lo, hi, weights=weights[known], seed=seed)
    return out


def summarise(cfg, p, root, kinds: dict) -> dict:
    """Every number of the run (OUT.json's body); ``kinds`` = {name: [GridPosterior per map]}."""
    f = cfg.infer
    cols = [camels.PARAM_NAMES.index(n) for n in p.names]
    truths = p.truth[:, cols]
    lo, hi = p.prior
    out = {"format": marker(INFER_SUMMARY), "params": p.names, "prior": [list(lo), list(hi)],
           "store": str(f.store or p.bundle.config.data.store), "model": str(cfg.trained.model),
           "terms": list(f.terms) or "all", "quadrature": {"times": list(p.quad.times), "width": p.quad.width,
                                                           "draws": f.noise_draws}}
    for name, posts in kinds.items():
        out[name] = block(posts, truths, p.maps, lo, hi, f.seed)
    out["bound"]["what"] = "the bound's terms averaged over the noise draws (the paper's, with fixed noise)"
    if "bound_corrected" in out:
        out["bound_corrected"]["what"] = ("the same posterior convolved with the location noise of its fixed-noise "
                                          "estimate, measured by the spread of the single-draw posteriors")
    if "chain" in root:
        chains, stats = np.asarray(root["chain"][:]), np.asarray(root["chain_stats"][:])
        known = np.all(np.isfinite(truths[:len(chains)]), axis=1)
        out["mcmc"] = {"maps": [dict(chain_summary(c, truths[i]), map=int(p.maps[i]),
                                     **dict(zip(root.attrs["chain_stats"], stats[i].tolist())))
                                for i, c in enumerate(chains)]}
        if known.sum() >= 2:
            out["mcmc"]["tarp"] = tarp(chains[known], truths[:len(chains)][known], lo, hi, seed=f.seed)
    if "baseline" in out:
        out["baseline"]["statistic"] = ("mean log10 level + ln P(k) of the log10 field in bands; cubic mean in the "
                                        "parameters from the training maps, covariance of the CV maps")
        out["fom_ratio_bound_over_baseline"] = out["bound"]["fom_median"] / out["baseline"]["fom_median"]
    return out


def finish(cfg, p, root, png: Path) -> dict:
    """Posteriors of every map (raw and noise-corrected), the baseline when infer.cv_store is set, OUT.json and
    OUT.png."""
    f = cfg.infer
    grid = tuple(f.grid)
    posts, corrected = [], []
    for i in range(len(p.maps)):
        theta, terms = root["theta"][i], root["terms"][i]
        posts.append(grid_posterior(theta, terms, grid, f.terms))
        cov = replica_cov(theta, terms, grid, f.terms)
        if cov is not None:
            corrected.append(smoothed(posts[-1], cov))
    kinds = {"bound": posts} | ({"bound_corrected": corrected} if corrected else {})
    if f.cv_store:
        path = f.store or p.bundle.config.data.store
        src, _ = open_for(p.bundle, path, "input store")
        physical = read_maps(src, p.bundle.norm.target, p.maps, path).astype(np.float64)
        kinds["baseline"], _ = baseline.run(p.bundle, p.names, physical, p.truth, f.cv_store, f.baseline_bins)
    out = summarise(cfg, p, root, kinds)
    atomic_write_text(Path(png).with_suffix(".json"), json.dumps(out, indent=1, default=float) + "\n")
    figure(out, p, root, posts, kinds.get("baseline"), png)
    return out


def figure(out: dict, p, root, posts, base_posts, png: Path) -> None:
    """The three rows of the module doc."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(3, 2, figsize=(11, 14), constrained_layout=True)
    names, cols = p.names, [camels.PARAM_NAMES.index(n) for n in p.names]
    truths = p.truth[:, cols]
    theta, terms = root["theta"][0], root["terms"][0]
    k = terms.shape[1]
    picks = sorted(set(np.linspace(0, k - 1, min(k, 7)).round().astype(int).tolist()))
    for c, j in enumerate(picks):
        post = grid_posterior(theta, terms, tuple(p.fingerprint["grid"]), [j])
        a, b = post.axes
        ax[0, 0].contour(a, b, delta_chi2(post.neg).T, levels=[DCHI2[1]], colors=[f"C{c}"])
        ax[0, 0].plot([], [], f"C{c}-", label=f"t = {p.quad.times[j]:.3f}")
    a, b = posts[0].axes
    ax[0, 1].contour(a, b, delta_chi2(posts[0].neg).T, levels=[DCHI2[s] for s in (1, 2, 3)], colors="k",
                     linestyles=["-", "--", ":"])
    ax[0, 1].plot([], [], "k-", label="bound: 1/2/3σ")
    if base_posts is not None:
        ba, bb = base_posts[0].axes
        ax[0, 1].contour(ba, bb, delta_chi2(base_posts[0].neg).T, levels=[DCHI2[1], DCHI2[2]], colors="C3",
                         linestyles=["-", "--"])
        ax[0, 1].plot([], [], "C3-", label="P(k) baseline: 1/2σ")
    if "chain" in root:
        s = root["chain"][0]
        ax[0, 1].plot(s[:, 0], s[:, 1], ".", color="C2", ms=2, alpha=0.5, label="NUTS samples")
    for a_ in ax[0]:
        if np.all(np.isfinite(truths[0])):
            a_.plot(*truths[0], "rx", ms=10, mew=2, label="truth")
        a_.set(xlabel=_label(names[0]), ylabel=_label(names[1]))
        a_.legend(fontsize=7)
    ax[0, 0].set_title(f"map {p.maps[0]}: 1σ contour of single terms of the bound")
    ax[0, 1].set_title(f"map {p.maps[0]}: the sum of the terms")
    _predicted(ax[1], out, names, truths)
    _calibration(ax[2], out)
    save_figure(fig, png, dpi=80)
    plt.close(fig)


def _predicted(axes, out: dict, names, truths) -> None:
    sources = [("bound", out["bound"]["maps"], "C0", 0.0)]
    if "baseline" in out:
        sources.append(("P(k) baseline", out["baseline"]["maps"], "C3", 0.15))
    for i, a_ in enumerate(axes):
        span = [np.nanmin(truths[:, i]), np.nanmax(truths[:, i])]
        for label, rows, color, shift in sources:
            t = truths[:, i] + shift * 0.02 * (span[1] - span[0] + 1e-9)
            pred = np.array([r["marginal_max"][i] for r in rows])
            iv = np.array([r["interval_68"][i] for r in rows])
            a_.errorbar(t, pred, yerr=[np.maximum(pred - iv[:, 0], 0), np.maximum(iv[:, 1] - pred, 0)], fmt="o",
                        color=color, ms=3, capsize=2, label=label)
        lo, hi = np.nanmin(truths[:, i]), np.nanmax(truths[:, i])
        pad = 0.05 * (hi - lo + 1e-3)
        a_.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k:", lw=0.8)
        a_.set(xlabel=f"true {_label(names[i])}", ylabel=f"predicted {_label(names[i])} (68%)")
        a_.legend(fontsize=8)


def _calibration(axes, out: dict) -> None:
    rows = [("bound (grid)", out["bound"], "C0")]
    if "bound_corrected" in out:
        rows.append(("bound, noise-corrected", out["bound_corrected"], "C4"))
    if "baseline" in out:
        rows.append(("P(k) baseline", out["baseline"], "C3"))
    for label, block, color in rows:
        cov = block["coverage"]
        if cov.get("n"):
            curve = cov["hpd_curve"]
            axes[0].plot(curve["alpha"], curve["observed"], "-", color=color,
                         label=f"{label}: 68% {cov['hpd_68']:.2f}, 95% {cov['hpd_95']:.2f} ({cov['n']} maps)")
        if "tarp" in block:
            axes[1].plot(block["tarp"]["alpha"], block["tarp"]["ecp"], "-", color=color, label=label)
    if "mcmc" in out and "tarp" in out["mcmc"]:
        axes[1].plot(out["mcmc"]["tarp"]["alpha"], out["mcmc"]["tarp"]["ecp"], "-", color="C2", label="bound (NUTS)")
    for a_, title in zip(axes, ("truth inside the HPD region of credibility α", "TARP expected coverage")):
        a_.plot([0, 1], [0, 1], "k:", lw=0.8)
        if title.startswith("TARP") and "tarp" in out["bound"]:
            t = out["bound"]["tarp"]
            alpha, band = np.asarray(t["alpha"]), np.asarray(t["band_2sigma"])
            a_.fill_between(alpha, alpha - band, alpha + band, color="0.85", label="±2σ of a calibrated posterior")
        a_.set(xlabel="credibility α", ylabel="observed coverage", title=title)
        a_.legend(fontsize=7)
