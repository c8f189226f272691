"""The exported model: ``run_dir/export/model.pt`` written from a checkpoint, read back as a typed bundle.

The file holds plain data only — consolidated fp32 weights (raw and EMA), the resolved config, the task
and the store facts (statistics, pixel scale, fields) — so it loads with ``torch.load(weights_only=True)``
(no file a user hands in can run code) and without DeepSpeed. :func:`load_bundle` turns it into a
:class:`ModelBundle`: the module, its typed config and the normalisation of its fields and parameters,
which is all ``sample``, ``tile`` and later commands need.
"""
from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError, RunConfig, from_dict
from ..data.transforms import MapNormalisation
from ..io import MODEL, acquire_lock, atomic_save, check_output, writing
from .checkpoint import Checkpoints, safe_load

log = logging.getLogger(__name__)

FORMAT = "hpc_vdm.export/2"
OLD_FORMATS = ("hpc_vdm.export/1",)  # VDM only; had diffusion.sample_steps


def consolidated_weights(ckpt_root: Path, tag: str) -> dict:
    """fp32 state dict of the trained module from a DeepSpeed checkpoint (any ZeRO stage, any world)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    folder = ckpt_root / tag
    if (folder / "mp_rank_00_model_states.pt").is_file() and not any(folder.glob("*optim_states.pt")):
        # ZeRO 0 in fp32: the module is the master copy (DeepSpeed's own file, verified by the manifest)
        state = safe_load(folder / "mp_rank_00_model_states.pt")["module"]
        return {k: v.float() for k, v in state.items()}
    return {k: v.float() for k, v in get_fp32_state_dict_from_zero_checkpoint(str(ckpt_root), tag=tag).items()}


def write_export(path: Path, *, raw: dict, ema: dict, config: dict, store_attrs: dict, step: int, tag: str,
                 overwrite: bool = False, inputs=()) -> Path:
    """model.pt, atomically, under its lock; an existing file is replaced only with ``overwrite`` and only if
    it is an hpc_vdm export (never a path among or inside ``inputs``)."""
    path = Path(path)
    check_output(path, MODEL, inputs=inputs, overwrite=overwrite)
    kind = config.get("model", {}).get("kind", "vdm")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with acquire_lock(path):
            check_output(path, MODEL, inputs=inputs, overwrite=overwrite)  # another writer finished meanwhile?
            return atomic_save({"format": FORMAT, "task": kind, "config": config, "store": store_attrs,
                                "step": step, "tag": tag, "model": raw, "ema": ema}, path)


def export_run(run_dir: str | Path, tag: str = "latest", out: str | Path | None = None, *,
               overwrite: bool = False) -> Path:
    """Consolidate checkpoint ``tag`` (``latest``, ``best`` or a step tag) of a run dir into model.pt
    (an existing one is replaced only with ``overwrite``, and only if it is an export)."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "export" / "model.pt"
    check_output(out, MODEL, inputs=[run_dir / "checkpoints"], overwrite=overwrite)  # before the heavy work
    ckpts = Checkpoints(run_dir / "checkpoints")
    if tag == "latest":
        tag = ckpts.newest_intact()
    elif tag == "best":
        tag = (ckpts.best() or {}).get("tag")
    if not tag or ckpts.verify(tag) is not None:
        raise FileNotFoundError(f"no complete checkpoint {tag!r} in {str(run_dir / 'checkpoints')!r}")
    meta = ckpts.manifest(tag)
    ema = torch.load(run_dir / "checkpoints" / tag / "ema.pt", map_location="cpu", weights_only=True)
    write_export(out, raw=consolidated_weights(run_dir / "checkpoints", tag), ema=ema["shadow"],
                 config=meta["config"], store_attrs=meta["store"], step=meta["step"], tag=tag, overwrite=overwrite,
                 inputs=[run_dir / "checkpoints"])
    log.info("exported %s (step %d) to %s", tag, meta["step"], out)
    return out


@dataclass
class ModelBundle:
    """An exported model ready to use: module (eval mode), typed config, store facts, normalisation."""

    module: torch.nn.Module
    kind: str
    config: RunConfig
    store: dict
    norm: MapNormalisation
    step: int
    tag: str
    path: Path

    @property
    def conditions_on_params(self) -> bool:
        return bool(self.config.model.param_conditioning)

    @property
    def stride(self) -> int:
        """Map sizes must be multiples of this (the U-Net's total downsampling; 1 for the regressor)."""
        return int(getattr(self.module, "stride", None) or getattr(getattr(self.module, "score", None), "stride", 1))

    def params(self, rows: np.ndarray | None = None) -> torch.Tensor | None:
        """(n, 6) CAMELS parameter rows (default: the fiducial point) -> the model's normalised (n, 6), or None
        for a model that does not condition on them."""
        if not self.conditions_on_params:
            return None
        scaled = self.norm.fiducial() if rows is None else self.norm.params(np.atleast_2d(rows))
        return torch.as_tensor(scaled, dtype=torch.float32)

    def require(self, kind: str, command: str) -> "ModelBundle":
        """Refuse a model of another task, naming both."""
        if self.kind != kind:
            raise ValueError(f"{command} needs a {kind} model, but {str(self.path)!r} is a {self.kind} model "
                             f"(model.kind={self.kind!r})")
        return self


def read_export(path: str | Path) -> dict:
    """The export file as plain data; a missing, truncated, foreign or unsafe file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {str(path)!r} (train, or run `python -m hpc_vdm.export`)")
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
    if blob["format"] in OLD_FORMATS:
        blob = {**blob, "task": "vdm", "config": {**blob["config"], "diffusion": {
            k: v for k, v in blob["config"]["diffusion"].items() if k != "sample_steps"}}}
    return blob


def load_bundle(path: str | Path, which: str = "ema", device="cpu") -> ModelBundle:
    """:class:`ModelBundle` of an exported model; ``which`` = ``ema`` or ``raw`` weights."""
    from .tasks import task_class

    if which not in ("ema", "raw"):
        raise ValueError(f"which must be 'ema' or 'raw', got {which!r}")
    blob = read_export(path)
    try:
        cfg = from_dict(blob["config"])
    except ConfigError as e:
        raise ValueError(f"{str(path)!r} carries a config this version cannot read: {e}") from None
    module = task_class(blob["task"]).build_module(cfg)
    try:
        module.load_state_dict(blob["ema" if which == "ema" else "model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {str(path)!r} do not fit its own config: {str(e).splitlines()[0]}") from None
    store = dict(blob["store"])
    d = cfg.data
    norm = MapNormalisation(d.condition, d.target, {f: store["stats"][f] for f in (d.condition, d.target)})
    return ModelBundle(module=module.to(device).eval(), kind=blob["task"], config=cfg, store=store, norm=norm,
                       step=int(blob["step"]), tag=str(blob["tag"]), path=Path(path))

