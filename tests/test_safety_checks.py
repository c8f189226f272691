"""The validation layer itself (hpc_vdm.io.inputs) and what the table cannot show in one row: sizes refused with
what they need and what the machine has, ``--force`` past them, folders a refused run made removed, chunks of
fill values written, and an edited mock file kept by its content hash."""
from __future__ import annotations

import numpy as np
import pytest

from hpc_vdm.io import acquire_lock, inputs, write_record
from hpc_vdm.io.records import check_recorded
from hpc_vdm.mock import cli as mock_cli


def test_numbers_and_arrays_are_named_with_their_first_bad_value():
    with pytest.raises(ValueError, match=r"m in 'f\.h5': 2 value\(s\) NaN or inf, first nan at \(1, 2\) "
                                         r"\(they must be finite and >= 0\)"):
        inputs.check_values(np.array([[0.0, 1.0, 2.0], [3.0, 4.0, np.nan], [np.inf, 0, 0]]), "m", "'f.h5'", lo=0.0)
    with pytest.raises(ValueError, match=r"first -1\.0 at \(12, 0\)"):  # the index in the whole array
        inputs.check_values(np.array([[-1.0]]), "m", "x", lo=0.0, offset=(12, 0))
    for bad in (float("nan"), "5", True, -1.0):
        with pytest.raises(ValueError, match=r"box of 'a' is .*; expected a (finite positive )?number"):
            inputs.finite_number(bad, "box", "'a'", positive=True)
    assert inputs.finite_number(np.float32(2.5), "box", "a", positive=True) == 2.5
    for dtype, held in ((np.complex64, "complex numbers"), (bool, "booleans"), (np.int16, "integers"),
                        ("U3", "strings"), (object, "Python objects"), ([("a", "f4")], "compound records")):
        with pytest.raises(ValueError, match=rf"grid in 'g' holds {held}"):
            inputs.real_floats(np.dtype(dtype), "grid", "'g'")
    inputs.real_floats(np.float16, "grid", "g")


def test_paths_say_what_they_are(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "e").write_bytes(b"")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    for path, match in (("d", r"model '.*d' is a folder; expected a file"), ("e", r"model '.*e' is empty \(0 bytes\)"),
                        ("a", r"model '.*a' is a symlink loop"), ("gone", r"model '.*gone' is a dangling symlink"),
                        ("none", r"no model at '.*none'")):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            inputs.input_file(tmp_path / path, "model")
    with pytest.raises(ValueError, match=r"folder '.*e' is a file; expected a folder"):
        inputs.input_dir(tmp_path / "e", "folder")


def test_sizes_are_refused_with_need_and_have_and_force_lets_them_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "available_memory", lambda: (2 << 30, 4 << 30))
    with pytest.raises(ValueError, match=r"the job needs about 3 GiB of memory; this machine has 2 GiB available "
                                         r"\(4 GiB in all\); use less; pass --force"):
        inputs.need_memory(3 << 30, "the job", hint="use less")
    inputs.need_memory(3 << 30, "the job", force=True)
    with pytest.raises(ValueError, match=r"the store needs about 1\.02e\+03 PiB of disk; '.*' has .* free"):
        inputs.need_disk(float(1 << 60), tmp_path / "new" / "deeper", "the store")


def test_a_mock_too_big_for_this_machine_runs_with_force(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(inputs, "available_memory", lambda: (1 << 20, 1 << 20))  # a 1 MiB machine
    argv = ["--out", str(tmp_path / "out"), "--n-sims", "1", "--particles", "16", "--pixels", "16",
            "--set", "mock.catalogues=false"]
    assert mock_cli.main(argv) == 2
    assert "needs about" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert mock_cli.main(argv + ["--force"]) == 0
    assert len(list((tmp_path / "out").glob("Maps_*.npy"))) == 2


def test_the_folders_a_refused_writer_made_are_removed(tmp_path):
    out = tmp_path / "a" / "b" / "store.zarr"
    with acquire_lock(out):
        assert (tmp_path / "a" / "b").is_dir()
    assert list(tmp_path.iterdir()) == []
    with acquire_lock(out):
        out.mkdir()  # an output was written: its folders stay
    assert out.is_dir()


def test_a_chunk_of_fill_values_is_written_and_the_store_verifies(tmp_path):
    from hpc_vdm.inference import store as tile_store

    store = tile_store.tile_store(tmp_path / "t.zarr")
    store.create(tile_store.layout([(0, 0)], 8, 1), {"fingerprint": {}, "provenance": {}})
    rows = tile_store.TileRows(store, store.open())
    rows.write_sample(0, 0, np.full((8, 8), np.nan))  # all fill value: zarr skips such chunks unless told not to
    assert (tmp_path / "t.zarr" / "samples" / "c" / "0" / "0" / "0" / "0").is_file()
    store.open()  # the record lists it and it is there


def test_a_mock_file_edited_in_place_is_not_replaced(tmp_path):
    out = tmp_path / "cmd"
    out.mkdir()
    path = out / "Maps_Mstar_IllustrisTNG_LH_z=0.00.npy"
    path.write_bytes(bytes(range(64)))
    write_record({"Mstar": path}, out)
    check_recorded({"Mstar": path}, out, overwrite=True)  # ours, unchanged: may be replaced
    path.write_bytes(bytes(range(1, 65)))                 # same size, other bytes
    with pytest.raises(FileExistsError, match=r"Maps_Mstar_IllustrisTNG_LH_z=0\.00\.npy'\] exist but are not files "
                                              r"this project wrote \(or were changed since"):
        check_recorded({"Mstar": path}, out, overwrite=True)


def test_an_immutable_output_folder_is_one_error(tmp_path, monkeypatch, capsys):
    """EPERM (chattr +i, a root-squashed share) where the lock or the output is made: one line, nothing left."""
    import errno
    import os

    from helpers import write_cmd
    from hpc_vdm import prepare

    (tmp_path / "cmd").mkdir()
    write_cmd(tmp_path / "cmd")

    def link(src, dst):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(dst))

    monkeypatch.setattr(os, "link", link)
    assert prepare.main(["--source", str(tmp_path / "cmd"), "--out", str(tmp_path / "frozen" / "m.zarr")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {str(tmp_path / 'frozen' / 'm.zarr')!r}: Operation not permitted (EPERM)" in err
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["cmd"]
