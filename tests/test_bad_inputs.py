"""A hostile but fair user: bad input to every command gives one clear line, exit 2, no traceback, nothing lost.

Each row builds its inputs, runs a command in-process and checks: a non-zero exit (never an exception), a
message that names the problem (a regex), no traceback, and the bytes of every file that existed before
(the shared inputs and the row's own) unchanged; the output the row names must not appear.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from helpers import REPO, export_tiny, write_cmd
from hpc_vdm import export, prepare, sample, tile, train
from hpc_vdm.config import RunConfig, to_dict
from hpc_vdm.data import camels
from hpc_vdm.data.dataset import read_attrs
from hpc_vdm.mock import cli as mock_cli
from hpc_vdm.spectra import cli as spectra_cli

TINY = str(REPO / "configs" / "train_tiny.yaml")
SMALL = "name: small\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n"
COMMANDS = {"train": train.main, "prepare": prepare.main, "sample": sample.main, "tile": tile.main,
            "export": export.main, "mock": mock_cli.main, "spectra": spectra_cli.main}


@pytest.fixture(scope="module")
def ctx(maps_store, tmp_path_factory):
    """Shared inputs: the test store, exported models, a small preset and a valid CMD folder."""
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
    return c


# ---------------------------------------------------------------------------------------------
# builders of a row's inputs: (ctx, tmp) -> argv
# ---------------------------------------------------------------------------------------------
def text(tmp: Path, name: str, content: str | bytes) -> Path:
    p = tmp / name
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return p


def train_args(*extra):
    return lambda c, t: [TINY, "--set", f"data.store={c['store']}", "--run-dir", str(t / "out"), *extra]


def prepare_args(*extra, **cmd):
    def build(c, t):
        if cmd:
            (t / "cmd").mkdir()
            write_cmd(t / "cmd", **{k: (v(t) if callable(v) else v) for k, v in cmd.items()})
        src = t / "cmd" if cmd else c["root"] / "cmd"
        return ["--source", str(src), "--out", str(t / "out.zarr"), "--set", "data.split_fractions=[0.5,0.5,0.0]",
                *extra]
    return build


def broken_npy(kind: str):
    def build(c, t):
        (t / "cmd").mkdir()
        write_cmd(t / "cmd")
        path = camels.maps_path(t / "cmd", "Mstar", "IllustrisTNG", "LH")
        maps = np.load(path)
        if kind == "nan":
            maps[17, 3, 3] = np.nan
        elif kind == "negative":
            maps[4, 0, 0] = -5.0
        elif kind == "float64":
            maps = maps.astype(np.float64)
        elif kind == "rect":
            maps = maps[:, :, :8]
        elif kind == "short":
            maps = maps[:29]
            mcdm = camels.maps_path(t / "cmd", "Mcdm", "IllustrisTNG", "LH")
            np.save(mcdm, np.load(mcdm)[:29])
        np.save(path, maps)
        if kind == "text":
            path.write_text("not an array\n")
        if kind == "zero_stars":
            np.save(path, np.zeros_like(maps))
        if kind == "params5":
            camels.save_params(camels.params_path(t / "cmd", "IllustrisTNG", "LH"), np.ones((2, 5)))
        if kind == "params_text":
            camels.params_path(t / "cmd", "IllustrisTNG", "LH").write_text("a b c d e f\n1 2 3 4 5 6\n")
        if kind == "params_rows":
            camels.save_params(camels.params_path(t / "cmd", "IllustrisTNG", "LH"), np.ones((3, 6)))
        return ["--source", str(t / "cmd"), "--out", str(t / "out.zarr"), "--set",
                "data.split_fractions=[0.5,0.5,0.0]"]
    return build


def sample_args(model: Callable = None, *extra):
    def build(c, t):
        m = model(c, t) if model else c["model"]
        return ["--model", str(m), "--out", str(t / "out"), "--n-maps", "1", "--n-samples", "1", "--steps", "1",
                "--set", "sample.progress=false", *extra]
    return build


def tile_args(*extra, model: Callable = None, volume: Callable = None):
    def build(c, t):
        m = model(c, t) if model else c["tile_model"]
        v = volume(c, t) if volume else c["preset"]
        return ["--volume", str(v), "--model", str(m), "--n-samples", "1", "--steps", "1", "--tile", "32",
                "--halo", "8", "--set", "tile.mock_slabs=2", "--set", "tile.mock_spacing_mpc_h=0.5", "--set",
                "tile.mock_pm_steps=2", "--set", "tile.progress=false", "--set", "tile.force=true",
                "--out", str(t / "out.zarr"), *extra]
    return build


def grid_file(kind: str):
    def build(c, t):
        g = np.random.default_rng(0).random((100, 100, 100)).astype(np.float32)
        if kind == "nan":
            g[5, 5, 5] = np.nan
        if kind == "negative":
            g[7, 1, 2] = -1.0
        if kind == "shape":
            g = g[:, :, :50]
        with h5py.File(t / "grid.h5", "w") as f:
            f["Mstar"] = g
        return t / "grid.h5"
    return build


def snapshot(kind: str):
    def build(c, t):
        folder = t / "snap"
        folder.mkdir()
        with h5py.File(folder / "snap_099.0.hdf5", "w") as f:
            f.create_group("Header").attrs["BoxSize"] = 10.0 if kind != "box" else 30.0
            if kind != "no_stars":
                n = 50
                pos = np.random.default_rng(1).random((n, 3 if kind != "columns" else 2)) * 10.0
                mass = np.full(n, 1e-3)
                if kind == "nan_mass":
                    mass[3] = np.nan
                f["PartType4/Coordinates"] = pos
                f["PartType4/Masses"] = mass
        return folder
    return build


def model_file(kind: str):
    def build(c, t):
        p = t / "model.pt"
        blob = c["model"].read_bytes()
        if kind == "truncated":
            p.write_bytes(blob[: len(blob) // 3])
        elif kind == "text":
            p.write_text("hello, I am not a model\n")
        elif kind == "tensor":
            torch.save(torch.zeros(3), p)
        elif kind == "dict":
            torch.save({"format": "something/else", "weights": torch.zeros(2)}, p)
        elif kind == "empty":
            p.write_bytes(b"")
        return p
    return build


def preset_file(content: str):
    return lambda c, t: text(t, "v.yaml", content)


def config_file(content, *extra):
    return lambda c, t: ["--config", str(text(t, "c.yaml", content)), "--run-dir", str(t / "out"), *extra]


@dataclass
class Row:
    id: str
    command: str
    build: Callable
    match: str


ROWS = [
    # -- configs (through train, which checks them first) ------------------------------------------------
    Row("unknown key", "train", train_args("--set", "train.zero_stag=2"), r"did you mean 'zero_stage'"),
    Row("wrong type", "train", train_args("--set", "train.lr=fast"), r"train\.lr: expected float, got 'fast'"),
    Row("out of range", "train", train_args("--set", "train.steps=-1"), r"train\.steps: expected a value in \[1"),
    Row("not a choice", "train", train_args("--set", "train.precision=fp16"), r"expected one of \['fp32', 'bf16'\]"),
    Row("unknown model kind", "train", train_args("--set", "model.kind=gan"), r"model\.kind: expected one of"),
    Row("--set without =", "train", train_args("--set", "train.lr"), r"--set expects section\.key=value"),
    Row("--set value not YAML", "train", train_args("--set", "train.betas=[0.9"), r"is not valid YAML"),
    Row("config file missing", "train", lambda c, t: ["--config", str(t / "none.yaml")], r"config file not found"),
    Row("config YAML syntax", "train", config_file("train:\n  lr: [1\n"), r"not valid YAML at line \d+"),
    Row("config not a mapping", "train", config_file("- a\n- b\n"), r"expected a mapping of sections"),
    Row("config binary", "train", config_file(b"\xff\xfe\x00\x01"), r"is not text|not valid YAML"),
    Row("section not a mapping", "train", config_file("train: 5\n"), r"'train' is not a section"),
    Row("section not a mapping (no flags)", "mock", lambda c, t: ["--config", str(text(t, "c.yaml", "mock: 5\n"))],
        r"mock: expected a mapping of keys, got 5"),
    Row("config given twice", "train", lambda c, t: [TINY, "--config", TINY], r"give the config once"),
    # -- training inputs ---------------------------------------------------------------------------------
    Row("missing store", "train", lambda c, t: [TINY, "--set", f"data.store={t}/nope.zarr"], r"no maps store.*nope"),
    Row("batch arithmetic", "train", train_args("--set", "train.global_batch=12"), r"train\.global_batch=12 .* = 2"),
    Row("selection needs samples", "train", train_args("--set", "train.select_on=val_r_mean", "--set",
        "train.val_sample_maps=0"), r"val_sample_maps=0"),
    Row("selection of another family", "train", train_args("--set", "train.select_on=val_mse"),
        r"not a validation metric of the vdm family"),
    Row("field not in store", "train", train_args("--set", "data.condition=Mgas"), r"field 'Mgas' is not in store"),
    Row("stride larger than maps", "train", train_args("--set", "model.channel_mults=[1,1,1,1,1,1,1,1,1]"),
        r"do not divide by the U-Net stride 512"),
    Row("cuda without a GPU", "train", train_args("--set", "train.device=cuda"), r"train\.device='cuda' but no CUDA"),
    # -- prepare -----------------------------------------------------------------------------------------
    Row("source missing", "prepare", lambda c, t: ["--source", str(t / "nowhere"), "--out", str(t / "o.zarr")],
        r"missing CMD maps file"),
    Row("params with 5 columns", "prepare", broken_npy("params5"), r"has 5 columns; a CAMELS params file has at least 6"),
    Row("params not numbers", "prepare", broken_npy("params_text"), r"is not a table of numbers"),
    Row("params rows", "prepare", broken_npy("params_rows"), r"params has 3 rows but the maps hold"),
    Row("NaN map", "prepare", broken_npy("nan"), r"Mstar: NaN or inf in map 17"),
    Row("negative map", "prepare", broken_npy("negative"), r"Mstar: negative mass .* in map 4"),
    Row("float64 maps", "prepare", broken_npy("float64"), r"expected float32 maps"),
    Row("rectangular maps", "prepare", broken_npy("rect"), r"expected maps of shape \(N, H, H\)"),
    Row("maps not whole simulations", "prepare", broken_npy("short"), r"29 maps is not a positive multiple"),
    Row("stellar field all zero", "prepare", broken_npy("zero_stars"), r"Mstar: log10\(x \+ 1.0\) is constant"),
    Row("pool not dividing the maps", "prepare", prepare_args("--set", "data.pool=3"), r"data\.pool=3 must divide"),
    Row("maps file not npy", "prepare", broken_npy("text"), r"not a readable \.npy array"),
    Row("condition not a field", "prepare", prepare_args("--set", "data.condition=Mgas"), r"is not among data\.fields"),
    Row("no training simulation", "prepare", prepare_args("--set", "data.split_fractions=[0.0,0.5,0.5]"),
        r"no training simulation"),
    # -- exported models (sample reads them like tile) -----------------------------------------------------
    Row("model missing", "sample", sample_args(lambda c, t: t / "none.pt"), r"no exported model at"),
    Row("model truncated", "sample", sample_args(model_file("truncated")), r"not a readable torch file"),
    Row("model is text", "sample", sample_args(model_file("text")), r"not a readable torch file"),
    Row("model is empty", "sample", sample_args(model_file("empty")), r"not a readable torch file"),
    Row("model is a tensor", "sample", sample_args(model_file("tensor")), r"is not an hpc_vdm export"),
    Row("model of another format", "sample", sample_args(model_file("dict")), r"format 'something/else'"),
    Row("sample store missing", "sample", sample_args(None, "--store", "/nonexistent/maps.zarr"), r"no maps store"),
    Row("sample split unknown", "sample", sample_args(None, "--split", "holdout"), r"sample\.split: expected one of"),
    Row("sample no maps", "sample", sample_args(None, "--n-maps", "0"), r"sample\.n_maps: expected a value in"),
    Row("sample pixel scale", "sample", lambda c, t: sample_args(lambda c, t: c["tile_model"], "--store",
        str(c["store"]))(c, t), r"pixel scale mismatch"),
    Row("sample cuda", "sample", sample_args(None, "--device", "cuda"), r"trained\.device='cuda' but no CUDA"),
    # -- tile: presets -----------------------------------------------------------------------------------
    Row("preset unknown", "tile", tile_args("--volume", "tng30"), r"unknown volume preset 'tng30'; did you mean"),
    Row("preset pixel larger than box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 20.0\n")), r"pixel \(20 Mpc/h\) is larger than the box"),
    Row("preset infinite box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: .inf\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"box_mpc_h: expected a finite number, got inf"),
    Row("preset bare number", "tile", tile_args(volume=preset_file("5\n")), r"expected a mapping of \['name'"),
    Row("preset YAML syntax", "tile", tile_args(volume=preset_file("name: [x\n")), r"volume preset .* not valid YAML"),
    Row("preset text box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: big\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"box_mpc_h: expected float, got 'big'"),
    Row("preset missing key", "tile", tile_args(volume=preset_file("name: x\nbox_mpc_h: 10.0\n")),
        r"missing keys \['slab_mpc_h', 'pixel_mpc_h'\]"),
    Row("preset fractional slabs", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 12.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"whole number of 5.0 Mpc/h slabs"),
    # -- tile: geometry and model ------------------------------------------------------------------------
    Row("halo not below tile", "tile", tile_args("--tile", "8", "--halo", "8"), r"halo 8 must be smaller than the tile 8"),
    Row("tile larger than field", "tile", tile_args("--tile", "128", "--halo", "0"), r"tile 128 is larger than the field"),
    Row("window not on the stride", "tile", tile_args("--tile", "30"), r"not a multiple of the network's stride 8"),
    Row("axes out of range", "tile", tile_args("--axes", "3"), r"axes must be distinct values in 0, 1, 2"),
    Row("mock has axis 2 only", "tile", tile_args("--set", "tile.mock_slabs=1", "--axes", "0"), r"axis 2 only"),
    Row("slabs out of range", "tile", tile_args("--slabs", "0,2"), r"slabs must be distinct indices in \[0, 2\)"),
    Row("model pixel scale", "tile", tile_args("--volume", "camels"), r"pixel scale mismatch"),
    Row("model of another field", "tile", tile_args(model=lambda c, t: c["mgas_model"]), r"conditioned on 'Mgas'"),
    Row("tile model truncated", "tile", tile_args(model=model_file("truncated")), r"not a readable torch file"),
    # -- tile: inputs ------------------------------------------------------------------------------------
    Row("grid wrong shape", "tile", lambda c, t: tile_args("--input", str(grid_file("shape")(c, t)))(c, t),
        r"needs a cube of a multiple of 100 voxels"),
    Row("grid key missing", "tile", lambda c, t: tile_args("--input", str(grid_file("ok")(c, t)), "--set",
        "tile.input_key=Mgas")(c, t), r"has no dataset 'Mgas'"),
    Row("snapshot files missing", "tile", tile_args("--input", "nowhere/snap_*.hdf5"), r"no snapshot files match"),
    Row("snapshot without stars", "tile", lambda c, t: tile_args("--input", str(snapshot("no_stars")(c, t)))(c, t),
        r"none of the 1 snapshot files .* has PartType4"),
    Row("snapshot two columns", "tile", lambda c, t: tile_args("--input", str(snapshot("columns")(c, t)))(c, t),
        r"must be \(n, 3\) and \(n,\)"),
    Row("snapshot box", "tile", lambda c, t: tile_args("--input", str(snapshot("box")(c, t)))(c, t),
        r"has BoxSize 30"),
    Row("tile cuda", "tile", tile_args("--device", "cuda"), r"trained\.device='cuda' but no CUDA"),
    # -- export, mock, spectra ---------------------------------------------------------------------------
    Row("export without checkpoints", "export", lambda c, t: [str(t / "run")], r"no complete checkpoint"),
    Row("mock unknown key", "mock", lambda c, t: ["--set", "mock.partcles=3", "--out", str(t / "out")],
        r"did you mean 'particles'"),
    Row("mock no simulations", "mock", lambda c, t: ["--n-sims", "0", "--out", str(t / "out")],
        r"mock\.n_sims: expected a value in \[1"),
    Row("mock 1P parameter unknown", "mock", lambda c, t: ["--sim-set", "1P", "--set", "mock.one_p_params=[Omega_b]",
                                                           "--out", str(t / "out")], r"mock\.one_p_params: expected"),
    Row("mock unknown suite", "mock", lambda c, t: ["--suite", "EAGLE", "--out", str(t / "out")],
        r"mock\.suite: expected one of"),
    Row("spectra store missing", "spectra", lambda c, t: ["auto", str(t / "none.zarr"), "--array", "Mcdm"],
        r"none\.zarr"),
    Row("spectra array missing", "spectra", lambda c, t: ["auto", str(c["store"]), "--array", "Mgas",
                                                          "--out", str(t / "out.json")], r"Mgas"),
    Row("spectra bad MAS", "spectra", lambda c, t: ["auto", str(c["store"]), "--array", "Mcdm", "--mas", "XYZ",
                                                    "--maps", "0:2", "--out", str(t / "out.json")], r"XYZ"),
]


def hashes(*folders: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in Path(f).rglob("*") if p.is_file()}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row, ctx, tmp_path, capsys):
    argv = row.build(ctx, tmp_path)
    before = hashes(ctx["root"], ctx["store"], tmp_path)
    rc = COMMANDS[row.command](argv)  # an exception here is a traceback for the user: the test fails
    err = capsys.readouterr().err
    assert rc not in (0, None), f"exit {rc}: {err[-2000:]}"
    assert re.search(row.match, err), err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert hashes(ctx["root"], ctx["store"], tmp_path) == before  # nothing that existed changed
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir()), list(tmp_path.iterdir())


def test_the_table_covers_every_command_and_is_long():
    assert {r.command for r in ROWS} == set(COMMANDS) and len(ROWS) >= 60


def test_a_crafted_pickle_in_a_model_file_runs_nothing(ctx, tmp_path, capsys):
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
