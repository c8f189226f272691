"""Killed and rerun = uninterrupted: a SIGKILL mid-run of ``mock``, ``prepare_volume`` and ``train``, then the same
command again, ends with the files an uninterrupted run writes (``tile``: tests/test_tile.py, ``paint``:
tests/test_dm2gal_paint.py). Every test runs the commands as users do, in subprocesses, so they are slow."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import REPO, alive, clean_env, exported, files, kill_when, metrics, train, train_cmd
from rows_common import cube, save_npy

pytestmark = pytest.mark.slow


def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=clean_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_killed_mock_reruns_to_the_uninterrupted_files(tmp_path):
    def cmd(out):
        return [sys.executable, "-m", "hpc_vdm.mock", "--out", str(out), "--n-sims", "4", "--particles", "32",
                "--pixels", "32", "--pm-steps", "3", "--workers", "2", "--set", "mock.grids=[16]"]

    run(cmd(tmp_path / "whole"))
    out = tmp_path / "killed"
    workers = kill_when(cmd(out), lambda: len(list(out.glob(".mock-partial-*/done_*"))) >= 1)
    if len(list(out.glob(".mock-partial-*/done_*"))) < 4:  # killed mid-set, the rule: its two workers were running
        assert len(workers) >= 2, workers
    deadline = time.time() + 30
    while any(alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if alive(p)], "workers outlived their killed parent"
    # Killed mid-set as a rule; should the last simulations land first, the kill falls in the moves into place
    # (each point is pinned down in-process in tests/test_mock_outputs.py): either way a stage is left to finish.
    assert list(out.glob(".mock-partial-*"))
    rerun = run(cmd(out))
    assert re.search(r"\([1-9]\d* staged\)", rerun.stderr) or "finishing the move" in rerun.stderr  # resumed
    assert files(out) == files(tmp_path / "whole")  # maps, params, grids, catalogues and the record, byte for byte


def test_killed_prepare_volume_reruns_to_the_uninterrupted_store(tmp_path):
    grids = {"dm": save_npy(tmp_path / "dm.npy", cube(128, 1)), "subhalo": save_npy(tmp_path / "sub.npy", cube(128, 2)),
             "stellar": save_npy(tmp_path / "st.npy", cube(128, 3))}
    spec = json.dumps({k: str(v) for k, v in grids.items()})

    def cmd(out):
        return [sys.executable, "-m", "hpc_vdm.prepare_volume", "--set", f"volume.grids={spec}", "--set",
                "volume.grid_units=mass", "--set", "volume.chunk=16", "--store", str(out)]

    run(cmd(tmp_path / "whole.zarr"))
    out = tmp_path / "killed.zarr"
    kill_when(cmd(out), lambda: any(p.is_dir() for p in tmp_path.glob(".killed.zarr.tmp*/subhalo")))
    assert not out.exists() and list(tmp_path.glob(".killed.zarr.tmp*"))  # a temporary, never half a store
    rerun = run(cmd(out))
    assert "left by an interrupted writer" in rerun.stderr and "taking over the stale lock" in rerun.stderr
    a, b = zarr.open_group(str(out), mode="r"), zarr.open_group(str(tmp_path / "whole.zarr"), mode="r")
    assert dict(a.attrs) == dict(b.attrs)
    for name in ("dm", "subhalo", "stellar"):
        np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
    assert sorted(p.name for p in tmp_path.glob(".*")) == []  # no temporary, no lock


def test_killed_train_reruns_to_the_uninterrupted_weights(maps_store, tmp_path):
    """The weights, and the logged losses: rows every 2 steps, so the checkpoint at step 3 cuts the window of
    steps 3-4, whose row must still be the mean over both (the window is checkpointed)."""
    window = "train.log_every=2"
    straight = tmp_path / "straight"
    train(maps_store, straight, window)
    run_dir = tmp_path / "run"
    latest = run_dir / "checkpoints" / "latest"
    kill_when(train_cmd(maps_store, run_dir, "train.steps=6", window), lambda: latest.is_file()
              and latest.read_text().strip() == "step00000003")
    assert not (run_dir / "export").exists()
    proc = train(maps_store, run_dir, window)
    assert "resumed from step00000003" in proc.stderr
    a, b = exported(straight), exported(run_dir)
    assert all(torch.equal(a[w][k], b[w][k]) for w in ("model", "ema") for k in a[w])
    rows = [[(r["step"], r["loss"]) for r in metrics(d)] for d in (straight, run_dir)]
    assert [s for s, _ in rows[0]] == ["2", "4", "6"] and rows[0] == rows[1]
