"""``run_dir/export/model.pt``: consolidated fp32 weights (raw and EMA) + config, loadable without DeepSpeed.

``python -m hpc_vdm.export RUN_DIR [--tag latest|best|stepNNNNNNNN]`` re-exports any checkpoint;
:func:`load_model` is what ``sample`` and ``tile`` use.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from . import cli
from .config import from_dict

log = logging.getLogger(__name__)

FORMAT = "hpc_vdm.export/1"


def consolidated_weights(ckpt_root: Path, tag: str) -> dict:
    """fp32 state dict of the trained module from a DeepSpeed checkpoint (any ZeRO stage, any world)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    folder = ckpt_root / tag
    if (folder / "mp_rank_00_model_states.pt").is_file() and not any(folder.glob("*optim_states.pt")):
        state = torch.load(folder / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)["module"]
        return {k: v.float() for k, v in state.items()}  # ZeRO 0 in fp32: the module is the master copy
    return {k: v.float() for k, v in get_fp32_state_dict_from_zero_checkpoint(str(ckpt_root), tag=tag).items()}


def write_export(path: Path, *, raw: dict, ema: dict, config: dict, store_attrs: dict, step: int, tag: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "config": config, "store": store_attrs, "step": step, "tag": tag,
                "model": raw, "ema": ema}, tmp)
    os.replace(tmp, path)
    return path


def export_run(run_dir: str | Path, tag: str = "latest", out: str | Path | None = None) -> Path:
    """Consolidate checkpoint ``tag`` (``latest``, ``best`` or a step tag) of a run dir into model.pt."""
    from .checkpoint import Checkpoints

    run_dir = Path(run_dir)
    ckpts = Checkpoints(run_dir / "checkpoints")
    if tag == "latest":
        tag = ckpts.newest_intact()
    elif tag == "best":
        tag = (ckpts.best() or {}).get("tag")
    if not tag or ckpts.verify(tag) is not None:
        raise FileNotFoundError(f"no complete checkpoint {tag!r} in {str(run_dir / 'checkpoints')!r}")
    meta = ckpts.manifest(tag)
    ema = torch.load(run_dir / "checkpoints" / tag / "ema.pt", map_location="cpu", weights_only=True)
    out = Path(out) if out else run_dir / "export" / "model.pt"
    write_export(out, raw=consolidated_weights(run_dir / "checkpoints", tag), ema=ema["shadow"],
                 config=meta["config"], store_attrs=meta["store"], step=meta["step"], tag=tag)
    log.info("exported %s (step %d) to %s", tag, meta["step"], out)
    return out


def load_model(path: str | Path, which: str = "ema", device="cpu"):
    """(VDM in eval mode, export dict without weights) from model.pt; ``which`` is ``ema`` or ``raw``."""
    from .diffusion import build_vdm

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {str(path)!r} (train, or run `python -m hpc_vdm.export`)")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if blob.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not an hpc_vdm export (format {blob.get('format')!r})")
    if which not in ("ema", "raw"):
        raise ValueError(f"which must be 'ema' or 'raw', got {which!r}")
    cfg = from_dict(blob["config"])
    vdm = build_vdm(cfg.model, cfg.diffusion)
    vdm.load_state_dict(blob["ema" if which == "ema" else "model"])
    meta = {k: v for k, v in blob.items() if k not in ("model", "ema")}
    return vdm.to(device).eval(), meta


def main(argv=None) -> int:
    p = cli.parser("python -m hpc_vdm.export", "consolidate a run's checkpoint into run_dir/export/model.pt")
    p.add_argument("run_dir")
    p.add_argument("--tag", default="latest", help="latest, best, or a step tag such as step00001000")
    p.add_argument("--out", help="output file (default: RUN_DIR/export/model.pt)")

    def body(argv):
        args = p.parse_args(argv)
        cli.setup_logging()
        print(export_run(args.run_dir, args.tag, args.out))

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
