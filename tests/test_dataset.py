import numpy as np
import pytest
import torch

from helpers import write_cmd
from hpc_vdm.config import load_config
from hpc_vdm.data import transforms
from hpc_vdm.data.dataset import EpochSampler, MapsDataset, build_loader
from hpc_vdm.prepare import prepare


@pytest.fixture(scope="module")
def paired_store(tmp_path_factory):
    """A store whose target is a known pixelwise function of the condition: Mcdm = 1e10 (Mstar + 1)."""
    tmp = tmp_path_factory.mktemp("paired")
    (tmp / "cmd").mkdir()
    rng = np.random.default_rng(0)
    mstar = (rng.lognormal(6, 2, (45, 24, 24)) * (rng.random((45, 24, 24)) < 0.4)).astype(np.float32)
    write_cmd(tmp / "cmd", n_sims=3, mstar=mstar, mcdm=(1e10 * (mstar.astype(np.float64) + 1)).astype(np.float32))
    cfg = load_config(None, [f"data.source_dir={tmp}/cmd", f"data.store={tmp}/maps.zarr",
                             "data.split_fractions=[0.34, 0.33, 0.33]"])
    return prepare(cfg, progress=False)


def test_dihedral_group_has_eight_distinct_elements():
    x = np.arange(16.0).reshape(4, 4)
    images = {transforms.dihedral(x, k).tobytes() for k in range(8)}
    rotations = {np.rot90(m, r).tobytes() for m in (x, x.T) for r in range(4)}
    assert images == rotations and len(images) == 8
    with pytest.raises(ValueError, match="got 8"):
        transforms.dihedral(x, 8)


def test_normalise_inverts():
    stats = {"offset": 1.0, "mean": 0.3, "std": 1.7}
    x = np.array([0.0, 1.0, 1e9])
    np.testing.assert_allclose(transforms.denormalise(transforms.normalise(x, stats), stats), x, rtol=1e-5, atol=1e-5)


def test_pairs_stay_aligned_under_every_augmentation(paired_store):
    ds = MapsDataset(paired_store, "train")
    raw = ds[0]
    for k in range(8):
        for shift in ((0, 0), (5, 17), (23, 1)):
            item = ds[(0, k, *shift)]
            cond = transforms.denormalise(item["condition"].numpy(), ds.stats["Mstar"])
            tgt = transforms.denormalise(item["target"].numpy(), ds.stats["Mcdm"])
            np.testing.assert_allclose(tgt, 1e10 * (cond + 1), rtol=1e-4)
            expected = transforms.augment(raw["condition"].numpy(), k, shift)
            np.testing.assert_array_equal(item["condition"].numpy(), expected)
    assert raw["condition"].shape == (1, 24, 24) and raw["params"].shape == (6,)


def test_dataset_reads_its_split_with_store_statistics(paired_store):
    import zarr

    attrs = zarr.open_group(str(paired_store), mode="r").attrs
    train, val = MapsDataset(paired_store, "train"), MapsDataset(paired_store, "val")
    assert len(train) == 15 * len(attrs["splits"]["train"]) and set(train.maps // 15) == set(attrs["splits"]["train"])
    assert not set(train.maps) & set(val.maps)
    item = train[3]
    raw = zarr.open_group(str(paired_store), mode="r")["Mcdm"][int(train.maps[3])]
    st = attrs["stats"]["Mcdm"]
    np.testing.assert_allclose(item["target"][0].numpy(), (np.log10(raw.astype(np.float64)) - st["mean"]) / st["std"],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        MapsDataset(paired_store, "dev")
    with pytest.raises(ValueError, match="field 'Mgas' not in store"):
        MapsDataset(paired_store, "train", target="Mgas")
    with pytest.raises(FileNotFoundError, match="no maps store"):
        MapsDataset(paired_store.parent / "missing.zarr")


def test_sampler_is_deterministic_sharded_and_resumable():
    s = EpochSampler(45, seed=3, roll_pixels=24)
    s.set_epoch(2)
    a = list(s)
    s.set_epoch(2)
    assert list(s) == a
    s.set_epoch(3)
    assert list(s) != a
    ranks = [EpochSampler(45, seed=3, rank=r, world=2, roll_pixels=24) for r in range(2)]
    for r in ranks:
        r.set_epoch(2)
    shards = [list(r) for r in ranks]
    assert len(shards[0]) == len(shards[1]) == 23
    assert sorted({t[0] for t in shards[0] + shards[1]}) == list(range(45))  # all items, one padded repeat
    merged = [t for pair in zip(*shards) for t in pair]
    assert merged[:45] == a  # ranks interleave the single-rank plan
    s.set_epoch(2, position=10)
    assert list(s) == a[10:]
    assert list(s) == a  # the resume position applies to one pass


def _batches(store, workers, epoch=1):
    cfg = load_config(None, [f"data.store={store}", "data.batch_size=4", f"data.num_workers={workers}"])
    _, sampler, loader = build_loader(cfg.data, "train")
    sampler.set_epoch(epoch)
    return [(b["index"].clone(), b["condition"].clone(), b["target"].clone()) for b in loader]


@pytest.mark.slow
def test_same_batches_for_0_1_and_2_spawned_workers(paired_store):
    ref = _batches(paired_store, 0)
    for workers in (1, 2):
        got = _batches(paired_store, workers)
        assert len(got) == len(ref)
        for (i0, c0, t0), (i1, c1, t1) in zip(ref, got):
            assert torch.equal(i0, i1) and torch.equal(c0, c1) and torch.equal(t0, t1)
    assert not torch.equal(_batches(paired_store, 0, epoch=2)[0][1], ref[0][1])


def test_crops_are_periodic_aligned_pairs_at_the_drawn_position(paired_store):
    whole, cropped = MapsDataset(paired_store, "train"), MapsDataset(paired_store, "train", crop=16)
    n = whole.map_pixels  # 24: a 16-pixel crop from corner 17 or 23 wraps around
    for k, dy, dx in ((0, 0, 0), (3, 5, 17), (6, 23, 1), (5, 8, 8)):
        item = cropped[(2, k, dy, dx)]
        cond, tgt = item["condition"].numpy(), item["target"].numpy()
        assert cond.shape == tgt.shape == (1, 16, 16)
        # the pair relation Mcdm = 1e10 (Mstar + 1) holds pixel for pixel in the crop
        np.testing.assert_allclose(transforms.denormalise(tgt, cropped.stats["Mcdm"]),
                                   1e10 * (transforms.denormalise(cond, cropped.stats["Mstar"]) + 1), rtol=1e-4)
        # oracle: rows/columns (-dy + i) mod n of the dihedral image of the whole map, for both fields
        rows, cols = (np.arange(16) - dy) % n, (np.arange(16) - dx) % n
        for name, got in (("condition", cond), ("target", tgt)):
            full = transforms.dihedral(whole[2][name].numpy(), k)
            np.testing.assert_array_equal(got, full[:, rows][:, :, cols])
    with pytest.raises(ValueError, match="crop must be 0 .* got 25"):
        MapsDataset(paired_store, "train", crop=25)


def _crop_batches(store, epoch=1, position=0, seed=7):
    cfg = load_config(None, [f"data.store={store}", "data.batch_size=4", "data.crop=8", "data.augment_roll=false",
                             f"data.seed={seed}"])
    ds, sampler, loader = build_loader(cfg.data, "train")
    sampler.set_epoch(epoch, position)
    return ds, [(b["index"].clone(), b["condition"].clone(), b["target"].clone()) for b in loader]


def test_crop_positions_come_from_the_seeded_sampler_and_resume_exactly(paired_store):
    ds, ref = _crop_batches(paired_store)
    assert ds.crop == 8 and all(c.shape[-2:] == (8, 8) for _, c, _ in ref)
    _, again = _crop_batches(paired_store)
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b in zip(ref, again))
    # crops move although augment_roll is off: a crop's position is the sampler's roll draw
    plan = EpochSampler(len(ds), seed=7, roll_pixels=ds.map_pixels).plan(1)
    assert len(set(map(tuple, plan[:, 2:]))) > 1
    _, resumed = _crop_batches(paired_store, position=8)  # 8 items = 2 batches of 4 later
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[0], b[0]) for a, b in zip(ref[2:], resumed))
    _, other = _crop_batches(paired_store, seed=8)
    assert not torch.equal(other[0][1], ref[0][1])
    # held-out maps stay whole
    cfg = load_config(None, [f"data.store={paired_store}", "data.crop=8"])
    val, _, _ = build_loader(cfg.data, "val", train=False)
    assert val.crop == 0 and val[0]["condition"].shape == (1, 24, 24)


def test_the_map_cache_serves_the_same_items_reads_each_map_once_and_keeps_to_its_budget(paired_store, monkeypatch):
    from hpc_vdm.data import dataset

    plans = [(i, k, dy, dx) for i, (k, dy, dx) in enumerate([(0, 0, 0), (3, 5, 2), (6, 0, 7)] * 5)]
    plain = MapsDataset(paired_store, "train")
    one_map = plain[0]["target"].numel() * 4 * 2                          # bytes of one map's two fields
    cached = MapsDataset(paired_store, "train", cache_mb=3.5 * one_map / 2**20)
    reads, read_checked = [], dataset.read_checked
    monkeypatch.setattr(dataset, "read_checked",
                        lambda arr, index, **kw: reads.append(index) or read_checked(arr, index, **kw))
    for _ in range(3):                                                     # three epochs of the same plans
        for plan in plans:
            want, got = plain[plan], cached[plan]
            assert all(torch.equal(want[f], got[f]) for f in ("target", "condition", "params"))
            got["target"].add_(1.0)                                        # a caller's edit stays its own
    assert len(cached._cache) == 3 and cached._cached_bytes == 3 * one_map
    maps = [n for n in reads if isinstance(n, int)]
    per_map = {n: maps.count(n) for n in set(maps)}
    assert set(per_map) == {int(plain.maps[i]) for i, *_ in plans}
    for n, count in per_map.items():   # plain: 2 fields x 3 epochs; cached: its first epoch's 2 fields only
        assert count == (3 * 2 + 2 if n in cached._cache else 3 * 2 * 2), (n, count)
    with pytest.raises(ValueError, match="cache_mb must be a size in MB >= 0, got -1"):
        MapsDataset(paired_store, "train", cache_mb=-1)
