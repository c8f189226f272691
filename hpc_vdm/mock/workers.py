"""Simulations side by side (``mock.workers``): spawned processes that end with their parent, each with its
share of the cores for its FFTs and threaded kernels. The mock's files do not depend on the number of workers
(``test_workers_do_not_change_the_files``); a measure's threaded sums (a spectrum's bins) may round differently."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

from . import kernels, mesh


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end with the parent, which a SIGKILL stops without a word to its workers (they would
    sleep on forever). Linux's PR_SET_PDEATHSIG; a parent already gone before it is set ends the worker here."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _call(job):
    fn, threads, kernel_backend, args = job
    mesh.set_threads(threads)
    with kernels.use(kernel_backend):
        return fn(*args)


def run_all(fn: Callable, jobs: Iterable[tuple], *, workers: int, kernel_backend: str) -> Iterator:
    """``fn(*job)`` for every job, in order: in this process (``workers`` 1) or in ``workers`` spawned ones
    (``fn`` and the jobs then picklable), with the mock's ``kernel_backend`` chosen in each."""
    if workers == 1:
        with kernels.use(kernel_backend):
            for job in jobs:
                yield fn(*job)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        yield from pool.map(_call, [(fn, threads, kernel_backend, job) for job in jobs])
