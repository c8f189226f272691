"""Shared by the benchmarks: best-of-N wall time."""
import time


def best_of(fn, repeat: int = 3) -> float:
    """Minimum wall seconds of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
