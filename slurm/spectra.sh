#!/bin/bash
# Power spectra over a dask-mpi cluster spread across the job's tasks:
#   rank 0 = dask scheduler, rank 1 = runs `python -m hpc_vdm.spectra`, ranks 2.. = workers.
#
#   sbatch slurm/spectra.sh auto data/maps.zarr --array Mcdm --overdensity --out out/pk.npz
#   sbatch --nodes=4 --ntasks-per-node=8 slurm/spectra.sh auto big.zarr --array delta --volume --out pk.json
#
# Every resource can be overridden on the sbatch command line. Outside SLURM (a laptop, CI) the same
# file runs with mpiexec:  HPC_VDM_NTASKS=4 bash slurm/spectra.sh auto ...
#SBATCH --job-name=hpc_vdm-spectra
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=4
#SBATCH --time=02:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export PYFFTW_NUM_THREADS=$OMP_NUM_THREADS
export PYTHONUNBUFFERED=1
PYTHON=${HPC_VDM_PYTHON:-python}

if [[ -n "${SLURM_JOB_ID:-}" ]]; then
    # the mpich wheel speaks Slurm's PMI2; OpenMPI builds usually want --mpi=pmix
    srun --mpi="${HPC_VDM_SRUN_MPI:-pmi2}" --kill-on-bad-exit=1 "$PYTHON" -m hpc_vdm.spectra "$@" --scheduler mpi
else
    mpiexec -n "${HPC_VDM_NTASKS:-4}" "$PYTHON" -m hpc_vdm.spectra "$@" --scheduler mpi
fi
