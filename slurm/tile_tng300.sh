#!/bin/bash
# Posterior dark-matter maps of a TNG300-sized volume: ranks split the slabs, one GPU per rank.
#
#   sbatch slurm/tile_tng300.sh --model runs/x/export/model.pt --input /path/TNG300-1/snapdir_099 \
#          --n-samples 4 --out /scratch/$USER/tng300.zarr
#   sbatch --nodes=4 slurm/tile_tng300.sh --model ... --out ...        # more ranks, same result
#   # a CPU test cluster (tools/slurm_up.sh): 2 tasks, no GPUs
#   sbatch --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --mem-per-cpu=2G \
#          slurm/tile_tng300.sh --volume camels --model ... --out out/camels.zarr
#
# Arguments are those of `python -m hpc_vdm.tile` (default --volume tng300: 3 axes x 41 slabs of 2099^2).
# Every resource is an #SBATCH default that the sbatch command line overrides. The output store is
# resumable: resubmitting the same command after a time limit or a failure continues where it stopped
# (--requeue lets SLURM do that after a node failure). The store must be on a filesystem all nodes share.
#
# Environment: HPC_VDM_PYTHON (default: python on PATH).
#SBATCH --job-name=hpc_vdm-tile
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail
PYTHON=${HPC_VDM_PYTHON:-python}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1

echo "== $(date -Is) job ${SLURM_JOB_ID} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST}:" \
     "${SLURM_NTASKS} ranks, ${SLURM_GPUS_ON_NODE:-0} GPUs per node"
# each rank takes every NTASKS-th slab (rank from SLURM_PROCID); rank 0 waits for all and writes the figure
srun --kill-on-bad-exit=1 "$PYTHON" -m hpc_vdm.tile --volume tng300 "$@"
echo "== $(date -Is) done"
