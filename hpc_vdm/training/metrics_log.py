"""``metrics.csv`` (+ TensorBoard) on rank 0: one row per log interval and per validation.

The columns are the loop's (step, kind, epoch, samples, lr, loss, samples_per_s) and the task's (its
loss terms, extra train columns and validation metrics). A resumed run first drops the rows after its
step, so the file of a resumed run equals that of an uninterrupted one.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from ..io import atomic_write


class MetricsLog:
    def __init__(self, run_dir: Path, columns: Sequence[str], *, enabled: bool, start_step: int, tensorboard: bool):
        self.enabled, self.columns, self.file, self.tb = enabled, list(columns), None, None
        if not enabled:
            return
        path = run_dir / "metrics.csv"
        rows = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]

        def rewrite(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, self.columns, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)

        atomic_write(path, rewrite)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, self.columns)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        unknown = set(row) - set(self.columns)
        if unknown:  # a task reporting a metric it did not declare is a bug in the task
            raise KeyError(f"metrics {sorted(unknown)} are not columns of metrics.csv ({self.columns})")
        self.writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float):
                    self.tb.add_scalar(f"{row['kind']}/{k}", v, row["step"])

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()
