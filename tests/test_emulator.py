"""The emulator family (#27): a VDM of maps from parameters alone — registered like every family, trained by the one
loop with χ²_r selection, started from another export (the progressive option), drawn by ``predict``, and
evaluated by ``evaluate``'s emulation checks; plus the one χ²_r definition against its analytic expectation."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import export_tiny, metrics, overflowing, train, write_cmd
from hpc_vdm import bundle as bundles
from hpc_vdm.bundle import load_bundle
from hpc_vdm.config import MODEL_KINDS, load_config
from hpc_vdm.data import camels
from hpc_vdm.data.dataset import MapsDataset, read_attrs
from hpc_vdm.evaluate import cli as evaluate
from hpc_vdm.families import FAMILIES, STORE_KEYS, DrawSpec, for_bundle, make_family
from hpc_vdm.spectra.scores import chi2_r

PARAMS = ["Omega_m", "sigma_8"]
FAST = DrawSpec(sampler="ancestral", steps=4)


def _prepare(cfg, store: Path, **data) -> str:
    from hpc_vdm.prepare import prepare

    cfg = copy.deepcopy(cfg)
    cfg.data.store, cfg.data.fields, cfg.data.condition = str(store), ["Mcdm"], ""
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return str(prepare(cfg, progress=False))


@pytest.fixture(scope="session")
def emu_store(mock_cfg, mock_files, tmp_path_factory):
    """The session mock's Mcdm maps pooled 256^2 -> 32^2 (0.78 Mpc/h pixels), no condition field."""
    return _prepare(mock_cfg, tmp_path_factory.mktemp("emu") / "maps32.zarr", pool=8)


def store_attrs(store) -> dict:
    attrs = read_attrs(store)
    return {k: attrs[k] for k in STORE_KEYS if k in attrs}


@pytest.fixture(scope="session")
def emu_model(emu_store, tmp_path_factory):
    """A tiny emulator with random weights (jittered, so that its fields depend on the parameters)."""
    path = tmp_path_factory.mktemp("emu_model") / "model.pt"
    return str(export_tiny(path, store_attrs(emu_store), kind="emulator", jitter=0.05, store=emu_store,
                           model={"params": PARAMS, "channel_mults": [1, 2]}, condition="", fields=["Mcdm"]))


def write_one_p(root: Path, store: Path, pixels: int = 32) -> str:
    """A small 1P-shaped store: Omega_m and sigma_8 varied one at a time around the fiducial point (random maps)."""
    fid = camels.fiducial_params()
    table = np.tile(fid, (6, 1))
    table[:3, 0], table[3:, 1] = [0.2, 0.3, 0.4], [0.7, 0.8, 0.9]
    root.mkdir(parents=True, exist_ok=True)
    write_cmd(root, n_sims=6, pixels=pixels, set_="1P", params=table)
    cfg = load_config(None, [f"data.source_dir={root}", "data.set=1P", f"data.store={store}", "data.fields=[Mcdm]",
                             "data.condition=''", "data.split_fractions=[1.0,0.0,0.0]"])
    from hpc_vdm.prepare import prepare

    return str(prepare(cfg, progress=False))


def test_the_emulator_is_a_family_like_the_others():
    assert "emulator" in MODEL_KINDS and "emulator" in bundles.BUILDERS and FAMILIES["emulator"].kind == "emulator"
    assert FAMILIES["emulator"].conditioned_on == "params" and FAMILIES["vdm"].conditioned_on == "map"
    assert FAMILIES["emulator"].better["val_chi2_r"] == "lower"


def test_parameters_reach_the_network_through_an_mlp(emu_model):
    b = load_bundle(emu_model)
    net = b.module.score
    assert net.cond_channels == 0 and isinstance(net.embed.params_proj, torch.nn.Sequential)
    z, g = torch.randn(2, 1, 32, 32), torch.zeros(2)
    lo, hi = b.params(np.tile(camels.fiducial_params(), (2, 1))), b.params(np.array([[0.2, 0.7, 1, 1, 1, 1]] * 2))
    with torch.no_grad():
        assert not torch.allclose(net(z, g, None, lo), net(z, g, None, hi))
    with pytest.raises(ValueError, match="no map condition"):
        net(z, g, torch.zeros_like(z), lo)


def test_maps_dataset_without_a_condition(emu_store):
    ds = MapsDataset(emu_store, "train", condition="", target="Mcdm")
    item = ds[(0, 3, 5, 7)]
    assert set(item) == {"target", "params", "index"} and item["target"].shape == (1, 32, 32)


def test_predict_draws_fields_from_parameter_rows_keyed_by_noise(emu_model):
    b = load_bundle(emu_model)
    fam = for_bundle(b)
    rows = np.array([camels.fiducial_params(), [0.2, 0.7, 1, 1, 1, 1]])
    out = fam.predict(b, rows, keys=[5, 5], samples=[0, 1], spec=FAST)
    assert out.shape == (2, 2, 32, 32) and np.all(out > 0)
    again = fam.predict(b, None, params=rows[:1], keys=[5], samples=[1], spec=FAST)   # draw_maps' calling form
    np.testing.assert_allclose(again[0, 0], out[1, 0], rtol=1e-4)  # keyed: sample 1 is sample 1 (float32 batches)
    assert not np.allclose(out[:, 0], out[:, 1])                                     # other parameters, other fields
    with pytest.raises(ValueError, match="parameter rows"):
        fam.predict(b, rows[:, :2], keys=[0, 1], samples=[0], spec=FAST)


def test_generated_fields_that_overflow_float32_are_refused(emu_model):
    b = overflowing(load_bundle(emu_model))
    with pytest.raises(ValueError, match=r"^parameter row 0 \(key 5\), samples \[0\]: \d+ of 1024 values"):
        for_bundle(b).predict(b, camels.fiducial_params()[None], keys=[5], samples=[0], spec=FAST)


def test_the_emulator_refuses_a_map_condition_or_no_parameters(emu_store):
    cfg = load_config(None, [f"data.store={emu_store}", "model.kind=emulator", "model.params=[Omega_m]"])
    with pytest.raises(ValueError, match="data.condition=''"):
        make_family(cfg).check()
    cfg = load_config(None, [f"data.store={emu_store}", "model.kind=emulator", "data.condition=''"])
    with pytest.raises(ValueError, match="set model.params"):
        make_family(cfg).check()


def test_init_from_starts_from_an_export_of_another_map_size(emu_model, emu_store, mock_cfg, tmp_path):
    """The progressive option: the 32^2 model's weights start a run on 64^2 maps (a U-Net is size-agnostic)."""
    store64 = _prepare(mock_cfg, tmp_path / "maps64.zarr", pool=4)
    sets = [f"data.store={store64}", "model.kind=emulator", "data.condition=''", "data.fields=[Mcdm]",
            "model.params=[Omega_m,sigma_8]", "model.channels=8", "model.channel_mults=[1,2]", "model.norm_groups=4",
            "model.dropout=0.0", f"train.init_from={emu_model}"]
    fam = make_family(load_config(None, sets))
    fam.check()
    module = fam.build()
    ema = bundles.read_export(emu_model)["ema"]
    assert all(torch.equal(v, ema[k]) for k, v in module.state_dict().items())
    bad = make_family(load_config(None, [s.replace("model.channels=8", "model.channels=16") for s in sets]))
    with pytest.raises(ValueError, match="do not fit this run's model"):
        bad.check()


def test_emulator_trains_selects_on_chi2_and_exports(emu_store, tmp_path):
    run = tmp_path / "run"
    train(emu_store, run, "model.kind=emulator", "data.condition=''", "model.params=[Omega_m,sigma_8]",
          "model.emulator.val_sims=1", "model.emulator.val_samples=3", "train.steps=4", "train.val_every=2",
          "train.select_on=val_chi2_r", "train.export_tag=best")
    rows = metrics(run, "val")
    assert len(rows) == 2 and all(float(r["val_chi2_r"]) >= 0 for r in rows)
    for r in rows:  # |χ²_r(generated) − floor|, both reported
        assert np.isclose(float(r["val_chi2_r"]), abs(float(r["val_chi2_r_samples"]) - float(r["val_chi2_r_floor"])))
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "val_chi2_r"
    b = load_bundle(run / "export" / "model.pt")
    assert b.kind == "emulator" and b.param_names == PARAMS
    assert for_bundle(b).predict(b, camels.fiducial_params()[None], keys=[0], samples=[0], spec=FAST).shape == \
        (1, 1, 32, 32)


def test_chi2_r_leave_one_out_of_gaussians_is_its_expectation():
    """15 i.i.d. Gaussian 'spectra' of 128 bins, each against the other 14: E χ²_r = (1 + 1/14) · 13/11 · 128/127
    = 1.276 (Mudur+23's 1.27); a shifted set is far above it."""
    rng = np.random.default_rng(0)
    vals = [chi2_r(x, x).mean() for x in rng.standard_normal((400, 15, 128))]
    assert abs(np.mean(vals) - (15 / 14) * (13 / 11) * (128 / 127)) < 0.01
    ref = rng.standard_normal((15, 128))
    assert chi2_r(rng.standard_normal((5, 128)) + 1.0, ref).mean() > 1.8


def test_evaluate_runs_the_emulation_checks(emu_model, emu_store, tmp_path):
    one_p = write_one_p(tmp_path / "cmd1p", tmp_path / "maps_1p.zarr")
    out = tmp_path / "eval"
    rc = evaluate.main(["--model", emu_model, "--store", emu_store, "--out", str(out), "--steps", "4", "--sampler",
                        "ancestral", "--set", "evaluate.split=train", "--set", "evaluate.emulator_sims=2",
                        "--set", "evaluate.n_samples=3", "--set", f"evaluate.cv_store={emu_store}",
                        "--set", f"evaluate.one_p_store={one_p}", "--set", "evaluate.one_p_params=[Omega_m,sigma_8]",
                        "--set", "evaluate.one_p_maps=4", "--set", "evaluate.progress=false"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["kind"] == "emulator" and len(m["points"]) == 2
    assert m["chi2_r"]["n_generated"] == 6 and m["chi2_r"]["n_truths"] == 30 and m["chi2_r"]["floor_loo_truths"] > 0
    assert m["chi2_r"]["cv"]["n_cv"] == zarr.open_group(emu_store, mode="r")["Mcdm"].shape[0]
    assert [len(v["values"]) for v in m["one_p"].values()] == [3, 3]
    names = sorted(p.name for p in (out / "report").iterdir())
    assert names == ["fig1_spectra.png", "fig2_one_p.png", "fig4_histograms.png", "fig5_chi2.png", "summary.md"]
