#!/bin/bash
# Train the conditional VDM with DeepSpeed over the job's GPUs: srun starts one process per GPU.
#
#   sbatch slurm/train_multinode.sh configs/my_run.yaml [--set train.lr=3e-4 ...] [--run-dir runs/my_run]
#   sbatch --nodes=4 --time=2-00:00:00 slurm/train_multinode.sh configs/my_run.yaml
#   # a CPU test cluster (tools/slurm_up.sh): 2 gloo tasks, no GPUs
#   sbatch --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --mem-per-cpu=2G \
#          slurm/train_multinode.sh configs/train_tiny.yaml --set data.store=data/maps.zarr
#
# Defaults are for an A100/H100 partition: 2 nodes x 4 GPUs, one task per GPU, 16 CPUs per task.
# Every resource is an #SBATCH default that the sbatch command line overrides.
#
# Preemption and time limits: SLURM sends USR2 to every task 120 s before the end (--signal without B:);
# the trainer checkpoints on all ranks at the next step and exits with 75; this script then requeues the
# job (--requeue) and the requeued job resumes from the run dir. The log file is appended (--open-mode).
# The run dir (train.run_dir or --run-dir) must be on a shared filesystem.
#
# Environment: HPC_VDM_PYTHON (default: python on PATH), MASTER_ADDR and MASTER_PORT (default: hpc_vdm.dist
# takes the first node and a port from the job id and restart count),
# NCCL_* as your site recommends (NCCL_SOCKET_IFNAME, NCCL_IB_HCA ...).
#SBATCH --job-name=hpc_vdm-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --signal=USR2@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: sbatch [sbatch options] slurm/train_multinode.sh CONFIG [--set section.key=value ...] [--run-dir DIR]" >&2
    exit 2
fi
CONFIG=$1; shift
PYTHON=${HPC_VDM_PYTHON:-python}

export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
export NCCL_DEBUG=${NCCL_DEBUG:-WARN} TORCH_NCCL_ASYNC_ERROR_HANDLING=${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}
if [[ -z "${SLURM_GPUS_ON_NODE:-}" || "${SLURM_GPUS_ON_NODE}" == "0" ]]; then
    export DS_ACCELERATOR=cpu  # no GPUs allocated: gloo on CPU
fi

echo "== $(date -Is) job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST}:" \
     "${SLURM_NTASKS} tasks, ${SLURM_CPUS_PER_TASK:-1} CPUs and ${SLURM_GPUS_ON_NODE:-0} GPUs per node"

# Rank 0 writes this file after the preemption checkpoint; it is the one requeue signal, because srun's exit
# code is not: --kill-on-bad-exit terminates ranks still tearing down once the first exits with 75 (srun: 143).
export HPC_VDM_REQUEUE_FILE=${TMPDIR:-/tmp}/hpc_vdm-requeue-${SLURM_JOB_ID}
rm -f "$HPC_VDM_REQUEUE_FILE"
set +e
srun --kill-on-bad-exit=1 --wait=120 "$PYTHON" -m hpc_vdm.train "$CONFIG" "$@"
rc=$?
set -e

if [[ -f "$HPC_VDM_REQUEUE_FILE" ]]; then  # every rank checkpointed after a preemption signal
    echo "== checkpoint $(cat "$HPC_VDM_REQUEUE_FILE" 2>/dev/null) (srun exit ${rc})"
    rm -f "$HPC_VDM_REQUEUE_FILE"
    rc=75
    job=${SLURM_ARRAY_JOB_ID:+${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}}
    job=${job:-$SLURM_JOB_ID}
    echo "== $(date -Is) checkpoint saved after a preemption signal; requeueing job ${job}"
    scontrol requeue "$job" || echo "== requeue refused (submitted with --no-requeue?); resubmit to resume" >&2
fi
echo "== $(date -Is) srun exited with ${rc}"
exit $rc
