"""The trained-model contract: the export file, the kind -> builder registry, and :func:`load_bundle`.

It sits beneath training (which writes exports) and inference/evaluation (which read them), and knows
no model family's training or use: a *builder* per ``model.kind`` (the table at the bottom of this
module, from :mod:`hpc_vdm.models` and :mod:`hpc_vdm.diffusion`) makes the untrained module from a config
and the normalisation from the store facts the export carries, so a bundle loads with nothing else
imported. A new family adds its line there; its training and use live in :mod:`hpc_vdm.families`.

The file holds plain data only — consolidated fp32 weights (raw and EMA), the resolved config, the kind,
the store facts (statistics, pixel scale, fields) and the network's locality — so it loads with
``torch.load(weights_only=True)`` (no file a user hands in can run code) and without DeepSpeed.
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .config import ConfigError, RunConfig, from_dict, migrate
from .data import camels
from .data.transforms import LogNorm, MapNormalisation
from .diffusion import build_vdm
from .io import MODEL, acquire_lock, atomic_save, check_output, writing
from .io.inputs import check_store_facts, input_file
from .models import build_dm2gal, build_regressor, build_two_phase

FORMAT = "hpc_vdm.export/2"
OLD_FORMATS = ("hpc_vdm.export/1",)  # VDM only; had diffusion.sample_steps


@dataclass(frozen=True)
class Builder:
    """How to make a kind's untrained module and its normalisation.

    ``module(cfg)`` -> nn.Module; ``normalisation(cfg, store)`` -> the object that maps the family's
    physical inputs and outputs to the module's space (from the statistics the export carries)."""

    module: Callable[[RunConfig], torch.nn.Module]
    normalisation: Callable[[RunConfig, dict], Any]


BUILDERS: dict[str, Builder] = {}


def register(kind: str, builder: Builder) -> Builder:
    """Make ``kind`` loadable; one builder per kind."""
    if kind in BUILDERS and BUILDERS[kind] != builder:
        raise ValueError(f"model kind {kind!r} is registered twice")
    BUILDERS[kind] = builder
    return builder


def builder(kind: str) -> Builder:
    if kind not in BUILDERS:
        raise ConfigError(f"model.kind={kind!r} names no model family; choose one of {sorted(BUILDERS)}")
    return BUILDERS[kind]


def build_module(cfg: RunConfig) -> torch.nn.Module:
    """The untrained module of ``cfg.model.kind``."""
    return builder(cfg.model.kind).module(cfg)


# -- writing ---------------------------------------------------------------------------------------------------
FACTS = ("locality", "frozen_norm")  # what a family records beside the weights (plain data)


def write_export(path: Path, *, raw: dict, ema: dict, config: dict, store_attrs: dict, step: int, tag: str,
                 facts: dict | None = None, overwrite: bool = False, inputs=()) -> Path:
    """model.pt, atomically, under its lock; an existing file is replaced only with ``overwrite`` and only if
    it is an hpc_vdm export (never a path among or inside ``inputs``). ``facts``: the family's
    :meth:`~hpc_vdm.families.Family.export_facts` (keys of :data:`FACTS`)."""
    path = Path(path)
    check_output(path, MODEL, inputs=inputs, overwrite=overwrite)
    kind = config.get("model", {}).get("kind", "vdm")
    blob = {"format": FORMAT, "task": kind, "config": config, "store": store_attrs, "step": step, "tag": tag,
            "model": raw, "ema": ema}
    unknown = set(facts or {}) - set(FACTS)
    if unknown:
        raise ValueError(f"an export records only {list(FACTS)} beside the weights, not {sorted(unknown)}")
    blob |= dict(facts or {})
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with acquire_lock(path):
            check_output(path, MODEL, inputs=inputs, overwrite=overwrite)  # another writer finished meanwhile?
            return atomic_save(blob, path)


# -- reading ---------------------------------------------------------------------------------------------------
def read_export(path: str | Path) -> dict:
    """The export file as plain data (config migrated to today's layout); a missing, truncated, foreign or
    unsafe file is one clear error."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an exported model file (expected run_dir/export/model.pt)")
    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"no exported model at {str(path)!r} (train, or run `python -m hpc_vdm.export`)")
    input_file(path, "exported model file", empty_ok=True)  # symlink loops, devices, unreadable files
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # objects beyond plain data: refused, never executed
        raise ValueError(f"{str(path)!r} holds objects other than weights and plain data; refused to load it "
                         f"(hpc_vdm exports hold tensors and plain data only): {str(e).splitlines()[0]}") from None
    except (RuntimeError, EOFError, KeyError, zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not a readable torch file (truncated or another format): "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, *OLD_FORMATS):
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{str(path)!r} is not an hpc_vdm export (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in ("config", "store", "step", "tag", "model", "ema") if k not in blob]
    if missing or not isinstance(blob.get("config"), dict) or not isinstance(blob.get("store"), dict):
        raise ValueError(f"{str(path)!r} is an hpc_vdm export without {missing or ['a readable config/store']}; "
                         f"it is damaged: export the run again")
    check_weights(blob, path)
    check_store_facts(blob["store"], f"the export {str(path)!r}")
    config = dict(blob["config"])
    if blob["format"] in OLD_FORMATS:
        config["diffusion"] = {k: v for k, v in config.get("diffusion", {}).items() if k != "sample_steps"}
    return {**blob, "task": blob.get("task", "vdm"), "config": migrate(config, strict=False)}


def check_weights(blob: dict, path: Path) -> None:
    """Both weight sets are mappings of finite floating-point tensors (a damaged or hand-made file says which)."""
    for key in ("model", "ema"):
        state = blob[key]
        if not isinstance(state, dict) or not state:
            raise ValueError(f"{str(path)!r} is an hpc_vdm export whose {key!r} weights are "
                             f"{type(state).__name__ if state else 'empty'}, not a mapping of tensors; it is damaged: "
                             f"export the run again")
        for name, t in state.items():
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{str(path)!r}: {key} weight {name!r} is a {type(t).__name__}, not a tensor")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{str(path)!r}: {key} weight {name!r} holds {int((~torch.isfinite(t)).sum())} NaN "
                                 f"or inf values; the model cannot be used (export a checkpoint from before the "
                                 f"divergence)")
            if t.is_complex():
                raise ValueError(f"{str(path)!r}: {key} weight {name!r} holds complex numbers (dtype {t.dtype})")


@dataclass
class ModelBundle:
    """An exported model ready to use: module (eval mode), kind, typed config, store facts, normalisation."""

    module: torch.nn.Module
    kind: str
    config: RunConfig
    store: dict
    norm: Any
    step: int
    tag: str
    path: Path
    locality: dict = field(default_factory=dict)       # the network's locality facts recorded at export
    frozen_norm: dict | None = None                     # GroupNorm statistics by γ (tile's stop-gap), if any

    @property
    def param_names(self) -> list[str]:
        """The CAMELS parameters the model conditions on ([] for none)."""
        return list(self.config.model.params)

    @property
    def conditions_on_params(self) -> bool:
        return bool(self.param_names)

    @property
    def stride(self) -> int:
        """Map sizes must be multiples of this (the U-Net's total downsampling; 1 for a plain CNN)."""
        return int(getattr(self.module, "stride", None) or getattr(getattr(self.module, "score", None), "stride", 1))

    def params(self, rows: np.ndarray | None = None) -> torch.Tensor | None:
        """(n, 6) CAMELS parameter rows (default: the fiducial point) -> the model's normalised (n, p) of its
        own parameters, or None for a model that conditions on none."""
        if not self.conditions_on_params:
            return None
        rows = camels.fiducial_params()[None] if rows is None else np.atleast_2d(rows)
        return torch.as_tensor(camels.normalise_params(rows, self.param_names), dtype=torch.float32)

    def require(self, kinds, command: str) -> "ModelBundle":
        """Refuse a model of another kind, naming both."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if self.kind not in kinds:
            raise ValueError(f"{command} needs a {' or '.join(kinds)} model, but {str(self.path)!r} is a "
                             f"{self.kind} model (model.kind={self.kind!r})")
        return self


def load_bundle(path: str | Path, which: str = "ema", device="cpu") -> ModelBundle:
    """:class:`ModelBundle` of an exported model; ``which`` = ``ema`` or ``raw`` weights."""
    if which not in ("ema", "raw"):
        raise ValueError(f"which must be 'ema' or 'raw', got {which!r}")
    blob = read_export(path)
    try:
        cfg = from_dict(blob["config"])
    except ConfigError as e:
        raise ValueError(f"{str(path)!r} carries a config this version cannot read: {e}") from None
    b = builder(blob["task"])
    module = b.module(cfg)
    try:
        module.load_state_dict(blob["ema" if which == "ema" else "model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {str(path)!r} do not fit its own config: {str(e).splitlines()[0]}") from None
    store = dict(blob["store"])
    try:
        norm = b.normalisation(cfg, store)
    except KeyError as e:
        raise ValueError(f"{str(path)!r} lacks the statistics of field {e} that its model needs") from None
    return ModelBundle(module=module.to(device).eval(), kind=blob["task"], config=cfg, store=store, norm=norm,
                       step=int(blob["step"]), tag=str(blob["tag"]), path=Path(path),
                       locality=dict(blob.get("locality") or {}), frozen_norm=blob.get("frozen_norm"))


# -- the built-in kinds ------------------------------------------------------------------------------------------
def maps_normalisation(cfg: RunConfig, store: dict) -> MapNormalisation:
    """Condition (optional) and target fields of a maps store, log-normalised with its training statistics."""
    d = cfg.data
    fields = [f for f in (d.condition, d.target) if f]
    return MapNormalisation(d.condition, d.target, {f: store["stats"][f] for f in fields})


def volume_normalisation(cfg: RunConfig, store: dict) -> dict[str, LogNorm]:
    """Every field of a volume store, log-normalised with its training statistics."""
    return {f: LogNorm.of(s) for f, s in store["stats"].items()}


def _vdm(cfg: RunConfig) -> torch.nn.Module:
    level_log = camels.cdm_level_regressor(cfg.model.params) if cfg.model.vdm.prior_level == "log_cdm" else None
    return build_vdm(cfg.model, cfg.model.vdm, n_params=len(cfg.model.params),
                     cond_channels=int(bool(cfg.data.condition)), level_log=level_log)


def _emulator(cfg: RunConfig) -> torch.nn.Module:
    """A VDM without a map condition, conditioned on ``model.params`` (Mudur+23's emulator)."""
    return build_vdm(cfg.model, cfg.model.vdm, n_params=len(cfg.model.params), cond_channels=0,
                     param_mlp=cfg.model.emulator.param_mlp)


def _regressor(cfg: RunConfig) -> torch.nn.Module:
    return build_regressor(cfg.model, n_params=len(cfg.model.params))


def _dm2gal(cfg: RunConfig) -> torch.nn.Module:
    return build_dm2gal(cfg.model.dm2gal)


def _two_phase(cfg: RunConfig) -> torch.nn.Module:
    return build_two_phase(cfg.model, n_params=len(cfg.model.params))


register("vdm", Builder(_vdm, maps_normalisation))
register("regressor", Builder(_regressor, maps_normalisation))
register("dm2gal", Builder(_dm2gal, volume_normalisation))
register("two_phase", Builder(_two_phase, maps_normalisation))
register("emulator", Builder(_emulator, maps_normalisation))
