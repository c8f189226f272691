"""Stopping a launcher stops its workers: torchrun and mpiexec, by signal to the launcher or kill of its group."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import clean_env, train_cmd

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        kids = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        todo += [int(k) for k in kids]
        out |= {int(k) for k in kids}
    return out


def python_workers(pids: set[int]) -> set[int]:
    """The hpc_vdm.train ranks among ``pids`` (not the launcher's helpers)."""
    found = set()
    for pid in pids:
        try:
            if b"hpc_vdm.train" in Path(f"/proc/{pid}/cmdline").read_bytes() or \
                    b"hpc_vdm" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has stopped
    except OSError:
        return False


def start(cmd, run_dir) -> tuple[subprocess.Popen, set[int]]:
    proc = subprocess.Popen(cmd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 240
    metrics = Path(run_dir) / "metrics.csv"
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) > 2:
            break
        time.sleep(0.3)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    workers = python_workers(descendants(proc.pid))
    assert len(workers) >= 2, workers
    return proc, workers


def launcher(kind: str, store, run_dir) -> list[str]:
    if kind == "torchrun":
        return train_cmd(store, run_dir, "train.steps=100000", "train.ckpt_every=100000", nproc=2)
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    return [mpiexec, "-n", "2"] + train_cmd(store, run_dir, "train.steps=100000", "train.ckpt_every=100000")


@pytest.mark.parametrize("kind", ["torchrun", "mpiexec"])
@pytest.mark.parametrize("how", ["kill the process group", "SIGTERM to the launcher"])
def test_stopping_the_launcher_leaves_no_worker(maps_store, tmp_path, kind, how):
    proc, workers = start(launcher(kind, maps_store, tmp_path / "run"), tmp_path / "run")
    if how == "kill the process group":
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher cannot forward anything
    else:
        proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 90
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.5)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not left, f"workers {left} of {kind} still ran 90 s after: {how}"
