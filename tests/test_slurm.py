"""The real `sbatch slurm/train_multinode.sh` on a local single-node SLURM (tools/slurm_up.sh), 2 gloo tasks."""
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import REPO, clean_env, metrics
from test_tile import args as tile_args, arrays, model, preset  # noqa: F401 (fixtures)
from hpc_vdm.training.checkpoint import Checkpoints

pytestmark = pytest.mark.slow

CPU_TEST_CLUSTER = ["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0", "--cpus-per-task=1", "--mem-per-cpu=2G",
                    "--time=00:15:00"]


@pytest.fixture(scope="module")
def slurm():
    """SLURM_CONF/PATH of a running local SLURM; started (and afterwards stopped) here unless already up."""
    state = os.environ.get("HPC_VDM_SLURM_DIR", str(Path.home() / ".cache" / "hpc_vdm" / "slurm"))
    env = dict(os.environ, SLURM_CONF=f"{state}/etc/slurm.conf", PATH=f"{state}/bin:{os.environ['PATH']}")
    was_up = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True).returncode == 0 \
        if _has("scontrol") else False
    up = subprocess.run(["bash", str(REPO / "tools" / "slurm_up.sh"), state], capture_output=True, text=True)
    assert up.returncode == 0, up.stderr[-3000:]
    yield {"SLURM_CONF": env["SLURM_CONF"], "PATH": env["PATH"]}
    if not was_up:
        subprocess.run(["bash", str(REPO / "tools" / "slurm_down.sh"), state], capture_output=True)


def _has(cmd):
    return any(Path(p, cmd).exists() for p in os.environ["PATH"].split(os.pathsep))


def sbatch(slurm, workdir, *args, script: str = "train_multinode.sh") -> str:
    env = clean_env(**slurm, HPC_VDM_PYTHON=os.environ.get("HPC_VDM_PYTHON", __import__("sys").executable))
    out = subprocess.run(["sbatch", "--parsable", *CPU_TEST_CLUSTER, str(REPO / "slurm" / script), *args],
                         env=env, cwd=workdir, capture_output=True, text=True, check=True)
    return out.stdout.strip().split(";")[0]


def job_state(slurm, job: str) -> str:
    out = subprocess.run(["sacct", "-j", job, "-o", "JobID,State", "-n"], env={**os.environ, **slurm},
                         capture_output=True, text=True)
    states = [line.split("|")[1] for line in out.stdout.splitlines() if line.startswith(job + "|")]
    return states[0] if states else "UNKNOWN"


def wait_for(predicate, timeout: float, what: str, diagnose=lambda: ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{diagnose()}")


TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


def diagnosis(slurm, job: str, log: Path) -> str:
    """What a person needs when a job test fails: the job record, drained nodes, the job log's tail."""
    env = {**os.environ, **slurm}
    show = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
    nodes = subprocess.run(["sinfo", "-R"], env=env, capture_output=True, text=True).stdout
    tail = log.read_text()[-3000:] if log.is_file() else f"(no log {log})"
    ctld = Path(slurm["SLURM_CONF"]).parents[1] / "log" / "slurmctld.log"
    events = [line for line in ctld.read_text().splitlines() if f"JobId={job} " in line + " "] if ctld.is_file() else []
    return (f"-- scontrol show job {job}\n{show}\n-- sinfo -R\n{nodes}\n-- slurmctld on job {job}\n"
            + "\n".join(events[-20:]) + f"\n-- {log.name}\n{tail}")


def test_sbatch_train_finishes_then_resubmission_resumes(slurm, maps_store, tmp_path):
    run = tmp_path / "run"
    args = ["configs/train_tiny.yaml", "--set", f"data.store={maps_store}", "--run-dir", str(run),
            "--set", "train.val_sample_maps=0", "--set", "train.progress=false"]
    args[0] = str(REPO / args[0])
    job = sbatch(slurm, tmp_path, *args)
    wait_for(lambda: job_state(slurm, job) in TERMINAL, 300, f"job {job}",
             lambda: diagnosis(slurm, job, tmp_path / f"hpc_vdm-train-{job}.out"))
    log = (tmp_path / f"hpc_vdm-train-{job}.out").read_text()
    assert job_state(slurm, job) == "COMPLETED", log[-3000:]
    assert "world 2 (slurm)" in log and "srun exited with 0" in log
    assert Checkpoints(run / "checkpoints").latest() == "step00000006"
    assert (run / "export" / "model.pt").is_file()

    job2 = sbatch(slurm, tmp_path, *args, "--set", "train.steps=8")
    wait_for(lambda: job_state(slurm, job2) in TERMINAL, 300, f"job {job2}",
             lambda: diagnosis(slurm, job2, tmp_path / f"hpc_vdm-train-{job2}.out"))
    log2 = (tmp_path / f"hpc_vdm-train-{job2}.out").read_text()
    assert job_state(slurm, job2) == "COMPLETED", log2[-3000:]
    assert "resumed from step00000006" in log2
    assert [int(r["step"]) for r in metrics(run)] == list(range(1, 9))


def test_preemption_signal_requeues_and_resumes(slurm, maps_store, tmp_path):
    run = tmp_path / "run"
    job = sbatch(slurm, tmp_path, str(REPO / "configs" / "train_tiny.yaml"), "--set", f"data.store={maps_store}",
                 "--run-dir", str(run), "--set", "train.val_sample_maps=0", "--set", "train.progress=false",
                 "--set", "train.steps=24", "--set", "train.val_every=0", "--set", "train.ckpt_every=1000")
    csv = run / "metrics.csv"
    wait_for(lambda: csv.is_file() and len(csv.read_text().splitlines()) > 3, 300, "two logged steps")
    # what --signal=USR2@120 does near the time limit: USR2 to every task of the step, not the batch shell
    subprocess.run(["scancel", "--signal=USR2", job], env={**os.environ, **slurm}, check=True)
    wait_for(lambda: job_state(slurm, job) in ("PENDING", "REQUEUED"), 120, "the requeue")
    step = int(Checkpoints(run / "checkpoints").latest()[4:])
    # a requeued job waits cred_expire (20 s on the test cluster, tools/slurm_up.sh) before it starts again: the
    # node refuses it until its previous credential expires, so it must not be released any earlier
    log = tmp_path / f"hpc_vdm-train-{job}.out"

    def finished():
        state = job_state(slurm, job)
        if state in TERMINAL and state != "COMPLETED":
            raise AssertionError(f"job {job} ended {state} after its requeue\n{diagnosis(slurm, job, log)}")
        return state == "COMPLETED"

    wait_for(finished, 300, f"job {job} after its requeue", lambda: diagnosis(slurm, job, log))
    log = log.read_text()
    assert "requeueing job" in log and "(restart 1)" in log
    assert f"resumed from step{step:08d}" in log
    assert [int(r["step"]) for r in metrics(run)] == list(range(1, 25))


def test_sbatch_tile_splits_slabs_over_two_tasks(slurm, model, preset, tmp_path):
    out = tmp_path / "tile.zarr"
    job = sbatch(slurm, tmp_path, *tile_args(model, preset, out), script="tile_tng300.sh")
    log = tmp_path / f"hpc_vdm-tile-{job}.out"
    wait_for(lambda: job_state(slurm, job) in TERMINAL, 300, f"job {job}", lambda: diagnosis(slurm, job, log))
    text = log.read_text()
    assert job_state(slurm, job) == "COMPLETED", text[-3000:]
    assert "rank 0/2" in text and "rank 1/2" in text
    got = arrays(out)
    assert got["done"].all() and got["summary_done"].all() and out.with_suffix(".png").is_file()
