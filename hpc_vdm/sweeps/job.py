"""The submitit callable of one sweep point: a small picklable object that trains one run dir.

submitit's ``srun`` starts one process per task (one per GPU); every process unpickles the same
:class:`SweepJob` and calls it. ``__call__`` exports torch.distributed's env:// variables from submitit's
environment (one task per GPU: the device is ``LOCAL_RANK``, so CUDA_VISIBLE_DEVICES is left alone, see
DeepSpeed's ``set_device(local_rank)``) and runs the same loop as ``python -m hpc_vdm.train``.

Preemption and time limits: the loop's submitit policy turns USR2 into a flag, every rank saves, and rank 0
then calls submitit's handler, which calls :meth:`checkpoint` *inside a signal handler on rank 0 only*.
So :meth:`checkpoint` saves nothing (DeepSpeed saves on all ranks, in the loop): it returns a resubmission
of this same object, and the requeued task resumes from its run dir. The state is in files, not pickles.
"""
from __future__ import annotations

import logging
import os

LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

log = logging.getLogger("hpc_vdm.sweep")


class SweepJob:
    """Train (or resume) one point: ``config`` is the resolved run config as plain data (``to_dict``)."""

    def __init__(self, name: str, config: dict, env: dict | None = None):
        self.name, self.config, self.env = name, config, dict(env or {})

    def __call__(self) -> dict:
        import submitit

        import hpc_vdm
        from .. import cli
        from ..config import from_dict

        os.environ.update(self.env)
        for var in LAUNCHER_VARS:  # the login shell's, if any: this job's come from submitit's environment
            os.environ.pop(var, None)
        dist_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        cli.setup_logging(verbose=dist_env.rank == 0)
        job = submitit.JobEnvironment()
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        if dist_env.rank == 0:
            log.info("sweep point %s: job %s (restart %s), rank %d/%d, master %s:%d, hpc_vdm from %s", self.name,
                     job.job_id, restarts, dist_env.rank, dist_env.world_size, dist_env.master_addr,
                     dist_env.master_port, os.path.dirname(hpc_vdm.__file__))
        from ..training.loop import train

        code = train(from_dict(self.config))
        if code != 0:  # ranks > 0 after a preemption save: rank 0 requeues the task through submitit
            log.info("sweep point %s: rank %d leaves after the preemption checkpoint", self.name, dist_env.rank)
        return {"point": self.name, "run_dir": self.config["train"]["run_dir"], "exit": code, "restart": restarts}

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on rank 0 in its USR2 handler: only resubmit; the loop has saved on all ranks."""
        import submitit

        log.warning("sweep point %s: requeued; it resumes from %s", self.name, self.config["train"]["run_dir"])
        return submitit.helpers.DelayedSubmission(type(self)(self.name, self.config, self.env))

    def __repr__(self) -> str:
        return f"SweepJob({self.name!r})"
