#!/usr/bin/env bash
# The correlated-transfer prior (model.vdm.prior=correlated_transfer, #24 item 3: the map mean level's coverage):
# the science recipe with that one change, trained on the science store, scored by the same `evaluate` on the same
# 24 test maps x 16 samples (UniPC 24), then on the 32 new simulations of ../independent (64 maps x 16 samples,
# the map mean level per simulation with ../independent/map_level.py). The regressor rows are the same-budget
# regressor's of ../one_go and ../independent, which this change does not touch.
# ../log_cdm/run.sh runs it for another prior: PRIOR (the --set options of the prior), RUN, HERE and the
# recipe it is compared with, BASE (24 test maps) and BASE_INDEP (the 32 new simulations).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-out/science_corr}
INDEP=${INDEP:-out/science_indep}       # ../independent/run.sh makes it (its mock and store)
HERE=${HERE:-docs/results/science/correlated}
PRIOR=${PRIOR:---set model.vdm.prior=correlated_transfer --set model.vdm.prior_level=linear}
BASE=${BASE:-docs/results/science/one_go}
BASE_INDEP=${BASE_INDEP:-docs/results/science/independent}
export DS_ACCELERATOR=cpu DS_BUILD_OPS=0
test -f $RUN/run/export/model.pt || OMP_NUM_THREADS=1 $PY -m torch.distributed.run --standalone --nproc_per_node=2 \
    -m hpc_vdm.train configs/science.yaml $PRIOR --run-dir $RUN/run
test -f $RUN/eval/metrics.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.evaluate --config configs/science.yaml \
    --model $RUN/run/export/model.pt --set 'evaluate.baselines={}' --out $RUN/eval
test -f $RUN/indep_samples/summary.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.sample --config configs/science.yaml \
    --model $RUN/run/export/model.pt --store $INDEP/maps.zarr --split test --n-maps 64 --n-samples 16 \
    --out $RUN/indep_samples
$PY docs/results/science/independent/map_level.py --samples $RUN/indep_samples/samples.zarr --store $INDEP/maps.zarr \
    --out $HERE/map_level.json
test -f $RUN/indep_eval/metrics.json || OMP_NUM_THREADS=2 $PY -m hpc_vdm.evaluate --config configs/science.yaml \
    --model $RUN/run/export/model.pt --set evaluate.store=$INDEP/maps.zarr --set evaluate.n_maps=64 \
    --set 'evaluate.baselines={}' --out $RUN/indep_eval
mkdir -p $HERE/independent
cp $RUN/eval/metrics.json $RUN/eval/report/summary.md $RUN/eval/report/calibration.png $HERE/
cp $RUN/run/metrics.csv $HERE/train_metrics.csv
cp $RUN/indep_eval/metrics.json $RUN/indep_eval/report/summary.md $RUN/indep_eval/report/calibration.png $HERE/independent/
# the headline numbers beside the linear-transfer recipe's (BASE's), on the same maps
$PY docs/results/science/one_go/compare.py $BASE/metrics.json $HERE/metrics.json --out $HERE/compare.json
$PY docs/results/science/one_go/compare.py $BASE_INDEP/metrics.json $HERE/independent/metrics.json \
    --out $HERE/independent/compare.json
# tiled = whole on a 75 Mpc/h slab with this prior's kernel inside the 48 px halo
test -f $RUN/seams/seams_mock75.json || OMP_NUM_THREADS=2 $PY tools/seams.py --model $RUN/run/export/model.pt --box 75 \
    --tiles 64,96 --halo 48 --samples 2 --out $RUN/seams
cp $RUN/seams/seams_mock75.json $HERE/
# what a sample costs on this network: UniPC against the 250-step ancestral reference (12 test maps x 8)
test -f $RUN/sampler_cost.json || OMP_NUM_THREADS=2 $PY tools/sampler_cost.py --model $RUN/run/export/model.pt \
    --out $RUN/sampler_cost.json --nfe unipc:16,unipc:24,ancestral:250
cp $RUN/sampler_cost.json $HERE/
