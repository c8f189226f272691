#!/usr/bin/env bash
# The science model (out/science/run, configs/science.yaml) on 40 new simulations: the same mock recipe with
# another master seed (new Latin-hypercube parameters and initial conditions), 32 of them held out as "test".
# The store's own normalisation and its 4 "train" simulations are used only by the linear-transfer baseline;
# the models use their training statistics. Then the map mean level per simulation (map_level.py).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-out/science_indep}
# the model this folder scored: the linear-transfer make science of 2026-12-06 (out/science/run then; today's
# out/science/run is the log_cdm one, scored on this store by ../correlated/run.sh via ../log_cdm/run.sh)
MODEL=${MODEL:-out/science_linear/run/export/model.pt}
HERE=docs/results/science/independent
SETS=(--set mock.out_dir=$OUT/cmd --set mock.seed=1 --set data.source_dir=$OUT/cmd --set data.store=$OUT/maps.zarr
      --set 'data.split_fractions=[0.1,0.1,0.8]')
test -f $OUT/cmd/params_LH_IllustrisTNG.txt || $PY -m hpc_vdm.mock --config configs/science.yaml "${SETS[@]}"
test -f $OUT/maps.zarr/zarr.json || $PY -m hpc_vdm.prepare --config configs/science.yaml "${SETS[@]}"
# 64 maps, 2 from each of the 32 held-out simulations, 16 samples each (UniPC 24, the default)
test -f $OUT/samples/summary.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.sample --config configs/science.yaml \
    --model $MODEL --store $OUT/maps.zarr --split test --n-maps 64 --n-samples 16 \
    --out $OUT/samples
# the same maps through the same-budget regressor (one prediction each): its error of the map mean level
test -f $OUT/samples_regressor/summary.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.sample --config configs/science.yaml \
    --model out/science/regressor/export/model.pt --store $OUT/maps.zarr --split test --n-maps 64 --n-samples 1 \
    --out $OUT/samples_regressor
$PY $HERE/map_level.py --samples $OUT/samples/samples.zarr --store $OUT/maps.zarr \
    --baseline $OUT/samples_regressor/samples.zarr --out $HERE/map_level.json
# the full report on the same store (its own choice of 64 maps: evaluate draws them from every simulation in turn)
test -f $OUT/eval/metrics.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.evaluate --config configs/science.yaml \
    --model $MODEL --set evaluate.store=$OUT/maps.zarr --set evaluate.n_maps=64 --set evaluate.out=$OUT/eval
cp $OUT/eval/metrics.json $OUT/eval/report/summary.md $OUT/eval/report/calibration.png $HERE/
