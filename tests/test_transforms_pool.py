"""Average-pooling of map stacks (data.pool): a lazy view that keeps surface densities and reads by block."""
import numpy as np
import pytest

from hpc_vdm.data.transforms import Pooled


def test_pooled_view_is_the_block_mean_and_lazy():
    rng = np.random.default_rng(0)
    maps = rng.random((5, 16, 16)).astype(np.float32)
    view = Pooled(maps, 4)
    assert view.shape == (5, 4, 4) and view.dtype == np.float32 and len(view) == 5
    want = maps.reshape(5, 4, 4, 4, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(view[:], want, rtol=1e-6)
    np.testing.assert_allclose(view[2:4], want[2:4], rtol=1e-6)
    assert np.asarray(view).sum() == pytest.approx(maps.sum() / 16, rel=1e-5)   # total mass / pixel area ratio


def test_pool_must_divide_the_maps():
    with pytest.raises(ValueError, match="data.pool=3 must divide the map size 16x16"):
        Pooled(np.zeros((1, 16, 16)), 3)


def test_prepare_pools_the_maps_and_records_the_pixel(tmp_path):
    import zarr

    from helpers import write_cmd
    from hpc_vdm import prepare

    (tmp_path / "cmd").mkdir()
    mstar, mcdm, _ = write_cmd(tmp_path / "cmd", n_sims=2, pixels=16)
    assert prepare.main(["--source", str(tmp_path / "cmd"), "--out", str(tmp_path / "m.zarr"), "--set",
                         "data.pool=4", "--set", "data.split_fractions=[0.5,0.5,0.0]"]) == 0
    root = zarr.open_group(str(tmp_path / "m.zarr"), mode="r")
    assert root["Mcdm"].shape == (30, 4, 4) and root.attrs["map_pixels"] == 4 and root.attrs["pool"] == 4
    assert root.attrs["pixel_size_mpc_h"] == pytest.approx(25.0 / 4)
    np.testing.assert_allclose(root["Mcdm"][:].mean(axis=(1, 2)), mcdm.mean(axis=(1, 2)), rtol=1e-5)
