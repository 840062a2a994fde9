"""Quick interleaved overhead of snnprof (all counters on) against a plain forward.

Usage (from the repository root)::

    THREADS=2 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. .venv/bin/python benchmarks/quick_overhead.py

Prints one Markdown row per model: median plain time, median profiled time, median of the per-pair
ratios and their range (5 pairs, order alternating, after one warm-up of each).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

import snnprof
from benchmarks.models import make_case

PAIRS = 5


def _runners(name: str) -> tuple[Callable[[], None], Callable[[], None]]:
    case = make_case(name)

    def plain() -> None:
        with torch.no_grad():
            case.run(case.model, case.inputs)

    def profiled() -> None:
        with torch.no_grad(), snnprof.Profiler(case.model, time_steps=case.time_steps,
                                               batch_size=case.batch_size) as prof:
            case.run(case.model, case.inputs)
        prof.result()

    return plain, profiled


def _pairs(plain: Callable[[], None], profiled: Callable[[], None]) -> tuple[list[float], list[float], list[float]]:
    plain(), profiled()
    t_plain, t_prof, ratios = [], [], []
    for i in range(PAIRS):
        times = {}
        for fn in (plain, profiled) if i % 2 == 0 else (profiled, plain):
            start = time.perf_counter()
            fn()
            times[fn] = time.perf_counter() - start
        t_plain.append(times[plain])
        t_prof.append(times[profiled])
        ratios.append(times[profiled] / times[plain])
    return t_plain, t_prof, ratios


def main() -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    print("| model | plain | snnprof | ratio (median) | range |")
    print("|---|---:|---:|---:|---:|")
    for name in ("resnet18", "ottt_vgg11_ws"):
        t_plain, t_prof, ratios = _pairs(*_runners(name))
        print(f"| {name} | {statistics.median(t_plain) * 1e3:.0f} ms | {statistics.median(t_prof) * 1e3:.0f} ms "
              f"| {statistics.median(ratios):.3f}x | {min(ratios):.3f}-{max(ratios):.3f} |", flush=True)


if __name__ == "__main__":
    main()
