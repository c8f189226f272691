"""Substructure of the FoF halos: dense sub-clumps of member particles, where the satellites live.

A second friends-of-friends pass over the grouped particles with half the linking length (``B_SUB`` = 0.1
mean spacings: a density contrast ~8 times the FoF's boundary) splits every halo into its dense core and
its sub-clumps, as the hierarchical FoF of subhalo finders does (Rockstar, Behroozi et al. 2013, in
phase space); every clump lies inside one FoF group, since friends at 0.1 are friends at 0.2. A halo's
largest clump is its core (the central's); the others, at least ``MIN_CLUMP`` members, are its
resolved subhalos. Satellites take them in rank order, the most massive satellite the largest clump
(abundance matching inside the halo), each on its clump's member nearest the clump's centre of mass; satellites beyond the
halo's clumps (the smallest: the PM resolves no clump for them) sit on random member particles.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fof

B_SUB = 0.1       # linking length of the sub-clumps [mean particle spacings]
MIN_CLUMP = 10    # fewest members of a resolved sub-clump


@dataclass
class Clumps:
    """Sub-clumps of the FoF groups, sorted by host and then by decreasing size (each host's core first)."""

    host: np.ndarray     # (c,) FoF group of each clump
    size: np.ndarray     # (c,) members
    anchor: np.ndarray   # (c,) the clump's member nearest its centre of mass
    first: np.ndarray    # (g + 1,) start of each group's clumps

    def n_satellite_clumps(self) -> np.ndarray:
        """(g,) clumps of each group besides its core."""
        return np.maximum(np.diff(self.first) - 1, 0)


def find_clumps(pos: np.ndarray, box, labels: np.ndarray, n_groups: int) -> Clumps:
    """The sub-clumps of the FoF groups: pos (n, 3) [Mpc/h], labels (n,) (-1: no group). A clump's anchor
    is its member nearest its centre of mass (not its densest on the PM mesh, which sits at a mesh node)."""
    box = np.asarray(box, dtype=np.float64)
    grouped = np.flatnonzero(labels >= 0)
    spacing = (float(np.prod(box)) / pos.shape[0]) ** (1 / 3)
    roots = fof.friends_roots(pos[grouped], box, B_SUB * spacing)
    sub, size = fof.labels_from_roots(roots, MIN_CLUMP)          # (m,) clump of each grouped particle
    on = np.flatnonzero(sub >= 0)
    by_clump = on[np.argsort(sub[on], kind="stable")]
    clump, member = sub[by_clump], grouped[by_clump]               # (q,) members sorted by clump
    first = np.searchsorted(clump, np.arange(size.size))
    d = pos[member] - pos[member[first]][clump]
    d -= box * np.rint(d / box)                                     # offsets from the clump's first member
    centre = np.stack([np.bincount(clump, weights=d[:, i], minlength=size.size) for i in range(3)], 1) / size[:, None]
    nearest = np.lexsort((((d - centre[clump]) ** 2).sum(axis=1), clump))
    anchor = member[nearest[first]]
    host = labels[anchor]
    rank = np.lexsort((np.arange(size.size), -size, host))              # by host, largest first
    return Clumps(host=host[rank], size=size[rank], anchor=anchor[rank],
                  first=np.searchsorted(host[rank], np.arange(n_groups + 1)))


def satellite_anchors(clumps: Clumps, host: np.ndarray, mass: np.ndarray, order: np.ndarray, starts: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """(k,) the particle of every satellite: host (k,) its group, mass (k,) its infall mass. The j-th most
    massive satellite of a group sits on the group's (j + 1)-th largest clump, if it has one, else on a
    random member (order (m,) members by group, starts (g + 1,) each group's first; see
    :func:`hpc_vdm.mock.galaxies.members`)."""
    k = host.size
    by_mass = np.lexsort((np.arange(k), -mass, host))          # by host, most massive first
    first = np.searchsorted(host[by_mass], host[by_mass])     # each satellite's host's first satellite
    j = np.empty(k, dtype=np.int64)
    j[by_mass] = np.arange(k) - first                          # rank of each satellite in its host
    sizes = np.diff(starts)
    anchors = order[starts[host] + np.floor(rng.random(k) * sizes[host]).astype(np.int64)]
    on_clump = j < clumps.n_satellite_clumps()[host]
    anchors[on_clump] = clumps.anchor[clumps.first[host[on_clump]] + 1 + j[on_clump]]
    return anchors
