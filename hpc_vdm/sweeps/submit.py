"""Submitting points: the executor, the partition check, the code snapshot, one job array.

* ``slurm`` (auto-detected when ``sbatch`` is on PATH): one ``sbatch --array`` of the points to run, one
  task per GPU (``--ntasks-per-node``), ``--signal=USR2@signal_delay_s``; a task that reaches its time
  limit checkpoints and requeues (at most ``max_requeues`` times), then resumes from its run dir.
* ``local``: the same jobs as subprocesses of this command (submitit's LocalExecutor), in waves of
  ``array_parallelism``; the command waits for them.
* ``debug``: in this process, one after the other (submitit's DebugExecutor).

Queued jobs run a snapshot of the code: the package's files (git-tracked and untracked-but-not-ignored,
as in the working tree now) are copied into the submission's folder, and jobs start there with it first
on ``PYTHONPATH``, so later edits never reach them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from ..config import ConfigError
from .job import SweepJob
from .spec import Resources

EXECUTORS = ("slurm", "local", "debug")
SUBMIT_COMMAND = "python -u -m submitit.core._submit"

log = logging.getLogger("hpc_vdm.sweep")


def pick_executor(name: str | None) -> str:
    if name is None:
        return "slurm" if shutil.which("sbatch") else "local"
    if name == "slurm" and not shutil.which("sbatch"):
        raise ConfigError("--executor slurm: sbatch is not on PATH (use --executor local on this machine)")
    return name


def slurm_parameters(res: Resources, name: str) -> dict:
    """The SlurmExecutor's parameters (sbatch options) of one array task."""
    params = {"job_name": name, "time": res.time_min, "nodes": res.nodes, "ntasks_per_node": res.ranks_per_node,
              "cpus_per_task": res.cpus_per_task, "mem": f"{int(round(res.mem_gb * 1024))}MB",
              "array_parallelism": res.array_parallelism, "signal_delay_s": res.signal_delay_s,
              "setup": list(res.setup)}
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(res, key):
            params[key] = getattr(res, key)
    return params


def _minutes(limit: str) -> float:
    """sinfo's time limit (``infinite``, ``MM``, ``HH:MM:SS``, ``D-HH:MM:SS``) in minutes."""
    if limit in ("infinite", "UNLIMITED", "n/a", ""):
        return float("inf")
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + h * 60 + m + s / 60


def check_partition(res: Resources) -> None:
    """Refuse resources that no node of the partition has (as far as ``sinfo`` tells)."""
    fields = "%P|%D|%c|%m|%G|%l|%f"
    args = ["sinfo", "-h", "-e", "-o", fields] + (["-p", res.partition] if res.partition else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ConfigError(f"sinfo failed ({proc.stderr.strip() or proc.returncode}): cannot check the partition")
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.strip()]
    if res.partition:
        rows = [r for r in rows if r[0].rstrip("*") == res.partition]
    else:
        rows = [r for r in rows if r[0].endswith("*")] or rows
    if not rows:
        known = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60).stdout.split()
        raise ConfigError(f"resources.partition: {res.partition!r} is not a partition of this cluster "
                          f"(sinfo: {sorted({k.rstrip('*') for k in known})})")
    part = rows[0][0].rstrip("*")
    need_cpus = res.ranks_per_node * res.cpus_per_task
    ok = []
    for _, count, cpus, mem, gres, limit, features in rows:
        gpus = sum(int(g) for g in re.findall(r"gpu(?::[\w-]+)?:(\d+)", gres))
        why = [f"nodes={res.nodes} > {count} nodes" if res.nodes > int(count) else "",
               f"{need_cpus} CPUs per node (tasks x cpus_per_task) > {cpus}" if need_cpus > int(cpus.rstrip("+")) else "",
               f"mem_gb={res.mem_gb:g} > {int(mem.rstrip('+')) / 1024:.1f} GB per node" if res.mem_gb * 1024 > int(mem.rstrip("+")) else "",
               f"gpus_per_node={res.gpus_per_node} > {gpus} GPUs per node" if res.gpus_per_node > gpus else "",
               f"time_min={res.time_min} > the partition's limit {limit}" if res.time_min > _minutes(limit) else "",
               f"constraint={res.constraint!r} not in the node features {features!r}"
               if res.constraint and res.constraint not in features.split(",") else ""]
        ok.append([w for w in why if w])
    if all(ok):
        raise ConfigError(f"resources: partition {part!r} cannot satisfy them: {'; '.join(min(ok, key=len))}")


def snapshot_code(dest: Path) -> Path:
    """Copy the importable packages of this checkout (``hpc_vdm``, ``tiling``) into ``dest``."""
    import hpc_vdm

    root = Path(hpc_vdm.__file__).resolve().parents[1]
    packages = [p.name for p in root.iterdir() if (p / "__init__.py").is_file()]
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                             "--", *packages], capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (an installed wheel): copy the package trees
        files = [f.relative_to(root) for pkg in packages for f in (root / pkg).rglob("*.py")]
    else:
        files = [Path(f) for f in listed.stdout.split("\0") if f]
    for rel in files:
        if (root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
    return dest


@contextlib.contextmanager
def running_from(code: Path):
    """Submit from inside the snapshot (jobs start in the submission's working directory) with it first on
    PYTHONPATH (``python -m`` puts the working directory first, the installed package comes after)."""
    cwd, old = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(code)
    os.environ["PYTHONPATH"] = str(code) + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def make_executor(kind: str, folder: Path, res: Resources, name: str):
    import submitit

    if kind == "slurm":
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=res.max_requeues)
        ex.update_parameters(**slurm_parameters(res, name))
    elif kind == "local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=res.max_requeues)
        ex.update_parameters(timeout_min=res.time_min, tasks_per_node=res.ranks_per_node,
                             gpus_per_node=res.gpus_per_node, signal_delay_s=res.signal_delay_s)
    else:
        ex = submitit.DebugExecutor(folder=folder)
    return ex


def submit(kind: str, folder: Path, res: Resources, name: str, jobs: list[SweepJob], on_submit) -> list:
    """One job array of ``jobs`` (SLURM), or waves of local processes that this call waits for;
    ``on_submit(handles)`` records every array or wave as soon as it is queued."""
    folder.mkdir(parents=True, exist_ok=True)
    code = snapshot_code(folder / "code")
    ex = make_executor(kind, folder, res, name)
    wave_size = res.array_parallelism if kind == "local" else len(jobs)
    handles = []
    for start in range(0, len(jobs), wave_size):
        with running_from(code):
            with ex.batch():
                wave = [ex.submit(job) for job in jobs[start:start + wave_size]]
        on_submit(wave)
        handles += wave
        if kind != "slurm":  # local processes die with this command; debug jobs run when asked for results
            wait_local(wave)
    return handles


def wait_local(handles: list) -> None:
    for h in handles:
        try:
            h.result()
        except Exception as e:  # one failed point must not stop the others; --status shows its log
            log.warning("job %s failed: %s", h.job_id, str(e).strip().splitlines()[-1] if str(e).strip() else e)


def dry_run_text(kind: str, folder: Path, res: Resources, name: str, points: list) -> str:
    from submitit.slurm.slurm import _make_sbatch_string

    lines = [f"{len(points)} point(s) to submit with the {kind} executor, submitit folder {folder}:"]
    if points:
        lines.append("  every point: " + " ".join(p for p in points[0].overrides if p.split("=")[0] not in points[0].values
                                                 and not p.startswith("train.run_dir=")))
    lines += [f"  [{i}] {p.name}: " + " ".join(f"{k}={v!r}" for k, v in p.values.items()) for i, p in enumerate(points)]
    if kind == "slurm":
        params = slurm_parameters(res, name)
        text = _make_sbatch_string(command=SUBMIT_COMMAND, folder=folder, map_count=len(points), **params)
        lines += ["sbatch parameters:"] + ["  " + line for line in text.splitlines() if line.startswith("#SBATCH")]
    else:
        lines.append(f"  {res.ranks_per_node} task(s) per point, time limit {res.time_min} min")
    return "\n".join(lines)


def cancel(rows, latest: dict) -> list[str]:
    """Cancel the pending and running points of this sweep (their recorded job ids only)."""
    import signal

    done = []
    for r in rows:
        if r.state not in ("pending", "running"):
            continue
        info = latest[r.name]
        if info["executor"] == "slurm":
            subprocess.run(["scancel", info["job_id"]], check=True, capture_output=True, text=True)
        else:
            os.kill(int(info["job_id"]), signal.SIGINT)
        done.append(r.name)
    return done
