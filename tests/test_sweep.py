"""Sweeps without a scheduler: spec checks, expansion, names, bad input (exit 2, nothing written), dry run,
the job callable; and the local executor running the example sweep (slow). SLURM: tests/test_sweep_slurm.py."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO, clean_env
from hpc_vdm.config import ConfigError
from hpc_vdm.sweeps import points as pts
from hpc_vdm.sweeps.spec import load_spec

TINY = REPO / "configs" / "train_tiny.yaml"
FIXED = ["train.val_sample_maps=0", "train.progress=false", "train.tensorboard=false", "train.device=cpu"]


def write_sweep(tmp_path, name="sweep.yaml", **body) -> Path:
    body.setdefault("base", str(TINY))
    body.setdefault("out", str(tmp_path / "out"))
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def sweep(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    env = clean_env(PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "hpc_vdm.sweep", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


# -- expansion and names ------------------------------------------------------------------------------
def test_grid_zip_seeds_cross_and_names_are_short_unique_and_stable(tmp_path, maps_store):
    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}"],
                       grid={"train.lr": [1e-3, 3e-4], "model.channels": [8, 16]},
                       zip={"train.warmup_steps": [0, 2], "train.lr_schedule": ["constant", "cosine_restarts"]},
                       seeds=[0, 1])
    got = pts.expand(load_spec(path))
    names = [p.name for p, _ in got]
    assert len(got) == 2 * 2 * 2 * 2 and len(set(names)) == len(names)
    assert names[0] == "lr0.001_channels8_warmup_steps0_lr_scheduleconstant_seed0"
    assert names == [p.name for p, _ in pts.expand(load_spec(path))]  # a rerun finds the same run dirs
    point, cfg = got[-1]
    assert cfg.train.lr == 3e-4 and cfg.model.channels == 16 and cfg.train.seed == 1
    assert cfg.train.lr_schedule == "cosine_restarts" and cfg.train.warmup_steps == 2
    assert cfg.train.run_dir == str(tmp_path / "out" / "runs" / point.name)


def test_latin_hypercube_puts_one_draw_in_each_stratum_and_is_reproducible(tmp_path, maps_store):
    draws = {"method": "lhs", "n": 5, "seed": 3, "params": {
        "train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "model.dropout": {"low": 0.0, "high": 0.2},
        "model.channels": {"choices": [8, 16]}}}
    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}"], draws=draws)
    got = pts.expand(load_spec(path))
    import math

    strata = sorted(int(5 * math.log(c.train.lr / 1e-4) / math.log(100)) for _, c in got)
    assert strata == [0, 1, 2, 3, 4]
    assert sorted(int(5 * c.model.dropout / 0.2) for _, c in got) == [0, 1, 2, 3, 4]
    assert {c.model.channels for _, c in got} <= {8, 16}
    assert [p.values for p, _ in got] == [p.values for p, _ in pts.expand(load_spec(path))]


def test_long_or_clashing_names_get_a_hash():
    keys = ["data.seed", "train.seed", "model.channel_mults"]
    combos = [{"data.seed": 1, "train.seed": 2, "model.channel_mults": [1, 2, 2, 2, 4, 4, 8, 8, 8, 8, 16, 16, 16]}]
    name = pts.names(keys, combos)[0]
    assert name.startswith("data-seed1_train-seed2_") and len(name) <= pts.MAX_NAME
    assert pts.names(["train.lr"], [{"train.lr": 1.00001e-3}, {"train.lr": 1.00002e-3}])[0].startswith("lr0.001-")


# -- bad input: ConfigError naming the axis and the value ---------------------------------------------
@pytest.mark.parametrize("body, message", [
    ({"grid": {"train.lrr": [1e-3]}}, "axis 'train.lrr' (value 0.001): unknown config key 'train.lrr'; did you mean 'lr'?"),
    ({"grid": {"train.lr": ["fast"]}}, "axis 'train.lr' (value 'fast'): train.lr: expected float, got 'fast'"),
    ({"grid": {}}, "has an empty grid"),
    ({"grid": {"train.lr": []}}, "grid.train.lr: empty list"),
    ({"zip": {"train.lr": [1e-3, 1e-4], "model.channels": [8]}}, "zip: the lists must have one length"),
    ({"grid": {"train.run_dir": ["a"]}}, "axis 'train.run_dir'"),
    ({"grid": {"train.lr": [1e-3]}, "seeds": [1], "resources": {"gpus": 2}}, "resources: unknown config key 'gpus'"),
    ({"grid": {"train.lr": [1e-3]}, "resource": {}}, "unknown sweep key 'resource'; did you mean 'resources'"),
    ({"draws": {"method": "sobol", "n": 2, "params": {"train.lr": {"low": 0, "high": 1}}}}, "draws.method"),
    ({"draws": {"n": 2, "params": {"train.lr": {"low": 0.0, "high": 1.0, "log": True}}}}, "a log draw needs low > 0"),
    ({"grid": {"train.lr": [1e-3, 1e-3]}}, "are the same"),
])
def test_bad_spec_is_a_config_error_naming_the_problem(tmp_path, maps_store, body, message):
    path = write_sweep(tmp_path, set=[f"data.store={maps_store}"], **body)
    with pytest.raises(ConfigError) as e:
        pts.expand(load_spec(path))
    assert message in str(e.value)


def _fake_slurm(tmp_path, sinfo_rows: str) -> dict:
    """sinfo answering ``sinfo_rows``; sbatch that leaves a mark (a test fails if anything is submitted)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text(f"#!/bin/sh\nprintf '%s\\n' '{sinfo_rows}'\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ntouch {tmp_path}/SUBMITTED\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("case", ["unknown_key", "empty_grid", "resources", "other_sweep", "not_a_sweep"])
def test_bad_input_exits_2_with_one_line_and_nothing_written_or_submitted(tmp_path, maps_store, case):
    env = _fake_slurm(tmp_path, "debug*|1|2|8000|(null)|infinite|(null)")
    grid = {"train.lr": [1e-3, 3e-4]}
    body = {"set": FIXED + [f"data.store={maps_store}"], "grid": grid, "resources": {"cpus_per_task": 1}}
    out = tmp_path / "out"
    expect = {"unknown_key": "unknown config key 'model.widht'", "empty_grid": "empty grid",
              "resources": "partition 'debug' cannot satisfy them: gpus_per_node=1 > 0 GPUs per node",
              "other_sweep": "holds another sweep", "not_a_sweep": "holds files but no sweep.json"}[case]
    if case == "unknown_key":
        body["grid"] = {**grid, "model.widht": [8]}
    elif case == "empty_grid":
        body["grid"] = {}
    elif case == "resources":
        body["resources"] = {"gpus_per_node": 1, "cpus_per_task": 1}
    elif case == "other_sweep":
        out.mkdir()
        (out / "sweep.json").write_text(json.dumps({"file": "x.yaml", "spec": {"base": "other.yaml"}}))
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    before = sorted(str(p) for p in out.rglob("*")) if out.exists() else None
    proc = sweep(write_sweep(tmp_path, **body), env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], proc.stderr
    assert not (tmp_path / "SUBMITTED").exists()
    assert (sorted(str(p) for p in out.rglob("*")) if out.exists() else None) == before


def test_dry_run_prints_the_array_and_sbatch_parameters_without_submitting(tmp_path, maps_store):
    env = _fake_slurm(tmp_path, "debug*|1|2|8000|(null)|infinite|(null)")
    proc = sweep(REPO / "configs" / "sweeps" / "tiny_lr_width.yaml", "--set", f"data.store={maps_store}",
                 "--out", tmp_path / "out", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "4 point(s) to submit with the slurm executor" in text
    assert "[3] lr0.0003_channels16: train.lr=0.0003 model.channels=16" in text
    for flag in ("#SBATCH --array=0-3%2", "#SBATCH --ntasks-per-node=1", "#SBATCH --time=10",
                 "#SBATCH --signal=USR2@60", "#SBATCH --mem=2048MB"):
        assert flag in text
    assert not (tmp_path / "out").exists() and not (tmp_path / "SUBMITTED").exists()


def test_example_sweeps_expand(tmp_path, maps_store):
    big = load_spec(REPO / "configs" / "sweeps" / "vdm_schedule_seeds.yaml", [f"data.store={maps_store}"],
                    out=str(tmp_path / "big"))
    got = pts.expand(big)
    assert len(got) == 2 * 6 * 2 and big.resources.ranks_per_node == 4
    assert len({p.name for p, _ in got}) == 24


# -- the job callable ---------------------------------------------------------------------------------
def test_job_pickles_and_checkpoint_only_resubmits_itself(tmp_path, maps_store):
    from hpc_vdm.config import to_dict
    from hpc_vdm.sweeps.job import SweepJob

    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}"], seeds=[3])
    point, cfg = pts.expand(load_spec(path))[0]
    job = pickle.loads(pickle.dumps(SweepJob(point.name, to_dict(cfg), {"OMP_NUM_THREADS": "1"})))
    delayed = job.checkpoint()
    assert type(delayed.function) is SweepJob and delayed.function.config == to_dict(cfg)
    assert delayed.function.env == {"OMP_NUM_THREADS": "1"} and delayed.args == () and delayed.kwargs == {}
    assert not Path(cfg.train.run_dir).exists()  # nothing saved: the loop saves on all ranks


def test_sacct_array_ranges_expand():
    from hpc_vdm.sweeps.status import _expand

    assert _expand("12_[0-3%2]") == ["12_0", "12_1", "12_2", "12_3"]
    assert _expand("12_2-3%2") == ["12_2", "12_3"] and _expand("12_[1,4]") == ["12_1", "12_4"]
    assert _expand("12_5") == ["12_5"] and _expand("12") == ["12"]


# -- the local executor (slow: real training processes) -----------------------------------------------
@pytest.mark.slow
def test_local_executor_runs_the_example_sweep_skips_done_points_and_collects(tmp_path, maps_store):
    args = [REPO / "configs" / "sweeps" / "tiny_lr_width.yaml", "--set", f"data.store={maps_store}",
            "--out", tmp_path / "out", "--executor", "local"]
    proc = sweep(*args)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "4 done"
    runs = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    assert runs == ["lr0.0003_channels16", "lr0.0003_channels8", "lr0.001_channels16", "lr0.001_channels8"]
    logs = "".join(p.read_text() for p in (tmp_path / "out" / "submitit" / "0").glob("*_0_log.err"))
    assert f"hpc_vdm from {tmp_path / 'out' / 'submitit' / '0' / 'code' / 'hpc_vdm'}" in logs  # the snapshot
    again = sweep(*args)
    assert again.returncode == 0 and "4 point(s) done: not submitted again" in again.stdout
    collected = sweep(*args[:-2], "--collect")
    assert collected.returncode == 0, collected.stderr
    with open(tmp_path / "out" / "results.csv") as f:
        import csv

        rows = list(csv.DictReader(f))
    assert [r["point"] for r in rows] == ["lr0.001_channels8", "lr0.001_channels16", "lr0.0003_channels8",
                                          "lr0.0003_channels16"]
    assert all(r["state"] == "done" and r["steps"] == "6" and float(r["best_val_bound"]) <= float(r["final_val_bound"])
               for r in rows)
    assert (tmp_path / "out" / "results.png").stat().st_size > 1000
    assert "| lr0.001_channels8 | 0.001 | 8 | done | 6 |" in (tmp_path / "out" / "results.md").read_text()


@pytest.mark.slow
def test_a_failed_point_shows_its_log_and_is_resubmitted(tmp_path, maps_store):
    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}"], grid={"train.global_batch": [3]},
                       resources={"env": {"OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}})
    proc = sweep(path, "--executor", "local")
    assert proc.returncode == 1, proc.stderr[-3000:]
    status = sweep(path, "--status")
    assert "global_batch3  failed" in status.stdout
    assert "train.global_batch=3" in status.stdout  # the log's last lines name the cause
    again = sweep(path, "--executor", "local")
    assert "submitted 1 point(s)" in again.stdout
    subs = json.loads((tmp_path / "out" / "jobs.json").read_text())["submissions"]
    assert [s["index"] for s in subs] == [0, 1] and subs[0]["folder"] != subs[1]["folder"]


def test_executor_is_slurm_when_sbatch_is_on_path_else_local(monkeypatch):
    from hpc_vdm.sweeps import submit

    monkeypatch.setattr(submit.shutil, "which", lambda name: None)
    assert submit.pick_executor(None) == "local" and submit.pick_executor("debug") == "debug"
    with pytest.raises(ConfigError, match="sbatch is not on PATH"):
        submit.pick_executor("slurm")
    monkeypatch.setattr(submit.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert submit.pick_executor(None) == "slurm"
