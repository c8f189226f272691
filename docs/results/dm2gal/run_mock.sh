#!/bin/bash
# The measurement of docs/results/dm2gal/README.md: the mock's 3D grids (1 simulation, 64^3 particles, 64^3
# grids), a 17^3-patch dm2gal trained on CPU, compared with the HOD on the test cube. Run from the repo root.
set -euo pipefail
OUT=${1:-/tmp/mockrun}
PY=${HPC_VDM_PYTHON:-python}
$PY -m hpc_vdm.mock --set mock.out_dir=$OUT/cmd --set mock.n_sims=1 --set mock.particles=64 \
    --set "mock.grids=[64]" --set mock.nbody=true --set mock.map_pixels=64
$PY -m hpc_vdm.prepare_volume --config configs/dm2gal.yaml --source-dir $OUT/cmd --grid-n 64 --store $OUT/vol64.zarr
$PY -m hpc_vdm.train configs/dm2gal_test.yaml --run-dir $OUT/run --set data.store=$OUT/vol64.zarr \
    --set dm2gal.channels=8 --set dm2gal.hidden=64 --set train.steps=600 --set train.val_every=100 \
    --set train.ckpt_every=100 --set train.export_tag=best --set train.lr=1e-3
for mask in subhalo truth; do
  $PY -m hpc_vdm.baselines --config configs/dm2gal_test.yaml --store $OUT/vol64.zarr \
      --model $OUT/run/export/model.pt --mask $mask --out $OUT/compare_$mask \
      --catalogue "$OUT/cmd/FOF_Subfind_IllustrisTNG_LH_z=0.00/fof_subhalo_tab_0000.hdf5"
done
$PY -m hpc_vdm.paint --config configs/dm2gal_test.yaml --model $OUT/run/export/model.pt --volume $OUT/vol64.zarr \
    --block 16 --out $OUT/paint64.zarr
