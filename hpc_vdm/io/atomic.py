"""Atomic writes: a reader (or a crash) never sees half a file or half a store, and failed writes say why.

Temporary names start with ``.`` and carry the pid, so two writers never share one, and a failed write
removes its temporary before the error goes on. :func:`writing` turns a full, read-only or forbidden
filesystem into one clear error.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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


def read_json(path: Path):
    """A JSON file as data, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
