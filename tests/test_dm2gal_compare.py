"""The HOD benchmark and the dm2gal-vs-HOD comparison on a synthetic universe with a halo catalogue."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from test_dm2gal_data import REPO
from hpc_vdm.baselines import compare, hod
from hpc_vdm.config import load_config
from hpc_vdm.data import volume as vol

BOX = 25.0


def universe(n: int = 32, seed: int = 0, n_halos: int = 600):
    """Halos on the peaks of a lognormal field, satellites around them, stars = f(host mass) x environment;
    grids of dark matter (background + halos), subhalos and stars, and the catalogue (mass per voxel)."""
    rng = np.random.default_rng(seed)
    k = np.sqrt(sum(f**2 for f in np.meshgrid(*[np.fft.fftfreq(n)] * 3, indexing="ij")))
    g = np.fft.ifftn(np.fft.fftn(rng.normal(size=(n,) * 3)) * np.exp(-(k * 5) ** 2)).real
    g /= g.std()
    p = np.exp(2 * g).ravel()
    cells = rng.choice(n**3, n_halos, p=p / p.sum())
    voxel = BOX / n
    pos = (np.column_stack(np.unravel_index(cells, (n,) * 3)) + rng.random((n_halos, 3))) * voxel
    log_mh = np.minimum(11.0 + rng.exponential(0.5, n_halos), 13.5)
    env = g.ravel()[cells]
    n_sat = rng.poisson(10 ** (log_mh - 12.3))
    host = np.concatenate([np.arange(n_halos), np.repeat(np.arange(n_halos), n_sat)])
    central = np.arange(host.size) < n_halos
    sub_pos = np.where(central[:, None], pos[host], (pos[host] + rng.normal(0, 0.4, (host.size, 3))) % BOX)
    sub_mass = np.where(central, 10 ** log_mh[host], 10 ** log_mh[host] * rng.uniform(0.01, 0.1, host.size))
    log_ms = 10.0 + 0.8 * np.tanh(log_mh[host] - 12) + 0.3 * env[host] - 0.4 * ~central + rng.normal(0, 0.1, host.size)
    mstar = 10**log_ms
    background = 3e10 * np.exp(0.5 * g)
    grids = {"dm": background + hod.cic_paint(pos, 10**log_mh, n, BOX),
             "subhalo": hod.cic_paint(sub_pos, sub_mass, n, BOX), "stellar": hod.cic_paint(sub_pos, mstar, n, BOX)}
    cat = {"pos": sub_pos, "mass": sub_mass, "mstar": mstar, "grnr": host, "central": central,
           "group_mass": 10**log_mh}
    return {k: v.astype(np.float32) for k, v in grids.items()}, cat


def write_catalogue(path: Path, cat: dict) -> Path:
    with h5py.File(path, "w") as f:
        f["Group/GroupMass"] = (cat["group_mass"] / 1e10).astype(np.float32)
        f["Group/GroupFirstSub"] = np.arange(len(cat["group_mass"]), dtype=np.int32)
        f["Subhalo/SubhaloPos"] = (cat["pos"] * 1e3).astype(np.float32)
        f["Subhalo/SubhaloMass"] = (cat["mass"] / 1e10).astype(np.float32)
        mt = np.zeros((len(cat["mass"]), 6), np.float32)
        mt[:, 4] = cat["mstar"] / 1e10
        f["Subhalo/SubhaloMassType"] = mt
        f["Subhalo/SubhaloGrNr"] = cat["grnr"].astype(np.int32)
    return path


def write_universe(tmp: Path, n: int = 32, seed: int = 0, *sets):
    grids, cat = universe(n, seed)
    files = {}
    for f, a in grids.items():
        files[f] = str(tmp / f"u_{f}.npy")
        np.save(files[f], a)
    catalogue = write_catalogue(tmp / "fof_subhalo_tab_0000.hdf5", cat)
    cfg = load_config(REPO / "configs" / "dm2gal_test.yaml",
                      [f"volume.grids={files}".replace("'", '"'), f"data.store={tmp / 'u.zarr'}",
                       f"baselines.catalogue={catalogue}", f"baselines.out={tmp / 'compare'}", *sets])
    vol.prepare_volume(cfg.volume, cfg.data, cfg.data.store)
    return cfg, cat


def test_catalogue_reads_hosts_centrals_and_units(tmp_path):
    _, cat = universe(16, n_halos=50)
    subs = hod.read_catalogue(write_catalogue(tmp_path / "c.hdf5", cat))
    np.testing.assert_allclose(subs.pos_mpc_h, cat["pos"], rtol=1e-6)
    np.testing.assert_array_equal(subs.central, cat["central"])   # from GroupFirstSub
    np.testing.assert_allclose(subs.host_msun_h, cat["group_mass"][cat["grnr"]], rtol=1e-6)


def test_hod_reproduces_the_binned_stellar_mass_distributions():
    _, cat = universe(16, n_halos=3000)
    subs = hod.Subhalos(cat["pos"], cat["group_mass"][cat["grnr"]], cat["central"], cat["mstar"])
    model = hod.fit_hod(subs, subs, n_bins=10)
    assert model.mass_ratio == pytest.approx(1.0) and model.satellite_ratio == pytest.approx(1.0)
    pos, mass = model.draw(subs, seed=1)
    assert len(mass) == len(subs.mstar_msun_h)
    # per host-mass bin, the drawn centrals' mean log M* matches the fitted one
    b = np.clip(np.searchsorted(model.edges, np.log10(subs.host_msun_h), side="right") - 1, 0, 9)
    for i in range(10):
        sel = (b == i) & subs.central
        if sel.sum() > 50:
            assert abs(np.log10(mass[sel]).mean() - np.log10(subs.mstar_msun_h[sel]).mean()) < 0.05


def test_cic_paint_conserves_mass_and_wraps():
    pos = np.array([[0.01, 12.5, 24.99], [5.0, 5.0, 5.0]])
    grid = hod.cic_paint(pos, np.array([2.0, 3.0]), 8, BOX)
    assert grid.sum() == pytest.approx(5.0) and grid[0, :, 0].sum() > 0 and grid[-1, :, -1].sum() > 0


def test_compare_writes_scores_statistics_and_fig1(tmp_path):
    from test_dm2gal_paint import export_random

    cfg, _ = write_universe(tmp_path, 32)
    model = export_random(cfg.data.store, tmp_path / "model.pt")
    cfg.trained.model = str(model)
    result = compare.compare(cfg)
    assert set(result["scores"]) == {"dm2gal", "hod"}
    assert all(np.isfinite(v) for s in result["scores"].values() for v in s.values())
    saved = json.loads((tmp_path / "compare" / "metrics.json").read_text())
    assert saved["scores"] == result["scores"] and (tmp_path / "compare" / "fig1.png").is_file()
    truth, hod_total = saved["stats"]["truth"]["total_msun_h"], saved["stats"]["hod"]["total_msun_h"]
    # same order as the truth; lower here because the stars of this universe grow with the environment, which
    # an HOD cannot see, and the test cube sits on denser ground than the training region
    assert 0.1 < hod_total / truth < 2.0
