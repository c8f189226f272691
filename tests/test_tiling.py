"""tiling.tile_apply against whole-field oracles on the torus."""
import itertools

import numpy as np
import pytest
import torch

from tiling import TileGrid, tile_apply


def periodic_conv(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Whole-field periodic convolution of (C, *spatial) by a centred kernel (the oracle): sums of np.roll."""
    r = kernel.shape[0] // 2
    out = np.zeros_like(x)
    for offs in itertools.product(range(-r, r + 1), repeat=kernel.ndim):
        out += kernel[tuple(o + r for o in offs)] * np.roll(x, offs, axis=tuple(range(1, x.ndim)))
    return out


def batched(fn):
    return lambda b: np.stack([fn(w) for w in b])


@pytest.mark.parametrize("shape,tile,halo", [((37, 50), 16, 3), ((50, 37), (16, 12), (2, 3)),
                                             ((19, 22, 17), 8, 2), ((16, 16), 16, 5)])
def test_core_blend_equals_whole_torus_convolution(shape, tile, halo):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *shape))
    kernel = rng.normal(size=(5,) * len(shape))  # radius 2 <= halo
    if min(np.atleast_1d(halo)) < 2:
        kernel = kernel[(slice(1, 4),) * len(shape)]
    fn = batched(lambda w: periodic_conv(w, kernel))  # circular *within the window*: wrong only near its edge
    tiled = tile_apply(fn, x, tile, halo, blend="core", batch_size=3)
    assert tiled.dtype == np.float64
    np.testing.assert_allclose(tiled, periodic_conv(x, kernel), rtol=0, atol=1e-10)


def test_torch_conv_tiles_on_another_device_and_batch_sizes_agree():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 5, padding=2, padding_mode="circular", dtype=torch.float64)
    x = torch.randn(1, 45, 38, dtype=torch.float64)
    with torch.no_grad():
        whole = conv(x[None])[0]
        a = tile_apply(conv, x, 16, 2, batch_size=1, device="cpu")
        b = tile_apply(conv, x, (12, 16), (3, 2), batch_size=7)
    assert a.shape == (3, 45, 38)
    torch.testing.assert_close(a, whole, rtol=0, atol=1e-10)
    torch.testing.assert_close(b, whole, rtol=0, atol=1e-10)


@pytest.mark.parametrize("blend", ["core", "cosine", "gaussian"])
@pytest.mark.parametrize("shape,tile,halo", [((33, 40), 16, 4), ((9, 10), 4, 3), ((12, 11, 9), 5, 2)])
def test_identity_and_affine_reproduce_the_input(blend, shape, tile, halo):
    x = np.random.default_rng(1).normal(size=(2, *shape))
    np.testing.assert_allclose(tile_apply(lambda b: b, x, tile, halo, blend), x, atol=1e-12)
    affine = tile_apply(lambda b: np.concatenate([2 * b + 1, -b], axis=1), x, tile, halo, blend)
    np.testing.assert_allclose(affine, np.concatenate([2 * x + 1, -x]), atol=1e-12)
    xt = torch.as_tensor(x)
    torch.testing.assert_close(tile_apply(lambda b: 3 * b - 2, xt, tile, halo, blend), 3 * xt - 2)


def test_zarr_input_is_read_window_by_window(tmp_path):
    zarr = pytest.importorskip("zarr")
    x = np.random.default_rng(2).normal(size=(1, 40, 36)).astype(np.float32)
    z = zarr.create_array(str(tmp_path / "f.zarr"), shape=x.shape, chunks=(1, 8, 8), dtype="float32")
    z[:] = x
    kernel = np.random.default_rng(3).normal(size=(3, 3)).astype(np.float32)
    fn = batched(lambda w: periodic_conv(w, kernel))
    np.testing.assert_allclose(tile_apply(fn, z, 16, 1), tile_apply(fn, x, 16, 1), rtol=0, atol=0)


def test_zarr_volume_streams_into_a_zarr_output(tmp_path):
    """Out of core in and out: a 3D Zarr field through a torch fn into a Zarr array equals the in-memory result."""
    zarr = pytest.importorskip("zarr")
    import torch

    x = np.random.default_rng(4).normal(size=(1, 30, 26, 22))
    z = zarr.create_array(str(tmp_path / "in.zarr"), shape=x.shape, chunks=(1, 8, 8, 8), dtype="float64")
    z[:] = x
    out = zarr.create_array(str(tmp_path / "out.zarr"), shape=x.shape, chunks=(1, 8, 8, 8), dtype="float64")
    kernel = np.random.default_rng(5).normal(size=(3, 3, 3))
    fn = batched(lambda w: periodic_conv(w, kernel))
    torch_fn = lambda w: torch.as_tensor(fn(w.cpu().numpy()))  # noqa: E731
    assert tile_apply(torch_fn, z, (12, 10, 9), 1, batch_size=5, device="cpu", out=out) is out
    np.testing.assert_allclose(out[:], periodic_conv(x, kernel), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="needs blend='core'"):
        tile_apply(fn, z, 12, 1, blend="cosine", out=out)


def test_grid_covers_any_size_with_equal_windows():
    g = TileGrid.make((37, 50), 16, 3)
    assert g.counts == (3, 4) and g.window == (22, 22) and len(g) == 12
    owned = np.zeros(g.shape, int)
    for t in g.tiles():
        glob, local = g.owned_slices(t)
        owned[glob] += 1
        assert all(len(ix) == w for ix, w in zip(g.window_index(t), g.window))
    assert (owned == 1).all()  # the tiles partition the field
    assert g.start(0, 2) == 21 and g.owned(0, 2) == (32, 37)  # last core overlaps; owns only the rest


@pytest.mark.parametrize("kwargs,match", [
    (dict(shape=(32, 32), tile=16, halo=16), "halo 16 must be smaller than the tile 16 on axis 0"),
    (dict(shape=(32, 20), tile=24, halo=2), "tile 24 is larger than the field \\(20 pixels\\) on axis 1"),
    (dict(shape=(32, 32), tile=(16,), halo=2), "one value per spatial axis"),
    (dict(shape=(32, 32), tile=0, halo=0), "tile must be >= 1"),
])
def test_bad_grids(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TileGrid.make(**kwargs)


def test_bad_blend_and_fn_output():
    x = np.zeros((1, 32, 32))
    with pytest.raises(ValueError, match="unknown blend 'hann'"):
        tile_apply(lambda b: b, x, 16, 2, blend="hann")
    with pytest.raises(ValueError, match="fn must map"):
        tile_apply(lambda b: b[..., 1:], x, 16, 2)
