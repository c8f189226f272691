#!/usr/bin/env python
"""Benchmark: hpc_vdm.spectra against Pylians3 on the same maps, the FFT-cost bound and a numpy loop (JSON on stdout).

    python tools/bench_spectra.py [--big 2048] [--cube 256] [--stack 1000] [--volume-n 512] [--threads 2]
                                  [--rounds 3] [--pylians-python /tmp/pylvenv/bin/python]

Cases, each timed best-of over ``--rounds`` interleaved rounds (the machine may be shared: ratios measured
in one run count, absolute times are noisy):

* one ``--big``² map and one ``--cube``³ cube (float32 white noise): ``power_spectrum`` against Pylians3's
  ``Pk_plane`` / ``Pk`` (MAS='None', the same threads), run by ``--pylians-python`` in a subprocess on the
  same saved arrays and timed inside it (Pylians is never a dependency of the project: install it into a
  throwaway venv). Also the bounds in this process: the FFT alone (pyFFTW, the project's plan) and the FFT
  plus ``np.bincount`` over a precomputed bin index. ``ratio_vs_pylians`` = hpc_vdm / Pylians time;
  ``max_rel_diff_vs_pylians`` compares P(k) bin by bin (and ``k``, ``Nmodes``).
* a stack of ``--stack`` maps of 256²: ``power_spectrum_stack`` (dask chunks sized to the cores) against a
  plain numpy loop (``numpy.fft.rfftn`` + ``bincount`` per map, the same bins); ``speedup_vs_numpy_loop``.
* out of core (``--volume-n`` > 0): ``volume_spectrum`` of a Zarr cube in a subprocess, its peak RSS against
  the volume and against the in-memory path.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as best  # noqa: E402

from hpc_vdm.spectra import binning, fft, power_spectrum, power_spectrum_stack  # noqa: E402
from hpc_vdm.spectra.pk import plan  # noqa: E402

PEER = """
import contextlib, io, json, sys, time
import numpy as np
import Pk_library as PKL

src, out, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.load(src)
box = 25.0
def run():
    with contextlib.redirect_stdout(io.StringIO()):
        if x.ndim == 2:
            r = PKL.Pk_plane(x, box, MAS="None", threads=threads, verbose=False)
            return r.k, r.Pk, r.Nmodes
        r = PKL.Pk(x, box, axis=0, MAS="None", threads=threads, verbose=False)
        return r.k3D, r.Pk[:, 0], r.Nmodes3D
res = run()  # warm-up
times = []
for _ in range(repeat):
    t = time.perf_counter(); res = run(); times.append(time.perf_counter() - t)
np.savez(out, k=res[0], power=res[1], n_modes=res[2])
print(json.dumps({"best_s": min(times)}))
"""


def pylians_time(python: str, path: str, threads: int, repeat: int):
    """Best-of-``repeat`` seconds of Pylians on the saved array, and its (k, P, Nmodes), timed in a subprocess."""
    out = path + ".pyl.npz"
    proc = subprocess.run([python, "-c", PEER, path, out, str(threads), str(repeat)], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode:
        raise RuntimeError(f"the Pylians peer failed: {proc.stderr.strip()[-500:]}")
    res = np.load(out)
    return json.loads(proc.stdout.strip().splitlines()[-1])["best_s"], res


def numpy_pk(x, box):
    """The plain baseline: numpy.fft (float64) + bincount over the same half-space bins."""
    b = plan(x.shape[-1], x.ndim)
    f = np.fft.rfftn(x).ravel()
    return np.bincount(b.bins, weights=np.abs(f) ** 2, minlength=b.n_modes.size + 1)[1:] / b.n_modes


def fft_bincount(x, threads):
    """The best-known bound without a compiled pass: the project's pyFFTW plan + np.bincount, precomputed bins."""
    b = plan(x.shape[-1], x.ndim)
    f = fft.rfftn(x, threads=threads, copy=False).ravel()
    return np.bincount(b.bins, weights=f.real.astype(np.float64) ** 2 + f.imag.astype(np.float64) ** 2,
                       minlength=b.n_modes.size + 1)


def single_case(name, x, args, tmp):
    """hpc_vdm, the FFT bound, FFT + bincount and Pylians on one field, interleaved rounds, best-of."""
    def ours():
        return power_spectrum(x, 25.0, threads=args.threads)

    ours()  # plan FFTW once (MEASURE) and build the binning, as a long job would
    fft_bincount(x, args.threads)
    path = f"{tmp}/{name}.npy"
    np.save(path, x)
    t = {"hpc_vdm_s": [], "fft_only_s": [], "fft_bincount_s": [], "pylians_s": []}
    res = None
    for _ in range(args.rounds):
        t["hpc_vdm_s"].append(best(ours, 3))
        t["fft_only_s"].append(best(lambda: fft.rfftn(x, threads=args.threads, copy=False), 3))
        t["fft_bincount_s"].append(best(lambda: fft_bincount(x, args.threads), 3))
        if args.pylians_python:
            s, res = pylians_time(args.pylians_python, path, args.threads, 3)
            t["pylians_s"].append(s)
    r = {k: min(v) for k, v in t.items() if v}
    r["ratio_vs_fft_only"] = r["hpc_vdm_s"] / r["fft_only_s"]
    r["ratio_vs_fft_bincount"] = r["hpc_vdm_s"] / r["fft_bincount_s"]
    if res is not None:
        ps = ours()
        r["ratio_vs_pylians"] = r["hpc_vdm_s"] / r["pylians_s"]
        r["max_rel_diff_vs_pylians"] = float(np.max(np.abs(ps.power / res["power"] - 1)))
        r["max_rel_diff_k_vs_pylians"] = float(np.max(np.abs(ps.k / res["k"] - 1)))
        r["n_modes_equal_pylians"] = bool(np.array_equal(ps.n_modes, res["n_modes"]))
    return r


def stack_case(args, rng):
    stack = rng.standard_normal((args.stack, 256, 256)).astype(np.float32)
    power_spectrum_stack(stack, 25.0)  # plans and JIT warm
    t_ours, t_np = [], []
    for _ in range(args.rounds):
        t_ours.append(best(lambda: power_spectrum_stack(stack, 25.0), 2))
        t_np.append(best(lambda: [numpy_pk(m, 25.0) for m in stack], 1))
    ours = power_spectrum_stack(stack, 25.0).power
    loop = np.stack([numpy_pk(m, 25.0) for m in stack]) * (25.0 / 256**2) ** 2
    # float32 FFTs against numpy's float64: the error is float32 rounding of the modes, so it is measured
    # against each bin's mean power (a lone corner mode of one map can be tiny, its own relative error large)
    return {"hpc_vdm_s": min(t_ours), "numpy_loop_s": min(t_np), "speedup_vs_numpy_loop": min(t_np) / min(t_ours),
            "maps_per_s": args.stack / min(t_ours),
            "max_abs_diff_over_mean_power_vs_numpy_loop": float(np.max(np.abs(ours - loop) / loop.mean(axis=0))),
            "mean_spectrum_max_rel_diff_vs_numpy_loop": float(np.max(np.abs(ours.mean(0) / loop.mean(0) - 1)))}


PEAK = """
import sys, numpy as np, zarr

def hwm():  # this process's peak RSS in KiB (VmHWM; ru_maxrss would inherit the parent's across fork)
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])

mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
from hpc_vdm.spectra.volume import volume_spectrum
from hpc_vdm.spectra import power_spectrum
base = hwm()
if mode == "ooc":
    volume_spectrum(path, 1000.0, slab=int(sys.argv[4]))
else:
    power_spectrum(zarr.open_array(path, mode="r")[:], 1000.0)
print(base, hwm())
"""


def peak_rss(mode, path, n, slab=0):
    out = subprocess.run([sys.executable, "-c", PEAK, mode, path, str(n), str(slab)], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    base, peak = (int(v) for v in out.stdout.split())
    return (peak - base) * 1024, peak * 1024


def volume_case(args, rng, tmp):
    import zarr

    n = args.volume_n
    path = f"{tmp}/vol.zarr"
    z = zarr.create_array(path, shape=(n, n, n), chunks=(args.slab, n, n), dtype="float32")
    for s in range(0, n, args.slab):
        z[s:s + args.slab] = rng.standard_normal((min(args.slab, n - s), n, n)).astype(np.float32)
    vol_bytes = n**3 * 4
    ooc_delta, _ = peak_rss("ooc", path, n, args.slab)
    mem_delta, _ = peak_rss("mem", path, n)
    t0 = time.perf_counter()
    peak_rss("ooc", path, n, args.slab)
    return {"volume_bytes": vol_bytes, "slab_planes": args.slab, "task_budget_bytes": args.slab * n * n * 16,
            "peak_rss_increase_bytes": ooc_delta, "in_memory_peak_rss_increase_bytes": mem_delta,
            "peak_over_volume": ooc_delta / vol_bytes, "in_memory_over_out_of_core": mem_delta / max(ooc_delta, 1),
            "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--big", type=int, default=2048)
    p.add_argument("--cube", type=int, default=256)
    p.add_argument("--stack", type=int, default=1000)
    p.add_argument("--volume-n", type=int, default=512, help="out-of-core cube side (0: skip)")
    p.add_argument("--slab", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="FFT threads, ours and Pylians'")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each time is the best over them")
    p.add_argument("--pylians-python", default=None, help="an interpreter with Pylians3 (Pk_library) installed")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {f"map_{args.big}^2": rng.standard_normal((args.big,) * 2).astype(np.float32),
                 f"cube_{args.cube}^3": rng.standard_normal((args.cube,) * 3).astype(np.float32)}
        for name, x in cases.items():
            results[name] = single_case(name, x, args, tmp)
        results[f"stack_{args.stack}x256^2"] = stack_case(args, rng)
        if args.volume_n:
            results[f"out_of_core_{args.volume_n}^3"] = volume_case(args, rng, tmp)
    targets = {"map_ratio_vs_pylians_max": 0.5, "cube_ratio_vs_pylians_max": 0.4, "stack_speedup_min": 2.0,
               "max_rel_diff_vs_pylians": 2e-4}
    print(json.dumps({"bench": "spectra", "fft_backend": fft.backend(), "binning": binning.backend(),
                      "planner": fft.PLANNER, "threads": args.threads, "rounds": args.rounds,
                      "pylians": args.pylians_python is not None, "targets": targets,
                      "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                  "load_avg_1m_at_end": os.getloadavg()[0]}, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
