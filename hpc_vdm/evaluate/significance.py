"""Which row leads a band's r(k), and whether by more than the maps' noise: standard errors of mean scores whose maps
come in simulations, and paired leads between rows scored on the same maps.

A band score of a row is a mean over the held-out maps of per-map scores x_i. Maps of one simulation share its
cosmology, feedback and large-scale modes, so they are not independent draws: the standard error of the mean is
the cluster-robust one (CR1), with G simulations g of n_g maps,

    se² = G / (G − 1) · Σ_g (Σ_{i ∈ g} (x_i − x̄))² / n²,

which is unbiased when every simulation gives the same number of maps (exactly so for a simulation effect plus
independent map noise; ``tests/test_evaluate_significance.py`` holds it to that oracle) and reduces to the usual
s / √n with one map per simulation. Two rows scored on the same maps are compared through their per-map
differences d_i = x_i(best) − x_i(next): the lead is d̄ and its standard error the same formula on d, mostly
below either row's own (what makes a map hard for one row makes it hard for the other, and cancels). A lead is **ahead** when it exceeds ``Z_AHEAD`` standard errors,
otherwise the rows are **level**. With few simulations (the science run's 4 test simulations: 3 degrees of freedom)
the standard error is itself uncertain; the report says how many simulations it rests on.
"""
from __future__ import annotations

import math

import numpy as np

from ..spectra.scores import BANDS

SPACES = ("overdensity", "log")
Z_AHEAD = 2.0     # a lead counts when it is above this many standard errors
PER_MAP = ("r",)  # the band scores evaluate keeps per map beside their mean (``r_maps``), for the leads


def cluster_se(values: np.ndarray, groups: np.ndarray) -> float:
    """Standard error of mean(values) (n,) with the values of one group (n,) correlated (CR1); NaN with < 2 groups."""
    x, g = np.asarray(values, dtype=np.float64), np.asarray(groups)
    if x.ndim != 1 or x.shape != g.shape:
        raise ValueError(f"values {x.shape} and groups {g.shape} must be one value and one group per map")
    _, inverse = np.unique(g, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if x.size else 0
    if n_groups < 2:
        return math.nan
    sums = np.bincount(inverse, weights=x - x.mean(), minlength=n_groups)          # (G,) per-group residual sums
    return float(np.sqrt(n_groups / (n_groups - 1) * np.sum(sums ** 2)) / x.size)


def lead(best: np.ndarray, other: np.ndarray, groups: np.ndarray) -> dict:
    """The paired lead of per-map scores ``best`` over ``other`` (n,) on the same maps: its mean and standard
    error, and ``ahead`` when the lead exceeds Z_AHEAD of them."""
    d = np.asarray(best, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    se = cluster_se(d, groups)
    mean = float(d.mean())
    return {"lead": mean, "lead_se": se, "ahead": bool(np.isfinite(se) and mean > Z_AHEAD * se)}


def band_leads(rows: dict[str, dict], groups: np.ndarray, sources: dict[str, str] | None = None, key: str = "r") -> dict:
    """{space: {band: the row with the highest mean ``key``, the next one and the paired lead over it, the leads
    over every other estimator (``over``) and each row's standard error}} over rows {label: {space: {band: {key: mean, key_maps: per-map values}}}} (the report's spaces and
    bands) scored on the same maps (``groups``: each map's simulation). The next row is the best of another
    estimator: rows of one source in ``sources`` {label: source} (one model's samples, their mean, its S → ∞ limit;
    the condition and its linear filter, whose r(k) is the condition's in every bin) do not lead each other; a
    row not named there is a source of its own. Rows whose per-map values do not cover every map (a baseline that
    left a map empty) are not ranked here and are named under ``not_ranked``."""
    groups, maps_key = np.asarray(groups), f"{key}_maps"

    def source(label: str) -> str:
        return (sources or {}).get(label, label)

    def complete(row: dict) -> bool:
        return all(len(row[space][band].get(maps_key, ())) == groups.size for space in SPACES for band in BANDS)

    ranked = {label: row for label, row in rows.items() if complete(row)}
    out = {"n_maps": int(groups.size), "n_sims": int(np.unique(groups).size), "z_ahead": Z_AHEAD,
           "not_ranked": sorted(set(rows) - set(ranked))}
    for space in SPACES:
        for band in BANDS:
            order = sorted(ranked, key=lambda label: ranked[label][space][band][key], reverse=True)
            nxt = next((label for label in order if source(label) != source(order[0])), None)
            if nxt is None:   # every ranked row is the model's own
                continue
            maps = {label: ranked[label][space][band][maps_key] for label in order}
            out.setdefault(space, {})[band] = {
                "best": order[0], "next": nxt, **lead(maps[order[0]], maps[nxt], groups),
                "over": {label: lead(maps[order[0]], maps[label], groups) for label in order
                         if source(label) != source(order[0])},
                "se": {label: cluster_se(maps[label], groups) for label in order}}
    return out


def lead_phrase(b: dict) -> str:
    """'{best} (+0.007 ± 0.003 over {next}: ahead)', or ': level)', for one band of :func:`band_leads`."""
    verdict = "ahead" if b["ahead"] else "level"
    return f"{b['best']} ({b['lead']:+.3f} ± {b['lead_se']:.3f} over {b['next']}: {verdict})"
