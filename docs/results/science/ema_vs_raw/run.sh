#!/usr/bin/env bash
# #24 item 3's EMA lever: `make science`'s evaluate with the raw weights of both exports (trained.which=raw; the
# regressor baseline loads the same way) in place of their EMA (decay 0.999), compared with the committed report.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
SCI=${SCI:-out/science} OUT=${OUT:-out/science_raw_eval} HERE=docs/results/science/ema_vs_raw
OMP_NUM_THREADS=2 python -m hpc_vdm.evaluate --config configs/science.yaml --model $SCI/run/export/model.pt \
    --set "evaluate.baselines={regressor: $SCI/regressor/export/model.pt}" --set trained.which=raw \
    --store $SCI/maps.zarr --set evaluate.progress=false --out $OUT
cp $OUT/metrics.json $HERE/metrics_raw.json
python docs/results/science/one_go/compare.py docs/results/science/metrics.json $HERE/metrics_raw.json \
    > $HERE/compare.md
