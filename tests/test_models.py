"""The score U-Net, the γ schedule, the bound's terms, the sampler and the EMA, against independent facts."""
import math

import pytest
import torch

from hpc_vdm.config import RunConfig
from hpc_vdm.diffusion import EMA, LinearSchedule, alpha_sigma, ancestral_step, antithetic_times, build_vdm, sample
from hpc_vdm.models import FieldRegressor, PixelNorm, UNet, build_unet
from hpc_vdm.models.blocks import AttentionBlock

torch.set_num_threads(1)


def tiny_vdm(**model):
    cfg = RunConfig()
    cfg.model.channels, cfg.model.channel_mults, cfg.model.norm_groups, cfg.model.dropout = 8, [1, 2, 2], 4, 0.0
    for k, v in model.items():
        setattr(cfg.model, k, v)
    torch.manual_seed(0)
    return build_vdm(cfg.model, cfg.model.vdm)


def test_paper_unet_size_and_shapes():
    net = UNet()  # the papers' configuration
    n = sum(p.numel() for p in net.parameters())
    assert abs(n / 32.7e6 - 1) < 0.01  # seed_code.md: ≈32.7 M with the bottleneck attention
    z = torch.randn(2, 1, 32, 48)
    assert net(z, torch.tensor([-13.3, 5.0]), z).shape == (2, 1, 32, 48)
    with pytest.raises(ValueError, match="multiple of the U-Net stride 16"):
        net(torch.randn(1, 1, 40, 48), torch.zeros(1), torch.randn(1, 1, 40, 48))


def test_zero_init_output_is_zt_then_circular_equivariance():
    net = UNet(channels=8, channel_mults=(1, 2, 2), norm_groups=4, dropout=0.0).eval()
    z, c, g = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32), torch.tensor([-3.0, 4.0])
    assert torch.equal(net(z, g, c), z)  # zero-initialised output conv: ε̂ = z_t at initialisation
    torch.manual_seed(1)
    for p in net.parameters():  # give every layer (also the zero-initialised ones) non-trivial weights
        p.data.normal_(0, 0.1)
    shift = (8, -16)  # multiples of the total stride 8
    rolled = net(torch.roll(z, shift, (2, 3)), g, torch.roll(c, shift, (2, 3)))
    assert torch.allclose(rolled, torch.roll(net(z, g, c), shift, (2, 3)), atol=1e-5)


def test_param_conditioning_changes_output_only_when_enabled():
    net = UNet(channels=8, channel_mults=(1, 2), norm_groups=4, dropout=0.0, n_params=6, add_zt=False).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    z, g = torch.randn(1, 1, 16, 16), torch.zeros(1)
    a, b = net(z, g, z, torch.zeros(1, 6)), net(z, g, z, torch.ones(1, 6))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="pass params"):
        net(z, g, z)


def test_gamma_schedule_monotone_with_endpoints():
    sched = LinearSchedule(-13.3, 13.3)
    t = torch.linspace(0, 1, 101)
    g = sched(t)
    assert torch.all(g[1:] > g[:-1])
    assert g[0].item() == pytest.approx(-13.3, abs=1e-6) and g[-1].item() == pytest.approx(13.3, abs=1e-5)
    sched.w.data.fill_(-26.6)  # |w|: monotone whatever the sign the optimiser gives w
    assert torch.all(sched(t)[1:] > sched(t)[:-1])
    alpha, sigma = alpha_sigma(g)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(g))
    with pytest.raises(ValueError, match="gamma_max must exceed"):
        LinearSchedule(1.0, -1.0)


def test_loss_klz_matches_analytic_kl():
    vdm = tiny_vdm()
    x = torch.randn(3, 1, 16, 16)
    out = vdm(x, torch.zeros_like(x))
    var1 = 1 / (1 + math.exp(-13.3))  # σ_1² = sigmoid(γ_1)
    # KL(N(m, s²) || N(0, 1)) = ½ (s² + m² − 1) − log s, summed over pixels, in bits per dimension
    m2 = (1 - var1) * x.double() ** 2
    kl = (0.5 * (var1 + m2 - 1) - 0.5 * math.log(var1)).flatten(1).sum(1) / (256 * math.log(2))
    assert torch.allclose(out.loss_klz.double(), kl, rtol=1e-4)


def test_loss_diff_and_recon_match_their_formulas():
    vdm = tiny_vdm()
    x, c = torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    t, eps, eps0 = torch.tensor([0.25, 0.75]), torch.randn(2, 1, 16, 16), torch.randn(2, 1, 16, 16)
    out = vdm(x, c, t=t, eps=eps, eps_0=eps0)
    g = -13.3 + 26.6 * t
    a, s = torch.sigmoid(-g).sqrt().view(2, 1, 1, 1), torch.sigmoid(g).sqrt().view(2, 1, 1, 1)
    z = a * x + s * eps
    # zero-initialised output: ε̂ = z_t, so the expected MSE is closed-form
    want = 0.5 * 26.6 * (z - eps).pow(2).flatten(1).sum(1) / (256 * math.log(2))
    assert torch.allclose(out.loss_diff, want, rtol=1e-5)
    s0 = math.sqrt(1 / (1 + math.exp(13.3))) / math.sqrt(1 / (1 + math.exp(-13.3)))
    nll = 0.5 * (s0 * eps0 / 1e-3) ** 2 + math.log(1e-3) + 0.5 * math.log(2 * math.pi)
    assert torch.allclose(out.loss_recon, nll.flatten(1).sum(1) / (256 * math.log(2)), rtol=1e-4)


@pytest.mark.parametrize("weighting,bias", [("sigmoid", 2.0), ("sigmoid", -2.0), ("edm", 2.0)])
def test_weighted_loss_diff_is_the_bound_times_the_weight_of_its_noise_level(weighting, bias):
    """Training weights scale loss_diff per example by w(γ_t) and leave loss_klz, loss_recon and the bound
    (weighted=False) alone; sigmoid: w = sigmoid(b + γ); edm: EDM's N(λ; 2.4, 2.4²)(e^{−λ} + 1), λ = −γ, whose
    peak (where −(γ + 2.4)/2.4² + sigmoid(γ) = 0, found here by root-finding) is 1."""
    from scipy.optimize import brentq

    vdm = tiny_vdm()
    vdm.weighting, vdm.weighting_bias = weighting, bias
    x, c = torch.randn(3, 1, 16, 16), torch.randn(3, 1, 16, 16)
    kw = dict(t=torch.tensor([0.1, 0.5, 0.9]), eps=torch.randn(3, 1, 16, 16), eps_0=torch.randn(3, 1, 16, 16))
    bound, trained = vdm(x, c, weighted=False, **kw), vdm(x, c, **kw)
    g = (-13.3 + 26.6 * kw["t"]).double()
    if weighting == "sigmoid":
        w = torch.sigmoid(bias + g)
    else:
        peak = brentq(lambda y: -(y + 2.4) / 2.4**2 + 1 / (1 + math.exp(-y)), -10, 10)
        log_w = lambda y: -0.5 * ((-y - 2.4) / 2.4) ** 2 + torch.log1p(torch.exp(y))  # noqa: E731
        w = torch.exp(log_w(g) - log_w(torch.tensor(peak, dtype=torch.float64)))
        assert float(vdm.weight(torch.tensor(peak))) == pytest.approx(1.0, abs=1e-6)
        assert float(vdm.weight(torch.linspace(-20, 20, 401)).max()) <= 1 + 1e-6
    torch.testing.assert_close(trained.loss_diff, bound.loss_diff * w.float(), rtol=1e-5, atol=0)
    torch.testing.assert_close(trained.loss_recon, bound.loss_recon)
    torch.testing.assert_close(trained.loss_klz, bound.loss_klz)


def test_antithetic_times_cover_unit_interval():
    t = antithetic_times(8)
    assert t.min() >= 0 and t.max() < 1
    assert torch.allclose(torch.diff(t), torch.full((7,), 1 / 8))


def test_optimizer_steps_lower_the_bound_on_a_fixed_batch():
    vdm = tiny_vdm()
    x, c = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    t, eps, eps0 = antithetic_times(4, generator=torch.Generator().manual_seed(0)), torch.randn_like(x), torch.randn_like(x)
    opt = torch.optim.AdamW(vdm.parameters(), lr=3e-3)
    first = vdm(x, c, t=t, eps=eps, eps_0=eps0).loss.mean().item()
    for _ in range(15):
        opt.zero_grad()
        vdm(x, c, t=t, eps=eps, eps_0=eps0).loss.mean().backward()
        opt.step()
    assert vdm(x, c, t=t, eps=eps, eps_0=eps0).loss.mean().item() < 0.8 * first


def test_ancestral_step_is_the_exact_posterior_mean_for_a_perfect_denoiser():
    # x known (a point mass), so the perfect denoiser is ε̂ = (z_t − α_t x)/σ_t; the noiseless step must then
    # give the mean of q(z_s | z_t, x), written below from VDM eq. (32) independently of ancestral_step.
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    g_t, g_s = torch.tensor(2.0, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64)
    a_t, s_t = alpha_sigma(g_t)
    a_s, s_s = alpha_sigma(g_s)
    z_t = a_t * x + s_t * torch.randn_like(x)
    eps_hat = (z_t - a_t * x) / s_t
    mean = ancestral_step(z_t, eps_hat, g_t, g_s, torch.zeros_like(x))
    a_ts, var_ts = a_t / a_s, s_t**2 - (a_t / a_s) ** 2 * s_s**2  # q(z_t | z_s)
    want = (a_ts * s_s**2 / s_t**2) * z_t + (a_s * var_ts / s_t**2) * x  # VDM eq. (32) posterior mean
    assert torch.allclose(mean, want, atol=1e-12)


def test_sampler_is_deterministic_for_a_seed_and_handles_any_size():
    vdm = tiny_vdm().eval()
    c = torch.randn(3, 1, 16, 24)
    a = sample(vdm, c, n_steps=4, generator=torch.Generator().manual_seed(5))
    b = sample(vdm, c, n_steps=4, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 1, 16, 24) and torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_ema_tracks_and_round_trips():
    lin = torch.nn.Linear(2, 2)
    ema = EMA(lin.named_parameters(), decay=0.5)
    ema.updates = 10**6  # past the warm-up: the decay is 0.5
    before = {k: v.clone() for k, v in ema.shadow.items()}
    with torch.no_grad():
        for p in lin.parameters():
            p.add_(1.0)
    ema.update(lin.named_parameters())
    for k, p in lin.named_parameters():
        assert torch.allclose(ema.shadow[k], 0.5 * before[k] + 0.5 * p)
    other = EMA(lin.named_parameters(), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and all(torch.equal(other.shadow[k], ema.shadow[k]) for k in ema.shadow)
    with pytest.raises(ValueError, match="different model"):
        EMA(torch.nn.Linear(3, 3, bias=False).named_parameters()).load_state_dict(ema.state_dict())


def test_default_unet_and_regressor_compute_what_they_did_before_the_locality_options():
    # literals: the same construction, weights and inputs run on the code before norm/attention options
    # existed (commit d2e13d0), float64
    torch.manual_seed(0)
    net = UNet(channels=8, channel_mults=(1, 2), norm_groups=4, dropout=0.0, n_params=6).double().eval()
    init = [v.double().sum().item() for v in net.state_dict().values()]
    assert sum(init) == pytest.approx(266.1091163981737, rel=1e-12)  # same modules, created in the same order
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.2)
        x = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
        prm = torch.rand(2, 6, generator=g, dtype=torch.float64)
        out = net(x[:, :1], torch.tensor([-2.0, 3.5], dtype=torch.float64), x[:, 1:2], prm)
    assert out.sum().item() == pytest.approx(-147.3800961729453, rel=1e-10)
    assert out.pow(2).sum().item() == pytest.approx(573.2566840172499, rel=1e-10)
    want = {(0, 0, 0): -0.18412575483136248, (0, 7, 11): 2.7661020324284817, (1, 15, 3): 0.5705299951906233}
    for (b, i, j), v in want.items():
        assert out[b, 0, i, j].item() == pytest.approx(v, rel=1e-10)
    torch.manual_seed(0)
    reg = FieldRegressor(channels=8, n_blocks=2, norm_groups=4).double().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reg.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.2)
        y = reg(torch.randn(2, 1, 12, 12, generator=g, dtype=torch.float64))
    assert y.sum().item() == pytest.approx(59.28451016673136, rel=1e-10)
    assert y[1, 0, 5, 7].item() == pytest.approx(0.007331902190676527, rel=1e-8)


def test_map_condition_is_optional_and_checked():
    free = UNet(channels=8, channel_mults=(1, 2), norm_groups=4, cond_channels=0, n_params=6, add_zt=False).eval()
    z, g, prm = torch.randn(2, 1, 16, 16), torch.zeros(2), torch.rand(2, 6)
    assert free(z, g, params=prm).shape == (2, 1, 16, 16) and free(z, g, None, prm).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="no map condition .*pass cond=None"):
        free(z, g, z, prm)
    net = UNet(channels=8, channel_mults=(1, 2), norm_groups=4).eval()
    assert net(z, g, z).shape == (2, 1, 16, 16)  # today's positional calls
    with pytest.raises(ValueError, match=r"conditions on a map \(cond_channels=1\); pass cond of shape \(2, 1, 16, 16\)"):
        net(z, g)
    with pytest.raises(ValueError, match=r"cond must have shape \(2, 1, 16, 16\).*got \(2, 1, 16, 8\)"):
        net(z, g, z[..., :8])


def test_pixel_norm_normalises_each_pixel_over_its_channels():
    norm = PixelNorm(6)
    with torch.no_grad():
        norm.gain.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    norm = norm.double()
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    want = (x - mean) / torch.sqrt(var + 1e-5) * norm.gain.view(1, 6, 1, 1) + norm.bias.view(1, 6, 1, 1)
    assert torch.allclose(norm(x), want, atol=1e-12)
    assert torch.allclose(norm(x[..., 2:3, 4:5]), want[..., 2:3, 4:5], atol=1e-12)  # one pixel alone: the same
    # the same as torch's LayerNorm over a moved channel axis, and in the input's own (contiguous NCHW) layout
    layer = torch.nn.functional.layer_norm(x.movedim(1, -1), (6,), norm.gain, norm.bias, 1e-5).movedim(-1, 1)
    assert torch.allclose(norm(x), layer, atol=1e-12) and norm(x).is_contiguous()


def test_local_attention_over_the_whole_map_is_global_attention():
    torch.manual_seed(0)
    glob = AttentionBlock(8, heads=2, groups=4, norm="pixel").double()
    for p in glob.parameters():
        p.data.normal_(0, 0.3)
    loc = AttentionBlock(8, heads=2, groups=4, norm="pixel", radius=2).double()
    loc.load_state_dict(glob.state_dict())
    x = torch.randn(3, 8, 5, 5, dtype=torch.float64)  # a 5x5 neighbourhood (r = 2) is the whole 5x5 map
    assert torch.allclose(loc(x), glob(x), atol=1e-12)
    y = torch.randn(1, 8, 9, 9, dtype=torch.float64)  # on a larger map the neighbourhood is local
    far = y.clone()
    far[..., 4:7, :] += torch.randn(1, 8, 3, 9, dtype=torch.float64)  # rows 4..6: > 2 rows (periodic) from 0..1
    assert torch.allclose(loc(y)[..., :2, :], loc(far)[..., :2, :], atol=1e-12)
    assert not torch.allclose(glob(y)[..., :2, :], glob(far)[..., :2, :], atol=1e-6)
    with pytest.raises(ValueError, match="attention_radius=5 needs a bottleneck of at least 11x11"):
        AttentionBlock(8, heads=2, groups=4, radius=5).double()(x)


def test_locality_options_are_checked_and_weights_of_another_norm_never_load():
    with pytest.raises(ValueError, match="norm must be one of .*got 'batch'"):
        UNet(norm="batch")
    with pytest.raises(ValueError, match="attention must be one of .*got 'window'"):
        UNet(attention="window")
    with pytest.raises(ValueError, match="needs attention_radius >= 1"):
        UNet(attention="local")
    with pytest.raises(ValueError, match="applies to attention='local' only, got attention='global'"):
        UNet(attention=True, attention_radius=2)
    kw = dict(channels=8, channel_mults=(1, 2), norm_groups=4)
    group = UNet(**kw)
    with pytest.raises(RuntimeError, match="gain"):  # GroupNorm's weight/bias are not PixelNorm's gain/bias
        UNet(norm="pixel", **kw).load_state_dict(group.state_dict())
    UNet(attention="local", attention_radius=1, **kw).load_state_dict(group.state_dict())  # same parameters


def test_build_unet_reads_the_locality_fields_and_old_configs_mean_groupnorm():
    cfg = RunConfig()
    cfg.model.channels, cfg.model.channel_mults, cfg.model.norm_groups = 8, [1, 2], 4
    net = build_unet(cfg.model, gamma_range=(-13.3, 13.3))
    assert (net.norm_kind, net.attention_kind) == ("group", "global")  # the defaults: today's network
    cfg.model.norm, cfg.model.attention_radius = "pixel", 2
    net = build_unet(cfg.model, gamma_range=(-13.3, 13.3))
    assert (net.norm_kind, net.attention_kind, net.attention_radius) == ("pixel", "local", 2)
    cfg.model.attention, cfg.model.attention_radius = False, 0
    assert build_unet(cfg.model, gamma_range=(-13.3, 13.3)).mid_attn is None

    class Old:  # a config written before norm/attention_radius existed
        channels, channel_mults, blocks_per_level, attention, attention_heads = 8, [1, 2], 1, True, 1
        norm_groups, dropout, add_zt, param_conditioning = 4, 0.0, True, False

    old = build_unet(Old(), gamma_range=(-13.3, 13.3))
    assert (old.norm_kind, old.attention_kind) == ("group", "global")
