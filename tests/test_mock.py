import hashlib

import numpy as np
import pytest

from helpers import cross_r_2d, power_2d
from hpc_vdm.config import load_config
from hpc_vdm.data import camels
from hpc_vdm.mock import galaxies, simulate, stars
from hpc_vdm.mock.cli import generate, output_paths


def _digest(paths):
    """sha256 of every output file (a folder: of each file in it, by name)."""
    out = {}
    for k, p in paths.items():
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        out[k] = [(f.name, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]
    return out


def test_fixed_seed_gives_identical_files(tmp_path):
    cfgs = [load_config(None, [f"mock.out_dir={tmp_path}/{d}", "mock.n_sims=1", "mock.seed=11"]) for d in "ab"]
    a, b = (_digest(generate(c, progress=False)) for c in cfgs)
    assert a == b
    other = load_config(None, [f"mock.out_dir={tmp_path}/c", "mock.n_sims=1", "mock.seed=12"])
    assert _digest(generate(other, progress=False))["Mcdm"] != a["Mcdm"]


def test_cmd_layout_shapes_and_units(mock_cfg, mock_files):
    n = mock_cfg.mock.n_sims
    for field in ("Mstar", "Mcdm"):
        maps = np.load(mock_files[field], mmap_mode="r")
        assert mock_files[field].name == f"Maps_{field}_IllustrisTNG_LH_z=0.00.npy"
        assert maps.shape == (15 * n, 256, 256) and maps.dtype == np.float32
    params = camels.load_params(mock_cfg.mock.out_dir, "IllustrisTNG", "LH")
    assert params.shape == (n, 6)
    for j, name in enumerate(camels.PARAM_NAMES):
        lo, hi = camels.PARAM_RANGES[name]
        assert ((params[:, j] >= lo) & (params[:, j] <= hi)).all()


def test_mcdm_mean_is_the_cosmic_mean(mock_cfg, mock_files):
    """Every simulation's maps (and every axis's 5 slabs) average to (Omega_m - Omega_b) rho_crit 5 Mpc/h."""
    maps = np.load(mock_files["Mcdm"], mmap_mode="r")
    params = camels.load_params(mock_cfg.mock.out_dir, "IllustrisTNG", "LH")
    for sim, row in enumerate(params):
        expected = camels.mean_surface_density(row[0])
        per_axis = np.asarray(maps[sim * 15:(sim + 1) * 15], dtype=np.float64).reshape(3, 5, -1).mean(axis=(1, 2))
        np.testing.assert_allclose(per_axis, expected, rtol=1e-3)


def test_fiducial_mean_matches_reference_value():
    assert camels.mean_surface_density(0.3) == pytest.approx(3.483e11, rel=1e-3)


def test_maps_look_like_cdm_and_stars(mock_files):
    mcdm = np.load(mock_files["Mcdm"], mmap_mode="r")[:15].astype(np.float64)
    mstar = np.load(mock_files["Mstar"], mmap_mode="r")[:15].astype(np.float64)
    assert (mcdm > 0).all(), "the adaptive DM kernel leaves no empty pixel"
    log_cdm = np.log10(mcdm)
    assert 0.25 < log_cdm.std() < 0.8 and log_cdm.max() - np.median(log_cdm) > 1.0  # skewed, web-like
    zero_fraction = (mstar == 0).mean()
    assert 0.9 < zero_fraction < 0.999, zero_fraction  # sparse stellar maps: galaxies are points (CMD: ~99%)
    ratio = mstar.sum() / mcdm.sum()
    assert 1e-3 < ratio < 5e-2, ratio
    r = np.mean([cross_r_2d(mstar[i] / mstar[i].mean() - 1, mcdm[i] / mcdm[i].mean() - 1) for i in range(15)], axis=0)
    assert r[:8].mean() > 0.6, r[:8]  # stars trace DM on large scales


def _pk_of(params_row, cfg, seed=3):
    maps = simulate.simulate(np.asarray(params_row, float), cfg, stars.SUITES["IllustrisTNG"],
                             np.random.SeedSequence([seed]))
    m = maps["Mcdm"].astype(np.float64)
    delta = m / m.mean(axis=(1, 2), keepdims=True) - 1
    k, pk = power_2d(delta, cfg.box_mpc_h)
    return k, pk.mean(axis=0), maps


@pytest.fixture(scope="module")
def small_cfg():
    return load_config(None, ["mock.map_pixels=128"]).mock


def test_dm_power_rises_with_sigma8_and_omega_m(small_cfg):
    fid = [0.3, 0.8, 1, 1, 1, 1]
    k, p_fid, _ = _pk_of(fid, small_cfg)
    _, p_s8, _ = _pk_of([0.3, 1.0, 1, 1, 1, 1], small_cfg)
    _, p_om, _ = _pk_of([0.5, 0.8, 1, 1, 1, 1], small_cfg)
    band = (k > 0.5) & (k < 8)
    assert (p_s8[band] > p_fid[band]).all()
    assert p_om[band].mean() > p_fid[band].mean()


def test_stellar_mass_responds_to_feedback_and_suite(small_cfg):
    base = [0.3, 0.8, 1, 1, 1, 1]
    seed = np.random.SeedSequence([5])
    tot = lambda row, suite="IllustrisTNG": simulate.simulate(np.asarray(row, float), small_cfg, stars.SUITES[suite],
                                                               seed)["Mstar"].sum(dtype=np.float64)
    fid = tot(base)
    assert tot([0.3, 0.8, 4.0, 1, 1, 1]) < fid  # more SN feedback, fewer stars
    assert tot([0.3, 0.8, 1, 1, 2.0, 1]) < fid
    simba = simulate.simulate(np.asarray(base, float), small_cfg, stars.SUITES["SIMBA"], seed)
    tng = simulate.simulate(np.asarray(base, float), small_cfg, stars.SUITES["IllustrisTNG"], seed)
    # same gravity and mass; the suites' feedback expands halo dark matter differently (small scales only)
    per_axis = lambda m: m.reshape(3, -1).mean(axis=1, dtype=np.float64)  # noqa: E731 (slabs exchange mass)
    np.testing.assert_allclose(per_axis(simba["Mcdm"]), per_axis(tng["Mcdm"]), rtol=1e-5)
    assert not np.array_equal(simba["Mcdm"], tng["Mcdm"])
    r = np.mean([cross_r_2d(a / a.mean() - 1, b / b.mean() - 1) for a, b in zip(simba["Mcdm"], tng["Mcdm"])], axis=0)
    assert r[:4].min() > 0.99, r[:4]
    assert simba["Mstar"].sum(dtype=np.float64) != tng["Mstar"].sum(dtype=np.float64)


def test_fill_in_halos_follow_the_mass_function_on_ungrouped_particles():
    """unresolved_halos against its analytic oracle: Poisson counts of hmf x volume less the FoF groups
    found, on ungrouped particles only, with anchor odds (1 + delta)^FILL_BIAS."""
    hmf = lambda m: 1e-2 * (m / 1e10) ** -0.9  # noqa: E731  dn/dln M [(Mpc/h)^-3]
    m_lo, m_hi, volume = 1e9, 1e11, 100.0**3
    expected = 1e-2 * volume * (0.1**-0.9 - 10**-0.9) / 0.9  # integral of hmf over ln M, [m_lo, m_hi)
    n = 40_000
    labels = np.where(np.arange(n) % 2 == 0, 0, -1)  # even particles grouped
    density = np.where(np.arange(n) % 4 < 2, 1.0, 8.0)  # odd free particles: 1, 3 (mod 4) at 1 and 8
    found = np.full(5000, 1.05e9)  # 5000 FoF groups in the first bin (~11,000 expected) come off it
    masses, anchors = galaxies.unresolved_halos(hmf, m_lo, m_hi, volume, labels, density,
                                                np.random.default_rng(0), found)
    assert abs(masses.size - (expected - 5000)) < 4 * np.sqrt(expected), (masses.size, expected)
    assert masses.min() >= m_lo and masses.max() < m_hi
    assert np.all(labels[anchors] < 0)
    odds = 8.0**galaxies.FILL_BIAS
    p_dense = odds / (1 + odds)
    assert abs(np.mean(density[anchors] == 8.0) - p_dense) < 4 * np.sqrt(p_dense * (1 - p_dense) / anchors.size)


def test_parameter_sets():
    cv = simulate.parameter_table(load_config(None, ["mock.set=CV", "mock.n_sims=3"]).mock)
    assert np.allclose(cv, [camels.FIDUCIAL[n] for n in camels.PARAM_NAMES])
    one_p = simulate.parameter_table(load_config(None, ["mock.set=1P", "mock.n_1p_values=3"]).mock)
    assert one_p.shape == (18, 6)
    for j in range(6):
        block = one_p[3 * j:3 * j + 3]
        varied = np.ptp(block, axis=0) > 0
        assert varied.tolist() == [i == j for i in range(6)]
    lh = simulate.parameter_table(load_config(None, ["mock.n_sims=50"]).mock)
    # Latin hypercube: each of 50 equal bins of every (log-)range holds exactly one simulation
    for j, name in enumerate(camels.PARAM_NAMES):
        lo, hi = camels.PARAM_RANGES[name]
        u = np.log(lh[:, j] / lo) / np.log(hi / lo) if name in camels.LOG_PARAMS else (lh[:, j] - lo) / (hi - lo)
        assert sorted(np.floor(u * 50).astype(int)) == list(range(50))
    a = load_config(None, ["mock.set=1P"]).mock
    assert simulate.sim_seed(a, 0).entropy == simulate.sim_seed(a, 7).entropy  # 1P shares initial conditions


def test_interrupted_run_leaves_no_output_and_resumes_to_identical_files(tmp_path, monkeypatch):
    cfg = load_config(None, [f"mock.out_dir={tmp_path}/a", "mock.n_sims=3", "mock.map_pixels=64"])
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = simulate.simulate
    monkeypatch.setattr(simulate, "simulate", boom)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, progress=False)
    assert [p.name.startswith(".mock-partial-") for p in (tmp_path / "a").iterdir()] == [True]  # staging only
    assert not any(p.exists() for p in output_paths(cfg).values())
    calls.clear()
    monkeypatch.setattr(simulate, "simulate", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = _digest(generate(cfg, progress=False))
    assert len(calls) == 1  # only the simulation that was interrupted runs again
    assert list((tmp_path / "a").glob(".mock-partial-*")) == []
    fresh = load_config(None, [f"mock.out_dir={tmp_path}/b", "mock.n_sims=3", "mock.map_pixels=64"])
    monkeypatch.setattr(simulate, "simulate", real)
    assert _digest(generate(fresh, progress=False)) == resumed


def test_existing_output_is_kept_without_overwrite(tmp_path):
    cfg = load_config(None, [f"mock.out_dir={tmp_path}", "mock.n_sims=1", "mock.map_pixels=32"])
    paths = output_paths(cfg)
    paths["Mcdm"].write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate(cfg, progress=False)
    assert paths["Mcdm"].read_bytes() == b"precious" and not paths["Mstar"].exists()


def test_cli_writes_preview(tmp_path):
    from hpc_vdm.mock.cli import main

    png = tmp_path / "preview.png"
    assert main(["--out", str(tmp_path / "cmd"), "--n-sims", "1", "--pixels", "64", "--preview", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
