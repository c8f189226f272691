#!/bin/bash
# `make science` as one command from nothing (#24): every stage under $SCI (a folder it creates), the report and
# the tiling check copied here, the wall time to $HERE/wall_s.txt. Run from the repo root; about 2 h 28 min on
# 2 cores (measured 2026-12-07, docs/results/science/README.md).
set -euo pipefail
SCI=${SCI:-out/science_one_go}
HERE=docs/results/science/one_go
t0=$(date +%s)
# the recipe of this folder: the linear-transfer prior (configs/science.yaml's until 2026-12-07, now log_cdm's)
make science SCI="$SCI" SCIENCE_DOCS="$HERE" TILING_DOCS="$HERE" \
    SCIENCE_SET="--set model.vdm.prior=linear_transfer --set model.vdm.prior_level=linear"
echo "make science $(( $(date +%s) - t0 )) s" > "$HERE/wall_s.txt"
${HPC_VDM_PYTHON:-python3} docs/results/science/one_go/compare.py "$HERE/metrics.json" docs/results/science/rerun/metrics.json \
    --out "$HERE/compare.json"
