"""Nothing lost, nothing silent: outputs are replaced only when they are ours, stores are verified on open,
one writer per output, and a full or read-only disk is one clear error with nothing left behind.

Every test asserts a non-zero exit, a message naming the problem, no traceback, and unchanged bytes of
whatever existed before.
"""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import clean_env, export_tiny, train_cmd, write_cmd
from hpc_vdm import export, sample
from hpc_vdm.spectra import cli as spectra
from hpc_vdm.config import RunConfig, load_config, to_dict
from hpc_vdm.data.dataset import MapsDataset, held_out_maps, read_attrs
from hpc_vdm.data.store import chunk_files
from hpc_vdm.io import lock_path
from hpc_vdm.prepare import main as prepare_main
from hpc_vdm.training.checkpoint import Checkpoints


def snapshot(root: Path) -> dict:
    """{relative path: (sha256, size, mtime_ns)} of every file under ``root`` (or of ``root`` itself)."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)) if p != root else ".": (hashlib.sha256(p.read_bytes()).hexdigest(),
                                                             p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def refused(code: int, err: str, *needles: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def small(tmp_path):
    """A small CMD set and the config that prepares it into tmp_path/maps.zarr."""
    root = tmp_path / "cmd"
    root.mkdir()
    write_cmd(root)
    return load_config(None, [f"data.source_dir={root}", f"data.store={tmp_path}/maps.zarr"])


def prepare_args(cfg, out=None, *extra):
    return ["--source", cfg.data.source_dir, "--out", str(out or cfg.data.store), *extra]


@pytest.fixture(scope="module")
def model(maps_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("safety_model") / "model.pt"
    return export_tiny(path, read_attrs(maps_store), seed=1, store=maps_store)


def run_sample(model, store, out, *extra):
    return sample.main(["--model", str(model), "--store", str(store), "--n-maps", "2", "--n-samples", "1",
                        "--steps", "2", "--out", str(out), "--set", "sample.progress=false", *extra])


@pytest.fixture
def copied_store(maps_store, tmp_path):
    store = tmp_path / "maps.zarr"
    shutil.copytree(maps_store, store)
    return store


# -- store integrity ----------------------------------------------------------------------------------------
def test_missing_chunk_sample_refuses_naming_array_and_maps(model, copied_store, tmp_path, capsys):
    shard = chunk_files(copied_store / "Mcdm")[2]
    (copied_store / "Mcdm" / shard).unlink()
    assert run_sample(model, copied_store, tmp_path / "s") == 2
    refused(2, capsys.readouterr().err, "array 'Mcdm' lacks 1 of its", f"first {shard} (map 30-44)")
    assert not (tmp_path / "s").exists()


def test_missing_chunk_train_refuses_before_writing(copied_store, tmp_path):
    (copied_store / "Mstar" / chunk_files(copied_store / "Mstar")[0]).unlink()
    proc = subprocess.run(train_cmd(copied_store, tmp_path / "run"), env=clean_env(), capture_output=True,
                          text=True, timeout=300)
    refused(proc.returncode, proc.stderr, "array 'Mstar' lacks 1 of its", "(map 0-14)")
    assert proc.returncode == 2 and not (tmp_path / "run").exists()


def flip_bytes(path: Path, every: int = 2048) -> None:
    """Flip one bit in every ``every`` bytes of a shard's chunk data (its index at the end left intact)."""
    data = bytearray(path.read_bytes())
    for i in range(64, len(data) - 2048, every):
        data[i] ^= 0x10
    path.write_bytes(bytes(data))


def test_damaged_chunk_sample_refuses_naming_array_and_map(model, copied_store, tmp_path, capsys):
    attrs = read_attrs(copied_store)
    first = held_out_maps(attrs, "test", 2)[0]
    flip_bytes(copied_store / "Mcdm" / f"c/{first // 15}/0/0")
    assert run_sample(model, copied_store, tmp_path / "s") == 2
    refused(2, capsys.readouterr().err, "is damaged", f"map {first} of array 'Mcdm' cannot be read", "checksum")
    assert not (tmp_path / "s").exists()


def test_damaged_chunk_training_read_names_array_and_map(copied_store):
    ds = MapsDataset(copied_store, "train")
    n = int(ds.maps[0])
    flip_bytes(copied_store / "Mstar" / f"c/{n // 15}/0/0")
    with pytest.raises(ValueError, match=rf"map {n} of array 'Mstar' cannot be read"):
        ds[0]


def test_incomplete_store_is_refused(copied_store, capsys, tmp_path, model):
    meta = json.loads((copied_store / "zarr.json").read_text())
    meta["attributes"]["complete"] = False
    (copied_store / "zarr.json").write_text(json.dumps(meta))
    assert run_sample(model, copied_store, tmp_path / "s") == 2
    refused(2, capsys.readouterr().err, "is incomplete (its writer did not finish)")


# -- overwrite semantics ----------------------------------------------------------------------------------
def test_prepare_overwrite_never_replaces_a_foreign_folder(small, tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "sub" / "data.bin").write_bytes(os.urandom(100))
    before = snapshot(mine)
    refused(prepare_main(prepare_args(small, mine, "--overwrite")), capsys.readouterr().err,
            f"{str(mine)!r} exists and is a folder that is not an hpc_vdm output, not an hpc_vdm maps store")
    assert snapshot(mine) == before and sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "mine"]


def test_prepare_overwrite_never_replaces_a_plain_file(small, tmp_path, capsys):
    notes = tmp_path / "notes.zarr"
    notes.write_text("not a store")
    before = snapshot(notes)
    refused(prepare_main(prepare_args(small, notes, "--overwrite")), capsys.readouterr().err,
            "exists and is a file that is not an hpc_vdm output")
    assert snapshot(notes) == before


@pytest.mark.parametrize("where", ["itself", "inside"])
def test_prepare_never_writes_its_source_folder(small, tmp_path, capsys, where):
    source = Path(small.data.source_dir)
    before = snapshot(source)
    out = source if where == "itself" else source / "maps.zarr"
    code = prepare_main(prepare_args(small, out, "--overwrite"))
    how = "it is the input" if where == "itself" else "it lies inside the input"
    refused(code, capsys.readouterr().err, f"refusing to write {str(out)!r}: {how} {str(source)!r}")
    assert snapshot(source) == before


def test_prepare_never_writes_through_a_symlink_into_its_source(small, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(small.data.source_dir)
    before = snapshot(Path(small.data.source_dir))
    refused(prepare_main(prepare_args(small, link / "maps.zarr")), capsys.readouterr().err, "lies inside the input")
    assert snapshot(Path(small.data.source_dir)) == before


def test_spectra_out_needs_overwrite_and_replaces_only_its_own(small, tmp_path, capsys):
    assert prepare_main(prepare_args(small)) == 0
    store = small.data.store
    args = ["auto", store, "--array", "Mcdm", "--overdensity"]
    out = tmp_path / "pk.json"
    assert spectra.main(args + ["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "hpc_vdm.spectra/1" and len(doc["power"]) == 30
    capsys.readouterr()
    before = snapshot(out)
    refused(spectra.main(args + ["--out", str(out)]), capsys.readouterr().err,
            "exists (an hpc_vdm spectra file); pass --overwrite")
    assert snapshot(out) == before
    assert spectra.main(args + ["--out", str(out), "--overwrite", "--maps", "0:5"]) == 0
    assert len(json.loads(out.read_text())["power"]) == 5
    foreign = tmp_path / "results.json"
    foreign.write_text(json.dumps({"k": [1, 2]}))
    before = snapshot(foreign)
    refused(spectra.main(args + ["--out", str(foreign), "--overwrite"]), capsys.readouterr().err,
            "exists and is a file that is not an hpc_vdm output, not an hpc_vdm spectra file")
    assert snapshot(foreign) == before
    npz = tmp_path / "pk.npz"
    assert spectra.main(args + ["--out", str(npz)]) == 0 and str(np.load(npz)["format"]) == "hpc_vdm.spectra/1"
    assert spectra.main(args + ["--out", str(npz), "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "maps.zarr", "pk.json", "pk.npz", "results.json"]


def tiny_config() -> RunConfig:
    cfg = RunConfig()
    cfg.model.channels, cfg.model.channel_mults, cfg.model.norm_groups, cfg.model.dropout = 8, [1, 2, 2], 4, 0.0
    return cfg


class FakeEngine:
    """DeepSpeed's ZeRO-0 checkpoint layout with a tiny VDM (weights scaled by the step, to tell them apart)."""

    def __init__(self, value: float):
        from hpc_vdm.bundle import build_module

        torch.manual_seed(0)
        self.state = {k: v * value for k, v in build_module(tiny_config()).state_dict().items()}

    def save_checkpoint(self, root, tag, client_state, save_latest):
        Path(root, tag).mkdir(parents=True)
        torch.save({"module": self.state}, Path(root, tag, "mp_rank_00_model_states.pt"))

    def zero_optimization_stage(self):
        return 0


STATS = {f: {"transform": "log10(x + offset)", "offset": 1.0, "mean": 10.0, "std": 1.0} for f in ("Mstar", "Mcdm")}


def fake_run_dir(root: Path, steps=(1, 2)) -> Path:
    ckpts = Checkpoints(root / "checkpoints")
    store = {"stats": STATS, "pixel_size_mpc_h": 25 / 256, "slab_thickness_mpc_h": 5.0, "map_pixels": 256}
    for step in steps:
        engine = FakeEngine(float(step))
        ckpts.save(engine, step, {}, extra_files={"ema.pt": {"shadow": engine.state}},
                   meta={"config": to_dict(tiny_config()), "store": store})
    (root / "config.json").write_text(json.dumps(to_dict(tiny_config())))
    return root


def test_export_out_needs_overwrite_and_replaces_only_its_own(tmp_path, capsys):
    run = fake_run_dir(tmp_path / "run")
    assert export.main([str(run), "--tag", "step00000001"]) == 0
    model = run / "export" / "model.pt"
    assert torch.load(model, weights_only=True)["step"] == 1
    capsys.readouterr()
    before = snapshot(model)
    refused(export.main([str(run)]), capsys.readouterr().err, "exists (an hpc_vdm model file); pass --overwrite")
    assert snapshot(model) == before
    assert export.main([str(run), "--overwrite"]) == 0
    assert torch.load(model, weights_only=True)["step"] == 2
    foreign = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(3)}, foreign)
    before = snapshot(foreign)
    refused(export.main([str(run), "--out", str(foreign), "--overwrite"]), capsys.readouterr().err,
            "exists and is a file that is not an hpc_vdm output, not an hpc_vdm model file")
    assert snapshot(foreign) == before
    inside = run / "checkpoints" / "model.pt"
    refused(export.main([str(run), "--out", str(inside)]), capsys.readouterr().err, "lies inside the input")
    assert not inside.exists()


def test_sample_overwrite_replaces_its_own_outputs_only(model, maps_store, tmp_path, capsys):
    out = tmp_path / "s"
    assert run_sample(model, maps_store, out) == 0
    capsys.readouterr()
    before = snapshot(out)
    refused(run_sample(model, maps_store, out), capsys.readouterr().err,
            "exists (an hpc_vdm samples store); pass --overwrite")
    assert snapshot(out) == before
    assert run_sample(model, maps_store, out, "--overwrite", "--seed", "3") == 0
    assert sorted(p.name for p in out.iterdir()) == ["samples.png", "samples.zarr", "summary.json"]
    (out / "summary.json").write_text("{}")  # no longer ours
    before = snapshot(out)
    refused(run_sample(model, maps_store, out, "--overwrite"), capsys.readouterr().err,
            "summary.json' exists and is a file that is not an hpc_vdm output")
    assert snapshot(out) == before


# -- all checkpoints unusable -------------------------------------------------------------------------------
def test_all_checkpoints_corrupt_is_an_error_and_nothing_changes(maps_store, tmp_path):
    run = fake_run_dir(tmp_path / "run")
    with open(run / "checkpoints" / "step00000002" / "mp_rank_00_model_states.pt", "r+b") as f:
        f.truncate(20)
    (run / "checkpoints" / "step00000001" / "COMPLETE.json").unlink()
    before = snapshot(run)
    proc = subprocess.run(train_cmd(maps_store, run), env=clean_env(), capture_output=True, text=True, timeout=300)
    refused(proc.returncode, proc.stderr, f"no usable checkpoint in {str(run / 'checkpoints')!r}",
            "step00000002: mp_rank_00_model_states.pt has 20 bytes, the manifest says",
            "step00000001: no COMPLETE.json (the save did not finish)", "Nothing was changed")
    assert proc.returncode == 2 and snapshot(run) == before
    assert not lock_path(run).exists()


# -- one writer per output ----------------------------------------------------------------------------------
def test_two_prepares_on_one_new_output_one_wins_the_other_names_it(tmp_path):
    source = tmp_path / "cmd"
    source.mkdir()
    write_cmd(source, n_sims=12, pixels=256)  # a few seconds of checking and writing
    out = tmp_path / "maps.zarr"
    cmd = [sys.executable, "-m", "hpc_vdm.prepare", "--source", str(source), "--out", str(out)]
    first = subprocess.Popen(cmd, env=clean_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not lock_path(out).exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGSTOP)  # the first writes only once its inputs are checked: hold it mid-write
    try:
        second = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    refused(second.returncode, second.stderr, f"{str(out)!r} is being written by another command: pid {first.pid} "
            f"on host {socket.gethostname()}, started", "wait for it to finish or stop it")
    assert second.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "maps.zarr"]  # no lock, no temporary
    assert read_attrs(out)["complete"] is True


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stale_lock_of_a_dead_process_is_taken_over(small, tmp_path, caplog):
    out = Path(small.data.store)
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "time": time.time(),
                                          "started": "earlier", "argv": "prepare", "token": "old"}))
    assert prepare_main(prepare_args(small)) == 0
    assert "taking over the stale lock" in caplog.text and "is not running on this host" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "maps.zarr"]


def test_a_lock_held_on_another_host_is_reported_with_its_age(small, tmp_path, capsys):
    out = Path(small.data.store)
    held = {"host": "node-elsewhere", "pid": 4242, "time": time.time() - 3 * 3600, "started": "three hours ago",
            "argv": "python -m hpc_vdm.prepare", "token": "theirs"}
    lock_path(out).write_text(json.dumps(held))
    before = snapshot(lock_path(out))
    refused(prepare_main(prepare_args(small)), capsys.readouterr().err,
            "pid 4242 on host node-elsewhere, started three hours ago (3.0 h ago)",
            f"if that process is no longer running, remove {str(lock_path(out))!r} and rerun")
    assert snapshot(lock_path(out)) == before and not out.exists()


def test_a_second_trainer_on_a_run_dir_is_refused(maps_store, tmp_path):
    run = tmp_path / "run"
    held = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "started": "now",
            "argv": "python -m hpc_vdm.train (the first)", "token": "first"}
    lock_path(run).write_text(json.dumps(held))
    proc = subprocess.run(train_cmd(maps_store, run), env=clean_env(), capture_output=True, text=True, timeout=300)
    refused(proc.returncode, proc.stderr, f"is being written by another command: pid {os.getpid()}",
            "python -m hpc_vdm.train (the first)")
    assert proc.returncode == 2 and not run.exists() and json.loads(lock_path(run).read_text()) == held


# -- unwritable and full filesystems ------------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                           text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {mount.stderr.strip()}")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_filesystem_is_one_error_and_leaves_nothing(tmp_path, capsys):
    source = tmp_path / "cmd"
    source.mkdir()
    write_cmd(source, n_sims=4, pixels=128)  # ~4 MB of poorly compressible maps for a 1 MB disk
    with tmpfs(tmp_path / "small", "1m") as disk:
        cfg = load_config(None, [f"data.source_dir={source}", f"data.store={disk}/maps.zarr"])
        refused(prepare_main(prepare_args(cfg)), capsys.readouterr().err,  # refused up front by its size
                f"the maps store {str(disk / 'maps.zarr')!r} (2 fields x 60 maps of 128^2 float32, before "
                f"compression) needs about 7.5 MiB of disk; {str(disk)!r} has 1 MiB free; pass --force")
        assert list(disk.iterdir()) == []
        refused(prepare_main(prepare_args(cfg, None, "--force")), capsys.readouterr().err,  # and when forced
                f"cannot write {str(disk / 'maps.zarr')!r}: No space left on device (ENOSPC)")
        assert list(disk.iterdir()) == []  # no half store, no temporary, no lock


def test_read_only_filesystem_is_one_error_and_leaves_nothing(small, tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as disk:
        refused(prepare_main(prepare_args(small, disk / "maps.zarr")), capsys.readouterr().err,
                f"cannot write {str(disk / 'maps.zarr')!r}: Read-only file system (EROFS)")
        assert list(disk.iterdir()) == []


def test_full_filesystem_spectra_keeps_the_old_file(small, tmp_path, capsys):
    assert prepare_main(prepare_args(small)) == 0
    with tmpfs(tmp_path / "small", "64k") as disk:
        out = disk / "pk.npz"
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            for _ in range(100):
                f.write(b"x" * 4096)
                f.flush()
        args = ["auto", small.data.store, "--array", "Mcdm", "--out", str(out)]
        refused(spectra.main(args), capsys.readouterr().err, f"cannot write {str(out)!r}: No space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_killed_writer_leaves_nothing_that_a_rerun_does_not_clear(tmp_path):
    source = tmp_path / "cmd"
    source.mkdir()
    write_cmd(source, n_sims=12, pixels=256)
    out = tmp_path / "maps.zarr"
    cmd = [sys.executable, "-m", "hpc_vdm.prepare", "--source", str(source), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".maps.zarr.tmp*/Mstar")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()  # mid-write: a temporary store and the lock stay behind
    proc.wait()
    assert lock_path(out).exists() and list(tmp_path.glob(".maps.zarr.tmp*")) and not out.exists()
    rerun = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "taking over the stale lock" in rerun.stderr and "left by an interrupted writer" in rerun.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmd", "maps.zarr"]


def test_tile_store_chunk_missing_under_its_done_record_is_named(tmp_path, capsys):
    from hpc_vdm.inference import store as tile_store

    out = tmp_path / "t.zarr"
    store = tile_store.tile_store(out)
    store.create(tile_store.layout([(0, 0), (0, 1)], 8, 2), {"fingerprint": {"a": 1}, "provenance": {}})
    rows = tile_store.TileRows(store, store.open())
    for i in range(2):
        rows.write_cond(i, np.ones((8, 8)))
        for j in range(2):
            rows.write_sample(i, j, np.full((8, 8), 1.0 + j))
        rows.write_summary(i)
    store.mark_complete()
    (out / "samples" / "c" / "1" / "1" / "0" / "0").unlink()
    with pytest.raises(ValueError, match=r"array 'samples' has no chunk for slab 1 \(axis 0, slab 1\), sample 1, "
                                         r"which its record 'done' lists as written"):
        store.open()
    refused(spectra.main(["auto", f"{out}", "--array", "mean", "--box", "25"]), capsys.readouterr().err,
            "array 'samples' has no chunk for slab 1")


def test_samples_store_chunk_missing_is_named_by_spectra(model, maps_store, tmp_path, capsys):
    out = tmp_path / "s"
    assert run_sample(model, maps_store, out) == 0
    (out / "samples.zarr" / "samples" / "c" / "0" / "1" / "0" / "0").unlink()
    capsys.readouterr()
    code = spectra.main(["compare", "--truth", f"{out}/samples.zarr:truth", "--samples", f"{out}/samples.zarr:samples"])
    refused(code, capsys.readouterr().err, "array 'samples' lacks 1 of its 2 chunk files, first c/0/1/0/0 (map 1)")


@pytest.fixture(scope="module")
def tile_model(maps_store, tmp_path_factory):
    """A tiny exported U-Net at the tile presets' 0.1 Mpc/h pixels, and a 2-slab preset."""
    attrs = read_attrs(maps_store) | {"pixel_size_mpc_h": 0.1, "slab_thickness_mpc_h": 5.0}
    root = tmp_path_factory.mktemp("safety_tile")
    (root / "small.yaml").write_text("name: small\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")
    return export_tiny(root / "model.pt", attrs), root / "small.yaml"


def tile_args(tile_model, out):
    model, preset = tile_model
    return ["--volume", str(preset), "--model", str(model), "--n-samples", "1", "--steps", "2", "--tile", "32",
            "--halo", "8", "--set", "tile.mock_slabs=2", "--set", "tile.mock_spacing_mpc_h=0.5",
            "--set", "tile.mock_pm_steps=3", "--set", "tile.progress=false", "--set", "tile.force=true",
            "--sampler", "ancestral", "--out", str(out)]


def test_a_second_tile_run_on_one_output_is_refused_naming_the_first(tile_model, tmp_path, capsys):
    from hpc_vdm import tile

    out = tmp_path / "t.zarr"
    held = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "started": "now",
            "argv": "python -m hpc_vdm.tile (the first)", "token": "first"}
    lock_path(out).write_text(json.dumps(held))
    refused(tile.main(tile_args(tile_model, out)), capsys.readouterr().err,
            f"{str(out)!r} is being written by another command: pid {os.getpid()}", "tile (the first)")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".t.zarr.lock"]  # no store, no temporary


def test_tile_never_writes_onto_its_model(tile_model, capsys):
    from hpc_vdm import tile

    model = tile_model[0]
    before = snapshot(model)
    refused(tile.main(tile_args(tile_model, model)), capsys.readouterr().err,
            f"refusing to write {str(model)!r}: it is the input")
    assert snapshot(model) == before
