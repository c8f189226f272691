"""Typed run configuration: YAML -> dataclasses, validated on load, ``--set a.b=v`` overrides.

Every command reads one :class:`RunConfig`. Its defaults are the embedded default (the mock
CAMELS pipeline); a YAML file in ``configs/`` changes some of them and ``--set section.key=value``
changes one more. Validation happens once, here, before any command writes anything:

* an unknown key raises :class:`ConfigError` with the closest valid names;
* a wrong type names the key, the expected type and the value;
* a value outside its range or choices names the key, the allowed range and the value.

The resolved config is plain data (:func:`to_dict`), written as JSON into run dirs and stores.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUITES = ("IllustrisTNG", "SIMBA", "Astrid")
SETS = ("LH", "1P", "CV")


class ConfigError(ValueError):
    """A config value or key is invalid; the message names the key, what was expected and the value."""


def param(default: Any, doc: str, *, range: tuple[float | None, float | None] | None = None,
          choices: tuple | None = None):
    """A config field with its documentation and allowed values (checked on load)."""
    meta = {"doc": doc, "range": range, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
@dataclass
class MockConfig:
    """The particle-mesh mock of CAMELS CMD maps (``python -m hpc_vdm.mock``)."""

    out_dir: str = param("data/cmd", "folder that receives the CMD-layout .npy and params files")
    suite: str = param("IllustrisTNG", "galaxy-formation suite whose stellar-halo relation is used", choices=SUITES)
    set: str = param("LH", "CAMELS set: LH (Latin hypercube), 1P (one parameter at a time), CV (fiducial)",
                     choices=SETS)
    n_sims: int = param(4, "number of simulations (LH, CV); 1P uses n_1p_values per parameter",
                        range=(1, 100_000))
    n_1p_values: int = param(5, "1P: values per parameter, spanning its LH range", range=(2, 101))
    particles: int = param(64, "particles per side of the PM run (64 tests, 128 demos, 256 faithful)",
                           range=(8, 4096))
    pm_steps: int = param(5, "kick-drift-kick PM steps from a_start to a=1", range=(1, 1000))
    a_start: float = param(0.1, "scale factor of the 2LPT initial conditions", range=(0.01, 0.5))
    upsample: int = param(1, "sub-particles per particle per side, interpolated from the displacement field",
                          range=(1, 4))
    map_pixels: int = param(256, "pixels per side of every map", range=(8, 16384))
    box_mpc_h: float = param(25.0, "box side [Mpc/h]", range=(1e-3, None))
    n_slabs: int = param(5, "slabs per axis (CAMELS: 5 slabs of 5 Mpc/h)", range=(1, 1024))
    n_ngb: float = param(8.0, "SPH neighbours that set the DM painting kernel (8 at 128^3 mimics CMD's 64 at 256^3)",
                         range=(1.0, 1024.0))
    seed: int = param(0, "master seed: every simulation's initial conditions derive from it", range=(0, 2**31 - 1))
    nbody: bool = param(False, "also write the N-body twin maps Maps_Mtot_Nbody_{suite}_{set} (same ICs, one more "
                               "DM painting per simulation)")
    catalogues: bool = param(True, "write the halo/galaxy catalogue of every simulation (HDF5, Subfind-like)")
    grids: list[int] = param([], "also write 3D grids Grids_{field}_{suite}_{set}_{N}_z=0.00.npy at these N "
                                 "(e.g. [64, 128]; fields Mcdm, Mstar, Msubhalo, and Mtot with nbody)")
    workers: int = param(1, "simulations run side by side in this many processes (results do not depend on it)",
                         range=(1, 1024))
    kernels: str = param("numba", "numba (compiled) or numpy (the reference) CIC/PM kernels",
                         choices=("numba", "numpy"))


@dataclass
class DataConfig:
    """CMD files -> ``maps.zarr`` (``python -m hpc_vdm.prepare``) and the training dataset."""

    source_dir: str = param("data/cmd", "folder with Maps_{field}_{suite}_{set}_z=0.00.npy and params_{set}_{suite}.txt")
    suite: str = param("IllustrisTNG", "suite of the CMD files", choices=SUITES)
    set: str = param("LH", "set of the CMD files", choices=SETS)
    store: str = param("data/maps.zarr", "the Zarr maps store")
    fields: list[str] = param(["Mstar", "Mcdm"], "CMD fields copied into the store")
    condition: str = param("Mstar", "field the model is conditioned on")
    target: str = param("Mcdm", "field the model generates")
    box_mpc_h: float = param(25.0, "side of every map [Mpc/h]", range=(1e-3, None))
    slab_mpc_h: float = param(5.0, "thickness of the slab projected into every map [Mpc/h]", range=(1e-3, None))
    maps_per_sim: int = param(15, "maps per simulation (CAMELS: 5 slabs x 3 axes)", range=(1, None))
    log_offsets: dict[str, float] = param({"Mstar": 1.0, "Mcdm": 0.0},
                                          "normalisation x -> (log10(x + offset) - mean) / std, per field")
    split_fractions: list[float] = param([0.8, 0.1, 0.1], "train/val/test fractions of the simulations")
    split_seed: int = param(342, "seed of the split by simulation", range=(0, 2**31 - 1))
    maps_per_chunk: int = param(1, "maps per Zarr chunk (the unit a reader decompresses)", range=(1, None))
    maps_per_shard: int = param(15, "maps per Zarr shard (the unit a writer owns; a multiple of maps_per_chunk)",
                                range=(1, None))
    augment_dihedral: bool = param(True, "random element of the 8 flips/rotations, same for condition and target")
    augment_roll: bool = param(True, "random periodic roll, same for condition and target")
    batch_size: int = param(12, "micro-batch per rank", range=(1, None))
    num_workers: int = param(0, "DataLoader workers (spawned, never forked)", range=(0, 256))
    seed: int = param(7, "seed of the sample order and augmentations", range=(0, 2**31 - 1))


@dataclass
class ModelConfig:
    """The score U-Net (papers: 48 channels, 4 levels x1/x2/x4/x8, attention at the bottleneck)."""

    channels: int = param(48, "channels of the first level (E); level i has E * channel_mults[i]", range=(1, None))
    channel_mults: list[int] = param([1, 2, 4, 8], "channel multiplier per level; each level halves the resolution")
    blocks_per_level: int = param(1, "residual blocks per level", range=(1, 16))
    attention: bool = param(True, "self-attention between the two bottleneck residual blocks")
    attention_heads: int = param(1, "heads of the bottleneck attention", range=(1, 64))
    norm_groups: int = param(8, "GroupNorm groups (must divide every channel count)", range=(1, None))
    dropout: float = param(0.1, "dropout in every residual block", range=(0.0, 1.0))
    add_zt: bool = param(True, "return net(z_t) + z_t, the papers' base-measure residual")
    param_conditioning: bool = param(False, "add the 6 simulation parameters to the time embedding (emulators)")


@dataclass
class DiffusionConfig:
    """The VDM noise schedule, bound and sampler."""

    schedule: str = param("learned_linear", "gamma(t) = b + |w| t, learned or fixed",
                          choices=("learned_linear", "fixed_linear"))
    gamma_min: float = param(-13.3, "gamma(0) at initialisation", range=(-30.0, 30.0))
    gamma_max: float = param(13.3, "gamma(1) at initialisation", range=(-30.0, 30.0))
    data_noise: float = param(1e-3, "std of the Gaussian reconstruction likelihood p(x | z_0)", range=(1e-8, None))
    loss_recon: bool = param(True, "include loss_recon in the bound (the Nov-2023 runs left it out)")
    antithetic: bool = param(True, "antithetic (stratified) diffusion times within a batch")
    sample_steps: int = param(250, "ancestral sampling steps (papers: 250)", range=(1, 100_000))


@dataclass
class TrainConfig:
    """The DeepSpeed trainer (``python -m hpc_vdm.train``)."""

    run_dir: str = param("runs/default", "run folder: config.json, checkpoints/, metrics.csv, tb/, export/")
    steps: int = param(100_000, "optimizer steps of the whole run (resumes count towards it)", range=(1, None))
    global_batch: int = param(0, "checked against data.batch_size x grad_accum x world; 0 = derived", range=(0, None))
    grad_accum: int = param(1, "micro-batches per optimizer step", range=(1, None))
    zero_stage: int = param(1, "DeepSpeed ZeRO stage (0 off, 1 optimizer, 2 +gradients, 3 +parameters)",
                            range=(0, 3))
    precision: str = param("fp32", "fp32, or bf16 weights and activations (fp32 loss terms)", choices=("fp32", "bf16"))
    lr: float = param(1e-4, "peak AdamW learning rate", range=(0.0, None))
    lr_min: float = param(0.0, "floor of the cosine schedule", range=(0.0, None))
    lr_schedule: str = param("constant", "constant, or cosine annealing with warm restarts",
                             choices=("constant", "cosine_restarts"))
    warmup_steps: int = param(0, "linear warm-up steps", range=(0, None))
    restart_steps: int = param(10_000, "cosine_restarts: length of the first cycle [steps]", range=(1, None))
    restart_mult: int = param(1, "cosine_restarts: growth factor of each following cycle", range=(1, 16))
    weight_decay: float = param(1e-5, "AdamW weight decay", range=(0.0, None))
    betas: list[float] = param([0.9, 0.999], "AdamW betas")
    grad_clip: float = param(0.5, "gradient clipping norm (0 disables; always written explicitly)", range=(0.0, None))
    ema_decay: float = param(0.9999, "EMA decay of the weights (0: the EMA follows the weights)", range=(0.0, 1.0))
    seed: int = param(7, "seed of weights, diffusion times and noise (per rank and step)", range=(0, 2**31 - 1))
    device: str = param("auto", "auto (GPU if present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    channels_last: bool = param(False, "channels_last memory format on GPU")
    compile: bool = param(False, "torch.compile the score network")
    log_every: int = param(10, "steps between metrics.csv / TensorBoard rows", range=(1, None))
    tensorboard: bool = param(True, "write TensorBoard events to run_dir/tb")
    val_every: int = param(1000, "steps between validations (0: only at the end)", range=(0, None))
    val_maps: int = param(16, "held-out maps for the deterministic bound", range=(1, None))
    val_times: int = param(8, "fixed diffusion times per map of the deterministic bound", range=(1, 1024))
    val_sample_maps: int = param(2, "held-out maps sampled for P(k) ratio and r(k) (0: skip)", range=(0, None))
    val_sample_steps: int = param(250, "sampler steps of the validation samples", range=(1, 100_000))
    select_on: str = param("val_bound", "validation metric that picks the best checkpoint (best.json): val_bound or "
                           "val_pk_ratio_err (lower is better), val_r_mean (higher is better)",
                           choices=("val_bound", "val_pk_ratio_err", "val_r_mean"))
    ckpt_every: int = param(1000, "steps between checkpoints", range=(1, None))
    ckpt_minutes: float = param(30.0, "minutes between checkpoints (whichever comes first; 0 disables)",
                                range=(0.0, None))
    keep_last: int = param(3, "checkpoints kept (the best by validation is always kept)", range=(1, None))
    resume: bool = param(True, "continue from run_dir/checkpoints when it holds a checkpoint")
    export: bool = param(True, "write run_dir/export/model.pt at the end")
    export_tag: str = param("latest", "checkpoint exported at the end: latest, or best (by train.select_on)",
                            choices=("latest", "best"))
    progress: bool = param(True, "progress bar on rank 0")


@dataclass
class SampleConfig:
    """Posterior samples of held-out maps from an exported model (``python -m hpc_vdm.sample``)."""

    model: str = param("runs/default/export/model.pt", "exported model (python -m hpc_vdm.export)")
    which: str = param("ema", "weights: ema or raw", choices=("ema", "raw"))
    store: str = param("", "maps store with the held-out maps ('' = the store the model was trained on)")
    split: str = param("test", "held-out split the maps come from", choices=("val", "test", "train"))
    n_maps: int = param(4, "held-out maps (the first of the split)", range=(1, None))
    n_samples: int = param(8, "posterior samples per map", range=(1, None))
    steps: int = param(250, "ancestral sampler steps", range=(1, 100_000))
    seed: int = param(0, "sampling seed: noise keyed by (seed, map, sample, step)", range=(0, 2**31 - 1))
    out: str = param("runs/default/samples", "output folder: samples.zarr, summary.json, samples.png")
    device: str = param("auto", "auto (GPU if present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    progress: bool = param(True, "progress bar")


@dataclass
class TileConfig:
    """Fused periodic tiled sampling of big volumes (``python -m hpc_vdm.tile``)."""

    volume: str = param("tng300", "volume preset in configs/volumes/ (camels, tng100, tng300) or a preset YAML")
    model: str = param("runs/default/export/model.pt", "exported model (python -m hpc_vdm.export)")
    which: str = param("ema", "weights: ema or raw", choices=("ema", "raw"))
    input: str = param("mock", "mock, a 3D stellar-mass grid (.zarr/.h5/.hdf5), or TNG-style snapshot HDF5 "
                               "chunks (a folder or glob with PartType4/Coordinates and Masses)")
    input_key: str = param("Mstar", "array/dataset name of a grid input")
    axes: list[int] = param([0, 1, 2], "projection axes (the mock volume has slabs along axis 2 only)")
    slabs: list[int] = param([], "slab indices along each axis ([] = all)")
    n_samples: int = param(1, "posterior samples per slab", range=(1, None))
    steps: int = param(250, "ancestral sampler steps", range=(1, 100_000))
    tile: int = param(192, "tile core [pixels]; tile + 2 halo is what the network sees", range=(1, None))
    halo: int = param(32, "periodic halo on each side of a tile [pixels]", range=(0, None))
    blend: str = param("core", "how overlapping tile predictions are combined", choices=("core", "cosine", "gaussian"))
    batch_size: int = param(8, "tiles per network call (each carries all samples of a pass)", range=(1, None))
    samples_per_pass: int = param(4, "samples of one slab drawn together (one network batch)", range=(1, None))
    seed: int = param(0, "sampling seed: noise keyed by (seed, slab, sample, step)", range=(0, 2**31 - 1))
    out: str = param("out/tng300.zarr", "output Zarr store (resumed when it exists with the same configuration)")
    device: str = param("auto", "auto (GPU of the local rank if present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    progress: bool = param(True, "progress bar on rank 0")
    mock_slabs: int = param(1, "mock input: slabs in the thin-slab PM box (all of the preset's = a full cube)",
                            range=(1, None))
    mock_spacing_mpc_h: float = param(0.1953125, "mock input: mean particle spacing [Mpc/h] (25/128: the demo mock)",
                                      range=(1e-3, None))
    mock_pm_steps: int = param(10, "mock input: PM steps", range=(1, 1000))
    mock_seed: int = param(0, "mock input: initial-condition seed", range=(0, 2**31 - 1))


@dataclass
class RunConfig:
    """Everything one run of any command reads."""

    mock: MockConfig = field(default_factory=MockConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    tile: TileConfig = field(default_factory=TileConfig)


# ---------------------------------------------------------------------------------------------
# YAML with YAML-1.2 floats (PyYAML reads `1e-3` as a string otherwise)
# ---------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML: ``3e-4`` -> float, ``[1, 2]`` -> list, ``true`` -> bool, else str."""
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------------------------------------
# Building and validating
# ---------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _suggest(key: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; valid keys: {sorted(valid)}"


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints widen to floats, nothing else converts."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(typing.get_args(tp)[0])}, got {value!r}")
        items = [_coerce(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_coerce(k, kt, f"{key} key"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected bool (true/false), got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected float, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected str, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported config annotation {tp!r}")  # a bug in this module, not user input


def _check_allowed(value: Any, meta: typing.Mapping, key: str) -> None:
    choices, bounds = meta.get("choices"), meta.get("range")
    if choices is not None and value not in choices:
        lowered = {str(c).lower(): c for c in choices}
        close = difflib.get_close_matches(str(value).lower(), list(lowered), n=1, cutoff=0.5)
        hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
        raise ConfigError(f"{key}: expected one of {list(choices)}, got {value!r}{hint}")
    if bounds is not None:
        lo, hi = bounds
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{key}: expected a value in [{lo}, {hi if hi is not None else 'inf'}], got {value!r}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ConfigError(f"unknown config key {key!r}{_suggest(str(unknown[0]), fields)}")
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        if typing.get_origin(hints[name]) is dict and isinstance(value, dict):  # a mapping merges into its default
            value = {**fields[name].default_factory(), **value}
        kwargs[name] = _coerce(value, hints[name], key)
        _check_allowed(kwargs[name], fields[name].metadata, key)
    obj = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too: a bad default is a bug worth a clear message
        if name not in kwargs:
            _check_allowed(getattr(obj, name), f.metadata, f"{prefix}.{name}" if prefix else name)
    return obj


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``section.key=value`` to a raw (YAML) mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
    path, text = assignment.split("=", 1)
    keys = path.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {path}: {k!r} is not a section")
    node[keys[-1]] = parse_value(text)


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> RunConfig:
    """YAML file (optional) + ``--set`` overrides -> a validated :class:`RunConfig`."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {str(path)!r}")
        raw = yaml.load(path.read_text(), Loader=_Loader) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    for assignment in overrides:
        apply_override(raw, assignment)
    return _build(RunConfig, raw, "")


def from_dict(raw: dict, cls: type = RunConfig) -> Any:
    """Rebuild (and re-validate) a config written by :func:`to_dict`."""
    return _build(cls, raw, "")


def differing(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (configs, fingerprints)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differing(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_json(cfg: Any, path: str | Path | None = None) -> str:
    text = json.dumps(to_dict(cfg), indent=2, sort_keys=True)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text
