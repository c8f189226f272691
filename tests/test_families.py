"""The family seam from training to use: a family trained through the loop is applied (``tile``, ``sample``) and
evaluated (``evaluate``) by the same commands as the VDM, none of which names a family."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import overflowing
from test_training_seam import straight_regressor  # noqa: F401 (fixture: a regressor trained 6 steps)
from hpc_vdm import bundle as bundles, sample, tile
from hpc_vdm.bundle import load_bundle
from hpc_vdm.config import MODEL_KINDS
from hpc_vdm.data import transforms
from hpc_vdm.evaluate import cli as evaluate
from hpc_vdm.families import FAMILIES, DrawSpec, for_bundle
from tiling import tile_apply

CAMELS = "name: cam\nbox_mpc_h: 25.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.09765625\n"  # the test store's pixels


def test_every_kind_has_one_builder_and_one_family():
    assert set(MODEL_KINDS) == set(bundles.BUILDERS) == set(FAMILIES)
    assert all(FAMILIES[k].kind == k for k in FAMILIES)
    assert {k for k, f in FAMILIES.items() if not f.deterministic} == {"vdm", "emulator"}


def test_regressor_predicts_one_draw_the_tiled_field_equals_the_whole(straight_regressor):
    b = load_bundle(Path(straight_regressor) / "export" / "model.pt")
    fam = for_bundle(b)
    rng = np.random.default_rng(0)
    cond = rng.lognormal(8, 2, (2, 64, 64)) * (rng.random((2, 64, 64)) < 0.3)
    whole = fam.predict(b, cond, keys=[0, 1], samples=[0], spec=DrawSpec())                      # (1, 2, 64, 64)
    tiled = fam.predict(b, cond, keys=[0, 1], samples=[0], spec=DrawSpec(tile=16, halo=b.module.receptive_radius))
    assert whole.shape == (1, 2, 64, 64)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5)  # float32 network: windows round alike to ~1e-6
    with pytest.raises(ValueError, match="deterministic: it draws sample 0 only"):
        fam.predict(b, cond, keys=[0, 1], samples=[0, 1], spec=DrawSpec())


def test_a_regressors_prediction_that_overflows_float32_is_refused(straight_regressor):
    b = overflowing(load_bundle(Path(straight_regressor) / "export" / "model.pt"))
    cond = np.random.default_rng(0).lognormal(8, 2, (2, 64, 64))
    with pytest.raises(ValueError, match=r"^map 0 \(key 7\): \d+ of 4096 values of the model's draws are NaN"):
        for_bundle(b).predict(b, cond, keys=[7, 8], samples=[0], spec=DrawSpec())


def test_regressor_is_tiled_over_a_slab_and_evaluated_by_the_vdm_commands(straight_regressor, maps_store, tmp_path):
    model = str(Path(straight_regressor) / "export" / "model.pt")
    preset = tmp_path / "cam.yaml"
    preset.write_text(CAMELS)
    out = tmp_path / "slab.zarr"
    assert tile.main(["--volume", str(preset), "--model", model, "--n-samples", "3", "--tile", "64", "--halo", "16",
                      "--set", "tile.mock_spacing_mpc_h=0.5", "--set", "tile.mock_pm_steps=3",
                      "--set", "tile.progress=false", "--out", str(out)]) == 0
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["complete"] and root["samples"].shape == (1, 1, 256, 256)   # one draw: deterministic
    assert float(np.max(root["std"][:])) == 0.0
    b = load_bundle(model)
    cond = torch.from_numpy(transforms.normalise(root["cond"][0], b.store["stats"]["Mstar"]))[None, None]
    whole = transforms.denormalise(b.module(cond).detach().numpy()[0, 0], b.store["stats"]["Mcdm"])
    np.testing.assert_allclose(root["samples"][0, 0], whole, rtol=1e-4)   # tiles with a halo = the whole slab

    assert sample.main(["--model", model, "--n-maps", "2", "--out", str(tmp_path / "s"),
                        "--set", "sample.progress=false"]) == 0
    assert zarr.open_group(str(tmp_path / "s" / "samples.zarr"), mode="r")["samples"].shape[0] == 1

    ev = tmp_path / "eval"
    assert evaluate.main(["--model", model, "--n-maps", "2", "--out", str(ev), "--set", "evaluate.progress=false"]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    post = metrics["posterior"]
    assert post["deterministic"] is True and post["n_samples"] == 1 and metrics["model"]["kind"] == "regressor"
    assert "calibration" not in post and "posterior_mean" not in post and "condition" in post
    assert 0 < post["samples"]["overdensity"]["k<kN/4"]["r"] <= 1
    assert sorted(p.name for p in (ev / "report").iterdir()) == ["fig1.png", "fig2.png", "summary.md"]
    assert "deterministic model: one prediction per map" in (ev / "report" / "summary.md").read_text()


def test_map_commands_refuse_a_volume_model_naming_it(tmp_path, capsys):
    from test_dm2gal_data import write_volume
    from test_dm2gal_paint import export_random

    store = write_volume(tmp_path, 32)
    model = export_random(store, tmp_path / "d2g.pt")
    preset = tmp_path / "cam.yaml"
    preset.write_text(CAMELS)
    assert tile.main(["--volume", str(preset), "--model", str(model), "--out", str(tmp_path / "t.zarr")]) == 2
    assert "tile applies map models, but" in capsys.readouterr().err
    assert evaluate.main(["--model", str(model), "--out", str(tmp_path / "e")]) == 2
    assert "is a dm2gal model, not a map model" in capsys.readouterr().err
    assert not (tmp_path / "t.zarr").exists() and not (tmp_path / "e").exists()
