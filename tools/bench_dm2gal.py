"""Benchmark the dense dm2gal path against the paper's per-voxel loop; JSON on stdout.

    python tools/bench_dm2gal.py                       # CPU: paper architecture (65^3 patch), 4 channels
    python tools/bench_dm2gal.py --channels 16 --block 128 --device cuda --sizes 128,256   # a GPU

* ``per_voxel``: one forward pass of the 65^3 patch network per voxel (batch 1, as ``test_cube.py``).
* ``dense``: the fully convolutional rewrite over blocks of ``--block`` voxels with a periodic halo of 32,
  through ``tiling.tile_apply`` (valid mode), on the same model; the same voxels are compared (max |diff|).
* ``memory``: peak resident memory [MB] of an out-of-core paint (Zarr in, Zarr out, one block at a time)
  against the volume size, each in a fresh process, so memory is set by the block, not by the volume.
* ``projected_2048_s``: 2048^3 voxels / dense voxels per second, on the device measured.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpc_vdm.data.patches import gather_patch  # noqa: E402
from hpc_vdm.models import DM2Gal, DenseDM2Gal  # noqa: E402
from tiling import tile_apply  # noqa: E402


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model(channels: int, device) -> DM2Gal:
    torch.manual_seed(0)
    return DM2Gal(channels=channels).to(device).eval()


@torch.no_grad()
def per_voxel(net, field: np.ndarray, voxels, device) -> tuple[np.ndarray, float]:
    out, t = [], time.perf_counter()
    for v in voxels:
        out.append(net(torch.from_numpy(gather_patch(field, v, 65))[None].to(device)).item())
    sync(device)
    return np.array(out), len(voxels) / (time.perf_counter() - t)


@torch.no_grad()
def dense(net, field: np.ndarray, block: int, device) -> tuple[np.ndarray, float]:
    d = DenseDM2Gal(net)
    d.core(torch.zeros(1, 2, block + 64, block + 64, block + 64, device=device), 32)  # warm-up (cuDNN plans)
    sync(device)
    t = time.perf_counter()
    y = tile_apply(lambda w: d.core(w, 32), field, block, 32, mode="valid", batch_size=1, device=device)
    sync(device)
    return y[0], field[0].size / (time.perf_counter() - t)


def memory_child(n: int, block: int, channels: int, device: str) -> None:
    """One out-of-core paint of an n^3 Zarr volume into a Zarr output; prints the peak RSS in MB."""
    import zarr

    from hpc_vdm.data.volume import Channels

    dev = torch.device(device)
    net = model(channels, dev)
    d = DenseDM2Gal(net)
    with tempfile.TemporaryDirectory() as tmp:
        root = zarr.open_group(tmp + "/v.zarr", mode="w")
        rng = np.random.default_rng(0)
        for f in ("dm", "subhalo"):
            a = root.create_array(f, shape=(n, n, n), chunks=(block,) * 3, dtype="float32")
            for x0 in range(0, n, block):
                a[x0:x0 + block] = rng.lognormal(size=(min(block, n - x0), n, n)).astype(np.float32)  # masses >= 0
        out = root.create_array("out", shape=(1, n, n, n), chunks=(1, block, block, block), dtype="float32")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with torch.no_grad():
            tile_apply(lambda w: d.core(w.float(), 32), Channels(root, ("dm", "subhalo")), block, 32, mode="valid",
                       batch_size=1, device=dev, out=out, tiles=None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0.0
    print(json.dumps({"n": n, "peak_rss_mb": round(peak, 1), "rss_before_mb": round(base, 1),
                      "volume_input_mb": round(2 * 4 * n**3 / 2**20, 1), "gpu_peak_mb": round(gpu, 1)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=4, help="channels of the first layers (paper code: 16)")
    p.add_argument("--block", type=int, default=32, help="dense block [voxels per side]")
    p.add_argument("--n", type=int, default=32, help="volume side of the speed test [voxels]")
    p.add_argument("--voxels", type=int, default=4, help="voxels of the per-voxel loop")
    p.add_argument("--sizes", default="32,64", help="volume sides of the memory test")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.memory_child:
        return memory_child(a.memory_child, a.block, a.channels, a.device)
    dev = torch.device(a.device)
    net = model(a.channels, dev)
    field = np.random.default_rng(1).normal(size=(2, a.n, a.n, a.n)).astype(np.float32)
    voxels = [tuple(v) for v in np.random.default_rng(2).integers(0, a.n, (a.voxels, 3))]
    ref, vps_voxel = per_voxel(net, field, voxels, dev)
    y, vps_dense = dense(net, field, a.block, dev)
    diff = float(np.abs(y[tuple(np.array(voxels).T)] - ref).max())
    memory = []
    for n in [int(s) for s in a.sizes.split(",") if s]:
        proc = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--block", str(a.block),
                               "--channels", str(a.channels), "--device", a.device, "--threads", str(a.threads)],
                              capture_output=True, text=True, check=True)
        memory.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps({
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu, {a.threads} thread(s)",
        "model": {"patch": 65, "channels": a.channels, "parameters": sum(q.numel() for q in net.parameters())},
        "block": a.block, "halo": 32, "volume_n": a.n, "per_voxel_voxels": a.voxels,
        "per_voxel_voxels_per_s": vps_voxel, "dense_voxels_per_s": vps_dense, "speedup": vps_dense / vps_voxel,
        "max_abs_diff_float32": diff, "projected_2048_s": 2048**3 / vps_dense,
        "projected_2048_per_voxel_s": 2048**3 / vps_voxel, "memory": memory}, indent=1))


if __name__ == "__main__":
    main()
