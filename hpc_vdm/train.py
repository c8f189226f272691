"""``python -m hpc_vdm.train [CONFIG] [--set k=v] [--run-dir D] [--steps N]``: train any model family.

The same code runs as one CPU process, as N gloo processes (torchrun, ``srun``, ``mpiexec``) or on N GPUs
over M nodes (:mod:`hpc_vdm.dist` reads the launcher); ``model.kind`` picks the task (``vdm``: the
conditional VDM; ``regressor``: a deterministic map-to-map CNN). A run dir holds::

    config.json  ds_config.json  train.log  metrics.csv  tb/  checkpoints/  export/model.pt

and resumes by default. SIGTERM/SIGUSR2 checkpoint on all ranks at the next step and exit with 75,
which ``slurm/train_multinode.sh`` turns into ``scontrol requeue`` (see :mod:`hpc_vdm.training.loop`).
"""
from __future__ import annotations

from . import cli, dist
from .config import ConfigError


def main(argv=None) -> int:
    p = cli.parser("python -m hpc_vdm.train", "train a model (model.kind) with DeepSpeed under any launcher")
    p.add_argument("config_file", nargs="?", metavar="CONFIG", help="run config (same as --config)")
    p.add_argument("--run-dir", help="run folder (train.run_dir)")
    p.add_argument("--steps", type=int, help="optimizer steps (train.steps)")

    def body(argv):
        args = p.parse_args(argv)
        if args.config_file and args.config:
            raise ConfigError("give the config once: positional CONFIG or --config")
        args.config = args.config or args.config_file
        cli.setup_logging(verbose=dist.env_rank() == 0)
        cfg = cli.resolve(args, {"run_dir": "train.run_dir", "steps": "train.steps"})
        from .training.loop import train

        return train(cfg)

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
