"""A sweep's state in files: ``sweep.json`` (which sweep owns the folder), ``jobs.json`` (what was submitted).

The output folder::

    sweep.json           the spec's identity and the points (name, axis values, overrides)
    jobs.json            every submission: executor, submitit folder, job id per point
    runs/<point>/        one run dir per point (the trainer's: checkpoints/, metrics.csv, export/model.pt)
    submitit/<n>/        submission n's submitit folder (pickles, logs) and code/ (the snapshot it runs)

A folder that holds another sweep (a different base, set or axes), or files that are not a sweep, is
refused before anything is written, naming what differs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import describe, differing
from ..io import atomic_write_text
from .points import Point
from .spec import Spec

MANIFEST, JOBS = "sweep.json", "jobs.json"


def check_folder(spec: Spec, points: list[Point]) -> bool:
    """True when ``spec.out`` already holds this sweep, False when it is new; raises when it holds another."""
    out = spec.out
    if not out.exists():
        return False
    if not out.is_dir():
        raise FileExistsError(f"sweep output {str(out)!r} is a file, not a folder")
    manifest = out / MANIFEST
    if not manifest.is_file():
        if any(out.iterdir()):
            raise FileExistsError(f"sweep output {str(out)!r} holds files but no {MANIFEST}: it is not a sweep "
                                  f"folder; choose another out (nothing was changed)")
        return False
    theirs = json.loads(manifest.read_text())
    diff = differing(theirs["spec"], _plain(spec.identity()))
    if diff:
        raise FileExistsError(f"sweep output {str(out)!r} holds another sweep ({theirs.get('file')}): "
                              f"{describe(diff, ('there', 'this sweep'))}; choose another out (nothing was changed)")
    return True


def _plain(obj):
    return json.loads(json.dumps(obj))


def write_manifest(spec: Spec, points: list[Point]) -> None:
    spec.out.mkdir(parents=True, exist_ok=True)
    if (spec.out / MANIFEST).is_file():
        return
    text = json.dumps({"file": str(spec.path), "spec": _plain(spec.identity()),
                       "points": [p.to_json() for p in points]}, indent=2)
    atomic_write_text(spec.out / MANIFEST, text + "\n")


def read_manifest(out: Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found: this sweep was never submitted (or out differs)")
    return json.loads(path.read_text())


def submissions(out: Path) -> list[dict]:
    path = Path(out) / JOBS
    return json.loads(path.read_text())["submissions"] if path.is_file() else []


def next_folder(out: Path) -> Path:
    """A fresh submitit folder: job ids restart after a SLURM state wipe, so folders are never reused."""
    root = Path(out) / "submitit"
    n = len(submissions(out))
    while (root / str(n)).exists():
        n += 1
    return root / str(n)


def add_submission(out: Path, executor: str, folder: Path, jobs: dict[str, str]) -> None:
    """Record job ids; jobs of the same submitit folder (local waves) join that submission."""
    subs = submissions(out)
    if subs and subs[-1]["folder"] == str(folder):
        subs[-1]["jobs"].update(jobs)
    else:
        subs.append({"index": len(subs), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "executor": executor,
                     "folder": str(folder), "jobs": jobs})
    atomic_write_text(Path(out) / JOBS, json.dumps({"submissions": subs}, indent=2) + "\n")


def latest_jobs(out: Path) -> dict[str, dict]:
    """Point name -> {job_id, executor, folder} of the point's newest submission."""
    latest = {}
    for sub in submissions(out):
        for name, job_id in sub["jobs"].items():
            latest[name] = {"job_id": job_id, "executor": sub["executor"], "folder": sub["folder"]}
    return latest
