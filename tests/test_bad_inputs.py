"""A hostile but fair user: bad input to every command gives one clear line, exit 2, no traceback, nothing lost.

Each row (tests/rows_maps.py, rows_models.py, rows_reports.py, rows_volumes.py) builds its inputs, runs one of the 12 commands in-process (in its own working
folder, so a default output path would land there too) and checks:

* a non-zero exit, never an exception (an exception is a traceback for the user);
* a message that names the thing and the value (the row's regex), and no traceback;
* the bytes of every file that existed before (the shared inputs and the row's own) unchanged;
* nothing left behind: the row's folder holds exactly what it held before (no output, no lock, no temporary,
  no staging folder, no new sub-folder).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import export_tiny, write_cmd
from rows_common import KINDS
from rows_maps import ROWS as MAPS_ROWS
from rows_models import ROWS as MODEL_ROWS
from rows_reports import ROWS as REPORT_ROWS
from rows_volumes import ROWS as VOLUME_ROWS
from hpc_vdm import export, paint, prepare, prepare_volume, sample, sweep, tile, train
from hpc_vdm.baselines import cli as baselines_cli
from hpc_vdm.data.dataset import read_attrs
from hpc_vdm.evaluate import cli as evaluate_cli
from hpc_vdm.mock import cli as mock_cli
from hpc_vdm.spectra import cli as spectra_cli

COMMANDS = {"mock": mock_cli.main, "prepare": prepare.main, "train": train.main, "sweep": sweep.main,
            "export": export.main, "sample": sample.main, "tile": tile.main, "evaluate": evaluate_cli.main,
            "spectra": spectra_cli.main, "prepare_volume": prepare_volume.main, "paint": paint.main,
            "baselines": baselines_cli.main}
ROWS = MAPS_ROWS + MODEL_ROWS + REPORT_ROWS + VOLUME_ROWS
SMALL = "name: small\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n"
SMALL_FILE = 1 << 20  # files below this are hashed; larger ones (the shared stores' shards) compared by stat


@pytest.fixture(scope="module")
def ctx(maps_store, tmp_path_factory):
    """Shared inputs: the maps store, exported models (VDM at the store's and the presets' scale, one
    conditioned on Mgas, a dm2gal), a small preset, a valid CMD folder, a run dir with checkpoints, a volume
    store with its halo catalogue, and a complete tile store at the presets' pixel scale."""
    from test_dm2gal_compare import write_universe
    from test_dm2gal_paint import export_random
    from test_safety_outputs import fake_run_dir

    root = tmp_path_factory.mktemp("bad_inputs")
    attrs = read_attrs(maps_store)
    small = attrs | {"pixel_size_mpc_h": 0.1, "slab_thickness_mpc_h": 5.0}
    c = {"root": root, "store": maps_store, "preset": root / "small.yaml",
         "model": export_tiny(root / "model.pt", attrs, store=maps_store),
         "tile_model": export_tiny(root / "tile_model.pt", small),
         "mgas_model": export_tiny(root / "mgas_model.pt", small | {"stats": {**small["stats"], "Mgas": small[
             "stats"]["Mstar"]}}, condition="Mgas", fields=["Mgas", "Mcdm"])}
    c["preset"].write_text(SMALL)
    (root / "cmd").mkdir()
    write_cmd(root / "cmd")
    c["cmd"] = root / "cmd"
    c["run"] = fake_run_dir(root / "run", steps=(1,))
    (root / "universe").mkdir()
    cfg, _ = write_universe(root / "universe")
    c["ustore"], c["catalogue"] = Path(cfg.data.store), Path(cfg.baselines.catalogue)
    c["dm2gal_model"] = export_random(c["ustore"], root / "dm2gal.pt")
    tiles = zarr.open_group(str(root / "tiles.zarr"), mode="w")
    tiles.create_array("samples", data=np.ones((1, 1, 100, 100), np.float32))
    tiles.attrs.update({"format": "hpc_vdm.tile/1", "complete": True, "fingerprint": {"volume": {
        "name": "small", "box_mpc_h": 10.0, "slab_mpc_h": 5.0, "pixel_mpc_h": 0.1, "pixels": 100, "n_slabs": 2}}})
    c["tile_store"] = root / "tiles.zarr"
    return c


def listing(*roots: Path) -> dict:
    """{path: what it is} of every entry under ``roots`` (hidden ones, folders and links included, links not
    followed): a small file's SHA-256, a large one's (size, mtime), a folder, a link's target."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in dirs + files:
                p = Path(folder, name)
                st = p.lstat()
                if p.is_symlink():
                    out[p] = ("link", os.readlink(p))
                elif p.is_dir():
                    out[p] = ("dir",)
                elif st.st_size < SMALL_FILE:
                    out[p] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
                else:
                    out[p] = ("file", st.st_size, st.st_mtime_ns)
    return out


def run_row(row, c, tmp: Path, capsys, monkeypatch) -> str:
    """Run ``row`` and check everything the module doc lists; returns its message."""
    work = tmp / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = row.build(c, tmp)
    before = listing(c["root"], c["store"], tmp)
    try:
        rc = COMMANDS[row.command](argv)  # an exception here is a traceback for the user: the test fails
    except SystemExit as e:  # argparse's own refusal (usage line, exit 2)
        rc = e.code
    err = capsys.readouterr().err
    assert rc not in (0, None), f"exit {rc}: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert re.search(row.match, err), err[-2000:]
    after = listing(c["root"], c["store"], tmp)
    assert sorted(map(str, set(after) - set(before))) == [], "left behind"
    assert {p: v for p, v in after.items() if before.get(p) != v} == {}, "changed"
    assert before.keys() == after.keys(), "removed"
    return err


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.command}: {r.id}" for r in ROWS])
def test_bad_input(row, ctx, tmp_path, capsys, monkeypatch):
    run_row(row, ctx, tmp_path, capsys, monkeypatch)


def test_the_table_covers_every_command_and_kind_and_is_long():
    assert len({(r.command, r.id) for r in ROWS}) == len(ROWS), "row ids are unique per command"
    by_command = {name: sum(r.command == name for r in ROWS) for name in COMMANDS}
    assert min(by_command.values()) >= 6, by_command
    by_kind = {k: sum(r.kind == k for r in ROWS) for k in KINDS}
    assert set(r.kind for r in ROWS) <= set(KINDS)
    assert all(by_kind[k] >= 3 for k in ("destroyed", "nonfinite", "placement", "quiet", "traceback", "vague",
                                         "leftover", "size")), by_kind
    assert len(ROWS) >= 150, len(ROWS)


def test_a_crafted_pickle_in_a_model_file_runs_nothing(ctx, tmp_path, capsys):
    from rows_models import sample_args, tile_args

    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    blob = {"format": "hpc_vdm.export/2", "task": "vdm", "config": {}, "store": {}, "step": 0, "tag": "x",
            "model": Evil(), "ema": {}}
    torch.save(blob, tmp_path / "evil.pt")
    for cmd, argv in (("sample", sample_args(lambda c, t: t / "evil.pt")(ctx, tmp_path)),
                      ("tile", tile_args(model=lambda c, t: t / "evil.pt")(ctx, tmp_path))):
        assert COMMANDS[cmd](argv) == 2
        err = capsys.readouterr().err
        assert "refused to load it" in err and "Traceback" not in err
        assert not sentinel.exists()  # the payload never ran


def test_the_runner_catches_what_a_row_leaves_behind(ctx, tmp_path, capsys, monkeypatch):
    """The runner itself: an output left behind, or a changed input, fails a row."""
    from rows_common import Row

    def leaves(c, t):
        (t / "out.zarr").mkdir()
        return ["--source", str(t / "nowhere")]

    real = COMMANDS["prepare"]
    monkeypatch.setitem(COMMANDS, "prepare", lambda argv: (shutil.copytree(ctx["cmd"], Path(argv[1]).parent / "x"),
                                                            real(argv))[1])
    with pytest.raises(AssertionError, match="left behind"):
        run_row(Row("leaves", "prepare", leaves, "CMD source folder"), ctx, tmp_path, capsys, monkeypatch)
