#!/usr/bin/env bash
# #24 item 3: the D4-symmetrised posterior mean of `make science`'s exports against their plain draws (d4.py).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
SCI=${SCI:-out/science}
OMP_NUM_THREADS=2 python docs/results/science/d4_symmetrised/d4.py $SCI/run/export/model.pt \
    $SCI/regressor/export/model.pt $SCI/maps.zarr docs/results/science/d4_symmetrised/d4.json
