"""The run dir's guards and files: who may resume it, its logs, its resolved config.

A run dir with checkpoints is resumed only by the same model (the family's compared sections of the
config, and the same store statistics), and never overwritten: ``train.resume=false`` on it is an error.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ..config import ConfigError, RunConfig, describe, differing, from_dict, to_dict
from ..io import RUN, atomic_write_text, check_disjoint, check_unlocked, identify
from .checkpoint import Checkpoints



STARTED = {"checkpoints", "train.log"}  # what a run writes before its config.json (a start that was interrupted)


def check_not_foreign(run_dir: Path, store: str | Path) -> None:
    """The run dir is not the store, inside it or around it, and is new, empty, or a run dir (one a run wrote,
    or one whose start was interrupted: an empty checkpoints/ and train.log): never a folder of the user's."""
    check_disjoint(run_dir, [store])
    if not (run_dir.exists() or run_dir.is_symlink()) or identify(run_dir) == RUN:
        return
    if not run_dir.is_dir():
        raise FileExistsError(f"--run-dir {str(run_dir)!r} exists and is not a folder; choose another --run-dir")
    names = sorted(p.name for p in run_dir.iterdir())
    ckpts = run_dir / "checkpoints"
    if set(names) <= STARTED and not (ckpts.is_dir() and any(ckpts.iterdir())):
        return
    raise FileExistsError(f"--run-dir {str(run_dir)!r} holds {names[:6]}{' ...' if len(names) > 6 else ''} and is "
                          f"not an hpc_vdm run dir (a run dir is new, empty, or one a run wrote, with its "
                          f"config.json); choose another --run-dir (nothing was changed)")


def check_run_dir(cfg: RunConfig, run_dir: Path, store_attrs: dict, compared: tuple[str, ...]) -> None:
    """A run dir with checkpoints must be resumed by the same model and data, or left alone; one whose
    checkpoints are all unusable is an error that names each and why (nothing in it changes)."""
    check_unlocked(run_dir)
    check_not_foreign(run_dir, cfg.data.store)
    ckpts = Checkpoints(run_dir / "checkpoints")
    if cfg.train.resume and ckpts.tags():
        unusable = ckpts.unusable()
        if len(unusable) == len(ckpts.tags()):
            raise ValueError(f"no usable checkpoint in {str(run_dir / 'checkpoints')!r}: "
                             + "; ".join(f"{tag}: {why}" for tag, why in unusable.items())
                             + ". Nothing was changed; restore a checkpoint, or move the run dir aside and train "
                               "into a new --run-dir")
    tags = [t for t in ckpts.tags() if ckpts.manifest(t)]
    if not tags:
        return
    if not cfg.train.resume:
        raise FileExistsError(f"{str(run_dir)!r} already holds checkpoints ({tags[0]}) and train.resume=false; "
                              f"choose another --run-dir (nothing was changed)")
    meta = ckpts.manifest(tags[0])
    mine, theirs = to_dict(cfg), _resolved(meta["config"])
    diff = differing({s: theirs.get(s, {}) for s in compared}, {s: mine[s] for s in compared})
    text = describe(diff, ("checkpoint", "this run")) if diff else ""
    if meta["store"].get("stats") != store_attrs.get("stats"):
        text += ("; " if text else "") + "data statistics of the store differ (another maps.zarr)"
    if text:
        raise ConfigError(f"{str(run_dir / 'checkpoints' / tags[0])!r} was written by another model or config: "
                          f"{text}. Use a new --run-dir to train this one.")


def _resolved(stored: dict) -> dict:
    """A checkpoint's config in today's layout with today's defaults for keys it predates."""
    try:
        return to_dict(from_dict(stored))
    except ConfigError:  # a config this version cannot read: compare it as it is
        return stored


def write_configs(run_dir: Path, cfg: RunConfig, ds_config: dict) -> None:
    atomic_write_text(run_dir / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n")
    atomic_write_text(run_dir / "ds_config.json", json.dumps(ds_config, indent=2) + "\n")


def log_to_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger("hpc_vdm").addHandler(handler)
    return handler
