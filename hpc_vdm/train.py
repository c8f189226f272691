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


def check_options(cfg) -> None:
    """What the config's types cannot say and DeepSpeed would only find after the run dir exists."""
    betas = cfg.train.betas
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        bad = next((i for i, b in enumerate(betas) if not 0.0 <= b < 1.0), None)
        where = f"train.betas[{bad}]" if bad is not None and len(betas) == 2 else "train.betas"
        raise ConfigError(f"{where}: expected two values in [0.0, 1.0), got {betas}")
    from .bundle import build_module

    build_module(cfg)  # the model's options agree (groups, heads, layers) before the run dir is made


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
        check_options(cfg)
        from .training.loop import train

        return train(cfg)

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
