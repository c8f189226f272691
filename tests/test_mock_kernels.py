"""The compiled mock kernels against their numpy references, and the FoF finder against brute force."""
import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from hpc_vdm.config import load_config
from hpc_vdm.mock import fof, kernels, mesh, pm, simulate, stars
from hpc_vdm.mock.cosmology import Cosmology


@pytest.mark.parametrize("shape", [(8, 6, 5), (16, 12)])
def test_compiled_cic_deposit_and_readout_equal_numpy(shape):
    rng = np.random.default_rng(0)
    cells = rng.uniform(-3, 2 * max(shape), (5000, len(shape)))  # outside the grid too: periodic
    w = rng.random(5000)
    group = rng.integers(0, 3, 5000)
    for kw in ({}, {"weights": w}, {"weights": 2.5}, {"weights": w, "group": group, "n_groups": 3}):
        with kernels.use("numpy"):
            ref = mesh.cic_deposit(cells, shape, **kw)
        with kernels.use("numba"):
            got = mesh.cic_deposit(cells, shape, **kw)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        total = kw.get("weights", 1.0)
        assert got.sum() == pytest.approx(np.sum(total) if np.ndim(total) else total * 5000)
    if len(shape) == 3:
        grid = rng.random((3, *shape))
        with kernels.use("numpy"):
            ref = mesh.cic_readout(grid, cells)
        with kernels.use("numba"):
            got = mesh.cic_readout(grid, cells)
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_compiled_pm_run_equals_numpy_run():
    cosmo = Cosmology(0.3, 0.8)
    runs = {}
    for name in ("numpy", "numba"):
        with kernels.use(name):
            runs[name] = pm.run_pm(cosmo, (32,) * 3, (25.0,) * 3, n_steps=4, a_start=0.1,
                                   rng=np.random.default_rng(1))
    d = runs["numba"].pos - runs["numpy"].pos
    d -= 25.0 * np.rint(d / 25.0)
    assert np.abs(d).max() < 1e-6  # summation order only
    np.testing.assert_allclose(runs["numba"].density, runs["numpy"].density, atol=1e-6)


def _small_run(upsample: int):
    cfg = load_config(None, ["mock.particles=24", "mock.pm_steps=3", f"mock.upsample={upsample}",
                             "mock.map_pixels=32"]).mock
    parts = pm.run_pm(Cosmology(0.3, 0.9), (24,) * 3, (25.0,) * 3, n_steps=3, a_start=0.1,
                      rng=np.random.default_rng(3))
    return cfg, parts, mesh.cic_readout(parts.density, parts.pos / parts.cell)


def test_compiled_upsampled_painting_equals_numpy():
    """The compiled sub-particle painter (threaded over lattice blocks) against the numpy path that
    builds the interpolated sub-particles and paints them by kernel class."""
    cfg, parts, rho = _small_run(upsample=2)
    maps = {}
    for name in ("numpy", "numba"):
        with kernels.use(name):
            maps[name] = simulate.dm_maps(parts, parts.pos, rho, 1.0e9, cfg)
    assert maps["numba"].shape == (15, 32, 32)
    np.testing.assert_allclose(maps["numba"], maps["numpy"], rtol=1e-9, atol=1e-9 * maps["numpy"].max())
    pixel_area = (25.0 / 32) ** 2
    assert maps["numba"].sum() * pixel_area == pytest.approx(3 * 1.0e9 * 24**3, rel=1e-12)  # mass per axis


def test_threads_do_not_change_a_simulation():
    """Every threaded kernel (kick, drift, force spectra, blocked painting) gives bit-identical maps and
    positions on 1 and 2 threads: results do not depend on the machine's core count."""
    cfg = load_config(None, ["mock.particles=32", "mock.pm_steps=3", "mock.upsample=2", "mock.map_pixels=64"]).mock
    row = np.array([0.3, 0.8, 1.0, 1.0, 1.0, 1.0])
    out, old = [], mesh.WORKERS
    try:
        for threads in (1, 2):
            mesh.set_threads(threads)
            out.append(simulate.simulate(row, cfg, stars.SUITES["IllustrisTNG"], np.random.SeedSequence(4)))
    finally:
        mesh.set_threads(old)
    for field in ("Mcdm", "Mstar"):
        np.testing.assert_array_equal(out[0][field], out[1][field])


def test_unknown_kernels_are_refused():
    with pytest.raises(ValueError, match="'fortran'"):
        with kernels.use("fortran"):
            pass


def _brute_force_groups(pos, box, ll):
    """Exact FoF: every pair within ll (periodic KD-tree), connected components."""
    pairs = cKDTree(pos, boxsize=box).query_pairs(ll, output_type="ndarray")
    n = pos.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _same_partition(a, b):
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("case", ["pm", "blobs"])
def test_fof_equals_brute_force_grouping(case):
    rng = np.random.default_rng(2)
    box = np.array([25.0, 25.0, 25.0])
    if case == "pm":  # a clustered PM box, with halos across the periodic edges
        pos = pm.run_pm(Cosmology(0.3, 0.9), (24,) * 3, tuple(box), n_steps=4, a_start=0.1, rng=rng).pos
    else:  # dense Gaussian blobs straddling the faces plus a uniform background
        centres = rng.uniform(0, 25, (30, 3))
        centres[:5, 0] = 0.05
        blobs = centres[rng.integers(0, 30, 8000)] + rng.normal(0, 0.15, (8000, 3))
        pos = np.concatenate([blobs, rng.uniform(0, 25, (6000, 3))]) % box
    ll = fof.B_LINK * (np.prod(box) / len(pos)) ** (1 / 3)
    roots = fof.friends_roots(pos, box, ll)
    exact = _brute_force_groups(pos, box, ll)
    assert _same_partition(roots, exact)
    labels, sizes = fof.find_groups(pos, box, min_members=5)
    counts = np.bincount(exact)
    assert sorted(sizes.tolist(), reverse=True) == sorted(counts[counts >= 5].tolist(), reverse=True)
    assert (np.diff(sizes) <= 0).all() and (np.bincount(labels[labels >= 0]) == sizes).all()


def test_fof_rejects_bad_input():
    with pytest.raises(ValueError, match="linking length must be positive, got 0"):
        fof.friends_roots(np.zeros((4, 3)), (1, 1, 1), 0.0)
    with pytest.raises(ValueError, match=r"\(n, 3\), got shape \(4, 2\)"):
        fof.friends_roots(np.zeros((4, 2)), (1, 1, 1), 0.1)
