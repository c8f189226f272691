"""Spectra against analytic oracles (white noise, plane waves, mode counts, MAS formula, brute-force triangles)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from hpc_vdm.spectra import (cross_spectrum, cross_spectrum_stack, overdensity, power_spectrum,
                             power_spectrum_stack)
from hpc_vdm.spectra import binning
from hpc_vdm.spectra import fft as sfft
from hpc_vdm.spectra.pk import chunk_size, plan
from hpc_vdm.spectra.stats import bispectrum, pixel_pdf, reduced_chi2, transfer
from hpc_vdm.spectra.volume import volume_spectrum

RNG = np.random.default_rng(42)


@pytest.mark.parametrize("n, d", [(8, 2), (7, 2), (256, 2), (255, 2), (8, 3), (9, 3), (16, 3)])
def test_independent_mode_total(n, d):
    s = 2**d if n % 2 == 0 else 1  # self-conjugate modes
    _, _, n_modes, _ = plan(n, d)
    assert n_modes.sum() + 1 == (n**d - s) // 2 + s  # + the dropped DC mode
    assert n_modes.size == int(np.floor(np.sqrt(d) * (n // 2)))  # bins run to the grid corner


def test_first_bins_match_pylians_reference_values():
    _, _, n_modes, k_over_kf = plan(256, 2)
    np.testing.assert_allclose(k_over_kf[:3], [1.2071, 2.3251, 3.3071], atol=1e-4)
    assert n_modes[:3].tolist() == [4, 8, 10] and n_modes.size == 181
    assert plan(64, 3)[3][0] == pytest.approx(1.416, abs=1e-3)


@pytest.mark.parametrize("shape", [(256, 256), (255, 255), (48, 48, 48)])
def test_white_noise_power_is_variance_times_cell_volume(shape):
    box = 25.0
    x = RNG.normal(0, 2.0, shape)
    ps = power_spectrum(x, box)
    expected = 4.0 * (box / shape[0]) ** len(shape)
    weighted = np.sum(ps.power * ps.n_modes) / ps.n_modes.sum()
    assert weighted == pytest.approx(expected, rel=0.02)
    assert np.all(np.abs(ps.power[ps.n_modes > 200] / expected - 1) < 0.4)


@pytest.mark.parametrize("n, m", [(64, (3, 4)), (63, (5, -2)), (32, (1, 2, 2)), (33, (-4, 0, 3))])
def test_plane_wave_lands_in_one_bin_with_its_amplitude(n, m):
    d, box, amp = len(m), 100.0, 1.7
    idx = np.indices((n,) * d)
    x = amp * np.cos(2 * np.pi * sum(mi * ii for mi, ii in zip(m, idx)) / n)
    ps = power_spectrum(x, box)
    b = int(np.floor(np.sqrt(sum(mi**2 for mi in m)))) - 1
    expected = amp**2 * box**d / (4 * ps.n_modes[b])
    assert ps.power[b] == pytest.approx(expected, rel=1e-10)
    others = np.delete(ps.power, b)
    assert np.abs(others).max() < 1e-20 * expected + 1e-12


@pytest.mark.parametrize("mas, p", [("NGP", 1), ("CIC", 2), ("TSC", 3), ("PCS", 4)])
def test_mas_deconvolution_equals_its_formula(mas, p):
    n, m = 32, (5, 9)
    idx = np.indices((n, n))
    x = np.cos(2 * np.pi * (m[0] * idx[0] + m[1] * idx[1]) / n)
    raw, corrected = power_spectrum(x, 10.0), power_spectrum(x, 10.0, mas=mas)
    b = int(np.floor(np.hypot(*m))) - 1
    formula = np.prod([(np.pi * mi / n / np.sin(np.pi * mi / n)) ** (2 * p) for mi in m])
    assert corrected.power[b] / raw.power[b] == pytest.approx(formula, rel=1e-12)


def test_cross_coefficient_of_self_and_independent_fields():
    a = RNG.standard_normal((128, 128))
    c = cross_spectrum(a, a, 25.0)
    np.testing.assert_allclose(c.r, 1.0, rtol=1e-12)
    np.testing.assert_allclose(c.cross, c.power_a, rtol=1e-12)
    ind = cross_spectrum(a, RNG.standard_normal((128, 128)), 25.0)
    big = ind.n_modes > 100
    assert np.abs(ind.r[big]).max() < 5 / np.sqrt(ind.n_modes[big].min())
    assert abs(np.average(ind.r, weights=ind.n_modes)) < 0.02


def test_float32_stays_float32_through_the_fft():
    x = RNG.standard_normal((64, 64)).astype(np.float32)
    assert sfft.rfftn(x).dtype == np.complex64 and sfft.rfftn(x.astype(np.float64)).dtype == np.complex128
    np.testing.assert_allclose(power_spectrum(x, 1.0).power, power_spectrum(x.astype(np.float64), 1.0).power,
                               rtol=2e-5)


def test_overdensity_helper():
    m = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(overdensity(m), m / 2.0 - 1)
    stack = np.stack([m, 10 * m])
    np.testing.assert_allclose(overdensity(stack, 2), np.stack([m / 2 - 1, m / 2 - 1]))
    with pytest.raises(ValueError, match="zero mean"):
        overdensity(np.zeros((4, 4)))


# float32 maps: a batched FFT on one thread and a single-map FFT on two threads are different FFTW plans,
# which round differently (measured: 3e-8 relative), so batched and one-at-a-time agree to float32
# rounding, not bit for bit.
FLOAT32_FFT_RTOL = 1e-6


def assert_float32_spectra_close(actual, desired):
    """Power spectra from different float32 FFT plans agree to rounding. An FFT's rounding is relative to the
    whole field's norm, not to each mode, so a faint bin (a high-k corner at 1% of the mean power) may differ
    by more than 1e-6 of itself (seen in CI: 1.05e-6): each map's bins are held to rtol plus rtol × its mean
    power."""
    actual, desired = np.atleast_2d(actual), np.atleast_2d(desired)
    scale = np.abs(desired).mean(axis=-1, keepdims=True)  # (n_maps, 1)
    np.testing.assert_array_less(np.abs(actual - desired),
                                 FLOAT32_FFT_RTOL * (np.abs(desired) + scale) + np.finfo(np.float64).tiny)


def test_batched_stack_equals_one_at_a_time():
    maps = RNG.lognormal(0, 1, (10, 40, 40)).astype(np.float32)
    ps = power_spectrum_stack(maps, 25.0, chunk_maps=3, overdensity_of_mass=True, mas="CIC")
    for i in range(10):
        one = power_spectrum(overdensity(maps[i]), 25.0, mas="CIC", threads=2)
        assert_float32_spectra_close(ps.power[i], one.power)
    np.testing.assert_array_equal(ps.k, one.k)
    xs = cross_spectrum_stack(maps, maps[::-1].copy(), 25.0, chunk_maps=4)
    one = cross_spectrum(maps[2], maps[7], 25.0, threads=2)
    # a cross power can be near zero in a bin (it is a sum of signed terms): its rounding is relative to
    # sqrt(P_a P_b), so r and the cross are held to an absolute tolerance on that scale
    np.testing.assert_allclose(xs.r[2], one.r, rtol=0, atol=FLOAT32_FFT_RTOL)
    np.testing.assert_array_less(np.abs(xs.cross[2] - one.cross), FLOAT32_FFT_RTOL * np.sqrt(one.power_a * one.power_b))


def test_stack_chunks_sized_to_the_workers_give_the_same_spectra():
    maps = RNG.standard_normal((37, 64, 64)).astype(np.float32)
    auto = power_spectrum_stack(maps, 25.0)  # chunk_maps None: sized to the cores
    for chunk in (1, 5, 37):
        assert_float32_spectra_close(power_spectrum_stack(maps, 25.0, chunk_maps=chunk).power, auto.power)
    assert_float32_spectra_close(auto.power[11], power_spectrum(maps[11], 25.0).power)
    with pytest.raises(ValueError, match="chunk_maps must be a positive number of maps, got 0"):
        power_spectrum_stack(maps, 25.0, chunk_maps=0)


@pytest.mark.parametrize("n_maps, n, workers, expected", [
    (1000, 256, 2, 250),   # 256 KiB of float32 per map: 4 chunks of <= 64 MiB, a multiple of 2 workers
    (10, 256, 2, 5),       # few maps: one chunk per worker
    (3, 256, 8, 1),        # fewer maps than workers
    (4, 4096, 2, 1),       # 64 MiB per map: one map per task
])
def test_chunk_size_fills_the_workers_within_the_memory_budget(n_maps, n, workers, expected):
    assert chunk_size(n_maps, n, workers) == expected


def test_compiled_binning_equals_bincount():
    a = (RNG.standard_normal((3, 500)) + 1j * RNG.standard_normal((3, 500))).astype(np.complex64)
    c = (RNG.standard_normal((3, 500)) + 1j * RNG.standard_normal((3, 500))).astype(np.complex64)
    bins = RNG.integers(0, 17, 500).astype(np.int32)
    weight = RNG.uniform(1, 2, 500)
    for w in (weight, np.empty(0)):
        ww = w if w.size else np.ones(500)
        p64 = np.abs(a.astype(np.complex128)) ** 2
        expected = np.stack([np.bincount(bins, weights=ww * row, minlength=17) for row in p64])
        np.testing.assert_allclose(binning.bin_power(a, bins, w, 17), expected, rtol=1e-12)
        np.testing.assert_allclose(binning._numpy_auto(a, bins, w, 17), expected, rtol=1e-12)
        x = (a.astype(np.complex128) * np.conj(c.astype(np.complex128))).real
        expected_x = np.stack([np.bincount(bins, weights=ww * row, minlength=17) for row in x])
        np.testing.assert_allclose(binning.bin_cross(a, c, bins, w, 17)[:, 2], expected_x, rtol=1e-10)
        np.testing.assert_allclose(binning._numpy_cross(a, c, bins, w, 17), binning.bin_cross(a, c, bins, w, 17),
                                   rtol=1e-12)


def test_fft_reads_the_input_in_place_and_lets_it_go():
    x = sfft.pyfftw.empty_aligned((32, 32), dtype=np.float32) if sfft.pyfftw else np.empty((32, 32), np.float32)
    x[:] = RNG.standard_normal((32, 32))
    before = x.copy()
    out = sfft.rfftn(x, copy=False)
    np.testing.assert_allclose(out, np.fft.rfftn(before), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(x, before)  # the forward real FFT leaves its input alone
    if sfft.pyfftw:
        plan, own = sfft._plan("rfftn", x.shape, x.dtype, (0, 1), sfft.default_threads())
        assert plan.input_array is own  # the cache keeps no reference to the caller's array


def test_one_inf_pixel_is_caught_from_the_sums():
    x = np.zeros((64, 64), np.float32)
    x[5, 7] = np.inf
    with pytest.raises(ValueError, match="field contains NaN or inf"):
        power_spectrum(x, 1.0)
    with pytest.raises(ValueError, match="b contains NaN or inf"):
        cross_spectrum(np.ones((64, 64)), np.where(np.arange(64) == 3, np.nan, 1.0)[None].repeat(64, 0), 1.0)
    with pytest.raises(ValueError, match="overflows float64"):
        power_spectrum(np.full((8, 8), 1e200) * (-1.0) ** np.arange(8), 1.0)


def test_stack_reads_zarr_directly(tmp_path):
    maps = RNG.standard_normal((6, 32, 32)).astype(np.float32)
    z = zarr.create_array(str(tmp_path / "m.zarr"), shape=maps.shape, chunks=(1, 32, 32), dtype="float32")
    z[:] = maps
    assert_float32_spectra_close(power_spectrum_stack(z, 5.0, chunk_maps=2).power,
                               power_spectrum_stack(maps, 5.0).power)


def test_stack_reads_dask_arrays_in_any_chunking():
    import dask.array as da

    maps = RNG.standard_normal((9, 32, 32)).astype(np.float32)
    lazy = da.from_array(maps, chunks=(4, 16, 32))  # chunks across the map axes too: rechunked per map
    assert_float32_spectra_close(power_spectrum_stack(lazy, 5.0, chunk_maps=3).power,
                               power_spectrum_stack(maps, 5.0, chunk_maps=3).power)
    xs = cross_spectrum_stack(lazy, maps, 5.0, chunk_maps=2, overdensity_of_mass=False)
    np.testing.assert_allclose(xs.r, 1.0, rtol=1e-6)


@pytest.mark.slow
def test_stack_through_a_distributed_cluster_of_two_workers():
    from distributed import Client, LocalCluster

    maps = RNG.standard_normal((8, 32, 32)).astype(np.float32)
    local = power_spectrum_stack(maps, 25.0, chunk_maps=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = power_spectrum_stack(maps, 25.0, chunk_maps=2, scheduler=client)
        assert len(client.scheduler_info()["workers"]) == 2
    assert_float32_spectra_close(remote.power, local.power)  # other processes, other plans


MPI_SCRIPT = """
import sys, numpy as np
import dask_mpi
if dask_mpi.initialize(exit=True) is not False:
    from distributed import Client
    from hpc_vdm.spectra import power_spectrum_stack
    with Client() as client:
        maps = np.random.default_rng(3).standard_normal((8, 32, 32)).astype(np.float32)
        remote = power_spectrum_stack(maps, 25.0, chunk_maps=2, scheduler=client)
        local = power_spectrum_stack(maps, 25.0, chunk_maps=2, scheduler="threads")
        n_workers = len(client.scheduler_info()["workers"])
        np.save(sys.argv[1], np.concatenate([[n_workers], (remote.power / local.power - 1).ravel()]))
"""


@pytest.mark.slow
def test_stack_through_dask_mpi_under_mpiexec(tmp_path):
    script = tmp_path / "mpi_spectra.py"
    script.write_text(MPI_SCRIPT)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    out = tmp_path / "res.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([str(mpiexec), "-n", "4", sys.executable, str(script), str(out)], check=True, timeout=240,
                   env=env, cwd=tmp_path)
    res = np.load(out)
    assert res[0] == 2  # ranks 0 scheduler, 1 client, 2-3 workers
    assert np.abs(res[1:]).max() < FLOAT32_FFT_RTOL  # float32 FFTs planned in other processes


@pytest.mark.parametrize("mas", [None, "CIC"])
def test_out_of_core_volume_equals_in_memory(tmp_path, mas):
    x = RNG.standard_normal((64, 64, 64)).astype(np.float32)
    y = (x + RNG.standard_normal(x.shape)).astype(np.float32)
    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=x.shape, chunks=(8, 64, 64), dtype="float32")
    z[:] = x
    ref = power_spectrum(x, 100.0, mas=mas)
    ooc = volume_spectrum(str(tmp_path / "v.zarr"), 100.0, mas=mas, slab=8, workdir=tmp_path)
    np.testing.assert_allclose(ooc.power, ref.power, rtol=1e-5)
    np.testing.assert_allclose(ooc.k, ref.k, rtol=1e-12)
    np.testing.assert_array_equal(ooc.n_modes, ref.n_modes)
    cref = cross_spectrum(x, y, 100.0, mas=mas)
    cooc = volume_spectrum(z, 100.0, b=y, mas=mas, slab=16, workdir=tmp_path)
    np.testing.assert_allclose(cooc.cross, cref.cross, rtol=1e-4)
    np.testing.assert_allclose(cooc.r, cref.r, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["v.zarr"]  # the intermediate store is removed


@pytest.mark.parametrize("call, message", [
    (lambda: power_spectrum(np.zeros((8, 6)), 1.0), r"expected a square field, got spatial shape \(8, 6\)"),
    (lambda: power_spectrum(np.zeros((8, 8, 6)), 1.0), r"expected a cubic field"),
    (lambda: power_spectrum(np.zeros(8), 1.0), r"expected a 2D map or 3D cube, got shape \(8,\)"),
    (lambda: power_spectrum(np.full((8, 8), np.nan), 1.0), r"NaN or inf"),
    (lambda: power_spectrum(np.zeros((8, 8)), 0.0), r"box_size must be a positive length, got 0.0"),
    (lambda: power_spectrum(np.zeros((8, 8)), -3.0), r"got -3.0"),
    (lambda: power_spectrum(np.zeros((8, 8)), 1.0, mas="cic"), r"unknown MAS 'cic'.*did you mean 'CIC'"),
    (lambda: cross_spectrum(np.zeros((8, 8)), np.zeros((16, 16)), 1.0), r"one shape, got \(8, 8\) and \(16, 16\)"),
    (lambda: power_spectrum_stack(np.full((2, 8, 8), np.inf), 1.0), r"NaN or inf"),
    (lambda: volume_spectrum(np.zeros((8, 8, 8)), 1.0, b=np.zeros((4, 4, 4))), r"one shape"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bispectrum_equals_brute_force_triangle_sum():
    n, box = 12, 12.0
    x = RNG.standard_normal((n, n, n))
    x = x + 0.3 * (x**2 - 1)
    k1, k2, theta, dk = 2.0 * np.pi / box * 2, 2.0 * np.pi / box * 3, np.array([0.7, 2.0]), 2 * np.pi / box
    est = bispectrum(x, box, k1, k2, theta, dk=dk)
    f = np.fft.fftn(x)
    g = np.fft.fftfreq(n, d=1.0 / n)
    kvec = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)  # integer mode vectors
    kmod = np.linalg.norm(kvec, axis=1) * 2 * np.pi / box
    fl = f.ravel()
    for t, b in zip(theta, est.bk):
        k3 = np.sqrt(k1**2 + k2**2 + 2 * k1 * k2 * np.cos(t))
        s1, s2 = np.flatnonzero(np.abs(kmod - k1) < dk / 2), np.flatnonzero(np.abs(kmod - k2) < dk / 2)
        q3 = (-(kvec[s1][:, None, :] + kvec[s2][None, :, :])) % n  # k3 = -(k1 + k2) on the grid
        i3 = np.ravel_multi_index(q3.reshape(-1, 3).T.astype(int), (n, n, n)).reshape(q3.shape[:2])
        ok = np.abs(kmod[i3] - k3) < dk / 2
        triple = (fl[s1][:, None] * fl[s2][None, :] * fl[i3])[ok]
        brute = triple.real.mean() * box**6 / n**9
        assert b == pytest.approx(brute, rel=1e-8)


def test_bispectrum_of_local_quadratic_field_has_the_tree_level_q():
    g = np.random.default_rng(1).standard_normal((64, 64, 64))
    f = 0.3
    theta = np.linspace(0.3, 2.8, 5)
    q_f = bispectrum(g + f * (g**2 - 1), 64.0, 1.0, 1.2, theta, dk=0.2).qk
    q_0 = bispectrum(g, 64.0, 1.0, 1.2, theta, dk=0.2).qk
    # delta = g + f (g^2 - 1): B = 2 f (P1 P2 + ...) with P_g = 1, and P_delta = 1 + 2 f^2
    assert np.mean(q_f - q_0) == pytest.approx(2 * f / (1 + 2 * f**2) ** 2, abs=0.1)


def test_summary_statistics():
    same = RNG.normal(1.0, 0.1, (200, 20))
    other = RNG.normal(1.0, 0.1, (200, 20))
    assert 0.3 < reduced_chi2(same, other) < 2.0
    assert reduced_chi2(same, other + 0.05) > 20
    b = transfer(2.0 * same, same)
    np.testing.assert_allclose(b.median, 2.0)
    edges = np.linspace(0, 3, 16)
    centres, pdf, bands_ = pixel_pdf(10 ** RNG.normal(1.5, 0.3, (5, 1000)), edges)
    assert pdf.shape == (5, 15) and np.allclose((pdf * np.diff(edges)).sum(1), 1.0)
    assert abs(centres[np.argmax(bands_.median)] - 1.5) < 0.25


def test_cli_auto_cross_and_compare(maps_store, tmp_path):
    from hpc_vdm.spectra.cli import main

    out = tmp_path / "pk.npz"
    assert main(["auto", str(maps_store), "--array", "Mcdm", "--overdensity", "--maps", "0:15", "--out", str(out),
                 "--figure", str(tmp_path / "pk.png")]) == 0
    res = np.load(out)
    mcdm = zarr.open_group(str(maps_store), mode="r")["Mcdm"][:15]
    # the stack's batched one-thread FFT against a single-map FFT on the default threads: float32 rounding
    assert_float32_spectra_close(res["power"][4], power_spectrum(overdensity(mcdm[4]), 25.0).power)
    assert main(["cross", str(maps_store), "--a", "Mstar", "--b", "Mcdm", "--overdensity", "--maps", "0:15",
                 "--out", str(tmp_path / "r.json")]) == 0
    assert main(["compare", "--truth", f"{maps_store}:Mcdm", "--samples", f"{maps_store}:Mcdm", "--maps", "0:15",
                 "--out", str(tmp_path / "cmp.json"), "--figure", str(tmp_path / "fig2.png")]) == 0
    assert (tmp_path / "fig2.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["auto", str(maps_store), "--array", "Mgas"]) == 2


@pytest.mark.slow
def test_slurm_spectra_script_runs_with_dask_mpi(maps_store, tmp_path):
    """slurm/spectra.sh outside SLURM: the same file under mpiexec, 4 ranks, dask-mpi cluster."""
    repo = Path(__file__).parents[1]
    out = tmp_path / "pk.npz"
    env = {**os.environ, "HPC_VDM_PYTHON": sys.executable, "HPC_VDM_NTASKS": "4",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SLURM_JOB_ID", None)
    subprocess.run(["bash", str(repo / "slurm" / "spectra.sh"), "auto", str(maps_store), "--array", "Mcdm",
                    "--overdensity", "--maps", "0:15", "--chunk-maps", "4", "--out", str(out)],
                   check=True, timeout=300, env=env, cwd=tmp_path)
    mcdm = zarr.open_group(str(maps_store), mode="r")["Mcdm"][:15]
    local = power_spectrum_stack(mcdm, 25.0, overdensity_of_mass=True)
    assert_float32_spectra_close(np.load(out)["power"], local.power)  # float32 FFTs, other plans and processes


def test_cross_spectrum_with_a_different_mas_per_field():
    n = 32
    idx = np.indices((n, n))
    x = np.cos(2 * np.pi * (3 * idx[0] + 4 * idx[1]) / n)
    c = cross_spectrum(x, x, 10.0, mas=("CIC", None))
    b = 4  # |(3, 4)| = 5 -> bin index 5, position 4
    w = np.prod([(np.pi * m / n / np.sin(np.pi * m / n)) ** 2 for m in (3, 4)])
    assert c.power_a[b] / c.power_b[b] == pytest.approx(w**2, rel=1e-10)
    assert c.cross[b] / c.power_b[b] == pytest.approx(w, rel=1e-10)
