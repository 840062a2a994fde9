"""Interleaved A/B measurement of dataset profiling: overhead vs plain inference, and scaling over processes.

Usage::

    .venv/bin/python -m benchmarks.dataset_table [--pairs 7] [--cases sj_dvs ottt_cifar] [--scaling-pairs 3]

Overhead: for each case (:mod:`benchmarks.dataset_cases`), one untimed warm-up of each, then
``--pairs`` pairs of ``plain`` and ``profiled`` runs in one process (order flipped every pair:
ABBA...), one torch thread. Each run is timed in CPU seconds of this process (``process_time``:
robust to other processes on a shared machine) and in wall seconds; the table gives the median of
the per-pair ratios. Scaling: wall time of ``snnprof count CONFIG --dataset`` on one process vs
``torchrun --nproc_per_node=2 -m snnprof count CONFIG --dataset`` (gloo, one thread per process),
interleaved, on a larger copy of the first case's data set.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.dataset_cases import CASES, DatasetCase, make_dataset_case, plain_run, profiled_run

REPO = Path(__file__).resolve().parent.parent


def _timed(fn: object, case: DatasetCase) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn(case)  # type: ignore[operator]
    return time.process_time() - cpu, time.perf_counter() - wall


def overhead(case: DatasetCase, pairs: int, log: object) -> dict[str, object]:
    """Median plain/profiled times and per-pair ratios (CPU and wall) of one case."""
    plain_run(case)
    profiled_run(case)
    rows: dict[str, list[float]] = {k: [] for k in ("plain_cpu", "prof_cpu", "plain_wall", "prof_wall", "r_cpu",
                                                     "r_wall")}
    for i in range(pairs):
        order = ("plain", "profiled") if i % 2 == 0 else ("profiled", "plain")
        got = {name: _timed(plain_run if name == "plain" else profiled_run, case) for name in order}
        (pc, pw), (qc, qw) = got["plain"], got["profiled"]
        for key, value in (("plain_cpu", pc), ("prof_cpu", qc), ("plain_wall", pw), ("prof_wall", qw),
                           ("r_cpu", qc / pc), ("r_wall", qw / pw)):
            rows[key].append(value)
        print(f"  {case.name} pair {i + 1}/{pairs}: plain {pc:.2f} s CPU / {pw:.2f} s wall, profiled {qc:.2f} s CPU"
              f" / {qw:.2f} s wall, ratio {qc / pc:.3f} CPU, {qw / pw:.3f} wall, load {os.getloadavg()[0]:.1f}",
              file=log, flush=True)  # type: ignore[call-overload]
    return {"case": case, **{k: statistics.median(v) for k, v in rows.items()},
            "spread": (min(rows["r_cpu"]), max(rows["r_cpu"]))}


def _count_cmd(config: Path, procs: int, max_batches: int | None) -> list[str]:
    base = ["-m", "snnprof", "count", str(config), "--dataset", "-q"]
    if max_batches:
        base += ["--max-batches", str(max_batches)]
    if procs == 1:
        return [sys.executable, *base]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *base]


def scaling(case: DatasetCase, pairs: int, log: object) -> dict[tuple[int, bool], float]:
    """Median wall seconds of the CLI on 1 and 2 processes, whole data set and one batch per rank (interleaved).

    The one-batch runs measure the fixed cost (interpreter, imports, process group, model build);
    the difference is the time spent streaming the data set.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    config = case.cfg.path
    times: dict[tuple[int, bool], list[float]] = {(p, full): [] for p in (1, 2) for full in (True, False)}
    for i in range(pairs):
        for procs in ((1, 2) if i % 2 == 0 else (2, 1)):
            for full in (True, False):
                start = time.perf_counter()
                subprocess.run(_count_cmd(config, procs, None if full else procs), cwd=REPO, env=env, check=True,
                               capture_output=True)
                times[(procs, full)].append(time.perf_counter() - start)
                print(f"  scaling pair {i + 1}/{pairs}: {procs} process(es), {'all' if full else 'one'} batch(es)"
                      f" {times[(procs, full)][-1]:.1f} s, load {os.getloadavg()[0]:.1f}", file=log, flush=True)  # type: ignore[call-overload]
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7, help="timed A/B pairs per case (after one warm-up)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--per-class", type=int, default=None, help="files per class of the overhead data sets")
    parser.add_argument("--scaling-pairs", type=int, default=3, help="interleaved 1- vs 2-process CLI runs (0: off)")
    parser.add_argument("--scaling-per-class", type=int, default=40, help="files per class of the scaling data set")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    lines = ["| case | plain (CPU s) | profiled (CPU s) | ratio, CPU time | spread (min-max) | ratio, wall time |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in args.cases:
        res = overhead(make_dataset_case(name, args.per_class), args.pairs, sys.stderr)
        case = res["case"]
        lo, hi = res["spread"]  # type: ignore[misc]
        lines.append(f"| {name}: {case.note} | {res['plain_cpu']:.2f} | {res['prof_cpu']:.2f} | "  # type: ignore[attr-defined]
                     f"{res['r_cpu']:.3f}x | {lo:.3f}-{hi:.3f} | {res['r_wall']:.3f}x |")
    if args.scaling_pairs:
        big = make_dataset_case(args.cases[0], args.scaling_per_class)
        t = scaling(big, args.scaling_pairs, sys.stderr)
        stream = {p: t[(p, True)] - t[(p, False)] for p in (1, 2)}
        lines += ["", "| processes | whole run, wall (s) | fixed cost: one batch per rank (s) | streaming (s) |"
                  " speed-up of streaming |", "|---:|---:|---:|---:|---:|",
                  f"| 1 | {t[(1, True)]:.1f} | {t[(1, False)]:.1f} | {stream[1]:.1f} | 1.00x |",
                  f"| 2 (torchrun, gloo) | {t[(2, True)]:.1f} | {t[(2, False)]:.1f} | {stream[2]:.1f} | "
                  f"{stream[1] / stream[2]:.2f}x |", "", f"Scaling data set: {big.note}."]
    cli = sys.argv[1:] if argv is None else argv
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "-m", "benchmarks.dataset_table", *cli])
    lines += ["", f"Command: `{command}`", "",
              f"Machine: nproc {os.cpu_count()}, torch {torch.__version__} (1 thread per process), Python "
              f"{platform.python_version()}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after."]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
