#!/bin/bash
# same-budget comparison (#23 item 2): the tile-safe science network against the GroupNorm + attention recipe,
# same mock (16 LH simulations: 12 train / 2 val / 2 test), same steps, batch and learning-rate schedule.
set -e
cd "$(dirname "$0")/../../../.."
export OMP_NUM_THREADS=1 DS_ACCELERATOR=cpu DS_BUILD_OPS=0
PY=${PY:-.venv/bin/python}; TR="$PY -m torch.distributed.run --standalone --nproc_per_node=2"
D=out/cmp; STEPS=${STEPS:-1200}
COMMON="--set data.source_dir=$D/cmd --set data.store=$D/maps.zarr --set data.split_fractions=[0.75,0.125,0.125]"
# model.vdm.prior=none: the recipe of #23's comparison, before the prior (configs/science.yaml has one since)
TRAIN="--set train.steps=$STEPS --set train.restart_steps=$STEPS --set train.val_every=600 --set train.ckpt_every=600 \
--set model.vdm.prior=none"
test -f $D/cmd/params_LH_IllustrisTNG.txt || $PY -m hpc_vdm.mock --config configs/science.yaml --set mock.n_sims=16 --set mock.out_dir=$D/cmd
test -f $D/maps.zarr/zarr.json || $PY -m hpc_vdm.prepare --config configs/science.yaml $COMMON --out $D/maps.zarr
for name in local groupnorm; do
  cfg=configs/science.yaml; [ $name = groupnorm ] && cfg=configs/science_groupnorm.yaml
  s=$(date +%s)
  test -f $D/$name/export/model.pt || $TR -m hpc_vdm.train $cfg $COMMON $TRAIN --run-dir $D/$name > $D/$name.train.log 2>&1
  echo "$name train $(( $(date +%s) - s )) s"
  s=$(date +%s)
  test -f $D/eval_$name/metrics.json || $PY -m hpc_vdm.evaluate --config $cfg --model $D/$name/export/model.pt \
      --store $D/maps.zarr --set evaluate.n_maps=16 --set evaluate.n_samples=8 --set evaluate.baselines={} \
      --set evaluate.progress=false --out $D/eval_$name > $D/eval_$name.log 2>&1
  echo "$name evaluate $(( $(date +%s) - s )) s"
done
