#!/usr/bin/env python
"""Every check that needs a GPU, in one run of at most ~10 minutes on one H100/H200, into one JSON file.

    tools/gpu_check.sh [--out docs/results/gpu/gpu_check.json] [--budget-s 570] [--stages train zero ...]
    tools/gpu_check.sh --dry-run --out /tmp/gpu_check.json     # every stage on the CPU, tiny sizes (CI)

Stages, each in its own process with its own time limit (a stage that fails or runs out of time records
its error in the JSON, and the next one runs; the file is rewritten after every stage):

* ``train``: one optimizer step of the papers' U-Net (32.7 M) at 256², batch 12, plain PyTorch AdamW:
  fp32 (TF32 on), bf16 autocast, channels_last + bf16, torch.compile + bf16 (tools/bench_train.py's pieces).
* ``zero``: the same step through DeepSpeed ZeRO 0, 1 and 2 (fp32 and ZeRO-1 bf16) against plain
  PyTorch and 1-process DDP: the engines' own overhead (their per-parameter hooks) on one GPU.
* ``sampling``: posterior samples/s at 256² of the papers' network (batch 16), for the reference ancestral
  sampler (projected from ``SAMPLING_NFE`` evaluations to 250, linear in evaluations) and the few-step
  default of ``hpc_vdm.diffusion.sampler`` (run in full), fp32 and bf16 autocast.
* ``tile``: tools/bench_tile.py on a whole TNG300 slab (2099²), both networks, both samplers: seconds per
  slab and node-hours for 123 slabs.
* ``dm2gal``: tools/bench_dm2gal.py, the dense dm2gal paint against the per-voxel loop, and its memory.

``--dry-run`` runs every stage on the CPU with tiny sizes (torch.compile skipped: minutes on a CPU), in
about two minutes, so that CI keeps the script from rotting (tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
STAGES = ("train", "zero", "sampling", "tile", "dm2gal")
LIMIT_S = {"train": 170, "zero": 120, "sampling": 80, "tile": 120, "dm2gal": 100}  # 590 s on a GPU in all
SAMPLING_NFE = 10


def stage_command(stage: str, dry: bool) -> list[str]:
    py = [sys.executable]
    if stage in ("train", "zero", "sampling"):
        return py + [str(TOOLS / "gpu_check.py"), "--child", stage] + (["--dry-run"] if dry else [])
    if stage == "tile":
        sizes = (["--networks", "science", "--field", "72", "--batch-size", "4", "--measure-nfe", "1", "--no-untiled",
                  "--min-time-s", "0", "--min-rounds", "1", "--device", "cpu"] if dry else
                 ["--networks", "science", "paper", "--field", "2099", "--batch-size", "32", "--measure-nfe", "2",
                  "--min-time-s", "5", "--device", "cuda"])
        return py + [str(TOOLS / "bench_tile.py")] + sizes
    if stage == "dm2gal":
        sizes = (["--channels", "2", "--block", "8", "--n", "8", "--voxels", "1", "--sizes", "8", "--device", "cpu"]
                 if dry else ["--channels", "16", "--block", "128", "--n", "256", "--voxels", "16", "--sizes",
                              "128,256", "--device", "cuda"])
        return py + [str(TOOLS / "bench_dm2gal.py")] + sizes
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")


def last_json(text: str):
    """The last JSON object a stage printed (its report), skipping any log lines before it."""
    decoder = json.JSONDecoder()
    found = None
    for i, ch in enumerate(text):
        if ch == "{" and (i == 0 or text[i - 1] == "\n"):
            try:
                found, _ = decoder.raw_decode(text[i:])
            except json.JSONDecodeError:
                continue
    if found is None:
        raise ValueError(f"the stage printed no JSON report; its output ends: {text[-300:]!r}")
    return found


def run_stage(stage: str, dry: bool, limit_s: float) -> dict:
    """Run one stage in its own process group; its JSON, or its error (exit code, timeout, output tail)."""
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(":"),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(stage_command(stage, dry), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the stage and whatever it started
        out, err = proc.communicate()
        return {"ok": False, "wall_s": round(time.perf_counter() - t0, 1),
                "error": f"timed out after {limit_s:.0f} s", "stderr_tail": err[-2000:]}
    res = {"ok": proc.returncode == 0, "wall_s": round(time.perf_counter() - t0, 1)}
    try:
        res["result"] = last_json(out)
    except ValueError as e:
        res["ok"] = False
        res["error"] = str(e)
    if proc.returncode:
        res["error"] = f"exit code {proc.returncode}"
    if not res["ok"]:
        res["stderr_tail"] = err[-2000:]
    return res


def environment() -> dict:
    import importlib.util

    env = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
           "packages": {m: importlib.util.find_spec(m) is not None
                        for m in ("torch", "deepspeed", "numba", "pyfftw", "zarr", "dask")}}
    try:
        env["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                       timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        env["commit"] = None
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError as e:
        env["torch"] = f"missing: {e}"
    return env


def drive(a) -> int:
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = {"gpu_check": 1, "dry_run": a.dry_run, "budget_s": a.budget_s, "environment": environment(),
              "stages": {}}
    for stage in a.stages:
        left = a.budget_s - (time.perf_counter() - t0)
        if left < 10:
            report["stages"][stage] = {"ok": False, "error": f"not run: the {a.budget_s} s budget was spent"}
        else:
            limit = min(LIMIT_S[stage] * (2 if a.dry_run else 1), left)  # a shared CPU is slower than its sizes say
            print(f"[gpu_check] {stage} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
            report["stages"][stage] = run_stage(stage, a.dry_run, limit)
        report["total_s"] = round(time.perf_counter() - t0, 1)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(out)
    failed = [s for s, r in report["stages"].items() if not r["ok"]]
    print(f"[gpu_check] {len(a.stages) - len(failed)}/{len(a.stages)} stages ok in {report['total_s']} s -> {out}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# In-process stages (run as `gpu_check.py --child NAME`): each variant fails alone, the others still run
# ---------------------------------------------------------------------------------------------
def _setup(dry: bool):
    import torch

    device = torch.device("cpu" if dry or not torch.cuda.is_available() else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    return torch, device, sync


def _variant(results: dict, name: str, fn) -> None:
    """results[name] = fn(), or the error it raised; frees the GPU memory it held either way."""
    import torch

    try:
        results[name] = fn()
    except Exception as e:  # one variant's failure (a missing package, OOM) must not hide the others
        results[name] = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _timed_step(step, steps: int, sync, batch: int) -> dict:
    from _timing import best_of

    t0 = time.perf_counter()
    step()  # warm-up (and compilation)
    sync()
    warm = time.perf_counter() - t0

    def timed():
        step()
        sync()
    s = best_of(timed, steps)
    return {"s_per_step": s, "samples_per_s": batch / s, "warmup_s": warm}


def child_train(dry: bool) -> dict:
    """Plain-PyTorch steps of the papers' U-Net: fp32 (TF32), bf16 autocast, channels_last, torch.compile."""
    torch, device, sync = _setup(dry)
    from bench_train import make_vdm, plain_step

    batch, pixels, steps = (2, 32, 1) if dry else (12, 256, 3)
    x = torch.randn(batch, 1, pixels, pixels, device=device)
    c = torch.randn_like(x)
    variants = {"plain_fp32": (False, False, False), "bf16_autocast": (True, False, False),
                "channels_last_bf16": (True, True, False), "compile_bf16": (True, False, True)}
    results = {}
    for name, (bf16, channels_last, compile_) in variants.items():
        if compile_ and dry:
            results[name] = {"skipped": "dry run: torch.compile costs minutes on a CPU"}
            continue

        def run(bf16=bf16, channels_last=channels_last, compile_=compile_):
            vdm, _ = make_vdm(dry, device, channels_last=channels_last, compile_=compile_)
            step = plain_step(vdm, torch.optim.AdamW(vdm.parameters(), lr=1e-4, weight_decay=1e-5), x, c)
            if bf16:
                def step(inner=step):
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        inner()
            return _timed_step(step, steps, sync, batch)
        _variant(results, name, run)
    base = results["plain_fp32"].get("s_per_step")
    return {"stage": "train", "device": str(device), "model": "tiny" if dry else "papers' U-Net (32.7 M)",
            "batch": batch, "pixels": pixels, "results": results, "ratio_vs_plain_fp32": {
                k: v["s_per_step"] / base for k, v in results.items() if base and "s_per_step" in v}}


def child_zero(dry: bool) -> dict:
    """DeepSpeed ZeRO 0/1/2 against plain PyTorch and DDP, one process on one device."""
    torch, device, sync = _setup(dry)
    import torch.distributed as tdist

    from bench_train import deepspeed_step, make_vdm, plain_step
    from hpc_vdm import dist

    os.environ.setdefault("DS_ACCELERATOR", device.type)
    batch, pixels, steps = (2, 32, 1) if dry else (12, 256, 3)
    x = torch.randn(batch, 1, pixels, pixels, device=device)
    c = torch.randn_like(x)
    env = dist.detect()
    os.environ.update(MASTER_ADDR=env.master_addr, MASTER_PORT=str(env.master_port), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)
    results = {}

    def plain(wrap_ddp: bool):
        vdm, _ = make_vdm(dry, device)
        model = torch.nn.parallel.DistributedDataParallel(vdm) if wrap_ddp else vdm
        step = plain_step(model, torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5), x, c)
        return _timed_step(step, steps, sync, batch)

    def zero(stage: int, bf16: bool):
        vdm, cfg = make_vdm(dry, device)
        cfg.train.zero_stage = stage
        return _timed_step(deepspeed_step(vdm, cfg, x, c, bf16=bf16), steps, sync, batch)

    _variant(results, "plain_fp32", lambda: plain(False))
    _variant(results, "ddp_fp32", lambda: plain(True))
    for stage in (0, 1, 2):
        _variant(results, f"zero{stage}_fp32", lambda stage=stage: zero(stage, False))
    _variant(results, "zero1_bf16", lambda: zero(1, True))
    base = results["plain_fp32"].get("s_per_step")
    return {"stage": "zero", "device": str(device), "world": 1, "batch": batch, "pixels": pixels,
            "results": results, "ratio_vs_plain_fp32": {
                k: v["s_per_step"] / base for k, v in results.items() if base and "s_per_step" in v}}


def child_sampling(dry: bool) -> dict:
    """Posterior samples/s at 256²: the ancestral sampler (projected to 250 NFE) and the few-step default."""
    torch, device, sync = _setup(dry)
    from bench_train import make_vdm

    from hpc_vdm.diffusion import sample
    from hpc_vdm.diffusion import sampler as sampler_module

    batch, pixels = (2, 32) if dry else (16, 256)
    few = getattr(sampler_module, "DEFAULT_SAMPLER", "ancestral")
    few_nfe = getattr(sampler_module, "DEFAULT_STEPS", 24)
    vdm = make_vdm(dry, device)[0].eval()
    cond = torch.randn(batch, 1, pixels, pixels, device=device)
    plans = [("ancestral", 2 if dry else SAMPLING_NFE, 250)] + ([(few, 2 if dry else few_nfe, few_nfe)]
                                                                 if few != "ancestral" else [])
    results = {}
    for bf16 in (False, True):
        for name, nfe_run, nfe_full in plans:
            def run(name=name, nfe_run=nfe_run, nfe_full=nfe_full, bf16=bf16):
                kwargs = {} if name == "ancestral" else {"sampler": name}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    sample(vdm, cond, n_steps=1, **kwargs)  # warm-up
                    sync()
                    t0 = time.perf_counter()
                    sample(vdm, cond, n_steps=nfe_run, **kwargs)
                    sync()
                s_per_nfe = (time.perf_counter() - t0) / nfe_run
                return {"nfe_run": nfe_run, "nfe": nfe_full, "s_per_nfe_batch": s_per_nfe,
                        "samples_per_s": batch / (s_per_nfe * nfe_full), "projected": nfe_run != nfe_full}
            _variant(results, f"{name}_{'bf16' if bf16 else 'fp32'}", run)
    return {"stage": "sampling", "device": str(device), "model": "tiny" if dry else "papers' U-Net (32.7 M)",
            "batch": batch, "pixels": pixels, "results": results,
            "note": "samples/s = batch / (seconds per network evaluation x NFE); 'projected' when fewer NFE ran"}


def run_child(name: str, dry: bool) -> int:
    fn = {"train": child_train, "zero": child_zero, "sampling": child_sampling}[name]
    print(json.dumps(fn(dry), indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU with tiny sizes")
    p.add_argument("--out", default=None, help="the JSON report (default docs/results/gpu/gpu_check.json, "
                                               "or gpu_check_dry_run.json in the current folder)")
    p.add_argument("--budget-s", type=float, default=570.0, help="wall-clock budget of all stages together")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--child", choices=("train", "zero", "sampling"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return run_child(a.child, a.dry_run)
    a.out = a.out or ("gpu_check_dry_run.json" if a.dry_run else str(REPO / "docs" / "results" / "gpu" /
                                                                      "gpu_check.json"))
    return drive(a)


if __name__ == "__main__":
    sys.path.insert(0, str(TOOLS))
    raise SystemExit(main())
