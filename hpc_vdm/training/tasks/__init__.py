"""Model families as tasks of the one training loop, by ``model.kind``."""
from __future__ import annotations

from ...config import MODEL_KINDS, ConfigError, RunConfig
from .base import STORE_KEYS, MapsTask, Task
from .dm2gal import Dm2galTask
from .regressor import RegressorTask
from .vdm import VDMTask

TASKS: dict[str, type[Task]] = {t.kind: t for t in (VDMTask, RegressorTask, Dm2galTask)}
assert set(TASKS) == set(MODEL_KINDS), "config.MODEL_KINDS and the task registry must name the same kinds"


def task_class(kind: str) -> type[Task]:
    if kind not in TASKS:
        raise ConfigError(f"model.kind={kind!r} names no task; choose one of {sorted(TASKS)}")
    return TASKS[kind]


def make_task(cfg: RunConfig) -> Task:
    return task_class(cfg.model.kind)(cfg)


__all__ = ["MapsTask", "STORE_KEYS", "TASKS", "Task", "make_task", "task_class"]
