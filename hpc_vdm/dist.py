"""The launcher's environment -> rank, local rank, world, master address; process-group start-up.

One place maps every way users start the trainer:

* torchrun / the ``deepspeed`` launcher: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT;
* SLURM ``srun`` (one task per GPU): SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, the first host of
  SLURM_JOB_NODELIST (``scontrol show hostnames``) and a port derived from the job id and the restart
  count (a requeued job keeps its id, and ranks of its previous run may still hold the old port);
* MPI (``mpiexec``/``mpirun``): rank and size from mpi4py, rank 0's host broadcast;
* nothing: one process.

CPU -> gloo, GPU -> NCCL. A batch script that calls python without ``srun`` is one process, even though
SLURM_NTASKS says more: SLURM's per-task variables only count under an ``srun`` step.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from typing import Mapping

log = logging.getLogger(__name__)

MPI_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world: int
    master_addr: str
    master_port: int
    launcher: str  # torchrun | slurm | mpi | single

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _first_host(nodelist: str) -> str:
    """First host of a SLURM node list (``node[01-04]`` -> ``node01``), via scontrol when it is there."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    head = nodelist.split(",")[0]
    if "[" in head:  # node[01-04,07] -> node01
        prefix, rest = head.split("[", 1)
        head = prefix + rest.split("-")[0].split(",")[0].rstrip("]")
    return head


def env_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank from the environment alone (for logging set-up before :func:`detect`)."""
    env = os.environ if env is None else env
    if "SLURM_STEP_NUM_TASKS" in env and "RANK" not in env:
        return int(env.get("SLURM_PROCID", 0))
    for key in ("RANK",) + MPI_RANK_VARS:
        if key in env:
            return int(env[key])
    return 0


def port_for_job(job_id: str | int, restart: str | int = 0, base: int = 20000, span: int = 20000) -> int:
    """A port derived from the job id and its restart count, so that two jobs on one node, or a requeued job
    and the ranks of its previous run, do not collide."""
    return base + (int(str(job_id).split("_")[0]) + 7919 * int(restart or 0)) % span


def detect(env: Mapping[str, str] | None = None) -> DistEnv:
    """Rank, local rank, world and master of this process from the launcher's environment."""
    env = os.environ if env is None else env
    if all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return DistEnv(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]),
                       env["MASTER_ADDR"], int(env["MASTER_PORT"]), "torchrun")
    if "SLURM_STEP_NUM_TASKS" in env and "SLURM_PROCID" in env:
        addr = env.get("MASTER_ADDR") or _first_host(env.get("SLURM_STEP_NODELIST", env.get("SLURM_JOB_NODELIST", "")))
        port = (int(env["MASTER_PORT"]) if "MASTER_PORT" in env
                else port_for_job(env.get("SLURM_JOB_ID", 0), env.get("SLURM_RESTART_COUNT", 0)))
        return DistEnv(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)),
                       int(env["SLURM_STEP_NUM_TASKS"]), addr, port, "slurm")
    if any(k in env for k in MPI_RANK_VARS):
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        addr, port = comm.bcast((socket.gethostname(), free_port()) if comm.Get_rank() == 0 else None, root=0)
        return DistEnv(comm.Get_rank(), local, comm.Get_size(), env.get("MASTER_ADDR", addr),
                       int(env.get("MASTER_PORT", port)), "mpi")
    return DistEnv(0, 0, 1, "127.0.0.1", int(env.get("MASTER_PORT", 0)) or free_port(), "single")


def requeue_protocol(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """How this process's launcher requeues a preempted job: ("submitit", its preemption signal name) inside a
    submitit job, else ("sbatch", the file the batch script watches, $HPC_VDM_REQUEUE_FILE, or None)."""
    env = os.environ if env is None else env
    if env.get("SUBMITIT_EXECUTOR"):
        return "submitit", "SIG" + env.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return "sbatch", env.get("HPC_VDM_REQUEUE_FILE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_device(dist_env: DistEnv, want: str = "auto", setting: str = "device"):
    """cuda:(local_rank mod visible GPUs) when a GPU is wanted and present, else cpu; ``setting`` names the
    config key in the error."""
    import torch

    if want == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{setting}='cuda' but no CUDA device is visible to this process (CUDA_VISIBLE_DEVICES="
                         f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); use 'auto' or 'cpu'")
    if want != "cpu" and torch.cuda.is_available():
        device = torch.device("cuda", dist_env.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (torchrun's agent, MPI's proxy) dies.

    torchrun starts its workers in sessions of their own, so killing the launcher's process group would
    otherwise leave them training; with this they get SIGTERM, checkpoint at the next step and exit.
    Returns False where the kernel call is not available (not Linux).
    """
    import ctypes
    import ctypes.util

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(1, int(sig), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG = 1
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), sig)
    return True


def init(dist_env: DistEnv, device) -> None:
    """Export the env:// variables and start DeepSpeed's process group (gloo on CPU, NCCL on GPU)."""
    if dist_env.launcher in ("torchrun", "mpi"):
        die_with_parent()
    os.environ.update(RANK=str(dist_env.rank), LOCAL_RANK=str(dist_env.local_rank),
                      WORLD_SIZE=str(dist_env.world), MASTER_ADDR=dist_env.master_addr,
                      MASTER_PORT=str(dist_env.master_port))
    import deepspeed
    import deepspeed.ops

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cpu":
        # The CPU shared-memory all-reduce serves inference only; skipping it avoids a 30-60 s C++ build
        # on every fresh machine (ops.__compatible_ops__ is DeepSpeed's own, mutable, probe cache).
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False, verbose=False)
    log.info("rank %d/%d (local %d) via %s, master %s:%d, %s on %s", dist_env.rank, dist_env.world,
             dist_env.local_rank, dist_env.launcher, dist_env.master_addr, dist_env.master_port, backend, device)


def share(items, rank: int, world: int) -> list:
    """This rank's share of ``items``: every ``world``-th item from the ``rank``-th. The one rule by which
    work (validation maps, slabs, blocks, parameter grids) is split over ranks."""
    return list(items)[rank::world]


@dataclass(frozen=True)
class Ranks:
    """What a computation spread over the ranks of a launch needs: its share of the items and sums over ranks.

    The training loop hands one to a family's validation, so no family spells sharding or reduction."""

    rank: int = 0
    world: int = 1
    device: object = "cpu"

    def share(self, items) -> list:
        return share(items, self.rank, self.world)

    def sum(self, values) -> list[float]:
        """Element-wise sum over ranks of a few floats (every rank gets the same numbers)."""
        return all_reduce(values, self.device, op="sum")


def all_reduce(values, device, op: str = "max") -> list[float]:
    """Element-wise max or sum of a few floats over all ranks (flags, clocks, sums); a no-op on one process."""
    import torch
    import torch.distributed as tdist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        tdist.all_reduce(t, op={"max": tdist.ReduceOp.MAX, "sum": tdist.ReduceOp.SUM}[op])
    return t.tolist()


def broadcast_object(obj, src: int = 0):
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        box = [obj]
        tdist.broadcast_object_list(box, src=src)
        return box[0]
    return obj


def barrier() -> None:
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        tdist.barrier()
