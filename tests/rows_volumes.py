"""Bad-input rows of the 3D volume commands: prepare_volume, paint, baselines."""
from __future__ import annotations

import json
import shutil
from typing import Callable

import numpy as np
import zarr

from helpers import REPO
from rows_common import Row, bad_array, cube, edit_json, h5, loop, save_npy, text

TEST_CFG = str(REPO / "configs" / "dm2gal_test.yaml")


# -- prepare_volume -----------------------------------------------------------------------------------------
def grids_args(*extra, dm: Callable = None, subhalo: Callable = None, store: Callable = None, more: dict = None):
    """Explicit 16^3 grids (mass per voxel); ``dm``/``subhalo`` build a bad one instead."""
    def build(c, t):
        files = {"dm": dm(c, t) if dm else save_npy(t / "dm.npy", cube(16, 1)),
                 "subhalo": subhalo(c, t) if subhalo else save_npy(t / "sub.npy", cube(16, 2))}
        files.update({k: v(c, t) for k, v in (more or {}).items()})
        spec = json.dumps({k: str(v) for k, v in files.items()})
        out = store(c, t) if store else t / "out.zarr"
        return ["--set", f"volume.grids={spec}", "--set", "volume.grid_units=mass", "--store", str(out), *extra]
    return build


def npy(kind: str, name: str = "bad.npy"):
    def build(c, t):
        if kind == "empty":
            return text(t, name, b"")
        if kind == "text":
            return text(t, name, "not an array")
        if kind == "folder":
            (t / name).mkdir()
            return t / name
        if kind == "loop":
            return loop(t, name)
        return save_npy(t / name, bad_array(kind, cube(16, 3)))
    return build


def hdf(kind: str):
    def build(c, t):
        g = cube(16, 4)
        if kind == "not hdf5":
            return text(t, "g.h5", "plain text")
        if kind == "group":
            return f"{h5(t / 'g.h5', {}, groups=('DM/inner',))}:DM"
        if kind == "missing":
            return f"{h5(t / 'g.h5', {'DM': g})}:Mass"
        if kind == "two":
            return h5(t / "g.h5", {"DM": g, "Other": g})
        return f"{h5(t / 'g.h5', {'DM': bad_array(kind, g)})}:DM"
    return build


def chunked_hdf5(n: int):
    """An HDF5 grid of n^3 float32 that is all fill value (a few KiB on disk, n^3 x 4 bytes to read)."""
    def build(c, t):
        import h5py

        with h5py.File(t / "big.h5", "w") as f:
            f.create_dataset("DM", shape=(n, n, n), dtype="f4", chunks=(64, 64, 64))
        return f"{t / 'big.h5'}:DM"
    return build


PREPARE_VOLUME = [
    Row("grid file missing", "prepare_volume", grids_args(subhalo=lambda c, t: t / "nope.npy"),
        r"no grid file '.*nope\.npy' \(the subhalo grid\)"),
    Row("grids without subhalo", "prepare_volume", lambda c, t: ["--set", "volume.grids={dm: x.npy}", "--store",
                                                                 str(t / "out.zarr")],
        r"dm2gal\.grids must name dm and subhalo .*got \['dm'\]", "config"),
    Row("grid is a folder", "prepare_volume", grids_args(dm=npy("folder")), r"dm grid file '.*bad\.npy' is a folder; "
        r"expected a file", "vague"),
    Row("grid empty file", "prepare_volume", grids_args(dm=npy("empty")), r"dm grid file '.*bad\.npy' is empty",
        "traceback"),
    Row("grid not npy", "prepare_volume", grids_args(dm=npy("text")), r"dm grid file '.*bad\.npy' is not a readable "
        r"\.npy array", "traceback"),
    Row("grid symlink loop", "prepare_volume", grids_args(dm=npy("loop")), r"dm grid file '.*bad\.npy' is a symlink "
        r"loop", "traceback"),
    Row("grid complex", "prepare_volume", grids_args(dm=npy("complex")), r"grid values in dm grid file '.*bad\.npy' "
        r"holds complex numbers", "quiet"),
    Row("grid boolean", "prepare_volume", grids_args(subhalo=npy("bool")), r"grid values in subhalo grid file .* "
        r"holds booleans", "quiet"),
    Row("grid integers", "prepare_volume", grids_args(dm=npy("int")), r"holds integers \(dtype int32\)", "quiet"),
    Row("grid compound", "prepare_volume", grids_args(dm=npy("compound")), r"holds compound records", "traceback"),
    Row("grid NaN", "prepare_volume", grids_args(dm=npy("nan")), r"grid values in dm grid file '.*bad\.npy': 1 "
        r"value\(s\) NaN or inf, first nan at \(\d+, \d+, \d+\)", "nonfinite"),
    Row("grid inf", "prepare_volume", grids_args(subhalo=npy("inf")), r"grid values in subhalo grid file .* first inf",
        "nonfinite"),
    Row("grid negative", "prepare_volume", grids_args(dm=npy("negative")), r"grid values in dm grid file .* below 0, "
        r"first -2\.0"),
    Row("grid 2D", "prepare_volume", grids_args(dm=npy("2d")), r"grid in dm grid file '.*bad\.npy' has shape "
        r"\(16, 256\); expected 3 or 4 axes"),
    Row("grids of two sizes", "prepare_volume", grids_args(subhalo=lambda c, t: save_npy(t / "s8.npy", cube(8))),
        r"grids differ in shape: \{'dm': \(16, 16, 16\), 'subhalo': \(8, 8, 8\)\}"),
    Row("grid not HDF5", "prepare_volume", grids_args(dm=hdf("not hdf5")), r"dm grid file '.*g\.h5' is not an HDF5 "
        r"file", "traceback"),
    Row("grid key is a group", "prepare_volume", grids_args(dm=hdf("group")), r"'DM' in dm grid file '.*g\.h5' is a "
        r"group, not a dataset", "traceback"),
    Row("grid key missing", "prepare_volume", grids_args(dm=hdf("missing")), r"dm grid file '.*g\.h5' has no dataset "
        r"'Mass' \(it has \['DM'\]\)", "traceback"),
    Row("grid HDF5 of two datasets", "prepare_volume", grids_args(dm=hdf("two")), r"holds datasets \['DM', 'Other'\]; "
        r"name one"),
    Row("grid HDF5 complex", "prepare_volume", grids_args(dm=hdf("complex")), r"holds complex numbers", "quiet"),
    Row("NaN box", "prepare_volume", grids_args("--set", "volume.box_mpc_h=.nan"), r"volume\.box_mpc_h: expected a "
        r"finite number, got nan", "nonfinite"),
    Row("regions overlap", "prepare_volume", grids_args("--set", "volume.val_box=[0.1,0.5]"),
        r"test voxels \[0, 7\) and validation voxels \[2, 8\) overlap|overlap"),
    Row("store over a maps store", "prepare_volume", grids_args(store=lambda c, t: c["store"], ),
        r"'.*maps\.zarr' exists and is an hpc_vdm maps store, not an hpc_vdm volume store", "destroyed"),
    Row("store over a foreign folder", "prepare_volume", grids_args(store=lambda c, t: text(t, "d/x", "1").parent),
        r"'.*d' exists and is a folder that is not an hpc_vdm output", "destroyed"),
    Row("store is a grid", "prepare_volume", grids_args(store=lambda c, t: t / "dm.npy"),
        r"refusing to write '.*dm\.npy': it is the input", "placement"),
    Row("store around the grids", "prepare_volume", grids_args(store=lambda c, t: t, ),
        r"refusing to write '.*': it contains the input", "placement"),
    Row("store of our kind without overwrite", "prepare_volume", grids_args(store=lambda c, t: c["ustore"]),
        r"'.*u\.zarr' exists \(an hpc_vdm volume store\); pass --overwrite", "destroyed"),
    Row("volume too big for the disk", "prepare_volume", grids_args(dm=chunked_hdf5(8192), subhalo=chunked_hdf5(8192)),
        r"the 8192\^3 volume store '.*out\.zarr' \(2 float32 fields\) needs about [\d.]+ TiB of disk|8192\^3 volume "
        r".*needs about [\d.]+ GiB of memory", "size"),
]


# -- paint --------------------------------------------------------------------------------------------------
def paint_args(*extra, model: Callable = None, volume: Callable = None, out: Callable = None):
    def build(c, t):
        m = model(c, t) if model else c["dm2gal_model"]
        v = volume(c, t) if volume else c["ustore"]
        o = out(c, t) if out else t / "out.zarr"
        return ["--config", TEST_CFG, "--model", str(m), "--volume", str(v), "--out", str(o), "--set",
                "paint.progress=false", *extra]
    return build


def volume_copy(edit: str):
    """A copy of the volume store, edited: a NaN voxel, a NaN voxel size, another format, a missing array."""
    def build(c, t):
        dst = t / "v.zarr"
        shutil.copytree(c["ustore"], dst)
        meta = dst / "zarr.json"
        if edit == "nan voxel":
            zarr.open_group(str(dst), mode="r+")["dm"][0, 0, 0] = np.nan
        elif edit == "negative voxel":
            zarr.open_group(str(dst), mode="r+")["subhalo"][1, 2, 3] = -1.0
        elif edit == "nan size":
            edit_json(meta, lambda d: d["attributes"].update(voxel_mpc_h=float("nan")))
        elif edit == "inf box":
            edit_json(meta, lambda d: d["attributes"].update(box_mpc_h=float("inf")))
        elif edit == "nan stats":
            edit_json(meta, lambda d: d["attributes"]["stats"]["dm"].update(std=float("nan")))
        elif edit == "no array":
            shutil.rmtree(dst / "subhalo")
        elif edit == "not json":
            meta.write_text("{not json")
        return dst
    return build


PAINT = [
    Row("paint volume missing", "paint", paint_args(volume=lambda c, t: t / "none.zarr"),
        r"no volume store at '.*none\.zarr'"),
    Row("paint volume is a file", "paint", paint_args(volume=lambda c, t: text(t, "v.zarr", "x")),
        r"volume store '.*v\.zarr' is a file; expected a folder", "vague"),
    Row("paint volume is a maps store", "paint", paint_args(volume=lambda c, t: c["store"]),
        r"'.*maps\.zarr' is not a dm2gal volume store \(format 'hpc_vdm\.maps/1'"),
    Row("paint NaN voxel", "paint", paint_args(volume=volume_copy("nan voxel")), r"volume store '.*v\.zarr': field "
        r"'dm' holds nan at voxel \(0, 0, 0\)", "quiet"),
    Row("paint negative voxel", "paint", paint_args(volume=volume_copy("negative voxel")), r"field 'subhalo' holds "
        r"-1\.0 at voxel \(1, 2, 3\)", "quiet"),
    Row("paint NaN voxel size", "paint", paint_args(volume=volume_copy("nan size")), r"voxel_mpc_h of volume store "
        r"'.*v\.zarr' is nan", "nonfinite"),
    Row("paint inf box", "paint", paint_args(volume=volume_copy("inf box")), r"box_mpc_h of volume store .* is inf",
        "nonfinite"),
    Row("paint NaN statistics", "paint", paint_args(volume=volume_copy("nan stats")), r"stats\.dm\.std of volume "
        r"store .* is nan", "nonfinite"),
    Row("paint volume without an array", "paint", paint_args(volume=volume_copy("no array")), r"volume store '.*' "
        r"lists field 'subhalo' but holds no array 'subhalo'", "traceback"),
    Row("paint volume metadata not JSON", "paint", paint_args(volume=volume_copy("not json")),
        r"'.*v\.zarr/zarr\.json' is not valid JSON", "traceback"),
    Row("paint vdm model", "paint", paint_args(model=lambda c, t: c["model"]), r"python -m hpc_vdm\.paint needs a "
        r"dm2gal model, but '.*model\.pt' is a vdm model"),
    Row("paint halo below the reach", "paint", paint_args("--halo", "2"), r"paint\.halo=2 is smaller than the "
        r"receptive radius 8"),
    Row("paint block not dividing", "paint", paint_args("--block", "12"), r"paint\.block=12 does not divide the "
        r"volume's 32"),
    Row("paint block memory", "paint", paint_args("--block", "32", "--set", "paint.max_block_gb=0.001"),
        r"paint\.block=32 with halo 8 needs about [\d.]+ GB per block, above paint\.max_block_gb=0\.001", "size"),
    Row("paint NaN memory cap", "paint", paint_args("--set", "paint.max_block_gb=.nan"), r"paint\.max_block_gb: "
        r"expected a finite number, got nan", "nonfinite"),
    Row("paint mask truth without stars", "paint", paint_args("--mask", "truth", volume=lambda c, t: c["store"]),
        r"not a dm2gal volume store"),
    Row("paint out is the volume", "paint", paint_args(out=lambda c, t: c["ustore"]), r"refusing to write "
        r"'.*u\.zarr': it is the input", "placement"),
    Row("paint out inside the volume", "paint", paint_args(out=lambda c, t: c["ustore"] / "p.zarr"),
        r"refusing to write '.*u\.zarr/p\.zarr': it lies inside the input", "placement"),
    Row("paint out through a symlink into the volume", "paint", paint_args(
        out=lambda c, t: (t / "link").symlink_to(c["ustore"]) or t / "link" / "p.zarr"), r"lies inside the input",
        "placement"),
    Row("paint over a user's figure", "paint", paint_args(out=lambda c, t: text(t, "X.png", b"\x89PNG\r\n\x1a\nuser")
                                                          and t / "X.zarr"),
        r"'.*X\.png' exists and is a file that is not an hpc_vdm output, not an hpc_vdm figure", "destroyed"),
    Row("paint over a foreign folder", "paint", paint_args(out=lambda c, t: text(t, "d/x", "1").parent),
        r"'.*d' exists and is a folder that is not an hpc_vdm output", "destroyed"),
]


# -- baselines ----------------------------------------------------------------------------------------------
def base_args(*extra, catalogue: Callable = None, out: Callable = None, model: Callable = None,
              store: Callable = None):
    def build(c, t):
        cat = catalogue(c, t) if catalogue else c["catalogue"]
        o = out(c, t) if out else t / "out"
        m = model(c, t) if model else c["dm2gal_model"]
        s = store(c, t) if store else c["ustore"]
        return ["--config", TEST_CFG, "--model", str(m), "--store", str(s), "--catalogue", str(cat), "--out", str(o),
                "--device", "cpu", *extra]
    return build


def catalogue(kind: str):
    """A copy of the halo catalogue, made bad in one way."""
    def build(c, t):
        import h5py

        dst = t / "cat.hdf5"
        if kind == "empty":
            return text(t, "cat.hdf5", b"")
        if kind == "not hdf5":
            return text(t, "cat.hdf5", "not a catalogue")
        if kind == "folder":
            dst.mkdir()
            return dst
        shutil.copy(c["catalogue"], dst)
        with h5py.File(dst, "a") as f:
            if kind == "no group":
                del f["Group"]
            elif kind in ("nan mass", "negative mass", "inf position"):
                key = "Subhalo/SubhaloPos" if kind == "inf position" else "Subhalo/SubhaloMass"
                a = f[key][()]
                a.flat[5] = {"nan mass": np.nan, "negative mass": -1.0, "inf position": np.inf}[kind]
                f[key][...] = a
            elif kind == "complex mass":
                a = f["Subhalo/SubhaloMass"][()]
                del f["Subhalo/SubhaloMass"]
                f["Subhalo/SubhaloMass"] = a.astype(np.complex64)
            elif kind == "positions a group":
                del f["Subhalo/SubhaloPos"]
                f.create_group("Subhalo/SubhaloPos")
            elif kind == "two columns":
                a = f["Subhalo/SubhaloPos"][()]
                del f["Subhalo/SubhaloPos"]
                f["Subhalo/SubhaloPos"] = a[:, :2]
            elif kind == "group numbers float":
                a = f["Subhalo/SubhaloGrNr"][()]
                del f["Subhalo/SubhaloGrNr"]
                f["Subhalo/SubhaloGrNr"] = a.astype(np.float32)
        return dst
    return build


def user_out(*names):
    def build(c, t):
        for name in names:
            text(t, f"o/{name}", b"\x89PNG\r\n\x1a\nuser" if name.endswith(".png") else '{"mine": 1}')
        return t / "o"
    return build


BASELINES = [
    Row("catalogue missing", "baselines", base_args(catalogue=lambda c, t: t / "none.hdf5"),
        r"no catalogue file '.*none\.hdf5'"),
    Row("catalogue empty", "baselines", base_args(catalogue=catalogue("empty")), r"catalogue '.*cat\.hdf5' is empty",
        "traceback"),
    Row("catalogue not HDF5", "baselines", base_args(catalogue=catalogue("not hdf5")), r"catalogue '.*cat\.hdf5' is not "
        r"an HDF5 file", "traceback"),
    Row("catalogue is a folder", "baselines", base_args(catalogue=catalogue("folder")), r"catalogue '.*cat\.hdf5' is a "
        r"folder; expected a file", "vague"),
    Row("catalogue without groups", "baselines", base_args(catalogue=catalogue("no group")), r"'.*cat\.hdf5' is not a "
        r"FoF/Subfind group file \(needs Group/ and Subhalo/\)"),
    Row("catalogue NaN mass", "baselines", base_args(catalogue=catalogue("nan mass")), r"Subhalo/SubhaloMass in "
        r"catalogue '.*cat\.hdf5': 1 value\(s\) NaN or inf, first nan at 5", "nonfinite"),
    Row("catalogue negative mass", "baselines", base_args(catalogue=catalogue("negative mass")), r"Subhalo/SubhaloMass "
        r".* below 0, first -1\.0 at 5", "quiet"),
    Row("catalogue inf position", "baselines", base_args(catalogue=catalogue("inf position")), r"Subhalo/SubhaloPos in "
        r"catalogue .* first inf at \(1, 2\)", "nonfinite"),
    Row("catalogue complex mass", "baselines", base_args(catalogue=catalogue("complex mass")), r"Subhalo/SubhaloMass in "
        r"catalogue '.*' holds complex numbers", "quiet"),
    Row("catalogue positions a group", "baselines", base_args(catalogue=catalogue("positions a group")),
        r"'Subhalo/SubhaloPos' in catalogue '.*' is a group, not a dataset", "traceback"),
    Row("catalogue two columns", "baselines", base_args(catalogue=catalogue("two columns")), r"Subhalo/SubhaloPos in "
        r"catalogue '.*' has shape \(\d+, 2\); expected \(n, 3\)"),
    Row("catalogue group numbers not integers", "baselines", base_args(catalogue=catalogue("group numbers float")),
        r"Subhalo/SubhaloGrNr in catalogue '.*' holds dtype float32; expected integers", "quiet"),
    Row("baselines over a user's metrics", "baselines", base_args(out=user_out("metrics.json"), ),
        r"'.*o/metrics\.json' exists and is a file that is not an hpc_vdm output", "destroyed"),
    Row("baselines over a user's figure", "baselines", base_args("--overwrite", out=user_out("fig1.png")),
        r"'.*o/fig1\.png' exists and is a file that is not an hpc_vdm output, not an hpc_vdm figure", "destroyed"),
    Row("baselines out inside the volume", "baselines", base_args(out=lambda c, t: c["ustore"] / "cmp"),
        r"refusing to write '.*u\.zarr/cmp/metrics\.json': it lies inside the input", "placement"),
    Row("baselines out is a file", "baselines", base_args(out=lambda c, t: text(t, "o", "x")),
        r"--out \(baselines\.out\) '.*o' exists and is a file, not a folder", "vague"),
    Row("baselines vdm model", "baselines", base_args(model=lambda c, t: c["model"]), r"python -m hpc_vdm\.baselines "
        r"needs a dm2gal model"),
    Row("baselines volume without stars", "baselines", base_args(store=lambda c, t: c["store"]),
        r"not a dm2gal volume store"),
    Row("baselines NaN bispectrum k", "baselines", base_args("--set", "baselines.bk_kf=[.nan,4.0]"),
        r"baselines\.bk_kf\[0\]: expected a finite number, got nan", "nonfinite"),
    Row("baselines no HOD bins", "baselines", base_args("--set", "baselines.hod_bins=0"), r"baselines\.hod_bins: "
        r"expected a value in \[1", "config"),
]

ROWS = PREPARE_VOLUME + PAINT + BASELINES
