"""The bad-input table's machinery: a row, the kinds of failure it stands for, and builders of its inputs.

A row builds its inputs under the row's own folder ``t`` (the shared, read-only inputs are in ``c``, the
context of tests/test_bad_inputs.py) and returns the command line; the runner checks the rest.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

# the kinds of the issue (#22); "input" and "config" are the earlier rounds' rows
KINDS = {"destroyed": "would destroy user data", "nonfinite": "a NaN or inf accepted",
         "placement": "an output where it must not go", "quiet": "wrong but quiet",
         "traceback": "ended in a traceback", "vague": "a message naming neither the thing nor the value",
         "leftover": "refused, but something left behind", "size": "a size that cannot fit",
         "input": "a bad input", "config": "a bad config value"}


@dataclass
class Row:
    id: str
    command: str
    build: Callable          # (ctx, tmp) -> argv
    match: str               # regex: the message names the thing and the value
    kind: str = "input"


def text(tmp: Path, name: str, content: str | bytes) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return p


def loop(tmp: Path, name: str) -> Path:
    """A symlink loop named ``name`` (a -> b -> a)."""
    a, b = tmp / name, tmp / f"{name}.other"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def cube(n: int = 16, seed: int = 0, scale: float = 1e9) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, n, n)) * scale).astype(np.float32)


def h5(path: Path, datasets: dict, groups=(), attrs: dict | None = None) -> Path:
    """An HDF5 file with ``datasets`` {key: array}, empty ``groups`` and root ``attrs``."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
        for g in groups:
            f.require_group(g)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path


def bad_array(kind: str, base: np.ndarray) -> np.ndarray:
    """``base`` made bad in one way: nan, inf, negative, complex, bool, int, compound, object, 2d."""
    a = np.array(base)
    if kind in ("nan", "inf", "negative"):
        a.flat[a.size // 3] = {"nan": np.nan, "inf": np.inf, "negative": -2.0}[kind]
        return a
    if kind == "complex":
        return a.astype(np.complex64)
    if kind == "bool":
        return a > np.median(a)
    if kind == "int":
        return a.astype(np.int32)
    if kind == "compound":
        out = np.zeros(a.shape, dtype=[("m", "f4"), ("x", "f4")])
        out["m"] = a
        return out
    if kind == "2d":
        return a.reshape(a.shape[0], -1)
    raise ValueError(kind)


def save_npy(path: Path, a: np.ndarray) -> Path:
    np.save(path, a, allow_pickle=a.dtype == object)
    return path


def sweep_file(tmp: Path, body: str, base: str) -> Path:
    return text(tmp, "sweep.yaml", f"base: {base}\nout: {tmp / 'out_sweep'}\n{body}")


def edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
