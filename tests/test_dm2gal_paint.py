"""`python -m hpc_vdm.paint`: the dense out-of-core paint equals the patch network voxel by voxel; resumable;
ranks split blocks; every bad input is one clear error before anything is written."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from helpers import clean_env, kill_when
from test_dm2gal_data import REPO, write_volume
from test_dm2gal_model import per_voxel, random_net
from hpc_vdm import dist, paint
from hpc_vdm.bundle import write_export
from hpc_vdm.config import load_config, to_dict
from hpc_vdm.data import volume as vol
from hpc_vdm.families import dm2gal as dm2gal_family
from hpc_vdm.families import make_family
from hpc_vdm.inference import paint as painter

TEST_CFG = REPO / "configs" / "dm2gal_test.yaml"


def export_random(store, path: Path, *sets) -> Path:
    """A dm2gal export with random weights (and random BatchNorm statistics) on ``store``."""
    cfg = load_config(TEST_CFG, [f"data.store={store}", *sets])
    attrs = make_family(cfg).check()
    net = random_net(4, channels=4, hidden=16, patch=17, kernels=(3, 3, 3, 3, 3), strides=(1, 2, 1, 1, 2),
                     widths=(1, 2, 2, 2, 4)).float()
    state = net.state_dict()
    return write_export(path, raw=state, ema=state, config=to_dict(cfg), store_attrs=attrs, step=0, tag="random")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paint")
    store = write_volume(tmp, 32)
    return store, export_random(store, tmp / "model.pt"), tmp


def args(model, store, out, *extra):
    return ["--config", str(TEST_CFG), "--model", str(model), "--volume", str(store), "--out", str(out),
            "--set", "paint.progress=false", *extra]


def read(out) -> dict:
    root = zarr.open_group(str(out), mode="r")
    return {"stellar": root["stellar"][:], "done": root["done"][:], "complete": root.attrs["complete"]}


@pytest.fixture(scope="module")
def painted(setup):
    store, model, tmp = setup
    out = tmp / "whole.zarr"
    assert paint.main(args(model, store, out)) == 0
    return out


def test_paint_equals_the_patch_network_voxel_by_voxel(setup, painted):
    store, model, _ = setup
    got = read(painted)
    assert got["complete"] and got["done"].all() and Path(str(painted).replace(".zarr", ".png")).is_file()
    root = vol.open_volume(store, need=vol.FIELDS)
    stats = root.attrs["stats"]
    inputs = np.stack([vol.normalise(root[f][:], stats[f]) for f in vol.INPUTS]).astype(np.float64)
    net = random_net(4, channels=4, hidden=16, patch=17, kernels=(3, 3, 3, 3, 3), strides=(1, 2, 1, 1, 2),
                     widths=(1, 2, 2, 2, 4))
    voxels = [(0, 0, 0), (31, 31, 31), (0, 31, 5)] + [tuple(v) for v in np.random.default_rng(0).integers(0, 32, (200, 3))]
    ref = vol.denormalise(per_voxel(net, inputs, voxels), stats["stellar"])
    ref = np.where(root["subhalo"][:][tuple(np.array(voxels).T)] > 0, ref, 0.0)   # the subhalo mask
    np.testing.assert_allclose(got["stellar"][0][tuple(np.array(voxels).T)], ref, rtol=2e-4)
    assert (got["stellar"][0] > 0).sum() == (root["subhalo"][:] > 0).sum()


def test_two_ranks_give_the_one_rank_store(setup, painted, tmp_path):
    store, model, _ = setup
    out = tmp_path / "r.zarr"
    cfg = load_config(TEST_CFG, [f"trained.model={model}", f"paint.volume={store}", f"paint.out={out}"])
    job = painter.job(cfg, painter.plan(cfg), torch.device("cpu"))
    job.store.create(job.layout, {"fingerprint": job.fingerprint})
    root = job.store.open()
    second = dist.share(job.units, 1, 2)
    job.work(root, second, False)
    assert 0 < read(out)["done"].sum() == len(second) < len(job.units)
    job.work(root, dist.share(job.units, 0, 2), False)
    np.testing.assert_array_equal(read(out)["stellar"], read(painted)["stellar"])


def test_interrupted_paint_reruns_to_the_uninterrupted_store(setup, painted, tmp_path, monkeypatch):
    store, model, _ = setup
    out = tmp_path / "killed.zarr"
    real = dm2gal_family.tile_apply

    def dies_after_five(*a, done=None, **kw):
        calls = []

        def record(t):
            if len(calls) == 5:
                raise KeyboardInterrupt("killed")
            calls.append(t)
            done(t)
        return real(*a, done=record, **kw)

    monkeypatch.setattr(dm2gal_family, "tile_apply", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        paint.main(args(model, store, out))
    assert read(out)["done"].sum() == 5 and not read(out)["complete"]
    monkeypatch.setattr(dm2gal_family, "tile_apply", real)
    assert paint.main(args(model, store, out)) == 0
    np.testing.assert_array_equal(read(out)["stellar"], read(painted)["stellar"])
    assert read(out)["complete"]


def bad_cases(setup, tmp):
    store, model, _ = setup
    coarse = write_volume(tmp, 16, 1, "volume.box_mpc_h=50", name="coarse.zarr")     # other voxel size
    from hpc_vdm.models import build_regressor
    from hpc_vdm.config import RunConfig

    rcfg = RunConfig()
    rcfg.model.kind = "regressor"
    st = {"offset": 1.0, "mean": 0.0, "std": 1.0}
    other = write_export(tmp / "regressor.pt", raw=build_regressor(rcfg.model).state_dict(),
                         ema=build_regressor(rcfg.model).state_dict(), config=to_dict(rcfg),
                         store_attrs={"stats": {"Mstar": st, "Mcdm": st}}, step=0, tag="x")
    return {"halo": (["--halo", "7"], "smaller than the receptive radius 8"),
            "voxel size": ([], "voxels of 3.125 Mpc/h but the model was trained on 0.78125"),
            "block larger than the volume": (["--block", "64"], "does not divide|larger than the field"),
            "block not dividing": (["--block", "12"], "does not divide the volume's 32"),
            "block memory": (["--block", "32", "--set", "paint.max_block_gb=0.001"], "GB per block"),
            "another family": ([], "needs a dm2gal model, but"),
            "mask truth without stars": (["--mask", "truth"], "lacks fields \\['stellar'\\]")}, coarse, other


def test_bad_inputs_are_one_clear_error_before_anything_is_written(setup, tmp_path, capsys):
    store, model, _ = setup
    cases, coarse, other = bad_cases(setup, tmp_path)
    gravity_only = write_volume(tmp_path, 32, 0, stellar=False, name="dmo.zarr")
    for name, (extra, message) in cases.items():
        out = tmp_path / f"out_{name.replace(' ', '_')}.zarr"
        m = other if name == "another family" else model
        v = coarse if name == "voxel size" else gravity_only if "truth" in name else store
        assert paint.main(args(m, v, out, *extra)) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (name, err)
        import re
        assert re.search(message, err), (name, err)
        assert not out.exists(), name


def test_an_existing_store_of_another_configuration_is_refused(setup, painted, capsys):
    store, model, _ = setup
    assert paint.main(args(model, store, painted, "--block", "16")) == 2
    assert "another configuration" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_under_srun_variables_give_the_one_rank_store(setup, painted, tmp_path):
    store, model, _ = setup
    out = tmp_path / "srun.zarr"
    cmd = [sys.executable, "-m", "hpc_vdm.paint", *args(model, store, out)]
    procs = [subprocess.Popen(cmd, env=clean_env(SLURM_PROCID=str(r), SLURM_STEP_NUM_TASKS="2", SLURM_LOCALID=str(r),
                                                 SLURM_JOB_ID="1", PYTHONPATH=str(REPO)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert "rank 1/2" in errs[1] and "rank 0/2" in errs[0]
    np.testing.assert_array_equal(read(out)["stellar"], read(painted)["stellar"])


@pytest.mark.slow
def test_sigkilled_paint_reruns_to_the_uninterrupted_store(setup, tmp_path):
    store, model, _ = setup
    whole, out = tmp_path / "whole4.zarr", tmp_path / "killed4.zarr"
    env = clean_env(PYTHONPATH=str(REPO))
    cmd = lambda o: [sys.executable, "-m", "hpc_vdm.paint", *args(model, store, o, "--block", "4")]  # noqa: E731
    subprocess.run(cmd(whole), env=env, check=True, capture_output=True, timeout=600)

    def ready():
        try:
            return zarr.open_group(str(out), mode="r")["done"][:].sum() >= 20
        except Exception:  # not created yet
            return False

    kill_when(cmd(out), ready, env=env)
    left = read(out)
    assert not left["complete"] and 20 <= left["done"].sum() < len(left["done"])
    subprocess.run(cmd(out), env=env, check=True, capture_output=True, timeout=600)
    np.testing.assert_array_equal(read(out)["stellar"], read(whole)["stellar"])
    assert read(out)["complete"]


def test_painted_mass_that_overflows_float32_is_refused(setup):
    import dataclasses

    from hpc_vdm.bundle import load_bundle
    from hpc_vdm.data.transforms import LogNorm
    from hpc_vdm.families import DrawSpec, for_bundle

    store, model, _ = setup
    b = load_bundle(model)
    st = b.norm["stellar"]
    b = dataclasses.replace(b, norm={**b.norm, "stellar": LogNorm(st.offset, st.mean, 1e4 * st.std)})
    root = vol.open_volume(store, need=vol.FIELDS)
    spec = DrawSpec(tile=16, halo=b.module.receptive_radius)
    with pytest.raises(ValueError, match=r"^a painted block of 16\^3 voxels: \d+ of 4096 values of the model's draws"):
        for_bundle(b).predict(b, root, mask="subhalo", spec=spec, out=np.zeros((1, 32, 32, 32), np.float32))
