"""tiling.tile_apply(mode="valid"): functions that return only the core equal the whole-torus operator."""
import doctest
import itertools

import numpy as np
import pytest

import tiling
from tiling import TileGrid, tile_apply


def random_stencil(rng, reach: tuple[int, ...]) -> list[tuple[tuple[int, ...], float]]:
    """(offset, weight) pairs reaching exactly ``reach`` per axis: every corner of the box, the centre, and more."""
    corners = set(itertools.product(*((-r, r) for r in reach)))
    inner = {tuple(int(rng.integers(-r, r + 1)) for r in reach) for _ in range(12)}
    offsets = sorted(corners | inner | {(0,) * len(reach)})
    return [(off, float(rng.normal())) for off in offsets]


def periodic_stencil(x: np.ndarray, stencil) -> np.ndarray:
    """The oracle: out[i] = Σ w x[i − off] on the whole torus, for (C, *spatial) x (np.roll shifts by +off)."""
    out = np.zeros_like(x)
    for off, w in stencil:
        out += w * np.roll(x, off, axis=tuple(range(1, x.ndim)))
    return out


def valid_stencil(stencil, reach: tuple[int, ...]):
    """The same stencil as a valid operator on a batch (B, C, *window) -> (B, C, *(window − 2 reach))."""
    def fn(b: np.ndarray) -> np.ndarray:
        core = tuple(n - 2 * r for n, r in zip(b.shape[2:], reach))
        out = np.zeros(b.shape[:2] + core)
        for off, w in stencil:  # core pixel j sits at window index j + reach; x[i − off] at j + reach − off
            out += w * b[(Ellipsis,) + tuple(slice(r - o, r - o + c) for r, o, c in zip(reach, off, core))]
        return out
    return fn


@pytest.mark.parametrize("shape,tile,halo", [
    ((19, 22, 17), 8, 2),             # sizes not multiples of the tile: the last core overlaps its neighbour
    ((13, 10, 9), 4, 5),              # halo > tile
    ((12, 9, 11), (6, 4, 5), (3, 4, 5)),  # halo == tile on axes 1 and 2, per-axis values
    ((7, 6, 5), 3, 4),                # windows (11) wider than the field: they wrap more than once
    ((37, 50), 16, 3), ((11, 13), 5, 7),
])
def test_valid_stencil_equals_whole_torus(shape, tile, halo):
    rng = np.random.default_rng(0)
    reach = tuple(np.broadcast_to(halo, len(shape)))
    stencil = random_stencil(rng, reach)
    x = rng.normal(size=(2, *shape))
    tiled = tile_apply(valid_stencil(stencil, reach), x, tile, halo, mode="valid", batch_size=4)
    assert tiled.shape == x.shape and tiled.dtype == np.float64
    np.testing.assert_allclose(tiled, periodic_stencil(x, stencil), rtol=0, atol=1e-10)


def dm2gal_like(torch):
    """A valid 3D CNN of receptive radius 32 (two convolutions of size 3 and dilation 16), float64."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, dilation=16, dtype=torch.float64), torch.nn.Tanh(),
                               torch.nn.Conv3d(4, 2, 3, dilation=16, dtype=torch.float64))


def test_valid_cnn_with_dm2gal_halo_on_small_blocks():
    """Halo 32 with 16³ blocks, sizes not multiples of 16, one axis shorter than the 80-voxel window."""
    import torch

    net = dm2gal_like(torch)
    x = torch.randn(1, 40, 36, 20, dtype=torch.float64)
    with torch.no_grad():
        padded = np.pad(x.numpy(), [(0, 0)] + [(32, 32)] * 3, mode="wrap")  # the torus, unrolled by the radius
        whole = net(torch.as_tensor(padded)[None])[0]
        a = tile_apply(net, x, 16, 32, mode="valid", batch_size=5)
        b = tile_apply(net, x.numpy(), (16, 12, 20), 32, mode="valid", batch_size=1, device="cpu")
    assert whole.shape == a.shape == (2, 40, 36, 20) and isinstance(b, np.ndarray)
    torch.testing.assert_close(a, whole, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b, whole.numpy(), rtol=0, atol=1e-10)


def test_valid_conv3d_without_padding_matches_circular_conv():
    import torch

    torch.manual_seed(1)
    conv = torch.nn.Conv3d(2, 3, 5, padding=0, dtype=torch.float64)
    circ = torch.nn.Conv3d(2, 3, 5, padding=2, padding_mode="circular", dtype=torch.float64)
    circ.load_state_dict(conv.state_dict())
    x = torch.randn(2, 21, 18, 11, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(tile_apply(conv, x, 8, 2, mode="valid"), circ(x[None])[0], rtol=0, atol=1e-10)


def test_valid_mode_errors_name_the_values():
    x = np.zeros((1, 20, 20))
    with pytest.raises(ValueError, match="only blend='core' applies; got blend='cosine'"):
        tile_apply(lambda b: b[..., 2:-2, 2:-2], x, 8, 2, blend="cosine", mode="valid")
    with pytest.raises(ValueError, match=r"expected \(3, C_out, \*\(8, 8\)\), got \(3, 1, 12, 12\)"):
        tile_apply(lambda b: b, x, 8, 2, mode="valid", batch_size=3)  # a same-shape fn in valid mode
    with pytest.raises(ValueError, match=r"expected \(2, C_out, \*\(12, 12\)\), got \(2, 1, 8, 8\)"):
        tile_apply(lambda b: b[..., 2:-2, 2:-2], x, 8, 2, batch_size=2)  # a valid fn in same mode
    with pytest.raises(ValueError, match="unknown mode 'vaild'; expected one of \\['same', 'valid'\\]"):
        tile_apply(lambda b: b, x, 8, 2, mode="vaild")
    with pytest.raises(ValueError, match="halo 9 must be smaller than the tile 8 on axis 0 \\(mode='same'"):
        TileGrid.make((20, 20), 8, 9)
    assert TileGrid.make((20, 20), 8, 9, mode="valid").output == (8, 8)


def test_valid_identity_on_the_core_reproduces_the_input():
    """The output offsets: a valid fn that crops its window to the core must return the field itself."""
    x = np.random.default_rng(2).normal(size=(3, 17, 14, 9))
    crop = lambda b: b[:, :, 6:-6, 5:-5, 4:-4]  # noqa: E731
    np.testing.assert_array_equal(tile_apply(crop, x, (5, 4, 4), (6, 5, 4), mode="valid"), x)


def test_docstring_examples_run():
    for module in (tiling, tiling.grid, tiling.apply, tiling.stream):
        failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0 and (attempted > 0 or module is tiling), module.__name__


def test_valid_torch_net_from_zarr_into_zarr_by_shares(tmp_path):
    """Out of core in and out, as the dense dm2gal paint runs: Zarr volume -> torch valid net -> Zarr, two shares."""
    zarr = pytest.importorskip("zarr")
    import torch

    torch.manual_seed(2)
    conv = torch.nn.Conv3d(1, 2, 5, padding=0, dtype=torch.float64)
    x = np.random.default_rng(3).normal(size=(1, 16, 12, 10))
    field = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=x.shape, chunks=(1, 4, 4, 4), dtype="float64")
    field[:] = x
    out = zarr.create_array(store=str(tmp_path / "out.zarr"), shape=(2, *x.shape[1:]), chunks=(1, 4, 4, 5),
                            dtype="float64")
    grid = TileGrid.make(x.shape[1:], (4, 8, 5), 2, "valid")
    with torch.no_grad():
        for rank in range(2):
            tile_apply(conv, field, grid.tile, 2, mode="valid", device="cpu", out=out, tiles=grid.tiles_of(rank, 2))
        want = tile_apply(conv, torch.as_tensor(x), grid.tile, 2, mode="valid").numpy()
        circ = torch.nn.Conv3d(1, 2, 5, padding=2, padding_mode="circular", dtype=torch.float64)
        circ.load_state_dict(conv.state_dict())
        np.testing.assert_allclose(want, circ(torch.as_tensor(x)[None])[0].numpy(), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(out[:], want)
