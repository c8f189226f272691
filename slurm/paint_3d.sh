#!/bin/bash
# dm2gal stellar mass painted over a whole 3D volume (e.g. TNG300-Dark at 2048^3): ranks split the blocks,
# one GPU per rank, dense and periodic, out of core.
#
#   python -m hpc_vdm.prepare_volume --set volume.grids='{dm: /path/dm_2048.npy, subhalo: /path/sub_2048.npy}' \
#          --set volume.box_mpc_h=205 --set volume.grid_units=mass --store /scratch/$USER/tng300_dmo.zarr
#   sbatch slurm/paint_3d.sh --model runs/dm2gal/export/model.pt --volume /scratch/$USER/tng300_dmo.zarr \
#          --block 128 --out /scratch/$USER/tng300_stars.zarr
#   sbatch --nodes=4 slurm/paint_3d.sh --model ... --volume ... --out ...      # more ranks, same store
#   # a CPU test cluster (tools/slurm_up.sh): 2 tasks, no GPUs
#   sbatch --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --mem-per-cpu=2G \
#          slurm/paint_3d.sh --config configs/dm2gal_test.yaml --model ... --volume ... --out out/p.zarr
#
# Arguments are those of `python -m hpc_vdm.paint` (--model, --volume, --out, --block, --halo, --mask ...).
# The volume's voxels must match the model's (checked before anything is written); the halo must cover the
# network's receptive radius (32 for the paper's 65^3 patch). The output store is resumable: resubmitting
# the same command continues with the blocks not yet recorded (--requeue lets SLURM do that after a node
# failure). Input and output stores must be on a filesystem all nodes share.
#
# Environment: HPC_VDM_PYTHON (default: python on PATH).
#SBATCH --job-name=hpc_vdm-paint
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
# each rank paints every world-th block (rank from SLURM_PROCID); rank 0 waits for all, writes the figure
srun --kill-on-bad-exit=1 "$PYTHON" -m hpc_vdm.paint "$@"
echo "== $(date -Is) done"
