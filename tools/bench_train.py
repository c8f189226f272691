#!/usr/bin/env python
"""Benchmark: training steps/s and samples/s of the papers' U-Net (32.7 M) at 256², batch 12 (JSON on stdout).

    python tools/bench_train.py [--device cpu|cuda] [--steps 3] [--batch 12] [--pixels 256]
                                [--variants fp32,bf16,channels_last,compile] [--tiny | --config CONFIG]

``--config`` benchmarks the module of a run's config instead, built as training builds it (e.g. the CPU
science network of configs/science.yaml at ``--pixels 64 --batch 8``, with its prior and its parameter
embedding, fed random normalised parameter rows).

Every variant runs one full optimizer step (forward, backward, clip, AdamW) of the VDM bound on random maps.
The baseline, measured in the same run, is the plain-PyTorch fp32 step (torch.optim.AdamW, no DeepSpeed);
``deepspeed_fp32`` is the same step through a 1-process DeepSpeed ZeRO-1 engine, so its ratio is the engine's
overhead. GPU variants (bf16 autocast-free bf16 weights as DeepSpeed does, channels_last, torch.compile) run
where CUDA is present. The papers report ~0.2 s/step on one A100 (``reference_a100_s_per_step``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402

from hpc_vdm.bundle import build_module  # noqa: E402
from hpc_vdm.config import RunConfig, load_config  # noqa: E402

PAPER_A100_S_PER_STEP = 0.2


def make_vdm(tiny: bool, device, dtype=torch.float32, channels_last=False, compile_=False, config: str | None = None):
    cfg = load_config(config) if config else RunConfig()
    if tiny:
        cfg.model.channels, cfg.model.channel_mults, cfg.model.norm_groups = 8, [1, 2, 2, 2], 4
    torch.manual_seed(0)
    vdm = build_module(cfg).to(device)                                  # as training builds it
    vdm.score.to(dtype)
    if channels_last:
        vdm = vdm.to(memory_format=torch.channels_last)
    if compile_:
        vdm.score.compile()
    return vdm, cfg


def param_rows(cfg, batch: int, device) -> torch.Tensor | None:
    """(B, P) random normalised rows of the config's ``model.params`` (in [0, 1]), or None without any."""
    n = len(cfg.model.params)
    return torch.rand(batch, n, generator=torch.Generator().manual_seed(2)).to(device) if n else None


def plain_step(vdm, opt, x, c, p=None):
    def step():
        opt.zero_grad(set_to_none=True)
        vdm(x, c, p).loss.mean().backward()
        torch.nn.utils.clip_grad_norm_(vdm.parameters(), 0.5)
        opt.step()
        if x.is_cuda:
            torch.cuda.synchronize()
    return step


def deepspeed_step(vdm, cfg, x, c, bf16: bool, p=None):
    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not x.is_cuda else "cuda")
    from hpc_vdm import dist
    from hpc_vdm.training.engine import ds_config

    env = dist.detect()
    if not torch.distributed.is_initialized():
        dist.init(env, x.device)
    import deepspeed

    cfg.data.batch_size = x.shape[0]
    cfg.train.precision = "bf16" if bf16 else "fp32"
    engine, *_ = deepspeed.initialize(model=vdm, model_parameters=[p for p in vdm.parameters() if p.requires_grad],
                                      config=ds_config(cfg, 1))

    def step():
        out = engine(x, c, p)
        engine.backward(out.loss.mean())
        engine.step()
        if x.is_cuda:
            torch.cuda.synchronize()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant (best of)")
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--pixels", type=int, default=256)
    p.add_argument("--tiny", action="store_true", help="the tiny test U-Net instead of the papers' (smoke runs)")
    p.add_argument("--config", default=None, help="the score network of this run config instead of the papers'")
    p.add_argument("--variants", default=None,
                   help="comma list of plain_fp32, deepspeed_fp32, bf16, channels_last, compile (default: all that apply)")
    args = p.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    variants = args.variants.split(",") if args.variants else (
        ["plain_fp32", "deepspeed_fp32"] + (["deepspeed_bf16", "channels_last", "compile"] if gpu else []))
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(1)
    x = torch.randn(args.batch, 1, args.pixels, args.pixels, device=device)
    c = torch.randn_like(x)
    results = {}
    for name in variants:
        vdm, cfg = make_vdm(args.tiny, device, channels_last=name == "channels_last", compile_=name == "compile",
                            config=args.config)
        n_params = sum(p.numel() for p in vdm.score.parameters())
        rows = param_rows(cfg, args.batch, device)
        if name.startswith("deepspeed"):
            step = deepspeed_step(vdm, cfg, x, c, bf16=name.endswith("bf16"), p=rows)
        else:
            step = plain_step(vdm, torch.optim.AdamW(vdm.parameters(), lr=1e-4, weight_decay=1e-5), x, c, rows)
        t0 = time.perf_counter()
        step()  # warm-up (and compilation)
        warm = time.perf_counter() - t0
        s = best_of(step, args.steps)
        results[name] = {"s_per_step": s, "steps_per_s": 1 / s, "samples_per_s": args.batch / s, "warmup_s": warm}
        print(f"{name}: {s:.3f} s/step", file=sys.stderr)
    base = results[variants[0]]["s_per_step"]
    model = args.config or ("tiny" if args.tiny else "papers' U-Net (E=48, x1/2/4/8, attention)")
    out = {"bench": "train", "model": model,
           "parameters_M": n_params / 1e6,
           "pixels": args.pixels, "batch": args.batch, "device": str(device),
           "device_name": torch.cuda.get_device_name(device) if gpu else platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
           "results": results, "baseline": variants[0],
           "ratio_vs_baseline": {k: v["s_per_step"] / base for k, v in results.items()},
           "reference_a100_s_per_step": PAPER_A100_S_PER_STEP,
           "ratio_vs_reference_a100": {k: v["s_per_step"] / PAPER_A100_S_PER_STEP for k, v in results.items()}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
