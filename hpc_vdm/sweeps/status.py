"""Each point's state, from files and the scheduler alone (works from a fresh shell).

* ``done``: the run dir holds ``export/model.pt`` (the trainer writes it only at the end);
* otherwise the newest submission of the point decides: SLURM states come from ``sacct`` (real, or the
  stand-in of ``tools/slurm_up.sh``), local jobs from their process and submitit's result pickle:
  ``pending``, ``running``, ``cancelled``, ``failed`` (with the last lines of the task's log), or
  ``new`` (never submitted);
* the newest checkpoint tag is reported beside it (what a resubmission resumes from).
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..training.checkpoint import Checkpoints
from . import record

PENDING = ("PENDING", "REQUEUED", "CONFIGURING", "RESIZING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED")
RUNNING = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING")
RESUBMIT = ("new", "failed", "cancelled", "unknown")
TAIL = 8


@dataclass
class PointState:
    name: str
    state: str          # new | pending | running | done | failed | cancelled | unknown
    job_id: str = ""
    checkpoint: str = ""
    detail: str = ""


def _expand(job: str) -> list[str]:
    """``123_[0-3%2]`` / ``123_0-3%2`` / ``123_4`` -> the task ids it names."""
    m = re.fullmatch(r"(\d+)_\[?([0-9,\-]+)(?:%\d+)?\]?", job)
    if not m:
        return [job]
    base, out = m.group(1), []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition("-")
        out += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """Job id -> SLURM state (first word: ``CANCELLED by 0`` -> CANCELLED) for every id sacct knows."""
    bases = sorted({j.split("_")[0] for j in job_ids})
    if not bases:
        return {}
    proc = subprocess.run(["sacct", "-X", "-P", "-n", "-o", "JobID,State", "-j", ",".join(bases)],
                          capture_output=True, text=True, timeout=60)
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            for job in _expand(parts[0]):
                states.setdefault(job, parts[1].split()[0] if parts[1] else "UNKNOWN")
    return states


def _result(folder: Path, job_id: str):
    path = folder / f"{job_id}_0_result.pkl"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as e:  # a torn pickle is a result we cannot read, not a crash of --status
        return ("error", f"unreadable result {path}: {e}")


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
        return "submitit" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except (OSError, ValueError):
        return False


def log_tail(folder: Path, job_id: str, n: int = TAIL) -> str:
    """The last ``n`` non-empty lines of rank 0's stderr (where the trainer and submitit log)."""
    path = Path(folder) / f"{job_id}_0_log.err"
    if not path.is_file():
        return f"(no log {path})"
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def _from_job(info: dict, slurm: dict[str, str]) -> tuple[str, str]:
    folder, job_id = Path(info["folder"]), info["job_id"]
    result = _result(folder, job_id)
    if info["executor"] == "slurm":
        state = slurm.get(job_id, "UNKNOWN")
        if state in PENDING:
            return "pending", state.lower()
        if state in RUNNING:
            return "running", ""
        if state == "CANCELLED":
            return "cancelled", "cancelled (scancel or --cancel)"
        if state == "UNKNOWN" and result is None:
            return "unknown", f"sacct does not know job {job_id}"
    elif result is None and _alive(job_id):
        return "running", ""
    return "failed", log_tail(folder, job_id)  # ended without an export: the log says why


def states(out: Path, names: list[str]) -> list[PointState]:
    latest = record.latest_jobs(out)
    slurm = slurm_states([j["job_id"] for j in latest.values() if j["executor"] == "slurm"])
    rows = []
    for name in names:
        run_dir = Path(out) / "runs" / name
        ckpt = Checkpoints(run_dir / "checkpoints").latest() if (run_dir / "checkpoints").is_dir() else None
        info = latest.get(name)
        if (run_dir / "export" / "model.pt").is_file():
            rows.append(PointState(name, "done", info["job_id"] if info else "", ckpt or ""))
            continue
        if info is None:
            rows.append(PointState(name, "new", checkpoint=ckpt or ""))
            continue
        state, detail = _from_job(info, slurm)
        rows.append(PointState(name, state, info["job_id"], ckpt or "", detail))
    return rows


def format_table(rows: list[PointState]) -> str:
    width = max([len(r.name) for r in rows] + [5])
    lines = [f"{'point':<{width}}  {'state':<9}  {'job':<12}  checkpoint"]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.state:<9}  {r.job_id or '-':<12}  {r.checkpoint or '-'}")
        if r.state in ("failed", "unknown") and r.detail:
            lines += ["    | " + line for line in r.detail.splitlines()]
    counts = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)
