"""dm2gal through `python -m hpc_vdm.train`: a short CPU run lowers the validation loss and exports a bundle."""
import subprocess
import sys

import pytest
import torch

from helpers import clean_env, exported, metrics
from test_dm2gal_data import REPO, write_volume
from hpc_vdm.config import load_config
from hpc_vdm.bundle import load_bundle
from hpc_vdm.dist import Ranks
from hpc_vdm.families import make_family

CFG = REPO / "configs" / "dm2gal_test.yaml"


def train_cmd(store, run, *sets, nproc: int = 1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
                if nproc > 1 else [sys.executable, "-m"])
    cmd = launcher + ["hpc_vdm.train", str(CFG), "--run-dir", str(run), "--set", f"data.store={store}"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_volume(tmp_path_factory.mktemp("train"), 32)


def untrained_validation(store) -> dict:
    cfg = load_config(CFG, [f"data.store={store}"])
    family = make_family(cfg)
    family.check()
    torch.manual_seed(cfg.train.seed)  # the loop's initial weights
    return family.validate(family.build(), Ranks(device=torch.device("cpu")))


def test_short_cpu_training_lowers_the_validation_loss(store, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(train_cmd(store, run), env=clean_env(PYTHONPATH=str(REPO)), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = untrained_validation(store)
    val = metrics(run, "val")
    assert [int(r["step"]) for r in val] == [50, 100]
    assert float(val[-1]["val_mse"]) < 0.9 * before["val_mse"], (before, val)
    assert "loss_mse" in metrics(run)[0]
    blob = exported(run)
    assert blob["task"] == "dm2gal" and "norms.0.running_var" in blob["ema"]   # BatchNorm statistics travel
    bundle = load_bundle(run / "export" / "model.pt").require("dm2gal", "test")
    assert bundle.store["reach"] == [8, 8] and bundle.module.patch == 17


def test_data_fields_must_name_the_volume(store, tmp_path):
    cfg = load_config(CFG, [f"data.store={store}", "data.condition=Mstar"])
    with pytest.raises(ValueError, match="data.condition=dm"):
        make_family(cfg).check()


@pytest.mark.slow
def test_two_process_deepspeed_training_runs(store, tmp_path):
    run = tmp_path / "run2"
    proc = subprocess.run(train_cmd(store, run, "train.steps=10", "train.val_every=10", "train.ckpt_every=10",
                                    "train.zero_stage=1", nproc=2),
                          env=clean_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world 2" in proc.stderr
    assert exported(run)["task"] == "dm2gal"
