#!/usr/bin/env bash
# The nineteenth session's rescoring (#24 items 2 and 3): `evaluate` with per-map r(k), paired leads and coverage
# standard errors over the simulations, on make science's export and regressor: the 24 test maps (this folder's
# parent's metrics.json and summary.md), the 64 maps of the 32 new simulations of ../independent (now with the
# regressor on the same maps) and, given DEMO=<a fresh clone's out/demo>, the demo's report; then leads.py.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY=${PY:-.venv/bin/python} OUT=${OUT:-out/science_leads} HERE=docs/results/science/leads
EV="$PY -m hpc_vdm.evaluate --set evaluate.progress=false"
REG='evaluate.baselines={regressor: out/science/regressor/export/model.pt}'
test -f $OUT/eval/metrics.json || OMP_NUM_THREADS=2 $EV --config configs/science.yaml \
    --model out/science/run/export/model.pt --set "$REG" --out $OUT/eval
test -f $OUT/indep_eval/metrics.json || OMP_NUM_THREADS=2 $EV --config configs/science.yaml \
    --model out/science/run/export/model.pt --set evaluate.store=out/science_indep/maps.zarr \
    --set evaluate.n_maps=64 --set "$REG" --out $OUT/indep_eval
if [ -n "${DEMO:-}" ]; then
    test -f $OUT/demo_eval/metrics.json || OMP_NUM_THREADS=2 $EV --config configs/demo.yaml \
        --model $DEMO/run/export/model.pt --store $DEMO/maps.zarr --set evaluate.cv_store=$DEMO/maps_cv.zarr \
        --set evaluate.one_p_store=$DEMO/maps_1p.zarr --set evaluate.tile_store=$DEMO/tng100.zarr --out $OUT/demo_eval
    mkdir -p $HERE/demo && cp $OUT/demo_eval/metrics.json $OUT/demo_eval/report/summary.md $HERE/demo/
fi
mkdir -p $HERE/independent
cp $OUT/eval/metrics.json $OUT/eval/report/summary.md docs/results/science/
cp $OUT/indep_eval/metrics.json $OUT/indep_eval/report/summary.md $HERE/independent/
$PY $HERE/leads.py test=docs/results/science/metrics.json new=$HERE/independent/metrics.json --out $HERE/leads.json
