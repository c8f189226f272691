"""Bad-input rows of the commands that report on a model or on stores: evaluate and spectra."""
from __future__ import annotations

import shutil
from typing import Callable

import numpy as np

from rows_common import Row, bad_array, edit_json, text
from rows_models import model_file


# -- evaluate -----------------------------------------------------------------------------------------------
def eval_args(*extra, model: Callable = None, out: Callable = None):
    def build(c, t):
        m = model(c, t) if model else c["model"]
        o = out(c, t) if out else t / "out"
        return ["--model", str(m), "--out", str(o), "--n-maps", "1", "--n-samples", "2", "--steps", "1",
                "--set", "evaluate.progress=false", *extra]
    return build


def other_scale_store(c, t):
    """A copy of the maps store whose pixels are said to be 0.1 Mpc/h."""
    shutil.copytree(c["store"], t / "other.zarr")
    edit_json(t / "other.zarr" / "zarr.json", lambda d: d["attributes"].update(pixel_size_mpc_h=0.1))
    return t / "other.zarr"


EVALUATE = [
    Row("evaluate model missing", "evaluate", eval_args(model=lambda c, t: t / "none.pt"), r"no exported model at "
        r"'.*none\.pt'"),
    Row("evaluate dm2gal model", "evaluate", eval_args(model=lambda c, t: c["dm2gal_model"]),
        r"'.*dm2gal\.pt' is a dm2gal model, not a map model"),
    Row("evaluate store missing", "evaluate", eval_args("--store", "/nonexistent.zarr"), r"no maps store at "
        r"'/nonexistent\.zarr'"),
    Row("evaluate more maps than the split", "evaluate", eval_args("--n-maps", "1000"),
        r"evaluate\.n_maps=1000, but split 'test' of '.*' holds \d+ maps", "quiet"),
    Row("evaluate split unknown", "evaluate", eval_args("--split", "holdout"), r"evaluate\.split: expected one of",
        "config"),
    Row("evaluate out exists", "evaluate", eval_args(out=lambda c, t: text(t, "o/notes.txt", "x").parent),
        r"'.*o' exists; choose another --out", "destroyed"),
    Row("evaluate out inside the store", "evaluate", eval_args(out=lambda c, t: c["store"] / "eval"),
        r"refusing to write '.*maps\.zarr/eval': it lies inside the input", "placement"),
    Row("evaluate out around the model", "evaluate", eval_args(out=lambda c, t: c["root"]),
        r"refusing to write '.*': it contains the input", "placement"),
    Row("evaluate 1P store missing", "evaluate", eval_args("--set", "evaluate.one_p_store=/nope.zarr"),
        r"no maps store at '/nope\.zarr'"),
    Row("evaluate CV store at another scale", "evaluate", lambda c, t: eval_args(
        "--set", f"evaluate.cv_store={other_scale_store(c, t)}")(c, t), r"pixel scale mismatch: .* CV store \(evaluate\)"
        r" '.*other\.zarr' has 0\.1 Mpc/h", "quiet"),
    Row("evaluate tile store at another scale", "evaluate", lambda c, t: eval_args(
        "--set", f"evaluate.tile_store={c['tile_store']}")(c, t), r"pixel scale mismatch: the model was trained on "
        r"0\.0[0-9]+ Mpc/h pixels, tile store '.*tiles\.zarr' has 0\.1 Mpc/h", "quiet"),
    Row("evaluate tile store is a maps store", "evaluate", lambda c, t: eval_args(
        "--set", f"evaluate.tile_store={c['store']}")(c, t), r"evaluate\.tile_store '.*maps\.zarr' is not a tile store "
        r"\(format 'hpc_vdm\.maps/1'", "quiet"),
    Row("evaluate suite store missing", "evaluate", eval_args("--set", "evaluate.suites={SIMBA: /nope.zarr}"),
        r"no maps store at '/nope\.zarr'"),
    Row("evaluate NaN statistics", "evaluate", eval_args(model=model_file("NaN stats")), r"stats\.Mcdm\.std of the "
        r"export .* is nan", "nonfinite"),
]


# -- spectra ------------------------------------------------------------------------------------------------
def bad_zarr(kind: str):
    def build(c, t):
        import zarr

        g = zarr.open_group(str(t / "z.zarr"), mode="w")
        a = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
        g.create_array("m", data=bad_array(kind, a) if kind not in ("ok",) else a)
        g.attrs["box_size_mpc_h"] = 25.0
        return t / "z.zarr"
    return build


def spectra(mode: str, *extra):
    return lambda c, t: [mode, *[str(e(c, t)) if callable(e) else e for e in extra]]


STORE = lambda c, t: c["store"]  # noqa: E731
SPECTRA = [
    Row("spectra store missing", "spectra", spectra("auto", lambda c, t: t / "none.zarr", "--array", "Mcdm"),
        r"no Zarr store at '.*none\.zarr'"),
    Row("spectra store is a file", "spectra", spectra("auto", lambda c, t: text(t, "s.zarr", "x"), "--array", "m"),
        r"Zarr store '.*s\.zarr' is a file; expected a folder", "vague"),
    Row("spectra array missing", "spectra", spectra("auto", STORE, "--array", "Mgas", "--out",
                                                    lambda c, t: t / "out.json"), r"array 'Mgas' not in '.*maps\.zarr'"),
    Row("spectra bad MAS", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--mas", "XYZ"),
        r"--mas must be NGP, CIC, TSC or PCS, got 'XYZ'"),
    Row("spectra NaN box", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--box", "nan"),
        r"--box of the command line is nan; expected a finite positive number", "nonfinite"),
    Row("spectra negative box", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--box", "-5"),
        r"--box of the command line is -5\.0", "quiet"),
    Row("spectra maps not a slice", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--maps", "a:b"),
        r"--maps expects START:STOP \(e\.g\. 0:100\), got 'a:b'", "traceback"),
    Row("spectra maps out of range", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--maps", "500:600"),
        r"--maps '500:600' selects no maps of the \d+ there are", "quiet"),
    Row("spectra no maps per task", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--chunk-maps", "0"),
        r"--chunk-maps must be at least 1, got 0"),
    Row("spectra out suffix", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--out",
                                                 lambda c, t: t / "out.txt"), r"--out must end in \.npz or \.json, got "
        r"'.*out\.txt'"),
    Row("spectra out inside the store", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--out",
                                                           lambda c, t: c["store"] / "pk.json"),
        r"refusing to write '.*maps\.zarr/pk\.json': it lies inside the input", "placement"),
    Row("spectra over a user's figure", "spectra", spectra(
        "auto", STORE, "--array", "Mcdm", "--figure", lambda c, t: text(t, "pk.png", b"\x89PNG\r\n\x1a\nmine"),
        "--overwrite"), r"'.*pk\.png' exists and is a file that is not an hpc_vdm output", "destroyed"),
    Row("spectra over a user's json", "spectra", spectra("auto", STORE, "--array", "Mcdm", "--out",
                                                         lambda c, t: text(t, "r.json", "{}"), "--overwrite"),
        r"'.*r\.json' exists and is a file that is not an hpc_vdm output", "destroyed"),
    Row("spectra compare without an array", "spectra", spectra("compare", "--truth", STORE, "--samples", STORE),
        r"'.*maps\.zarr' names no array; expected STORE\.zarr:ARRAY"),
    Row("spectra complex array", "spectra", spectra("auto", lambda c, t: bad_zarr("complex")(c, t), "--array", "m"),
        r"array 'm' in store '.*z\.zarr' holds complex numbers", "quiet"),
    Row("spectra boolean array", "spectra", spectra("auto", lambda c, t: bad_zarr("bool")(c, t), "--array", "m"),
        r"array 'm' in store '.*z\.zarr' holds booleans", "quiet"),
    Row("spectra NaN array", "spectra", spectra("auto", lambda c, t: bad_zarr("nan")(c, t), "--array", "m", "--out",
                                                lambda c, t: t / "out.json"),
        r"'.*z\.zarr': maps contain NaN or inf", "nonfinite"),
]

ROWS = EVALUATE + SPECTRA
