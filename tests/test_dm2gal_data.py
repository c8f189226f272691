"""dm2gal data: synthetic 3D volumes -> the volume store, the 24 rotations, patches, the weighted sampler."""
from pathlib import Path

import numpy as np
import pytest

from hpc_vdm.config import load_config
from hpc_vdm.data import camels, patches, volume as vol

REPO = Path(__file__).resolve().parents[1]


def synth_grids(n: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Lognormal dark matter, a sparse subhalo field on its peaks, and stars that are a known nonlinear
    function of the smoothed log dark matter plus noise, where there are subhalos (mass per voxel, Msun/h)."""
    rng = np.random.default_rng(seed)
    k = np.sqrt(sum(f**2 for f in np.meshgrid(*[np.fft.fftfreq(n)] * 3, indexing="ij")))
    g = np.fft.ifftn(np.fft.fftn(rng.normal(size=(n,) * 3)) * np.exp(-(k * 6) ** 2)).real
    g /= g.std()
    dm = 1e11 * np.exp(g + 0.3 * rng.normal(size=g.shape))
    sub = np.where(g > np.quantile(g, 0.8), 30 * dm, 0.0)
    z = np.fft.ifftn(np.fft.fftn(np.log10(dm)) * np.exp(-(k * 3) ** 2)).real
    z = (z - z.mean()) / z.std()
    log_ms = 8.3 + 2.5 / (1 + np.exp(-2 * z)) + 0.05 * rng.normal(size=z.shape)
    stars = np.where(sub > 0, 10**log_ms, 0.0)
    return {"dm": dm.astype(np.float32), "subhalo": sub.astype(np.float32), "stellar": stars.astype(np.float32)}


def write_volume(tmp: Path, n: int = 32, seed: int = 0, *sets, stellar: bool = True, name="volume.zarr") -> Path:
    grids = synth_grids(n, seed)
    files = {}
    for f, g in grids.items():
        if f == "stellar" and not stellar:
            continue
        files[f] = str(tmp / f"{name}_{f}.npy")
        np.save(files[f], g)
    cfg = load_config(REPO / "configs" / "dm2gal_test.yaml",
                      [f"volume.grids={files}".replace("'", '"'), f"data.store={tmp / name}", *sets])
    return vol.prepare_volume(cfg.volume, cfg.data, cfg.data.store)


def test_volume_store_regions_stats_and_units(tmp_path):
    out = write_volume(tmp_path, 32)
    root = vol.open_volume(out, need=vol.FIELDS)
    a = root.attrs
    assert a["n"] == 32 and a["regions"] == {"test": [1, 15], "val": [16, 28]}
    np.testing.assert_array_equal(root["dm"][:], np.load(tmp_path / "volume.zarr_dm.npy"))  # mass: copied as is
    y = np.log10(1 + root["dm"][:].astype(np.float64))
    keep = vol.train_mask(0, 32, 32, a["regions"])
    assert np.isclose(a["stats"]["dm"]["mean"], y[keep].mean()) and np.isclose(a["stats"]["dm"]["std"], y[keep].std())


def test_cmd_layout_densities_become_masses(tmp_path):
    grids = synth_grids(16)
    stack = {f: np.stack([g, 2 * g]) / (25.0 / 16) ** 3 for f, g in grids.items()}   # (2, N, N, N) densities
    for f, cmd in (("dm", "Mtot"), ("subhalo", "Msubhalo"), ("stellar", "Mstar")):
        np.save(camels.grids_path(tmp_path, cmd, "IllustrisTNG", "LH", 16), stack[f].astype(np.float32))
    cfg = load_config(None, [f"volume.source_dir={tmp_path}", "volume.grid_n=16", "volume.sim=1",
                             f"data.store={tmp_path / 'v.zarr'}"])
    root = vol.open_volume(vol.prepare_volume(cfg.volume, cfg.data, cfg.data.store), need=vol.FIELDS)
    np.testing.assert_allclose(root["stellar"][:], 2 * grids["stellar"], rtol=1e-5)


def test_tng_hdf5_grid_reads_like_npy(tmp_path):
    import h5py

    g = synth_grids(16)["dm"]
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["DM"] = g
        f["other"] = g[:2]
    np.testing.assert_array_equal(vol.open_grid(f"{tmp_path / 'g.h5'}:DM")[:], g)
    with pytest.raises(ValueError, match="name one"):
        vol.open_grid(str(tmp_path / "g.h5"))


def test_the_24_rotations_are_distinct_proper_rotations():
    mats = [patches.rotation_matrix(r) for r in range(24)]
    assert len(patches.ROTATIONS) == 24 and len({m.tobytes() for m in mats}) == 24
    for m in mats:
        assert round(np.linalg.det(m)) == 1 and np.array_equal(m @ m.T, np.eye(3, dtype=int))
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 5))
    for r, m in enumerate(mats):
        y = patches.rotate(x, r)
        for v in np.ndindex(5, 5, 5):  # rotate(x)[R (v - c) + c] = x[v]
            w = m @ (np.array(v) - 2) + 2
            assert np.array_equal(y[(slice(None), *w)], x[(slice(None), *v)])


def test_rotations_map_patch_and_target_consistently():
    """Rotating the volume about a centre, then cutting the patch, equals cutting then rotating; the target
    (the centre voxel) stays put."""
    rng = np.random.default_rng(1)
    field = rng.normal(size=(2, 12, 12, 12))
    c = (3, 11, 0)  # its 7^3 patch wraps around the box
    p = patches.gather_patch(field, c, 7)
    big = patches.gather_patch(field, c, 11)           # a larger periodic patch around the same centre
    for r in range(24):
        rp = patches.rotate(p, r)
        assert np.array_equal(rp[:, 3, 3, 3], field[(slice(None), *c)])
        assert np.array_equal(rp, patches.rotate(big, r)[:, 2:9, 2:9, 2:9])


def test_weighted_sampler_flattens_the_bin_histogram():
    rng = np.random.default_rng(2)
    logs = np.concatenate([rng.normal(8.5, 0.2, 20000), rng.uniform(8, 11.5, 500)])  # very unequal bins
    bins = 100
    w = patches.inverse_count_weights(logs, bins)
    s = patches.WeightedSampler(w, 200_000, seed=3)
    items = s.plan(0)[:, 0]
    b = patches.bin_index(logs[items], bins, logs.min(), logs.max())
    counts = np.bincount(b, minlength=bins)
    occupied = np.bincount(patches.bin_index(logs, bins, logs.min(), logs.max()), minlength=bins) > 0
    expect = len(items) / occupied.sum()
    chi2 = (((counts[occupied] - expect) ** 2) / expect).sum()
    dof = occupied.sum() - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof), (chi2, dof)   # flat within sampling noise
    assert counts[~occupied].sum() == 0


def test_sampler_is_keyed_split_over_ranks_and_resumable():
    w = np.ones(50)
    one = patches.WeightedSampler(w, 40, seed=1).plan(2)
    two = [patches.WeightedSampler(w, 40, seed=1, rank=r, world=2).plan(2) for r in range(2)]
    np.testing.assert_array_equal(np.stack(two, 1).reshape(-1, 2), one)
    s = patches.WeightedSampler(w, 40, seed=1)
    s.set_epoch(2, 15)
    assert list(s) == [tuple(r) for r in one[15:].tolist()]
    assert set(one[:, 1]) <= set(range(24))


def test_centres_are_above_threshold_and_outside_held_out_cubes(tmp_path):
    root = vol.open_volume(write_volume(tmp_path, 32), need=vol.FIELDS)
    reg = root.attrs["regions"]
    c, logs = patches.centres(root["stellar"], None, 32, 8.0, exclude=[reg["test"], reg["val"]])
    assert len(c) > 100 and (logs > 8.0).all()
    inside = vol.in_region(c[:, 0], c[:, 1], c[:, 2], reg["test"]) | vol.in_region(c[:, 0], c[:, 1], c[:, 2], reg["val"])
    assert not inside.any()
    np.testing.assert_allclose(logs, np.log10(1 + root["stellar"][:][tuple(c.T)].astype(np.float64)))


def test_prepare_volume_bad_inputs_write_nothing(tmp_path, capsys):
    from hpc_vdm import prepare_volume

    g = synth_grids(16)
    np.save(tmp_path / "dm.npy", g["dm"])
    np.save(tmp_path / "sub.npy", synth_grids(8)["subhalo"])
    np.save(tmp_path / "neg.npy", -g["subhalo"])
    cases = {"shapes": ({"dm": "dm.npy", "subhalo": "sub.npy"}, "differ in shape"),
             "negative": ({"dm": "dm.npy", "subhalo": "neg.npy"}, "finite and >= 0"),
             "missing": ({"dm": "dm.npy", "subhalo": "nope.npy"}, "no grid file"),
             "fields": ({"dm": "dm.npy"}, "must name dm and subhalo")}
    for name, (files, message) in cases.items():
        spec = {k: str(tmp_path / v) for k, v in files.items()}
        out = tmp_path / f"{name}.zarr"
        rc = prepare_volume.main(["--set", f"volume.grids={spec}".replace("'", '"'), "--store", str(out),
                                  "--set", "volume.grid_units=mass"])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not out.exists() and not list(tmp_path.glob(f".{name}.zarr*")), name
