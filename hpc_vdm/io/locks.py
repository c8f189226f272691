"""One writer per output: a lock file beside it (host, pid, start, SLURM job); stale locks are taken over."""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from .atomic import _remove, read_json as _json, temp_path

log = logging.getLogger("hpc_vdm.io")

# -- one writer per output -----------------------------------------------------------------------------------
def lock_path(path: str | Path) -> Path:
    """The lock of an output: a hidden file beside it (``.maps.zarr.lock``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def holder_text(h: dict) -> str:
    age = _age(max(time.time() - float(h.get("time", time.time())), 0.0))
    return f"pid {h.get('pid')} on host {h.get('host')}, started {h.get('started')} ({age} ago): {h.get('argv')}"


def _why_stale(h: dict) -> str | None:
    """Why the holder of a lock is gone (same host, pid not running; same SLURM job, later restart), or None."""
    if h.get("host") == socket.gethostname():
        try:
            os.kill(int(h["pid"]), 0)
        except ProcessLookupError:
            return f"pid {h['pid']} is not running on this host"
        except PermissionError:  # alive, another user's
            return None
        return None
    job, restart = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_RESTART_COUNT", "0")
    if job and h.get("slurm_job") == job and h.get("slurm_restart") != restart:
        return f"SLURM job {job} was requeued (restart {h.get('slurm_restart')} -> {restart})"
    return None


def _link_new(lock: Path, content: dict) -> bool:
    """Create ``lock`` holding ``content`` atomically (hard link of a written temporary); False if it exists."""
    tmp = temp_path(lock)
    try:
        tmp.write_text(json.dumps(content))
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class Lock:
    """A held output lock; :meth:`release` removes it only if it is still this holder's, and then the folders
    that taking it created, if they are still empty (a refused or failed run leaves no new folders)."""

    def __init__(self, path: Path, holder: dict, made: list[Path] = ()):
        self.path, self.holder, self.made = path, holder, list(made)

    def release(self) -> None:
        if self.holder.get("token") and (_json(self.path) or {}).get("token") == self.holder["token"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for folder in self.made:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take_over(lock: Path, stale: dict) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile (one taker at a time)."""
    guard = lock.with_name(lock.name + ".takeover")
    with contextlib.suppress(FileNotFoundError):
        if time.time() - guard.stat().st_mtime > 60:  # a taker that died within this block
            guard.unlink()
    if not _link_new(guard, {"pid": os.getpid()}):
        return
    try:
        if (_json(lock) or {}).get("token") == stale.get("token"):
            lock.unlink()
    finally:
        guard.unlink()


def read_lock(path: str | Path) -> dict | None:
    """The holder of the lock of output ``path``, or None when it is free (or unreadable)."""
    return _json(lock_path(path))


def is_stale(holder: dict) -> bool:
    return _why_stale(holder) is not None


def _held(path: Path, holder: dict) -> FileExistsError:
    remote = holder.get("host") != socket.gethostname()
    hint = (f"; if that process is no longer running, remove {str(lock_path(path))!r} and rerun" if remote else
            "; wait for it to finish or stop it")
    return FileExistsError(f"{str(path)!r} is being written by another command: {holder_text(holder)}{hint}")


def check_unlocked(path: str | Path) -> None:
    """Raise naming the holder if a live process holds the lock of ``path`` (a read-only early check)."""
    holder = read_lock(path)
    if holder and not is_stale(holder):
        raise _held(Path(path), holder)


def _sweep_temporaries(path: Path) -> None:
    """Remove the temporaries of ``path`` that a killed writer left (only a lock holder writes them)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        log.warning("removing %s, left by an interrupted writer of %s", tmp, path)
        _remove(tmp)


def missing_folders(folder: Path) -> list[Path]:
    """The folders that ``folder.mkdir(parents=True)`` would create, deepest first."""
    out, folder = [], Path(folder).absolute()
    while not (folder.exists() or folder.is_symlink()) and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


def acquire_lock(path: str | Path, extra: dict | None = None) -> Lock:
    """Take the lock of output ``path`` (atomic create) or raise naming its holder; stale locks are taken over.
    ``extra`` is recorded with the holder (e.g. the launch, so other ranks can tell their own rank 0). The
    folders made for the lock are removed again when it cannot be taken (or when it is released, if empty)."""
    path = Path(path)
    lock = lock_path(path)
    made = missing_folders(lock.parent)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": " ".join(sys.argv)[:300],
          "token": uuid.uuid4().hex, "slurm_job": os.environ.get("SLURM_JOB_ID"),
          "slurm_restart": os.environ.get("SLURM_RESTART_COUNT", "0"), **(extra or {})}
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return _take(path, lock, me, made)
    except BaseException:
        Lock(lock, {"token": None}, made).release()  # removes only the (empty) folders made here
        raise


def _take(path: Path, lock: Path, me: dict, made: list[Path]) -> Lock:
    for _ in range(5):
        if _link_new(lock, me):
            _sweep_temporaries(path)
            return Lock(lock, me, made)
        holder = _json(lock)
        if holder is None and lock.exists():
            raise FileExistsError(f"{str(path)!r} is locked by {str(lock)!r}, which is not a readable lock; if no "
                                  f"hpc_vdm command is writing {str(path)!r}, remove {str(lock)!r} and rerun")
        if holder is None:  # released meanwhile
            continue
        why = _why_stale(holder)
        if why is None:
            raise _held(path, holder)
        log.warning("taking over the stale lock %s (%s): %s", lock, why, holder_text(holder))
        _take_over(lock, holder)
    raise FileExistsError(f"could not take the lock {str(lock)!r} of {str(path)!r}: other writers keep taking it")
