"""Where does snnprof's overhead go? cProfile of the engine plus a torch-profiler op diff vs plain forward.

Usage::

    .venv/bin/python -m benchmarks.profile_snnprof [--models ottt_vgg11_ws resnet18] [--top 25]

For each model (after warm-up, waiting for an idle machine before each measurement):

1. wall time of the plain run and the snnprof run (median of 3 interleaved pairs);
2. cProfile of one snnprof run: functions under ``snnprof/`` (and the torch builtins they call),
   by cumulative and by own time, with calls and ms per call;
3. torch.profiler over one plain run and one snnprof run: per aten op, extra calls and extra self
   CPU ms in the snnprof run, i.e. the tensor work the counting adds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from benchmarks.models import make_case, make_runners
from benchmarks.overhead_table import MODELS, machine, wait_idle


def _time(fn: Any) -> float:
    start = time.perf_counter()
    fn(None)
    return time.perf_counter() - start


def _cprofile_table(stats: pstats.Stats, key: str, top: int, total_s: float) -> str:
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        in_snnprof = "/snnprof/" in path
        builtin = path == "~"
        if not (in_snnprof or builtin):
            continue
        name = f"{path.split('/snnprof/', 1)[1]}:{line}({func})" if in_snnprof else func
        rows.append((name, ncalls, tottime, cumtime))
    idx = 3 if key == "cumulative" else 2
    rows.sort(key=lambda r: r[idx], reverse=True)
    out = [f"| function ({key}) | calls | own ms | cum ms | cum ms/call | % of run |", "|---|---:|---:|---:|---:|---:|"]
    for name, ncalls, tottime, cumtime in rows[:top]:
        share = 100 * (cumtime if idx == 3 else tottime) / total_s
        out.append(f"| `{name}` | {ncalls} | {tottime * 1e3:.1f} | {cumtime * 1e3:.1f} | "
                   f"{cumtime * 1e3 / max(ncalls, 1):.2f} | {share:.1f} |")
    return "\n".join(out)


def _op_stats(fn: Any) -> dict[str, tuple[int, float]]:
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(None)
    out: dict[str, tuple[int, float]] = {}
    for evt in prof.key_averages():
        if evt.key.startswith("aten::"):
            out[evt.key] = (evt.count, evt.self_cpu_time_total / 1e3)
    return out


def _min_stats(runs: list[dict[str, tuple[int, float]]]) -> dict[str, tuple[int, float]]:
    """Per op: the call count and the smallest self time over repeated runs (drops contention spikes)."""
    keys = {k for run in runs for k in run}
    return {k: (max(r.get(k, (0, 0.0))[0] for r in runs), min(r.get(k, (0, 0.0))[1] for r in runs)) for k in keys}


def _op_diff(plain: dict[str, tuple[int, float]], tool: dict[str, tuple[int, float]], top: int) -> str:
    rows = []
    for op, (calls, ms) in tool.items():
        p_calls, p_ms = plain.get(op, (0, 0.0))
        rows.append((op, calls - p_calls, ms - p_ms, ms, p_ms))
    rows.sort(key=lambda r: r[2], reverse=True)
    extra = sum(r[2] for r in rows if r[2] > 0)
    out = [f"Extra aten self-CPU time in the snnprof run: {extra:.0f} ms (positive deltas).", "",
           "| aten op | extra calls | extra self ms | snnprof run ms | plain run ms |", "|---|---:|---:|---:|---:|"]
    for op, d_calls, d_ms, ms, p_ms in rows[:top]:
        out.append(f"| `{op}` | {d_calls:+d} | {d_ms:+.1f} | {ms:.1f} | {p_ms:.1f} |")
    return "\n".join(out)


def report(model: str, top: int, wait_s: float) -> str:
    case = make_case(model)
    runners = make_runners(case)
    plain, tool = runners["plain"].call, runners["snnprof"].call
    plain(None)
    tool(None)
    times: dict[str, list[float]] = defaultdict(list)
    for i in range(3):
        wait_idle(wait_s)
        pair = (("plain", plain), ("snnprof", tool))
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            times[name].append(_time(fn))
    p_med, s_med = statistics.median(times["plain"]), statistics.median(times["snnprof"])
    parts = [f"## {model}", "",
             f"plain {p_med * 1e3:.0f} ms, snnprof {s_med * 1e3:.0f} ms (median of 3 interleaved pairs: "
             f"{s_med / p_med:.2f}x); overhead {(s_med - p_med) * 1e3:.0f} ms per run.", ""]

    wait_idle(wait_s)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    tool(None)
    prof.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(prof, stream=io.StringIO())
    parts += [f"### cProfile of one snnprof run ({total * 1e3:.0f} ms under cProfile)", "",
              _cprofile_table(stats, "cumulative", top, total), "", _cprofile_table(stats, "tottime", top, total), ""]

    plain_runs, tool_runs = [], []
    for _ in range(3):
        wait_idle(wait_s)
        plain_runs.append(_op_stats(plain))
        wait_idle(wait_s)
        tool_runs.append(_op_stats(tool))
    plain_ops, tool_ops = _min_stats(plain_runs), _min_stats(tool_runs)
    parts += ["### torch.profiler: aten ops added by snnprof (snnprof run minus plain run; "
              "per op the minimum self time of 3 profiled runs each)", "",
              _op_diff(plain_ops, tool_ops, top), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--wait-idle", type=float, default=30.0, metavar="S")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(f"Machine: {machine()}\n")
    for model in args.models:
        print(report(model, args.top, args.wait_idle), flush=True)


if __name__ == "__main__":
    main()
