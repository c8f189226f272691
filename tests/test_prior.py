"""The linear-transfer prior base of the score network (model.vdm.prior): exact against its Gaussian, fitted to
known constants, local with the recorded reach, tiled exactly, and carried by checkpoints and exports."""
import math
import types

import numpy as np
import pytest
import torch

from hpc_vdm.config import ConfigError, load_config
from hpc_vdm.diffusion import build_vdm, sample_loop, time_grid
from hpc_vdm.diffusion.tiled import INITIAL, keyed_noise, sample_tiled
from hpc_vdm.models import locality, receptive_radius
from hpc_vdm.models.prior import LinearTransferPrior, gaussian_kernel
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
    draws = 512
    mu, s = prior.mean(cond)[0, 0], float(prior.spread())
    # μ by hand: the transfer of the physical stellar map, in the target's normalised log
    stars = 10 ** (cond[0, 0].double() * COND_NORM[2] + COND_NORM[1]) - COND_NORM[0]
    smooth = torch.nn.functional.conv2d(torch.nn.functional.pad(stars[None, None], (3,) * 4, mode="circular"),
                                        gaussian_kernel(1.0))[0, 0]
    want_mu = (torch.log10(600.0 * smooth + 1.5e11) - 0.2 - TARGET_NORM[1]) / TARGET_NORM[2]
    torch.testing.assert_close(mu.double(), want_mu, rtol=0, atol=1e-5)
    assert s == pytest.approx(0.3 / TARGET_NORM[2], rel=1e-6)
    conds = cond.expand(draws, -1, -1, -1)
    for sampler, steps in [("unipc", 24), ("dpm3m", 32)]:   # ancestral's known deficit: test_sampler_oracle
        gammas = vdm.gamma(time_grid(steps, sampler)).detach()
        g = torch.Generator().manual_seed(1)
        z1 = torch.randn(draws, 1, 16, 16, generator=g)
        with torch.no_grad():
            x = sample_loop(lambda z, gm: vdm.eps_hat(z, gm.expand(draws), conds), z1, gammas,
                            lambda k: torch.randn(draws, 1, 16, 16, generator=g), sampler=sampler)
        u = (x[:, 0] - mu) / s                                          # (draws, 16, 16): N(0, 1) if exact
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
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


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
