"""``python -m hpc_vdm.train [--config YAML] [--set k=v] [--run-dir D]``: the conditional VDM under DeepSpeed.

The same code runs as one CPU process, as N gloo processes (torchrun, ``srun``, ``mpiexec``) or on N GPUs
over M nodes; :mod:`hpc_vdm.dist` reads the launcher. One optimizer step = ``grad_accum`` micro-batches of
``data.batch_size`` maps on every rank. A run dir holds::

    config.json  ds_config.json  train.log  metrics.csv  tb/  checkpoints/  export/model.pt

and resumes by default. Everything that changes during a run is checkpointed: weights, optimizer and LR
schedule (DeepSpeed), the EMA (``ema.pt``), step/epoch/sampler position and the best validation score
(``client_state``; ``train.select_on`` names the metric). Random draws are keyed by (seed, rank, step,
micro-batch), so a resumed run repeats an uninterrupted one exactly. SIGTERM/SIGUSR2 set a flag that all
ranks agree on at the next step; all ranks save and the process exits with 75 (and rank 0 writes the tag to
``$HPC_VDM_REQUEUE_FILE`` when set), which ``slurm/train_multinode.sh`` turns into ``scontrol requeue``.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import signal
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch

from . import cli, dist, validate
from .checkpoint import Checkpoints, tag_for
from .config import ConfigError, RunConfig, to_dict
from .data import camels
from .data.dataset import MapsDataset, build_loader, read_attrs
from .diffusion import EMA, build_vdm, key_seed

log = logging.getLogger("hpc_vdm.train")

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint saved, requeue me
COMPARED = ("model", "diffusion")  # config sections a run must share with the checkpoints it resumes
STORE_KEYS = ("suite", "set", "fields", "stats", "box_size_mpc_h", "pixel_size_mpc_h", "slab_thickness_mpc_h",
              "map_pixels", "param_names")
METRICS = ("step", "kind", "epoch", "samples", "lr", "loss", "loss_diff", "loss_klz", "loss_recon", "gamma_0",
           "gamma_1", "samples_per_s", "val_bound", "val_loss_diff", "val_loss_klz", "val_loss_recon",
           "val_pk_ratio_err", "val_r_mean")
SELECT_SIGN = {"val_bound": 1.0, "val_pk_ratio_err": 1.0, "val_r_mean": -1.0}  # score = sign x metric, lower wins


# ---------------------------------------------------------------------------------------------
# Checks before anything is written
# ---------------------------------------------------------------------------------------------
def check_batch(cfg: RunConfig, world: int) -> int:
    """Global batch = micro-batch x accumulation x world, checked against ``train.global_batch`` when set."""
    derived = cfg.data.batch_size * cfg.train.grad_accum * world
    if cfg.train.global_batch and cfg.train.global_batch != derived:
        raise ConfigError(f"train.global_batch={cfg.train.global_batch} but data.batch_size ({cfg.data.batch_size})"
                          f" x train.grad_accum ({cfg.train.grad_accum}) x world ({world}) = {derived}")
    return derived


def check_selection(cfg: RunConfig) -> None:
    """The metric that picks the best checkpoint must be one the validation computes."""
    t = cfg.train
    if t.select_on != "val_bound" and t.val_sample_maps == 0:
        raise ConfigError(f"train.select_on={t.select_on!r} needs posterior samples in the validation, but "
                          f"train.val_sample_maps=0; set it > 0 or select on val_bound")


def check_store(cfg: RunConfig) -> dict:
    attrs = read_attrs(cfg.data.store)
    for name in (cfg.data.condition, cfg.data.target):
        if name not in attrs.get("fields", []):
            raise ValueError(f"field {name!r} is not in store {cfg.data.store!r} (fields: {attrs.get('fields')})")
    stride = 2 ** len(cfg.model.channel_mults)
    if attrs["map_pixels"] % stride:
        raise ValueError(f"maps of {attrs['map_pixels']} pixels do not divide by the U-Net stride {stride} "
                         f"(model.channel_mults has {len(cfg.model.channel_mults)} levels)")
    if not attrs["splits"].get("train"):
        raise ValueError(f"store {cfg.data.store!r} has no training simulations")
    return {k: attrs[k] for k in STORE_KEYS if k in attrs}


def config_diff(a: dict, b: dict, sections=COMPARED) -> list[str]:
    return [f"{s}.{k}: {a[s].get(k)!r} (checkpoint) != {b[s].get(k)!r} (this run)"
            for s in sections for k in sorted(set(a.get(s, {})) | set(b.get(s, {}))) if a[s].get(k) != b[s].get(k)]


def check_run_dir(cfg: RunConfig, run_dir: Path, store_attrs: dict) -> None:
    """A run dir with checkpoints must be resumed by the same model, or left alone."""
    ckpts = Checkpoints(run_dir / "checkpoints")
    tags = [t for t in ckpts.tags() if ckpts.manifest(t)]
    if not tags:
        return
    if not cfg.train.resume:
        raise FileExistsError(f"{str(run_dir)!r} already holds checkpoints ({tags[0]}) and train.resume=false; "
                              f"choose another --run-dir (nothing was changed)")
    meta = ckpts.manifest(tags[0])
    diff = config_diff(meta["config"], to_dict(cfg))
    if meta["store"].get("stats") != store_attrs.get("stats"):
        diff.append("data statistics of the store differ (another maps.zarr)")
    if diff:
        raise ConfigError(f"{str(run_dir / 'checkpoints' / tags[0])!r} was written by another model or config: "
                          + "; ".join(diff[:6]) + ". Use a new --run-dir to train this one.")


# ---------------------------------------------------------------------------------------------
# DeepSpeed
# ---------------------------------------------------------------------------------------------
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


def gathered(module, zero_stage: int):
    """A context in which ``module``'s full parameters are visible (ZeRO-3 gathers them)."""
    if zero_stage == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------
# Run-dir bookkeeping
# ---------------------------------------------------------------------------------------------
class Preemption:
    """SIGTERM/SIGUSR2 -> a local flag; :meth:`agreed` all-reduces it at a step boundary."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

    def __init__(self):
        self.flag = False
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.flag = True
        log.warning("received %s; will checkpoint at the next step and exit", signal.Signals(signum).name)


class MetricsLog:
    """metrics.csv (+ TensorBoard) on rank 0; a resumed run first drops rows after its step."""

    def __init__(self, run_dir: Path, *, enabled: bool, start_step: int, tensorboard: bool):
        self.enabled, self.file, self.tb = enabled, None, None
        if not enabled:
            return
        path = run_dir / "metrics.csv"
        rows = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, METRICS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, METRICS)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float):
                    self.tb.add_scalar(f"{row['kind']}/{k}", v, row["step"])

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def step_seed(seed: int, rank: int, step: int, micro: int) -> int:
    """The torch seed of one micro-batch: times, noise and dropout depend only on (seed, rank, step, micro)."""
    return key_seed(seed, rank, step, micro)


def _log_to_file(run_dir: Path) -> None:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.getLogger("hpc_vdm").addHandler(handler)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def train(cfg: RunConfig) -> int:
    """Train (or resume) the run in ``cfg.train.run_dir``; returns 0, or 75 after a preemption checkpoint."""
    t_cfg, run_dir = cfg.train, Path(cfg.train.run_dir)
    env = dist.detect()
    check_batch(cfg, env.world)
    check_selection(cfg)
    store_attrs = check_store(cfg)
    check_run_dir(cfg, run_dir, store_attrs)
    device = dist.pick_device(env, t_cfg.device, "train.device")

    dist.init(env, device)
    import deepspeed

    warnings.filterwarnings("ignore", message=r".*torch\.distributed\.\w+`? is deprecated", category=FutureWarning)
    rank, world, main = env.rank, env.world, env.is_main
    if main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        _log_to_file(run_dir)
    dist.barrier()
    ckpts = Checkpoints(run_dir / "checkpoints", rank=rank, keep_last=t_cfg.keep_last)
    resume_tag = ckpts.find_resumable() if t_cfg.resume else None
    resume_meta = ckpts.manifest(resume_tag) if resume_tag else None
    universal = bool(resume_meta and resume_meta["world"] != world and resume_meta["zero_stage"] > 0)
    load_dir = ckpts.universal(resume_tag) if universal else ckpts.root

    config = ds_config(cfg, world, load_universal=universal)
    if main:
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
        (run_dir / "ds_config.json").write_text(json.dumps(config, indent=2) + "\n")
        log.info("world %d (%s) on %s: global batch %d = %d maps x %d accumulation x %d ranks; ZeRO %d, %s",
                 world, env.launcher, device, config["train_batch_size"], cfg.data.batch_size, t_cfg.grad_accum,
                 world, t_cfg.zero_stage, t_cfg.precision)

    torch.manual_seed(t_cfg.seed)  # identical initial weights on every rank
    n_params = len(camels.PARAM_NAMES)
    vdm = build_vdm(cfg.model, cfg.diffusion, n_params=n_params)
    ema = EMA(vdm.named_parameters(), t_cfg.ema_decay)  # fp32 copy of the initial weights
    ema_model = build_vdm(cfg.model, cfg.diffusion, n_params=n_params).to(device)
    if main:
        log.info("score U-Net: %.2f M parameters", sum(p.numel() for p in vdm.score.parameters()) / 1e6)
    if device.type == "cuda" and t_cfg.channels_last:
        vdm = vdm.to(memory_format=torch.channels_last)
    if t_cfg.compile:
        vdm.score.compile()
    schedule = partial(lr_factor, warmup=t_cfg.warmup_steps, schedule=t_cfg.lr_schedule, period=t_cfg.restart_steps,
                       mult=t_cfg.restart_mult, floor=t_cfg.lr_min / t_cfg.lr if t_cfg.lr > 0 else 0.0)
    engine, _, _, _ = deepspeed.initialize(
        model=vdm, model_parameters=[p for p in vdm.parameters() if p.requires_grad], config=config,
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))

    state = {"step": 0, "epoch": 0, "position": 0, "samples": 0, "world": world, "best_val": math.inf,
             "best_on": t_cfg.select_on}
    if resume_tag:
        _, client = engine.load_checkpoint(str(load_dir), tag=resume_tag, load_module_strict=True)
        if client is None:
            raise RuntimeError(f"DeepSpeed could not load checkpoint {resume_tag} from {load_dir}")
        ema.load_state_dict(torch.load(ckpts.root / resume_tag / "ema.pt", map_location="cpu", weights_only=True))
        state.update(client["train_state"])
        if state["world"] != world:  # same global sample count, spread over the new world
            state["position"] = state["position"] * state["world"] // world
            state["world"] = world
        if state.get("best_on", "val_bound") != t_cfg.select_on:  # scores of another metric do not compare
            if main:
                log.info("best checkpoint now selected on %s (was %s)", t_cfg.select_on, state.get("best_on"))
            state["best_val"], state["best_on"] = math.inf, t_cfg.select_on
        if main:
            log.info("resumed from %s (step %d, epoch %d%s)", resume_tag, state["step"], state["epoch"],
                     ", universal checkpoint" if universal else "")

    _, sampler, loader = build_loader(cfg.data, "train", rank=rank, world=world, train=True)
    val_ds = MapsDataset(cfg.data.store, "val", condition=cfg.data.condition, target=cfg.data.target)
    sampler.set_epoch(state["epoch"], state["position"])
    batches = iter(loader)
    metrics = MetricsLog(run_dir, enabled=main, start_step=state["step"], tensorboard=t_cfg.tensorboard)
    preempt = Preemption()

    def client_state() -> dict:
        return {"train_state": dict(state), "config": to_dict(cfg),
                "rng": {"seed": t_cfg.seed, "scheme": "torch.manual_seed(step_seed(seed, rank, step, micro))"},
                "ema": {"file": "ema.pt", "updates": ema.updates, "decay": ema.decay},
                "universal_checkpoint_info": {"universal_checkpoint_version": 0.4}}

    def save() -> str:
        return ckpts.save(engine, state["step"], client_state(), extra_files={"ema.pt": ema.state_dict()},
                          meta={"config": to_dict(cfg), "store": store_attrs})

    def validation() -> dict:
        ema.copy_to(ema_model)
        kw = dict(rank=rank, world=world, device=device, param_conditioning=cfg.model.param_conditioning,
                  seed=t_cfg.seed)
        out = validate.bound(ema_model, val_ds, n_maps=t_cfg.val_maps, n_times=t_cfg.val_times, **kw)
        if t_cfg.val_sample_maps:
            out.update(validate.sample_spectra(ema_model, val_ds, n_maps=t_cfg.val_sample_maps,
                                               n_steps=t_cfg.val_sample_steps, box_mpc_h=store_attrs["box_size_mpc_h"],
                                               **kw))
        return out

    from tqdm.auto import tqdm

    bar = tqdm(total=t_cfg.steps, initial=state["step"], desc="train", unit="step", dynamic_ncols=True,
               disable=not (main and t_cfg.progress), mininterval=1.0 if os.isatty(2) else 30.0)
    sums, t_log, last_ckpt_time = np.zeros(5), time.time(), time.time()
    exit_code = 0
    engine.train()
    while state["step"] < t_cfg.steps:
        for micro in range(t_cfg.grad_accum):
            try:
                batch = next(batches)
            except StopIteration:
                state["epoch"], state["position"] = state["epoch"] + 1, 0
                sampler.set_epoch(state["epoch"])
                batches = iter(loader)
                batch = next(batches)
            torch.manual_seed(step_seed(t_cfg.seed, rank, state["step"], micro))
            x, cond = batch["target"].to(device), batch["condition"].to(device)
            params = (torch.from_numpy(camels.normalise_params(batch["params"].numpy())).to(device)
                      if cfg.model.param_conditioning else None)
            out = engine(x, cond, params)
            engine.backward(out.loss.mean())
            engine.step()
            state["position"] += len(x)
            sums += [out.loss.sum().item(), out.loss_diff.sum().item(), out.loss_klz.sum().item(),
                     out.loss_recon.sum().item(), len(x)]
        state["step"] += 1
        state["samples"] += int(config["train_batch_size"])
        with gathered(engine.module, t_cfg.zero_stage):
            ema.update(engine.module.named_parameters())
        step = state["step"]
        bar.update(1)

        # one collective per step: preemption flags and rank 0's checkpoint clock
        clock = main and t_cfg.ckpt_minutes > 0 and time.time() - last_ckpt_time > 60 * t_cfg.ckpt_minutes
        preempted, timed = dist.all_reduce([preempt.flag, clock], device, op="max")
        last = step == t_cfg.steps

        if step % t_cfg.log_every == 0 or last:
            total = dist.all_reduce(sums, device, op="sum")
            n = max(total[4], 1.0)
            row = {"step": step, "kind": "train", "epoch": state["epoch"], "samples": state["samples"],
                   "lr": engine.get_lr()[0], "loss": total[0] / n, "loss_diff": total[1] / n,
                   "loss_klz": total[2] / n, "loss_recon": total[3] / n, "gamma_0": float(out.gamma_0),
                   "gamma_1": float(out.gamma_1), "samples_per_s": total[4] / max(time.time() - t_log, 1e-9)}
            metrics.write(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
            sums, t_log = np.zeros(5), time.time()

        improved = False
        if (t_cfg.val_every and step % t_cfg.val_every == 0) or last:
            val = validation()
            metrics.write({"step": step, "kind": "val", "epoch": state["epoch"], "samples": state["samples"], **val})
            if main:
                log.info("step %d validation: %s", step, ", ".join(f"{k}={v:.5g}" for k, v in val.items()))
            score = SELECT_SIGN[t_cfg.select_on] * val.get(t_cfg.select_on, math.nan)
            if score < state["best_val"]:  # NaN (no held-out maps) never wins
                state["best_val"], improved = score, True
            engine.train()

        if step % t_cfg.ckpt_every == 0 or timed or preempted or last or improved:
            tag = save()
            last_ckpt_time = time.time()
            if improved:
                ckpts.mark_best(tag, t_cfg.select_on, SELECT_SIGN[t_cfg.select_on] * state["best_val"])
        if preempted:
            if main and os.environ.get("HPC_VDM_REQUEUE_FILE"):
                # the batch script's cue: srun may report 143 instead of 75 when it kills the slower ranks
                Path(os.environ["HPC_VDM_REQUEUE_FILE"]).write_text(tag_for(step) + "\n")
            if main:
                log.warning("preempted: checkpoint %s saved at step %d; exiting with %d so the job requeues",
                            tag_for(step), step, EXIT_PREEMPTED)
            exit_code = EXIT_PREEMPTED
            break
    bar.close()
    metrics.close()

    if exit_code == 0 and t_cfg.export and main:
        from .export import export_run

        path = export_run(run_dir, t_cfg.export_tag)
        log.info("exported %s", path)
    dist.barrier()
    return exit_code


def main(argv=None) -> int:
    p = cli.parser("python -m hpc_vdm.train", "train the conditional VDM with DeepSpeed (any launcher)")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="run config (same as --config)")
    p.add_argument("--run-dir", help="run folder (train.run_dir)")
    p.add_argument("--steps", type=int, help="optimizer steps (train.steps)")

    def body(argv):
        args = p.parse_args(argv)
        if args.config_file and args.config:
            raise ConfigError("give the config once: positional CONFIG or --config")
        args.config = args.config or args.config_file
        cli.setup_logging(verbose=dist.env_rank() == 0)
        cfg = cli.resolve(args, {"run_dir": "train.run_dir", "steps": "train.steps"})
        return train(cfg)

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
