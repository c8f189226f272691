"""Bad-input rows of the map pipeline's first commands: mock, prepare, train, sweep, export."""
from __future__ import annotations


import numpy as np

from helpers import REPO, write_cmd
from rows_common import Row, bad_array, loop, save_npy, sweep_file, text
from hpc_vdm.data import camels
from hpc_vdm.io import write_record

TINY = str(REPO / "configs" / "train_tiny.yaml")
MAPS = "Maps_Mstar_IllustrisTNG_LH_z=0.00.npy"


# -- mock ---------------------------------------------------------------------------------------------------
def mock_args(*extra):
    return lambda c, t: ["--out", str(t / "out"), "--n-sims", "1", "--particles", "8", "--pixels", "8",
                         "--set", "mock.catalogues=false", *extra]


def edited_set(c, t):
    """A mock folder whose recorded Maps file the user then edited in place (same size, other bytes)."""
    out = t / "mine"
    out.mkdir()
    paths = {f: camels.maps_path(out, f, "IllustrisTNG", "LH") for f in ("Mstar", "Mcdm")}
    paths["params"] = camels.params_path(out, "IllustrisTNG", "LH")
    for key, p in paths.items():
        p.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    write_record(paths, out)
    data = bytearray(paths["Mstar"].read_bytes())
    data[5] ^= 1
    paths["Mstar"].write_bytes(bytes(data))
    return ["--out", str(out), "--n-sims", "1", "--particles", "8", "--pixels", "8", "--set",
            "mock.catalogues=false", "--overwrite"]


MOCK = [
    Row("mock unknown key", "mock", lambda c, t: ["--set", "mock.partcles=3", "--out", str(t / "out")],
        r"did you mean 'particles'", "config"),
    Row("mock no simulations", "mock", mock_args("--n-sims", "0"), r"mock\.n_sims: expected a value in \[1", "config"),
    Row("mock 1P parameter unknown", "mock", mock_args("--sim-set", "1P", "--set", "mock.one_p_params=[Omega_b]"),
        r"mock\.one_p_params: expected .* got \['Omega_b'\]", "config"),
    Row("mock unknown suite", "mock", mock_args("--suite", "EAGLE"), r"mock\.suite: expected one of .*'EAGLE'",
        "config"),
    Row("section not a mapping (no flags)", "mock", lambda c, t: ["--config", str(text(t, "c.yaml", "mock: 5\n"))],
        r"mock: expected a mapping of keys, got 5", "config"),
    Row("mock NaN neighbours", "mock", mock_args("--set", "mock.n_ngb=.nan"), r"mock\.n_ngb: expected a finite "
        r"number, got nan", "nonfinite"),
    Row("mock inf box", "mock", mock_args("--set", "mock.box_mpc_h=.inf"), r"mock\.box_mpc_h: expected a finite "
        r"number, got inf", "nonfinite"),
    Row("mock NaN a_start", "mock", mock_args("--set", "mock.a_start=.nan"), r"mock\.a_start: .*nan", "nonfinite"),
    Row("mock 4096^3 particles", "mock", mock_args("--particles", "4096"),
        r"mock\.particles=4096.* needs about [\d.]+ TiB of memory; this machine has", "size"),
    Row("mock 2048^3 upsampled", "mock", mock_args("--particles", "2048", "--upsample", "2"),
        r"mock\.upsample=2.* needs about [\d.]+ TiB of memory", "size"),
    Row("mock huge maps", "mock", mock_args("--pixels", "16384", "--n-sims", "4000"),
        r"mock\.map_pixels=16384.* needs about [\d.]+ [GT]iB of (memory|disk)", "size"),
    Row("mock huge grids", "mock", mock_args("--set", "mock.grids=[2048]", "--n-sims", "100"),
        r"mock\.grids=\[2048\].* needs about [\d.]+ [GT]iB of (memory|disk)", "size"),
    Row("mock grid too small", "mock", mock_args("--set", "mock.grids=[4]"), r"mock\.grids: .* got 4", "config"),
    Row("mock grid twice", "mock", mock_args("--set", "mock.grids=[16,16]"), r"sizes must be distinct, got \[16, 16\]",
        "config"),
    Row("mock 1P parameter twice", "mock", mock_args("--sim-set", "1P", "--set", "mock.one_p_params=[A_SN1,A_SN1]"),
        r"mock\.one_p_params: expected distinct names .* got \['A_SN1', 'A_SN1'\]", "config"),
    Row("mock no workers", "mock", mock_args("--workers", "0"), r"mock\.workers: expected a value in \[1", "config"),
    Row("mock edited file not replaced", "mock", edited_set, r"Maps_Mstar_IllustrisTNG_LH_z=0\.00\.npy'\] exist but are "
        r"not files this project wrote \(or were changed since", "destroyed"),
    Row("mock output without overwrite", "mock", lambda c, t: ["--out", str(c["cmd"]), "--n-sims", "1"],
        r"output exists: .*Maps_Mstar.*pass --overwrite", "destroyed"),
    Row("mock preview over a user png", "mock", lambda c, t: mock_args(
        "--preview", str(text(t, "mine.png", b"\x89PNG\r\n\x1a\nuser")), "--overwrite")(c, t),
        r"mine\.png' exists and is a file that is not an hpc_vdm output, not an hpc_vdm figure", "destroyed"),
    Row("mock preview onto an output", "mock", lambda c, t: mock_args("--preview", str(t / "out" / MAPS))(c, t),
        r"refusing to write .*Maps_Mstar.*: it is the input", "placement"),
    Row("mock out is a file", "mock", lambda c, t: ["--out", str(text(t, "f", "x"))],
        r"mock\.out_dir '.*f' is a file; expected a folder", "vague"),
    Row("mock out is a symlink loop", "mock", lambda c, t: ["--out", str(loop(t, "lp"))],
        r"mock\.out_dir '.*lp' is a symlink loop", "traceback"),
]


# -- prepare ------------------------------------------------------------------------------------------------
def prepare_args(*extra, source=None):
    def build(c, t):
        src = source(c, t) if source else c["cmd"]
        return ["--source", str(src), "--out", str(t / "out.zarr"), "--set", "data.split_fractions=[0.5,0.5,0.0]",
                *extra]
    return build


def broken(kind: str, field: str = "Mstar"):
    """A copy of the valid CMD set with one file made bad."""
    def build(c, t):
        (t / "cmd").mkdir()
        write_cmd(t / "cmd")
        path = camels.maps_path(t / "cmd", field, "IllustrisTNG", "LH")
        params = camels.params_path(t / "cmd", "IllustrisTNG", "LH")
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
        elif kind in ("complex", "bool", "int", "compound"):
            maps = bad_array(kind, maps)
        elif kind == "object":
            maps = np.array([maps[0], "x"], dtype=object)
        save_npy(path, maps)
        if kind == "text":
            path.write_text("not an array\n")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "folder":
            path.unlink()
            path.mkdir()
        elif kind == "loop":
            path.unlink()
            loop(t / "cmd", path.name)
        elif kind == "zero_stars":
            np.save(path, np.zeros_like(maps))
        elif kind == "params5":
            camels.save_params(params, np.ones((2, 5)))
        elif kind == "params_text":
            params.write_text("a b c d e f\n1 2 3 4 5 6\n")
        elif kind == "params_rows":
            camels.save_params(params, np.ones((3, 6)))
        elif kind == "params_nan":
            camels.save_params(params, np.array([[0.3, 0.8, 1, 1, 1, 1], [0.3, np.nan, 1, 1, 1, 1]]))
        elif kind == "params_negative":
            camels.save_params(params, np.array([[0.3, 0.8, 1, 1, 1, 1], [-0.3, 0.8, 1, 1, 1, 1]]))
        elif kind == "params_empty":
            params.write_text("")
        elif kind == "params_comments":
            params.write_text("# Omega_m sigma_8\n")
        elif kind == "params_folder":
            params.unlink()
            params.mkdir()
        return ["--source", str(t / "cmd"), "--out", str(t / "out.zarr"), "--set",
                "data.split_fractions=[0.5,0.5,0.0]"]
    return build


PREPARE = [
    Row("source missing", "prepare", lambda c, t: ["--source", str(t / "nowhere"), "--out", str(t / "o.zarr")],
        r"no CMD source folder \(data\.source_dir\) at '.*nowhere'"),
    Row("source is a file", "prepare", prepare_args(source=lambda c, t: text(t, "src", "x")),
        r"CMD source folder \(data\.source_dir\) '.*src' is a file; expected a folder", "vague"),
    Row("params with 5 columns", "prepare", broken("params5"), r"has 5 columns; a CAMELS params file has at least 6"),
    Row("params not numbers", "prepare", broken("params_text"), r"is not a table of numbers"),
    Row("params rows", "prepare", broken("params_rows"), r"params has 3 rows but the maps hold"),
    Row("params NaN", "prepare", broken("params_nan"), r"params.* in CMD params file '.*params_LH_IllustrisTNG\.txt'"
        r": 1 value\(s\) NaN or inf, first nan at \(1, 1\)", "nonfinite"),
    Row("params negative", "prepare", broken("params_negative"), r"params .*: 1 value\(s\) below 0, first -0\.3 at "
        r"\(1, 0\)", "quiet"),
    Row("params empty file", "prepare", broken("params_empty"), r"CMD params file '.*params_LH.*' is empty \(0 bytes\)",
        "traceback"),
    Row("params only comments", "prepare", broken("params_comments"), r"CMD params file '.*' holds no rows", "vague"),
    Row("params is a folder", "prepare", broken("params_folder"), r"CMD params file '.*params_LH.*' is a folder; "
        r"expected a file", "vague"),
    Row("NaN map", "prepare", broken("nan"), r"Mstar: NaN or inf in map 17", "nonfinite"),
    Row("negative map", "prepare", broken("negative"), r"Mstar: negative mass .* in map 4"),
    Row("float64 maps", "prepare", broken("float64"), r"Mstar: expected float32 maps as in CMD, got dtype float64"),
    Row("complex maps", "prepare", broken("complex"), r"maps of field 'Mstar' in '.*Maps_Mstar.*' holds complex numbers "
        r"\(dtype complex64\)", "quiet"),
    Row("boolean maps", "prepare", broken("bool"), r"maps of field 'Mstar' .* holds booleans \(dtype bool\)", "quiet"),
    Row("integer maps", "prepare", broken("int"), r"maps of field 'Mstar' .* holds integers \(dtype int32\)", "quiet"),
    Row("compound maps", "prepare", broken("compound"), r"maps of field 'Mstar' .* holds compound records", "traceback"),
    Row("object maps", "prepare", broken("object"), r"CMD maps file \(field Mstar\) '.*Maps_Mstar.*' is not a readable "
        r"\.npy array", "traceback"),
    Row("rectangular maps", "prepare", broken("rect"), r"Mstar: expected maps of shape \(N, H, H\), got \(30, 16, 8\)"),
    Row("maps not whole simulations", "prepare", broken("short"), r"29 maps is not a positive multiple"),
    Row("stellar field all zero", "prepare", broken("zero_stars"), r"Mstar: log10\(x \+ 1.0\) is constant"),
    Row("maps file not npy", "prepare", broken("text"), r"CMD maps file \(field Mstar\) '.*' is not a readable \.npy"),
    Row("maps file empty", "prepare", broken("empty"), r"CMD maps file \(field Mstar\) '.*Maps_Mstar.*' is empty "
        r"\(0 bytes\)", "traceback"),
    Row("maps file is a folder", "prepare", broken("folder"), r"CMD maps file \(field Mstar\) '.*Maps_Mstar.*' is a "
        r"folder; expected a file", "vague"),
    Row("maps file symlink loop", "prepare", broken("loop"), r"CMD maps file \(field Mstar\) '.*Maps_Mstar.*' is a "
        r"symlink loop", "traceback"),
    Row("pool not dividing the maps", "prepare", prepare_args("--set", "data.pool=3"), r"data\.pool=3 must divide"),
    Row("condition not a field", "prepare", prepare_args("--set", "data.condition=Mgas"),
        r"data\.condition='Mgas' is not among data\.fields"),
    Row("no training simulation", "prepare", prepare_args("--set", "data.split_fractions=[0.0,0.5,0.5]"),
        r"no training simulation"),
    Row("NaN split fraction", "prepare", prepare_args("--set", "data.split_fractions=[.nan,0.5,0.5]"),
        r"data\.split_fractions\[0\]: expected a finite number, got nan", "nonfinite"),
    Row("inf log offset", "prepare", prepare_args("--set", "data.log_offsets={Mstar: .inf}"),
        r"data\.log_offsets\.Mstar: expected a finite number, got inf", "nonfinite"),
    Row("NaN box", "prepare", prepare_args("--set", "data.box_mpc_h=.nan"), r"data\.box_mpc_h: expected a finite "
        r"number, got nan", "nonfinite"),
    Row("shards not a multiple of chunks", "prepare", prepare_args("--set", "data.maps_per_chunk=2", "--set",
        "data.maps_per_shard=15"), r"data\.maps_per_shard=15 must be a multiple of data\.maps_per_chunk=2", "leftover"),
    Row("out is a source file", "prepare", lambda c, t: ["--source", str(c["cmd"]), "--out", str(c["cmd"] / MAPS),
                                                         "--overwrite"],
        r"refusing to write '.*Maps_Mstar.*': it lies inside the input", "placement"),
    Row("out around the source", "prepare", lambda c, t: ["--source", str(c["cmd"]), "--out", str(c["cmd"].parent),
                                                          "--overwrite"],
        r"refusing to write '.*': it contains the input", "placement"),
    Row("out under a file", "prepare", lambda c, t: ["--source", str(c["cmd"]), "--out", str(text(t, "f", "x") / "o")],
        r"cannot write '.*f/o': '.*f' is a file, not a folder", "vague"),
]


# -- train --------------------------------------------------------------------------------------------------
def train_args(*extra, run=None):
    def build(c, t):
        r = run(c, t) if run else t / "out"
        return [TINY, "--set", f"data.store={c['store']}", "--run-dir", str(r), *extra]
    return build


def edited_store(c, t, what: str):
    """A copy of the maps store with its attrs edited: a NaN pixel size, inf statistics, or not JSON."""
    import shutil

    from rows_common import edit_json

    shutil.copytree(c["store"], t / "m.zarr")
    meta = t / "m.zarr" / "zarr.json"
    if what == "pixel":
        edit_json(meta, lambda d: d["attributes"].update(pixel_size_mpc_h=float("nan")))
    elif what == "stats":
        edit_json(meta, lambda d: d["attributes"]["stats"]["Mcdm"].update(mean=float("inf")))
    else:
        meta.write_text("{")
    return t / "m.zarr"


def config_file(content, *extra):
    return lambda c, t: ["--config", str(text(t, "c.yaml", content)), "--run-dir", str(t / "out"), *extra]


def foreign_folder(c, t):
    (t / "mine").mkdir()
    text(t, "mine/thesis.tex", "years of work")
    return t / "mine"


TRAIN = [
    Row("unknown key", "train", train_args("--set", "train.zero_stag=2"), r"did you mean 'zero_stage'", "config"),
    Row("wrong type", "train", train_args("--set", "train.lr=fast"), r"train\.lr: expected float, got 'fast'", "config"),
    Row("out of range", "train", train_args("--set", "train.steps=-1"), r"train\.steps: expected a value in \[1",
        "config"),
    Row("not a choice", "train", train_args("--set", "train.precision=fp16"), r"expected one of \['fp32', 'bf16'\], "
        r"got 'fp16'", "config"),
    Row("unknown model kind", "train", train_args("--set", "model.kind=gan"), r"model\.kind: expected one of", "config"),
    Row("--set without =", "train", train_args("--set", "train.lr"), r"--set expects section\.key=value", "config"),
    Row("--set value not YAML", "train", train_args("--set", "train.betas=[0.9"), r"is not valid YAML", "config"),
    Row("config file missing", "train", lambda c, t: ["--config", str(t / "none.yaml")], r"config file not found: "
        r"'.*none\.yaml'", "config"),
    Row("config YAML syntax", "train", config_file("train:\n  lr: [1\n"), r"not valid YAML at line \d+", "config"),
    Row("config not a mapping", "train", config_file("- a\n- b\n"), r"expected a mapping of sections", "config"),
    Row("config binary", "train", config_file(b"\xff\xfe\x00\x01"), r"is not text|not valid YAML", "config"),
    Row("section not a mapping", "train", config_file("train: 5\n"), r"'train' is not a section", "config"),
    Row("config given twice", "train", lambda c, t: [TINY, "--config", TINY], r"give the config once", "config"),
    Row("NaN gradient clipping", "train", train_args("--set", "train.grad_clip=.nan"),
        r"train\.grad_clip: expected a finite number, got nan", "nonfinite"),
    Row("inf learning rate", "train", train_args("--set", "train.lr=.inf"), r"train\.lr: expected a finite number, "
        r"got inf", "nonfinite"),
    Row("NaN EMA decay", "train", train_args("--set", "train.ema_decay=.nan"), r"train\.ema_decay: .*nan", "nonfinite"),
    Row("missing store", "train", lambda c, t: [TINY, "--set", f"data.store={t}/nope.zarr", "--run-dir",
                                                str(t / "out")], r"no maps store at '.*nope\.zarr'"),
    Row("store is a file", "train", lambda c, t: [TINY, "--set", f"data.store={text(t, 's.zarr', 'x')}", "--run-dir",
                                                  str(t / "out")], r"maps store '.*s\.zarr' is a file; expected a "
        r"folder", "vague"),
    Row("store is an empty folder", "train", lambda c, t: [TINY, "--set", f"data.store={t}", "--run-dir",
                                                           str(t / "o")], r"maps store '.*' is a folder without "
        r"zarr\.json", "vague"),
    Row("store with a NaN pixel size", "train", lambda c, t: [TINY, "--set", f"data.store={edited_store(c, t, 'pixel')}",
                                                              "--run-dir", str(t / "out")],
        r"pixel_size_mpc_h of maps store '.*m\.zarr' is nan; expected a finite positive number", "nonfinite"),
    Row("store with inf statistics", "train", lambda c, t: [TINY, "--set", f"data.store={edited_store(c, t, 'stats')}",
                                                            "--run-dir", str(t / "out")],
        r"stats\.Mcdm\.mean of maps store '.*m\.zarr' is inf", "nonfinite"),
    Row("store metadata not JSON", "train", lambda c, t: [TINY, "--set", f"data.store={edited_store(c, t, 'json')}",
                                                          "--run-dir", str(t / "out")],
        r"'.*m\.zarr/zarr\.json' is not valid JSON", "traceback"),
    Row("batch arithmetic", "train", train_args("--set", "train.global_batch=12"), r"train\.global_batch=12 .* = 2"),
    Row("selection needs samples", "train", train_args("--set", "train.select_on=val_r_mean", "--set",
        "train.val_sample_maps=0"), r"val_sample_maps=0"),
    Row("selection of another family", "train", train_args("--set", "train.select_on=val_mse"),
        r"'val_mse' is not a validation metric of the vdm family"),
    Row("field not in store", "train", train_args("--set", "data.condition=Mgas"), r"field 'Mgas' is not in store"),
    Row("stride larger than maps", "train", train_args("--set", "model.channel_mults=[1,1,1,1,1,1,1,1,1]"),
        r"do not divide by the U-Net stride 512"),
    Row("cuda without a GPU", "train", train_args("--set", "train.device=cuda"), r"train\.device='cuda' but no CUDA"),
    Row("run dir is the store", "train", train_args(run=lambda c, t: c["store"]),
        r"refusing to write '.*maps\.zarr': it is the input", "placement"),
    Row("run dir inside the store", "train", train_args(run=lambda c, t: c["store"] / "run"),
        r"refusing to write '.*maps\.zarr/run': it lies inside the input", "placement"),
    Row("run dir through a symlink into the store", "train", train_args(
        run=lambda c, t: (t / "link").symlink_to(c["store"]) or t / "link" / "run"), r"lies inside the input",
        "placement"),
    Row("run dir a foreign folder", "train", train_args(run=foreign_folder),
        r"--run-dir '.*mine' holds \['thesis\.tex'\] and is not an hpc_vdm run dir", "destroyed"),
    Row("run dir is a file", "train", train_args(run=lambda c, t: text(t, "f", "x")),
        r"--run-dir '.*f' exists and is not a folder", "vague"),
    Row("run dir a symlink loop", "train", train_args(run=lambda c, t: loop(t, "lp")),
        r"output '.*lp' is a symlink loop", "traceback"),
    Row("betas out of range", "train", train_args("--set", "train.betas=[1.5,0.999]"),
        r"train\.betas\[0\]: expected two values in \[0\.0, 1\.0\), got \[1\.5, 0\.999\]", "leftover"),
    Row("groups not dividing channels", "train", train_args("--set", "model.norm_groups=3"),
        r"norm_groups=3 does not divide a level's channel count 8", "leftover"),
]


# -- sweep --------------------------------------------------------------------------------------------------
def sweep_args(body: str, *extra, base: str = TINY):
    return lambda c, t: [str(sweep_file(t, body, base)), "--dry-run", "--set", f"data.store={c['store']}", *extra]


SWEEP = [
    Row("sweep file missing", "sweep", lambda c, t: [str(t / "none.yaml")], r"sweep file .*none\.yaml|not found: "
        r"'.*none\.yaml'", "config"),
    Row("sweep file is a folder", "sweep", lambda c, t: [str(t)], r"'.*' is a folder|not found", "vague"),
    Row("sweep file empty", "sweep", lambda c, t: [str(text(t, "s.yaml", ""))], r"sweep file '.*s\.yaml': expected a "
        r"mapping with base and axes, got None", "config"),
    Row("sweep YAML syntax", "sweep", lambda c, t: [str(text(t, "s.yaml", "grid: [1\n"))], r"not valid YAML at line",
        "config"),
    Row("sweep base missing", "sweep", sweep_args("grid: {train.lr: [0.1]}\n", base="nope.yaml"),
        r"base config not found: '.*nope\.yaml'", "config"),
    Row("sweep NaN axis value", "sweep", sweep_args("grid: {train.lr: [.nan]}\n"),
        r"axis 'train\.lr' \(value nan\): train\.lr: expected a finite number, got 'NaN'", "nonfinite"),
    Row("sweep NaN draw bound", "sweep", sweep_args("draws: {method: lhs, n: 2, params: {train.lr: {low: .nan, "
                                                     "high: 0.1}}}\n"),
        r"draws\.params\.train\.lr: expected low < high, got low=nan, high=0\.1", "nonfinite"),
    Row("sweep unknown key", "sweep", sweep_args("grid: {train.lr: [0.1]}\ngird: 1\n"), r"unknown sweep key 'gird'",
        "config"),
    Row("sweep axis not a key", "sweep", sweep_args("grid: {lr: [0.1]}\n"), r"grid: axis 'lr' is not a section\.key",
        "config"),
    Row("sweep out is the store", "sweep", lambda c, t: [str(sweep_file(t, "grid: {train.lr: [0.1]}\n", TINY)),
                                                         "--out", str(c["store"]), "--set", f"data.store={c['store']}"],
        r"refusing to write '.*maps\.zarr': it is the input", "placement"),
    Row("sweep out inside the store", "sweep", lambda c, t: [str(sweep_file(t, "grid: {train.lr: [0.1]}\n", TINY)),
                                                             "--out", str(c["store"] / "sweep"), "--set",
                                                             f"data.store={c['store']}"],
        r"refusing to write '.*maps\.zarr/sweep': it lies inside the input", "placement"),
    Row("sweep status of nothing", "sweep", lambda c, t: [str(sweep_file(t, "grid: {train.lr: [0.1]}\n", TINY)),
                                                          "--status", "--set", f"data.store={c['store']}"],
        r"sweep folder '.*out_sweep' holds no sweep yet"),
]


# -- export -------------------------------------------------------------------------------------------------
EXPORT = [
    Row("export without checkpoints", "export", lambda c, t: [str(t / "run")], r"no run dir at '.*run'|no complete "
        r"checkpoint"),
    Row("export run dir is a file", "export", lambda c, t: [str(text(t, "run", "x"))], r"run dir '.*run' is a file; "
        r"expected a folder", "vague"),
    Row("export unknown tag", "export", lambda c, t: [str(c["run"]), "--tag", "step99", "--out", str(t / "out.pt")],
        r"no complete checkpoint 'step99' in '.*checkpoints'"),
    Row("export into the checkpoints", "export", lambda c, t: [str(c["run"]), "--out",
                                                               str(c["run"] / "checkpoints" / "m.pt")],
        r"refusing to write '.*checkpoints/m\.pt': it lies inside the input", "placement"),
    Row("export over a foreign file", "export", lambda c, t: [str(c["run"]), "--out", str(text(t, "w.pt", "mine")),
                                                              "--overwrite"],
        r"'.*w\.pt' exists and is a file that is not an hpc_vdm output, not an hpc_vdm model file", "destroyed"),
    Row("export onto a folder", "export", lambda c, t: [str(c["run"]), "--out", str(t), "--overwrite"],
        r"exists and is a folder that is not an hpc_vdm output", "destroyed"),
    Row("export through a symlink loop", "export", lambda c, t: [str(c["run"]), "--out", str(loop(t, "lp"))],
        r"output '.*lp' is a symlink loop", "traceback"),
]

ROWS = MOCK + PREPARE + TRAIN + SWEEP + EXPORT
