"""Real FFTs through pyFFTW (plans cached per thread, FFTW_MEASURE at most, wisdom reusable), numpy fallback.

Precision is kept: float32 -> complex64, float64 -> complex128. Plans are built with pyfftw.builders
on aligned buffers and cached per (thread, shape, dtype, axes, threads); FFTW objects are not safe to
share between threads, and dask's threaded scheduler runs tasks concurrently. A suitably aligned
contiguous input is transformed in place (no copy in); ``copy=False`` hands back the plan's output
buffer (no copy out), for callers that bin the modes at once.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

try:
    import pyfftw
    import pyfftw.builders
except ImportError:  # the numpy fallback
    pyfftw = None

PLANNER = os.environ.get("HPC_VDM_FFTW_PLANNER", "FFTW_MEASURE")
if PLANNER not in ("FFTW_ESTIMATE", "FFTW_MEASURE"):
    raise ValueError(f"HPC_VDM_FFTW_PLANNER must be FFTW_ESTIMATE or FFTW_MEASURE (heavier planning costs "
                     f"minutes for no gain), got {PLANNER!r}")
WISDOM_PATH = Path(os.environ.get("HPC_VDM_FFTW_WISDOM", Path.home() / ".cache" / "hpc_vdm" / "fftw_wisdom.txt"))
WISDOM_SEPARATOR = b"\n;; hpc_vdm: next precision\n"  # FFTW's own text, one block per precision (double, single, long)
_local = threading.local()


def backend() -> str:
    return "pyfftw" if pyfftw is not None else "numpy"


def default_threads() -> int:
    return max(1, int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1))


def _plan(kind: str, shape, dtype, axes, threads: int):
    """The cached (plan, its own aligned input buffer) of this thread."""
    cache = getattr(_local, "plans", None)
    if cache is None:
        cache = _local.plans = {}
    key = (kind, shape, np.dtype(dtype).str, axes, threads)
    entry = cache.get(key)
    if entry is None:
        buf = pyfftw.empty_aligned(shape, dtype=dtype)
        build = pyfftw.builders.rfftn if kind == "rfftn" else pyfftw.builders.fftn
        plan = build(buf, axes=axes, threads=threads, planner_effort=PLANNER, auto_align_input=True,
                     overwrite_input=False)
        entry = cache[key] = (plan, plan.input_array)
    return entry


def _run(kind: str, x: np.ndarray, axes, threads, copy: bool) -> np.ndarray:
    plan, own_input = _plan(kind, x.shape, x.dtype, axes, threads or default_threads())
    out = plan(x)  # reads x in place when its strides and alignment suit the plan, else copies it in
    if plan.input_array is not own_input:  # let go of the caller's array
        plan.update_arrays(own_input, out)
    return out.copy() if copy else out


def rfftn(x: np.ndarray, axes=None, threads: int | None = None, *, copy: bool = True) -> np.ndarray:
    """Unnormalised forward real FFT over ``axes`` (default: all), last axis halved.

    ``copy=False`` returns the plan's own output buffer (no copy): it is overwritten by the next transform
    of the same shape, dtype, axes and threads in this thread, so use it at once.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    axes = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
    if pyfftw is None:
        return np.fft.rfftn(x, axes=axes)
    return _run("rfftn", x, axes, threads, copy)


def fftn(x: np.ndarray, axes, threads: int | None = None, *, copy: bool = True) -> np.ndarray:
    """Unnormalised forward complex FFT over ``axes`` (``copy`` as for :func:`rfftn`)."""
    x = np.asarray(x)
    axes = tuple(a % x.ndim for a in axes)
    if pyfftw is None:
        return np.fft.fftn(x, axes=axes).astype(x.dtype, copy=False)
    return _run("fftn", x, axes, threads, copy)


def load_wisdom(path: str | Path = WISDOM_PATH) -> bool:
    """Import saved FFTW wisdom (skips re-planning); False when there is none or FFTW rejects it.

    The file is FFTW's own text form (never a pickle): a damaged or foreign file is ignored with a warning.
    """
    if pyfftw is None or not Path(path).is_file():
        return False
    blocks = tuple(Path(path).read_bytes().split(WISDOM_SEPARATOR))
    if len(blocks) != 3 or not all(b.startswith(b"(fftw-") or not b for b in blocks):
        import warnings

        warnings.warn(f"{str(path)!r} is not FFTW wisdom text; ignored (it will be rewritten)", stacklevel=2)
        return False
    return all(pyfftw.import_wisdom(blocks))


def save_wisdom(path: str | Path = WISDOM_PATH) -> None:
    """Export the plans' wisdom in FFTW's text form, atomically."""
    if pyfftw is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
    tmp.write_bytes(WISDOM_SEPARATOR.join(pyfftw.export_wisdom()))
    tmp.replace(path)
