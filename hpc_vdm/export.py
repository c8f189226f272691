"""``python -m hpc_vdm.export RUN_DIR [--tag latest|best|stepNNNNNNNN] [--out FILE]``: re-export a checkpoint.

Writes consolidated fp32 weights (raw and EMA), the config, the task and the store facts to
``RUN_DIR/export/model.pt`` (see :mod:`hpc_vdm.bundle`; ``load_bundle`` reads it back). An
existing output is replaced only with ``--overwrite``, and only if it is an hpc_vdm export.
"""
from __future__ import annotations

from . import cli
from .io.inputs import input_dir
from .training.export import export_run


def main(argv=None) -> int:
    p = cli.parser("python -m hpc_vdm.export", "consolidate a run's checkpoint into run_dir/export/model.pt")
    p.add_argument("run_dir")
    p.add_argument("--tag", default="latest", help="latest, best, or a step tag such as step00001000")
    p.add_argument("--out", help="output file (default: RUN_DIR/export/model.pt)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output, only if it is an hpc_vdm "
                                                            "export")

    def body(argv):
        args = p.parse_args(argv)
        cli.setup_logging()
        input_dir(args.run_dir, "run dir")
        print(export_run(args.run_dir, args.tag, args.out, overwrite=args.overwrite))

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
