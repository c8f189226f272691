"""Sweeps against the real local SLURM (tools/slurm_up.sh, sacct stand-in): a 2x2 array completes and is
collected, a cancelled task is reported cancelled, a task that hits its time limit requeues through submitit
and finishes from its checkpoint with the result of an uninterrupted run."""
import time
from pathlib import Path

import pytest

from helpers import REPO, exported, metrics
from test_slurm import slurm  # noqa: F401 (fixture: the local SLURM, brought up once per module)
from test_sweep import FIXED, sweep, write_sweep
from test_train import same_weights, untimed
from hpc_vdm.sweeps import record, status

pytestmark = pytest.mark.slow

CPU_ENV = {"OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}


@pytest.fixture
def slurm_env(slurm, monkeypatch):  # noqa: F811
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    return slurm


def wait_states(out: Path, want, timeout: float, what: str) -> list:
    """Poll the points' states (as --status derives them) until ``want(states)``; diagnostics on timeout."""
    names = [p["name"] for p in record.read_manifest(out)["points"]]
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = status.states(out, names)
        if want([r.state for r in rows]):
            return rows
        time.sleep(2)
    logs = "\n".join(f"-- {p}\n{p.read_text()[-2000:]}" for p in sorted(out.glob("submitit/*/*_0_log.err")))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: {status.format_table(rows)}\n{logs}")


def test_2x2_sweep_completes_on_slurm_and_collect_tabulates_it(slurm_env, maps_store, tmp_path):
    out = tmp_path / "out"
    args = [REPO / "configs" / "sweeps" / "tiny_lr_width.yaml", "--set", f"data.store={maps_store}", "--out", out]
    t0 = time.time()
    proc = sweep(*args, env=slurm_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "submitted 4 point(s) with the slurm executor" in proc.stdout  # auto-detected: sbatch is on PATH
    jobs = record.latest_jobs(out)
    assert len({j["job_id"].split("_")[0] for j in jobs.values()}) == 1  # one array
    wait_states(out, lambda s: all(x == "done" for x in s), 300, "4 done")
    print(f"2x2 sweep on SLURM: {time.time() - t0:.0f} s")
    code = out / "submitit" / "0" / "code" / "hpc_vdm"
    assert all(f"hpc_vdm from {code}" in p.read_text() for p in out.glob("submitit/0/*_0_log.err"))
    shown = sweep(*args, "--status", env=slurm_env)
    assert shown.returncode == 0 and shown.stdout.strip().splitlines()[-1] == "4 done"
    collected = sweep(*args, "--collect", env=slurm_env)
    assert collected.returncode == 0, collected.stderr
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + 4 and all("| done | 6 |" in row for row in table[2:])
    assert "final_val_bound" in table[0] and "best_val_bound" in table[0] and (out / "results.png").is_file()
    again = sweep(*args, env=slurm_env)
    assert again.returncode == 0 and "nothing to submit" in again.stdout


def test_cancelled_task_is_reported_cancelled_and_would_be_resubmitted(slurm_env, maps_store, tmp_path):
    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}", "train.steps=100000", "train.val_every=0"],
                       seeds=[1], resources={"time_min": 10, "mem_gb": 2, "env": CPU_ENV})
    proc = sweep(path, env=slurm_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    wait_states(out, lambda s: s == ["running"], 120, "the task to run")
    cancelled = sweep(path, "--cancel", env=slurm_env)
    assert cancelled.returncode == 0 and "cancelled 1 point(s): seed1" in cancelled.stdout, cancelled.stderr
    t0 = time.time()
    wait_states(out, lambda s: s == ["cancelled"], 60, "the cancelled state")
    print(f"cancel seen after {time.time() - t0:.0f} s")
    shown = sweep(path, "--status", timeout=60, env=slurm_env)
    assert "seed1  cancelled" in shown.stdout, shown.stdout + shown.stderr
    dry = sweep(path, "--dry-run", env=slurm_env)
    assert "1 point(s) to submit with the slurm executor" in dry.stdout, dry.stderr


def test_time_limit_requeues_and_finishes_with_the_uninterrupted_result(slurm_env, maps_store, tmp_path):
    # --time=3 with USR2 90 s before the limit: the signal comes 60-90 s in (SLURM checks limits every ~30 s),
    # after a start-up of ~30 s (2 ranks on 2 loaded CPUs), while the ranks train; both save, rank 0 requeues
    # through submitit, the task resumes after cred_expire (20 s) and may be requeued again (max_requeues)
    sets = FIXED + [f"data.store={maps_store}", "train.steps=48", "train.val_every=0", "train.ckpt_every=1000"]
    path = write_sweep(tmp_path, set=sets, seeds=[5],
                       resources={"tasks_per_node": 2, "time_min": 3, "signal_delay_s": 90, "max_requeues": 3,
                                  "mem_gb": 4, "env": CPU_ENV})
    out = tmp_path / "out"
    t0 = time.time()
    proc = sweep(path, env=slurm_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # meanwhile the same point, uninterrupted, with the local executor (2 gloo ranks as well)
    ref = sweep(path, "--executor", "local", "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-3000:] + ref.stdout
    wait_states(out, lambda s: s == ["done"], 420, "the requeued task to finish")
    print(f"time-limit requeue test: {time.time() - t0:.0f} s")
    log = "".join(p.read_text() for p in sorted(out.glob("submitit/0/*_0_log.err")))
    assert "this job is timed-out" in log and "Requeued job" in log
    assert "resumed from step" in log and "(restart 1)" in log
    run, straight = out / "runs" / "seed5", tmp_path / "ref" / "runs" / "seed5"
    assert [int(r["step"]) for r in metrics(run)] == list(range(1, 49))
    assert untimed(metrics(run)) == untimed(metrics(straight))
    assert same_weights(exported(run), exported(straight))


@pytest.mark.parametrize("resources, message", [
    ({"gpus_per_node": 1}, "gpus_per_node=1 > 0 GPUs per node"),
    ({"mem_gb": 100000}, "mem_gb=100000 >"),
    ({"partition": "gpu"}, "resources.partition: 'gpu' is not a partition of this cluster (sinfo: ['debug'])"),
])
def test_resources_the_partition_cannot_satisfy_are_refused_before_submitting(slurm_env, maps_store, tmp_path,
                                                                              resources, message):
    path = write_sweep(tmp_path, set=FIXED + [f"data.store={maps_store}"], seeds=[1], resources=resources)
    proc = sweep(path, env=slurm_env)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
