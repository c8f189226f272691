"""Preemption: a signal becomes a flag, all ranks agree on it at a step, save together, then a policy requeues.

The loop owns the flag and the all-rank save; *how* the job comes back is the launcher's business, so it
is a policy chosen from the environment (:func:`choose`):

* :class:`SbatchRequeue` (``sbatch slurm/train_multinode.sh``, torchrun, mpiexec, plain): SIGTERM or
  SIGUSR2 set the flag; after the save rank 0 leaves the tag in ``$HPC_VDM_REQUEUE_FILE`` (when set) and
  every rank exits with 75 (EX_TEMPFAIL), which the batch script turns into ``scontrol requeue``.
* :class:`SubmititRequeue` (a submitit job, ``SUBMITIT_EXECUTOR`` set): submitit's own preemption signal
  (USR2 unless ``SUBMITIT_PREEMPT_SIGNAL``) sets the flag — SIGTERM stays submitit's. After the all-rank
  save, rank 0 hands the signal to the handler submitit installed, which calls the job's ``checkpoint()``
  (that only resubmits: state is in the run dir, not in pickles) and requeues this array element.
"""
from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Callable, Mapping

from .. import dist

log = logging.getLogger(__name__)

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: checkpoint saved, requeue me


class Policy:
    """How a preempted run comes back: which signals raise the flag, what happens after the save."""

    name = "none"
    signals: tuple[int, ...] = ()

    def __init__(self):
        self.flag = False
        self.previous: dict[int, Callable | int | None] = {}

    def install(self) -> "Policy":
        for sig in self.signals:
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self.previous.clear()

    def _handle(self, signum, _frame):
        self.flag = True
        self.signum = signum
        log.warning("received %s; will checkpoint at the next step and exit", signal.Signals(signum).name)

    def after_save(self, *, rank: int, tag: str) -> int:
        """Called on every rank once the preemption checkpoint is complete; returns the exit code."""
        return EXIT_PREEMPTED


class SbatchRequeue(Policy):
    name = "sbatch"
    signals = (signal.SIGTERM, signal.SIGUSR2)

    def __init__(self, requeue_file: str | None = None):
        super().__init__()
        self.requeue_file = requeue_file

    def after_save(self, *, rank: int, tag: str) -> int:
        if rank == 0 and self.requeue_file:
            # the batch script's cue: srun may report 143 instead of 75 when it kills the slower ranks
            Path(self.requeue_file).write_text(tag + "\n")
        if rank == 0:
            log.warning("preempted: checkpoint %s saved; exiting with %d so the job requeues", tag, EXIT_PREEMPTED)
        return EXIT_PREEMPTED


class SubmititRequeue(Policy):
    name = "submitit"

    def __init__(self, signum: int = signal.SIGUSR2):
        super().__init__()
        self.signals = (signum,)

    def after_save(self, *, rank: int, tag: str) -> int:
        handler = self.previous.get(self.signals[0])
        if rank == 0:
            log.warning("preempted: checkpoint %s saved; submitit requeues the job", tag)
            self.uninstall()
            if callable(handler):  # submitit's checkpoint_and_try_requeue: checkpoint(), scontrol requeue, exit
                handler(self.signals[0], None)
        return EXIT_PREEMPTED


def choose(environ: Mapping[str, str] | None = None) -> Policy:
    """The policy of this process's launcher (not yet installed)."""
    protocol, detail = dist.requeue_protocol(environ)
    if protocol == "submitit":
        signum = getattr(signal, detail, None)
        if signum is None:
            raise ValueError(f"SUBMITIT_PREEMPT_SIGNAL={detail[3:]!r} names no signal")
        return SubmititRequeue(signum)
    return SbatchRequeue(detail)
