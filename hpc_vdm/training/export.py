"""A run's checkpoint -> ``run_dir/export/model.pt`` (the format of :mod:`hpc_vdm.bundle`).

The weights are consolidated to fp32 from any ZeRO stage and world size; the EMA comes from the
checkpoint's ``ema.pt``; the config, kind and store facts from its manifest.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..bundle import build_module, builder, write_export
from ..config import ConfigError, from_dict
from ..families import family_class
from ..io import MODEL, check_output
from .checkpoint import Checkpoints, safe_load

log = logging.getLogger(__name__)


def consolidated_weights(ckpt_root: Path, tag: str) -> dict:
    """fp32 state dict of the trained module from a DeepSpeed checkpoint (any ZeRO stage, any world)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    folder = ckpt_root / tag
    if (folder / "mp_rank_00_model_states.pt").is_file() and not any(folder.glob("*optim_states.pt")):
        # ZeRO 0 in fp32: the module is the master copy (DeepSpeed's own file, verified by the manifest)
        state = safe_load(folder / "mp_rank_00_model_states.pt")["module"]
        return {k: v.float() for k, v in state.items()}
    weights = {k: v.float() for k, v in get_fp32_state_dict_from_zero_checkpoint(str(ckpt_root), tag=tag).items()}
    # parameters that never require gradients (frozen ones: two_phase's gate, dm2gal's BatchNorm statistics) are
    # not in the optimizer's partitions DeepSpeed consolidates; ZeRO 1/2 keep them whole in the module state
    # (ZeRO 3 partitions every parameter and DeepSpeed's consolidation merges the frozen ones itself: its module
    # states, named zero_pp_rank_*, hold empty placeholders)
    states = folder / "mp_rank_00_model_states.pt"
    module = safe_load(states)["module"] if states.is_file() else {}
    return weights | {k: v.float() for k, v in module.items() if k not in weights and v.numel() > 0}


def facts(config: dict, store_attrs: dict, weights: dict) -> dict:
    """The family's facts of the trained (EMA) network: its locality, and what its use needs."""
    cfg = from_dict(config)
    family = family_class(cfg.model.kind)(cfg)
    family.store_attrs, family.norm = store_attrs, builder(cfg.model.kind).normalisation(cfg, store_attrs)
    module = build_module(cfg)
    module.load_state_dict(weights)
    return family.export_facts(module.eval())


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
    raw = consolidated_weights(run_dir / "checkpoints", tag)
    try:
        found = facts(meta["config"], meta["store"], ema["shadow"])
    except (KeyError, RuntimeError, ConfigError) as e:  # a manifest without a field's statistics, weights off its config
        raise ValueError(f"checkpoint {tag} of {str(run_dir)!r} cannot be exported: its manifest and weights do not "
                         f"describe one model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r})") from None
    write_export(out, raw=raw, ema=ema["shadow"], config=meta["config"], store_attrs=meta["store"], step=meta["step"],
                 tag=tag, facts=found, overwrite=overwrite, inputs=[run_dir / "checkpoints"])
    log.info("exported %s (step %d) to %s", tag, meta["step"], out)
    return out
