"""A spec -> its points: overrides per point, a stable run-dir name, a validated config.

Points are grid x zip x draws x seeds, in that order. A point's name comes from its overrides
(``lr0.001_channels8``): the last part of each key (the whole key when two axes share it), the value
shortened and sanitised, a hash appended when the name would be too long or clash. Names are
deterministic, so a rerun of the same sweep finds the same run dirs.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ConfigError, RunConfig, load_config
from .spec import Draw, Spec

MAX_NAME = 64


@dataclass(frozen=True)
class Point:
    name: str
    values: dict        # axis key -> value
    overrides: tuple    # every --set of this point, fixed ones first, train.run_dir last

    def to_json(self) -> dict:
        return {"name": self.name, "values": self.values, "overrides": list(self.overrides)}


def override(key: str, value) -> str:
    """``key=value`` with the value as YAML that parses back to itself (JSON is YAML)."""
    return f"{key}={json.dumps(value)}"


def _draw_values(spec: Spec) -> list[dict]:
    """``n`` draws of every drawn parameter: independent uniforms, or a Latin hypercube (one stratum each)."""
    if not spec.draws:
        return [{}]
    rng, n = np.random.default_rng(spec.draw_seed), spec.n_draws
    rows = [{} for _ in range(n)]
    for d in spec.draws:
        u = (rng.permutation(n) + rng.random(n)) / n if spec.draw_method == "lhs" else rng.random(n)
        for row, ui in zip(rows, u):
            row[d.key] = _scale(d, float(ui))
    return rows


def _scale(d: Draw, u: float):
    if d.choices:
        return d.choices[min(int(u * len(d.choices)), len(d.choices) - 1)]
    x = math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low))) if d.log else d.low + u * (d.high - d.low)
    return int(round(x)) if d.integer else float(f"{x:.6g}")  # 6 significant digits: names and YAML stay short


def combinations(spec: Spec) -> list[dict]:
    """Axis key -> value of every point."""
    grid = [dict(zip(spec.grid, vals)) for vals in itertools.product(*spec.grid.values())]
    n_zip = len(next(iter(spec.zipped.values()))) if spec.zipped else 1
    zipped = [{k: v[i] for k, v in spec.zipped.items()} for i in range(n_zip)]
    seeds = [{"train.seed": s} for s in spec.seeds] or [{}]
    return [{**g, **z, **d, **s} for g, z, d, s in itertools.product(grid, zipped, _draw_values(spec), seeds)]


def _short(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_short(v) for v in value)
    return str(value)


def _labels(keys: list[str]) -> dict[str, str]:
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k.replace(".", "-")) for k, s in zip(keys, last)}


def _digest(values: dict) -> str:
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]


def names(keys: list[str], combos: list[dict]) -> list[str]:
    labels = _labels(keys)
    raw = ["_".join(f"{labels[k]}{_short(c[k])}" for k in keys) or "base" for c in combos]
    raw = [re.sub(r"[^A-Za-z0-9._+=-]+", "-", n).strip("-._") or "point" for n in raw]
    out = []
    for n, c in zip(raw, combos):
        if len(n) > MAX_NAME or raw.count(n) > 1:
            n = f"{n[:MAX_NAME - 9].rstrip('-_.')}-{_digest(c)}"
        out.append(n)
    return out


def _check_axis(spec: Spec, key: str, value) -> None:
    """Build the base config with one axis value: an unknown key or a bad type names the axis."""
    try:
        load_config(spec.base, spec.fixed + [override(key, value)])
    except ConfigError as e:
        raise ConfigError(f"axis {key!r} (value {value!r}): {e}") from None


def expand(spec: Spec) -> list[tuple[Point, RunConfig]]:
    """Every point and its validated config; nothing is written."""
    try:
        load_config(spec.base, spec.fixed)
    except ConfigError as e:
        raise ConfigError(f"base config {str(spec.base)!r} with set {spec.fixed}: {e}") from None
    keys = spec.axis_keys()
    listed = {**spec.grid, **spec.zipped, **({"train.seed": spec.seeds} if spec.seeds else {})}
    for d in spec.draws:
        listed[d.key] = list(d.choices) or [_scale(d, 0.0), _scale(d, 1.0)]
    for key, values in listed.items():
        for value in values:
            _check_axis(spec, key, value)
    combos = combinations(spec)
    seen = {}
    for i, c in enumerate(combos):
        text = json.dumps(c, sort_keys=True)
        if text in seen:
            raise ConfigError(f"points {seen[text]} and {i} are the same ({c}): remove the duplicate axis value")
        seen[text] = i
    points = []
    for name, c in zip(names(keys, combos), combos):
        run_dir = spec.out / "runs" / name
        sets = tuple(spec.fixed) + tuple(override(k, c[k]) for k in keys) + (override("train.run_dir", str(run_dir)),)
        try:
            cfg = load_config(spec.base, list(sets))
        except ConfigError as e:
            raise ConfigError(f"point {name!r} ({c}): {e}") from None
        points.append((Point(name, c, sets), absolute(cfg)))
    return points


def absolute(cfg: RunConfig) -> RunConfig:
    """The store made absolute (a queued job runs in the code snapshot, not here) and checked."""
    store = Path(cfg.data.store).resolve()
    if not store.exists():
        raise ConfigError(f"data.store: {str(store)!r} does not exist (python -m hpc_vdm.prepare writes it)")
    cfg.data.store = str(store)
    return cfg
