"""The mock's new outputs: halo/galaxy catalogues, N-body twin maps, 3D grids; workers and bad input."""
import hashlib

import h5py
import numpy as np
import pytest

from helpers import cross_r_2d, files
from hpc_vdm.config import load_config
from hpc_vdm.data import camels
from hpc_vdm.data.store import open_store
from hpc_vdm.mock import catalogue, stars
from hpc_vdm.mock.cli import generate
from hpc_vdm.prepare import prepare


@pytest.fixture(scope="module")
def full_set(tmp_path_factory):
    """Two 64^3 simulations with every output on."""
    root = tmp_path_factory.mktemp("full")
    cfg = load_config(None, [f"mock.out_dir={root}", "mock.n_sims=2", "mock.nbody=true", "mock.grids=[32, 64]",
                             "mock.map_pixels=128"])
    return cfg, generate(cfg, progress=False)


def test_every_output_is_written_in_the_cmd_layout(full_set):
    cfg, paths = full_set
    root = cfg.mock.out_dir
    assert paths["Mtot_Nbody"] == camels.maps_path(root, "Mtot", "Nbody_IllustrisTNG", "LH")
    assert paths["Mtot_Nbody"].name == "Maps_Mtot_Nbody_IllustrisTNG_LH_z=0.00.npy"
    assert paths["grid_Mstar_64"].name == "Grids_Mstar_IllustrisTNG_LH_64_z=0.00.npy"
    assert np.load(paths["Mtot_Nbody"]).shape == (30, 128, 128)
    for n in (32, 64):
        for f in ("Mcdm", "Mstar", "Msubhalo", "Mtot"):
            g = np.load(paths[f"grid_{f}_{n}"], mmap_mode="r")
            assert g.shape == (2, n, n, n) and g.dtype == np.float32
    assert sorted(p.name for p in paths["catalogues"].iterdir()) == ["fof_subhalo_tab_0000.hdf5",
                                                                     "fof_subhalo_tab_0001.hdf5"]


def test_nbody_twin_matches_hydro_dm_on_large_scales_in_the_same_order(full_set):
    cfg, paths = full_set
    hydro, twin = np.load(paths["Mcdm"]).astype(np.float64), np.load(paths["Mtot_Nbody"]).astype(np.float64)
    params = camels.load_params(cfg.mock.out_dir, "IllustrisTNG", "LH")
    for sim, row in enumerate(params):  # total matter vs cold dark matter: per axis, Omega_m / Omega_cdm
        per_axis = lambda m: m[15 * sim:15 * sim + 15].reshape(3, -1).mean(axis=1)  # noqa: E731
        np.testing.assert_allclose(per_axis(twin) / per_axis(hydro), row[0] / (row[0] - camels.OMEGA_B), rtol=1e-5)
    k = np.arange(1, 64) * 2 * np.pi / 25.0
    r = np.array([cross_r_2d(a / a.mean() - 1, b / b.mean() - 1) for a, b in zip(hydro, twin)])  # (30, 63)
    assert r[:, k < 1.0].min() > 0.99  # the same region, map for map
    shuffled = np.array([cross_r_2d(a / a.mean() - 1, b / b.mean() - 1) for a, b in zip(hydro, twin[::-1])])
    assert shuffled[:, k < 1.0].mean() < 0.5  # a different map order would not correlate
    assert not np.allclose(hydro * row[0] / (row[0] - camels.OMEGA_B), twin, rtol=1e-3)  # feedback moved DM


def test_prepare_reads_the_nbody_twins_as_a_field(full_set, tmp_path):
    """DM -> galaxies (Sether+24) trains on the N-body maps: 'Mtot_Nbody' is the twin file of the suite."""
    cfg, paths = full_set
    run = load_config(None, [f"data.source_dir={cfg.mock.out_dir}", f"data.store={tmp_path / 'nbody.zarr'}",
                             "data.fields=[Mtot_Nbody, Mstar]", "data.condition=Mtot_Nbody", "data.target=Mstar",
                             "data.split_fractions=[0.5, 0.5, 0.0]", "data.log_offsets={Mtot_Nbody: 0.0, Mstar: 1.0}"])
    root = open_store(prepare(run, progress=False))
    assert root.attrs["fields"] == ["Mtot_Nbody", "Mstar"]
    np.testing.assert_array_equal(root["Mtot_Nbody"][:], np.load(paths["Mtot_Nbody"]))
    np.testing.assert_array_equal(root["Mstar"][:], np.load(paths["Mstar"]))
    assert root.attrs["stats"]["Mtot_Nbody"]["offset"] == 0.0


def test_catalogue_is_subfind_shaped_and_consistent_with_the_maps(full_set):
    cfg, paths = full_set
    params = camels.load_params(cfg.mock.out_dir, "IllustrisTNG", "LH")
    mstar_maps = np.load(paths["Mstar"]).astype(np.float64)
    pixel_area = (25.0 / 128) ** 2
    for sim in range(2):
        path = camels.catalogue_path(cfg.mock.out_dir, "IllustrisTNG", "LH", sim)
        with h5py.File(path, "r") as f:  # plain h5py, TNG names and units
            assert f["Header"].attrs["BoxSize"] == 25000.0
            glen, gmass = f["Group/GroupLen"][:], f["Group/GroupMass"][:]
            first, nsubs = f["Group/GroupFirstSub"][:], f["Group/GroupNsubs"][:]
            grnr, central = f["Subhalo/SubhaloGrNr"][:], f["Subhalo/SubhaloIsCentral"][:]
            sub_mstar = f["Subhalo/SubhaloMassType"][:, 4].astype(np.float64) * 1e10
            assert f["Subhalo/SubhaloPos"].shape == (grnr.size, 3)
            assert f["Group/GroupEnvironment"].shape == glen.shape and (f["Group/GroupEnvironment"][:] > 0).all()
            assert np.isfinite(f["Group/GroupConcentration"][:]).all()  # the assembly-bias properties (mock extras)
            assert (f["Subhalo/SubhaloPos"][:] >= 0).all() and (f["Subhalo/SubhaloPos"][:] < 25000).all()
        m_p = params[sim, 0] * camels.RHO_CRIT * 25.0**3 / 64**3
        np.testing.assert_allclose(gmass * 1e10, glen * m_p, rtol=1e-6)
        assert (np.diff(glen) <= 0).all() and glen.min() >= 20
        assert (grnr[first] == np.arange(glen.size)).all() and central[first].all()
        assert nsubs.sum() == (grnr >= 0).sum() and (central[grnr < 0] == 1).all()
        assert (central == 1).sum() == glen.size + (grnr < 0).sum()
        block = mstar_maps[15 * sim:15 * sim + 15].reshape(3, 5, -1).sum(axis=(1, 2)) * pixel_area
        np.testing.assert_allclose(block, sub_mstar.sum(), rtol=1e-4)  # every star is some galaxy's
    assert catalogue.read(path)["Group/GroupPos"].shape == (glen.size, 3)


def test_grids_hold_the_mass_of_the_box(full_set):
    cfg, paths = full_set
    params = camels.load_params(cfg.mock.out_dir, "IllustrisTNG", "LH")
    for n in (32, 64):
        voxel = (25.0 / n) ** 3
        mcdm = np.load(paths[f"grid_Mcdm_{n}"]).astype(np.float64)
        mtot = np.load(paths[f"grid_Mtot_{n}"]).astype(np.float64)
        np.testing.assert_allclose(mcdm.mean(axis=(1, 2, 3)), (params[:, 0] - camels.OMEGA_B) * camels.RHO_CRIT,
                                   rtol=1e-5)
        np.testing.assert_allclose(mtot.mean(axis=(1, 2, 3)), params[:, 0] * camels.RHO_CRIT, rtol=1e-5)
        stars_2d = np.load(paths["Mstar"]).astype(np.float64)[:15].sum() / 3 * (25.0 / 128) ** 2
        assert np.load(paths[f"grid_Mstar_{n}"])[0].sum(dtype=np.float64) * voxel == pytest.approx(stars_2d, rel=1e-4)


def test_workers_do_not_change_the_files(tmp_path):
    digests = []
    for w in (1, 2):
        cfg = load_config(None, [f"mock.out_dir={tmp_path}/w{w}", "mock.n_sims=2", "mock.particles=32",
                                 "mock.map_pixels=32", f"mock.workers={w}", "mock.nbody=true", "mock.grids=[16]"])
        paths = generate(cfg, progress=False)
        digests.append({k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items() if p.is_file()})
    assert digests[0] == digests[1]


@pytest.mark.parametrize("override, message", [
    ("mock.grids=[4]", r"mock.grids: expected grid sizes in \[8, 2048\], got 4"),
    ("mock.grids=[32, 32]", r"mock.grids: sizes must be distinct, got \[32, 32\]"),
])
def test_bad_grid_sizes_are_refused_before_anything_is_written(tmp_path, override, message):
    cfg = load_config(None, [f"mock.out_dir={tmp_path}/out", "mock.n_sims=1", override])
    with pytest.raises(ValueError, match=message):
        generate(cfg, progress=False)
    assert not (tmp_path / "out").exists()


def test_hydro_expansion_grows_with_feedback():
    tng = stars.SUITES["IllustrisTNG"]
    assert tng.expansion(1.0, 4.0) > tng.expansion(1.0, 1.0) > tng.expansion(1.0, 0.25) > 0
    assert stars.SUITES["SIMBA"].expansion(1, 1) > tng.expansion(1, 1) > stars.SUITES["Astrid"].expansion(1, 1)


def test_overwrite_replaces_only_what_the_mock_wrote(tmp_path):
    """--overwrite replaces the mock's own files; a user's file under an output name is never replaced."""
    import hashlib

    from hpc_vdm.mock import cli as mock_cli

    out = tmp_path / "cmd"
    argv = ["--out", str(out), "--n-sims", "1", "--particles", "16", "--pm-steps", "2", "--pixels", "32"]
    assert mock_cli.main(argv) == 0
    assert mock_cli.main(argv) == 2                                    # exists, no --overwrite
    assert mock_cli.main(argv + ["--overwrite"]) == 0                   # its own files: replaced
    target = next(out.glob("Maps_Mcdm_*.npy"))
    target.write_bytes(b"the user's own file")                          # someone else's bytes under that name
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert mock_cli.main(argv + ["--overwrite"]) == 2
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()} == before
    (tmp_path / "fig.png").write_bytes(b"not ours")
    assert mock_cli.main(["--out", str(tmp_path / "b"), "--n-sims", "1", "--particles", "16", "--pm-steps", "2",
                          "--pixels", "32", "--preview", str(tmp_path / "fig.png"), "--overwrite"]) == 2
    assert (tmp_path / "fig.png").read_bytes() == b"not ours" and not (tmp_path / "b").exists()


def test_a_second_writer_of_one_mock_set_is_refused(tmp_path, capsys):
    from hpc_vdm.data import camels
    from hpc_vdm.io import acquire_lock
    from hpc_vdm.mock import cli as mock_cli

    out = tmp_path / "cmd"
    out.mkdir()
    with acquire_lock(camels.params_path(out, "IllustrisTNG", "LH")):  # this live process holds the set
        assert mock_cli.main(["--out", str(out), "--n-sims", "1", "--particles", "16", "--pm-steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "is being written by another command" in err and "Traceback" not in err
    assert not list(out.glob("Maps_*"))


class Killed(BaseException):
    """Stands for a SIGKILL at one point of a run (BaseException: nothing catches it as an error)."""


@pytest.mark.parametrize("where", ["after the first simulation", "between two moves into place",
                                   "after the moves, before the record", "while the stage is removed"])
def test_a_run_killed_anywhere_reruns_to_the_uninterrupted_files(tmp_path, monkeypatch, where):
    """Killed mid-set, mid-move or mid-clean-up, the same command (no --overwrite) ends with the files of one run."""
    from pathlib import Path

    from hpc_vdm.mock import cli as mock_cli

    def cfg(out):
        return load_config(None, [f"mock.out_dir={out}", "mock.n_sims=3", "mock.particles=16", "mock.pm_steps=2",
                                  "mock.map_pixels=32", "mock.grids=[8]"])

    generate(cfg(tmp_path / "whole"), progress=False)
    target, name, allowed = {"after the first simulation": (mock_cli, "_store", 1),
                             "between two moves into place": (mock_cli, "_staged", 1),  # one call per output
                             "after the moves, before the record": (mock_cli, "write_record", 0),
                             "while the stage is removed": (Path, "rmdir", 0)}[where]
    real, calls = getattr(target, name), []

    def killed_after(*a, **k):
        calls.append(1)
        if len(calls) > allowed:
            raise Killed(where)
        return real(*a, **k)

    monkeypatch.setattr(target, name, killed_after)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        generate(cfg(out), progress=False)
    monkeypatch.undo()
    assert list(out.glob(".mock-partial-*"))  # something staged to resume from (or, at the very end, an empty stage)
    if where == "while the stage is removed":  # the run had finished: a rerun refuses, as after any finished run
        with pytest.raises(FileExistsError, match="output exists"):
            generate(cfg(out), progress=False)
    else:
        generate(cfg(out), progress=False)
    assert files(out) == files(tmp_path / "whole")


def test_finishing_a_killed_move_never_replaces_a_file_the_user_put_there(tmp_path, monkeypatch):
    from hpc_vdm.mock import cli as mock_cli

    cfg = load_config(None, [f"mock.out_dir={tmp_path}", "mock.n_sims=1", "mock.particles=16", "mock.pm_steps=2",
                             "mock.map_pixels=32"])
    real, calls = mock_cli._staged, []

    def killed_after_the_first_move(*a):  # _place asks where each output waits, then moves it
        calls.append(1)
        if len(calls) > 1:
            raise Killed("mid-move")
        return real(*a)

    monkeypatch.setattr(mock_cli, "_staged", killed_after_the_first_move)
    with pytest.raises(Killed):
        generate(cfg, progress=False)
    monkeypatch.undo()
    pending = [p for p in mock_cli.output_paths(cfg).values() if not p.exists()]
    pending[0].write_bytes(b"the user's own file")  # put there after the kill, before the rerun
    with pytest.raises(FileExistsError, match="not files this project wrote"):
        generate(cfg, progress=False)
    assert pending[0].read_bytes() == b"the user's own file"
