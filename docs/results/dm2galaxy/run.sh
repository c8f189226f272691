#!/bin/bash
# The run of docs/results/dm2galaxy/README.md (DM -> galaxies, Sether+24, #26), from the repo root, on CPU:
#   the mock with N-body twins -> the paired store -> the reverse VDM and the two-phase CNN trained with DeepSpeed on
#   NPROC processes -> evaluate: VDM vs CNN vs HOD on the same test maps -> the report copied here.
# Each stage runs once (a rerun resumes the trainings and skips what is done). Times go to $OUT/times.txt.
# The trainings run one thread per process; evaluate (one process) runs NPROC threads.
set -euo pipefail
OUT=${OUT:-out/dm2galaxy}
PY=${HPC_VDM_PYTHON:-python}
NPROC=${NPROC:-2}
CNN_STEPS=${CNN_STEPS:-1200}
HERE=docs/results/dm2galaxy
export OMP_NUM_THREADS=1 DS_ACCELERATOR=${DS_ACCELERATOR:-cpu}
TORCHRUN="$PY -m torch.distributed.run --standalone --nproc_per_node=$NPROC"
mkdir -p "$OUT"
stage() { local name=$1; shift; local t0=$(date +%s); "$@"; echo "$name $(( $(date +%s) - t0 )) s" >> "$OUT/times.txt"; }

[ -f "$OUT/cmd/params_LH_IllustrisTNG.txt" ] || stage mock $PY -m hpc_vdm.mock --config configs/dm2galaxy.yaml
[ -f "$OUT/maps.zarr/zarr.json" ] || stage prepare $PY -m hpc_vdm.prepare --config configs/dm2galaxy.yaml
[ -f "$OUT/vdm/export/model.pt" ] || stage train_vdm $TORCHRUN -m hpc_vdm.train configs/dm2galaxy.yaml \
    --set train.progress=false
[ -f "$OUT/cnn/export/model.pt" ] || stage train_cnn $TORCHRUN -m hpc_vdm.train configs/dm2galaxy.yaml \
    --set model.kind=two_phase --set train.run_dir=$OUT/cnn --set train.steps=$CNN_STEPS \
    --set train.restart_steps=$CNN_STEPS --set train.progress=false
[ -f "$OUT/eval/metrics.json" ] || OMP_NUM_THREADS=$NPROC stage evaluate $PY -m hpc_vdm.evaluate --config configs/dm2galaxy.yaml \
    --set evaluate.progress=false

cp "$OUT/eval/metrics.json" "$OUT/eval/report/summary.md" "$OUT"/eval/report/*.png configs/dm2galaxy.yaml "$HERE/"
cp "$OUT/vdm/metrics.csv" "$HERE/vdm_metrics.csv"
cp "$OUT/cnn/metrics.csv" "$HERE/cnn_metrics.csv"
cp "$OUT/times.txt" "$HERE/times.txt"
