"""The dense dm2gal equals per-voxel evaluation of the patch network (float64, eval mode, periodic wrap)."""
import numpy as np
import pytest
import torch

from hpc_vdm.data.patches import gather_patch
from hpc_vdm.models import DM2Gal, DenseDM2Gal
from tiling import tile_apply

SMALL = dict(patch=17, kernels=(3, 3, 3, 3, 3), strides=(1, 2, 1, 1, 2), widths=(1, 2, 2, 2, 4))


def random_net(seed: int = 0, **kw) -> DM2Gal:
    """Random weights and random BatchNorm statistics, float64, eval mode."""
    torch.manual_seed(seed)
    net = DM2Gal(**kw).double()
    for bn in net.norms:
        bn.running_mean.data.normal_()
        bn.running_var.data.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_(0, 0.3)
    return net.eval()


def per_voxel(net, field, voxels, batch: int = 64) -> np.ndarray:
    """The paper's test loop: one patch (periodic here) and one forward pass per voxel."""
    out = []
    for i in range(0, len(voxels), batch):  # float64 conv3d unfolds its input: keep batches small
        patches = np.stack([gather_patch(field, v, net.patch) for v in voxels[i:i + batch]])
        with torch.no_grad():
            out.append(net(torch.from_numpy(patches)).numpy()[:, 0])
    return np.concatenate(out)


def dense_field(net, field, tile, halo):
    dense = DenseDM2Gal(net)
    with torch.no_grad():
        return tile_apply(lambda w: dense.core(w, halo), torch.from_numpy(field), tile, halo, mode="valid",
                          batch_size=2).numpy()[0]


def test_paper_architecture_shapes_and_reach():
    net = DM2Gal(channels=2, hidden=4)
    assert net(torch.zeros(3, 2, 65, 65, 65)).shape == (3, 1)
    assert net.reach == (32, 26) and net.receptive_radius == 32
    assert sum(p.numel() for p in DM2Gal(channels=16).parameters() if p.requires_grad) == pytest.approx(0.9e6, rel=0.1)
    with pytest.raises(ValueError, match="not 1"):
        DM2Gal(patch=33)


def test_dense_equals_per_voxel_on_every_voxel_small_network():
    """Every voxel of a 12^3 torus (so most patches wrap), tiles of 4 with a halo of 8."""
    net = random_net(1, channels=3, hidden=8, **SMALL)
    field = np.random.default_rng(0).normal(size=(2, 12, 12, 12))
    dense = dense_field(net, field, 4, 8)
    voxels = list(np.ndindex(12, 12, 12))
    ref = per_voxel(net, field, voxels)
    err = np.abs(dense[tuple(np.array(voxels).T)] - ref).max()
    assert err < 1e-10, err


@pytest.mark.parametrize("n_random", [1, pytest.param(21, marks=pytest.mark.slow)])
def test_dense_equals_per_voxel_paper_network_with_wrap(n_random):
    """The paper's 65^3 network on a 16^3 torus: every patch wraps around the box several times."""
    net = random_net(2, channels=2, hidden=8)
    field = np.random.default_rng(1).normal(size=(2, 16, 16, 16))
    dense = dense_field(net, field, 16, 32)
    rng = np.random.default_rng(2)
    voxels = [(0, 0, 0), (15, 15, 15), (0, 15, 7)] + [tuple(v) for v in rng.integers(0, 16, (n_random, 3))]
    ref = per_voxel(net, field, voxels, batch=1)
    err = np.abs(dense[tuple(np.array(voxels).T)] - ref).max()
    assert err < 1e-10, err


def test_dense_follows_training_and_refuses_a_short_halo():
    net = random_net(3, channels=2, hidden=4, **SMALL)
    dense = DenseDM2Gal(net)
    net.fc2.bias.data += 1.0   # shares the weights: no copy to go stale
    x = torch.zeros(1, 2, 20, 20, 20, dtype=torch.float64)
    assert torch.allclose(dense.core(x, 8)[0, 0, 0, 0, 0], net(x[:, :, 2:19, 2:19, 2:19])[0, 0])
    with pytest.raises(ValueError, match="smaller than the receptive reach 8"):
        dense.core(x, 7)


def test_batchnorm_statistics_are_frozen_parameters():
    net = DM2Gal(channels=2, hidden=4, **SMALL)
    names = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert {"norms.0.running_mean", "norms.0.running_var"} <= names
    net.train()
    net(torch.randn(4, 2, 17, 17, 17))
    assert net.norms[0].running_mean.abs().sum() > 0          # updated in training mode
