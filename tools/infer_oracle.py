"""Calibration of the bound-on-a-grid posterior against a known likelihood (JSON on stdout).

Gaussian random fields whose P(k) amplitude and slope are the two parameters (``ParamFieldOracle``), the exact
denoiser in place of the network, truths drawn from the prior U(0.1, 0.9)^2, one field each, the grid over
truth ± 5σ (Fisher) clipped to the prior. For each setting of terms K and noise draws D it reports the scatter of
the fixed-noise estimate's posterior mean about the exact likelihood's (in posterior σ), and the coverage of the
marginal 68%/95% intervals, of the 2D HPD regions, TARP's largest gap and the median 68% half-width over the
Fisher σ (the Fisher matrix does not depend on θ here) of the fields whose truth ± 2σ lies inside the prior (the
prior truncates the others' posteriors) for three posteriors on the same fields: the exact Gaussian likelihood,
the bound's (raw) and the bound's convolved with its measured location noise.

    python tools/infer_oracle.py --fields 160 --settings 16x4,64x1
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hpc_vdm.diffusion import ParamFieldOracle
from hpc_vdm.emulate import calibration
from hpc_vdm.emulate.grid import Quadrature, bound_terms, centred, term_noise
from hpc_vdm.emulate.posterior import GridPosterior, grid_posterior, replica_cov, smoothed

PRIOR = ((0.1, 0.1), (0.9, 0.9))
INTERIOR = 2.0  # the width check's fields: truth +- this many Fisher sigmas inside the prior (not truncated by it)


def exact(oracle, x, theta) -> np.ndarray:
    """−ln N(x; 0, P_θ) + const of one field at grid points theta (G, 2), from its FFT."""
    x2 = torch.fft.fft2(x.double()[0, 0]).abs() ** 2 / x[0, 0].numel()
    ln_p = oracle.log_power(theta)
    return (0.5 * (x2[None] / ln_p.exp() + ln_p).sum((1, 2))).numpy()


def run(fields: int, pixels: int, n: int, times: int, draws: int, seed: int) -> dict:
    oracle = ParamFieldOracle((pixels, pixels))
    rng = np.random.default_rng(seed)
    rows = {"exact": [], "bound": [], "bound_corrected": []}
    tarp_in = {k: ([], []) for k in rows}
    widths = {k: [] for k in rows}  # 68% half-widths over the Fisher sigma, per field
    truths, offsets, interior = [], [], []
    t0 = time.time()
    for i in range(fields):
        truth = rng.uniform(PRIOR[0][0], PRIOR[1][0], 2)
        sigma = torch.linalg.inv(oracle.fisher(torch.as_tensor(truth)[None])).diag().sqrt().numpy()
        x = oracle.draw(torch.as_tensor(truth)[None], generator=torch.Generator().manual_seed(1000 + i))
        box = centred(truth, 5 * sigma, (n, n), PRIOR, ["u_A", "u_n"])
        theta = torch.from_numpy(box.points())
        eps = term_noise((pixels, pixels), seed=0, key=i, n_times=times, draws=draws)
        terms = bound_terms(oracle, x, theta, Quadrature.midpoints(times), eps).numpy()
        posts = {"exact": GridPosterior(box.axes(), exact(oracle, x, theta).reshape(n, n)),
                 "bound": grid_posterior(box.points(), terms, (n, n))}
        cov = replica_cov(box.points(), terms, (n, n))
        if cov is not None:
            posts["bound_corrected"] = smoothed(posts["bound"], cov)
        for name, post in posts.items():
            rows[name].append(post.summary(truth))
            widths[name].append([(b - a) / 2 / s for (a, b), s in zip(rows[name][-1]["interval_68"], sigma)])
            tarp_in[name][0].append(post.p.ravel())
            tarp_in[name][1].append(box.points())
        s_b, s_e = rows["bound"][-1], rows["exact"][-1]
        offsets.append((np.subtract(s_b["mean"], s_e["mean"])) / np.asarray(s_e["std"]))
        truths.append(truth)
        interior.append((truth - INTERIOR * sigma > PRIOR[0]) & (truth + INTERIOR * sigma < PRIOR[1]))
    out = {"fields": fields, "pixels": pixels, "grid": n, "times": times, "draws": draws,
           "seconds": round(time.time() - t0, 1),
           "fisher_sigma_at_centre": torch.linalg.inv(oracle.fisher(torch.tensor([[0.5, 0.5]]))).diag().sqrt().tolist(),
           "interior_fields": np.sum(interior, axis=0).tolist(),
           "mean_offset_rms_in_sigma": np.sqrt(np.mean(np.square(offsets), axis=0)).tolist()}
    for name, r in rows.items():
        if not r:
            continue
        c = calibration.coverage(r)
        w, pts = tarp_in[name]
        t = calibration.tarp(np.stack(pts), np.stack(truths), *PRIOR, weights=np.stack(w))
        out[name] = {k: c[k] for k in ("marginal_68", "marginal_95", "hpd_68", "hpd_95", "mean_abs_z")}
        out[name]["tarp_max_gap"] = t["max_gap"]
        w, inner = np.asarray(widths[name]), np.asarray(interior)
        out[name]["width68_over_fisher_median"] = [float(np.median(w[inner[:, j], j])) if inner[:, j].any()
                                                   else None for j in range(2)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fields", type=int, default=160)
    p.add_argument("--pixels", type=int, default=24)
    p.add_argument("--grid", type=int, default=21)
    p.add_argument("--settings", default="16x4", help="comma-separated TIMESxDRAWS")
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args()
    results = [run(a.fields, a.pixels, a.grid, *(int(v) for v in s.split("x")), a.seed) for s in a.settings.split(",")]
    print(json.dumps({"tool": "infer_oracle", "results": results}, indent=1))


if __name__ == "__main__":
    main()
