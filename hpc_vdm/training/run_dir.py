"""The run dir's guards and files: who may resume it, its logs, its resolved config.

A run dir with checkpoints is resumed only by the same model (the task's compared sections of the
config, and the same store statistics), and never overwritten: ``train.resume=false`` on it is an error.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ..config import ConfigError, RunConfig, describe, differing, to_dict
from ..io import atomic_write_text
from .checkpoint import Checkpoints


def check_run_dir(cfg: RunConfig, run_dir: Path, store_attrs: dict, compared: tuple[str, ...]) -> None:
    """A run dir with checkpoints must be resumed by the same model and data, or left alone."""
    ckpts = Checkpoints(run_dir / "checkpoints")
    tags = [t for t in ckpts.tags() if ckpts.manifest(t)]
    if not tags:
        return
    if not cfg.train.resume:
        raise FileExistsError(f"{str(run_dir)!r} already holds checkpoints ({tags[0]}) and train.resume=false; "
                              f"choose another --run-dir (nothing was changed)")
    meta = ckpts.manifest(tags[0])
    mine = to_dict(cfg)
    diff = differing({s: meta["config"].get(s, {}) for s in compared}, {s: mine[s] for s in compared})
    text = describe(diff, ("checkpoint", "this run")) if diff else ""
    if meta["store"].get("stats") != store_attrs.get("stats"):
        text += ("; " if text else "") + "data statistics of the store differ (another maps.zarr)"
    if text:
        raise ConfigError(f"{str(run_dir / 'checkpoints' / tags[0])!r} was written by another model or config: "
                          f"{text}. Use a new --run-dir to train this one.")


def write_configs(run_dir: Path, cfg: RunConfig, ds_config: dict) -> None:
    atomic_write_text(run_dir / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n")
    atomic_write_text(run_dir / "ds_config.json", json.dumps(ds_config, indent=2) + "\n")


def log_to_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger("hpc_vdm").addHandler(handler)
    return handler
