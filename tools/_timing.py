"""Shared by the benchmarks: best-of-N wall time, alone or interleaved with a baseline."""
import math
import time


def best_of(fn, repeat: int = 3) -> float:
    """Minimum wall seconds of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved_best(runners: dict, min_rounds: int = 1, max_rounds: int = 1, min_time_s: float = 0.0) -> dict:
    """Best seconds of each of ``runners`` ({name: fn}) over rounds that run every runner once, so that a shared
    machine's load falls on all alike: at least ``min_rounds``, then until ``min_time_s`` per runner or
    ``max_rounds`` rounds. Returns {name: seconds, ..., "rounds": n}."""
    best = {k: math.inf for k in runners}
    spent, rounds = 0.0, 0
    while rounds < max(1, min_rounds) or (rounds < max_rounds and spent / len(runners) < min_time_s):
        for k, run in runners.items():
            t = time.perf_counter()
            run()
            dt = time.perf_counter() - t
            best[k], spent = min(best[k], dt), spent + dt
        rounds += 1
    return best | {"rounds": rounds}
