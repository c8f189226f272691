"""``--collect``: one row per point (axis values, state, steps, final and best validation metrics), written as
``results.csv`` and ``results.md`` in the sweep folder, and ``results.png``: the selection metric against
each axis.

"best" is the best value over the point's validation rows (lower is better, except the metrics the family
calls higher-is-better, e.g. ``val_r_mean``); ``best_step`` is the step of the best selection metric.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..io import atomic_write_text
from ..families import family_class

META = ("point", "state", "steps")


def _val_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("kind") == "val"]


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def point_row(point: dict, run_dir: Path, state: str, kind: str, select_on: str) -> dict:
    family = family_class(kind)
    metric = select_on or next(iter(family.better))
    rows = _val_rows(run_dir)
    out = {"point": point["name"], "state": state, **point["values"]}
    out["steps"] = int(rows[-1]["step"]) if rows else 0
    for col in family.val_columns:
        values = [(int(r["step"]), _number(r.get(col))) for r in rows]
        values = [(s, v) for s, v in values if not math.isnan(v)]
        if not values:
            continue
        higher = family.better.get(col) == "higher"
        best = (max if higher else min)(values, key=lambda sv: sv[1])
        out[f"final_{col}"], out[f"best_{col}"] = values[-1][1], best[1]
        if col == metric:
            out["best_step"] = best[0]
    return out


def _columns(rows: list[dict], axes: list[str]) -> list[str]:
    cols = ["point", *axes, "state", "steps", "best_step"]
    for r in rows:
        cols += [k for k in r if k not in cols]
    return [c for c in cols if any(c in r for r in rows)]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], axes: list[str], metric: str, path: Path) -> Path | None:
    from ..figures import pyplot

    key = f"final_{metric}"
    have = [r for r in rows if isinstance(r.get(key), float) and not math.isnan(r[key])]
    if not have or not axes:
        return None
    plt = pyplot()
    fig, panels = plt.subplots(1, len(axes), figsize=(4 * len(axes), 3.2), squeeze=False)
    for ax, axis in zip(panels[0], axes):
        xs = [r[axis] for r in have]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        labels = sorted({str(x) for x in xs}) if not numeric else None
        pos = xs if numeric else [labels.index(str(x)) for x in xs]
        ax.scatter(pos, [r[key] for r in have])
        if numeric and min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
        if labels:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(axis)
        ax.set_ylabel(key)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def collect(out: Path, manifest: dict, point_states: dict[str, str], kind: str, select_on: str) -> dict[str, Path]:
    """Write results.csv, results.md and results.png; returns their paths."""
    axes = list(dict.fromkeys(k for p in manifest["points"] for k in p["values"]))
    rows = [point_row(p, out / "runs" / p["name"], point_states.get(p["name"], "new"), kind, select_on)
            for p in manifest["points"]]
    cols = _columns(rows, axes)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({c: _fmt(r.get(c)) for c in cols} for r in rows)
    paths = {"csv": atomic_write_text(out / "results.csv", buf.getvalue()),
             "md": atomic_write_text(out / "results.md", markdown(rows, cols))}
    metric = select_on or next(iter(family_class(kind).better))
    png = figure(rows, axes, metric, out / "results.png")
    if png:
        paths["png"] = png
    return paths
