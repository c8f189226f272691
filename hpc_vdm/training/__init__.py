"""Training: one family-agnostic loop under DeepSpeed (the families are in :mod:`hpc_vdm.families`).

loop (the run), engine (DeepSpeed config, LR, wrapping), checkpoint (run-dir checkpoints), preemption
(sbatch and submitit requeue policies), metrics_log (metrics.csv, TensorBoard), run_dir (guards), export
(a checkpoint -> model.pt). Import :func:`train` from :mod:`hpc_vdm.training.loop` (DeepSpeed loads lazily).
"""
