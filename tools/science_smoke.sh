#!/usr/bin/env bash
# `make science` at smoke size: every stage of the chain with its real commands, in a few minutes, into a scratch
# folder (not docs/): the mock of 10 simulations at 32^3, 4 training steps of each model, 2 test maps x 2 samples,
# two sampler settings, one tile size. It checks the chain, not the science (docs/results/science has that).
#   bash tools/science_smoke.sh [OUT]        (OUT defaults to out/science_smoke)
# OUT must be new or a folder this script made (then the chain resumes there, as `make science` does: finished
# trainings re-export the same model, finished stages are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/science_smoke}
if [ -e "$OUT" ] && [ ! -f "$OUT/.science_smoke" ]; then
    echo "science_smoke: $OUT exists and is not a folder this script made; give a new folder" >&2
    exit 2
fi
mkdir -p "$OUT" && touch "$OUT/.science_smoke"
make science SCI="$OUT/sci" SCIENCE_DOCS="$OUT/docs/science" TILING_DOCS="$OUT/docs/tiling" \
    SCIENCE_SET="--set mock.n_sims=10 --set mock.particles=32 --set mock.pm_steps=4 --set train.steps=4 \
--set train.val_every=2 --set train.ckpt_every=2 --set train.val_maps=4 --set train.val_sample_maps=1 \
--set evaluate.n_maps=2 --set evaluate.n_samples=2" \
    SCIENCE_COST="--n-maps 2 --n-samples 2 --nfe unipc:8,ancestral:8" \
    SCIENCE_SEAMS="--box 75 --tiles 64 --halo 48 --samples 1 --steps 4"
for f in metrics.json summary.md sampler_cost.json train_metrics.csv regressor_metrics.csv; do
    test -s "$OUT/docs/science/$f" || { echo "science_smoke: $OUT/docs/science/$f missing" >&2; exit 1; }
done
test -s "$OUT/docs/tiling/seams_mock75_science_net.json"
echo "science_smoke: every stage ran; the report copies are in $OUT/docs"
