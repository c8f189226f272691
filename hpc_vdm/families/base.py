"""The seam between the project and a model family: a :class:`Family` owns its training *and* its use.

A family builds its module from its config (through :mod:`hpc_vdm.bundle`'s builder), turns a batch into
named per-example loss terms (the loss is their sum), validates a module with metrics that say which way
is better, names the store facts an export must carry, may switch phases during training (e.g. freeze a
sub-module from a step on), and **predicts**: :meth:`Family.predict` turns inputs into draws — posterior
samples for a diffusion model, one draw for a deterministic one. The training loop
(:mod:`hpc_vdm.training.loop`) and the commands that use trained models (``sample``, ``tile``,
``evaluate``, ``paint``, ``baselines``) never look inside a family.

Adding a family: a model file in :mod:`hpc_vdm.models`, its builder line in :mod:`hpc_vdm.bundle`, a
family file here (class attributes + ``loaders``/``losses``/``validate``/``predict``), and its kind in
``config.MODEL_KINDS``. :class:`MapsFamily` adds what every family on ``maps.zarr`` shares.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from .. import bundle as bundles
from ..config import ConfigError, RunConfig
from ..data import camels
from ..data.dataset import MapsDataset, build_loader, read_attrs
from ..dist import Ranks
from ..models import locality

# store facts a checkpoint and an export of a maps family carry (what later commands check inputs against)
STORE_KEYS = ("suite", "set", "fields", "stats", "box_size_mpc_h", "pixel_size_mpc_h", "slab_thickness_mpc_h",
              "map_pixels", "param_names", "maps_per_sim")


@dataclass(frozen=True)
class DrawSpec:
    """How draws are made: the sampler of a diffusion model, the tiling of a big field, the device.

    ``tile=0`` means whole maps (one window per map); otherwise windows of tile + 2 halo pixels cut with
    wrap-around. Noise is keyed by (seed, map key, sample, step), so draws do not depend on tiling,
    batching, devices or ranks."""

    sampler: str = "unipc"
    steps: int = 24
    seed: int = 0
    tile: int = 0
    halo: int = 0
    blend: str = "core"
    batch_size: int = 1
    device: object = "cpu"
    progress: bool = False
    desc: str = "sample"
    clip_log: tuple[float, float] | None = None  # x̂ clipped to this range of log10(target + offset) (sampler.clip_log)

    @classmethod
    def of(cls, sampler, **kw) -> "DrawSpec":
        """The spec of a config's ``sampler`` section (kind, steps, clip_log); ``kw`` sets the rest (or the steps)."""
        clip = None if sampler.clip_log is None else tuple(sampler.clip_log)
        return cls(**{"sampler": sampler.kind, "steps": sampler.steps, "clip_log": clip, **kw})


class Family(abc.ABC):
    """A model family. Subclasses set the class attributes and the methods."""

    kind: str = ""
    conditioned_on: str = "map"                # what predict turns into draws: "map" (condition maps) or "params"
    deterministic: bool = True                 # one draw per input, or posterior samples
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
        """The metric that picks the best checkpoint (``train.select_on``, or the family's first)."""
        metric = self.cfg.train.select_on or next(iter(self.better))
        if metric not in self.better:
            raise ConfigError(f"train.select_on={metric!r} is not a validation metric of the {self.kind} family; "
                              f"choose one of {list(self.better)}")
        return metric

    def sign(self, metric: str) -> float:
        """+1 when lower is better, -1 when higher is: score = sign x metric, lower wins."""
        return 1.0 if self.better[metric] == "lower" else -1.0

    # -- training ---------------------------------------------------------------------------------
    def build(self) -> torch.nn.Module:
        """The untrained module of this family (the bundle's builder: training and loading agree), started from
        the EMA weights of ``train.init_from`` when it names an export (the progressive option)."""
        module = bundles.build_module(self.cfg)
        path = self.cfg.train.init_from
        if path:
            blob = bundles.read_export(path)
            if blob["task"] != self.kind:
                raise ValueError(f"train.init_from={path!r} is a {blob['task']} model; this run trains a {self.kind} "
                                 f"model (model.kind={self.kind!r})")
            try:
                module.load_state_dict(blob["ema"])
            except RuntimeError as e:
                raise ValueError(f"the weights of train.init_from={path!r} do not fit this run's model (its model "
                                 f"section must match; the map size may differ): "
                                 f"{' '.join(str(e).split())[:300]}") from None
        return module

    def compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        """The sub-module ``train.compile`` compiles (the network, not the arithmetic around it)."""
        return module

    @abc.abstractmethod
    def loaders(self, rank: int, world: int):
        """(sampler with set_epoch(epoch, position), loader) of the training data of this rank."""

    @abc.abstractmethod
    def losses(self, module, batch, device) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """({term: (B,) tensor}, {extra column: float}) of one micro-batch."""

    def export_facts(self, module: torch.nn.Module) -> dict:
        """What an export records beside the weights (plain data): ``locality`` (the network's locality facts,
        :func:`hpc_vdm.models.locality`, which ``tile`` checks), and whatever else a family's use needs."""
        return {"locality": locality(self.compiled(module))}

    def phase(self, module: torch.nn.Module, step: int) -> None:
        """Called by the loop before every optimizer step (0-based ``step``): a family with training phases
        switches here (e.g. freezes a sub-module); the loop does not know why. Default: one phase."""

    def validate(self, module, ranks: Ranks) -> dict[str, float]:
        """Validation metrics of ``module`` (eval mode), identical on every rank (``ranks.sum`` the sums)."""
        return {}

    # -- use ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def predict(self, bundle, inputs, **kw):
        """Draws of a trained model (a :class:`~hpc_vdm.bundle.ModelBundle` of this family) for ``inputs``."""

    def diagnostics(self, bundle, cond, truth, params=None, device="cpu") -> dict:
        """A family's own numbers of a trained model on held-out inputs and truths, for a report (e.g. a
        classifier's accuracy, recall and precision); plain data. Default: none."""
        return {}


class MapsFamily(Family):
    """A family on ``maps.zarr``: an (optional) condition field and a target field, split by simulation."""

    def stride(self) -> int:
        return 1

    def check(self) -> dict:
        d = self.cfg.data
        attrs = read_attrs(d.store)
        for name in [f for f in (d.condition, d.target) if f]:
            if name not in attrs.get("fields", []):
                raise ValueError(f"field {name!r} is not in store {d.store!r} (fields: {attrs.get('fields')})")
        stride = self.stride()
        if attrs["map_pixels"] % stride:
            raise ValueError(f"maps of {attrs['map_pixels']} pixels do not divide by the U-Net stride {stride} "
                             f"(model.channel_mults has {len(self.cfg.model.channel_mults)} levels)")
        if d.crop and (d.crop % stride or d.crop > attrs["map_pixels"]):
            raise ValueError(f"data.crop={d.crop} must be a multiple of the network's stride {stride} and at most the "
                             f"maps' {attrs['map_pixels']} pixels")
        if not attrs["splits"].get("train"):
            raise ValueError(f"store {d.store!r} has no training simulations")
        if self.cfg.train.init_from:
            self.build()  # the export loads and fits, before anything is written
        self.store_attrs = {k: attrs[k] for k in STORE_KEYS if k in attrs}
        self.norm = bundles.maps_normalisation(self.cfg, self.store_attrs)
        return self.store_attrs

    def loaders(self, rank: int, world: int):
        _, sampler, loader = build_loader(self.cfg.data, "train", rank=rank, world=world, train=True)
        return sampler, loader

    def val_dataset(self) -> MapsDataset:
        d = self.cfg.data
        return MapsDataset(d.store, "val", condition=d.condition, target=d.target)

    def batch_params(self, batch, device) -> torch.Tensor | None:
        """Normalised simulation parameters of a batch (B, p) when the model conditions on them."""
        names = self.cfg.model.params
        if not names:
            return None
        return torch.from_numpy(camels.normalise_params(batch["params"].numpy(), names)).to(device)

    @staticmethod
    def check_inputs(cond: np.ndarray | None, keys: Sequence[int], n_maps: int | None = None) -> int:
        """The number of maps of a predict call: condition maps (n, H, W) and n keys."""
        n = len(keys) if n_maps is None else n_maps
        if cond is not None and (np.ndim(cond) != 3 or np.shape(cond)[0] != len(keys)):
            raise ValueError(f"expected condition maps (n, H, W) and n keys, got {np.shape(cond)} and {len(keys)}")
        return n
