"""The score U-Net, the γ schedule, the bound's terms, the sampler and the EMA, against independent facts."""
import math

import pytest
import torch

from hpc_vdm.config import RunConfig
from hpc_vdm.diffusion import EMA, LinearSchedule, alpha_sigma, ancestral_step, antithetic_times, build_vdm, sample
from hpc_vdm.models import UNet

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
