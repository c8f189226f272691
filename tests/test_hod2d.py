"""The 2D HOD of Sether+24 against its formulas: the mean occupation of a generated catalogue, the satellites'
radial distributions, the stellar draws from the training pools, the fit recovering parameters from maps the
HOD painted itself, and bad inputs refused with one clear error."""
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy import stats

from hpc_vdm.baselines import hod, hod2d

P = hod2d.HODParams(11.0, 12.5, 0.9)


def synthetic_halos(masses, copies: int, seed: int = 0) -> hod2d.Halos:
    m = np.repeat(np.asarray(masses, dtype=np.float64), copies)
    pos = np.random.default_rng(seed).random((len(m), 3)) * 25.0
    return hod2d.Halos(pos, m, hod2d.r200c(m))


def test_mean_occupation_of_a_generated_catalogue_equals_the_formula_within_poisson_error():
    masses, copies = [10**10.5, 10**11.2, 10**12.0, 10**13.0, 10**14.0], 4000
    halos = synthetic_halos(masses, copies)
    pos, host, central, pick = hod2d.populate(halos, P, 25.0, seed=3)
    assert ((pos >= 0) & (pos < 25.0)).all() and ((pick >= 0) & (pick < 1)).all()
    for m in masses:
        n_cen = np.sum(central & (host == m)) / copies
        n_sat = np.sum(~central & (host == m)) / copies
        assert n_cen == (1.0 if m > 10**P.log_m_min else 0.0)                       # a step at M_min, exactly
        mean = (m / 10**P.log_m1) ** P.alpha if m > 10**P.log_m_min else 0.0
        assert abs(n_sat - mean) <= 4 * np.sqrt(mean / copies) + 1e-12, (m, n_sat, mean)
    cen, sat = hod2d.mean_occupation(np.array(masses), P)
    np.testing.assert_allclose(sat, cen * (np.array(masses) / 10**12.5) ** 0.9)


def test_satellites_fill_the_sphere_uniformly_or_follow_the_nfw_profile():
    n = 20000
    u = np.random.default_rng(1).random((n, 3))
    radius, mass = np.full(n, 0.5), np.full(n, 1e13)
    r = np.linalg.norm(hod2d.satellite_offsets(radius, mass, u, "random"), axis=1)
    assert r.max() <= 0.5 + 1e-12 and stats.kstest((r / 0.5) ** 3, "uniform").pvalue > 1e-3
    x = np.linalg.norm(hod2d.satellite_offsets(radius, mass, u, "nfw"), axis=1) / 0.5
    c = float(hod2d.concentration(1e13))
    mu = lambda y: np.log1p(y) - y / (1 + y)  # noqa: E731
    assert stats.kstest(x, lambda q: mu(c * np.clip(q, 0, 1)) / mu(c)).pvalue > 1e-3
    d = hod2d.satellite_offsets(radius, mass, u, "random")
    assert np.abs(d.mean(0)).max() < 0.01                                             # isotropic
    with pytest.raises(ValueError, match="satellite placement must be one of"):
        hod2d.satellite_offsets(radius, mass, u, "shell")


def test_stellar_masses_come_from_their_host_bins_pool_or_the_nearest_filled_one():
    model = hod.HOD(edges=np.array([10.0, 11.0, 12.0, 13.0]), centrals=[np.array([1.0, 2.0]), np.array([]),
                    np.array([30.0])], satellites=[np.array([5.0]), np.array([6.0, 7.0]), np.array([8.0])])
    host = 10.0 ** np.array([10.5, 11.5, 12.5, 10.2, 11.1, 12.9])
    central = np.array([True, True, True, False, False, False])
    out = hod2d.draw_stellar(model, host, central, np.array([0.9, 0.1, 0.5, 0.3, 0.99, 0.0]))
    np.testing.assert_array_equal(out, [2.0, 1.0, 30.0, 5.0, 7.0, 8.0])   # empty central bin 1 -> bin 0 (nearest, first)


@pytest.fixture(scope="module")
def catalogues(mock_cfg, mock_files):
    from hpc_vdm.data import camels

    m = mock_cfg.mock
    return camels.catalogue_dir(m.out_dir, m.suite, m.set)


def test_the_fit_recovers_known_parameters_from_maps_the_hod_painted(catalogues):
    cats = {s: hod.read_catalogue(catalogues / f"fof_subhalo_tab_{s:04d}.hdf5") for s in (0, 1)}
    stellar = hod2d.fit_stellar(list(cats.values()))
    halos = {s: hod2d.Halos.of(c) for s, c in cats.items()}
    g = hod2d.Geometry(25.0, 5, 256, 4)
    true = hod2d.HODParams(10.8, 12.3, 0.9)
    same, record = hod2d.fit(halos, hod2d.draw_maps(halos, stellar, true, g, seed=0), stellar, g, seed=0, polish=True)
    # the same realisation: the objective is 0 at the truth, and the search reaches its valley: M_min to 0.05 dex,
    # the satellites of the massive halos to 20% (M_1 and alpha trade along lines of equal numbers)
    n_true, n_same = (hod2d.mean_occupation(np.array([10**13.5]), q)[1][0] for q in (true, same))
    assert record["objective"] < 1e-5 and record["evaluations"] > 100
    assert abs(same.log_m_min - 10.8) <= 0.05 and abs(n_same / n_true - 1) < 0.2, same
    # another realisation (Sether's coordinate search): parameters that describe its P(k) at least as well as the
    # true ones do, M_min close; M_1 and alpha are degenerate at 0.39 Mpc/h pixels (satellites share their
    # central's pixel), so they are not asserted one by one
    truth = hod2d.draw_maps(halos, stellar, true, g, seed=11)
    other, record = hod2d.fit(halos, truth, stellar, g, seed=0)
    target = hod2d.log_power(np.concatenate([truth[s] for s in halos]), 25.0)
    assert record["objective"] <= hod2d.objective(halos, stellar, true, g, target, 0, "random")
    assert abs(other.log_m_min - 10.8) <= 0.3, other


def test_hod_parameters_outside_their_ranges_are_refused():
    for bad, name in (((7.0, 12.0, 1.0), "log_m_min=7.0"), ((11.0, 17.0, 1.0), "log_m1=17.0"),
                      ((11.0, 12.0, -0.5), "alpha=-0.5"), ((11.0, 12.0, float("nan")), "alpha=nan")):
        with pytest.raises(ValueError, match=f"HOD parameter {name} is outside its range"):
            hod2d.HODParams(*bad)
    with pytest.raises(ValueError, match=r"must be \[log10 M_min, log10 M_1, alpha\]"):
        hod2d.HODParams.of([11.0, 12.0])


def test_catalogues_that_do_not_match_the_maps_simulations_are_refused(catalogues, tmp_path):
    params = np.loadtxt(Path(catalogues).parent / "params_LH_IllustrisTNG.txt", ndmin=2)
    assert len(hod2d.read_simulations(catalogues, [0, 1], params, 25.0)) == 2
    with pytest.raises(ValueError, match="do not match the maps' simulations"):
        hod2d.read_simulations(catalogues, [0, 1], params[::-1], 25.0)               # sims swapped
    with pytest.raises(FileNotFoundError, match="no halo catalogue .*fof_subhalo_tab_0099.hdf5"):
        hod2d.read_simulations(catalogues, [99], np.tile(params[0], (100, 1)), 25.0)
    folder = tmp_path / "cats"
    folder.mkdir()
    shutil.copy(Path(catalogues) / "fof_subhalo_tab_0000.hdf5", folder)
    with h5py.File(folder / "fof_subhalo_tab_0000.hdf5", "r+") as f:
        f["Header"].attrs["BoxSize"] = 50_000.0
    with pytest.raises(ValueError, match="is of a 50 Mpc/h box, the maps of 25 Mpc/h"):
        hod2d.read_simulations(folder, [0], params, 25.0)
