"""The one apply routine: a trained model's draws over units of work, by every rank of a launch, into one store.

``tile`` and ``paint`` are thin fronts of :func:`apply`; they say what a unit is (a slab, a block), how a
new store is laid out, and what a rank does with its units (:class:`Job`). This module does the rest,
the same for every front:

1. before anything is written: the output is not an input (nor inside or around one), is absent, or is
   a store of this kind and fingerprint (resume); the figure beside it is new, or this store's own;
2. rank 0 takes the output's lock (recording the launch, so other ranks can tell their own rank 0 from
   another command), creates the store if it is new, and holds the lock until every rank is done; the
   other ranks wait for the store;
3. every rank takes its share of the units (:func:`hpc_vdm.dist.share`: the same split on every rerun)
   and does those the store does not record as done;
4. rank 0 waits for every unit's record, marks the store complete and draws its figure.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import zarr

from .. import dist
from ..io import FIGURE, acquire_lock, check_output, writing
from .output import OutputStore

log = logging.getLogger("hpc_vdm.apply")


@dataclass
class Job:
    """What a front tells :func:`apply`: the store, what its numbers depend on, and what to do."""

    store: OutputStore
    kind: str                                          # the io output kind of the store (io.TILE, io.PAINT)
    fingerprint: dict
    layout: Callable[[zarr.Group], None]               # the arrays of a new store
    attrs: dict                                        # provenance and units, written at creation
    units: list                                        # every unit of work, in store order
    pending: Callable[[zarr.Group, object], bool]      # is a unit not yet recorded as done?
    work: Callable[[zarr.Group, list, bool], None]     # do these units (progress bar on/off)
    finished: Callable[[zarr.Group], bool]             # is every unit recorded?
    figure: Callable[[zarr.Group, Path], None] | None = None
    inputs: tuple = ()


def figure_path(out: Path) -> Path:
    """The figure a store gets beside it: ``OUT.png`` for ``OUT.zarr``."""
    return out.with_suffix(".png")


def check(job: Job) -> bool:
    """Everything about the output, before anything is written; True when the store is resumed."""
    out = job.store.path
    check_output(out, job.kind, inputs=job.inputs, reuse=True)  # never a foreign path, nor an input's
    resume = job.store.state(job.fingerprint)
    if job.figure is not None:
        check_output(figure_path(out), FIGURE, inputs=job.inputs, overwrite=resume)
    return resume


def apply(job: Job, env: dist.DistEnv, *, progress: bool = True, note: str = "") -> Path:
    """Run ``job`` on this rank (see the module doc); returns the store's path."""
    out = job.store.path
    resume = check(job)
    launch = f"{env.master_addr}:{env.master_port}"  # the same on every rank of one launch
    if env.rank != 0:
        job.store.wait_for(launch)
        return _work(job, env, resume, progress=False, note=note)
    with writing(out, "what the store records as done is kept; rerun to resume"):
        with acquire_lock(out, extra={"launch": launch}):  # rank 0 holds it until every rank is done
            resume = check(job)  # another writer finished meanwhile?
            if not resume:
                job.store.create(job.layout, {**job.attrs, "fingerprint": job.fingerprint})
            try:
                _work(job, env, resume, progress=progress, note=note)
            except BaseException:
                if not resume and env.world == 1 and not job.store.recorded():
                    job.store.remove()  # a store this run made and recorded nothing in: leave no trace
                raise
            root = job.store.open("r")
            while not job.finished(root):  # the other ranks' units
                time.sleep(0.5)
                root = zarr.open_group(str(out), mode="r")
            job.store.mark_complete()
            if job.figure is not None:
                job.figure(job.store.open("r"), figure_path(out))
            log.info("complete: %s%s", out, f" and {figure_path(out)}" if job.figure else "")
    return out


def _work(job: Job, env: dist.DistEnv, resume: bool, *, progress: bool, note: str) -> Path:
    root = job.store.open("r+")
    mine = [u for u in dist.share(job.units, env.rank, env.world) if job.pending(root, u)]
    log.info("%s %s: %d of %d units on rank %d/%d%s", "resuming" if resume else "writing", job.store.path,
             len(mine), len(job.units), env.rank, env.world, f" ({note})" if note else "")
    t0 = time.time()
    job.work(root, mine, progress)
    log.info("rank %d did %d units in %.1f s", env.rank, len(mine), time.time() - t0)
    return job.store.path
