"""The one training loop, for any model family: launcher, DeepSpeed, EMA, checkpoints, preemption, metrics, export.

One optimizer step = ``train.grad_accum`` micro-batches of ``data.batch_size`` items on every rank. A run
dir holds ``config.json ds_config.json train.log metrics.csv tb/ checkpoints/ export/model.pt`` and
resumes by default. Everything that changes during a run is checkpointed: weights, optimizer and LR
schedule (DeepSpeed), the EMA (``ema.pt``), step/epoch/sampler position and the best validation score
(``client_state``). Random draws are keyed by (seed, rank, step, micro-batch), so a resumed run repeats
an uninterrupted one exactly. A preemption signal becomes a flag that all ranks agree on at the next
step; all ranks save, and the launcher's policy (:mod:`.preemption`) brings the job back.

The model family is a :class:`~hpc_vdm.families.Family`; this module never looks inside it.
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import dist
from ..config import RunConfig, to_dict
from ..diffusion import EMA, key_seed
from ..families import Family, make_family
from ..io import acquire_lock, writing
from . import engine as ds_engine
from . import preemption
from .checkpoint import Checkpoints, tag_for
from .metrics_log import MetricsLog
from .run_dir import check_run_dir, log_to_file, write_configs

log = logging.getLogger("hpc_vdm.train")

BASE_COLUMNS = ("step", "kind", "epoch", "samples", "lr", "loss")


def step_seed(seed: int, rank: int, step: int, micro: int) -> int:
    """The torch seed of one micro-batch: times, noise and dropout depend only on (seed, rank, step, micro)."""
    return key_seed(seed, rank, step, micro)


def columns(family: Family) -> tuple[str, ...]:
    """metrics.csv columns: the loop's and the family's."""
    return BASE_COLUMNS + family.loss_terms + family.extra_columns + ("samples_per_s",) + family.val_columns


class Trainer:
    """One run of one model family; :meth:`run` returns 0, or 75 after a preemption checkpoint."""

    def __init__(self, cfg: RunConfig, policy: preemption.Policy | None = None):
        self.cfg, self.t, self.run_dir = cfg, cfg.train, Path(cfg.train.run_dir)
        self.env = dist.detect()
        self.family = make_family(cfg)
        ds_engine.check_batch(cfg, self.env.world)  # everything is checked before anything is written
        self.select_on = self.family.selection()
        self.store_attrs = self.family.check()
        check_run_dir(cfg, self.run_dir, self.store_attrs, self.family.compared_sections)
        self.device = dist.pick_device(self.env, self.t.device, "train.device")
        self.policy = policy or preemption.choose()
        self.sign = self.family.sign(self.select_on)

    # -- start-up -----------------------------------------------------------------------------------
    def start(self) -> None:
        env, t = self.env, self.t
        dist.init(env, self.device)
        self._take_lock()
        warnings.filterwarnings("ignore", message=r".*torch\.distributed\.\w+`? is deprecated", category=FutureWarning)
        if env.is_main:
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            self.log_handler = log_to_file(self.run_dir)
        dist.barrier()
        self.ckpts = Checkpoints(self.run_dir / "checkpoints", rank=env.rank, world=env.world, keep_last=t.keep_last)
        resume_tag = self.ckpts.find_resumable() if t.resume else None
        resume_meta = self.ckpts.manifest(resume_tag) if resume_tag else None
        universal = bool(resume_meta and resume_meta["world"] != env.world and resume_meta["zero_stage"] > 0)
        self.ds_config = ds_engine.ds_config(self.cfg, env.world, load_universal=universal)
        if env.is_main:
            write_configs(self.run_dir, self.cfg, self.ds_config)
            log.info("%s family, world %d (%s) on %s: global batch %d = %d x %d accumulation x %d ranks; ZeRO %d, %s",
                     self.family.kind, env.world, env.launcher, self.device, self.ds_config["train_batch_size"],
                     self.cfg.data.batch_size, t.grad_accum, env.world, t.zero_stage, t.precision)
        self._build()
        self.log_window = None
        self.state = {"step": 0, "epoch": 0, "position": 0, "samples": 0, "world": env.world, "best_val": math.inf,
                      "best_on": self.select_on}
        if resume_tag:
            self._resume(resume_tag, self.ckpts.universal(resume_tag) if universal else self.ckpts.root, universal)
        self.sampler, self.loader = self.family.loaders(env.rank, env.world)
        self.sampler.set_epoch(self.state["epoch"], self.state["position"])
        self.batches = iter(self.loader)

    def _take_lock(self) -> None:
        """Rank 0 holds the run dir's lock while this run writes it; if another run holds it, every rank stops."""
        error = None
        if self.env.is_main:
            try:
                self.lock = acquire_lock(self.run_dir)
            except FileExistsError as e:
                error = str(e)
        error = dist.broadcast_object(error)
        if error:
            raise FileExistsError(error)

    def _build(self) -> None:
        t = self.t
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        module = self.family.build()
        self.ema = EMA(module.named_parameters(), t.ema_decay)  # fp32 copy of the initial weights
        self.ema_model = self.family.build().to(self.device)
        if self.env.is_main:
            n_all = sum(p.numel() for p in module.parameters())
            n_trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
            log.info("%s: %.2f M parameters%s", type(module).__name__, n_all / 1e6,
                     f" ({n_trained / 1e6:.2f} M trained, the rest frozen)" if n_trained < n_all else "")
        if self.device.type == "cuda" and t.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if t.compile:  # the network, not the arithmetic around it (the bound's, for the VDM)
            self.family.compiled(module).compile()
        self.engine = ds_engine.initialize(module, self.cfg, self.ds_config)

    def _resume(self, tag: str, load_dir: Path, universal: bool) -> None:
        _, client = self.engine.load_checkpoint(str(load_dir), tag=tag, load_module_strict=True)
        if client is None:
            raise RuntimeError(f"DeepSpeed could not load checkpoint {tag} from {load_dir}")
        self.ema.load_state_dict(torch.load(self.ckpts.root / tag / "ema.pt", map_location="cpu", weights_only=True))
        state = self.state
        state.update(client["train_state"])
        self.log_window = client.get("log_window")                  # the logging window the checkpoint cut
        if state["world"] != self.env.world:  # same global sample count, spread over the new world
            state["position"] = state["position"] * state["world"] // self.env.world
            state["world"] = self.env.world
        if state.get("best_on", "val_bound") != self.select_on:  # scores of another metric do not compare
            if self.env.is_main:
                log.info("best checkpoint now selected on %s (was %s)", self.select_on, state.get("best_on"))
            state["best_val"], state["best_on"] = math.inf, self.select_on
        if self.env.is_main:
            log.info("resumed from %s (step %d, epoch %d%s)", tag, state["step"], state["epoch"],
                     ", universal checkpoint" if universal else "")

    # -- pieces of a step ---------------------------------------------------------------------------
    def _next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.state["epoch"], self.state["position"] = self.state["epoch"] + 1, 0
            self.sampler.set_epoch(self.state["epoch"])
            self.batches = iter(self.loader)
            return next(self.batches)

    def _micro_batches(self) -> dict[str, float]:
        """Forward/backward/step of every micro-batch of one optimizer step; adds to the running sums."""
        extras = {}
        for micro in range(self.t.grad_accum):
            batch = self._next_batch()
            torch.manual_seed(step_seed(self.t.seed, self.env.rank, self.state["step"], micro))
            terms, extras = self.family.losses(self.engine, batch, self.device)
            loss = sum(terms.values())                                                 # (B,)
            self.engine.backward(loss.mean())
            self.engine.step()
            n = len(loss)
            self.state["position"] += n
            self.sums += [loss.sum().item(), *(terms[k].sum().item() for k in self.family.loss_terms), n]
        return extras

    def _log_row(self, extras: dict) -> None:
        total = dist.all_reduce(self.sums, self.device, op="sum")
        n = max(total[-1], 1.0)
        terms = {k: total[1 + i] / n for i, k in enumerate(self.family.loss_terms)}
        row = {"step": self.state["step"], "kind": "train", "epoch": self.state["epoch"],
               "samples": self.state["samples"], "lr": self.engine.get_lr()[0], "loss": total[0] / n, **terms,
               **extras, "samples_per_s": total[-1] / max(time.time() - self.t_log, 1e-9)}
        self.metrics.write(row)
        self.bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
        self.sums, self.t_log = np.zeros(len(self.family.loss_terms) + 2), time.time()

    def _validate(self) -> bool:
        """Validate the EMA weights; True when the selection metric improved."""
        self.ema.copy_to(self.ema_model)
        self.ema_model.eval()
        val = self.family.validate(self.ema_model, dist.Ranks(self.env.rank, self.env.world, self.device))
        s = self.state
        self.metrics.write({"step": s["step"], "kind": "val", "epoch": s["epoch"], "samples": s["samples"], **val})
        if self.env.is_main:
            log.info("step %d validation: %s", s["step"], ", ".join(f"{k}={v:.5g}" for k, v in val.items()))
        self.engine.train()
        score = self.sign * val.get(self.select_on, math.nan)
        if score < s["best_val"]:  # NaN (no held-out maps) never wins
            s["best_val"] = score
            return True
        return False

    def _save(self) -> str:
        s, t = self.state, self.t
        window = {"sums": dist.all_reduce(self.sums, self.device, op="sum"), "seconds": time.time() - self.t_log}
        client = {"train_state": dict(s), "log_window": window, "config": to_dict(self.cfg), "task": self.family.kind,
                  "rng": {"seed": t.seed, "scheme": "torch.manual_seed(step_seed(seed, rank, step, micro))"},
                  "ema": {"file": "ema.pt", "updates": self.ema.updates, "decay": self.ema.decay},
                  "universal_checkpoint_info": {"universal_checkpoint_version": 0.4}}
        return self.ckpts.save(self.engine, s["step"], client, extra_files={"ema.pt": self.ema.state_dict()},
                               meta={"config": to_dict(self.cfg), "store": self.store_attrs, "task": self.family.kind})

    # -- the loop -----------------------------------------------------------------------------------
    def run(self) -> int:
        self.lock = None
        try:
            with writing(self.run_dir, "the run dir keeps its last complete checkpoint"):
                return self._run()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _run(self) -> int:
        from tqdm.auto import tqdm

        self.start()
        t, env, s = self.t, self.env, self.state
        self.metrics = MetricsLog(self.run_dir, columns(self.family), enabled=env.is_main, start_step=s["step"],
                                  tensorboard=t.tensorboard)
        self.policy.install()
        self.bar = tqdm(total=t.steps, initial=s["step"], desc="train", unit="step", dynamic_ncols=True,
                        disable=not (env.is_main and t.progress), mininterval=1.0 if os.isatty(2) else 30.0)
        self.sums, self.t_log, last_ckpt_time = np.zeros(len(self.family.loss_terms) + 2), time.time(), time.time()
        if self.log_window and env.is_main:  # a resume mid-window logs the row an uninterrupted run logs
            self.sums, self.t_log = np.asarray(self.log_window["sums"]), time.time() - self.log_window["seconds"]
        exit_code = 0
        self.engine.train()
        try:
            while s["step"] < t.steps:
                self.family.phase(self.engine.module, s["step"])
                extras = self._micro_batches()
                s["step"] += 1
                s["samples"] += int(self.ds_config["train_batch_size"])
                with ds_engine.gathered(self.engine.module, t.zero_stage):
                    self.ema.update(self.engine.module.named_parameters())
                self.bar.update(1)
                # one collective per step: preemption flags and rank 0's checkpoint clock
                clock = env.is_main and t.ckpt_minutes > 0 and time.time() - last_ckpt_time > 60 * t.ckpt_minutes
                preempted, timed = dist.all_reduce([self.policy.flag, clock], self.device, op="max")
                step, last = s["step"], s["step"] == t.steps
                if step % t.log_every == 0 or last:
                    self._log_row(extras)
                improved = bool((t.val_every and step % t.val_every == 0) or last) and self._validate()
                if step % t.ckpt_every == 0 or timed or preempted or last or improved:
                    tag = self._save()
                    last_ckpt_time = time.time()
                    if improved:
                        self.ckpts.mark_best(tag, self.select_on, self.sign * s["best_val"])
                if preempted:
                    exit_code = self.policy.after_save(rank=env.rank, tag=tag_for(step))
                    break
        finally:
            self.policy.uninstall()
            self.bar.close()
            self.metrics.close()
            if env.is_main:
                logging.getLogger("hpc_vdm").removeHandler(self.log_handler)
                self.log_handler.close()
        if exit_code == 0 and t.export and env.is_main:
            from .export import export_run

            log.info("exported %s", export_run(self.run_dir, t.export_tag, overwrite=True))  # the run's own
        dist.barrier()
        return exit_code


def train(cfg: RunConfig, policy: preemption.Policy | None = None) -> int:
    """Train (or resume) the run in ``cfg.train.run_dir``; returns 0, or 75 after a preemption checkpoint."""
    return Trainer(cfg, policy).run()
