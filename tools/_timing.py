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


def best_within(fn, min_s: float = 10.0, max_repeat: int = 5) -> float:
    """Minimum wall seconds of ``fn()``, repeated until ``min_s`` seconds were spent or ``max_repeat`` calls
    (at least one): short measurements get several tries on a shared machine, long ones are not repeated."""
    times, start = [], time.perf_counter()
    while not times or (len(times) < max_repeat and time.perf_counter() - start < min_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
