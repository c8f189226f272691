"""``python -m hpc_vdm.infer`` as users run it: the grid store, its summary and figure; the grid split over ranks;
a killed run resumed; every bad input refused before anything is written."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr

from helpers import REPO, clean_env, export_tiny, kill_when, write_cmd
from hpc_vdm import infer
from hpc_vdm.config import load_config
from test_emulator import PARAMS, emu_model, emu_store, store_attrs  # noqa: F401 (fixtures)

BASE = ["--grid", "4,4", "--times", "2", "--batch-size", "6", "--set", "infer.half_width=[0.1,0.1]",
        "--set", "infer.progress=false", "--set", "trained.device=cpu"]


def args(model, store, out, *extra) -> list[str]:
    return ["--model", model, "--store", store, "--maps", "0,20", "--out", str(out), *BASE, *extra]


def arrays(path) -> dict:
    root = zarr.open_group(str(path), mode="r")
    return {name: np.asarray(root[name][:]) for name in sorted(root.array_keys())}


def test_infer_writes_the_grid_its_summary_and_figure(emu_model, emu_store, tmp_path):
    out = tmp_path / "grid.zarr"
    assert infer.main(args(emu_model, emu_store, out, "--set", "infer.noise_draws=2", "--set",
                           f"infer.cv_store={emu_store}", "--set", "infer.baseline_bins=4")) == 0
    a = arrays(out)
    assert a["terms"].shape == (2, 16, 2, 2) and np.isfinite(a["terms"]).all() and a["done"].all()
    truth = zarr.open_group(emu_store, mode="r")["params"][:][[0, 1]]   # maps 0 and 20 -> simulations 0 and 1
    np.testing.assert_array_equal(a["truth"], truth)
    for i in range(2):  # the paper's box: truth ± 0.1 clipped to the prior
        lo = np.maximum(truth[i, :2] - 0.1, [0.1, 0.6])
        np.testing.assert_allclose(a["theta"][i].min(0), lo) and np.testing.assert_allclose(
            a["theta"][i].max(0), np.minimum(truth[i, :2] + 0.1, [0.5, 1.0]))
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["params"] == PARAMS and len(summary["bound"]["maps"]) == 2
    assert {"bound", "bound_corrected", "baseline", "fom_ratio_bound_over_baseline"} <= summary.keys()
    row = summary["bound"]["maps"][0]
    box = a["theta"][0].min(0), a["theta"][0].max(0)
    for i, (lo, hi) in enumerate(row["interval_68"]):
        assert box[0][i] <= lo <= hi <= box[1][i] and box[0][i] <= row["marginal_max"][i] <= box[1][i]
    assert 0 <= row["hpd_level"] <= 1
    assert out.with_suffix(".png").stat().st_size > 10_000
    zarr.open_group(str(out), mode="r").attrs["complete"] is True
    # a rerun of the same command finds the store complete and keeps it
    assert infer.main(args(emu_model, emu_store, out, "--set", "infer.noise_draws=2", "--set",
                           f"infer.cv_store={emu_store}", "--set", "infer.baseline_bins=4")) == 0


def test_terms_do_not_depend_on_the_batching_and_differ_between_parameters(emu_model, emu_store, tmp_path):
    one, other = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert infer.main(args(emu_model, emu_store, one)) == 0
    assert infer.main(args(emu_model, emu_store, other, "--batch-size", "16")) == 0
    a, b = arrays(one), arrays(other)
    np.testing.assert_array_equal(a["theta"], b["theta"])
    np.testing.assert_allclose(a["terms"], b["terms"], rtol=1e-5)   # float32 networks: batches round alike to ~1e-6
    assert np.ptp(a["terms"][0].sum((1, 2))) > 0                    # common noise: differences are θ's


def test_coarse_centre_then_chains(emu_model, emu_store, tmp_path):
    out = tmp_path / "coarse.zarr"
    assert infer.main(args(emu_model, emu_store, out, "--centre", "coarse", "--set", "infer.coarse=[3,3]",
                           "--set", "infer.mcmc_maps=1", "--set", "infer.mcmc_samples=6",
                           "--set", "infer.mcmc_warmup=4", "--set", "infer.mcmc_depth=3")) == 0
    a = arrays(out)
    assert a["coarse_done"].all() and a["coarse_theta"].shape == (2, 9, 2) and a["chain"].shape == (1, 6, 2)
    assert np.all((a["chain"][..., 0] > 0.1) & (a["chain"][..., 0] < 0.5))
    assert "mcmc" in json.loads(out.with_suffix(".json").read_text())


def cmd(model, store, out, *extra, nproc: int = 1) -> list[str]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
                if nproc > 1 else [sys.executable, "-m"])
    return launcher + ["hpc_vdm.infer", *args(model, store, out, *extra)]


@pytest.mark.slow
def test_two_ranks_write_the_store_one_rank_writes(emu_model, emu_store, tmp_path):
    extra = ("--centre", "coarse", "--set", "infer.coarse=[3,3]")
    for name, nproc in (("one.zarr", 1), ("two.zarr", 2)):
        proc = subprocess.run(cmd(emu_model, emu_store, tmp_path / name, *extra, nproc=nproc), env=clean_env(),
                              capture_output=True, text=True, timeout=600, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1/2" in proc.stderr
    one, two = arrays(tmp_path / "one.zarr"), arrays(tmp_path / "two.zarr")
    assert one.keys() == two.keys()
    for name in one:  # float32 networks: the same batch on another process rounds alike to ~1e-6
        if name.endswith("terms"):
            np.testing.assert_allclose(two[name], one[name], rtol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(two[name], one[name], err_msg=name)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_store(emu_model, emu_store, tmp_path):
    slow = ("--grid", "8,8", "--batch-size", "4", "--times", "4")
    whole = tmp_path / "whole.zarr"
    subprocess.run(cmd(emu_model, emu_store, whole, *slow), env=clean_env(), check=True, capture_output=True,
                   timeout=600, cwd=REPO)
    out = tmp_path / "killed.zarr"
    kill_when(cmd(emu_model, emu_store, out, *slow),
              lambda: (out / "done").exists() and arrays(out)["done"].sum() >= 5, env=clean_env(), cwd=REPO)
    n_done = arrays(out)["done"].sum()
    assert 5 <= n_done < 32, n_done
    rerun = subprocess.run(cmd(emu_model, emu_store, out, *slow), env=clean_env(), capture_output=True, text=True,
                           timeout=600, cwd=REPO)
    assert rerun.returncode == 0 and "resuming" in rerun.stderr, rerun.stderr[-3000:]
    ours, theirs = arrays(out), arrays(whole)
    assert ours.keys() == theirs.keys()
    for name in ours:
        if name == "terms":
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    assert json.loads(out.with_suffix(".json").read_text())["bound"]["maps"][0]["map"] == 0


# -- bad input: one clear error, nothing written ----------------------------------------------------------------
def other_store(tmp_path, name: str, *, pixels: int, box: float) -> str:
    from hpc_vdm.prepare import prepare

    root = tmp_path / f"cmd_{name}"
    root.mkdir()
    write_cmd(root, n_sims=2, pixels=pixels)
    cfg = load_config(None, [f"data.source_dir={root}", f"data.store={tmp_path / name}", "data.fields=[Mcdm]",
                             "data.condition=''", f"data.box_mpc_h={box}", "data.split_fractions=[1.0,0.0,0.0]"])
    return str(prepare(cfg, progress=False))


@pytest.fixture(scope="module")
def bad_inputs(emu_store, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    attrs = store_attrs(emu_store)
    attrs["stats"] = {**attrs["stats"], "Mstar": attrs["stats"]["Mcdm"]}  # map-conditioned models read a condition
    no_params = base / "no_params.zarr"
    shutil.copytree(emu_store, no_params)
    root = zarr.open_group(str(no_params), mode="r+")
    root["params"][:] = np.nan
    return {"vdm": str(export_tiny(base / "vdm.pt", attrs, model={"params": PARAMS, "channel_mults": [1, 2]})),
            "plain": str(export_tiny(base / "plain.pt", attrs, kind="regressor", model={"channel_mults": [1, 2]})),
            "scale": other_store(base, "scale.zarr", pixels=32, box=50.0),
            "size": other_store(base, "size.zarr", pixels=16, box=12.5), "no_params": str(no_params)}


@pytest.mark.parametrize("case, message", [
    ("vdm", r"is a vdm model conditioned on maps of Mstar; python -m hpc_vdm.infer needs a model of maps from "
            r"parameters alone"),
    ("plain", r"is a regressor model conditioned on maps of Mstar"),
    ("box", r"the grid of Omega_m spans \[0.05, 0.3\], outside its prior \[0.1, 0.5\]"),
    ("centre", r"the grid's centre sigma_8=1.2 lies outside its prior \[0.6, 1\]"),
    ("scale", r"pixel scale mismatch: the model was trained on 0.78125 Mpc/h pixels, input store .* has 1.5625"),
    ("size", r"holds maps of 16\^2 pixels; the model was trained on 32\^2 maps"),
    ("no_params", r"has no parameters for maps \[0, 20\], but infer.centre=truth needs them"),
    ("terms", r"infer.terms \[5\] are not terms of infer.times=2"),
])
def test_bad_input_is_one_clear_error_before_anything_is_written(case, message, emu_model, emu_store, bad_inputs,
                                                                  tmp_path, capsys):
    model, store, extra = emu_model, emu_store, []
    if case in ("vdm", "plain"):
        model = bad_inputs[case]
    elif case in ("scale", "size", "no_params"):
        store = bad_inputs[case]
    elif case == "box":
        extra = ["--box", "0.05,0.3,0.7,0.9"]
    elif case == "centre":
        extra = ["--centre", "given", "--set", "infer.centre_at=[0.3,1.2]"]
    elif case == "terms":
        extra = ["--set", "infer.terms=[5]"]
    out = tmp_path / "out.zarr"
    assert infer.main(args(model, store, out, *extra)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and __import__("re").search(message, err), err
    assert not out.exists() and not out.with_suffix(".json").exists() and not out.with_suffix(".png").exists()
    assert not list(tmp_path.glob("*.lock"))
