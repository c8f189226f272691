#!/usr/bin/env python
"""Samplers against the exact Gaussian-field oracle: P(k) per band and pixel variance against NFE (JSON [+ PNG]).

    python tools/sampler_oracle.py [--size 64] [--nfe 8 16 32 64] [--ancestral 50 100 250 1000]
                                   [--mc-draws 2000] [--figure sampler_oracle.png]

The oracle (hpc_vdm.diffusion.oracle) is a periodic Gaussian random field with a given P(k), unit pixel
variance, and its exact optimal denoiser ε̂ = σ z / (α² P + σ²) mode by mode, on the default γ from −13.3 to
13.3. Each sampler's expected power of z_0 is computed exactly (its response to every draw, mode by mode) and
divided by the true α_0² P + σ_0², in three bands up to the Nyquist frequency k_N (<k_N/4, k_N/4–k_N/2,
k_N/2–k_N) and in pixel variance. Spectra: power laws P ∝ (k² + k_min²)^(slope/2) with a white small-scale
floor (slopes −2, −2.5, −3, like log dark-matter maps), a bump on the −2.5 law and a broken power law.

Samplers: hpc_vdm's (ancestral, DPM-Solver++ 2M/3M in ODE and SDE form, UniPC) on the λ-uniform grid
(linspace in t), plus EDM's Heun (dx/d(σ/α) = ε̂; NFE = 2 n − 1) on that grid and on EDM's ρ = 7 grid, which
only this script carries. ``cheapest_nfe``: the fewest NFE (scanned 4 … --max-nfe) with every band and the
variance within --target of 1 on every spectrum. ``--mc-draws`` adds a Monte-Carlo check of the exact
numbers with real draws through hpc_vdm.diffusion.sample (ratios and standard errors).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys

import torch

from hpc_vdm.diffusion import DEFAULT_SAMPLER, DEFAULT_STEPS, SAMPLERS, sample, sample_loop, time_grid
from hpc_vdm.diffusion.oracle import (BANDS, GaussianFieldOracle, bumped, exact_power_ratios, expected_power,
                                      normalised, power_law, power_ratios, wavenumber)
from hpc_vdm.diffusion.schedule import alpha_sigma

EXTRA = ("heun", "heun_edm7")  # tried here only


def spectra(n: int) -> dict[str, torch.Tensor]:
    """Per-mode P (n, n), unit pixel variance: three power laws, a bump and a broken power law."""
    shape, k_min, floor = (n, n), 1.0 / n, 0.05
    out = {f"power_law_{s:g}": power_law(shape, slope=s, k_min=k_min, floor=floor) for s in (-2.0, -2.5, -3.0)}
    out["bump"] = bumped(out["power_law_-2.5"], k_peak=0.15, width_dex=0.15, amplitude=10.0)
    k2 = wavenumber(shape) ** 2 + k_min ** 2
    k_b = 0.1  # slope −1 below k_b, −3.5 above, continuous, plus the floor
    broken = torch.where(k2 < k_b ** 2, (k2 / k_b ** 2) ** -0.5, (k2 / k_b ** 2) ** -1.75)
    out["broken_power_law"] = normalised(broken + floor * broken.min())
    return out


def heun_loop(eps_fn, z, gammas):
    """EDM's deterministic Heun on x = z/α against σ/α = exp(γ/2) (dx/d(σ/α) = ε̂); Euler on the last step."""
    n = len(gammas) - 1
    for i in range(n):
        g_t, g_s = gammas[i].double(), gammas[i + 1].double()
        (a_t, _), (a_s, _) = alpha_sigma(g_t), alpha_sigma(g_s)
        d_sigma = torch.exp(g_s / 2) - torch.exp(g_t / 2)
        d = eps_fn(z, gammas[i])
        x_s = z / a_t + d_sigma * d
        if i < n - 1:
            x_s = z / a_t + d_sigma * (d + eps_fn(a_s * x_s, gammas[i + 1])) / 2
        z = a_s * x_s
    return z


def edm_times(n: int, gamma_0: float, gamma_1: float, rho: float = 7.0) -> torch.Tensor:
    """(n + 1,) times 1 -> 0 of EDM's grid σ_i/α_i = (s_1^(1/ρ) + i/n (s_0^(1/ρ) − s_1^(1/ρ)))^ρ, s = σ/α at
    the ends (γ linear in t)."""
    s_1, s_0 = math.exp(gamma_1 / 2), math.exp(gamma_0 / 2)
    u = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
    gamma = 2 * rho * torch.log(s_1 ** (1 / rho) + u * (s_0 ** (1 / rho) - s_1 ** (1 / rho)))
    return (gamma - gamma_0) / (gamma_1 - gamma_0)


def evaluate(oracle: GaussianFieldOracle, sampler: str, nfe: int) -> dict:
    """Exact ratios of ``sampler`` at ``nfe`` network evaluations (Heun: the nearest odd NFE ≤ nfe + 1)."""
    g_0, g_1 = (oracle.gamma(torch.tensor(t, dtype=torch.float64)).item() for t in (0.0, 1.0))
    if sampler in EXTRA:
        n = (nfe + 1) // 2
        times = time_grid(n) if sampler == "heun" else edm_times(n, g_0, g_1)
        gammas = oracle.gamma(times).detach()
        out = exact_power_ratios(oracle, lambda e, z, nf: heun_loop(e, z, gammas), 0)
        return out | {"nfe": 2 * n - 1}
    gammas = oracle.gamma(time_grid(nfe, sampler)).detach()
    draws = nfe if sampler == "ancestral" or sampler.endswith("_sde") else 0
    out = exact_power_ratios(oracle, lambda e, z, nf: sample_loop(e, z, gammas, nf, sampler=sampler), draws)
    return out | {"nfe": nfe}


def worst(r: dict) -> float:
    """max |ratio − 1| over the bands and the pixel variance."""
    return max(abs(v - 1) for v in [*r["bands"], r["variance"]])


def rounded(r: dict) -> dict:
    return {k: ([round(x, 5) for x in v] if isinstance(v, list) else round(v, 5) if isinstance(v, float) else v)
            for k, v in r.items()}


def figure(path: str, table: dict, target: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(table))
    rows_ = math.ceil(len(table) / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 3.4 * rows_), sharey=True, squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(table):]:
        ax.axis("off")
    for ax, (name, rows) in zip(axes, table.items()):
        for sampler, by_nfe in rows.items():
            xs = sorted(by_nfe, key=int)
            ax.loglog([by_nfe[x]["nfe"] for x in xs], [max(worst(by_nfe[x]), 1e-5) for x in xs], "o-", ms=3,
                      label=sampler)
        ax.axhline(target, color="k", ls=":", lw=1)
        ax.set(title=name, xlabel="network evaluations (NFE)")
    for ax in axes[::cols]:
        ax.set_ylabel("max |P ratio − 1| (3 bands, var.)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="field side N (pixels); N² modes")
    p.add_argument("--nfe", type=int, nargs="+", default=[8, 16, 32, 64], help="NFE of the table")
    p.add_argument("--ancestral", type=int, nargs="+", default=[50, 100, 250, 1000], help="ancestral steps")
    p.add_argument("--max-nfe", type=int, default=64, help="scan limit of cheapest_nfe")
    p.add_argument("--target", type=float, default=0.02, help="tolerance on every band and the variance")
    p.add_argument("--mc-draws", type=int, default=0, help="Monte-Carlo check with this many fields (0: none)")
    p.add_argument("--figure", default=None, help="PNG of max |ratio − 1| against NFE")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    oracles = {name: GaussianFieldOracle(power) for name, power in spectra(a.size).items()}
    samplers = [s for s in SAMPLERS if s != "ancestral"] + list(EXTRA)
    table = {name: {"ancestral": {str(n): evaluate(o, "ancestral", n) for n in a.ancestral}}
             | {s: {str(n): evaluate(o, s, n) for n in a.nfe} for s in samplers} for name, o in oracles.items()}
    cheapest = {}
    for s in samplers:
        ok = [n for n in range(4, a.max_nfe + 1)
              if all(worst(evaluate(o, s, n)) <= a.target for o in oracles.values())]
        cheapest[s] = ok[0] if ok else None
    default = {name: rounded(evaluate(o, DEFAULT_SAMPLER, DEFAULT_STEPS)) for name, o in oracles.items()}
    out = {"oracle": {"size": a.size, "gamma": [-13.3, 13.3], "bands_cycles_per_pixel": BANDS,
                      "log_power_range": {n: [round(math.log(o.power.min()), 2), round(math.log(o.power.max()), 2)]
                                          for n, o in oracles.items()}},
           "target": a.target, "cheapest_nfe": cheapest,
           "default": {"sampler": DEFAULT_SAMPLER, "nfe": DEFAULT_STEPS, "ratios": default},
           "table": {n: {s: {k: rounded(r) for k, r in rows.items()} for s, rows in t.items()}
                     for n, t in table.items()}}
    if a.mc_draws:
        gen, mc = torch.Generator().manual_seed(0), {}
        for s, nfe in (("ancestral", 50), (DEFAULT_SAMPLER, DEFAULT_STEPS)):
            o = oracles["bump"]
            z = sample(o, torch.zeros(a.mc_draws, 1, a.size, a.size), n_steps=nfe, sampler=s, generator=gen)
            mc[f"{s}_{nfe}_bump"] = {"monte_carlo": rounded(power_ratios(z, expected_power(o))),
                                     "exact": rounded(evaluate(o, s, nfe))}
        out["monte_carlo_check"] = mc
    if a.figure:
        figure(a.figure, table, a.target)
    # one line per innermost object and per list of numbers
    one_line = lambda m: re.sub(r"\s+", " ", m.group(0))  # noqa: E731
    text = re.sub(r"\[[-\d.,\se]+\]", one_line, json.dumps(out, indent=1))
    print(re.sub(r"\{[^{}]*\}", one_line, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
