"""The shuffle test of assembly bias, measured on the mock as on hydrodynamic simulations.

Croton, Gao & White (2007), and for IllustrisTNG/SIMBA e.g. Hadzhiyska et al. (2021), Yang et al. (2025):
every halo's galaxies are moved to another halo of the same narrow mass bin (0.1 dex), satellites at
their offsets from the centre (:func:`shuffled_positions`). A galaxy population that depends on halo mass
alone is unchanged by it, in distribution; what changes the clustering is the dependence on anything
else. The measure is the ratio of the power spectra of the 3D stellar-mass field, original over
shuffled, at k < ``K_MAX``, summed over simulations (:func:`ratio`: per k, and the band power at
k < ``K_MAX``, with a jackknife error over simulations).

Beside it, on the same catalogues:

* any galaxy model given as ``models`` (name -> a draw of positions and stellar masses from the catalogue),
  e.g. the dm2gal paper's halo-mass-only HOD fitted on the catalogue and drawn for its own subhalos
  (:func:`hpc_vdm.baselines.hod.draw_on_catalogue`, passed in by the callers: the mock lies below the
  baselines in the layers): its P(k) over the original's is what the shuffle predicts a mass-only model misses;
* the correlation at fixed mass between a central's stellar mass and each secondary property
  (:func:`correlation_at_fixed_mass`), the strengths of :mod:`hpc_vdm.mock.assembly` as measured.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

from ..config import MockConfig
from ..spectra import power_spectrum
from . import grids, simulate, stars
from .assembly import mass_bins, normal_scores
from .galaxies import Catalogue

K_MAX = 2.0            # h/Mpc: the scales of the shuffle test
GRID = 64              # cells per side of the stellar-mass field (0.39 Mpc/h in 25 Mpc/h)
MIN_STAR_PARTICLES = 10  # centrals with fewer star particles are left out of the correlations (Poisson noise)


def shuffle_within_bins(bins: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) a random permutation p that maps every item to one of its bin (bins[p[i]] == bins[i])."""
    n = bins.size
    by_bin = np.lexsort((np.arange(n), bins))
    out = np.empty(n, dtype=np.int64)
    out[by_bin] = np.lexsort((rng.random(n), bins))   # the same bins, in a random order within each
    return out


def shuffled_positions(cat: Catalogue, rng: np.random.Generator, box_mpc_h: float) -> np.ndarray:
    """(s, 3) subhalo positions [Mpc/h] after the shuffle: each FoF group's galaxies moved to a group of
    its mass bin (satellites at their offsets from the centre), each fill-in halo's central to the place
    of a fill-in halo of its mass bin (the two populations are shuffled apart, as they are ranked apart)."""
    target = shuffle_within_bins(mass_bins(cat.group_mass), rng)    # group g's galaxies go to target[g]
    grouped = cat.sub_group >= 0
    g = cat.sub_group[grouped]
    offset = cat.sub_pos[grouped] - cat.group_pos[g]
    offset -= box_mpc_h * np.rint(offset / box_mpc_h)                 # minimum image
    pos = cat.sub_pos.copy()
    pos[grouped] = (cat.group_pos[target[g]] + offset) % box_mpc_h
    fill = np.flatnonzero(~grouped)
    pos[fill] = cat.sub_pos[fill[shuffle_within_bins(mass_bins(cat.sub_mass[fill]), rng)]]
    return pos


def correlation_at_fixed_mass(x: np.ndarray, y: np.ndarray, mass: np.ndarray) -> float:
    """Pearson correlation of the normal scores of x and y (n,) within 0.1 dex bins of mass, pooled (a
    Spearman coefficient at fixed mass); halos alone in their bin do not count (nan below 3 halos)."""
    bins = mass_bins(mass)
    shared = np.bincount(bins - bins.min())[bins - bins.min()] > 1 if bins.size else np.zeros(0, bool)
    zx, zy = normal_scores(x, bins)[shared], normal_scores(y, bins)[shared]
    return float(np.sum(zx * zy) / np.sqrt(np.sum(zx * zx) * np.sum(zy * zy))) if zx.size > 2 else float("nan")


def stellar_power(pos: np.ndarray, mstar: np.ndarray, box_mpc_h: float, grid: int = GRID):
    """k (nk,) [h/Mpc] and P(k) (nk,) of the CIC stellar-mass overdensity of galaxies at pos (s, 3)."""
    field = grids.cic_density(pos, mstar, grid, box_mpc_h)
    ps = power_spectrum(field / field.mean() - 1.0, box_mpc_h)
    return ps.k, ps.power


# a galaxy model measured beside the shuffle: (catalogue, seed) -> positions (m, 3) [Mpc/h], stellar masses (m,)
Model = Callable[[Catalogue, int], tuple[np.ndarray, np.ndarray]]
FIXED = ("k", "orig", "shuffled", "corr_env", "corr_conc")   # measure's keys besides the models'


def measure(cat: Catalogue, box_mpc_h: float, rng: np.random.Generator, n_shuffles: int, m_star_particle: float,
            models: dict[str, Model] | None = None, model_seed: int = 0) -> dict:
    """One catalogue's stellar P(k): original, shuffled (mean of ``n_shuffles``) and each of ``models``
    (drawn with ``model_seed``) (nk,) each, and the correlations at fixed mass of the centrals' stellar mass
    with environment and concentration."""
    lit = cat.sub_mstar > 0
    k, p_orig = stellar_power(cat.sub_pos[lit], cat.sub_mstar[lit], box_mpc_h)
    p_shuf = np.mean([stellar_power(shuffled_positions(cat, rng, box_mpc_h)[lit], cat.sub_mstar[lit], box_mpc_h)[1]
                      for _ in range(n_shuffles)], axis=0)
    drawn = {}
    for name, model in (models or {}).items():
        if name in FIXED:
            raise ValueError(f"a model may not be named {name!r}: {FIXED} are the shuffle test's own")
        pos, mass = model(cat, model_seed)
        drawn[name] = stellar_power(pos[mass > 0], mass[mass > 0], box_mpc_h)[1]
    cen = cat.sub_central & (cat.sub_group >= 0) & (cat.sub_mstar >= MIN_STAR_PARTICLES * m_star_particle)
    g = cat.sub_group[cen]
    log_mstar = np.log(cat.sub_mstar[cen])
    return {"k": k, "orig": p_orig, "shuffled": p_shuf, **drawn,
            "corr_env": correlation_at_fixed_mass(log_mstar, cat.group_env[g], cat.group_mass[g]),
            "corr_conc": correlation_at_fixed_mass(log_mstar, cat.group_conc[g], cat.group_mass[g])}


def ratio(p_num: np.ndarray, p_den: np.ndarray, k: np.ndarray, k_max: float = K_MAX) -> dict:
    """The P(k) ratio of two sets of simulations (n_sims, nk) at k < k_max: per k, sum(num) / sum(den)
    over simulations ('ratio_k'); their plain mean over those k ('mean_k'); and the band-power ratio, the
    summed P at k < k_max of the one over the other's ('band', the per-k ratios weighted by P: large
    scales, as the literature's "on large scales"), with its jackknife error over simulations ('err')."""
    sel = k < k_max
    a, b = p_num[:, sel], p_den[:, sel]
    n = a.shape[0]
    band = float(a.sum() / b.sum())
    loo = (a.sum() - a.sum(axis=1)) / (b.sum() - b.sum(axis=1))       # (n,) leave one simulation out
    err = float(np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))) if n > 1 else float("nan")
    per_k = a.sum(axis=0) / b.sum(axis=0)
    return {"k": k[sel].tolist(), "ratio_k": per_k.tolist(), "mean_k": float(per_k.mean()), "band": band, "err": err}


def shuffle_measure(cfg: MockConfig, suites, *, n_shuffles: int = 4, models: dict[str, Model] | None = None):
    """A measure for :func:`simulate.over_simulations`: per suite and switch ('on': the suite's assembly bias,
    'off': its mass-only twin), :func:`measure` of one simulation's catalogue (a model draws with the
    simulation's index as its seed)."""
    return functools.partial(_shuffle_one, cfg, tuple(suites), n_shuffles, models)


def _shuffle_one(cfg: MockConfig, suites, n_shuffles: int, models, sim, row, seed, parts, groups) -> dict:
    out = {}
    for suite in suites:
        out[suite] = {}
        for switch in ("on", "off"):
            model = dataclasses.replace(stars.SUITES[suite], secondary=switch == "on")
            rng = np.random.default_rng(simulate._seeds(seed)[1])   # the simulation's galaxy seed
            cat, _ = stars.galaxies_of(parts, row, model, rng, groups)
            out[suite][switch] = measure(cat, cfg.box_mpc_h, np.random.default_rng([cfg.seed, sim, 7]), n_shuffles,
                                         model.star_particle_mass, models, model_seed=sim)
    return out


def stack(per_sim: list[dict]) -> dict:
    """:func:`shuffle_measure`'s values of the simulations, stacked: per suite and switch, every key of
    :func:`measure` as an array (n_sims, ...)."""
    return {s: {w: {key: np.array([sim[s][w][key] for sim in per_sim]) for key in per_sim[0][s][w]}
                for w in per_sim[0][s]} for s in per_sim[0]}


def shuffle_statistics(cfg: MockConfig, suites, n_sims: int, *, n_shuffles: int = 4,
                       models: dict[str, Model] | None = None) -> dict:
    """Per suite and switch: the P(k) of every simulation {'orig', 'shuffled', and one per model of
    ``models``} (n_sims, nk) and the per-simulation correlations, on the first ``n_sims`` simulations of
    ``cfg``'s set (one gravity run per simulation for all)."""
    return stack(simulate.over_simulations(cfg, n_sims, shuffle_measure(cfg, suites, n_shuffles=n_shuffles,
                                                                         models=models))[0])


def summary(stats: dict) -> dict:
    """Per suite and switch: the shuffle ratio original / shuffled, what it predicts for a mass-only model
    (shuffled / original) beside each model's own ('<name>_over_original', e.g. the HOD's), and the mean
    correlations at fixed mass."""
    out = {}
    for suite, switches in stats.items():
        out[suite] = {}
        for switch, s in switches.items():
            k = s["k"][0]
            out[suite][switch] = {"n_sims": int(s["orig"].shape[0]),
                                  "shuffle_ratio": ratio(s["orig"], s["shuffled"], k),
                                  "shuffled_over_original": ratio(s["shuffled"], s["orig"], k),
                                  **{f"{name}_over_original": ratio(p, s["orig"], k)
                                     for name, p in s.items() if name not in FIXED},
                                  "corr_env": float(np.nanmean(s["corr_env"])),
                                  "corr_conc": float(np.nanmean(s["corr_conc"]))}
    return out
