import dask.array as da
import numpy as np
import pytest
import zarr

from helpers import write_cmd
from hpc_vdm.config import load_config
from hpc_vdm.data import camels
from hpc_vdm.data.store import split_by_simulation
from hpc_vdm.prepare import main as prepare_main
from hpc_vdm.prepare import prepare


def test_round_trip_is_bitwise(mock_cfg, mock_files, maps_store):
    root = zarr.open_group(str(maps_store), mode="r")
    for field in ("Mstar", "Mcdm"):
        np.testing.assert_array_equal(root[field][:], np.load(mock_files[field]))
    np.testing.assert_array_equal(root["params"][:], camels.load_params(mock_cfg.data.source_dir, "IllustrisTNG", "LH"))
    np.testing.assert_array_equal(root["sim"][:], np.arange(15 * mock_cfg.mock.n_sims) // 15)


def test_splits_are_disjoint_and_by_simulation(mock_cfg, maps_store):
    attrs = zarr.open_group(str(maps_store), mode="r").attrs
    splits = attrs["splits"]
    sims = [set(splits[s]) for s in ("train", "val", "test")]
    assert all(sims) and not (sims[0] & sims[1]) and not (sims[0] & sims[2]) and not (sims[1] & sims[2])
    assert set().union(*sims) == set(range(mock_cfg.mock.n_sims))


def test_split_fractions_and_seed():
    s = split_by_simulation(1000, [0.8, 0.1, 0.1], 342)
    assert [len(s[k]) for k in ("train", "val", "test")] == [800, 100, 100]
    assert s == split_by_simulation(1000, [0.8, 0.1, 0.1], 342) != split_by_simulation(1000, [0.8, 0.1, 0.1], 1)
    with pytest.raises(ValueError, match=r"summing to 1, got \[0.8, 0.3, 0.1\]"):
        split_by_simulation(10, [0.8, 0.3, 0.1], 0)


def test_statistics_come_from_training_simulations_only(mock_cfg, mock_files, maps_store):
    attrs = zarr.open_group(str(maps_store), mode="r").attrs
    train = attrs["splits"]["train"]
    for field, offset in (("Mstar", 1.0), ("Mcdm", 0.0)):
        maps = np.load(mock_files[field])
        x = np.log10(np.concatenate([maps[s * 15:(s + 1) * 15] for s in train]).astype(np.float64) + offset)
        st = attrs["stats"][field]
        assert st["offset"] == offset and st["n_pixels"] == x.size
        assert st["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert st["std"] == pytest.approx(x.std(), rel=1e-10)
        everything = np.log10(maps.astype(np.float64) + offset)
        assert st["mean"] != pytest.approx(everything.mean(), rel=1e-9)  # held-out sims are excluded


def test_store_metadata_and_plain_readers(mock_cfg, maps_store):
    root = zarr.open_group(str(maps_store), mode="r")
    attrs = root.attrs
    assert attrs["suite"] == "IllustrisTNG" and attrs["set"] == "LH"
    assert attrs["box_size_mpc_h"] == 25.0 and attrs["pixel_size_mpc_h"] == pytest.approx(25 / 256)
    assert attrs["param_names"] == list(camels.PARAM_NAMES)
    arr = root["Mcdm"]
    assert arr.dtype == np.float32 and arr.chunks == (1, 256, 256) and arr.shards == (15, 256, 256)
    x = da.from_zarr(str(maps_store), component="Mcdm")
    assert x.shape == arr.shape
    np.testing.assert_array_equal(x[3:5].compute(), arr[3:5])


@pytest.fixture
def small_cfg(tmp_path):
    return load_config(None, [f"data.source_dir={tmp_path}/cmd", f"data.store={tmp_path}/maps.zarr"])


def _corrupt(kind, root):
    rng = np.random.default_rng(1)
    mstar, mcdm, params = write_cmd(root)
    if kind == "lengths":
        write_cmd(root, mcdm=mcdm[:-1], mstar=mstar, params=params)
    elif kind == "params_rows":
        write_cmd(root, mstar=mstar, mcdm=mcdm, params=params[:1])
    elif kind == "nan":
        mcdm[17, 3, 4] = np.nan
        write_cmd(root, mstar=mstar, mcdm=mcdm, params=params)
    elif kind == "inf":
        mstar[5, 0, 0] = np.inf
        write_cmd(root, mstar=mstar, mcdm=mcdm, params=params)
    elif kind == "negative":
        mstar[29, 1, 1] = -2.0
        write_cmd(root, mstar=mstar, mcdm=mcdm, params=params)
    elif kind == "zero_dm":
        mcdm[2, 1, 1] = 0.0
        write_cmd(root, mstar=mstar, mcdm=mcdm, params=params)
    elif kind == "dtype":
        write_cmd(root, mstar=mstar.astype(np.float64), mcdm=mcdm, params=params)
    elif kind == "shape":
        write_cmd(root, mstar=rng.random((30, 16, 12)).astype(np.float32), mcdm=rng.random((30, 16, 12)).astype(np.float32),
                  params=params)
    elif kind == "map_shapes":
        write_cmd(root, mstar=rng.random((30, 8, 8)).astype(np.float32), mcdm=mcdm, params=params)
    elif kind == "missing":
        (root / "Maps_Mcdm_IllustrisTNG_LH_z=0.00.npy").unlink()
    elif kind == "not_multiple":
        write_cmd(root, mstar=mstar[:20], mcdm=mcdm[:20], params=params)


@pytest.mark.parametrize("kind, message", [
    ("lengths", r"fields have different lengths: Mstar has 30 maps, Mcdm has 29"),
    ("params_rows", r"params has 1 rows but the maps hold 30 / 15 = 2 simulations"),
    ("nan", r"Mcdm: NaN or inf in map 17"),
    ("inf", r"Mstar: NaN or inf in map 5"),
    ("negative", r"Mstar: negative mass -2 in map 29"),
    ("zero_dm", r"Mcdm: 1 pixels <= 0 from map 2 on cannot take log10\(x \+ 0.0\)"),
    ("dtype", r"Mstar: expected float32 maps as in CMD, got dtype float64"),
    ("shape", r"Mstar: expected maps of shape \(N, H, H\), got \(30, 16, 12\)"),
    ("map_shapes", r"fields have different map shapes: Mstar \(8, 8\), Mcdm \(16, 16\)"),
    ("missing", r"missing CMD maps file .*Maps_Mcdm_IllustrisTNG_LH_z=0.00.npy"),
    ("not_multiple", r"20 maps is not a positive multiple of data.maps_per_sim=15"),
])
def test_bad_input_is_refused_before_writing(kind, message, small_cfg, tmp_path):
    root = tmp_path / "cmd"
    root.mkdir()
    _corrupt(kind, root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        prepare(small_cfg, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd"]  # no store, no temporary left behind


def test_existing_store_is_kept_without_overwrite_and_replaced_with_it(small_cfg, tmp_path, capsys):
    root = tmp_path / "cmd"
    root.mkdir()
    write_cmd(root, seed=0)
    prepare(small_cfg, progress=False)
    first = zarr.open_group(small_cfg.data.store, mode="r")["Mcdm"][:]
    mstar, mcdm, params = write_cmd(root, seed=5)
    args = ["--source", str(root), "--out", small_cfg.data.store]
    assert prepare_main(args) == 2
    assert "exists (an hpc_vdm maps store); pass --overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_group(small_cfg.data.store, mode="r")["Mcdm"][:], first)
    assert prepare_main(args + ["--overwrite"]) == 0
    np.testing.assert_array_equal(zarr.open_group(small_cfg.data.store, mode="r")["Mcdm"][:], mcdm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "maps.zarr"]


def test_failed_overwrite_keeps_the_old_store(small_cfg, tmp_path):
    root = tmp_path / "cmd"
    root.mkdir()
    write_cmd(root, seed=0)
    prepare(small_cfg, progress=False)
    before = zarr.open_group(small_cfg.data.store, mode="r")["Mstar"][:]
    _corrupt("nan", root)
    with pytest.raises(ValueError, match="NaN"):
        prepare(small_cfg, overwrite=True, progress=False)
    np.testing.assert_array_equal(zarr.open_group(small_cfg.data.store, mode="r")["Mstar"][:], before)
