"""The evaluation metrics are computed, not copied: perfect, calibrated and miscalibrated posteriors."""
import numpy as np
import pytest

from hpc_vdm.evaluate import calibration as cal
from hpc_vdm.spectra import scores as posterior


def test_ranks_of_a_calibrated_posterior_are_uniform_and_cover_exactly():
    rng = np.random.default_rng(0)
    s, n = 9, 200_000
    truth, draws = rng.normal(size=n), rng.normal(size=(s, n))     # truth and samples from one distribution
    rank, ties = cal.ranks(truth, draws)
    assert ties.sum() == 0
    np.testing.assert_allclose(np.bincount(rank, minlength=s + 1) / n, 1 / (s + 1), atol=0.004)
    for level in (0.68, 0.95):
        c = cal.coverage(rank, s, level)
        assert c["expected"] == pytest.approx(round(level * (s + 1)) / (s + 1))   # exact for S = 9: 0.7, 1.0
        assert c["observed"] == pytest.approx(c["expected"], abs=0.004)
    expected, observed = cal.calibration_curve(rank, s)
    assert expected[-1] == 1.0 and observed[-1] == pytest.approx(1.0)
    assert np.max(np.abs(observed - expected)) < 0.005


def test_a_too_narrow_posterior_shows_in_the_curve():
    rng = np.random.default_rng(1)
    s, n = 19, 100_000
    truth, draws = rng.normal(size=n), 0.5 * rng.normal(size=(s, n))   # samples half as wide as the truth
    rank, _ = cal.ranks(truth, draws)
    expected, observed = cal.calibration_curve(rank, s)
    assert (observed < expected - 0.05)[2:-3].all()                  # every central interval under-covers
    assert cal.coverage(rank, s, 0.68)["observed"] < 0.45
    wide = cal.calibration(truth, 2.0 * rng.normal(size=(s, n)))     # too wide: over-covers
    assert wide["coverage"][0]["observed"] > 0.85


def test_samples_equal_to_the_truth_are_flagged_zero_width():
    x = np.random.default_rng(2).random((5, 5))
    out = cal.calibration(x, np.stack([x] * 4))
    assert out["zero_width"] == 25 and out["tied"] == 25
    z = cal.zscores(x, np.stack([x] * 4))
    assert z["zero_spread"] == 25 and np.isnan(z["mean"])


@pytest.mark.parametrize("s", [5, 10, 40])
def test_zscore_spread_of_a_calibrated_gaussian_matches_its_finite_sample_expectation(s):
    rng = np.random.default_rng(s)
    mu = rng.normal(size=100_000)                                    # a different posterior per pixel
    truth = mu + rng.normal(size=mu.size)
    draws = mu + rng.normal(size=(s, mu.size))
    z = cal.zscores(truth, draws)
    assert z["mean"] == pytest.approx(0.0, abs=0.02)
    assert z["std"] == pytest.approx(cal.zscore_expected_std(s), rel=0.03)
    assert cal.zscore_expected_std(s) > 1.0


def test_samples_equal_to_the_truth_score_ratio_one_and_r_one():
    rng = np.random.default_rng(3)
    truth = np.exp(rng.normal(size=(64, 64)))
    scores = posterior.band_scores(truth, np.stack([truth, truth]), box_mpc_h=25.0)
    for space in ("overdensity", "log"):
        for band in scores[space].values():
            assert band["pk_ratio"] == pytest.approx(1.0) and band["r"] == pytest.approx(1.0)


def test_noise_added_to_the_truth_lowers_r_at_high_k_and_raises_power():
    rng = np.random.default_rng(4)
    n = 128
    k = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) / (k + 1e-3)).real    # red: power at low k
    truth = np.exp(field / field.std())
    draws = truth * np.exp(0.3 * rng.normal(size=(4, n, n)))                           # white log noise
    scores = posterior.band_scores(truth, draws, box_mpc_h=25.0)["log"]
    low, mid, high = (scores[b] for b in posterior.BANDS)
    assert low["r"] > mid["r"] > high["r"] and high["pk_ratio"] > 1.2 and low["r"] > 0.9


def test_bands_stop_at_nyquist():
    edges = posterior.band_edges(25.0, 256)
    k_nyq = np.pi * 256 / 25.0
    assert edges["k<kN/4"] == (0.0, k_nyq / 4) and edges["kN/2-kN"] == (k_nyq / 2, k_nyq)


@pytest.mark.parametrize("s", [2, 4])
def test_report_states_the_z_std_expectation_or_that_it_has_none(s):
    from hpc_vdm.evaluate import report

    m = {"n_samples": s, "calibration": {},
         "zscore_log_pixel": {"mean": 0.0, "std": 1.0, "expected_std": cal.zscore_expected_std(s)},
         "map_level_offsets_dex": {"truth_minus_mean": 0.0, "rms_truth_minus_mean": 0.0, "sample_spread": 0.0}}
    text = "\n".join(report._calibration_lines(m))
    assert "nan" not in text
    assert (f"expected {np.sqrt(5.0):.3f}" in text) if s == 4 else ("no finite expectation" in text)
