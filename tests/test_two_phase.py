"""The two-phase CNN (Zhang+19, Sether+24's benchmark) against synthetic cases whose answers are known: the
classifier and the gated regressor reach them, the class weighting lifts recall on a 1%-positive case where
the unweighted loss cannot, the gate is frozen from the switch step through the real loop, and predictions
are exact zeros off the gate and tile exactly."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import clean_env, export_tiny, metrics, train, train_cmd
from hpc_vdm.bundle import load_bundle
from hpc_vdm.config import RunConfig
from hpc_vdm.data.transforms import MapNormalisation
from hpc_vdm.families import DrawSpec, for_bundle
from hpc_vdm.families.two_phase import TwoPhaseFamily, classifier_loss, classifier_scores, confusion
from hpc_vdm.models import InceptionNet, TwoPhaseNet, build_two_phase

STATS = {"Mtot_Nbody": {"offset": 1.0, "mean": 0.0, "std": 1.0}, "Mstar": {"offset": 1.0, "mean": 1.0, "std": 2.0}}
FLOOR = -0.5   # (log10(1) - 1) / 2: an empty Mstar pixel in the model's space


def two_phase_cfg(**opts) -> RunConfig:
    cfg = RunConfig()
    cfg.model.kind, cfg.data.condition, cfg.data.target = "two_phase", "Mtot_Nbody", "Mstar"
    cfg.model.two_phase.classifier = cfg.model.two_phase.regressor = "inception"
    for k, v in opts.items():
        setattr(cfg.model.two_phase, k, v)
    return cfg


def noisy_labels(gen: torch.Generator, n: int = 8, size: int = 32):
    """White-noise conditions c ~ N(0, 1) per pixel and labels ~ Bernoulli(sigmoid(5 (c − 2.5))): 0.95% positives;
    the Bayes classifier at 0.5 recalls 50% of them, at 1/81 (the 80x-weighted optimum) 96%."""
    c = torch.randn((n, 1, size, size), generator=gen)
    y = (torch.rand((n, 1, size, size), generator=gen) < torch.sigmoid(5 * (c - 2.5))).float()
    return c, y


def train_classifier(pos_weight: float, steps: int = 400) -> float:
    torch.manual_seed(0)
    net, gen = InceptionNet(), torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        c, y = noisy_labels(gen)
        loss = classifier_loss(net(c), y, pos_weight).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    counts = np.zeros(4)
    with torch.no_grad():
        for _ in range(20):
            c, y = noisy_labels(gen)
            counts += confusion((torch.sigmoid(net(c)) > 0.5).numpy(), y.numpy() > 0)
    return classifier_scores(counts)["recall"]


def test_class_weighting_lifts_recall_on_a_one_percent_case_where_the_unweighted_loss_does_not():
    weighted, unweighted = train_classifier(80.0), train_classifier(1.0)
    assert weighted >= 0.9, weighted                   # the weighted optimum: 0.96
    assert unweighted < 0.75, unweighted               # the unweighted optimum: 0.50


def test_focal_loss_is_the_weighted_bce_times_the_focal_factor():
    logits, y = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]]), torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    p = torch.sigmoid(logits)
    bce = -(y * 80 * torch.log(p) + (1 - y) * torch.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    torch.testing.assert_close(classifier_loss(logits, y, 80.0), bce.mean().reshape(1) / 81)
    torch.testing.assert_close(classifier_loss(logits, y, 80.0, "focal", 2.0),
                               ((1 - p_t) ** 2 * bce).mean().reshape(1) / 81)


def synthetic_batch(gen: torch.Generator, n: int = 8, size: int = 32) -> dict:
    """Galaxies where c > 1.5 (6.7% of pixels), of normalised mass 2 c + 1; the floor elsewhere."""
    c = torch.randn((n, 1, size, size), generator=gen)
    x = torch.where(c > 1.5, 2 * c + 1, torch.full_like(c, FLOOR))
    return {"condition": c, "target": x, "params": torch.zeros(n, 6)}


def test_classifier_then_gated_regressor_reach_a_known_answer_and_the_gate_stays_frozen():
    cfg = two_phase_cfg(switch_step=300, pos_weight=3.0)   # a deterministic rule: a mild weight for the rare class
    fam = TwoPhaseFamily(cfg)
    fam.norm = MapNormalisation("Mtot_Nbody", "Mstar", STATS)
    assert fam.floor == pytest.approx(FLOOR)
    torch.manual_seed(0)
    net, gen = build_two_phase(cfg.model), torch.Generator().manual_seed(3)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    for step in range(1000):
        fam.phase(net, step)
        if step == 300:
            classifier_at_switch = [p.detach().clone() for p in net.classifier.parameters()]
        terms, extras = fam.losses(net, synthetic_batch(gen), "cpu")
        assert extras["phase"] == (1.0 if step < 300 else 2.0)
        assert float(terms["loss_reg" if step < 300 else "loss_cls"].abs().sum()) == 0.0   # one phase at a time
        opt.zero_grad()
        sum(terms.values()).mean().backward()
        opt.step()
    for g, c0 in zip(net.gate.parameters(), classifier_at_switch):
        assert torch.equal(g, c0)                      # the gate is the classifier as phase 1 left it, unchanged since
    assert not any(p.requires_grad for p in net.gate.parameters())
    test = synthetic_batch(gen, 16)
    with torch.no_grad():
        out = net(test["condition"])                                                   # (B, 2, H, W)
        pred = net.gated(test["condition"], FLOOR)
    galaxy = test["target"] > FLOOR
    s = classifier_scores(confusion((torch.sigmoid(out[:, :1]) > 0.5).numpy(), galaxy.numpy()))
    assert s["accuracy"] > 0.99 and s["recall"] > 0.95, s
    hit = galaxy & (torch.sigmoid(out[:, :1]) > 0.5) & (test["condition"] > 1.75)   # away from the gate's edge
    err = (pred - test["target"])[hit]
    assert float(err.pow(2).mean()) < 0.05 * float(test["target"][hit].var())   # the regression 2 c + 1: R^2 > 0.95


def test_threshold_outside_the_open_interval_is_refused(maps_store, tmp_path):
    with pytest.raises(ValueError, match=r"threshold must lie in the open interval \(0, 1\), got 1.0"):
        TwoPhaseNet(InceptionNet(), InceptionNet(), threshold=1.0)
    run = tmp_path / "run"
    proc = subprocess.run(train_cmd(maps_store, run, "model.kind=two_phase", "model.two_phase.threshold=0.0",
                                    "data.condition=Mcdm", "data.target=Mstar"), env=clean_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "model.two_phase.threshold must lie in the open interval (0, 1), got 0.0" in proc.stderr
    assert not run.exists()                                                             # nothing written


def test_predictions_are_exact_zeros_off_the_gate_and_tiled_equal_whole(maps_store, tmp_path):
    attrs = json.loads((Path(maps_store) / "zarr.json").read_text())["attributes"]
    model = export_tiny(tmp_path / "tp.pt", attrs, kind="two_phase", jitter=0.05, condition="Mcdm", target="Mstar",
                        model={"norm": "pixel", "attention": False, "channel_mults": [1, 2]})
    b = load_bundle(model)
    fam = for_bundle(b)
    rng = np.random.default_rng(0)
    cond = rng.lognormal(25, 0.5, (2, 128, 128))
    whole = fam.predict(b, cond, keys=[0, 1], samples=[0], spec=DrawSpec())                    # (1, 2, 128, 128)
    tiled = fam.predict(b, cond, keys=[0, 1], samples=[0], spec=DrawSpec(tile=64, halo=-(-b.module.receptive_radius // 4) * 4))
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-30)
    with torch.no_grad():
        c = torch.from_numpy(b.norm.condition_in(cond))[:, None]
        off = (torch.sigmoid(b.module(c)[:, :1]) <= b.module.threshold).numpy()[:, 0]
    assert off.any() and (whole[0][off] == 0).all() and (whole >= 0).all()
    d = fam.diagnostics(b, cond, whole[0])
    assert d["classifier"]["accuracy"] == 1.0 and d["classifier"]["threshold"] == 0.5   # the gate against itself


@pytest.mark.slow
def test_two_processes_deepspeed_freeze_the_gate_at_the_switch_and_export(maps_store, tmp_path):
    """torchrun, 2 gloo ranks, ZeRO 1: the gate is the classifier of the switch step's checkpoint in every later one,
    while the regressor trains; metrics.csv says the phase; the export (raw and EMA) loads and predicts."""
    from hpc_vdm.training.checkpoint import safe_load

    run = tmp_path / "run"

    train(maps_store, run, "model.kind=two_phase", "data.condition=Mcdm", "data.target=Mstar",
          "model.two_phase.switch_step=4", "train.steps=8", "train.ckpt_every=2", "train.keep_last=4",
          "train.val_every=4", "model.channel_mults=[1,2]", "model.norm=pixel", "model.attention=false", nproc=2)
    state = {s: safe_load(run / "checkpoints" / f"step{s:08d}" / "mp_rank_00_model_states.pt")["module"] for s in (4, 6, 8)}
    for name, v in state[4].items():
        if name.startswith("classifier."):
            gate = name.replace("classifier.", "gate.", 1)
            assert torch.equal(state[6][gate], v) and torch.equal(state[8][gate], v), name
    assert any(not torch.equal(state[6][k], state[8][k]) for k in state[6] if k.startswith("regressor."))
    rows = metrics(run)
    assert [r["phase"] for r in rows] == ["1", "1", "1", "1", "2", "2", "2", "2"]
    assert [float(r["loss_reg"]) == 0 for r in rows] == [True] * 4 + [False] * 4
    val = metrics(run, "val")
    assert len(val) == 2 and all(0 <= float(v["val_recall"]) <= 1 for v in val)
    for which in ("raw", "ema"):
        b = load_bundle(run / "export" / "model.pt", which)
        cond = np.random.default_rng(0).lognormal(25, 0.5, (1, 64, 64))
        assert for_bundle(b).predict(b, cond, keys=[0], samples=[0], spec=DrawSpec()).shape == (1, 1, 64, 64)


def test_tile_applies_a_two_phase_model_over_a_slab(maps_store, tmp_path):
    """The one apply path: ``tile`` draws a two-phase model's one prediction per slab, tiles equal to the whole."""
    import zarr

    from hpc_vdm import tile

    attrs = json.loads((Path(maps_store) / "zarr.json").read_text())["attributes"]
    model = export_tiny(tmp_path / "tp.pt", attrs, kind="two_phase", jitter=0.05, condition="Mstar", target="Mcdm",
                        model={"norm": "pixel", "attention": False, "channel_mults": [1, 2]})
    preset = tmp_path / "cam.yaml"
    preset.write_text("name: cam\nbox_mpc_h: 25.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.09765625\n")
    out = tmp_path / "slab.zarr"
    halo = -(-load_bundle(model).module.receptive_radius // 4) * 4
    assert tile.main(["--volume", str(preset), "--model", str(model), "--tile", "128", "--halo", str(halo),
                      "--set", "tile.mock_spacing_mpc_h=0.5", "--set", "tile.mock_pm_steps=3",
                      "--set", "tile.progress=false", "--out", str(out)]) == 0
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["complete"] and root["samples"].shape == (1, 1, 256, 256)
    b = load_bundle(model)
    whole = for_bundle(b).predict(b, root["cond"][:1], keys=[0], samples=[0], spec=DrawSpec())
    np.testing.assert_allclose(root["samples"][0], whole[0], rtol=1e-4)
