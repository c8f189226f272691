"""The seam between the loop and a model family: a :class:`Task`.

A task builds its module from the config, turns a batch into named per-example loss terms (the loss is
their sum), validates a module with metrics that say which way is better, and names the store facts an
export must carry. The loop (:mod:`hpc_vdm.training.loop`) does everything else — launcher, DeepSpeed,
LR schedule, EMA, checkpoints, preemption, metrics.csv, validation cadence, best-checkpoint selection,
export — for any task. :class:`MapsTask` adds what every task on ``maps.zarr`` shares.
"""
from __future__ import annotations

import abc
from typing import Mapping

import torch

from ...config import ConfigError, RunConfig
from ...data.dataset import MapsDataset, build_loader, read_attrs
from ...data.transforms import MapNormalisation

# store facts a checkpoint and an export carry (what later commands check their inputs against)
STORE_KEYS = ("suite", "set", "fields", "stats", "box_size_mpc_h", "pixel_size_mpc_h", "slab_thickness_mpc_h",
              "map_pixels", "param_names", "maps_per_sim")


class Task(abc.ABC):
    """A model family the loop can train. Subclasses set the class attributes and the methods."""

    kind: str = ""
    loss_terms: tuple[str, ...] = ()          # per-example terms (B,) whose sum is the loss
    extra_columns: tuple[str, ...] = ()       # other floats a train row reports (from the last micro-batch)
    val_columns: tuple[str, ...] = ()         # what validate() returns (metrics.csv columns)
    better: Mapping[str, str] = {}            # selectable validation metric -> "lower" | "higher"
    compared_sections: tuple[str, ...] = ("model",)  # sections a resumed run must share with its checkpoints

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    # -- before anything is written -------------------------------------------------------------
    def check(self) -> dict:
        """Validate the inputs; returns the store facts recorded in checkpoints and exports."""
        return {}

    def selection(self) -> str:
        """The metric that picks the best checkpoint (``train.select_on``, or the task's first)."""
        metric = self.cfg.train.select_on or next(iter(self.better))
        if metric not in self.better:
            raise ConfigError(f"train.select_on={metric!r} is not a validation metric of the {self.kind} task; "
                              f"choose one of {list(self.better)}")
        return metric

    def sign(self, metric: str) -> float:
        """+1 when lower is better, -1 when higher is: score = sign x metric, lower wins."""
        return 1.0 if self.better[metric] == "lower" else -1.0

    # -- training ---------------------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def build_module(cls, cfg: RunConfig) -> torch.nn.Module:
        """The untrained module of this family from the config."""

    def build(self) -> torch.nn.Module:
        return self.build_module(self.cfg)

    @abc.abstractmethod
    def loaders(self, rank: int, world: int):
        """(sampler with set_epoch(epoch, position), loader) of the training data of this rank."""

    @abc.abstractmethod
    def losses(self, module, batch, device) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """({term: (B,) tensor}, {extra column: float}) of one micro-batch."""

    def validate(self, module, *, rank: int, world: int, device) -> dict[str, float]:
        return {}


class MapsTask(Task):
    """A task on ``maps.zarr``: condition and target fields of ``data``, split by simulation."""

    def stride(self) -> int:
        return 1

    def check(self) -> dict:
        d = self.cfg.data
        attrs = read_attrs(d.store)
        for name in (d.condition, d.target):
            if name not in attrs.get("fields", []):
                raise ValueError(f"field {name!r} is not in store {d.store!r} (fields: {attrs.get('fields')})")
        stride = self.stride()
        if attrs["map_pixels"] % stride:
            raise ValueError(f"maps of {attrs['map_pixels']} pixels do not divide by the U-Net stride {stride} "
                             f"(model.channel_mults has {len(self.cfg.model.channel_mults)} levels)")
        if not attrs["splits"].get("train"):
            raise ValueError(f"store {d.store!r} has no training simulations")
        self.store_attrs = {k: attrs[k] for k in STORE_KEYS if k in attrs}
        self.norm = MapNormalisation(d.condition, d.target, {f: attrs["stats"][f] for f in (d.condition, d.target)})
        return self.store_attrs

    def loaders(self, rank: int, world: int):
        _, sampler, loader = build_loader(self.cfg.data, "train", rank=rank, world=world, train=True)
        return sampler, loader

    def val_dataset(self) -> MapsDataset:
        d = self.cfg.data
        return MapsDataset(d.store, "val", condition=d.condition, target=d.target)

    def batch_params(self, batch, device) -> torch.Tensor | None:
        """Normalised simulation parameters of a batch when the model conditions on them."""
        if not self.cfg.model.param_conditioning:
            return None
        return torch.from_numpy(self.norm.params(batch["params"].numpy())).to(device)
