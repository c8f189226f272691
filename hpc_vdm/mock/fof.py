"""Periodic friends-of-friends halo finder (compiled): a cell list plus union-find.

Two particles are friends when their periodic (minimum-image) separation is at most the linking length
``b * mean spacing`` (b = 0.2 as in CAMELS/Subfind); a halo is a connected set of friends. The finder
bins particles into cells at most ll/sqrt(3) wide, so that a cell's particles are all friends (only
occupied cells are stored, sorted by column and height; a column table finds neighbours), links each
cell to the neighbours within two cells (each pair of cells once, stopping at the first friend pair
found), and merges friends with a union-find (path halving; the root is the smallest index of the set).
Two threads link halves of the cells into forests of their own, merged at the end: the roots, each
set's smallest index, do not depend on the order of the unions, hence not on the threads.

Groups are numbered by decreasing size (ties: by root), as Subfind numbers its
FoF groups; particles in no group of at least ``min_members`` get label -1. The tests hold the result
equal to an exact brute-force grouping (scipy pair list + connected components) on small boxes.
"""
from __future__ import annotations

import numpy as np

from .kernels import _jit, _prange

B_LINK = 0.2
MIN_MEMBERS = 20  # the smallest FoF group kept (Subfind's and the CAMELS catalogues' threshold)
LINK_BLOCKS = 2   # cell ranges linked on their own threads, each into its own forest, then merged


@_jit
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@_jit
def _union(parent, i, j):
    ri, rj = _find(parent, i), _find(parent, j)
    if ri < rj:
        parent[rj] = ri
    elif rj < ri:
        parent[ri] = rj


@_jit
def _close(pos, i, j, box, ll2):
    d2 = 0.0
    for c in range(3):
        d = pos[i, c] - pos[j, c]
        d -= box[c] * np.rint(d / box[c])
        d2 += d * d
    return d2 <= ll2


@_jit
def _link_cell_pair(pos, a0, a1, b0, b1, box, ll2, parent):
    """Union the two (internally connected) cells [a0, a1), [b0, b1) if any pair between them are friends."""
    if _find(parent, a0) == _find(parent, b0):
        return
    for a in range(a0, a1):
        for b in range(b0, b1):
            if _close(pos, a, b, box, ll2):
                _union(parent, a, b)
                return


@_jit
def _link_cells(pos, cz_sorted, col_start, starts, nc, box, ll2, parent, c_lo, c_hi):
    """Union every pair of friends of the cells [c_lo, c_hi) (with their forward neighbours) in ``parent``.

    Cells are at most ll / sqrt(3) wide, so all particles of a cell are friends, and two cells need one
    friend pair to merge. Occupied cells are sorted by (column x*ny + y, z): ``col_start`` (nx*ny + 1,)
    indexes each column's cells, ``cz_sorted`` (m,) their z, ``starts`` (m + 1,) their particles: pos is
    sorted by cell (memory order = traversal order) and parent indexes the sorted particles.
    Neighbours reach 2 cells; each neighbouring pair of cells is visited once (forward half-stencil).
    """
    nx, ny, nz = nc[0], nc[1], nc[2]
    for c in range(c_lo, c_hi):  # 1. a cell is fully connected
        for a in range(starts[c] + 1, starts[c + 1]):
            _union(parent, starts[c], a)
    col = np.searchsorted(col_start, c_lo, side="right") - 1 if c_hi > c_lo else 0
    for c in range(c_lo, c_hi):  # 2. neighbouring cells
        while col_start[col + 1] <= c:
            col += 1
        cx, cy, cz = col // ny, col % ny, cz_sorted[c]
        for dx in range(0, 3):
            for dy in range(-2, 3):
                if dx == 0 and dy < 0:
                    continue
                ncol = ((cx + dx) % nx) * ny + (cy + dy) % ny
                lo = 1 if (dx == 0 and dy == 0) else -2
                c0, c1 = col_start[ncol], col_start[ncol + 1]
                # the column's cells with z in [cz + lo, cz + 2] (periodic): at most two sorted runs
                for z_lo, z_hi in ((cz + lo, cz + 2), (cz + lo + nz, cz + 2 + nz), (cz + lo - nz, cz + 2 - nz)):
                    if z_hi < 0 or z_lo >= nz:
                        continue
                    k = c0 + np.searchsorted(cz_sorted[c0:c1], max(z_lo, 0))
                    while k < c1 and cz_sorted[k] <= z_hi:
                        _link_cell_pair(pos, starts[c], starts[c + 1], starts[k], starts[k + 1], box, ll2,
                                        parent)
                        k += 1


@_jit(parallel=True)
def _link_blocks(pos, cz_sorted, col_start, starts, nc, box, ll2, parents, bounds):
    """:func:`_link_cells` for the cells [bounds[b], bounds[b + 1]) into parents[b], threaded over blocks."""
    for b in _prange(bounds.shape[0] - 1):
        _link_cells(pos, cz_sorted, col_start, starts, nc, box, ll2, parents[b], bounds[b], bounds[b + 1])


@_jit
def _merge(parents):
    """Union into parents[0] every particle's set of the other forests (the roots are canonical: each
    set's smallest index, whatever the order of the unions)."""
    parent = parents[0]
    for b in range(1, parents.shape[0]):
        other = parents[b]
        for i in range(other.shape[0]):
            r = _find(other, i)
            if r != i:
                _union(parent, i, r)
    return parent


@_jit
def _roots(parent):
    out = np.empty_like(parent)
    for i in range(parent.shape[0]):
        out[i] = _find(parent, i)
    return out


def friends_roots(pos: np.ndarray, box, linking_length: float) -> np.ndarray:
    """(n,) root (one member's index, the same for all members) of every particle's friends-of-friends
    group; pos (n, 3) [Mpc/h]. The roots depend only on the positions."""
    pos = np.ascontiguousarray(pos, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64).reshape(3)
    if not linking_length > 0:
        raise ValueError(f"FoF linking length must be positive, got {linking_length}")
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"FoF positions must be (n, 3), got shape {pos.shape}")
    nc = np.maximum(5, np.ceil(box * np.sqrt(3.0) / linking_length)).astype(np.int64)  # >= 5: no aliasing
    cell = np.floor(pos * (nc / box)).astype(np.int64)
    cell = np.minimum(np.maximum(cell, 0), nc - 1)
    column = cell[:, 0] * nc[1] + cell[:, 1]
    key = column * nc[2] + cell[:, 2]
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    first = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])  # each occupied cell's start
    keys = sorted_keys[first]
    starts = np.append(first, order.size).astype(np.int64)
    col_start = np.searchsorted(keys // nc[2], np.arange(nc[0] * nc[1] + 1)).astype(np.int64)
    bounds = (np.arange(LINK_BLOCKS + 1, dtype=np.int64) * keys.size) // LINK_BLOCKS  # cells per thread
    parents = np.tile(np.arange(pos.shape[0], dtype=np.int64), (LINK_BLOCKS, 1))
    _link_blocks(pos[order], keys % nc[2], col_start, starts, nc, box, float(linking_length) ** 2, parents, bounds)
    parent = _merge(parents)
    roots = np.empty_like(parent)
    roots[order] = order[_roots(parent)]  # back to input order; a root is one member's input index
    return roots


def labels_from_roots(roots: np.ndarray, min_members: int = MIN_MEMBERS) -> tuple[np.ndarray, np.ndarray]:
    """Group labels (n,) numbered by decreasing size (-1: in no group of >= min_members) and sizes (g,)
    from roots (n,) in [0, n) (:func:`friends_roots`: each a member's index)."""
    counts = np.bincount(roots, minlength=roots.size)  # roots are member indices in [0, n)
    kept = np.flatnonzero(counts >= min_members)  # the roots of the kept groups, ascending
    # decreasing size, then root: a deterministic numbering
    rank = np.lexsort((kept, -counts[kept]))
    number = np.full(roots.size, -1, dtype=np.int64)
    number[kept[rank]] = np.arange(rank.size)
    return number[roots], counts[kept][rank]


def find_groups(pos: np.ndarray, box, *, b: float = B_LINK,
                min_members: int = MIN_MEMBERS) -> tuple[np.ndarray, np.ndarray]:
    """FoF groups of particles pos (n, 3) [Mpc/h], linking length b times the mean spacing (V / n)^(1/3).

    Returns labels (n,) (-1: no group) and group sizes (g,), groups in decreasing size.
    """
    spacing = (float(np.prod(np.asarray(box, dtype=np.float64))) / pos.shape[0]) ** (1 / 3)
    return labels_from_roots(friends_roots(pos, box, b * spacing), min_members)
