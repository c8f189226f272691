"""The report's leads (hpc_vdm.evaluate.significance): the standard error of a mean over maps that come in
simulations, checked against the exact variance of a simulation effect plus map noise, and the paired lead's
false-alarm rate against Student's t."""
import numpy as np
import pytest
from scipy import stats

from hpc_vdm.evaluate import calibration as cal
from hpc_vdm.evaluate import report
from hpc_vdm.evaluate import significance as sig

BANDS = ("k<kN/4", "kN/4-kN/2", "kN/2-kN")


def clustered(rng, n_sims, per_sim, tau, sigma, mean=0.0):
    """(n,) values: a shared effect per simulation (std tau) plus independent map noise (std sigma); (n,) groups."""
    groups = np.repeat(np.arange(n_sims), per_sim)
    return mean + rng.normal(0, tau, n_sims)[groups] + rng.normal(0, sigma, groups.size), groups


@pytest.mark.parametrize("tau", [0.0, 0.03])
def test_the_clustered_standard_error_matches_the_exact_variance_of_the_mean(tau):
    """E[se²] = Var(mean) = (τ² + σ²/m) / G exactly for G simulations of m maps; the i.i.d. s²/n misses τ²'s
    share."""
    rng = np.random.default_rng(0)
    n_sims, per_sim, sigma = 8, 6, 0.02
    exact = (tau ** 2 + sigma ** 2 / per_sim) / n_sims
    se2, naive = [], []
    for _ in range(4000):
        x, g = clustered(rng, n_sims, per_sim, tau, sigma)
        se2.append(sig.cluster_se(x, g) ** 2)
        naive.append(x.var(ddof=1) / x.size)
    assert np.mean(se2) == pytest.approx(exact, rel=0.03)     # se² over 4000 runs: ±0.85% (χ²₇ / 7)
    if tau:
        assert np.mean(naive) < 0.3 * exact                   # maps of a simulation counted as independent


def test_one_map_per_simulation_gives_the_usual_standard_error():
    x = np.random.default_rng(1).normal(size=11)
    assert sig.cluster_se(x, np.arange(11)) == pytest.approx(x.std(ddof=1) / np.sqrt(11), rel=1e-12)
    assert np.isnan(sig.cluster_se(x, np.zeros(11)))          # one simulation: no standard error
    with pytest.raises(ValueError, match="one value and one group per map"):
        sig.cluster_se(x, np.arange(10))


def test_a_paired_lead_of_equal_estimators_is_called_ahead_as_often_as_students_t_says():
    """Two rows equal in distribution, differing per map by a simulation effect plus noise: lead / se is exactly
    Student's t with G − 1 degrees of freedom for balanced simulations, so 'ahead' (> 2 se) has rate P(t > 2)."""
    rng = np.random.default_rng(2)
    n_sims, runs = 6, 6000
    ahead = 0
    for _ in range(runs):
        shared, g = clustered(rng, n_sims, 4, 0.05, 0.05)      # the maps' difficulty, common to both rows
        a, b = shared + clustered(rng, n_sims, 4, 0.01, 0.01)[0], shared + clustered(rng, n_sims, 4, 0.01, 0.01)[0]
        ahead += sig.lead(a, b, g)["ahead"]
    expected = stats.t.sf(sig.Z_AHEAD, n_sims - 1)              # 0.051
    assert ahead / runs == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / runs))


def test_a_lead_cancels_the_maps_difficulty_and_finds_a_real_difference():
    rng = np.random.default_rng(3)
    shared, g = clustered(rng, 4, 6, 0.05, 0.05)
    better = shared + 0.01 + rng.normal(0, 0.002, shared.size)
    out = sig.lead(better, shared, g)
    assert out["lead"] == pytest.approx(np.mean(better - shared))
    assert out["lead_se"] == pytest.approx(sig.cluster_se(better - shared, g))
    assert out["lead_se"] < 0.1 * sig.cluster_se(better, g) and out["ahead"]


def rows_of(values: dict[str, float], rng, n, noise=0.001):
    """{label: {space: {band: {r, r_maps}}}} with per-map r about the given means."""
    out = {}
    for label, r in values.items():
        maps = r + rng.normal(0, noise, n)
        out[label] = {space: {b: {"r": float(maps.mean()), "r_maps": maps.tolist()} for b in BANDS}
                      for space in ("overdensity", "log")}
    return out


def test_band_leads_compare_the_best_row_with_the_best_other_estimator():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(4), 6)
    rows = rows_of({"posterior mean, S → ∞": 0.93, "posterior mean": 0.92, "samples": 0.85,
                    "baseline: regressor": 0.90, "the condition itself": 0.88}, rng, groups.size)
    rows["baseline: HOD"] = rows_of({"x": 0.99}, rng, groups.size - 1)["x"]   # a map left empty: not ranked
    out = sig.band_leads(rows, groups, {"posterior mean, S → ∞": "model", "posterior mean": "model", "samples": "model"})
    assert out["n_sims"] == 4 and out["n_maps"] == 24 and out["not_ranked"] == ["baseline: HOD"]
    b = out["overdensity"]["k<kN/4"]
    assert (b["best"], b["next"]) == ("posterior mean, S → ∞", "baseline: regressor")   # not the model's own mean
    assert b["lead"] == pytest.approx(rows["posterior mean, S → ∞"]["overdensity"]["k<kN/4"]["r"]
                                      - rows["baseline: regressor"]["overdensity"]["k<kN/4"]["r"])
    assert b["ahead"] and set(b["se"]) == set(rows) - {"baseline: HOD"}
    assert set(b["over"]) == {"baseline: regressor", "the condition itself"}          # the other estimators
    assert b["over"]["baseline: regressor"] == {k: b[k] for k in ("lead", "lead_se", "ahead")}
    assert b["over"]["the condition itself"]["lead"] == pytest.approx(0.05, abs=0.002)
    assert "posterior mean, S → ∞ (+0.030 ± 0.000 over baseline: regressor: ahead)" == sig.lead_phrase(b)

    twins = {"the condition itself": rows["the condition itself"],           # the same r(k) by construction
             "baseline: linear transfer": rows["the condition itself"]}
    led = sig.band_leads(rows_of({"model": 0.95}, rng, 24) | twins, groups, report.row_sources("sample"))
    assert (led["log"]["k<kN/4"]["best"], led["log"]["k<kN/4"]["next"]) == ("model", "the condition itself")
    assert set(led["log"]["k<kN/4"]["over"]) == set(twins)
    led = sig.band_leads(rows_of({"model": 0.80}, rng, 24) | twins, groups, report.row_sources("sample"))
    assert led["log"]["k<kN/4"]["next"] == "model"                             # the filter does not lead its condition

    level = sig.band_leads(rows_of({"model": 0.900, "baseline: regressor": 0.899}, rng, 24, noise=0.01), groups)
    assert not level["log"]["kN/2-kN"]["ahead"] and sig.lead_phrase(level["log"]["kN/2-kN"]).endswith("level)")


def test_the_coverage_standard_error_of_a_calibrated_posterior_is_the_binomial_one():
    """Truth and 9 draws i.i.d. per map (calibrated): 'inside' is Bernoulli(p = c / 10) per map, so E[se²] = p (1 − p)
    / n exactly with 6 simulations of 4 maps; pixels of (n, H, W) ranks share their map's simulation."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(6), 4)
    se2 = []
    for _ in range(3000):
        x = rng.normal(size=(10, groups.size))
        c = cal.calibration(x[0], x[1:], groups=groups)["coverage"][0]
        se2.append(c["observed_se"] ** 2)
    p = c["expected"]                                                   # 7 of 10 ranks
    assert np.mean(se2) == pytest.approx(p * (1 - p) / groups.size, rel=0.05)

    x = rng.normal(size=(10, groups.size, 3, 5))
    rank, _ = cal.ranks(x[0], x[1:])
    lo, hi = cal.central_ranks(9, 0.68)
    inside = ((rank >= lo) & (rank <= hi)).astype(float)
    assert cal.coverage(rank, 9, 0.68, groups)["observed_se"] == pytest.approx(
        sig.cluster_se(inside.ravel(), np.repeat(groups, 15)))
    assert "observed_se" not in cal.coverage(rank, 9, 0.68)
