#!/usr/bin/env bash
# Every check that needs a GPU, in <= 10 minutes on one H100/H200, into one JSON (tools/gpu_check.py says what).
#
#   tools/gpu_check.sh [--out docs/results/gpu/gpu_check.json] [--stages train zero sampling tile dm2gal]
#   tools/gpu_check.sh --dry-run --out /tmp/gpu_check.json      # every stage on the CPU, tiny sizes (CI)
#
# Python: $HPC_VDM_PYTHON, else python3. Packages the GPU machine lacks (deepspeed, zarr, dask, pyFFTW, numba)
# can travel as wheels in .whl/ at the repository root: they are installed into /tmp/hpc_vdm_site first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${HPC_VDM_PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/hpc_vdm_site .whl/*.whl
    export PYTHONPATH="/tmp/hpc_vdm_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PYTHON" tools/gpu_check.py "$@"
