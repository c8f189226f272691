"""Dark matter -> galaxies (Sether+24) end to end on a paired mock store: N-body twin maps as the condition,
stellar maps as the target; the reverse VDM by configuration, the two-phase CNN and the HOD compared by
``evaluate`` on one scoring path; bad inputs refused before anything is written."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import clean_env, export_tiny, train, train_cmd
from hpc_vdm.config import load_config
from hpc_vdm.data import camels
from hpc_vdm.data.transforms import Pooled
from hpc_vdm.evaluate import cli as evaluate

REPO = Path(__file__).parents[1]
PAIRED = ["data.fields=[Mtot_Nbody,Mstar]", "data.condition=Mtot_Nbody", "data.target=Mstar", "data.pool=4",
          "data.split_fractions=[0.5,0.25,0.25]"]
TINY = {"norm": "pixel", "attention": False, "channel_mults": [1, 2]}


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """4 mock simulations at 64^3 with their N-body twins, and the paired store (64^2 maps)."""
    from hpc_vdm.mock.cli import generate
    from hpc_vdm.prepare import prepare

    root = tmp_path_factory.mktemp("paired")
    cfg = load_config(REPO / "configs" / "test.yaml", [f"mock.out_dir={root}/cmd", "mock.n_sims=4", "mock.nbody=true",
                                                        f"data.source_dir={root}/cmd", f"data.store={root}/maps.zarr",
                                                        *PAIRED])
    generate(cfg, progress=False)
    return cfg, prepare(cfg, progress=False)


def attrs_of(store) -> dict:
    return json.loads((Path(store) / "zarr.json").read_text())["attributes"]


def test_the_paired_store_splits_by_simulation_with_training_statistics_and_an_explicit_zero_floor(paired):
    cfg, store = paired
    a = attrs_of(store)
    assert a["fields"] == ["Mtot_Nbody", "Mstar"] and a["map_pixels"] == 64 and a["pool"] == 4
    assert sorted(sum(a["splits"].values(), [])) == [0, 1, 2, 3] and len(a["splits"]["train"]) == 2
    src = cfg.data.source_dir
    for name in ("Mtot_Nbody", "Mstar"):                  # the oracle: the .npy files, pooled, training sims only
        maps = Pooled(np.load(camels.maps_path(src, name, "IllustrisTNG", "LH"), mmap_mode="r"), 4)[:]
        train = np.concatenate([maps[15 * s:15 * s + 15] for s in a["splits"]["train"]]).astype(np.float64)
        lg = np.log10(train + 1.0)
        assert a["stats"][name]["offset"] == 1.0
        np.testing.assert_allclose([a["stats"][name]["mean"], a["stats"][name]["std"]], [lg.mean(), lg.std()], rtol=1e-6)
    root = zarr.open_group(str(store), mode="r")
    mstar = root["Mstar"][:]
    assert 0.01 < np.mean(mstar == 0) < 0.99                # empty pixels are exact zeros, and most pixels are empty
    s = a["stats"]["Mstar"]
    from hpc_vdm.data.transforms import LogNorm

    norm = LogNorm.of(s)
    assert norm.forward(np.zeros(1))[0] == np.float32(-s["mean"] / s["std"])   # log10(1 + 0) = 0: the floor
    assert norm.inverse(norm.forward(np.zeros(1)))[0] == pytest.approx(0.0, abs=1e-5)


def test_a_store_without_the_nbody_field_is_refused_before_anything_is_written(maps_store, tmp_path, capsys):
    from hpc_vdm import prepare

    src = attrs_of(maps_store)["source_dir"]   # the session mock: no N-body twins
    out = tmp_path / "paired.zarr"
    assert prepare.main(["--source", src, "--out", str(out), *sum((["--set", s] for s in PAIRED), [])]) == 2
    err = capsys.readouterr().err
    assert "Maps_Mtot_Nbody_IllustrisTNG_LH_z=0.00.npy" in err and "mock.nbody=true" in err and not out.exists()
    run = tmp_path / "run"
    proc = subprocess.run(train_cmd(maps_store, run, "data.condition=Mtot_Nbody", "data.target=Mstar"),
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "field 'Mtot_Nbody' is not in store" in proc.stderr and not run.exists()


def test_the_reverse_vdm_trains_by_configuration(paired, tmp_path):
    _, store = paired
    run = tmp_path / "vdm"
    train(store, run, "data.condition=Mtot_Nbody", "data.target=Mstar", "train.steps=2", "train.val_every=2",
          "model.channel_mults=[1,2]", "model.attention=false", "model.norm=pixel")
    blob = torch.load(run / "export" / "model.pt", weights_only=True)
    assert blob["task"] == "vdm" and blob["config"]["data"]["condition"] == "Mtot_Nbody"
    assert blob["store"]["stats"]["Mstar"]["offset"] == 1.0


@pytest.fixture(scope="module")
def models(paired, tmp_path_factory):
    _, store = paired
    a, root = attrs_of(store), tmp_path_factory.mktemp("models")
    kw = dict(store=store, condition="Mtot_Nbody", target="Mstar", model=TINY)
    return (export_tiny(root / "vdm.pt", a, jitter=0.05, **kw),
            export_tiny(root / "cnn.pt", a, kind="two_phase", jitter=0.05, seed=1, **kw))


def run_evaluate(model, out, *sets) -> int:
    args = ["--model", str(model), "--n-maps", "3", "--n-samples", "3", "--sampler", "ancestral", "--steps", "4",
            "--out", str(out), "--set", "evaluate.progress=false"]
    for s in sets:
        args += ["--set", s]
    return evaluate.main(args)


def test_posterior_mean_mse_removes_the_draws_own_sampling_variance():
    """Draws l_s = t + b + σ n_s (log10(1 + x)): a draw's MSE is b² + σ², the S-draw mean's b² + σ²/S, and the
    posterior mean's (what a deterministic network estimates) b² whatever S."""
    from hpc_vdm.evaluate.compare import mse_log

    rng = np.random.default_rng(0)
    lt = rng.uniform(8, 11, (4, 64, 64))
    b, sigma = 0.3, 0.5
    for s in (2, 4, 8):
        draws = 10 ** (lt + b + sigma * rng.standard_normal((s, *lt.shape))) - 1
        got = mse_log(10 ** lt - 1, draws, 1.0)
        assert got["draws"] == pytest.approx(b ** 2 + sigma ** 2, rel=0.01)
        assert got["log_mean"] == pytest.approx(b ** 2 + sigma ** 2 / s, rel=0.02)
        assert got["posterior_mean"] == pytest.approx(b ** 2, rel=0.03)
    assert "posterior_mean" not in mse_log(10 ** lt - 1, draws[:1], 1.0)


def test_the_mse_of_a_log_with_a_pixel_at_log10_0_is_undefined_not_infinite():
    """A thresholded row scored with offset 0 (dark matter): a draw's empty pixel has log10(0 + 0) = −∞, so its MSE
    is reported undefined (None, with the count), never ∞ or NaN; the order of the paper is then undecided."""
    from hpc_vdm.evaluate.compare import mse_log, order_note

    truth = np.full((2, 8, 8), 1e10)
    draws = np.full((3, 2, 8, 8), 2e10)
    assert mse_log(truth, draws, 0.0)["draws"] == pytest.approx(np.log10(2.0) ** 2)
    draws[1, 0, 3, 4] = -5.0                                     # clipped to 0: log10(0) = −∞
    got = mse_log(truth, draws, 0.0)
    assert got["draws"] is None and "posterior_mean" not in got and got["undefined"].startswith("1 pixels")
    assert mse_log(truth, draws, 1.0)["draws"] > 0               # log10(1 + 0) is finite
    rows = {n: {"mse_log": m, "bands": {}} for n, m in (("v", got), ("c", {"draws": 0.1}), ("h", {"draws": 0.2}))}
    assert order_note(rows, {"vdm": "v", "cnn": "c", "hod": "h"})["mse_order_holds"] is None


def test_evaluate_compares_vdm_cnn_and_hod_on_one_scoring_path(models, tmp_path):
    vdm, cnn = models
    out = tmp_path / "eval"
    assert run_evaluate(vdm, out, f"evaluate.baselines={{two-phase CNN: {cnn}}}", "evaluate.hod=true",
                        "baselines.hod_params=[10.8,12.3,0.9]") == 0
    m = json.loads((out / "metrics.json").read_text())
    c = m["comparison"]
    assert list(c["rows"]) == ["vdm", "vdm, thresholded", "two-phase CNN", "HOD"]
    assert c["kinds"] == {"vdm": "vdm", "two-phase CNN": "two_phase", "HOD": "hod"}
    for name, r in c["rows"].items():
        assert r["mse_log"]["draws"] >= 0 and 0 <= r["empty_pixel_fraction"] <= 1
        assert r["bands"]["k~20"] is None                                    # 64^2 maps: k_Nyq = 8.04 h/Mpc
        assert r["bands"]["k<5"] is None or r["bands"]["k<5"]["r"] <= 1       # None: the row left every map empty
    assert c["rows"]["HOD"]["bands"]["k<5"]["pk_err"] >= 0 and c["rows"]["vdm"]["bands"]["5<k<10"]["k_range"][1] <= 8.05
    assert "log_mean" in c["rows"]["vdm"]["mse_log"] and "log_mean" not in c["rows"]["HOD"]["mse_log"]
    assert c["order"]["mse"]["vdm"] == c["rows"]["vdm"]["mse_log"]["posterior_mean"]   # judged like for like
    assert c["k_nyquist"] == pytest.approx(np.pi * 64 / 25) and c["threshold"] > 0
    assert set(c["cost"]["HOD"]) >= {"train_s", "draw_s", "draws_per_s"} and c["cost"]["vdm"]["draws_per_s"] > 0
    assert set(c["diagnostics"]["two-phase CNN"]["classifier"]) >= {"accuracy", "recall", "precision"}
    assert c["diagnostics"]["HOD"]["hod"]["params"] == {"log_m_min": 10.8, "log_m1": 12.3, "alpha": 0.9}
    assert set(c["order"]) >= {"mse_order_holds", "vdm_best_pk", "pk_band"} and c["order"]["k20_resolved"] is False
    assert "calibration" in m["posterior"] and {"linear transfer", "HOD"} <= set(m["posterior"]["baselines"])
    assert np.isfinite(m["posterior"]["samples"]["log"]["k<kN/4"]["r"])    # log10(1 + M*): empty pixels finite
    summary = (out / "report" / "summary.md").read_text()
    assert "## Comparison on the same maps" in summary and "Table 1 of Sether+24" in summary
    assert "The paper's order" in summary
    assert {"comparison_maps.png", "comparison_spectra.png"} <= {p.name for p in (out / "report").iterdir()}


def test_evaluate_refuses_bad_hod_inputs_before_anything_is_written(models, paired, tmp_path, capsys):
    vdm, _ = models
    out = tmp_path / "eval"
    assert run_evaluate(vdm, out, "evaluate.hod=true", "baselines.hod_params=[10.8,17.5,0.9]") == 2
    assert "HOD parameter log_m1=17.5 is outside its range" in capsys.readouterr().err and not out.exists()
    other = tmp_path / "cats"                           # another set's catalogues: other simulations
    cfg, _ = paired
    folder = camels.catalogue_dir(cfg.data.source_dir, "IllustrisTNG", "LH")
    other.mkdir()
    for i, f in enumerate(sorted(folder.iterdir())):
        (other / f"fof_subhalo_tab_{(i + 1) % 4:04d}.hdf5").symlink_to(f)      # shifted by one simulation
    assert run_evaluate(vdm, out, "evaluate.hod=true", f"baselines.hod_catalogues={other}") == 2
    assert "the catalogues do not match the maps' simulations" in capsys.readouterr().err and not out.exists()
