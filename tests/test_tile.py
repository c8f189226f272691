"""`python -m hpc_vdm.tile`: presets, inputs, the resumable store, ranks, and every bad input before writing."""
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import zarr

from helpers import clean_env, export_tiny, kill_when
from hpc_vdm import tile
from hpc_vdm.inference import painting
from hpc_vdm.inference import sources as slab_inputs
from hpc_vdm.data import transforms
from hpc_vdm.data.dataset import read_attrs
from hpc_vdm.bundle import load_bundle
from hpc_vdm.inference.store import TileRows
from hpc_vdm.diffusion.tiled import sample_tiled
from hpc_vdm.inference.volumes import Volume, load_volume

ARRAYS = ("slabs", "cond", "samples", "mean", "std", "cond_done", "done", "summary_done")
SMALL = "name: small\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n"  # 2 slabs per axis of 100^2 pixels


@pytest.fixture(scope="module")
def model(maps_store, tmp_path_factory):
    """A tiny U-Net (stride 8) with random weights, exported as if trained on 0.1 Mpc/h, 5 Mpc/h maps."""
    attrs = read_attrs(maps_store) | {"pixel_size_mpc_h": 0.1, "slab_thickness_mpc_h": 5.0}
    return export_tiny(tmp_path_factory.mktemp("tile_model") / "model.pt", attrs, jitter=0.05)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("volumes") / "small.yaml"
    path.write_text(SMALL)
    return path


def args(model, preset, out, *extra):
    return ["--volume", str(preset), "--model", str(model), "--n-samples", "2", "--steps", "4", "--tile", "32",
            "--sampler", "ancestral", "--set", "tile.force=true",  # a random GroupNorm net: plumbing, not locality
            "--halo", "8", "--batch-size", "4", "--set", "tile.mock_slabs=2", "--set", "tile.mock_spacing_mpc_h=0.5",
            "--set", "tile.mock_pm_steps=3", "--set", "tile.progress=false", "--out", str(out), *extra]


def arrays(path) -> dict:
    root = zarr.open_group(str(path), mode="r")
    return {name: root[name][:] for name in ARRAYS}


def assert_same_store(a, b):
    for name, x in arrays(a).items():
        np.testing.assert_array_equal(x, arrays(b)[name], err_msg=name)


@pytest.fixture(scope="module")
def finished(model, preset, tmp_path_factory):
    out = tmp_path_factory.mktemp("tile_run") / "small.zarr"
    assert tile.main(args(model, preset, out)) == 0
    return out


# ---------------------------------------------------------------------------------------------
def test_presets_have_whole_slabs_at_the_training_pixel_scale():
    tng300, tng100, camels = (load_volume(n) for n in ("tng300", "tng100", "camels"))
    assert (tng300.pixels, tng300.n_slabs) == (2099, 41)
    assert (tng100.pixels, tng100.n_slabs) == (768, 15)
    assert (camels.pixels, camels.n_slabs) == (256, 5)
    assert (tng300.box_mpc_h / camels.box_mpc_h) ** 3 > 500  # the papers' "~500x the training volume"
    with pytest.raises(ValueError, match=r"unknown volume preset 'tng30'; did you mean tng300"):
        load_volume("tng30")


def test_bad_presets_are_refused(tmp_path):
    for text, match in [("name: x\nbox_mpc_h: 12.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n", "whole number of 5.0 Mpc/h slabs"),
                        ("name: x\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.3\n", "whole number of 0.3 Mpc/h pixels"),
                        ("name: x\nbox_mpc_h: 10.0\nslab: 5.0\npixel_mpc_h: 0.1\n", "missing keys .'slab_mpc_h'.")]:
        (tmp_path / "v.yaml").write_text(text)
        with pytest.raises(ValueError, match=match):
            load_volume(str(tmp_path / "v.yaml"))


def test_tile_run_writes_a_complete_store_and_figure(finished, model):
    got = arrays(finished)
    assert [tuple(p) for p in got["slabs"]] == [(a, s) for a in range(3) for s in range(2)]
    assert got["done"].all() and got["cond_done"].all() and got["summary_done"].all()
    assert zarr.open_group(str(finished), mode="r").attrs["complete"] is True
    assert np.isfinite(got["samples"]).all() and (got["samples"] > 0).all() and (got["cond"] >= 0).all()
    x = got["samples"].astype(np.float64)
    np.testing.assert_allclose(got["mean"], x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(got["std"], x.std(0), rtol=1e-5, atol=1e-3 * x.std(0).max())
    assert finished.with_suffix(".png").stat().st_size > 10_000

    # oracle: slab (axis 1, slab 1), sample 1 is the fused sampler keyed by (seed 0, slab key 3, sample 1, step)
    bundle = load_bundle(model)
    stats = bundle.store["stats"]
    cond = torch.from_numpy(transforms.normalise(got["cond"][3], stats["Mstar"]))[None]
    z = sample_tiled(bundle.module, cond, tile=32, halo=8, n_steps=4, seed=0, slab=1 * 2 + 1, samples=[1],
                     batch_size=2)
    # batch 4 in the run, 2 here: only float rounding differs (a few 1e-5 on the odd pixel)
    np.testing.assert_allclose(got["samples"][1, 3], transforms.denormalise(z[0].numpy(), stats["Mcdm"]), rtol=1e-4)


def test_mock_slabs_hold_the_stellar_mass_of_the_volume(finished):
    """The painted mock conserves mass: every axis projects the same stars."""
    got = arrays(finished)
    per_axis = got["cond"].astype(np.float64).reshape(3, 2, -1).sum(axis=(1, 2)) * 0.1**2
    np.testing.assert_allclose(per_axis, per_axis[0], rtol=1e-5)
    assert per_axis[0] > 0


def test_mock_stars_are_painted_at_cmds_pixel_then_pooled_like_the_training_maps():
    """At a volume pixel 4x CMD's (the pooled maps' 0.39 Mpc/h), a star at a CMD pixel centre lights one pixel
    with all its mass, as a pooled CMD map does; CIC straight at the coarse pixel would light 2x2."""
    vol = Volume("v", 25.0, 5.0, 25.0 / 64)
    assert painting.cmd_subpixels(vol.pixel_mpc_h) == 4 and painting.cmd_subpixels(0.1) == 1
    fine = 25.0 / 256
    pos = np.array([[(8 * 4 + 1 + 0.5) * fine, (5 * 4 + 2 + 0.5) * fine, 1.0]])   # coarse pixel (8, 5), off-centre
    got = painting.paint_as_cmd(pos, np.array([2.0e10]), vol, [(2, 0)])[(2, 0)]
    assert np.count_nonzero(got) == 1 and got[8, 5] == pytest.approx(2.0e10 / vol.pixel_mpc_h**2)
    coarse: dict = {}
    painting.paint(pos, np.array([2.0e10]), vol, [(2, 0)], coarse)
    assert np.count_nonzero(coarse[(2, 0)]) == 4 and coarse[(2, 0)].sum() == pytest.approx(got.sum())
    tng300 = Volume("tng300_64", 205.0, 5.0, 0.390625)            # 524.8 pixels of 0.39 Mpc/h: the grid has 525
    stars = np.random.default_rng(0).uniform(0, [205.0, 205.0, 5.0], size=(1000, 3))
    got = painting.paint_as_cmd(stars, np.ones(1000), tng300, [(2, 0)])[(2, 0)]
    assert got.shape == (525, 525) and got.sum() * (205.0 / 525) ** 2 == pytest.approx(1000.0)


def test_interrupted_run_resumes_to_the_uninterrupted_store(finished, model, preset, tmp_path, monkeypatch):
    out = tmp_path / "small.zarr"
    real = TileRows.write_sample
    calls = []

    def dies_after_five(self, i, j, x):
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        calls.append((i, j))
        real(self, i, j, x)

    monkeypatch.setattr(TileRows, "write_sample", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        tile.main(args(model, preset, out))
    assert arrays(out)["done"].sum() == 5 and not zarr.open_group(str(out), mode="r").attrs["complete"]
    monkeypatch.setattr(TileRows, "write_sample", real)
    assert tile.main(args(model, preset, out)) == 0
    assert_same_store(out, finished)


def test_batch_and_pass_sizes_change_only_float_rounding(finished, model, preset, tmp_path):
    out = tmp_path / "small.zarr"
    assert tile.main(args(model, preset, out, "--batch-size", "3", "--set", "tile.samples_per_pass=1")) == 0
    got, want = arrays(out), arrays(finished)
    for name in ("samples", "mean"):
        np.testing.assert_allclose(got[name], want[name], rtol=3e-4, err_msg=name)
    assert (np.abs(got["std"] - want["std"]) <= 3e-4 * want["mean"]).all()  # std of 2 samples: cancellation


@pytest.mark.parametrize("extra,match", [
    (["--tile", "8", "--halo", "8"], "halo 8 must be smaller than the tile 8"),
    (["--tile", "128", "--halo", "0"], "tile 128 is larger than the field"),
    (["--volume", "tng30"], "unknown volume preset 'tng30'; did you mean tng300"),
    (["--model", "missing/model.pt"], "no exported model at 'missing/model.pt'"),
    (["--volume", "camels"], r"pixel scale mismatch: the model was trained on 0.1 Mpc/h pixels, volume 'camels' has 0.0976562"),
    (["--tile", "30", "--halo", "8"], "not a multiple of the network's stride 8"),
    (["--set", "tile.mock_slabs=1", "--axes", "0,2"], "slabs along axis 2 only"),
    (["--slabs", "0,2"], r"slabs must be distinct indices in \[0, 2\)"),
    (["--axes", "3"], "axes must be distinct values in 0, 1, 2"),
    (["--input", "nowhere/snap_*.hdf5"], "no snapshot files match"),
])
def test_bad_input_is_refused_before_anything_is_written(model, preset, tmp_path, capsys, extra, match):
    out = tmp_path / "out" / "x.zarr"
    assert tile.main(args(model, preset, out, *extra)) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(match, err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_without_a_gpu_is_refused_before_anything_is_written(model, preset, tmp_path, capsys):
    out = tmp_path / "out" / "x.zarr"
    assert tile.main(args(model, preset, out, "--device", "cuda")) == 2
    assert "trained.device='cuda' but no CUDA device is visible" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_existing_output_from_another_configuration_is_refused_untouched(finished, model, preset, capsys):
    before = {p: p.stat().st_mtime_ns for p in finished.rglob("*")}
    assert tile.main(args(model, preset, finished, "--seed", "1", "--steps", "5")) == 2
    err = capsys.readouterr().err
    assert "holds a tile store of another configuration (seed: 0 (stored) != 1 (this run); steps: 4" in err
    assert {p: p.stat().st_mtime_ns for p in finished.rglob("*")} == before


# ---------------------------------------------------------------------------------------------
VOL = Volume("grid", 10.0, 5.0, 0.5)  # 20^2 pixels, 2 slabs per axis


def test_grid_input_projects_voxels_by_their_centres(tmp_path):
    rng = np.random.default_rng(1)
    grid = rng.random((40, 40, 40))  # 2 voxels per pixel per side
    zarr.save_array(str(tmp_path / "g.zarr"), grid.astype(np.float32))
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["Mstar"] = grid
    pairs = [(a, s) for a in range(3) for s in range(2)]
    centre = (np.arange(40) + 0.5) * 10.0 / 40
    for path in (tmp_path / "g.zarr", tmp_path / "g.h5"):
        got = slab_inputs.grid_slabs(str(path), "Mstar", VOL, pairs)
        for a, s in pairs:
            inside = (centre >= 5.0 * s) & (centre < 5.0 * (s + 1))
            weights = np.moveaxis(grid, a, 0)[inside].sum(0)  # plane in (min, max) order of the other axes
            plane = weights.T if a == 1 else weights  # CAMELS' ((a+1)%3, (a+2)%3) plane
            want = plane.reshape(20, 2, 20, 2).sum((1, 3)) / 0.5**2
            np.testing.assert_allclose(got[(a, s)], want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(40, 40, 30\); volume 'grid' needs a cube of a multiple of 20"):
        slab_inputs.check_grid((40, 40, 30), VOL, "g.zarr")


def test_snapshot_chunks_are_painted_in_kpc_with_wind_particles_dropped(tmp_path):
    rng = np.random.default_rng(2)
    pix = rng.integers(0, 20, size=(300, 3))
    pos_kpc = (pix + 0.5) * 0.5 * 1e3  # pixel centres: CIC puts the whole mass in one pixel
    mass = rng.random(300) * 1e-3  # 1e10 Msun/h
    wind = rng.random(300) < 0.2
    for k, part in enumerate(np.array_split(np.arange(300), 2)):
        with h5py.File(tmp_path / f"snap_099.{k}.hdf5", "w") as f:
            f.create_group("Header").attrs["BoxSize"] = 10_000.0
            g = f.create_group("PartType4")
            g["Coordinates"], g["Masses"] = pos_kpc[part], mass[part]
            g["GFM_StellarFormationTime"] = np.where(wind[part], -0.5, 0.7)
    got = slab_inputs.snapshot_slabs(str(tmp_path), VOL, [(2, 1), (0, 0)])
    keep = ~wind
    for (a, s) in [(2, 1), (0, 0)]:
        sel = keep & (pix[:, a] // 10 == s)
        want = np.zeros((20, 20))
        p, q = slab_inputs.plane_axes(a)
        np.add.at(want, (pix[sel, p], pix[sel, q]), mass[sel] * 1e10 / 0.5**2)
        np.testing.assert_allclose(got[(a, s)], want, rtol=1e-10)
    with h5py.File(tmp_path / "snap_099.0.hdf5", "a") as f:
        f["Header"].attrs["BoxSize"] = 75_000.0
    with pytest.raises(ValueError, match="has BoxSize 75000; volume 'grid' is 10 Mpc/h"):
        slab_inputs.snapshot_slabs(str(tmp_path), VOL, [(2, 1)])


def test_grid_input_end_to_end(model, preset, tmp_path):
    grid = np.random.default_rng(3).lognormal(size=(100, 100, 100)).astype(np.float32) * 1e8
    zarr.save_array(str(tmp_path / "g.zarr"), grid)
    out = tmp_path / "g_out.zarr"
    assert tile.main(args(model, preset, out, "--input", str(tmp_path / "g.zarr"), "--axes", "1",
                          "--slabs", "1", "--n-samples", "1")) == 0
    got = arrays(out)
    np.testing.assert_allclose(got["cond"][0], grid[:, 50:].sum(1).T / 0.1**2, rtol=1e-5)
    assert got["done"].all()


# ---------------------------------------------------------------------------------------------
def tile_cmd(model, preset, out, *extra):
    return [sys.executable, "-m", "hpc_vdm.tile", *args(model, preset, out, *extra)]


@pytest.mark.slow
def test_two_mpi_ranks_give_the_one_rank_store(finished, model, preset, tmp_path):
    """Bit for bit against one rank run the same way (a fresh process). Against the in-process run of
    ``finished`` the draws differ by float rounding (~4e-5 relative, seen 2026-12-05 on one and two ranks alike):
    the pytest process's state, not the rank split."""
    mpiexec = Path(sys.executable).with_name("mpiexec")
    one, out = tmp_path / "one.zarr", tmp_path / "mpi.zarr"
    proc = subprocess.run(tile_cmd(model, preset, one), env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([str(mpiexec), "-n", "2", *tile_cmd(model, preset, out)], env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1/2" in proc.stderr and "rank 0/2" in proc.stderr
    assert_same_store(out, one)
    np.testing.assert_allclose(arrays(out)["samples"], arrays(finished)["samples"], rtol=1e-3)


@pytest.mark.slow
def test_killed_run_reruns_to_the_uninterrupted_store(model, preset, tmp_path):
    slow = ("--steps", "15", "--set", "tile.samples_per_pass=1")
    whole = tmp_path / "whole.zarr"
    subprocess.run(tile_cmd(model, preset, whole, *slow), env=clean_env(), check=True, capture_output=True,
                   timeout=300)
    out = tmp_path / "killed.zarr"
    kill_when(tile_cmd(model, preset, out, *slow),
              lambda: (out / "done").exists() and arrays(out)["done"].sum() >= 3, env=clean_env(), timeout=120)
    n_done = arrays(out)["done"].sum()
    assert 3 <= n_done < 12, n_done
    rerun = subprocess.run(tile_cmd(model, preset, out, *slow), env=clean_env(), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr
    # Exact: the killed run read its mock input (numba's threaded kernels reset the OpenMP thread count that
    # torch shares) and the rerun did not; the sources restore torch's threads, so both draw every sample
    # with the same kernels (before that, up to 5 ULP in samples and 121 ULP in std).
    assert_same_store(out, whole)


def test_reading_a_source_keeps_torch_threads(preset, monkeypatch):
    """A source's threaded kernels (numba's OpenMP layer shares libgomp with torch and resets its thread count
    at its first launch in a process) must not change the threads, hence the kernels, of the draws."""
    vol, before = load_volume(str(preset)), torch.get_num_threads()
    sources = {"mock_slabs": slab_inputs.MockSource(slabs=2, spacing_mpc_h=0.5, pm_steps=2, seed=0),
               "grid_slabs": slab_inputs.GridSource("g.h5", "Mstar"), "snapshot_slabs": slab_inputs.SnapshotSource("s")}
    try:
        torch.set_num_threads(1)
        sources["mock_slabs"].read(vol, [(2, 0)])  # the real kernels (resets the count if first in this process)
        assert torch.get_num_threads() == 1
        for name, source in sources.items():      # what numba's first launch does, for every kind of source
            monkeypatch.setattr(slab_inputs, name, lambda *a, **k: torch.set_num_threads(3) or {})
            source.read(vol, [(2, 0)])
            assert torch.get_num_threads() == 1, name
    finally:
        torch.set_num_threads(before)


def test_a_clip_range_is_part_of_the_tile_stores_configuration(finished, model, preset, capsys):
    before = {p: p.stat().st_mtime_ns for p in finished.rglob("*")}
    assert tile.main(args(model, preset, finished, "--set", "sampler.clip_log=[9, 14]")) == 2
    assert "another configuration (clip_log:" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in finished.rglob("*")} == before
