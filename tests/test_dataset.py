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
