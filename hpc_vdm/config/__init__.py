"""Typed run configuration: YAML -> dataclasses, validated on load, ``--set a.b=v`` overrides.

``schema`` is the machinery (types, ranges, suggestions, YAML, diffs); ``sections`` are the dataclasses (the
families' options in ``families`` and ``emulate``);
``migrate`` moves keys of the earlier layout to today's sections.
"""
from __future__ import annotations

import typing
from pathlib import Path

from . import schema
from .migrate import migrate
from .emulate import EmulatorOptions, InferConfig
from .schema import ConfigError, apply_override, describe, differing, param, parse_value, read_yaml, to_dict, to_json
from .sections import (DEVICES, MODEL_KINDS, PARAM_NAMES, SETS, SUITES, BaselinesConfig, DataConfig, Dm2galOptions,
                       EvaluateConfig, MockConfig, ModelConfig, PaintConfig, RunConfig, SampleConfig, SamplerConfig,
                       TileConfig, TrainConfig, TrainedConfig, VDMOptions, VolumeConfig)


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """YAML file (optional) + ``--set`` overrides -> a validated :class:`RunConfig` (older keys migrated)."""
    return schema.load(RunConfig, path, overrides, migrate=migrate)


def from_dict(raw: dict, cls: type = RunConfig) -> typing.Any:
    """Rebuild (and re-validate) a config written by :func:`to_dict` (of this or an earlier layout)."""
    return schema.build(cls, migrate(raw, strict=False) if cls is RunConfig else raw)


__all__ = ["BaselinesConfig", "ConfigError", "DEVICES", "DataConfig", "Dm2galOptions", "EmulatorOptions", "EvaluateConfig",
           "InferConfig", "MODEL_KINDS",
           "MockConfig", "ModelConfig", "PARAM_NAMES", "PaintConfig", "RunConfig", "SETS", "SUITES", "SampleConfig",
           "SamplerConfig", "TileConfig", "TrainConfig", "TrainedConfig", "VDMOptions", "VolumeConfig",
           "apply_override", "describe", "differing", "from_dict", "load_config", "migrate", "param", "parse_value",
           "read_yaml", "to_dict", "to_json"]
