"""Bad-input rows of the commands that apply an exported map model: sample and tile."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from rows_common import Row, bad_array, cube, h5, loop, text


# -- exported model files (sample reads them like tile and evaluate) -----------------------------------------
def model_file(kind: str, base: str = "model"):
    def build(c, t):
        p = t / "model.pt"
        blob = c[base].read_bytes()
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
        elif kind == "folder":
            p.mkdir()
        elif kind == "loop":
            return loop(t, "model.pt")
        else:  # edit the export's plain data
            d = torch.load(c[base], weights_only=True)
            if kind == "no weights":
                del d["model"]
            elif kind == "empty weights":
                d["ema"] = {}
            elif kind == "NaN weights":
                k = next(k for k, v in d["ema"].items() if v.is_floating_point())
                d["ema"][k] = d["ema"][k].clone().fill_(float("nan"))
            elif kind == "wrong shapes":
                k = next(k for k, v in d["ema"].items() if v.ndim == 4)
                d["ema"][k] = torch.zeros(1, 1, 1, 1)
            elif kind == "NaN stats":
                d["store"]["stats"]["Mcdm"]["std"] = float("nan")
            elif kind == "inf pixel":
                d["store"]["pixel_size_mpc_h"] = float("inf")
            elif kind == "tiny pixels":
                d["store"]["pixel_size_mpc_h"] = 1e-5
            torch.save(d, p)
        return p
    return build


def sample_args(model: Callable = None, *extra):
    def build(c, t):
        m = model(c, t) if model else c["model"]
        return ["--model", str(m), "--out", str(t / "out"), "--n-maps", "1", "--n-samples", "1", "--steps", "1",
                "--set", "sample.progress=false", *extra]
    return build


def sample_out(out: Callable, *extra):
    return lambda c, t: ["--model", str(c["model"]), "--out", str(out(c, t)), "--n-maps", "1", "--n-samples", "1",
                         "--steps", "1", "--set", "sample.progress=false", *extra]


def user_folder(*names: str):
    def build(c, t):
        (t / "mine").mkdir()
        for name in names:
            text(t, f"mine/{name}", b"\x89PNG\r\n\x1a\nuser's own" if name.endswith(".png") else "{}")
        return t / "mine"
    return build


SAMPLE = [
    Row("model missing", "sample", sample_args(lambda c, t: t / "none.pt"), r"no exported model at '.*none\.pt'"),
    Row("model truncated", "sample", sample_args(model_file("truncated")), r"'.*model\.pt' is not a readable torch"),
    Row("model is text", "sample", sample_args(model_file("text")), r"'.*model\.pt' is not a readable torch file"),
    Row("model is empty", "sample", sample_args(model_file("empty")), r"'.*model\.pt' is not a readable torch file"),
    Row("model is a tensor", "sample", sample_args(model_file("tensor")), r"is not an hpc_vdm export \(format "
        r"'Tensor'"),
    Row("model of another format", "sample", sample_args(model_file("dict")), r"format 'something/else'"),
    Row("model is a folder", "sample", sample_args(model_file("folder")), r"'.*model\.pt' is a folder, not an "
        r"exported model file", "vague"),
    Row("model is a symlink loop", "sample", sample_args(model_file("loop")), r"exported model file '.*model\.pt' is a "
        r"symlink loop", "traceback"),
    Row("model marker without weights", "sample", sample_args(model_file("no weights")),
        r"'.*model\.pt' is an hpc_vdm export without \['model'\]", "traceback"),
    Row("model with empty weights", "sample", sample_args(model_file("empty weights")),
        r"'.*model\.pt' is an hpc_vdm export whose 'ema' weights are empty", "traceback"),
    Row("model with NaN weights", "sample", sample_args(model_file("NaN weights")),
        r"'.*model\.pt': (ema|model) weight '.*' holds \d+ NaN or inf values", "nonfinite"),
    Row("model weights of another shape", "sample", sample_args(model_file("wrong shapes")),
        r"the weights in '.*model\.pt' do not fit its own config"),
    Row("model with NaN statistics", "sample", sample_args(model_file("NaN stats")),
        r"stats\.Mcdm\.std of the export '.*model\.pt' is nan; expected a finite positive number", "nonfinite"),
    Row("model with inf pixel", "sample", sample_args(model_file("inf pixel")),
        r"pixel_size_mpc_h of the export '.*model\.pt' is inf", "nonfinite"),
    Row("sample store missing", "sample", sample_args(None, "--store", "/nonexistent/maps.zarr"),
        r"no maps store at '/nonexistent/maps\.zarr'"),
    Row("sample store is a tile store", "sample", lambda c, t: sample_args(None, "--store", str(c["tile_store"]))(c, t),
        r"tiles\.zarr is not an hpc_vdm maps store: attrs \[.*\] missing", "vague"),
    Row("sample split unknown", "sample", sample_args(None, "--split", "holdout"), r"sample\.split: expected one of "
        r".*'holdout'", "config"),
    Row("sample no maps", "sample", sample_args(None, "--n-maps", "0"), r"sample\.n_maps: expected a value in",
        "config"),
    Row("sample more maps than the split", "sample", sample_args(None, "--n-maps", "1000"),
        r"sample\.n_maps=1000, but split 'test' of '.*' holds \d+ maps", "quiet"),
    Row("sample no steps", "sample", sample_args(None, "--steps", "0"), r"sampler\.steps: expected a value in \[1",
        "config"),
    Row("sample sampler unknown", "sample", sample_args(None, "--sampler", "ddim"), r"sampler\.kind: expected one of "
        r".*'ddim'", "config"),
    Row("sample pixel scale", "sample", lambda c, t: sample_args(lambda c, t: c["tile_model"], "--store",
        str(c["store"]))(c, t), r"pixel scale mismatch: the model was trained on 0\.1 Mpc/h pixels"),
    Row("sample cuda", "sample", sample_args(None, "--device", "cuda"), r"trained\.device='cuda' but no CUDA"),
    Row("sample out inside the store", "sample", sample_out(lambda c, t: c["store"] / "s"),
        r"refusing to write '.*maps\.zarr/s/samples\.zarr': it lies inside the input", "placement"),
    Row("sample out is the model", "sample", sample_out(lambda c, t: c["model"]),
        r"--out \(sample\.out\) '.*model\.pt' exists and is a file, not a folder", "placement"),
    Row("sample over a user's figure", "sample", sample_out(user_folder("samples.png"), "--overwrite"),
        r"samples\.png' exists and is a file that is not an hpc_vdm output, not an hpc_vdm figure", "destroyed"),
    Row("sample over a user's summary", "sample", sample_out(user_folder("summary.json")),
        r"summary\.json' exists and is a file that is not an hpc_vdm output", "destroyed"),
]


# -- tile ---------------------------------------------------------------------------------------------------
def tile_args(*extra, model: Callable = None, volume: Callable = None, out: Callable = None):
    def build(c, t):
        m = model(c, t) if model else c["tile_model"]
        v = volume(c, t) if volume else c["preset"]
        o = out(c, t) if out else t / "out.zarr"
        return ["--volume", str(v), "--model", str(m), "--n-samples", "1", "--steps", "1", "--tile", "32",
                "--halo", "8", "--set", "tile.mock_slabs=2", "--set", "tile.mock_spacing_mpc_h=0.5", "--set",
                "tile.mock_pm_steps=2", "--set", "tile.progress=false", "--set", "tile.force=true",  # a GroupNorm net
                "--out", str(o), *extra]
    return build


def grid(kind: str = "ok", key: str = "Mstar"):
    """A 100^3 stellar grid (HDF5) for the small preset, made bad in one way."""
    def build(c, t):
        g = cube(100, scale=1.0)
        if kind == "shape":
            g = g[:, :, :50]
        elif kind != "ok" and kind not in ("group", "not hdf5", "empty"):
            g = bad_array(kind, g)
        path = t / "grid.h5"
        if kind == "not hdf5":
            return text(t, "grid.h5", "x" * 100)
        if kind == "empty":
            return text(t, "grid.h5", "")
        return h5(path, {} if kind == "group" else {key: g}, groups=("Mstar/inner",) if kind == "group" else ())
    return build


def with_input(build: Callable, *extra):
    return lambda c, t: tile_args("--input", str(build(c, t)), *extra)(c, t)


def snapshot(kind: str):
    def build(c, t):
        folder = t / "snap"
        folder.mkdir()
        n = 50
        pos = np.random.default_rng(1).random((n, 3 if kind != "columns" else 2)) * 10.0
        mass = np.full(n, 1e-3)
        box = {"box": 30.0, "box nan": np.nan}.get(kind, 10.0)
        if kind == "nan mass":
            mass[3] = np.nan
        elif kind == "inf position":
            pos[7, 1] = np.inf
        elif kind == "complex mass":
            mass = mass.astype(np.complex64)
        elif kind == "negative mass":
            mass[9] = -1.0
        if kind == "not hdf5":
            text(folder, "snap_099.0.hdf5", "not HDF5")
            return folder
        data = {} if kind in ("no stars", "group") else {"PartType4/Coordinates": pos, "PartType4/Masses": mass}
        groups = ("PartType4/Coordinates", "Header") if kind == "group" else ("Header",)
        if kind == "group":
            data = {"PartType4/Masses": mass}
        h5(folder / "snap_099.0.hdf5", data, groups)
        import h5py

        with h5py.File(folder / "snap_099.0.hdf5", "a") as f:
            f["Header"].attrs["BoxSize"] = box
        return folder
    return build


def preset_file(content: str):
    return lambda c, t: text(t, "v.yaml", content)


TILE = [
    Row("preset unknown", "tile", tile_args("--volume", "tng30"), r"unknown volume preset 'tng30'; did you mean"),
    Row("preset pixel larger than box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 20.0\n")), r"pixel \(20 Mpc/h\) is larger than the box"),
    Row("preset infinite box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: .inf\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"box_mpc_h: expected a finite number, got inf",
        "nonfinite"),
    Row("preset NaN pixel", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: .nan\n")), r"pixel_mpc_h: expected a finite number, "
        r"got nan", "nonfinite"),
    Row("preset bare number", "tile", tile_args(volume=preset_file("5\n")), r"expected a mapping of \['name'"),
    Row("preset empty", "tile", tile_args(volume=preset_file("")), r"volume preset '.*v\.yaml': expected a mapping .*"
        r"got None"),
    Row("preset YAML syntax", "tile", tile_args(volume=preset_file("name: [x\n")), r"volume preset .* not valid YAML"),
    Row("preset text box", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: big\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"box_mpc_h: expected float, got 'big'"),
    Row("preset missing key", "tile", tile_args(volume=preset_file("name: x\nbox_mpc_h: 10.0\n")),
        r"missing keys \['slab_mpc_h', 'pixel_mpc_h'\]"),
    Row("preset fractional slabs", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 12.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.1\n")), r"whole number of 5.0 Mpc/h slabs"),
    Row("preset is a folder", "tile", tile_args(volume=lambda c, t: (t / "v.yaml").mkdir() or t / "v.yaml"),
        r"volume preset '.*v\.yaml' is a folder|no volume preset file", "vague"),
    Row("halo not below tile", "tile", tile_args("--tile", "8", "--halo", "8"), r"halo 8 must be smaller than the tile 8"),
    Row("tile larger than field", "tile", tile_args("--tile", "128", "--halo", "0"), r"tile 128 is larger than the "
        r"field"),
    Row("window not on the stride", "tile", tile_args("--tile", "30"), r"not a multiple of the network's stride 8"),
    Row("axes out of range", "tile", tile_args("--axes", "3"), r"axes must be distinct values in 0, 1, 2, got \[3\]"),
    Row("mock has axis 2 only", "tile", tile_args("--set", "tile.mock_slabs=1", "--axes", "0"), r"axis 2 only"),
    Row("slabs out of range", "tile", tile_args("--slabs", "0,2"), r"slabs must be distinct indices in \[0, 2\)"),
    Row("model pixel scale", "tile", tile_args("--volume", "camels"), r"pixel scale mismatch"),
    Row("model of another field", "tile", tile_args(model=lambda c, t: c["mgas_model"]), r"conditioned on 'Mgas'"),
    Row("tile model truncated", "tile", tile_args(model=model_file("truncated", "tile_model")),
        r"not a readable torch file"),
    Row("tile model with NaN weights", "tile", tile_args(model=model_file("NaN weights", "tile_model")),
        r"(ema|model) weight '.*' holds \d+ NaN or inf values", "nonfinite"),
    Row("tile dm2gal model", "tile", tile_args(model=lambda c, t: c["dm2gal_model"]), r"applies map models, but "
        r"'.*dm2gal\.pt' is a dm2gal model"),
    Row("NaN mock spacing", "tile", tile_args("--set", "tile.mock_spacing_mpc_h=.nan"),
        r"tile\.mock_spacing_mpc_h: expected a finite number, got nan", "nonfinite"),
    Row("mock input that cannot fit", "tile", tile_args("--set", "tile.mock_spacing_mpc_h=0.001"),
        r"tile: 6 slab\(s\) of 100\^2 pixels .* mock input.* needs about [\d.]+ TiB of memory; this machine has",
        "size"),
    Row("slabs that cannot fit", "tile", tile_args(volume=preset_file(
        "name: x\nbox_mpc_h: 10.0\nslab_mpc_h: 5.0\npixel_mpc_h: 0.00001\n"), model=model_file("tiny pixels",
                                                                                                "tile_model")),
        r"tile: 6 slab\(s\) of 1000000\^2 pixels .* needs about [\d.]+ TiB of memory", "size"),
    Row("grid wrong shape", "tile", with_input(grid("shape")), r"grid input '.*grid\.h5' has shape \(100, 100, 50\)"),
    Row("grid key missing", "tile", with_input(grid(), "--set", "tile.input_key=Mgas"),
        r"grid input \(tile\.input_key\) '.*grid\.h5' has no dataset 'Mgas' \(it has \['Mstar'\]\)"),
    Row("grid key is a group", "tile", with_input(grid("group")), r"'Mstar' in grid input .* is a group, not a "
        r"dataset", "traceback"),
    Row("grid not HDF5", "tile", with_input(grid("not hdf5")), r"'.*grid\.h5' is not an HDF5 file", "traceback"),
    Row("grid empty file", "tile", with_input(grid("empty")), r"'.*grid\.h5' is empty \(0 bytes\)", "traceback"),
    Row("grid complex", "tile", with_input(grid("complex")), r"dataset 'Mstar' in grid input '.*grid\.h5' holds "
        r"complex numbers", "quiet"),
    Row("grid boolean", "tile", with_input(grid("bool")), r"dataset 'Mstar' .* holds booleans", "quiet"),
    Row("grid compound", "tile", with_input(grid("compound")), r"dataset 'Mstar' .* holds compound records",
        "traceback"),
    Row("grid NaN voxel", "tile", with_input(grid("nan")), r"voxel masses of 'Mstar' in grid input '.*grid\.h5': 1 "
        r"value\(s\) NaN or inf, first nan at \(\d+, \d+, \d+\)", "leftover"),
    Row("grid negative voxel", "tile", with_input(grid("negative")), r"voxel masses of 'Mstar' .* below 0, first "
        r"-2\.0", "leftover"),
    Row("grid zarr folder without zarr.json", "tile", with_input(lambda c, t: (t / "g.zarr").mkdir() or t / "g.zarr"),
        r"grid input '.*g\.zarr' is a folder without zarr\.json", "traceback"),
    Row("snapshot files missing", "tile", tile_args("--input", "nowhere/snap_*.hdf5"), r"no snapshot files match "
        r"'nowhere/snap_\*\.hdf5'"),
    Row("snapshot without stars", "tile", with_input(snapshot("no stars")), r"none of the 1 snapshot files .* has "
        r"PartType4"),
    Row("snapshot two columns", "tile", with_input(snapshot("columns")), r"must be \(n, 3\) and \(n,\)"),
    Row("snapshot box", "tile", with_input(snapshot("box")), r"has BoxSize 30"),
    Row("snapshot NaN box", "tile", with_input(snapshot("box nan")), r"Header/BoxSize of snapshot '.*' is nan",
        "nonfinite"),
    Row("snapshot NaN mass", "tile", with_input(snapshot("nan mass")), r"PartType4/Masses in snapshot '.*snap_099\.0"
        r"\.hdf5': 1 value\(s\) NaN or inf, first nan at 3", "leftover"),
    Row("snapshot inf position", "tile", with_input(snapshot("inf position")), r"PartType4/Coordinates in snapshot "
        r"'.*': 1 value\(s\) NaN or inf, first inf at \(7, 1\)", "leftover"),
    Row("snapshot negative mass", "tile", with_input(snapshot("negative mass")), r"PartType4/Masses .* below 0, first "
        r"-1\.0 at 9", "leftover"),
    Row("snapshot complex mass", "tile", with_input(snapshot("complex mass")), r"PartType4/Masses in snapshot .* holds "
        r"complex numbers", "quiet"),
    Row("snapshot coordinates a group", "tile", with_input(snapshot("group")), r"'PartType4/Coordinates' in snapshot "
        r"'.*' is a group, not a dataset", "traceback"),
    Row("snapshot not HDF5", "tile", with_input(snapshot("not hdf5")), r"snapshot '.*snap_099\.0\.hdf5' is not an "
        r"HDF5 file", "traceback"),
    Row("snapshot symlink loop", "tile", with_input(lambda c, t: loop(t, "snaps")), r"snapshot input '.*snaps' is a "
        r"symlink loop", "traceback"),
    Row("out is the grid", "tile", lambda c, t: tile_args("--input", str(grid()(c, t)),
                                                          out=lambda c, t: t / "grid.h5")(c, t),
        r"refusing to write '.*grid\.h5': it is the input", "placement"),
    Row("out inside the snapshots", "tile", lambda c, t: tile_args("--input", str(snapshot("ok")(c, t)),
                                                                   out=lambda c, t: t / "snap" / "t.zarr")(c, t),
        r"refusing to write '.*snap/t\.zarr': it lies inside the input",
        "placement"),
    Row("out over a user's figure", "tile", tile_args(out=lambda c, t: text(t, "out.png", b"\x89PNG\r\n\x1a\nmine")
                                                       and t / "out.zarr"),
        r"'.*out\.png' exists and is a file that is not an hpc_vdm output, not an hpc_vdm figure", "destroyed"),
    Row("out is a maps store", "tile", tile_args(out=lambda c, t: c["store"]), r"'.*maps\.zarr' exists and is an "
        r"hpc_vdm maps store, not an hpc_vdm tile store", "destroyed"),
    Row("out is a foreign folder", "tile", tile_args(out=lambda c, t: text(t, "d/notes.txt", "x").parent),
        r"'.*d' exists and is a folder that is not an hpc_vdm output", "destroyed"),
    Row("tile cuda", "tile", tile_args("--device", "cuda"), r"trained\.device='cuda' but no CUDA"),
]

ROWS = SAMPLE + TILE
