"""Inference from the bound against a known likelihood: Gaussian random fields whose P(k) amplitude and slope are the
two parameters, with the exact denoiser (the Wiener filter per Fourier mode) in place of the network.

For them the bound's diffusion term with the exact denoiser is −ln N(x; 0, P_θ) + const, so the grid of
:mod:`hpc_vdm.emulate.grid` must recover the parameters, with 68% intervals of the analytic Fisher width
F_ij = ½ Σ_k ∂_i ln P ∂_j ln P (the oracles below: exact Gaussian likelihoods computed from FFTs here, and that
Fisher matrix from the P(k) model), and with nominal coverage over many fields.
"""
import numpy as np
import pytest
import torch

from hpc_vdm.diffusion import ParamFieldOracle
from hpc_vdm.emulate import calibration
from hpc_vdm.emulate.grid import Box, Quadrature, bound_terms, centred, term_noise
from hpc_vdm.emulate.mcmc import nuts
from hpc_vdm.emulate.posterior import (DCHI2, GridPosterior, grid_posterior, hpd_level, marginal_interval,
                                       replica_cov, smoothed)


def exact_neg_log_like(oracle: ParamFieldOracle, x: torch.Tensor, theta: torch.Tensor) -> np.ndarray:
    """−ln N(x; 0, P_θ) + const = ½ Σ_k (|X_k|² / (N P_k) + ln P_k) over the full FFT grid (independent of hpc_vdm's
    denoiser: the Gaussian density of the field)."""
    n = x.shape[-1] * x.shape[-2]
    x2 = torch.fft.fft2(x.double()[0, 0]).abs() ** 2 / n
    ln_p = oracle.log_power(theta)                                                       # (G, H, W)
    return (0.5 * (x2[None] / ln_p.exp() + ln_p).sum((1, 2))).numpy()


def fisher_sigma(oracle, truth) -> np.ndarray:
    """Marginal σ of the two parameters from the analytic Fisher matrix, computed here from ln P's derivatives."""
    lp = lambda u: oracle.log_power(torch.as_tensor(u, dtype=torch.float64)[None])[0]   # noqa: E731
    h = 1e-4
    d = [(lp(truth + h * np.eye(2)[i]) - lp(truth - h * np.eye(2)[i])) / (2 * h) for i in range(2)]
    f = 0.5 * torch.stack([torch.stack([(d[i] * d[j]).sum() for j in range(2)]) for i in range(2)])
    assert torch.allclose(f, oracle.fisher(torch.as_tensor(truth)[None]), rtol=1e-6)      # the oracle's own formula
    return torch.linalg.inv(f).diag().sqrt().numpy()


def grid_for(oracle, x, truth, sigma, *, n=21, span=5.0, times=64, draws=1, key=0, prior=((0, 0), (1, 1))):
    """(box, the grid posterior, the exact posterior, the terms (G, K, D)) on truth ± span σ clipped to the prior."""
    box = centred(truth, span * sigma, (n, n), prior, ["u_A", "u_n"])
    theta = torch.from_numpy(box.points())
    eps = term_noise(x.shape[-2:], seed=0, key=key, n_times=times, draws=draws)
    terms = bound_terms(oracle, x, theta, Quadrature.midpoints(times), eps).numpy()
    exact = GridPosterior(box.axes(), exact_neg_log_like(oracle, x, theta).reshape(n, n))
    return box, grid_posterior(box.points(), terms, (n, n)), exact, terms


def test_the_bound_with_the_exact_denoiser_is_the_gaussian_likelihood_up_to_a_constant():
    """Per mode, ½∫γ' E_ε‖ε − ε̂‖² dγ = ½(ln P̃ + x²/P̃) + const; with many times and noise draws the grid's
    differences between θ match the exact ones."""
    oracle = ParamFieldOracle((16, 16))
    x = oracle.draw(torch.tensor([[0.4, 0.6]]), generator=torch.Generator().manual_seed(3))
    theta = torch.tensor([[0.4, 0.6], [0.6, 0.6], [0.4, 0.4], [0.2, 0.8]], dtype=torch.float64)
    eps = term_noise((16, 16), seed=1, key=0, n_times=256, draws=8)
    bound = bound_terms(oracle, x, theta, Quadrature.midpoints(256), eps).mean(-1).sum(1).numpy()
    exact = exact_neg_log_like(oracle, x, theta)
    np.testing.assert_allclose(bound - bound[0], exact - exact[0], atol=0.06 * np.ptp(exact) + 0.5)


def test_the_grid_recovers_the_parameters_with_the_fisher_width():
    oracle = ParamFieldOracle((32, 32))
    truth = np.array([0.45, 0.55])
    sigma = fisher_sigma(oracle, truth)
    errors, widths = [], []
    for i in range(6):
        x = oracle.draw(torch.as_tensor(truth)[None], generator=torch.Generator().manual_seed(10 + i))
        box, post, exact, _ = grid_for(oracle, x, truth, sigma, key=i)
        s, e = post.summary(truth), exact.summary(truth)
        errors.append((np.array(s["mean"]) - truth) / sigma)
        widths.append([(iv[1] - iv[0]) / 2 for iv in s["interval_68"]])
        # common random numbers: the surrogate's maximum sits within a fraction of σ of the exact likelihood's
        assert np.all(np.abs(np.subtract(s["mean"], e["mean"])) < 1.0 * sigma), (s["mean"], e["mean"])
        assert s["edge_mass"] < 0.03  # the box holds the posterior
    assert np.all(np.abs(errors) < 3.5), errors                       # recovered: within 3.5σ, every field
    ratio = np.mean(widths, axis=0) / sigma
    assert np.all(np.abs(ratio - 1) < 0.2), ratio                     # the 68% half-width is the Fisher σ (±20%)


@pytest.mark.slow
def test_coverage_over_many_fields_is_nominal():
    """Truths drawn from the prior U(0.1, 0.9)², one field each, the grid over truth ± 5σ clipped to the prior (the
    posterior's support), 16 terms x 4 noise draws. The fixed-noise estimate's maximum scatters about the exact one
    by ~0.5σ here (~4σ/sqrt(K D)), which the raw posterior does not know: it is over-confident. Convolved with that
    noise, measured by the spread of the single-draw posteriors, its marginal 68%/95% intervals and 2D HPD regions
    cover at the nominal rates within ±0.05 over 160 fields (binomial standard error 0.037 at 68%; the exact
    likelihood's own posteriors: 0.675/0.688 and HPD 0.64 on these fields), and TARP's curve stays near the
    diagonal (exact: max gap 0.03-0.06 by reference seed)."""
    oracle = ParamFieldOracle((24, 24))
    prior = ((0.1, 0.1), (0.9, 0.9))
    rng = np.random.default_rng(5)
    raw, fixed, samples, weights, truths = [], [], [], [], []
    for i in range(160):
        truth = rng.uniform(0.1, 0.9, 2)
        sigma = fisher_sigma(oracle, truth)
        x = oracle.draw(torch.as_tensor(truth)[None], generator=torch.Generator().manual_seed(1000 + i))
        box, post, _, terms = grid_for(oracle, x, truth, sigma, n=21, times=16, draws=4, key=i, prior=prior)
        corrected = smoothed(post, replica_cov(box.points(), terms, (21, 21)))
        raw.append(post.summary(truth))
        fixed.append(corrected.summary(truth))
        samples.append(box.points())
        weights.append(corrected.p.ravel())
        truths.append(truth)
    cov, cov_raw = calibration.coverage(fixed), calibration.coverage(raw)
    for level, tag in ((0.68, "68"), (0.95, "95")):
        assert np.all(np.abs(np.subtract(cov[f"marginal_{tag}"], level)) <= 0.05), cov
        assert abs(cov[f"hpd_{tag}"] - level) <= 0.05, cov
    assert cov_raw["hpd_68"] < cov["hpd_68"] - 0.03, (cov_raw, cov)    # the raw posterior is over-confident
    t = calibration.tarp(np.stack(samples), np.stack(truths), *prior, weights=np.stack(weights))
    assert t["max_gap"] < 0.12, t["max_gap"]


def test_nuts_on_the_bound_samples_the_grid_posterior():
    """The chain's potential is the grid's −ln L with the same fixed noise: over the same box, its mean and spread
    are the grid's (4 terms: the surrogate, not its accuracy, is under test here)."""
    oracle = ParamFieldOracle((32, 32))
    truth = np.array([0.5, 0.5])
    sigma = fisher_sigma(oracle, truth)
    x = oracle.draw(torch.as_tensor(truth)[None], generator=torch.Generator().manual_seed(7))
    quad, eps = Quadrature.midpoints(4), term_noise((32, 32), seed=0, key=0, n_times=4, draws=1)
    box = Box(tuple(truth - 4 * sigma), tuple(truth + 4 * sigma), (61, 61))
    neg = bound_terms(oracle, x, torch.from_numpy(box.points()), quad, eps).mean(-1).sum(1).numpy().reshape(61, 61)
    s = GridPosterior(box.axes(), neg).summary()

    def f(theta):
        return bound_terms(oracle, x, theta, quad, eps).mean(-1).sum()

    out = nuts(f, box.lo, box.hi, truth, n_samples=300, warmup=100, seed=3)
    mean, std = out["samples"].mean(0), out["samples"].std(0)
    se = np.asarray(s["std"]) / np.sqrt(np.asarray(out["ess"]))
    assert np.all(np.abs(mean - s["mean"]) < 4 * se), (mean, s["mean"], se)
    np.testing.assert_allclose(std, s["std"], rtol=0.25)
    assert out["divergences"] == 0


def test_grid_summaries_of_a_gaussian_surface():
    """−ln L = ½ (θ − μ)ᵀ C⁻¹ (θ − μ) on a fine grid: mean μ, σ's, ±σ intervals, HPD level of Δχ² = 2.30 is 0.68."""
    mu, sd, rho = np.array([0.3, 0.8]), np.array([0.01, 0.03]), 0.5
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    box = Box(tuple(mu - 6 * sd), tuple(mu + 6 * sd), (241, 241))
    pts = box.points() - mu
    neg = 0.5 * np.einsum("gi,ij,gj->g", pts, np.linalg.inv(cov), pts).reshape(241, 241)
    s = GridPosterior(box.axes(), neg).summary(mu + np.array([0.5 * sd[0], 0.0]))
    np.testing.assert_allclose(s["mean"], mu, atol=1e-6)
    np.testing.assert_allclose(s["std"], sd, rtol=2e-3)
    for i in range(2):
        np.testing.assert_allclose(s["interval_68"][i], [mu[i] - 0.9945 * sd[i], mu[i] + 0.9945 * sd[i]], rtol=2e-4)
    np.testing.assert_allclose(s["fom"], 1 / np.sqrt(np.linalg.det(cov)), rtol=5e-3)
    on_contour = 0.5 * DCHI2[1]
    assert abs(hpd_level(neg, on_contour) - 0.68) < 0.01  # 1 − exp(−2.2958/2) = 0.6827
    assert s["covers_68"] == [True, True] and s["covers_95"] == [True, True]


def test_marginal_interval_of_a_uniform_marginal():
    axis = np.linspace(0, 1, 11)
    lo, hi = marginal_interval(axis, np.ones(11), 0.5)
    assert np.isclose(lo, -0.05 + 0.25 * 1.1) and np.isclose(hi, -0.05 + 0.75 * 1.1)


def test_tarp_is_diagonal_for_calibrated_and_below_for_over_confident_posteriors():
    """Gaussian posteriors N(m, s²) with the truth drawn from them: ECP(α) = α; twice too narrow: far from it."""
    rng = np.random.default_rng(0)
    n, s = 600, 0.05
    centres = rng.uniform(0.3, 0.7, (n, 2))
    truths = centres + s * rng.standard_normal((n, 2))
    samples = centres[:, None] + s * rng.standard_normal((n, 400, 2))
    good = calibration.tarp(samples, truths, [0, 0], [1, 1], seed=1)
    narrow = calibration.tarp(centres[:, None] + 0.5 * (samples - centres[:, None]), truths, [0, 0], [1, 1], seed=1)
    assert good["max_gap"] < 0.07, good["max_gap"]
    assert narrow["max_gap"] > 0.15, narrow["max_gap"]
