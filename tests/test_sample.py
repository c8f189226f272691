"""`python -m hpc_vdm.sample`: held-out posterior samples, their summary and figure; deterministic for a seed."""
import json

import numpy as np
import pytest
import zarr

from hpc_vdm import sample
from helpers import export_tiny
from hpc_vdm.data.dataset import read_attrs


@pytest.fixture(scope="module")
def model(maps_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("sample_model") / "model.pt"
    return export_tiny(path, read_attrs(maps_store), seed=1, jitter=0.05, store=maps_store)


def run(model, out, *extra):
    return sample.main(["--model", str(model), "--n-maps", "2", "--n-samples", "3", "--steps", "3", "--sampler",
                        "ancestral", "--out", str(out), "--set", "sample.progress=false", *extra])


def test_sample_writes_posterior_statistics_summary_and_figure(model, maps_store, tmp_path):
    assert run(model, tmp_path / "a") == 0
    g = zarr.open_group(str(tmp_path / "a" / "samples.zarr"), mode="r")
    draws, truth = g["samples"][:].astype(np.float64), g["truth"][:]
    assert draws.shape == (3, 2, 256, 256) and (draws > 0).all()
    np.testing.assert_allclose(g["mean"][:], draws.mean(0), rtol=1e-5)
    log_d = np.log10(draws)  # z-scores live in the model's log space
    np.testing.assert_allclose(g["zscore"][:], (np.log10(truth) - log_d.mean(0)) / log_d.std(0), rtol=1e-3, atol=1e-3)
    attrs = read_attrs(maps_store)
    per_sim, test_sims = attrs["maps_per_sim"], attrs["splits"]["test"]
    index = [s * per_sim + k for s in test_sims for k in range(per_sim)]
    assert list(g["map_index"][:]) == [index[0], index[len(index) // 2]]  # spread over the split, not maps 0, 1
    np.testing.assert_array_equal(truth[1], zarr.open_group(str(maps_store), mode="r")["Mcdm"][index[len(index) // 2]])
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert len(summary["per_map"]) == 2
    for z, row in zip(g["zscore"][:].astype(np.float64), summary["per_map"]):  # calibration from the stored z
        assert row["coverage_1sigma"] == pytest.approx(np.mean(np.abs(z) < 1), abs=1e-3)
        assert (row["zscore_mean"], row["zscore_std"]) == pytest.approx((z.mean(), z.std()), rel=1e-3, abs=1e-3)
    assert (tmp_path / "a" / "samples.png").stat().st_size > 20_000

    assert run(model, tmp_path / "b") == 0  # same seed: the same numbers
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "b" / "samples.zarr"))["samples"][:], draws)
    assert run(model, tmp_path / "c", "--seed", "1") == 0
    assert not np.allclose(zarr.open_group(str(tmp_path / "c" / "samples.zarr"))["samples"][:], draws)


def test_sample_refuses_to_overwrite_and_missing_model(model, tmp_path, capsys):
    (tmp_path / "a" / "samples.zarr").mkdir(parents=True)
    assert run(model, tmp_path / "a") == 2
    assert "exists and is an empty folder, not an hpc_vdm samples store" in capsys.readouterr().err
    assert run(tmp_path / "none.pt", tmp_path / "b") == 2
    assert "no exported model" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_sample_with_clip_log_keeps_every_draw_in_the_range_and_records_it(model, maps_store, tmp_path):
    s = read_attrs(maps_store)["stats"]["Mcdm"]
    lo, hi = s["mean"] - 0.1, s["mean"] + 0.1  # log10 Mcdm: a band far narrower than the maps' pixels
    assert run(model, tmp_path / "a", "--set", f"sampler.clip_log=[{lo}, {hi}]") == 0
    log_d = np.log10(zarr.open_group(str(tmp_path / "a" / "samples.zarr"), mode="r")["samples"][:].astype(np.float64))
    assert log_d.min() > lo - 1e-5 and log_d.max() < hi + 1e-5  # float32 storage of the physical draws
    assert np.ptp(log_d) > 0.15  # the clip does not flatten the draws: they fill the band
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["clip_log"] == [lo, hi]
