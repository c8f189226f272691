"""The DeepSpeed side of training: the generated JSON config, the LR schedule, the engine, ZeRO-3 gathers.

Nothing here knows a model family: the loop hands in a module and the train section of the config.
"""
from __future__ import annotations

import contextlib
import math
from functools import partial

import torch

from ..config import ConfigError, RunConfig


def check_batch(cfg: RunConfig, world: int) -> int:
    """Global batch = micro-batch x accumulation x world, checked against ``train.global_batch`` when set."""
    derived = cfg.data.batch_size * cfg.train.grad_accum * world
    if cfg.train.global_batch and cfg.train.global_batch != derived:
        raise ConfigError(f"train.global_batch={cfg.train.global_batch} but data.batch_size ({cfg.data.batch_size})"
                          f" x train.grad_accum ({cfg.train.grad_accum}) x world ({world}) = {derived}")
    return derived


def lr_factor(step: int, *, warmup: int, schedule: str, period: int, mult: int, floor: float) -> float:
    """Multiplier of the peak LR at optimizer step ``step``: linear warm-up, then constant or cosine restarts."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    s, cycle = step - warmup, period
    while s >= cycle:  # cycles of length period, period*mult, ...
        s, cycle = s - cycle, cycle * mult
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * s / cycle))


def ds_config(cfg: RunConfig, world: int, *, load_universal: bool = False) -> dict:
    """The DeepSpeed JSON, generated from the config (never hand-edited; written to run_dir/ds_config.json)."""
    t = cfg.train
    return {
        "train_micro_batch_size_per_gpu": cfg.data.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "train_batch_size": cfg.data.batch_size * t.grad_accum * world,
        "gradient_clipping": t.grad_clip,  # explicit: DeepSpeed's default changed from 0 to 1.0 in 2026
        "zero_optimization": {"stage": t.zero_stage},
        "bf16": {"enabled": t.precision == "bf16"},
        "fp16": {"enabled": False},
        "optimizer": {"type": "AdamW", "params": {"lr": t.lr, "betas": list(t.betas), "eps": 1e-8,
                                                   "weight_decay": t.weight_decay, "torch_adam": True}},
        "checkpoint": {"load_universal": load_universal},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def initialize(module: torch.nn.Module, cfg: RunConfig, config: dict):
    """Wrap ``module`` in a DeepSpeed engine with AdamW and the config's LR schedule (a LambdaLR)."""
    import deepspeed

    t = cfg.train
    schedule = partial(lr_factor, warmup=t.warmup_steps, schedule=t.lr_schedule, period=t.restart_steps,
                       mult=t.restart_mult, floor=t.lr_min / t.lr if t.lr > 0 else 0.0)
    engine, _, _, _ = deepspeed.initialize(
        model=module, model_parameters=[p for p in module.parameters() if p.requires_grad], config=config,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
    return engine


def gathered(module, zero_stage: int):
    """A context in which ``module``'s full parameters are visible (ZeRO-3 gathers them)."""
    if zero_stage == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
    return contextlib.nullcontext()
