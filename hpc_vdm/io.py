"""Atomic outputs: write beside the target under a hidden temporary name, then rename into place.

A reader (or a crash) never sees half a file or half a store: either the old output, the new one, or
nothing. Temporary names start with ``.`` and carry the pid, so two writers never share one, and a
failed write removes its temporary before the error goes on.

    atomic_write_text(run_dir / "config.json", text)
    atomic_save(obj, path)                     # torch.save
    with atomic_dir(out / "samples.zarr") as tmp:
        zarr.open_group(str(tmp), mode="w") ...  # moved to out/samples.zarr on success
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator


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
