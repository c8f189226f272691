"""Locality of the score networks: a local U-Net tiled equals the whole field, its measured receptive radius
equals the architecture's, the checks fail for GroupNorm, global attention and off-grid windows, and frozen
GroupNorm statistics make a GroupNorm network tile exactly."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hpc_vdm.models import FieldRegressor, UNet
from hpc_vdm.models.frozen_norm import calibrate, freeze, interpolate, record_stats
from hpc_vdm.models.reach import (effective_reach, gradient_profile, locality, misaligned_windows, randomised,
                                  receptive_radius, score_fn, unet_receptive_radius)
from tiling import TileGrid, tile_apply

torch.set_num_threads(1)
GAMMAS = (-5.0, 4.0)  # two noise levels: mostly signal, mostly noise


def unet(mults=(1, 2), channels=8, seed=0, **kw) -> UNet:
    """A float64 U-Net with every weight non-zero (the zero-initialised output convs too)."""
    return randomised(UNet(channels=channels, channel_mults=mults, norm_groups=4, dropout=0.0, **kw), seed=seed)


def grid_for(net: UNet, radius: int) -> tuple[int, int, int]:
    """(tile, halo, field side): halo the radius rounded up to the stride, tile one stride more, 3x3 tiles."""
    s = net.stride
    halo = math.ceil(radius / s) * s
    return halo + s, halo, 3 * (halo + s)


def field(n: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(2, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)  # z_t, cond


@torch.no_grad()
def tiled_error(net, x: torch.Tensor, tile: int, halo: int, gamma: float) -> float:
    """max |tiled − whole| of the network's output on the field x (2, n, n) at γ."""
    fn = score_fn(net, gamma)
    return (fn(x[None])[0] - tile_apply(fn, x, tile, halo, batch_size=9)).abs().max().item()


@pytest.fixture(scope="module", params=[("none", 0, (1, 2, 2), 4), ("local", 1, (1, 2), 8)],
                ids=["science-shape-no-attention", "local-attention-r1"])
def local_net(request):
    attention, radius, mults, channels = request.param
    net = unet(mults, channels, norm="pixel", attention=attention, attention_radius=radius)
    measured = receptive_radius(score_fn(net, 0.0), 2, stride=net.stride, size=2 * (9 * 2 ** len(mults)))
    return net, measured


def test_local_unet_tiled_equals_whole_field_at_two_noise_levels(local_net):
    net, radius = local_net
    tile, halo, n = grid_for(net, radius)
    assert halo >= radius and TileGrid.make((n, n), tile, halo).counts == (3, 3)
    assert misaligned_windows((n, n), tile, halo, net.stride) == []
    x = field(n)
    for gamma in GAMMAS:
        assert tiled_error(net, x, tile, halo, gamma) <= 1e-12


@torch.no_grad()
def test_changing_the_field_outside_a_window_leaves_its_core_unchanged(local_net):
    net, radius = local_net
    tile, halo, n = grid_for(net, radius)
    grid = TileGrid.make((n, n), tile, halo)
    inside = torch.zeros(n, n, dtype=torch.bool)
    inside[np.ix_(*grid.window_index((1, 1)))] = True
    x = field(n)
    y = torch.where(inside, x, x + field(n, seed=4))             # a different field outside the window
    fn = score_fn(net, GAMMAS[0])
    diff = (fn(x[None]) - fn(y[None]))[0, 0]                     # (n, n)
    (gy, gx), _ = grid.owned_slices((1, 1))
    assert diff[gy, gx].abs().max().item() <= 1e-12
    assert diff.abs().max().item() > 1e-3                        # it did change the output elsewhere


def test_measured_receptive_radius_equals_the_architectures(local_net):
    net, radius = local_net
    assert radius == unet_receptive_radius(net.levels, net.blocks_per_level, net.attention_radius)
    facts = locality(net)
    assert facts["receptive_radius"] == radius and facts["tile_safe"] and facts["norm"] == "pixel"
    assert facts["stride"] == net.stride and facts["attention"] == net.attention_kind


@pytest.mark.parametrize("mults, blocks, attention, radius", [((1,), 2, "local", 1), ((1, 2), 1, "local", 2),
                                                              ((1, 2), 2, "none", 0)])
def test_receptive_radius_measured_equals_analytic(mults, blocks, attention, radius):
    net = unet(mults, blocks_per_level=blocks, norm="none", attention=attention, attention_radius=radius)
    want = unet_receptive_radius(len(mults), blocks, radius)
    assert receptive_radius(score_fn(net, 1.0), 2, stride=net.stride, size=24) == want  # grows 24 -> 2R+
    reg = randomised(FieldRegressor(channels=8, n_blocks=blocks, norm_groups=4, norm="pixel"))
    assert receptive_radius(reg, 1, size=16) == 2 * blocks + 2 == locality(reg)["receptive_radius"]


@pytest.mark.parametrize("kw, misalign, why", [
    (dict(norm="group", attention="none"), 0, "GroupNorm"),
    (dict(norm="pixel", attention="global"), 0, "global attention"),
    (dict(norm="pixel", attention="none"), 2, None)],         # local, but windows start off the stride grid
    ids=["groupnorm", "global-attention", "off-grid-windows"])
def test_the_checks_have_teeth(kw, misalign, why):
    net = unet(**kw)
    tile, halo, n = grid_for(net, unet_receptive_radius(net.levels))
    halo += misalign  # 38: window 120 is still a multiple of 4, but its starts are 2 mod 4
    x = field(n)
    assert bool(misaligned_windows((n, n), tile, halo, net.stride)) == bool(misalign)
    for gamma in GAMMAS:
        assert tiled_error(net, x, tile, halo, gamma) > 1e-8     # measured: 2e-4, 1e-6, 6e-3
    facts = locality(net)
    if why:
        assert not facts["tile_safe"] and facts["receptive_radius"] is None and why in facts["not_local"][0]
        assert receptive_radius(score_fn(net, 0.0), 2, stride=net.stride, size=32, max_size=64) is None


@torch.no_grad()
def test_frozen_groupnorm_statistics_make_a_groupnorm_unet_tile_exactly():
    net = unet(norm="group", attention="none")
    tile, halo, n = grid_for(net, unet_receptive_radius(net.levels))
    target, cond = field(n, seed=5)[:1, None], field(n, seed=6)[:1, None]      # (1, 1, n, n) each
    stats = calibrate(net, target, cond, GAMMAS[::-1], seed=11)                # from the whole field itself
    frozen = freeze(net, stats)
    facts = locality(frozen)
    assert facts["norm"] == "frozen_group" and facts["tile_safe"] and facts["receptive_radius"] == 33
    g = torch.Generator().manual_seed(11)
    for gamma in sorted(GAMMAS):  # calibrate's noising, redone here: z = sqrt(sigmoid(-γ)) x + sqrt(sigmoid(γ)) ε
        eps = torch.randn(target.shape, generator=g, dtype=torch.float64)
        z = math.sqrt(1 / (1 + math.exp(gamma))) * target + math.sqrt(1 / (1 + math.exp(-gamma))) * eps
        x = torch.cat([z, cond], 1)[0]                                         # (2, n, n)
        whole = score_fn(net, gamma)(x[None])
        assert (score_fn(frozen, gamma)(x[None]) - whole).abs().max().item() <= 1e-12  # its own statistics
        assert tiled_error(frozen, x, tile, halo, gamma) <= 1e-12
        assert tiled_error(net, x, tile, halo, gamma) > 1e-6                   # per-window statistics: not
    assert locality(net)["norm"] == "group"  # freeze() copied the network


def test_frozen_statistics_interpolate_in_gamma_and_must_fit_the_network():
    grid = torch.tensor([-4.0, 0.0, 6.0], dtype=torch.float64)
    table = torch.tensor([[1.0, 2.0], [3.0, -2.0], [0.0, 4.0]], dtype=torch.float64)
    gam = torch.tensor([-9.0, -4.0, -1.0, 3.0, 6.0, 8.0], dtype=torch.float64)
    want = np.stack([np.interp(gam.numpy(), grid.numpy(), table[:, j].numpy()) for j in range(2)], 1)
    np.testing.assert_allclose(interpolate(grid, table, gam).numpy(), want, atol=1e-14)
    net = unet(norm="group", attention="none")
    z = field(16)[None]
    stats = record_stats(net, z[:, :1], torch.zeros(1, dtype=torch.float64), z[:, 1:])
    assert len(stats) == sum(isinstance(m, torch.nn.GroupNorm) for m in net.modules()) == 13
    table = {"gamma": torch.zeros(1), "mean": {k: m[None] for k, (m, v) in stats.items()},
             "var": {k: v[None] for k, (m, v) in stats.items()}}
    del table["mean"]["norm_out"]
    with pytest.raises(ValueError, match=r"layers without statistics \['norm_out'\]"):
        freeze(net, table)


def test_effective_reach_of_a_kernel_decaying_tenfold_per_pixel():
    d = torch.arange(-5, 6).abs()
    kernel = 10.0 ** -torch.maximum(d[:, None], d[None, :]).double()          # 10^-(Chebyshev distance)

    def fn(x):  # (B, 1, H, W) -> (B, 1, H, W), periodic
        return F.conv2d(F.pad(x, (5, 5, 5, 5), mode="circular"), kernel[None, None])

    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    profile = gradient_profile(fn, x)
    assert torch.allclose(profile[:6], 10.0 ** -torch.arange(6.0, dtype=torch.float64)) and not profile[6:].any()
    assert effective_reach(fn, x, 1e-3) == 3 and effective_reach(fn, x, 2e-3) == 2 and effective_reach(fn, x, 1e-9) == 5
    with pytest.raises(ValueError, match="tol must be in \\(0, 1\\), got 1.0"):
        effective_reach(fn, x, 1.0)


def test_effective_reach_of_a_local_unet_is_at_most_its_receptive_radius():
    net = unet((1, 2), norm="pixel", attention="local", attention_radius=1)
    x = field(80)[None]
    fn = score_fn(net, 0.0)
    assert effective_reach(fn, x, 1e-300, stride=4) == receptive_radius(fn, 2, stride=4, size=80) == 37
    assert effective_reach(fn, x, 1e-2, stride=4) < 37
