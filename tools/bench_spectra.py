#!/usr/bin/env python
"""Benchmark: hpc_vdm.spectra against a plain numpy.fft estimator of the same P(k) (JSON on stdout).

    python tools/bench_spectra.py [--big 2048] [--stack 1000] [--cube 256] [--volume-n 256]

Cases: one 2048^2 map, a stack of 1000 256^2 maps (dask, one task per 64 maps), one 256^3 cube. The
baseline measured in the same run is numpy.fft.rfftn + np.bincount with the same bins; `speedup` is
baseline time / hpc_vdm time. Pylians3 is timed too where it is installed. The out-of-core case runs
`volume_spectrum` in a subprocess on a Zarr cube and reports its peak RSS against the volume size and
the in-memory path's peak RSS.
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

import numpy as np
from _timing import best_of as best

from hpc_vdm.spectra import fft, power_spectrum, power_spectrum_stack
from hpc_vdm.spectra.pk import plan


def numpy_pk(x, box):
    """The baseline: numpy.fft + bincount with the same half-space bins (float64 FFT)."""
    n, d = x.shape[-1], x.ndim
    bins, weight, n_modes, _ = plan(n, d)
    f = np.fft.rfftn(x).ravel()
    return np.bincount(bins, weights=weight * np.abs(f) ** 2, minlength=n_modes.size + 1)[1:] / n_modes


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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--big", type=int, default=2048)
    p.add_argument("--stack", type=int, default=1000)
    p.add_argument("--cube", type=int, default=256)
    p.add_argument("--volume-n", type=int, default=512)
    p.add_argument("--slab", type=int, default=4)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    try:
        import Pk_library as PKL  # Pylians3
    except ImportError:
        PKL = None
    results = {}
    cases = {"map_%d^2" % args.big: rng.standard_normal((args.big,) * 2).astype(np.float32),
             "cube_%d^3" % args.cube: rng.standard_normal((args.cube,) * 3).astype(np.float32)}
    for name, x in cases.items():
        power_spectrum(x, 25.0)  # plan FFTW once (MEASURE), as a long job would
        r = {"hpc_vdm_s": best(lambda: power_spectrum(x, 25.0)), "numpy_s": best(lambda: numpy_pk(x, 25.0))}
        if PKL is not None:
            import contextlib
            import io
            fn = PKL.Pk_plane if x.ndim == 2 else PKL.Pk
            with contextlib.redirect_stdout(io.StringIO()):
                r["pylians_s"] = best(lambda: fn(x, 25.0, MAS="None", threads=os.cpu_count(), verbose=False))
        r["speedup_vs_numpy"] = r["numpy_s"] / r["hpc_vdm_s"]
        results[name] = r
    stack = rng.standard_normal((args.stack, 256, 256)).astype(np.float32)
    power_spectrum_stack(stack[:64], 25.0)
    t_ours = best(lambda: power_spectrum_stack(stack, 25.0, chunk_maps=64), 2)
    t_np = best(lambda: [numpy_pk(m, 25.0) for m in stack], 2)
    results[f"stack_{args.stack}x256^2"] = {"hpc_vdm_s": t_ours, "numpy_s": t_np, "speedup_vs_numpy": t_np / t_ours,
                                            "maps_per_s": args.stack / t_ours}
    with tempfile.TemporaryDirectory() as tmp:
        import zarr

        n = args.volume_n
        path = f"{tmp}/vol.zarr"
        z = zarr.create_array(path, shape=(n, n, n), chunks=(args.slab, n, n), dtype="float32")
        for s in range(0, n, args.slab):
            z[s:s + args.slab] = rng.standard_normal((min(args.slab, n - s), n, n)).astype(np.float32)
        vol_bytes = n**3 * 4
        ooc_delta, ooc_peak = peak_rss("ooc", path, n, args.slab)
        mem_delta, mem_peak = peak_rss("mem", path, n)
        t0 = time.perf_counter()
        peak_rss("ooc", path, n, args.slab)
        results[f"out_of_core_{n}^3"] = {
            "volume_bytes": vol_bytes, "slab_planes": args.slab, "task_budget_bytes": args.slab * n * n * 16,
            "peak_rss_increase_bytes": ooc_delta, "in_memory_peak_rss_increase_bytes": mem_delta,
            "peak_over_volume": ooc_delta / vol_bytes, "in_memory_over_out_of_core": mem_delta / max(ooc_delta, 1),
            "wall_s": time.perf_counter() - t0}
    print(json.dumps({"bench": "spectra", "fft_backend": fft.backend(), "planner": fft.PLANNER,
                      "pylians": PKL is not None, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
