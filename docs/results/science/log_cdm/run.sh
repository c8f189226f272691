#!/usr/bin/env bash
# The correlated-transfer prior with the level's log10(Omega_m - Omega_b) regressor (model.vdm.prior_level=log_cdm,
# #24 item 3: the map mean level's error): ../correlated/run.sh's chain with that one change (the same store, the
# same 24 test maps and 64 maps of 32 new simulations, the same tiling and sampler checks), compared with
# ../correlated's run.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
RUN=${RUN:-out/science_logcdm} HERE=docs/results/science/log_cdm \
    PRIOR="--set model.vdm.prior=correlated_transfer --set model.vdm.prior_level=log_cdm" \
    BASE=docs/results/science/correlated BASE_INDEP=docs/results/science/correlated/independent \
    bash docs/results/science/correlated/run.sh
