"""``python -m hpc_vdm.sweep SWEEP.yaml [--executor slurm|local|debug] [--dry-run] [--status] [--collect] [--cancel]``

Expands a sweep file (a base config, axes of ``--set`` overrides, resources; see
:mod:`hpc_vdm.sweeps.spec` and ``configs/sweeps/``) into one run dir per point and submits the points that
are not done, pending or running as one submitit job array; each task trains its point through the same
loop as ``python -m hpc_vdm.train``. Re-running the command skips finished points and resubmits failed or
cancelled ones. ``--status``, ``--collect`` and ``--cancel`` read the sweep folder (work from any shell).
Every input is checked before anything is written or submitted; a bad one exits 2 with one line.
"""
from __future__ import annotations

import argparse
import logging

from . import cli
from .io import check_disjoint

log = logging.getLogger("hpc_vdm.sweep")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hpc_vdm.sweep", description="submit, watch and collect a sweep",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sweep_file", metavar="SWEEP.yaml", help="sweep file (configs/sweeps/)")
    p.add_argument("--executor", choices=("slurm", "local", "debug"),
                   help="where the points run (default: slurm when sbatch is on PATH, else local)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override of every point (joins the file's set; part of the sweep's identity)")
    p.add_argument("--out", help="sweep folder (default: the file's out)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--dry-run", action="store_true", help="print the array and the sbatch parameters only")
    act.add_argument("--status", action="store_true", help="each point's state")
    act.add_argument("--collect", action="store_true", help="results.csv/.md/.png of final and best metrics")
    act.add_argument("--cancel", action="store_true", help="cancel this sweep's pending and running points")
    return p


def run_sweep(args) -> int:
    from .config import to_dict
    from .sweeps import record, status, submit
    from .sweeps.job import SweepJob
    from .sweeps.points import expand
    from .sweeps.spec import load_spec

    spec = load_spec(args.sweep_file, args.overrides, args.out)
    pairs = expand(spec)
    points = [p for p, _ in pairs]
    names = [p.name for p in points]
    check_disjoint(spec.out, sorted({cfg.data.store for _, cfg in pairs}) + [spec.path])  # never into an input
    exists = record.check_folder(spec, points)
    if args.status or args.collect or args.cancel:
        return report(args, spec, pairs, exists)
    kind = submit.pick_executor(args.executor)
    if kind == "slurm":
        submit.check_partition(spec.resources)
    rows = status.states(spec.out, names) if exists else [status.PointState(n, "new") for n in names]
    todo = [(p, cfg) for (p, cfg), r in zip(pairs, rows) if r.state in status.RESUBMIT]
    kept = {r.state for r in rows if r.state not in status.RESUBMIT}
    for state in sorted(kept):
        print(f"{sum(r.state == state for r in rows)} point(s) {state}: not submitted again")
    folder = record.next_folder(spec.out)
    if args.dry_run:
        print(submit.dry_run_text(kind, folder, spec.resources, spec.path.stem, [p for p, _ in todo]))
        return 0
    if not todo:
        print(f"nothing to submit: {len(rows)} point(s), none new, failed or cancelled")
        return 0
    record.write_manifest(spec, points)
    jobs = [SweepJob(p.name, to_dict(cfg), spec.resources.env) for p, cfg in todo]
    by_job = {}

    def on_submit(handles):
        new = {job.name: h.job_id for job, h in zip(jobs[len(by_job):], handles)}
        by_job.update(new)
        record.add_submission(spec.out, kind, folder, new)
        print(f"submitted {len(new)} point(s) with the {kind} executor: "
              + ", ".join(f"{n} ({j})" for n, j in new.items()))

    submit.submit(kind, folder, spec.resources, spec.path.stem, jobs, on_submit)
    if kind != "slurm":
        final = status.states(spec.out, names)
        print(status.format_table(final))
        return 0 if all(r.state == "done" for r in final) else 1
    print(f"logs in {folder}; watch with: python -m hpc_vdm.sweep {args.sweep_file} --status")
    return 0


def report(args, spec, pairs, exists: bool) -> int:
    from .sweeps import record, status, submit

    if not exists:
        raise FileNotFoundError(f"sweep folder {str(spec.out)!r} holds no sweep yet: submit it first")
    names = [p.name for p, _ in pairs]
    rows = status.states(spec.out, names)
    if args.status:
        print(status.format_table(rows))
    elif args.cancel:
        cancelled = submit.cancel(rows, record.latest_jobs(spec.out))
        print(f"cancelled {len(cancelled)} point(s)" + (": " + ", ".join(cancelled) if cancelled else ""))
    else:
        from .sweeps.collect import collect

        cfg = pairs[0][1]
        paths = collect(spec.out, record.read_manifest(spec.out), {r.name: r.state for r in rows},
                        cfg.model.kind, cfg.train.select_on)
        print(paths["md"].read_text(), end="")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv=None) -> int:
    def body(argv) -> int:
        args = parser().parse_args(argv)
        cli.setup_logging(verbose=False)
        return run_sweep(args)

    return cli.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
