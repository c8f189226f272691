"""Training: one task-agnostic loop under DeepSpeed, and the model families as tasks of it.

loop (the run), tasks (vdm, regressor: build, loss terms, validation), engine (DeepSpeed config, LR,
wrapping), checkpoint (run-dir checkpoints), preemption (sbatch and submitit requeue policies),
metrics_log (metrics.csv, TensorBoard), run_dir (guards), validate (the VDM's), artifact (export ->
:class:`ModelBundle`). Import :func:`train` from :mod:`hpc_vdm.training.loop` (DeepSpeed loads lazily).
"""
