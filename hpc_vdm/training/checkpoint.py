"""Run-dir checkpoints around DeepSpeed's: complete before ``latest`` moves, verified on resume, portable.

Layout of ``run_dir/checkpoints``::

    step00001000/            DeepSpeed's files (every rank writes its shard) + COMPLETE.json (manifest)
    step00001000_universal/  made on demand when a run resumes on another world size
    latest                   the newest complete tag, replaced atomically after COMPLETE.json exists
    best.json                the tag with the best validation score (train.select_on; never pruned)

A tag counts only when COMPLETE.json exists and every file it lists has its size and SHA-256; a torn or
corrupt newest checkpoint is skipped for the previous one. Every rank must call :meth:`save`.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from .. import dist
from ..io import atomic_write_text, sha256_file

log = logging.getLogger(__name__)

MANIFEST = "COMPLETE.json"
TAG_RE = re.compile(r"^step(\d{8})$")


# The only classes DeepSpeed's checkpoint files hold beyond tensors and plain data (ZeRO 0-3, fp32 and bf16;
# DeepSpeed itself loads them with weights_only=False, so every file is first read with a safe unpickler).
DEEPSPEED_GLOBALS = ("deepspeed.runtime.fp16.loss_scaler.LossScaler", "deepspeed.runtime.zero.config.ZeroStageEnum",
                     "deepspeed.utils.tensor_fragment.fragment_address")


def safe_load(path: Path):
    """``torch.load`` that runs no code: tensors, plain data and DeepSpeed's known state classes only."""
    import importlib

    allowed = [getattr(importlib.import_module(m), a) for m, a in (n.rsplit(".", 1) for n in DEEPSPEED_GLOBALS)]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def unsafe(path: Path) -> str | None:
    """Why a checkpoint file may not be unpickled (objects beyond weights: it could run code), or None."""
    try:
        safe_load(path)
    except pickle.UnpicklingError as e:
        return f"holds objects other than weights and DeepSpeed's state; refused ({str(e).splitlines()[0][:200]})"
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as e:
        return f"is not a readable torch file ({str(e).splitlines()[0][:200] or type(e).__name__})"
    return None


def tag_for(step: int) -> str:
    return f"step{step:08d}"


class Checkpoints:
    """The checkpoints of one run dir (``root`` = run_dir/checkpoints)."""

    def __init__(self, root: str | Path, *, rank: int = 0, world: int = 1, keep_last: int = 3):
        self.root, self.rank, self.world, self.keep_last = Path(root), rank, world, keep_last

    # -- reading ---------------------------------------------------------------------------------
    def tags(self) -> list[str]:
        """Tags on disk, newest step first (complete or not)."""
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir() if p.is_dir() and TAG_RE.match(p.name)), reverse=True)

    def manifest(self, tag: str) -> dict | None:
        path = self.root / tag / MANIFEST
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def verify(self, tag: str) -> str | None:
        """None when ``tag`` is complete and intact, else why not."""
        meta = self.manifest(tag)
        if meta is None:
            return "no COMPLETE.json (the save did not finish)"
        for rel, (size, digest) in meta["files"].items():
            path = self.root / tag / rel
            if not path.is_file():
                return f"{rel} is missing"
            if path.stat().st_size != size:
                return f"{rel} has {path.stat().st_size} bytes, the manifest says {size}"
            if sha256_file(path) != digest:
                return f"{rel} fails its SHA-256 check"
        for rel in meta["files"]:
            if rel.endswith(".pt"):
                why = unsafe(self.root / tag / rel)
                if why:
                    return f"{rel} {why}"
        return None

    def latest(self) -> str | None:
        path = self.root / "latest"
        return path.read_text().strip() if path.is_file() else None

    def newest_intact(self) -> str | None:
        """The newest intact tag: ``latest`` first, then older ones (local; no communication)."""
        latest = self.latest()
        for tag in ([latest] if latest else []) + [t for t in self.tags() if t != latest]:
            why = self.verify(tag)
            if why is None:
                return tag
            log.warning("checkpoint %s is unusable (%s); trying the previous one", tag, why)
        return None

    def unusable(self) -> dict[str, str]:
        """{tag: why} of the unusable tags, in :meth:`newest_intact` order, up to the first intact one."""
        latest = self.latest()
        found = {}
        for tag in ([latest] if latest in self.tags() else []) + [t for t in self.tags() if t != latest]:
            why = self.verify(tag)
            if why is None:
                break
            found[tag] = why
        return found

    def find_resumable(self) -> str | None:
        """:meth:`newest_intact` as decided by rank 0, so that all ranks agree (collective)."""
        return dist.broadcast_object(self.newest_intact() if self.rank == 0 else None)

    # -- writing ---------------------------------------------------------------------------------
    def save(self, engine, step: int, client_state: dict, *, extra_files: dict | None = None,
             meta: dict | None = None, protect: set[str] = frozenset()) -> str:
        """All ranks: DeepSpeed save, barrier, then rank 0 writes ``extra_files`` (name -> object, torch.save),
        the manifest (with ``meta``), moves ``latest`` and prunes."""
        tag = tag_for(step)
        t0 = time.time()
        if self.rank == 0 and (self.root / tag).exists():  # a re-save of the same step (e.g. after a crash)
            shutil.rmtree(self.root / tag)
        dist.barrier()
        engine.save_checkpoint(str(self.root), tag=tag, client_state=client_state, save_latest=False)
        dist.barrier()
        if self.rank == 0:
            folder = self.root / tag
            for name, obj in (extra_files or {}).items():
                torch.save(obj, folder / name)
            files = {str(p.relative_to(folder)): (p.stat().st_size, sha256_file(p))
                     for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
            meta = {"step": step, "world": self.world,
                    "zero_stage": engine.zero_optimization_stage(), "time": time.time(), **(meta or {}),
                    "files": files}
            atomic_write_text(folder / MANIFEST, json.dumps(meta, indent=1))
            atomic_write_text(self.root / "latest", tag + "\n")
            self.prune(protect | {tag})
            log.info("checkpoint %s written in %.1f s", tag, time.time() - t0)
        dist.barrier()
        return tag

    def prune(self, protect: set[str]) -> None:
        best = self.best()
        keep = set(self.tags()[: self.keep_last]) | set(protect) | ({best["tag"]} if best else set())
        for tag in self.tags():
            if tag not in keep:
                shutil.rmtree(self.root / tag, ignore_errors=True)
                shutil.rmtree(self.root / f"{tag}_universal", ignore_errors=True)

    def best(self) -> dict | None:
        path = self.root / "best.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def mark_best(self, tag: str, metric: str, value: float) -> None:
        if self.rank == 0:
            atomic_write_text(self.root / "best.json", json.dumps({"tag": tag, "metric": metric, "value": value}))

    # -- other world sizes -----------------------------------------------------------------------
    def universal(self, tag: str) -> Path:
        """Rank 0 converts ``tag`` to DeepSpeed's universal (world-size independent) format once;
        returns the folder to pass to ``load_checkpoint(folder, tag)``."""
        out = f"{tag}_universal"
        if self.rank == 0 and not (self.root / out / MANIFEST).is_file():
            tmp = self.root / f".{out}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("converting %s to a universal checkpoint (resuming on another world size)", tag)
            cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder",
                   str(self.root / tag), "--output_folder", str(tmp / tag), "--num_extract_workers", "1",
                   "--num_merge_workers", "1"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"universal conversion of {tag} failed:\n{proc.stderr[-2000:]}")
            (tmp / MANIFEST).write_text(json.dumps({"from": tag}))
            shutil.rmtree(self.root / out, ignore_errors=True)
            os.replace(tmp, self.root / out)
        dist.barrier()
        return self.root / out
