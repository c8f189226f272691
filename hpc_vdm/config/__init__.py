"""Typed run configuration: YAML -> dataclasses, validated on load, ``--set a.b=v`` overrides.

``schema`` is the machinery (types, ranges, suggestions, YAML, diffs); ``sections`` are the dataclasses.
"""
from __future__ import annotations

import typing
from pathlib import Path

from .schema import ConfigError, apply_override, describe, differing, param, parse_value, read_yaml, to_dict, to_json
from .sections import (MODEL_KINDS, SETS, SUITES, DataConfig, DiffusionConfig, EvaluateConfig, MockConfig, ModelConfig,
                       RunConfig, SampleConfig, TileConfig, TrainConfig)
from . import schema


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """YAML file (optional) + ``--set`` overrides -> a validated :class:`RunConfig`."""
    return schema.load(RunConfig, path, overrides)


def from_dict(raw: dict, cls: type = RunConfig) -> typing.Any:
    """Rebuild (and re-validate) a config written by :func:`to_dict`."""
    return schema.build(cls, raw)


__all__ = ["ConfigError", "DataConfig", "DiffusionConfig", "EvaluateConfig", "MODEL_KINDS", "MockConfig", "ModelConfig", "RunConfig",
           "SETS", "SUITES", "SampleConfig", "TileConfig", "TrainConfig", "apply_override", "describe", "differing",
           "from_dict", "load_config", "param", "parse_value", "read_yaml", "to_dict", "to_json"]
