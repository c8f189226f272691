"""Safe outputs: atomic writes, output kinds by marker, one writer per output, clear errors on failed writes.

A reader (or a crash) never sees half a file or half a store: either the old output, the new one, or
nothing. Temporary names start with ``.`` and carry the pid, so two writers never share one, and a
failed write removes its temporary before the error goes on.

    atomic_write_text(run_dir / "config.json", text)
    atomic_save(obj, path)                     # torch.save
    with atomic_dir(out / "samples.zarr") as tmp:
        zarr.open_group(str(tmp), mode="w") ...  # moved to out/samples.zarr on success

Before a command writes, :func:`check_output` refuses a path that is an input, holds something that is
not an output of the same kind (recognised by its ``format`` marker, :func:`identify`), or exists
without ``--overwrite``; :func:`acquire_lock` makes the command the output's only writer, and
:func:`writing` turns a full, read-only or forbidden filesystem into one clear error.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("hpc_vdm.io")


def temp_path(path: str | Path) -> Path:
    """A hidden, unique sibling of ``path`` (same filesystem, so the final rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}-{uuid.uuid4().hex[:6]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path`` (replacing a file); the temporary never survives."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_save(obj, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed to ``path`` when the block succeeds, removed otherwise.

    ``replace=True`` swaps out an existing ``path`` (the caller has checked that it may); otherwise an
    existing ``path`` is an error and nothing is moved.
    """
    path = Path(path)
    tmp = temp_path(path)
    tmp.mkdir(parents=False)
    try:
        yield tmp
        if path.exists():
            if not replace:
                raise FileExistsError(f"{str(path)!r} appeared while it was being written (another writer?); "
                                      f"the new output was discarded")
            old = temp_path(path)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


# -- writes that fail for reasons outside the program ---------------------------------------------------
WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


class OutputError(Exception):
    """An output could not be written: no permission, a full or read-only filesystem."""


@contextlib.contextmanager
def writing(path: str | Path, note: str = "no partial output was kept") -> Iterator[None]:
    """Turn a failed write under ``path`` (permission, full or read-only filesystem) into one clear error
    ending in ``note`` (what is left). Use it outside :func:`atomic_write`/:func:`atomic_dir`, whose
    temporaries are removed first."""
    try:
        yield
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(f"cannot write {str(path)!r}: {os.strerror(e.errno)} ({errno.errorcode[e.errno]}); "
                          f"{note}") from None


# -- output kinds, recognised by their markers ------------------------------------------------------------
MAPS, TILE, SAMPLES, SUMMARY = "maps store", "tile store", "samples store", "sample summary"
SPECTRA, MODEL, RUN, FIGURE = "spectra file", "model file", "run dir", "figure"
FIGURE_METADATA = {"Software": "hpc_vdm figure"}  # savefig(..., metadata=FIGURE_METADATA): a PNG tEXt chunk
FORMATS = {"hpc_vdm.maps/1": MAPS, "hpc_vdm.tile/1": TILE, "hpc_vdm.samples/1": SAMPLES,
           "hpc_vdm.sample_summary/1": SUMMARY, "hpc_vdm.spectra/1": SPECTRA}
MAPS_KEYS = {"fields", "splits", "stats", "maps_per_sim"}  # maps stores written before the format marker


def marker(kind: str) -> str:
    """The ``format`` value that marks an output of ``kind``."""
    return {v: k for k, v in FORMATS.items()}[kind]


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _torch_format(path: Path) -> str | None:
    """The ``format`` string inside a torch zip file written by hpc_vdm (without loading it)."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
            data = z.read(pkl) if pkl else b""
    except (OSError, zipfile.BadZipFile):
        return None
    found = re.search(rb"hpc_vdm\.export/\d+", data)
    return found.group().decode() if found else None


def identify(path: str | Path) -> str | None:
    """The kind of hpc_vdm output at ``path`` by its marker, or None for anything else."""
    path = Path(path)
    if path.is_dir():
        meta = _json(path / "zarr.json")
        if isinstance(meta, dict):
            attrs = meta.get("attributes", {})
            kind = FORMATS.get(attrs.get("format"))
            return kind if kind in (MAPS, TILE, SAMPLES) else MAPS if MAPS_KEYS <= attrs.keys() else None
        cfg = _json(path / "config.json")
        if isinstance(cfg, dict) and {"data", "model", "train"} <= cfg.keys():
            return RUN
        return RUN if (path / "checkpoints" / "latest").is_file() else None
    if not path.is_file():
        return None
    if path.suffix == ".json":
        doc = _json(path)
        return FORMATS.get(doc.get("format")) if isinstance(doc, dict) else None
    if path.suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as f:
                return FORMATS.get(str(f["format"])) if "format" in f.files else None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
    if path.suffix == ".png":
        with open(path, "rb") as f:
            head = f.read(4096)
        ours = head.startswith(b"\x89PNG\r\n\x1a\n") and FIGURE_METADATA["Software"].encode() in head
        return FIGURE if ours else None
    return MODEL if _torch_format(path) else None


def save_figure(fig, png: str | Path, **kw) -> Path:
    """``fig.savefig`` to ``png`` atomically, marked as an hpc_vdm figure."""
    return atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", metadata=FIGURE_METADATA, **kw))


def _what(path: Path, kind: str | None) -> str:
    if kind is not None:
        return f"an hpc_vdm {kind}"
    if path.is_dir():
        return "a folder that is not an hpc_vdm output" if any(path.iterdir()) else "an empty folder"
    return "a file that is not an hpc_vdm output" if path.is_file() else "not a plain file or folder"


def check_disjoint(path: str | Path, inputs) -> None:
    """``path`` is not one of ``inputs``, inside one, or around one (symlinks resolved)."""
    out = Path(path).resolve()
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if out == src or src in out.parents or out in src.parents:
            how = "is" if out == src else "lies inside" if src in out.parents else "contains"
            raise ValueError(f"refusing to write {str(path)!r}: it {how} the input {str(given)!r}; choose an "
                             f"output outside the inputs (nothing was written)")


def check_output(path: str | Path, kind: str, *, inputs=(), overwrite: bool = False, reuse: bool = False) -> bool:
    """Before anything is written: may ``path`` receive an output of ``kind``? True if it exists.

    Refused: a path that is, contains or lies inside one of ``inputs`` (symlinks resolved); an existing
    path that is not an output of ``kind`` by its marker; one of ``kind`` without ``overwrite`` (or
    ``reuse``, for outputs that are resumed rather than replaced: run dirs, tile stores).
    """
    path = Path(path)
    check_disjoint(path, inputs)
    if not (path.exists() or path.is_symlink()):
        return False
    found = identify(path)
    if reuse and found is None and path.is_dir() and not any(path.iterdir()):
        return False
    if found != kind:
        raise FileExistsError(f"{str(path)!r} exists and is {_what(path, found)}, not an hpc_vdm {kind}; it is "
                              f"never replaced: choose another output or remove it yourself (nothing was written)")
    if not (overwrite or reuse):
        raise FileExistsError(f"{str(path)!r} exists (an hpc_vdm {kind}); pass --overwrite to replace it or "
                              f"choose another output (nothing was written)")
    return True


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
    """A held output lock; :meth:`release` removes it only if it is still this holder's."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder

    def release(self) -> None:
        if (_json(self.path) or {}).get("token") == self.holder["token"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

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


def acquire_lock(path: str | Path, extra: dict | None = None) -> Lock:
    """Take the lock of output ``path`` (atomic create) or raise naming its holder; stale locks are taken over.
    ``extra`` is recorded with the holder (e.g. the launch, so other ranks can tell their own rank 0)."""
    path = Path(path)
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": " ".join(sys.argv)[:300],
          "token": uuid.uuid4().hex, "slurm_job": os.environ.get("SLURM_JOB_ID"),
          "slurm_restart": os.environ.get("SLURM_RESTART_COUNT", "0"), **(extra or {})}
    for _ in range(5):
        if _link_new(lock, me):
            _sweep_temporaries(path)
            return Lock(lock, me)
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
