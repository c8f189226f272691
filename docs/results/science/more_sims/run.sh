#!/usr/bin/env bash
# Ablation: does the map mean level's error fall with more training simulations? The science regressor recipe
# at 1200 steps on the science store (32 training simulations) and on an 80-simulation mock (64 training), both
# scored on the 32 new simulations of out/science_indep (made by ../independent/run.sh; the science store and
# regressor, out/science, by `make science`).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY=${PY:-.venv/bin/python}
A=out/abl
TORCHRUN="$PY -m torch.distributed.run --standalone --nproc_per_node=2"
SHORT=(--set train.steps=1200 --set train.restart_steps=1200 --set train.val_every=400 --set train.ckpt_every=400)
test -f $A/cmd80/params_LH_IllustrisTNG.txt || $PY -m hpc_vdm.mock --config configs/science.yaml --set mock.n_sims=80 --set mock.out_dir=$A/cmd80
test -f $A/maps80.zarr/zarr.json || $PY -m hpc_vdm.prepare --config configs/science.yaml --set data.source_dir=$A/cmd80 --set data.store=$A/maps80.zarr
OMP_NUM_THREADS=1 $TORCHRUN -m hpc_vdm.train configs/science_regressor.yaml --run-dir $A/reg32 "${SHORT[@]}"
OMP_NUM_THREADS=1 $TORCHRUN -m hpc_vdm.train configs/science_regressor.yaml --run-dir $A/reg64 "${SHORT[@]}" \
    --set data.source_dir=$A/cmd80 --set data.store=$A/maps80.zarr
for r in reg32 reg64; do
  test -f $A/$r/samples/summary.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.sample --config configs/science.yaml \
      --model $A/$r/export/model.pt --store out/science_indep/maps.zarr --split test --n-maps 64 --n-samples 1 --out $A/$r/samples
done
$PY docs/results/science/more_sims/compare.py out/science_indep/samples_regressor $A/reg32/samples $A/reg64/samples \
    > docs/results/science/more_sims/compare.json
