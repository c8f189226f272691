"""The trainer as users run it: resume = uninterrupted, preemption, checkpoints, bad input, launchers."""
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers import REPO, exported, metrics, preempt, train
from hpc_vdm import dist
from hpc_vdm.training.checkpoint import Checkpoints
from hpc_vdm.train import main as train_main
from hpc_vdm.training.engine import lr_factor


@pytest.fixture(scope="module")
def straight(maps_store, tmp_path_factory):
    """An uninterrupted 6-step run of the tiny config (the oracle of the resume tests)."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(maps_store, run)
    return run


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]) and \
        all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])


def untimed(rows):
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]


def test_run_dir_contents(straight):
    for name in ("config.json", "ds_config.json", "train.log", "metrics.csv", "export/model.pt"):
        assert (straight / name).is_file(), name
    assert any((straight / "tb").iterdir())
    ds = json.loads((straight / "ds_config.json").read_text())
    assert ds["gradient_clipping"] == 0.5 and ds["train_batch_size"] == 2
    rows = metrics(straight)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert len(metrics(straight, "val")) == 2  # val_every=3
    ckpts = Checkpoints(straight / "checkpoints")
    assert ckpts.latest() == "step00000006" and ckpts.verify("step00000006") is None
    best, val = ckpts.best(), metrics(straight, "val")
    lowest = min(val, key=lambda r: float(r["val_bound"]))
    assert best == {"tag": f"step{int(lowest['step']):08d}", "metric": "val_bound",
                    "value": pytest.approx(float(lowest["val_bound"]), rel=1e-7)}
    assert best["tag"] in ckpts.tags()


def test_export_loads_without_deepspeed(straight):
    from hpc_vdm.bundle import load_bundle

    bundle = load_bundle(straight / "export" / "model.pt")
    assert bundle.step == 6 and bundle.store["map_pixels"] == 256 and bundle.kind == "vdm"
    x = torch.zeros(1, 1, 256, 256)
    assert bundle.module(x, x).loss.shape == (1,)
    raw = load_bundle(straight / "export" / "model.pt", which="raw").module
    assert any(not torch.equal(a, b) for a, b in zip(bundle.module.parameters(), raw.parameters()))  # EMA != raw


def test_resume_equals_uninterrupted(maps_store, straight, tmp_path):
    run = tmp_path / "run"
    train(maps_store, run, "train.steps=3")
    proc = train(maps_store, run)  # resumes by default
    assert "resumed from step00000003" in proc.stderr
    assert same_weights(exported(straight), exported(run))
    assert untimed(metrics(run)) == untimed(metrics(straight))  # the loss trajectory, rows after the resume rewritten
    assert untimed(metrics(run, "val")) == untimed(metrics(straight, "val"))


def test_preemption_saves_and_resumes_from_that_step(maps_store, tmp_path):
    run = tmp_path / "run"
    rc, err = preempt(maps_store, run, at_step=2)
    assert rc == 75, err[-3000:]
    step = int(Checkpoints(run / "checkpoints").latest()[4:])
    assert step >= 2 and "preempted: checkpoint" in err
    proc = train(maps_store, run, f"train.steps={step + 2}")
    assert f"resumed from step{step:08d}" in proc.stderr
    assert [int(r["step"]) for r in metrics(run)] == list(range(1, step + 3))


def test_selection_on_r_after_resume_and_export_of_best(maps_store, straight, tmp_path):
    """Switching train.select_on on resume starts a new best; r(k) is maximised; export_tag=best exports it."""
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    train(maps_store, run, "train.steps=12", "train.select_on=val_r_mean", "train.val_sample_maps=1",
          "train.export_tag=best")
    after = [r for r in metrics(run, "val") if int(r["step"]) > 6]
    assert [int(r["step"]) for r in after] == [9, 12]
    highest = max(after, key=lambda r: float(r["val_r_mean"]))
    best = Checkpoints(run / "checkpoints").best()
    assert best == {"tag": f"step{int(highest['step']):08d}", "metric": "val_r_mean",
                    "value": pytest.approx(float(highest["val_r_mean"]), rel=1e-7)}
    assert exported(run)["tag"] == best["tag"] and exported(run)["step"] == int(highest["step"])


class FakeEngine:
    def save_checkpoint(self, root, tag, client_state, save_latest):
        Path(root, tag).mkdir(parents=True)
        torch.save({"w": torch.arange(100.0)}, Path(root, tag, "mp_rank_00_model_states.pt"))

    def zero_optimization_stage(self):
        return 1


def test_corrupt_or_torn_newest_checkpoint_falls_back(tmp_path):
    ckpts = Checkpoints(tmp_path, keep_last=5)
    for step in (10, 20, 30):
        ckpts.save(FakeEngine(), step, {}, extra_files={"ema.pt": {"a": 1}})
    assert ckpts.latest() == "step00000030" and ckpts.newest_intact() == "step00000030"
    with open(tmp_path / "step00000030" / "mp_rank_00_model_states.pt", "r+b") as f:
        f.truncate(50)  # a torn write
    assert "bytes" in ckpts.verify("step00000030")
    assert ckpts.newest_intact() == "step00000020"
    (tmp_path / "step00000020" / "ema.pt").write_bytes(b"x" * (tmp_path / "step00000020" / "ema.pt").stat().st_size)
    assert "SHA-256" in ckpts.verify("step00000020")  # same size, different bytes
    os.remove(tmp_path / "step00000010" / "COMPLETE.json")  # a save that died before its manifest
    assert ckpts.newest_intact() is None


def test_keep_last_prunes_but_keeps_best(tmp_path):
    ckpts = Checkpoints(tmp_path, keep_last=2)
    ckpts.save(FakeEngine(), 1, {})
    ckpts.mark_best("step00000001", "val_bound", 1.0)
    for step in (2, 3, 4):
        ckpts.save(FakeEngine(), step, {})
    assert ckpts.tags() == ["step00000004", "step00000003", "step00000001"]


def test_lr_schedules():
    kw = dict(warmup=4, period=10, mult=2, floor=0.1)
    assert [lr_factor(s, schedule="constant", **kw) for s in (0, 3, 4, 100)] == [0.25, 1.0, 1.0, 1.0]
    cos = [lr_factor(s, schedule="cosine_restarts", **kw) for s in range(4, 40)]
    assert cos[0] == 1.0 and cos[10] == 1.0 and cos[30] == 1.0  # restarts after 10, then 20 steps
    assert cos[5] == pytest.approx(0.1 + 0.9 * 0.5) and min(cos) > 0.1


def test_dist_detects_launchers():
    tr = dist.detect({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "29500"})
    assert (tr.rank, tr.world, tr.local_rank, tr.master_addr, tr.launcher) == (3, 8, 1, "n1", "torchrun")
    sl = dist.detect({"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "4242",
                      "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_JOB_NODELIST": "gpu[07-08]"})
    assert (sl.rank, sl.world, sl.local_rank, sl.master_addr, sl.launcher) == (5, 8, 1, "gpu07", "slurm")
    assert sl.master_port == dist.port_for_job(4242)
    batch_step = dist.detect({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "1"})  # no srun
    assert (batch_step.world, batch_step.launcher) == (1, "single")
    assert dist.env_rank({"SLURM_PROCID": "2", "SLURM_STEP_NUM_TASKS": "4"}) == 2


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line, exit 2, nothing written
# ---------------------------------------------------------------------------------------------
def run_main(capsys, *argv):
    rc = train_main([str(REPO / "configs" / "train_tiny.yaml"), *argv])
    return rc, capsys.readouterr().err


def test_bad_config_key(capsys, tmp_path):
    rc, err = run_main(capsys, "--set", "train.zero_stag=2", "--run-dir", str(tmp_path / "r"))
    assert rc == 2 and "did you mean 'zero_stage'" in err and not (tmp_path / "r").exists()


def test_missing_store(capsys, tmp_path):
    rc, err = run_main(capsys, "--set", f"data.store={tmp_path}/nope.zarr", "--run-dir", str(tmp_path / "r"))
    assert rc == 2 and "no maps store" in err and "nope.zarr" in err and not (tmp_path / "r").exists()


def test_batch_size_mismatch(capsys, maps_store, tmp_path):
    rc, err = run_main(capsys, "--set", f"data.store={maps_store}", "--set", "train.global_batch=12",
                       "--run-dir", str(tmp_path / "r"))
    assert rc == 2 and "train.global_batch=12" in err and "= 2" in err and not (tmp_path / "r").exists()


def test_selection_metric_the_validation_does_not_compute(capsys, maps_store, tmp_path):
    rc, err = run_main(capsys, "--set", f"data.store={maps_store}", "--set", "train.select_on=val_pk_ratio_err",
                       "--set", "train.val_sample_maps=0", "--run-dir", str(tmp_path / "r"))
    assert rc == 2 and "train.select_on='val_pk_ratio_err'" in err and "val_sample_maps=0" in err
    assert not (tmp_path / "r").exists()


def test_checkpoint_from_another_model(capsys, maps_store, straight, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(straight, run)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    rc, err = run_main(capsys, "--set", f"data.store={maps_store}", "--set", "model.channels=16", "--run-dir", str(run))
    assert rc == 2 and "another model or config" in err and "model.channels: 8 (checkpoint) != 16" in err
    rc, err = run_main(capsys, "--set", f"data.store={maps_store}", "--set", "train.resume=false", "--run-dir", str(run))
    assert rc == 2 and "already holds checkpoints" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


# ---------------------------------------------------------------------------------------------
# Multi-process (slow): torchrun with gloo, ZeRO 1-3, fp32/bf16, world-size changes, preemption
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_torchrun_two_ranks(maps_store, tmp_path, stage, precision):
    run = tmp_path / "run"
    proc = train(maps_store, run, f"train.zero_stage={stage}", f"train.precision={precision}", "train.steps=3",
                 nproc=2)
    assert "world 2 (torchrun)" in proc.stderr
    rows = metrics(run)
    assert [int(r["samples"]) for r in rows] == [4, 8, 12]  # 2 maps x 2 ranks per step
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    blob = exported(run)
    assert all(v.dtype == torch.float32 for v in blob["model"].values())  # consolidated fp32, also from bf16


@pytest.mark.slow
def test_resume_on_another_world_size_keeps_optimizer_state(maps_store, tmp_path):
    run = tmp_path / "run"
    train(maps_store, run, "train.steps=3", "train.ema_decay=0", nproc=2)
    before = exported(run)["model"]
    proc = train(maps_store, run, "train.steps=4", "train.ema_decay=0")  # 2 ranks -> 1
    assert "universal checkpoint" in proc.stderr and "resumed from step00000003" in proc.stderr
    assert [int(r["samples"]) for r in metrics(run)][-1] == 14
    after = exported(run)["model"]
    # A restarted Adam moves every weight by exactly lr in its first step (m/sqrt(v) = ±1); restored moments don't.
    ratios = torch.cat([((after[k] - before[k]).abs() / 1e-3).flatten() for k in before if before[k].numel() > 1])
    moved = ratios[ratios > 1e-6]
    assert (torch.abs(moved - 1) < 1e-3).float().mean() < 0.5


@pytest.mark.slow
def test_preemption_two_ranks(maps_store, tmp_path):
    run = tmp_path / "run"
    rc, err = preempt(maps_store, run, nproc=2, at_step=2)
    assert rc != 0 and "preempted: checkpoint" in err  # torchrun reports the ranks' exit code 75 as a failure
    step = int(Checkpoints(run / "checkpoints").latest()[4:])
    proc = train(maps_store, run, f"train.steps={step + 1}", nproc=2)
    assert f"resumed from step{step:08d}" in proc.stderr


@pytest.mark.slow
def test_mpiexec_launcher_and_zero_stage_0(maps_store, tmp_path):
    """mpiexec (mpi4py discovery in hpc_vdm.dist) with plain data parallelism (ZeRO 0)."""
    import subprocess
    import sys

    from helpers import clean_env, train_cmd

    mpiexec = Path(sys.executable).with_name("mpiexec")
    run = tmp_path / "run"
    cmd = [str(mpiexec), "-n", "2"] + train_cmd(maps_store, run, "train.steps=2", "train.zero_stage=0")
    proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world 2 (mpi)" in proc.stderr
    assert [int(r["samples"]) for r in metrics(run)] == [4, 8]
    assert all(v.dtype == torch.float32 for v in exported(run)["model"].values())


def test_a_crafted_pickle_in_a_checkpoint_is_refused_unrun(tmp_path):
    """A checkpoint file whose bytes match its manifest but hold a code-running object is never unpickled."""
    import hashlib
    import json

    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    ckpts = Checkpoints(tmp_path / "ck", keep_last=5)
    ckpts.save(FakeEngine(), 1, {}, extra_files={"ema.pt": {"a": 1}})
    ckpts.save(FakeEngine(), 2, {}, extra_files={"ema.pt": {"a": 1}})
    folder = tmp_path / "ck" / "step00000002"
    torch.save({"module": Evil()}, folder / "mp_rank_00_model_states.pt")
    meta = json.loads((folder / "COMPLETE.json").read_text())
    blob = (folder / "mp_rank_00_model_states.pt").read_bytes()
    meta["files"]["mp_rank_00_model_states.pt"] = [len(blob), hashlib.sha256(blob).hexdigest()]  # a forged manifest
    (folder / "COMPLETE.json").write_text(json.dumps(meta))
    assert "holds objects other than weights" in ckpts.verify("step00000002")
    assert ckpts.newest_intact() == "step00000001" and not sentinel.exists()
