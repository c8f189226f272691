"""The family seam in training: a second family (the field regressor) through the same loop; preemption policies;
the bundle. Its use (tile, sample, evaluate) is tests/test_families.py."""
import os
import signal

import pytest
import torch

from helpers import exported, metrics, train
from hpc_vdm.training import preemption
from hpc_vdm.training.checkpoint import Checkpoints
from hpc_vdm.families import FAMILIES

REGRESSOR = ("model.kind=regressor", "model.blocks_per_level=2", "model.norm=pixel", "train.val_sample_maps=1")


@pytest.fixture(scope="module")
def straight_regressor(maps_store, tmp_path_factory):
    run = tmp_path_factory.mktemp("regressor") / "run"
    train(maps_store, run, *REGRESSOR)
    return run


def test_regressor_trains_validates_checkpoints_and_exports(straight_regressor):
    rows, val = metrics(straight_regressor), metrics(straight_regressor, "val")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert "loss_mse" in rows[0] and "loss_diff" not in rows[0]            # the family's own columns
    assert rows[0]["loss"] == rows[0]["loss_mse"]                          # its only term is the loss
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])                # it learns something in 6 steps
    assert [int(r["step"]) for r in val] == [3, 6] and all(float(r["val_mse"]) > 0 for r in val)
    assert 0 < float(val[-1]["val_r_mean"]) <= 1
    best = Checkpoints(straight_regressor / "checkpoints").best()
    lowest = min(val, key=lambda r: float(r["val_mse"]))
    assert best["metric"] == "val_mse" and best["tag"] == f"step{int(lowest['step']):08d}"  # default: first metric
    blob = exported(straight_regressor)
    assert blob["task"] == "regressor" and blob["config"]["model"]["kind"] == "regressor"


def test_regressor_resume_equals_uninterrupted(maps_store, straight_regressor, tmp_path):
    run = tmp_path / "run"
    train(maps_store, run, *REGRESSOR, "train.steps=3")
    proc = train(maps_store, run, *REGRESSOR)
    assert "resumed from step00000003" in proc.stderr
    a, b = exported(straight_regressor), exported(run)
    assert all(torch.equal(a[w][k], b[w][k]) for w in ("model", "ema") for k in a[w])
    drop = lambda rows: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]  # noqa: E731
    assert drop(metrics(run)) == drop(metrics(straight_regressor))
    assert drop(metrics(run, "val")) == drop(metrics(straight_regressor, "val"))


def test_the_bundle_knows_its_family(straight_regressor):
    from hpc_vdm.bundle import load_bundle

    bundle = load_bundle(straight_regressor / "export" / "model.pt")
    assert bundle.kind == "regressor" and bundle.stride == 1 and bundle.params() is None
    x = torch.zeros(2, 1, 64, 64)
    assert bundle.module(x).shape == (2, 1, 64, 64)


def test_selection_on_a_metric_the_family_does_not_have(maps_store, tmp_path, capsys):
    from hpc_vdm.train import main

    from helpers import REPO
    rc = main([str(REPO / "configs" / "train_tiny.yaml"), "--set", f"data.store={maps_store}", "--set",
               "model.kind=regressor", "--set", "train.select_on=val_bound", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a validation metric of the regressor family" in err and "val_mse" in err
    assert not (tmp_path / "r").exists()


def test_every_family_declares_a_selectable_validation_metric():
    for kind, family in FAMILIES.items():
        assert family.kind == kind and family.loss_terms and set(family.better) <= set(family.val_columns), kind


# ---------------------------------------------------------------------------------------------
# Preemption policies
# ---------------------------------------------------------------------------------------------
def test_policy_is_chosen_by_the_launcher(tmp_path):
    assert isinstance(preemption.choose({}), preemption.SbatchRequeue)
    sub = preemption.choose({"SUBMITIT_EXECUTOR": "slurm"})
    assert isinstance(sub, preemption.SubmititRequeue) and sub.signals == (signal.SIGUSR2,)
    assert preemption.choose({"SUBMITIT_EXECUTOR": "slurm", "SUBMITIT_PREEMPT_SIGNAL": "USR1"}).signals == (
        signal.SIGUSR1,)
    with pytest.raises(ValueError, match="SUBMITIT_PREEMPT_SIGNAL='NOPE'"):
        preemption.choose({"SUBMITIT_EXECUTOR": "slurm", "SUBMITIT_PREEMPT_SIGNAL": "NOPE"})
    sb = preemption.choose({"HPC_VDM_REQUEUE_FILE": str(tmp_path / "requeue")})
    assert sb.after_save(rank=1, tag="step00000004") == 75 and not (tmp_path / "requeue").exists()
    assert sb.after_save(rank=0, tag="step00000004") == 75
    assert (tmp_path / "requeue").read_text() == "step00000004\n"


def test_submitit_policy_flags_on_its_signal_and_hands_it_back_on_rank_0_only():
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda s, f: calls.append(s))  # stands in for submitit's handler
    term = signal.getsignal(signal.SIGTERM)
    try:
        for rank in (1, 0):
            policy = preemption.SubmititRequeue().install()
            assert signal.getsignal(signal.SIGTERM) is term  # SIGTERM stays submitit's (it bypasses it)
            os.kill(os.getpid(), signal.SIGUSR2)
            assert policy.flag and calls == ([] if rank == 1 else [])  # the signal only raised the flag
            assert policy.after_save(rank=rank, tag="step00000002") == 75
            assert calls == ([] if rank == 1 else [signal.SIGUSR2])    # rank 0 requeues through submitit
            policy.uninstall()
    finally:
        signal.signal(signal.SIGUSR2, previous)
