#!/bin/bash
# The measurement of docs/results/dm2gal/README.md: the mock's 3D grids (1 simulation, 128^3 particles, 128^3
# grids), a 17^3-patch dm2gal trained on CPU, compared with the HOD on the test cube. Run from the repo root.
# Variants of the table: WEIGHT_BINS=100 (the paper's sampling), CENTRES=subhalo, MIN_LOG_MSTAR=7.
set -euo pipefail
OUT=${1:-/tmp/mock128}
PY=${HPC_VDM_PYTHON:-python}
$PY -m hpc_vdm.mock --set mock.out_dir=$OUT/cmd --set mock.n_sims=1 --set mock.particles=128 \
    --set "mock.grids=[128]" --set mock.nbody=true --set mock.map_pixels=64
$PY -m hpc_vdm.prepare_volume --config configs/dm2gal.yaml --source-dir $OUT/cmd --grid-n 128 --store $OUT/vol128.zarr
$PY -m hpc_vdm.train configs/dm2gal_test.yaml --run-dir $OUT/run --set data.store=$OUT/vol128.zarr \
    --set model.dm2gal.channels=8 --set model.dm2gal.hidden=64 --set train.steps=1500 --set train.val_every=250 \
    --set train.ckpt_every=250 --set data.batch_size=32 --set model.dm2gal.weight_bins=${WEIGHT_BINS:-1} --set model.dm2gal.centres=${CENTRES:-stellar} --set model.dm2gal.min_log_mstar=${MIN_LOG_MSTAR:-8} --set train.export_tag=best --set train.lr=1e-3
for mask in subhalo truth; do
  $PY -m hpc_vdm.baselines --config configs/dm2gal_test.yaml --store $OUT/vol128.zarr \
      --model $OUT/run/export/model.pt --mask $mask --out $OUT/compare_$mask \
      --catalogue "$OUT/cmd/FOF_Subfind_IllustrisTNG_LH_z=0.00/fof_subhalo_tab_0000.hdf5"
done
$PY -m hpc_vdm.paint --config configs/dm2gal_test.yaml --model $OUT/run/export/model.pt --volume $OUT/vol128.zarr \
    --block 32 --out $OUT/paint128.zarr
