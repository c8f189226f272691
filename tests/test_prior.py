"""The prior bases of the score network (model.vdm.prior: linear_transfer, regressor): exact against their Gaussian,
fitted to known constants, local with the recorded reach, tiled exactly, and carried by checkpoints and exports."""
import math
import types

import numpy as np
import pytest
import torch

from hpc_vdm.config import ConfigError, load_config
from hpc_vdm.diffusion import build_vdm, sample_loop, time_grid
from hpc_vdm.diffusion.tiled import INITIAL, keyed_noise, sample_tiled
from hpc_vdm.models import locality, receptive_radius
from hpc_vdm.models.prior import CorrelatedTransferPrior, LinearTransferPrior, RegressorPrior, gaussian_kernel
from hpc_vdm.models.wiener import wavenumber
from hpc_vdm.models.regressor import build_regressor, regressor_options
from hpc_vdm.models.reach import randomised, score_fn, structural_radius

COND_NORM, TARGET_NORM = (1.0, 0.8, 2.5), (0.0, 11.1, 0.5)   # (offset, mean, std) of log10(x + offset)


def fitted_prior(smooth_px=1.0, a=600.0, b=1.5e11, res_mean=-0.2, res_std=0.3):
    """A prior whose constants are set as a fit would set them (no data needed)."""
    prior = LinearTransferPrior(smooth_px)
    values = dict(cond_offset=COND_NORM[0], cond_mean=COND_NORM[1], cond_log_std=math.log(COND_NORM[2]),
                  target_offset=TARGET_NORM[0], target_mean=TARGET_NORM[1], target_log_std=math.log(TARGET_NORM[2]),
                  log10_a=math.log10(a), log10_b=math.log10(b), res_mean_dex=res_mean, log_res_std_dex=math.log(res_std))
    with torch.no_grad():
        prior.constants.copy_(torch.tensor([values[n] for n in prior.NAMES]))
    return prior


def model_cfg(**kw):
    base = dict(channels=8, channel_mults=[1, 2], blocks_per_level=1, attention_heads=1, norm_groups=8, dropout=0.0,
                add_zt=True, attention=False, norm="pixel", attention_radius=0)
    return types.SimpleNamespace(**{**base, **kw})


def vdm_cfg(**kw):
    base = dict(gamma_min=-13.3, gamma_max=13.3, schedule="fixed_linear", data_noise=1e-3, loss_recon=True,
                antithetic=True, weighting="elbo", weighting_bias=2.0, prior="linear_transfer", prior_smooth_px=1.0)
    return types.SimpleNamespace(**{**base, **kw})


def prior_vdm(smooth_px=1.0, **model_kw):
    vdm = build_vdm(model_cfg(**model_kw), vdm_cfg(prior_smooth_px=smooth_px))
    vdm.score.prior.load_state_dict(fitted_prior(smooth_px).state_dict())
    return vdm


def stellar_cond(shape, seed=0):
    """Normalised log stellar maps: mostly empty pixels (log10(1) = 0) and a few galaxies of 1e9-1e11."""
    g = torch.Generator().manual_seed(seed)
    stars = torch.where(torch.rand(shape, generator=g) < 0.1, 10 ** (9 + 2 * torch.rand(shape, generator=g)),
                        torch.zeros(shape))
    return ((stars + COND_NORM[0]).log10() - COND_NORM[1]) / COND_NORM[2]


def test_gaussian_kernel_is_normalised_with_the_recorded_reach():
    for w, radius in [(0.0, 0), (0.5, 2), (1.0, 3), (2.2, 7)]:
        k = gaussian_kernel(w)
        assert k.shape == (1, 1, 2 * radius + 1, 2 * radius + 1) and float(k.sum()) == pytest.approx(1.0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="smooth_px"):
            gaussian_kernel(bad)


def test_the_base_is_the_exact_denoiser_of_its_gaussian():
    """An untrained network adds exactly zero (zero-initialised output conv), so sampling the VDM samples the prior
    N(μ(c), s²) per pixel: the few-step samplers, exact within 2% on Gaussian fields, give its mean and variance."""
    vdm = prior_vdm()
    prior = vdm.score.prior
    cond = stellar_cond((1, 1, 16, 16))
    mu, s = prior.mean(cond)[0, 0], float(prior.spread())
    # μ by hand: the transfer of the physical stellar map, in the target's normalised log
    stars = 10 ** (cond[0, 0].double() * COND_NORM[2] + COND_NORM[1]) - COND_NORM[0]
    smooth = torch.nn.functional.conv2d(torch.nn.functional.pad(stars[None, None], (3,) * 4, mode="circular"),
                                        gaussian_kernel(1.0))[0, 0]
    want_mu = (torch.log10(600.0 * smooth + 1.5e11) - 0.2 - TARGET_NORM[1]) / TARGET_NORM[2]
    torch.testing.assert_close(mu.double(), want_mu, rtol=0, atol=1e-5)
    assert s == pytest.approx(0.3 / TARGET_NORM[2], rel=1e-6)
    assert_samples_the_prior(vdm, cond, mu, s)


def assert_samples_the_prior(vdm, cond, mu, s, params=None, draws=512):
    """The few-step samplers (exact within 2% on Gaussian fields) draw N(μ, s²) per pixel with a network that adds
    nothing: standardised draws have mean 0 and variance 1."""
    conds = cond.expand(draws, -1, -1, -1)
    ps = None if params is None else params.expand(draws, -1)
    h, w = cond.shape[-2:]
    for sampler, steps in [("unipc", 24), ("dpm3m", 32)]:   # ancestral's known deficit: test_sampler_oracle
        gammas = vdm.gamma(time_grid(steps, sampler)).detach()
        g = torch.Generator().manual_seed(1)
        z1 = torch.randn(draws, 1, h, w, generator=g)
        with torch.no_grad():
            x = sample_loop(lambda z, gm: vdm.eps_hat(z, gm.expand(draws), conds, ps), z1, gammas,
                            lambda k: torch.randn(draws, 1, h, w, generator=g), sampler=sampler)
        u = (x[:, 0] - mu) / s                                          # (draws, H, W): N(0, 1) if exact
        assert abs(float(u.mean())) < 0.02, (sampler, float(u.mean()))  # 131072 values: σ of the mean 0.003
        assert float(u.var()) == pytest.approx(1.0, abs=0.03), sampler


def test_fit_recovers_the_transfer_and_the_residual():
    """target = (A K⊛S + B) 10^(r̄ + s n): least squares in mass sees E[target | S] = c (A K⊛S + B) with c =
    10^r̄ E[10^{s n}] = 10^(r̄ + s² ln 10 / 2), and the log residual about it has mean r̄ − log10 c and std s."""
    rng = np.random.default_rng(0)
    a, b, r_mean, r_std = 400.0, 2e11, 0.1, 0.25
    prior = LinearTransferPrior(1.5)
    stars = np.where(rng.random((24, 32, 32)) < 0.1, 10 ** rng.uniform(9, 11, (24, 32, 32)), 0.0)
    smooth = prior.smooth(torch.from_numpy(stars)[:, None])[:, 0].numpy()
    target = (a * smooth + b) * 10 ** (r_mean + r_std * rng.standard_normal(stars.shape))
    got = prior.fit([(stars[:12], target[:12]), (stars[12:], target[12:])], COND_NORM, TARGET_NORM)
    c = 10 ** (r_mean + r_std ** 2 * math.log(10) / 2)
    assert got["A"] == pytest.approx(a * c, rel=0.03) and got["B"] == pytest.approx(b * c, rel=0.01)
    assert got["res_mean_dex"] == pytest.approx(r_mean - math.log10(c), abs=0.01)
    assert got["res_std_dex"] == pytest.approx(r_std, rel=0.02)
    assert float(prior.target_mean) == pytest.approx(TARGET_NORM[1]) and float(prior.spread()) == pytest.approx(
        r_std / TARGET_NORM[2], rel=0.02)


def test_a_fit_without_a_positive_transfer_is_refused_naming_it():
    rng = np.random.default_rng(1)
    stars = np.where(rng.random((4, 16, 16)) < 0.2, 1e10, 0.0)
    falling = 5e11 - 10.0 * stars + rng.random(stars.shape) * 1e9        # A < 0
    with pytest.raises(ValueError, match=r"A=-.*prior needs both > 0"):
        LinearTransferPrior(0.0).fit([(stars, falling)], COND_NORM, TARGET_NORM)
    with pytest.raises(ValueError, match="constant"):
        LinearTransferPrior(0.0).fit([(np.zeros((2, 8, 8)), np.ones((2, 8, 8)))], COND_NORM, TARGET_NORM)
    with pytest.raises(ValueError, match="at least one"):
        LinearTransferPrior(0.0).fit([], COND_NORM, TARGET_NORM)


@pytest.mark.parametrize("smooth_px,radius", [(0.0, 15), (7.0, 21)])
def test_the_reach_is_the_larger_of_the_unets_and_the_priors(smooth_px, radius):
    """Measured (float64 gradients, random weights) = recorded: a one-level U-Net's 15 px, or the prior's 21 px
    kernel (w = 7) where it is wider."""
    vdm = prior_vdm(smooth_px, channel_mults=[1])
    net = randomised(vdm.score)
    with torch.no_grad():   # keep the prior's constants meaningful: the randomised copy only perturbs the network
        net.prior.constants.copy_(vdm.score.prior.constants.double())
    measured = receptive_radius(score_fn(net, gamma=0.0), in_channels=2, stride=2, size=48)
    assert measured == structural_radius(vdm.score) == radius
    assert locality(vdm.score)["receptive_radius"] == measured and locality(vdm.score)["tile_safe"]


def test_a_tiled_draw_with_the_prior_equals_the_whole_field():
    vdm = prior_vdm(2.0, channel_mults=[1])   # reach 15 (prior 6), stride 2
    with torch.no_grad():   # a network that does something, besides the base
        for p in vdm.score.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    cond = stellar_cond((1, 48, 40), seed=2)
    halo = structural_radius(vdm.score) + 1   # 16: a multiple of the stride
    with torch.no_grad():
        gammas = vdm.gamma(time_grid(6, "unipc")).detach()
        z1 = keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=INITIAL)
        want = sample_loop(lambda z, g: vdm.eps_hat(z[None], g.expand(1), cond[None])[0], z1, gammas,
                           lambda s: keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=s), sampler="unipc")
        got = sample_tiled(vdm, cond, tile=24, halo=halo, n_steps=6, seed=5, batch_size=4, sampler="unipc")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)   # fp32 summation order


def test_a_unet_refuses_a_prior_it_cannot_use():
    from hpc_vdm.models import UNet

    with pytest.raises(ValueError, match="prior base needs one condition map"):
        UNet(channels=8, channel_mults=(1,), cond_channels=0, add_zt=False, attention=False,
             prior=LinearTransferPrior(1.0))
    built = build_vdm(model_cfg(add_zt=True), vdm_cfg())   # the config's add_zt gives way to the prior
    assert built.score.prior is not None and not built.score.add_zt


def test_a_prior_without_a_map_condition_is_a_config_error():
    from hpc_vdm.families import make_family

    cfg = load_config("configs/emulator.yaml", ["model.vdm.prior=linear_transfer"])
    with pytest.raises(ConfigError, match="model.vdm.prior='linear_transfer'.*no map condition"):
        make_family(cfg).check()
    with pytest.raises(ConfigError, match="prior"):
        load_config("configs/demo.yaml", ["model.vdm.prior=quadratic"])


def test_a_prior_model_trains_resumes_as_uninterrupted_and_exports_its_fit(maps_store, tmp_path):
    """The fit is the training maps' (the same numbers on every build), frozen through training, carried by the
    checkpoint (a resumed run ends on the uninterrupted run's weights) and by the export a bundle loads."""
    from helpers import exported, train
    from hpc_vdm.bundle import load_bundle
    from hpc_vdm.families import make_family

    sets = ("model.vdm.prior=linear_transfer", "model.vdm.prior_smooth_px=2", "train.steps=4")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    proc = train(maps_store, straight, *sets)
    assert "linear-transfer prior on" in proc.stderr
    train(maps_store, resumed, *sets[:2], "train.steps=2", "train.export=false")  # (re-export: test_train)
    assert "resumed from step00000002" in train(maps_store, resumed, *sets).stderr
    a, b = exported(straight), exported(resumed)
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])

    bundle = load_bundle(straight / "export" / "model.pt")
    cfg = load_config("configs/train_tiny.yaml", [f"data.store={maps_store}", *sets])
    family = make_family(cfg)
    family.check()
    fresh = family.build().score.prior.constants
    torch.testing.assert_close(bundle.module.score.prior.constants, fresh, rtol=0, atol=0)
    assert float(fresh[LinearTransferPrior.NAMES.index("log10_a")]) > 0   # fitted, not the placeholder zeros
    assert bundle.locality["receptive_radius"] == structural_radius(bundle.module.score)


def test_the_constants_stay_fp32_in_a_bf16_network():
    """bf16 would round log10 B ~ 11.2 by 0.03 dex: the prior keeps its constants in fp32 through dtype casts, and
    a bf16 network's base is the fp32 one (to bf16 rounding of its inputs and of the sum)."""
    vdm = prior_vdm()
    want = vdm.score.prior.constants.clone()
    cond, z = stellar_cond((2, 1, 16, 16)), torch.randn(2, 1, 16, 16)
    g = torch.tensor([-3.0, 4.0])
    base32 = vdm.score.prior.eps_hat(z, g, cond)
    vdm = vdm.to(torch.bfloat16)
    assert vdm.score.prior.constants.dtype == torch.float32 and torch.equal(vdm.score.prior.constants, want)
    assert next(vdm.score.conv_out.parameters()).dtype == torch.bfloat16
    got = vdm.eps_hat(z, g, cond)   # the zero-initialised network adds nothing
    torch.testing.assert_close(got, base32, rtol=0.05, atol=0.05)


# -- the correlated-transfer prior (a level in θ, a fitted residual spectrum) ------------------------------------
def red_power(k, s=0.4, boost=30.0, k0=0.08):
    """An isotropic spectrum [normalised units² per mode] ~ boost times redder than white at k → 0 (a correlation
    length of ~1 / (2π k0) = 2 px), as the science maps' linear-transfer residual (P(0) / s² 53)."""
    return s ** 2 * (0.3 + boost * np.exp(-0.5 * (k / k0) ** 2))


def correlated_prior(reach_px=24, n_params=2, level=(0.1, 0.3, -0.2), power=red_power, smooth_px=1.0,
                     level_log=None):
    """A correlated-transfer prior whose constants are set as a fit would set them (no data needed)."""
    prior = CorrelatedTransferPrior(smooth_px, reach_px, n_params=n_params, level_log=level_log)
    prior.constants.data.copy_(fitted_prior(smooth_px).constants)
    with torch.no_grad():
        prior.level.copy_(torch.tensor(level[:prior.level.numel()]))
        prior.log_power.copy_(torch.from_numpy(np.log(power(np.linspace(0, math.sqrt(0.5), prior.log_power.numel())))))
    return prior


def gaussian_field(power, n, size, seed=0):
    """(n, size, size) periodic Gaussian fields of isotropic spectrum ``power(|k|)`` (white s² -> P = s²)."""
    g = torch.Generator().manual_seed(seed)
    amp = torch.from_numpy(np.sqrt(power(wavenumber((size, size)).numpy()))).float()
    return torch.fft.ifft2(torch.fft.fft2(torch.randn(n, size, size, generator=g)) * amp).real


def fourier_denoiser(z, mu, gamma, power_k):
    """The exact E[ε | z_t] of x ~ N(μ, C), C stationary of spectrum power_k on the map's own grid: per Fourier mode
    σ (z̃ − α μ̃) / (α² P + σ²); an independent oracle of the kernel the prior truncates."""
    a2, s2 = torch.sigmoid(-gamma).view(-1, 1, 1), torch.sigmoid(gamma).view(-1, 1, 1)
    return s2.sqrt() * torch.fft.ifft2(torch.fft.fft2(z - a2.sqrt() * mu) / (a2 * power_k + s2)).real


def test_the_correlated_base_is_the_fourier_denoiser_of_its_field_to_its_truncation():
    """On fields of its own spectrum, the truncated kernel (24 px) is the exact per-mode denoiser to < 1% rms at
    every noise level; with a white spectrum it is the linear-transfer prior's (a delta kernel) to float rounding;
    μ adds the level b₀ + β·θ to the linear transfer's."""
    prior, size, n = correlated_prior(), 96, 6
    cond = stellar_cond((n, 1, size, size))
    theta = torch.randn(n, 2, generator=torch.Generator().manual_seed(3))
    mu = prior.mean(cond, theta)[:, 0]
    lt_mu = LinearTransferPrior.mean(prior, cond)[:, 0]
    torch.testing.assert_close(mu - lt_mu, (0.1 + theta @ torch.tensor([0.3, -0.2])).view(-1, 1, 1).expand_as(mu))
    x = mu + gaussian_field(red_power, n, size)
    power_k = prior.power(wavenumber((size, size)).float())
    for gamma in (-8.0, -3.0, 0.0, 3.0, 8.0):
        g = torch.full((n,), gamma)
        z = torch.sigmoid(-g).sqrt().view(-1, 1, 1) * x + torch.sigmoid(g).sqrt().view(-1, 1, 1) * torch.randn_like(x)
        want = fourier_denoiser(z, mu, g, power_k)
        got = prior.eps_hat(z[:, None], g, cond, theta)[:, 0]
        assert float((got - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt()) < 0.01, gamma

    white = correlated_prior(reach_px=5, n_params=0, level=(0.0,), power=lambda k: np.full_like(k, 0.6 ** 2))
    plain = fitted_prior(res_std=0.6 * TARGET_NORM[2])
    z, g = torch.randn(3, 1, 32, 32), torch.tensor([-4.0, 0.0, 5.0])
    cond = stellar_cond((3, 1, 32, 32), seed=1)
    torch.testing.assert_close(white.eps_hat(z, g, cond), plain.eps_hat(z, g, cond), rtol=1e-5, atol=1e-5)
    assert float(white.spread()) == pytest.approx(0.6, rel=1e-6)


def test_an_untrained_correlated_model_samples_the_fields_spectrum():
    """A network that adds nothing samples N(μ, C): the draws' band powers are the prior's spectrum (a 12 px kernel
    on 48² windows; 64 draws: 1-3% noise per band) and their map levels scatter as P(0) says, not as white noise."""
    prior = correlated_prior(reach_px=12, n_params=0, level=(0.0,))
    vdm = build_vdm(model_cfg(), vdm_cfg(prior="correlated_transfer", prior_reach_px=12))
    vdm.score.prior.load_state_dict(prior.state_dict())
    draws, size = 64, 48
    cond = stellar_cond((1, 1, size, size), seed=4).expand(draws, -1, -1, -1)
    gammas = vdm.gamma(time_grid(24, "unipc")).detach()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        x = sample_loop(lambda z, gm: vdm.eps_hat(z, gm.expand(draws), cond), torch.randn(draws, 1, size, size,
                        generator=g), gammas, lambda k: torch.randn(draws, 1, size, size, generator=g), sampler="unipc")
        r = (x - prior.mean(cond))[:, 0]                                             # (draws, H, W)
    k = wavenumber((size, size)).float()
    pk = torch.fft.fft2(r).abs().pow(2).mean(0) / size ** 2                         # (H, W)
    want = torch.from_numpy(red_power(k.numpy())).float()
    for lo, hi in [(0.01, 0.08), (0.08, 0.2), (0.2, 0.5)]:
        band = (k > lo) & (k <= hi)
        assert float(pk[band].mean() / want[band].mean()) == pytest.approx(1.0, abs=0.05), (lo, hi)
    level_var = float(r.mean((1, 2)).var() * size ** 2)                               # = P(0) for N(μ, C)
    assert level_var == pytest.approx(float(want[0, 0]), rel=0.35)                   # 64 draws: χ² of 63 dof
    assert level_var > 10 * float(want.mean())                                        # a white base: 1


def test_the_correlated_fit_recovers_the_level_and_the_spectrum():
    """Targets = μ_LT + b₀ + β·θ + a field of known spectrum: least squares of the map levels on [1, θ] gives
    b₀, β, and the periodogram about them gives P(|k|) at the nodes (a band average: within 10%) and the right
    spread."""
    prior = correlated_prior(reach_px=8, n_params=2)
    fresh = CorrelatedTransferPrior(1.0, 8, n_params=2)
    fresh.constants.data.copy_(prior.constants)
    n, size = 96, 32
    g = torch.Generator().manual_seed(7)
    cond = stellar_cond((n, 1, size, size), seed=5)
    theta = torch.randn(n, 2, generator=g)
    x = prior.mean(cond, theta) + gaussian_field(red_power, n, size, seed=8)[:, None]
    got = fresh.fit_field([(cond[i:i + 32], theta[i:i + 32], x[i:i + 32]) for i in range(0, n, 32)])
    # a map's level carries the field's P(0) / N_pix: σ ≈ 0.22 per map, so β is known to ~0.02
    torch.testing.assert_close(fresh.level, prior.level, rtol=0, atol=0.08)
    assert got["maps"] == n and got["level_std_after"] < got["level_std"]
    nodes = np.linspace(0, math.sqrt(0.5), fresh.log_power.numel())
    inner = (nodes > 0.05) & (nodes < 0.45)
    np.testing.assert_allclose(fresh.log_power.numpy()[inner], np.log(red_power(nodes[inner])), atol=0.1)
    assert float(fresh.spread()) == pytest.approx(float(prior.spread()), rel=0.05)
    with pytest.raises(ValueError, match="reads 2 parameters; the maps carry 0"):
        fresh.fit_field([(cond, None, x)])
    with pytest.raises(ValueError, match="reads 2 parameters, got None"):
        fresh.mean(cond)
    with pytest.raises(ValueError, match="reach_px"):
        CorrelatedTransferPrior(1.0, -1)


def test_the_log_cdm_level_is_the_formula_and_its_fit_recovers_it():
    """``level_log``: μ = μ_LT + b₀ + β·θ + β_φ log10(shift + scale θ_i) (the formula, written out here), a fit
    recovers the level of such targets where a level linear in θ misses it, and a non-positive argument or a bad
    index is refused with the value named."""
    spec = (0, 0.4, 0.051)                                                   # Omega_m - Omega_b on the LH range
    level = (0.1, 0.3, -0.2, 2.0)
    prior = correlated_prior(reach_px=8, n_params=2, level=level, level_log=spec)
    n, size = 96, 32
    cond = stellar_cond((n, 1, size, size), seed=5)
    theta = torch.rand(n, 2, generator=torch.Generator().manual_seed(7))
    want = (LinearTransferPrior.mean(prior, cond) + 0.1 + (theta @ torch.tensor([0.3, -0.2])).view(-1, 1, 1, 1)
            + 2.0 * torch.log10(0.051 + 0.4 * theta[:, :1]).view(-1, 1, 1, 1))
    torch.testing.assert_close(prior.mean(cond, theta), want, rtol=0, atol=1e-6)
    x = want + gaussian_field(red_power, n, size, seed=8)[:, None]
    batches = [(cond[i:i + 32], theta[i:i + 32], x[i:i + 32]) for i in range(0, n, 32)]
    fits = {}
    for name, log in (("log", spec), ("linear", None)):
        fresh = CorrelatedTransferPrior(1.0, 8, n_params=2, level_log=log)
        fresh.constants.data.copy_(prior.constants)
        fits[name] = fresh.fit_field(batches), fresh
    # the level as a function of θ (the intercept and β_φ trade off: log10(Ω_m − Ω_b) has mean −0.6 here)
    levels = {name: fresh.regressors(theta, n) @ fresh.level for name, (_, fresh) in fits.items()}
    truth = prior.regressors(theta, n) @ prior.level
    rms = {name: float((level - truth).pow(2).mean().sqrt()) for name, level in levels.items()}
    assert rms["log"] < 0.03 and rms["linear"] > 5 * rms["log"]                        # measured 0.009, 0.110
    assert fits["log"][1].level[-1].item() == pytest.approx(2.0, abs=0.15)
    low = theta.clone()
    low[0, 0] = -0.2                                                           # Omega_m = 0.02 < Omega_b
    with pytest.raises(ValueError, match=r"positive argument; a training map has -0\.029"):
        fits["log"][1].fit_field([(cond[:32], low[:32], x[:32])])
    with pytest.raises(ValueError, match="an index in"):
        CorrelatedTransferPrior(1.0, 8, n_params=2, level_log=(2, 0.4, 0.051))


def test_the_cdm_level_regressor_is_omega_m_minus_omega_b():
    """camels.cdm_level_regressor: shift + scale θ_i = Ω_m − Ω_b for θ normalised by normalise_params (an
    independent path), and a model without Omega_m is told so."""
    from hpc_vdm.data import camels

    names = ["sigma_8", "Omega_m", "A_SN1"]
    i, scale, shift = camels.cdm_level_regressor(names)
    rows = np.tile(camels.fiducial_params(), (3, 1))
    rows[:, 0] = [0.1, 0.3, 0.5]
    theta = camels.normalise_params(rows, names)
    np.testing.assert_allclose(shift + scale * theta[:, i], rows[:, 0] - 0.049, rtol=1e-6)
    with pytest.raises(ValueError, match=r"not given \(model.params = \['sigma_8'\]\)"):
        camels.cdm_level_regressor(["sigma_8"])


def test_the_correlated_reach_is_recorded_measured_and_tiles_exactly():
    """The prior reads reach_px + ceil(3 w) pixels: a 17 px kernel and K_w of w = 1 give 20, past a one-level
    U-Net's 15; measured = recorded, and a tiled draw equals the whole field with that halo."""
    vdm = build_vdm(model_cfg(channel_mults=[1]), vdm_cfg(prior="correlated_transfer", prior_reach_px=17),
                    n_params=2)
    vdm.score.prior.load_state_dict(correlated_prior(reach_px=17).state_dict())
    net = randomised(vdm.score)
    with torch.no_grad():
        for name in ("constants", "level", "log_power"):
            getattr(net.prior, name).copy_(getattr(vdm.score.prior, name).double())
    theta = torch.tensor([[0.2, -0.4]], dtype=torch.float64)
    measured = receptive_radius(score_fn(net, gamma=0.0, params=theta), in_channels=2, stride=2, size=64)
    assert measured == structural_radius(vdm.score) == 20

    cond = stellar_cond((1, 56, 48), seed=2)
    halo = structural_radius(vdm.score)   # 20: a multiple of the stride
    with torch.no_grad():
        gammas = vdm.gamma(time_grid(6, "unipc")).detach()
        z1 = keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=INITIAL)
        want = sample_loop(lambda z, g: vdm.eps_hat(z[None], g.expand(1), cond[None], theta.float())[0], z1, gammas,
                           lambda s: keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=s), sampler="unipc")
        got = sample_tiled(vdm, cond, tile=24, halo=halo, n_steps=6, seed=5, batch_size=4, sampler="unipc",
                           params=theta.float()[0])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_the_family_fits_the_correlated_prior_once_from_the_training_maps(maps_store):
    """``model.vdm.prior=correlated_transfer``: the family fits the transfer, the level and the residual's spectrum
    on the training maps, the same numbers on every build (every rank fits alone), and a bundle's model rebuilt
    from the same options takes that state."""
    from hpc_vdm.families import make_family

    sets = [f"data.store={maps_store}", "model.vdm.prior=correlated_transfer", "model.vdm.prior_reach_px=6"]
    cfg = load_config("configs/train_tiny.yaml", sets)
    first, second = (make_family(cfg).build().score.prior for _ in range(2))
    assert isinstance(first, CorrelatedTransferPrior) and first.receptive_radius == 9
    for name, t in first.state_dict().items():
        assert torch.equal(t, second.state_dict()[name]), name
    assert float(first.log_power.std()) > 0.1 and float(first.log_power[0]) > float(first.log_power[-1])   # red
    rebuilt = build_vdm(cfg.model, cfg.model.vdm).score.prior
    rebuilt.load_state_dict(first.state_dict())
    z, g = torch.randn(2, 1, 32, 32), torch.tensor([-2.0, 3.0])
    cond = stellar_cond((2, 1, 32, 32))
    torch.testing.assert_close(rebuilt.eps_hat(z, g, cond), first.eps_hat(z, g, cond), rtol=0, atol=0)


def test_the_family_fits_the_log_cdm_level_and_refuses_what_it_cannot_read(maps_store):
    """``model.vdm.prior_level=log_cdm``: the family fits 1 + P + 1 level coefficients, a model rebuilt from the
    config alone (as an export's is) takes the state and gives the same ε̂; a config it cannot read (no Omega_m,
    or another prior) is refused before anything is built."""
    from hpc_vdm.bundle import build_module
    from hpc_vdm.families import make_family

    sets = [f"data.store={maps_store}", "model.vdm.prior=correlated_transfer", "model.vdm.prior_reach_px=6",
            "model.params=[Omega_m,sigma_8]", "model.vdm.prior_level=log_cdm"]
    cfg = load_config("configs/train_tiny.yaml", sets)
    fitted = make_family(cfg).build().score.prior
    assert fitted.level.numel() == 4 and fitted.level_log == (0, 0.4, 0.1 - 0.049)
    rebuilt = build_module(cfg).score.prior
    rebuilt.load_state_dict(fitted.state_dict())
    z, g = torch.randn(2, 1, 32, 32), torch.tensor([-2.0, 3.0])
    cond, theta = stellar_cond((2, 1, 32, 32)), torch.tensor([[0.1, 0.5], [0.9, 0.2]])
    torch.testing.assert_close(rebuilt.eps_hat(z, g, cond, theta), fitted.eps_hat(z, g, cond, theta), rtol=0, atol=0)
    for bad, match in ((["model.params=[sigma_8]"], "has no Omega_m"),
                       (["model.vdm.prior=linear_transfer"], "with model.vdm.prior='correlated_transfer' only")):
        with pytest.raises(ConfigError, match=match):
            make_family(load_config("configs/train_tiny.yaml", sets + bad)).check()


# -- the regressor prior (CorrDiff's regression + residual) ------------------------------------------------------
def regressor_vdm(n_params=2, res_mean=0.1, res_std=0.4, **model_kw):
    """A VDM whose base is a regressor prior with perturbed (non-trivial) weights and set constants."""
    vdm = build_vdm(model_cfg(**model_kw), vdm_cfg(prior="regressor"), n_params=n_params)
    prior = vdm.score.prior
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in prior.net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        prior.constants.copy_(torch.tensor([res_mean, math.log(res_std)]))
    return vdm


def test_the_regressor_base_is_the_exact_denoiser_around_the_regression():
    """μ = f(c, θ) + r̄ of the frozen regressor (the parameters reach it), s its residual's spread: an untrained
    network's samples are N(μ, s²) per pixel."""
    vdm = regressor_vdm()
    prior = vdm.score.prior
    cond, params = stellar_cond((1, 1, 16, 16), seed=4), torch.tensor([[0.3, 0.7]])
    with torch.no_grad():
        f = prior.net(cond, params)[0, 0]
        mu = prior.mean(cond, params)[0, 0]
        other = prior.mean(cond, torch.tensor([[0.9, 0.1]]))[0, 0]
    torch.testing.assert_close(mu, f + 0.1, rtol=0, atol=1e-6)
    assert float(mu.std()) > 0.01 and float((other - mu).abs().max()) > 1e-3   # reads the map and the parameters
    assert float(prior.spread()) == pytest.approx(0.4, rel=1e-6)
    assert_samples_the_prior(vdm, cond, mu, 0.4, params=params)


def test_the_regressor_fit_recovers_the_residual():
    prior = regressor_vdm().score.prior
    g = torch.Generator().manual_seed(5)
    batches = []
    for _ in range(3):
        cond, params = stellar_cond((8, 1, 16, 16), seed=len(batches)), torch.rand(8, 2, generator=g)
        with torch.no_grad():
            x = prior.regression(cond, params) + 0.2 + 0.5 * torch.randn(8, 1, 16, 16, generator=g)
        batches.append((cond, params, x))
    got = prior.fit(batches)
    assert got["pixels"] == 3 * 8 * 256
    assert got["res_mean"] == pytest.approx(0.2, abs=0.01) and got["res_std"] == pytest.approx(0.5, rel=0.02)
    assert float(prior.spread()) == pytest.approx(got["res_std"], rel=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        prior.fit([])


def test_the_regressor_stays_frozen_in_eval_mode_and_fp32():
    """No gradient, no dropout in training mode, fp32 in a bf16 network; the EMA keeps it to the bit."""
    from hpc_vdm.diffusion.ema import EMA

    vdm = regressor_vdm(dropout=0.5).train()
    prior = vdm.score.prior
    assert not prior.net.training and vdm.score.training
    assert not any(p.requires_grad for p in prior.parameters())
    cond, params = stellar_cond((2, 1, 16, 16)), torch.rand(2, 2)
    torch.testing.assert_close(prior.mean(cond, params), prior.mean(cond, params), rtol=0, atol=0)
    want = {k: v.clone() for k, v in prior.state_dict().items()}
    ema = EMA(vdm.named_parameters(), 0.999)
    for _ in range(200):
        ema.update(vdm.named_parameters())
    assert all(torch.equal(ema.shadow[f"score.prior.{k}"], v) for k, v in want.items())
    vdm = vdm.to(torch.bfloat16)
    assert all(v.dtype == torch.float32 and torch.equal(v, want[k]) for k, v in prior.state_dict().items())
    assert next(vdm.score.conv_out.parameters()).dtype == torch.bfloat16


def test_a_tiled_draw_with_the_regressor_prior_equals_the_whole_field_with_the_recorded_reach():
    vdm = regressor_vdm(channel_mults=[1])   # U-Net and regressor: reach 15, stride 2
    with torch.no_grad():
        for name, p in vdm.score.named_parameters():
            if not name.startswith("prior."):
                p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    radius = structural_radius(vdm.score)
    measured = receptive_radius(score_fn(randomised(vdm.score), gamma=0.0), in_channels=2, stride=2, size=48)
    assert measured == radius == 15
    cond, params = stellar_cond((1, 48, 40), seed=2), torch.tensor([[0.5, 0.2]])
    halo = radius + 1   # 16: a multiple of the stride
    with torch.no_grad():
        gammas = vdm.gamma(time_grid(6, "unipc")).detach()
        z1 = keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=INITIAL)
        want = sample_loop(lambda z, g: vdm.eps_hat(z[None], g.expand(1), cond[None], params)[0], z1, gammas,
                           lambda s: keyed_noise(cond.shape, seed=5, slab=0, sample=0, step=s), sampler="unipc")
        got = sample_tiled(vdm, cond, tile=24, halo=halo, n_steps=6, seed=5, batch_size=4, sampler="unipc",
                           params=params)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)   # fp32 summation order


# per-pixel norm (no GroupNorm statistics to freeze at export) and train_tiny's global attention (not tile-safe: no
# reach to measure at export); locality with a regressor prior is test_a_tiled_draw_with_the_regressor_prior_...
CHEAP = ("model.norm=pixel",)


@pytest.fixture(scope="module")
def prior_regressor(maps_store, tmp_path_factory):
    """A tiny regressor of backbone unet on the test store, with train_tiny's U-Net options."""
    from helpers import train

    run = tmp_path_factory.mktemp("prior_regressor") / "run"
    train(maps_store, run, "model.kind=regressor", "model.backbone=unet", *CHEAP, "train.steps=3")
    return run / "export" / "model.pt"


REGRESSOR_PRIOR = (*CHEAP, "model.vdm.prior=regressor")


def test_a_regressor_prior_is_checked_before_training(prior_regressor, maps_store, tmp_path):
    """Each unusable prior_model is a config error naming it, before anything is written."""
    import shutil

    import zarr

    from helpers import train
    from hpc_vdm.families import make_family

    def check(*sets, store=maps_store):
        cfg = load_config("configs/train_tiny.yaml", [f"data.store={store}", *REGRESSOR_PRIOR, *sets])
        return make_family(cfg).check()

    check(f"model.vdm.prior_model={prior_regressor}")
    with pytest.raises(ConfigError, match="needs model.vdm.prior_model"):
        check()
    with pytest.raises(ConfigError, match="prior_model=.*read with model.vdm.prior='regressor' only"):
        check(f"model.vdm.prior_model={prior_regressor}", "model.vdm.prior=none")
    with pytest.raises(ConfigError, match=r"its model options differ.*channels 8 \(here 16\)"):
        check(f"model.vdm.prior_model={prior_regressor}", "model.channels=16")
    vdm_run = tmp_path / "vdm"
    train(maps_store, vdm_run, *CHEAP, "train.steps=1", "train.val_every=1")
    with pytest.raises(ConfigError, match="is a vdm model; the prior needs a regressor"):
        check(f"model.vdm.prior_model={vdm_run / 'export' / 'model.pt'}")
    other = tmp_path / "other.zarr"   # the same maps, another normalisation
    shutil.copytree(maps_store, other)
    root = zarr.open_group(str(other), mode="r+")
    stats = dict(root.attrs["stats"])
    stats["Mcdm"] = {**stats["Mcdm"], "mean": stats["Mcdm"]["mean"] + 0.1}
    root.attrs["stats"] = stats
    with pytest.raises(ConfigError, match="another normalisation of 'Mcdm'"):
        check(f"model.vdm.prior_model={prior_regressor}", store=other)
    with pytest.raises(FileNotFoundError, match="no exported model"):
        check(f"model.vdm.prior_model={tmp_path / 'missing.pt'}")


def test_a_regressor_prior_model_trains_resumes_as_uninterrupted_and_exports_the_regressor(
        prior_regressor, maps_store, tmp_path):
    """The regressor's EMA weights and the residual fit go into the model, frozen through training (to the bit),
    carried by the checkpoint (a resumed run ends on the uninterrupted run's weights) and by the export, which a
    bundle loads without the regressor's file."""
    import shutil

    from helpers import exported, train
    from hpc_vdm.bundle import load_bundle, read_export

    copy = tmp_path / "regressor.pt"   # removed before the export is used
    shutil.copy(prior_regressor, copy)
    sets = (*REGRESSOR_PRIOR, f"model.vdm.prior_model={copy}", "train.steps=2")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    proc = train(maps_store, straight, *sets)
    assert "regressor prior (" in proc.stderr and "M trained, the rest frozen" in proc.stderr
    train(maps_store, resumed, *sets[:-1], "train.steps=1", "train.export=false")
    assert "resumed from step00000001" in train(maps_store, resumed, *sets).stderr
    a, b = exported(straight), exported(resumed)
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    reg = read_export(prior_regressor)["ema"]
    for state in (a["ema"], a["model"]):
        assert all(torch.equal(state[f"score.prior.net.{k}"], v) for k, v in reg.items())
    copy.unlink()
    bundle = load_bundle(straight / "export" / "model.pt")
    prior = bundle.module.score.prior
    assert isinstance(prior, RegressorPrior) and float(prior.spread()) > 0 and float(prior.spread()) != 1.0
    assert not bundle.locality["tile_safe"] and bundle.locality["receptive_radius"] is None   # global attention
    assert any("attention" in why for why in bundle.locality["not_local"])
