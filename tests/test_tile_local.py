"""Tiling a trained network without tiles showing (#23): the guards of ``tile``, the frozen-GroupNorm stop-gap,
a local network whose tiled slab equals the whole field, and tile grids of any size on the stride grid."""
import re

import numpy as np
import pytest
import torch
import zarr

from helpers import export_tiny
from hpc_vdm import tile
from hpc_vdm.bundle import load_bundle
from hpc_vdm.data import transforms
from hpc_vdm.data.dataset import read_attrs
from hpc_vdm.diffusion import sample_tiled
from hpc_vdm.models import locality, misaligned_windows
from hpc_vdm.training.export import facts
from tiling import TileGrid

SMALL = "name: small\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n"  # 100^2 slabs, 2 per axis
LOCAL = {"channel_mults": [1], "norm": "pixel", "attention": False}           # stride 2


@pytest.fixture(scope="module")
def setup(maps_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("tile_local")
    attrs = read_attrs(maps_store) | {"pixel_size_mpc_h": 0.1, "slab_thickness_mpc_h": 5.0}
    (root / "small.yaml").write_text(SMALL)
    local = export_tiny(root / "local.pt", attrs, jitter=0.05, model=LOCAL)
    group = export_tiny(root / "group.pt", attrs, jitter=0.05, model={"channel_mults": [1], "attention": False})
    return root, local, group


def args(root, model, out, *extra):
    return ["--volume", str(root / "small.yaml"), "--model", str(model), "--n-samples", "1", "--steps", "3",
            "--sampler", "ancestral", "--tile", "50", "--halo", "16", "--set", "tile.mock_slabs=1",
            "--set", "tile.mock_spacing_mpc_h=0.5", "--set", "tile.mock_pm_steps=3", "--set", "tile.progress=false",
            "--out", str(out), *extra]


def test_the_local_network_records_a_finite_reach(setup):
    _, local, group = setup
    loc = locality(load_bundle(local).module.score)
    assert loc["tile_safe"] and loc["receptive_radius"] == 15 and loc["stride"] == 2
    assert not locality(load_bundle(group).module.score)["tile_safe"]


def test_a_tiled_local_slab_equals_the_whole_field_with_the_same_noise(setup, tmp_path):
    root, local, _ = setup
    out = tmp_path / "t.zarr"
    assert tile.main(args(root, local, out)) == 0
    got = zarr.open_group(str(out), mode="r")
    b = load_bundle(local)
    stats = b.store["stats"]
    cond = torch.from_numpy(transforms.normalise(got["cond"][0], stats["Mstar"]))[None]       # (1, 100, 100)
    key = 2 * 2 + 0                                                # (axis 2, slab 0) of 2 slabs per axis
    whole = sample_tiled(b.module, cond, tile=100, halo=0, n_steps=3, seed=0, slab=key, samples=[0])
    np.testing.assert_allclose(got["samples"][0, 0], transforms.denormalise(whole[0].numpy(), stats["Mcdm"]),
                               rtol=2e-4)


def test_the_reports_tiled_panel_draws_the_slab_whole_with_the_stores_noise(setup, tmp_path):
    """evaluate's tiled panel re-draws the store's slab whole with its sampler, steps, seed and slab key: for a
    local network the tiled/whole P(k) ratio is 1 and tiled − whole is float rounding; the reference 'maps' here
    are the slab's own condition and draws, so the two cross-volume ratios are 1 too."""
    from hpc_vdm.evaluate import panels

    root, local, _ = setup
    out = tmp_path / "t.zarr"
    assert tile.main(args(root, local, out, "--n-samples", "2")) == 0
    got = zarr.open_group(str(out), mode="r")
    cond = np.repeat(np.asarray(got["cond"][:1], np.float64), 2, axis=0)                  # (2, P, P)
    draws = np.asarray(got["samples"][:, 0], np.float64)                                  # (S=2, P, P)
    m = panels.tiled(str(out), load_bundle(local), cond, draws, "the slab's own", 10.0, tmp_path / "tiled.png")
    assert m["samples"] == 2 and m["tiled_minus_whole_rms_over_spread"] < 1e-3
    for name in ("tiled_over_whole_pk_ratio_by_band", "cond_pk_ratio_by_band", "pk_ratio_by_band"):
        assert all(v == pytest.approx(1.0, abs=1e-3) for v in m[name].values()), name
    small = panels.tiled(str(out), load_bundle(local), cond, draws, "the slab's own", 10.0, tmp_path / "t2.png",
                         whole_max_pixels=64)
    assert "tiled_over_whole_pk_ratio_by_band" not in small and "64" in small["whole"]


@pytest.mark.parametrize("model,extra,match", [
    ("group", [], r"cannot be tiled exactly: GroupNorm normalises each window with its own statistics"),
    ("local", ["--halo", "12", "--tile", "50"], r"tile.halo=12 is below the network's receptive radius 15 px: use "
                                                r"--halo 16 or more"),
    ("local", ["--halo", "17", "--tile", "50"], r"must be multiples of the network's stride 2"),
])
def test_tile_refuses_a_network_it_cannot_tile_exactly(setup, tmp_path, capsys, model, extra, match):
    root, local, group = setup
    out = tmp_path / "o" / "x.zarr"
    assert tile.main(args(root, local if model == "local" else group, out, *extra)) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()
    assert tile.main(args(root, local if model == "local" else group, out, *extra, "--set", "tile.force=true")) == 0


@pytest.fixture(scope="module")
def frozen(setup, maps_store, tmp_path_factory):
    """The GroupNorm export with its per-γ statistics recorded (untrained: its draws overflow float32)."""
    root, _, group = setup
    blob = torch.load(group, weights_only=True)
    cfg = blob["config"] | {"data": {**blob["config"]["data"], "store": str(maps_store)}}
    extra = facts(cfg, blob["store"], blob["ema"])
    assert "frozen_norm" in extra and extra["locality"]["norm"] == "group"
    path = tmp_path_factory.mktemp("frozen") / "frozen.pt"
    torch.save(blob | extra, path)
    return path


def clip_log(model) -> str:
    """``--set sampler.clip_log`` at the target's training mean ± 5 standard deviations of its log10."""
    s = load_bundle(model).store["stats"]["Mcdm"]
    return f"sampler.clip_log=[{s['mean'] - 5 * s['std']:.3f}, {s['mean'] + 5 * s['std']:.3f}]"


def test_frozen_groupnorm_statistics_make_an_exported_groupnorm_network_tileable(setup, frozen, tmp_path):
    """The stop-gap: statistics recorded at export per γ; tile freezes them, so every window sees the same
    numbers and the tiled field equals the whole one."""
    from types import SimpleNamespace

    from hpc_vdm.families import for_bundle
    from hpc_vdm.inference.slabs import local_bundle

    root = setup[0]
    assert tile.main(args(root, frozen, tmp_path / "f.zarr", "--set", clip_log(frozen))) == 0
    assert np.isfinite(zarr.open_group(str(tmp_path / "f.zarr"), mode="r")["samples"][:]).all()

    b = load_bundle(frozen)
    tileable = local_bundle(b, for_bundle(b), SimpleNamespace(tile=50, halo=16, force=False)).module
    assert locality(tileable.score)["tile_safe"] and locality(tileable.score)["norm"] == "frozen_group"
    cond = torch.randn(1, 100, 100)
    kw = dict(n_steps=2, seed=3, samples=[0], sampler="ancestral")
    tiled = sample_tiled(tileable, cond, tile=50, halo=16, **kw)
    whole = sample_tiled(tileable, cond, tile=100, halo=0, **kw)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-4)
    unfrozen = sample_tiled(b.module, cond, tile=50, halo=16, **kw)
    assert float((unfrozen - sample_tiled(b.module, cond, tile=100, halo=0, **kw)).abs().max()) > 1e-3


def test_a_draw_that_overflows_float32_is_refused_not_stored_as_inf(setup, frozen, tmp_path, capsys):
    out = tmp_path / "f.zarr"
    assert tile.main(args(setup[0], frozen, out)) == 2
    assert re.search(r"map 0 \(key \d+\), samples \[0\]: \d+ of 10000 values of the model's draws are NaN or "
                     r"beyond float32's .*sampler.clip_log", capsys.readouterr().err)
    got = zarr.open_group(str(out), mode="r")    # the job's own store, resumable; no draw recorded or written
    assert not got["done"][:].any() and np.isnan(got["samples"][:]).all()


def test_finite_draws_counts_nan_and_float32_overflow_in_numpy_and_torch():
    big = float(np.finfo(np.float32).max) * 2
    for x in (np.array([1.0, big, np.nan, -big, 3e38]), torch.tensor([1.0, big, np.nan, -big, 3e38], dtype=torch.float64)):
        with pytest.raises(ValueError, match=r"^slab 3: 3 of 5 values"):
            transforms.finite_draws(x, "slab 3")
        assert transforms.finite_draws(x[[0, 4]], "ok") is not None


def test_tile_grids_of_any_size_start_every_window_on_the_stride_grid():
    g = TileGrid.make((2099,), 192, 32, align=16)
    starts = [g.start(0, i) for i in range(g.counts[0])]
    assert all(s % 16 == 0 for s in starts) and starts[-1] == 1920 and g.owned(0, 10) == (1920, 2099)
    covered = np.zeros(2099, int)
    for i in range(g.counts[0]):
        a, b = g.owned(0, i)
        assert g.start(0, i) <= a and b <= g.start(0, i) + 192   # the owned pixels lie in the core
        covered[a:b] += 1
    assert (covered == 1).all()
    assert misaligned_windows((2099, 2099), 192, 32, 16) == []
    assert TileGrid.make((2099,), 192, 32).start(0, 10) == 1907    # without alignment: the last core shifts back
    with pytest.raises(ValueError, match="multiples of align=16"):
        TileGrid.make((2099,), 190, 32, align=16)
