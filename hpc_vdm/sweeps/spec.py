"""A sweep file: which base config, which axes of ``--set`` overrides, which resources.

A sweep YAML (read with the project's safe loader) has these keys; only ``base`` and one axis are required::

    base: ../train_tiny.yaml          # run config, relative to the sweep file
    out: runs/sweeps/tiny_lr_width    # output folder (default runs/sweeps/<file stem>)
    set: [train.steps=6]              # overrides of every point
    grid:                             # Cartesian product of lists
      train.lr: [1.0e-3, 3.0e-4]
      model.channels: [8, 16]
    zip:                              # equal-length lists that vary together (one more axis)
      model.channels: [8, 16]
      model.norm_groups: [4, 8]
    draws:                            # random or Latin-hypercube draws (one more axis of n points)
      method: lhs                     # random | lhs
      n: 4
      seed: 0
      params:
        train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
        model.dropout: {low: 0.0, high: 0.2}
        model.channels: {choices: [8, 16]}
    seeds: [0, 1]                     # train.seed values (one more axis)
    resources: {...}                  # see Resources

The axes are crossed: points = grid x zip x draws x seeds. Everything is checked here, before anything
is written or submitted; :mod:`.points` then builds (and validates) every point's config.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, from_dict, param, read_yaml

KEYS = ("base", "out", "set", "grid", "zip", "draws", "seeds", "resources")
DRAW_KEYS = ("method", "n", "seed", "params")
PARAM_KEYS = ("low", "high", "log", "int", "choices")


@dataclass
class Resources:
    """What one array task (one point) asks SLURM for; the same numbers drive the local executor."""

    partition: str = param("", "SLURM partition ('' = the cluster's default)")
    account: str = param("", "SLURM account ('' = the user's default)")
    qos: str = param("", "SLURM quality of service ('' = the default)")
    constraint: str = param("", "SLURM node features (--constraint), e.g. a100")
    nodes: int = param(1, "nodes per point", range=(1, 4096))
    gpus_per_node: int = param(0, "GPUs per node; one task (rank) per GPU", range=(0, 64))
    tasks_per_node: int = param(0, "ranks per node (0 = gpus_per_node, or 1 without GPUs)", range=(0, 1024))
    cpus_per_task: int = param(1, "CPUs per rank (data loading, OMP threads)", range=(1, 1024))
    mem_gb: float = param(4.0, "memory per node [GB]", range=(0.1, None))
    time_min: int = param(60, "time limit of one run of a task [minutes]; on it the task checkpoints and requeues",
                          range=(1, None))
    array_parallelism: int = param(64, "array tasks that run at once", range=(1, None))
    signal_delay_s: int = param(120, "USR2 this many seconds before the time limit (the checkpoint's head start)",
                                range=(1, None))
    max_requeues: int = param(3, "time-limit requeues of one task (submitit max_num_timeout)", range=(0, 1000))
    setup: list[str] = param([], "shell lines run in the batch script before the tasks start (module load ...)")
    env: dict[str, str] = param({}, "environment variables of every task (OMP_NUM_THREADS, DS_ACCELERATOR, ...)")

    @property
    def ranks_per_node(self) -> int:
        return self.tasks_per_node or self.gpus_per_node or 1


@dataclass(frozen=True)
class Draw:
    """One drawn parameter: uniform in [low, high] (log-uniform when ``log``), or one of ``choices``."""

    key: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    integer: bool = False
    choices: tuple = ()


@dataclass
class Spec:
    """A parsed sweep file; ``identity()`` is what makes two specs the same sweep."""

    path: Path
    base: Path
    out: Path
    fixed: list[str]
    grid: dict[str, list]
    zipped: dict[str, list]
    draws: list[Draw]
    n_draws: int
    draw_method: str
    draw_seed: int
    seeds: list[int]
    resources: Resources = field(default_factory=Resources)

    def identity(self) -> dict:
        """The part of the spec that fixes the points (resources may change between submissions)."""
        return {"base": str(self.base), "set": list(self.fixed), "grid": self.grid, "zip": self.zipped,
                "draws": {"method": self.draw_method, "n": self.n_draws, "seed": self.draw_seed,
                          "params": {d.key: _draw_dict(d) for d in self.draws}},
                "seeds": list(self.seeds)}

    def axis_keys(self) -> list[str]:
        return list(self.grid) + list(self.zipped) + [d.key for d in self.draws] + (["train.seed"] if self.seeds else [])


def _draw_dict(d: Draw) -> dict:
    if d.choices:
        return {"choices": list(d.choices)}
    return {"low": d.low, "high": d.high, "log": d.log, "int": d.integer}


def _unknown(what: str, keys, valid) -> None:
    for k in keys:
        if k not in valid:
            close = difflib.get_close_matches(str(k), list(valid), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {list(valid)}"
            raise ConfigError(f"unknown {what} key {k!r}{hint}")


def _axis_lists(raw: Any, name: str) -> dict[str, list]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping of config keys to lists, got {raw!r}")
    out = {}
    for key, values in raw.items():
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"{name}: axis {key!r} is not a section.key config key")
        if not isinstance(values, list):
            raise ConfigError(f"{name}.{key}: expected a list of values, got {values!r}")
        if not values:
            raise ConfigError(f"{name}.{key}: empty list (an axis needs at least one value)")
        out[key] = values
    return out


def _parse_draw(key: str, raw: Any) -> Draw:
    if not isinstance(raw, dict):
        raise ConfigError(f"draws.params.{key}: expected {{low, high[, log, int]}} or {{choices: [...]}}, got {raw!r}")
    _unknown(f"draws.params.{key}", raw, PARAM_KEYS)
    if "choices" in raw:
        if not isinstance(raw["choices"], list) or not raw["choices"]:
            raise ConfigError(f"draws.params.{key}.choices: expected a non-empty list, got {raw['choices']!r}")
        return Draw(key, choices=tuple(raw["choices"]))
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except KeyError as e:
        raise ConfigError(f"draws.params.{key}: missing {e.args[0]!r} (give low and high, or choices)") from None
    except (TypeError, ValueError):
        raise ConfigError(f"draws.params.{key}: low and high must be numbers, got {raw!r}") from None
    if not low < high:
        raise ConfigError(f"draws.params.{key}: expected low < high, got low={low!r}, high={high!r}")
    log = raw.get("log", False)
    if log is not True and log is not False:
        raise ConfigError(f"draws.params.{key}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"draws.params.{key}: a log draw needs low > 0, got low={low!r}")
    return Draw(key, low, high, log=log, integer=bool(raw.get("int", False)))


def _parse_draws(raw: Any) -> tuple[list[Draw], int, str, int]:
    if raw is None:
        return [], 0, "random", 0
    if not isinstance(raw, dict):
        raise ConfigError(f"draws: expected a mapping {{method, n, seed, params}}, got {raw!r}")
    _unknown("draws", raw, DRAW_KEYS)
    method, n, seed = raw.get("method", "random"), raw.get("n"), raw.get("seed", 0)
    if method not in ("random", "lhs"):
        raise ConfigError(f"draws.method: expected 'random' or 'lhs' (Latin hypercube), got {method!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"draws.n: expected a number of draws >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"draws.seed: expected an int >= 0, got {seed!r}")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"draws.params: expected a non-empty mapping of config keys to ranges, got {params!r}")
    return [_parse_draw(k, v) for k, v in params.items()], n, method, seed


def _parse_seeds(raw: Any) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"seeds: expected a non-empty list of train.seed values, got {raw!r}")
    for s in raw:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds: expected ints >= 0, got {s!r}")
    return list(raw)


def load_spec(path: str | Path, extra_set: list[str] = (), out: str | None = None) -> Spec:
    """Parse and check a sweep file; ``extra_set`` (``--set`` on the command line) joins its ``set``."""
    path = Path(path).resolve()
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        raise ConfigError(f"sweep file {str(path)!r}: expected a mapping with base and axes, got {raw!r}")
    _unknown("sweep", raw, KEYS)
    if not isinstance(raw.get("base"), str):
        raise ConfigError(f"sweep file {str(path)!r}: 'base' (the run config YAML) is required, got {raw.get('base')!r}")
    base = (path.parent / raw["base"]).resolve()
    if not base.is_file():
        raise ConfigError(f"base config not found: {str(base)!r} (base: {raw['base']!r} is relative to the sweep file)")
    fixed = raw.get("set") or []
    if not isinstance(fixed, list) or not all(isinstance(s, str) for s in fixed):
        raise ConfigError(f"set: expected a list of 'section.key=value' strings, got {fixed!r}")
    res_raw = raw.get("resources") or {}
    if not isinstance(res_raw, dict):
        raise ConfigError(f"resources: expected a mapping, got {res_raw!r}")
    try:
        resources = from_dict(res_raw, Resources)
    except ConfigError as e:
        raise ConfigError(f"resources: {e}") from None
    draws, n, method, seed = _parse_draws(raw.get("draws"))
    spec = Spec(path=path, base=base, out=Path(out or raw.get("out") or f"runs/sweeps/{path.stem}").resolve(),
                fixed=list(fixed) + list(extra_set), grid=_axis_lists(raw.get("grid"), "grid"),
                zipped=_axis_lists(raw.get("zip"), "zip"), draws=draws, n_draws=n, draw_method=method,
                draw_seed=seed, seeds=_parse_seeds(raw.get("seeds")), resources=resources)
    if not spec.axis_keys():
        raise ConfigError(f"sweep file {str(path)!r} has an empty grid: give at least one of grid, zip, draws or seeds")
    lengths = {k: len(v) for k, v in spec.zipped.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"zip: the lists must have one length, got {lengths}")
    keys = spec.axis_keys()
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"axis key {twice[0]!r} appears in more than one axis (grid, zip, draws, seeds)")
    if "train.run_dir" in keys:
        raise ConfigError("axis 'train.run_dir': the sweep names every point's run dir itself; remove this axis")
    return spec
