#!/usr/bin/env bash
# The CPU run of docs/results/emulator (issue #27): the mock (LH = configs/science.yaml's 40 simulations, CV, 1P),
# maps.zarr pooled to 64^2, the emulator trained on 2 processes, `evaluate` (emulation checks), `infer` (calibration
# over the test maps with the P(k) baseline, then the paper's box around one map's truth with NUTS), and a copy of
# the results into this folder. Every stage runs once: a rerun skips what exists and resumes the training and the
# infer stores. `make emulator` runs it; PY=... picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
CFG=configs/emulator.yaml
OUT=out/emulator
DOC=docs/results/emulator
export OMP_NUM_THREADS=1 DS_ACCELERATOR=cpu
TORCHRUN="$PY -m torch.distributed.run --standalone --nproc_per_node=2"
mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo "$1 $(( $(date +%s) - T0 )) s" | tee -a "$OUT/times.txt"; T0=$(date +%s); }

MOCK="$PY -m hpc_vdm.mock --config $CFG --set mock.catalogues=false"
test -f $OUT/cmd/params_LH_IllustrisTNG.txt || $MOCK
test -f $OUT/cmd/params_CV_IllustrisTNG.txt || $MOCK --sim-set CV --n-sims 8
test -f $OUT/cmd/params_1P_IllustrisTNG.txt || $MOCK --sim-set 1P --set mock.n_1p_values=5 \
    --set 'mock.one_p_params=[Omega_m,sigma_8]'
stamp mock

ONE="--set data.split_fractions=[1.0,0.0,0.0]"
test -f $OUT/maps.zarr/zarr.json || $PY -m hpc_vdm.prepare --config $CFG
test -f $OUT/maps_cv.zarr/zarr.json || $PY -m hpc_vdm.prepare --config $CFG --sim-set CV --out $OUT/maps_cv.zarr $ONE
test -f $OUT/maps_1p.zarr/zarr.json || $PY -m hpc_vdm.prepare --config $CFG --sim-set 1P --out $OUT/maps_1p.zarr $ONE
stamp prepare

test -f $OUT/run/export/model.pt || $TORCHRUN -m hpc_vdm.train $CFG --set train.progress=false
stamp train

test -f $OUT/eval/metrics.json || $PY -m hpc_vdm.evaluate --config $CFG
stamp evaluate

# calibration: 16 test maps, a coarse grid over the prior then a fine one around its posterior (no knowledge of the
# truth), 8 terms x 2 noise draws (their spread corrects the posterior for the estimate's own noise), the P(k) baseline
$TORCHRUN -m hpc_vdm.infer --config $CFG --set infer.progress=false
stamp infer_calibration

# the paper's Fig. 3: one map, the box truth +- 0.1 clipped to the prior, contours of single terms, and NUTS on the bound
$PY -m hpc_vdm.infer --config $CFG --set infer.centre=truth --set infer.n_maps=1 --set 'infer.grid=[25,25]' \
    --set 'infer.half_width=[0.1,0.1]' --set infer.noise_draws=1 --set infer.mcmc_maps=1 --set infer.mcmc_samples=60 \
    --set infer.mcmc_warmup=40 --set infer.mcmc_depth=3 --set infer.progress=false --out $OUT/paper.zarr
stamp infer_paper

mkdir -p $DOC
cp $CFG $DOC/
cp $OUT/run/metrics.csv $DOC/train_metrics.csv
cp $OUT/eval/metrics.json $DOC/eval_metrics.json
cp $OUT/eval/report/summary.md $DOC/eval_summary.md
cp $OUT/eval/report/*.png $DOC/
cp $OUT/infer.json $DOC/infer_calibration.json
cp $OUT/infer.png $DOC/infer_calibration.png
cp $OUT/paper.json $DOC/infer_paper.json
cp $OUT/paper.png $DOC/infer_paper.png
cp $OUT/times.txt $DOC/times.txt
