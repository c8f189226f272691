"""The mock against CAMELS: CMD pixel statistics per suite, and the halo mass function against a fit."""
import numpy as np
import pytest

from hpc_vdm.config import load_config
from hpc_vdm.mock import pm, stars
from hpc_vdm.mock.calibration import CMD, pixel_statistics
from hpc_vdm.mock.cosmology import Cosmology


@pytest.fixture(scope="module")
def demo_statistics():
    cfg = load_config(None, ["mock.particles=128", "mock.pm_steps=20", "mock.upsample=2", "mock.n_sims=8",
                             "mock.seed=7"]).mock
    return pixel_statistics(cfg, list(CMD), cfg.n_sims)


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(CMD))
def test_pixel_statistics_match_cmd_at_the_smallest_calibrated_configuration(suite, demo_statistics):
    """128^3 particles, 20 PM steps, 2^3 sub-particles (the demo), 8 LH simulations not used in the fit
    (a fixed seed: 24 simulations, measured once, agree to 1-2%; 8 keep CI short):
    within 5% (Mstar) and 2% (Mcdm mean)."""
    got, nonzero = demo_statistics[suite]
    want = np.array(CMD[suite])
    assert abs(got[0] / want[0] - 1) < 0.02, (got, want)
    assert abs(got[1] / want[1] - 1) < 0.05, (got, want)  # measured -3.5%: see tools/bench_mock.py
    np.testing.assert_allclose(got[2:], want[2:], rtol=0.05)
    assert 0.005 < nonzero < 0.05, nonzero  # sparse bright points, ~1% of pixels


@pytest.fixture(scope="module")
def test_fidelity_statistics():
    cfg = load_config(None, ["mock.particles=64", "mock.pm_steps=5", "mock.n_sims=8", "mock.seed=5"]).mock
    return pixel_statistics(cfg, list(CMD), cfg.n_sims)


@pytest.mark.parametrize("suite", list(CMD))
def test_stellar_statistics_match_cmd_at_test_fidelity(suite, test_fidelity_statistics):
    """64^3 particles, 5 PM steps (configs/test.yaml), 8 LH simulations not used in the fit: log10(1 + Mstar)
    mean and std within 5% of CMD, ~1% non-zero pixels. (The DM maps are not calibrated at 64^3.)"""
    got, nonzero = test_fidelity_statistics[suite]
    np.testing.assert_allclose(got[2:], CMD[suite][2:], rtol=0.05)
    assert 0.005 < nonzero < 0.05, nonzero


def test_suites_are_ordered_as_in_cmd(test_fidelity_statistics):
    means = {s: got[2] for s, (got, _) in test_fidelity_statistics.items()}
    assert means["Astrid"] > means["SIMBA"] > means["IllustrisTNG"]  # Astrid brightest, SIMBA between


@pytest.mark.slow
def test_halo_mass_function_matches_tinker08_over_the_resolved_range():
    """FoF (b = 0.2) counts of 6 fiducial 128^3 boxes against colossus' Tinker et al. (2008) M200m fit,
    within 20% for halos of 800 to 7500 particles: the PM resolves them (smaller ones are too diffuse, and
    are topped up to the mass function for the galaxies); above, six 25 Mpc/h boxes hold < 30 halos a bin
    (measured at 7500-16000 particles: 0.78)."""
    cosmo = Cosmology(0.3, 0.8)
    m_p = 0.3 * 2.77536627e11 * 25.0**3 / 128**3
    edges = np.array([800, 1700, 3500, 7500])
    counts = np.zeros(edges.size - 1)
    for seed in range(6):
        parts = pm.run_pm(cosmo, (128,) * 3, (25.0,) * 3, n_steps=20, a_start=0.1, rng=np.random.default_rng(seed))
        counts += np.histogram(stars.halos(parts)[1], edges)[0]
    expected = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        ln_m = np.linspace(np.log(lo * m_p), np.log(hi * m_p), 32)
        expected.append(6 * 25.0**3 * np.trapezoid(cosmo.halo_mass_function(np.exp(ln_m), "tinker08", "200m"), ln_m))
    ratio = counts / np.array(expected)
    assert (np.abs(ratio - 1) < 0.2).all(), ratio
