"""The fused tiled sampler equals the untiled sampler for a local denoiser, whatever the tiling."""
import pytest
import torch

from hpc_vdm.diffusion import LinearSchedule, sample_loop, time_grid
from hpc_vdm.diffusion.oracle import GaussianFieldOracle, power_law
from hpc_vdm.diffusion.tiled import INITIAL, keyed_noise, sample_tiled


class LocalToyVDM(torch.nn.Module):
    """ε̂ from a periodic 5x5 convolution of (z, cond) scaled by γ: reach 2 pixels, so tiling with halo >= 2 is exact."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gamma = LinearSchedule(-5.0, 5.0)
        self.conv = torch.nn.Conv2d(2, 1, 5, padding=2, padding_mode="circular", dtype=torch.float64)

    def eps_hat(self, z, g, cond, params=None):
        h = self.conv(torch.cat([z, cond], 1).double())
        return (torch.tanh(h) * (1 + 0.05 * g.double().view(-1, 1, 1, 1))).float()


def untiled(vdm, cond, n_steps, seed, sampler="ancestral", x_range=None):
    gammas = vdm.gamma(time_grid(n_steps, sampler)).detach()
    z1 = keyed_noise(cond.shape, seed=seed, slab=0, sample=0, step=INITIAL)
    return sample_loop(lambda z, g: vdm.eps_hat(z[None], g.expand(1), cond[None])[0], z1, gammas,
                       lambda s: keyed_noise(cond.shape, seed=seed, slab=0, sample=0, step=s), sampler=sampler,
                       x_range=x_range)


@pytest.mark.parametrize("tile,halo,batch", [(16, 2, 1), (24, 4, 5), (40, 3, 64)])
def test_fused_tiled_sampler_equals_untiled(tile, halo, batch):
    vdm = LocalToyVDM()
    cond = torch.randn(1, 56, 44)
    with torch.no_grad():
        want = untiled(vdm, cond, 6, seed=3)
        got = sample_tiled(vdm, cond, tile=tile, halo=halo, n_steps=6, seed=3, batch_size=batch)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


FEW_STEP = ("unipc", "dpm2m_sde", "dpm3m")


@pytest.mark.parametrize("sampler", ("ancestral", "unipc"))
def test_clipped_tiled_sampler_equals_clipped_untiled(sampler):
    """The clip acts on the blended global x̂, pointwise: tiling still changes nothing, and the clip does act."""
    vdm, cond = LocalToyVDM(), torch.randn(1, 56, 44)
    with torch.no_grad():
        want = untiled(vdm, cond, 6, seed=3, sampler=sampler, x_range=(-0.3, 0.3))
        got = sample_tiled(vdm, cond, tile=16, halo=2, n_steps=6, seed=3, batch_size=5, sampler=sampler,
                           x_range=(-0.3, 0.3))
        free = untiled(vdm, cond, 6, seed=3, sampler=sampler)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert free.abs().max() > 10 and want.abs().max() < 1  # 0.3 plus the last step's noise (σ_0 = 0.08)


def local_oracle():
    """The exact Gaussian-field denoiser truncated to a 3-pixel reach: local, so halo >= 3 tiles exactly."""
    return GaussianFieldOracle(power_law((32, 32), slope=-2.5, k_min=1 / 32, floor=0.05), reach=3)


@pytest.mark.parametrize("sampler", FEW_STEP)
@pytest.mark.parametrize("make", [LocalToyVDM, local_oracle], ids=["toy", "oracle"])
def test_fused_tiled_few_step_samplers_equal_untiled(sampler, make):
    vdm = make()
    cond = torch.randn(1, 56, 44)
    with torch.no_grad():
        want = untiled(vdm, cond, 7, seed=4, sampler=sampler)
        for tile, halo, batch in [(16, 3, 1), (24, 4, 64)]:
            got = sample_tiled(vdm, cond, tile=tile, halo=halo, n_steps=7, seed=4, batch_size=batch, sampler=sampler)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert not torch.allclose(want, untiled(vdm, cond, 7, seed=5, sampler=sampler))


@pytest.mark.parametrize("sampler", FEW_STEP)
def test_few_step_samples_drawn_together_equal_samples_drawn_alone(sampler):
    vdm = local_oracle()
    cond = torch.zeros(1, 40, 36)
    both = sample_tiled(vdm, cond, tile=16, halo=3, n_steps=5, seed=5, slab=7, samples=[2, 5], batch_size=3,
                        sampler=sampler)
    for row, i in enumerate([2, 5]):
        alone = sample_tiled(vdm, cond, tile=20, halo=4, n_steps=5, seed=5, slab=7, samples=[i], batch_size=1,
                             sampler=sampler)
        torch.testing.assert_close(both[row:row + 1], alone, rtol=0, atol=1e-5)
    assert not torch.allclose(both[0], both[1])


def test_keyed_noise_depends_on_every_key():
    base = keyed_noise((4, 4), seed=1, slab=2, sample=3, step=4)
    assert torch.equal(base, keyed_noise((4, 4), seed=1, slab=2, sample=3, step=4))
    for kw in (dict(seed=9), dict(slab=9), dict(sample=9), dict(step=9)):
        key = dict(seed=1, slab=2, sample=3, step=4) | kw
        assert not torch.equal(base, keyed_noise((4, 4), **key))


def test_tiled_sampler_runs_the_real_vdm_on_a_field_larger_than_its_tiles():
    from test_models import tiny_vdm

    vdm = tiny_vdm().eval()  # stride 8: windows of 32 + 2*8 = 48 pixels
    cond = torch.randn(1, 80, 72)
    a = sample_tiled(vdm, cond, tile=32, halo=8, n_steps=3, seed=1, batch_size=4)
    b = sample_tiled(vdm, cond, tile=32, halo=8, n_steps=3, seed=1, batch_size=2)
    assert a.shape == (1, 80, 72) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)  # batch size never changes the result


def test_samples_drawn_together_equal_samples_drawn_alone():
    vdm = LocalToyVDM()
    cond = torch.randn(1, 40, 36)
    both = sample_tiled(vdm, cond, tile=16, halo=3, n_steps=4, seed=5, slab=7, samples=[2, 5], batch_size=3)
    for row, i in enumerate([2, 5]):
        alone = sample_tiled(vdm, cond, tile=24, halo=2, n_steps=4, seed=5, slab=7, samples=[i], batch_size=1)
        torch.testing.assert_close(both[row:row + 1], alone, rtol=0, atol=1e-5)
    assert not torch.allclose(both[0], both[1])


def test_window_that_misses_the_unet_stride_is_refused():
    from test_models import tiny_vdm

    from hpc_vdm.diffusion.tiled import check_window

    with pytest.raises(ValueError, match=r"tile 30 \+ 2 x halo 8 = 46 pixels is not a multiple of the network's stride 8"):
        check_window(tiny_vdm(), 30, 8)
    check_window(tiny_vdm(), 32, 8)
