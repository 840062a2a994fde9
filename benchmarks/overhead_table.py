"""Interleaved A/B overhead table: each tool against the plain forward, as a Markdown table.

Usage::

    .venv/bin/python -m benchmarks.overhead_table [--pairs 7] [--models ottt_vgg11_ws resnet18]
                                                  [--tools snnprof sj_dispatch fvcore thop]

For every (model, tool) pair: one untimed warm-up of each, then ``--pairs`` pairs alternating the
plain run and the tool run (the order inside a pair flips every pair: ABBA...), and the ratio of
each pair. The table reports the median tool time and the median of the per-pair ratios, which
cancels most of the drift of a shared, noisy machine. ``torch.set_num_threads`` is left at default.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.models import TOOLS, Runner, make_case, make_runners, summarize

MODELS: tuple[str, ...] = ("ottt_vgg11_ws", "resnet18")


@dataclass
class Row:
    model: str
    tool: str
    times: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 1.0


class CpuMeter:
    """CPU seconds used on the machine by *other* processes (``/proc/stat`` minus this process)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        try:
            fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return 0.0, 0.0, time.perf_counter()
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.tick  # all but idle and iowait
        own = os.times()
        return busy, own.user + own.system, time.perf_counter()

    def foreign(self) -> float:
        """Average number of cores busy with other processes since the meter started."""
        busy0, own0, t0 = self.start
        busy1, own1, t1 = self._sample()
        return max((busy1 - busy0) - (own1 - own0), 0.0) / max(t1 - t0, 1e-9)


def wait_idle(limit_s: float, threshold: float = 0.3, probe_s: float = 0.5) -> float:
    """Wait (at most ``limit_s``) until other processes use under ``threshold`` cores; returns seconds waited."""
    waited = 0.0
    while waited < limit_s:
        meter = CpuMeter()
        time.sleep(probe_s)
        waited += probe_s
        if meter.foreign() < threshold:
            break
    return waited


def _timed(runner: Runner) -> tuple[float, Any]:
    state = runner.prepare()
    start = time.perf_counter()
    out = runner.call(state)
    return time.perf_counter() - start, out


def measure(
    model: str, tools: list[str], pairs: int, *, wait_s: float, log: Any, max_foreign: float = 0.25, retries: int = 3
) -> list[Row]:
    """Interleaved pairs for each tool; a pair during which other processes used more than ``max_foreign``
    cores is measured again (at most ``retries`` times)."""
    case = make_case(model)
    runners = make_runners(case)
    plain = Row(model, "plain", note=f"batch {case.batch_size}, T={case.time_steps}, input {list(case.inputs.shape)}")
    rows = [plain]
    for tool in tools:
        row = Row(model, tool)
        _timed(runners["plain"])  # warm-up
        _, out = _timed(runners[tool])  # warm-up
        row.note = summarize(tool, out)
        for i in range(pairs):
            order = ("plain", tool) if i % 2 == 0 else (tool, "plain")
            for attempt in range(retries + 1):
                if wait_s > 0:
                    wait_idle(wait_s)
                meter = CpuMeter()
                got = {name: _timed(runners[name])[0] for name in order}
                foreign = meter.foreign()
                if foreign <= max_foreign:
                    break
                print(f"  {model} {tool} pair {i + 1}: other processes used {foreign:.2f} cores, "
                      f"{'retrying' if attempt < retries else 'kept'}", file=log, flush=True)
            row.foreign.append(foreign)
            plain.times.append(got["plain"])
            row.times.append(got[tool])
            row.ratios.append(got[tool] / got["plain"])
            print(f"  {model} {tool} pair {i + 1}/{pairs}: plain {got['plain']:.3f} s, {tool} {got[tool]:.3f} s, "
                  f"ratio {got[tool] / got['plain']:.2f}, other processes {row.foreign[-1]:.2f} cores",
                  file=log, flush=True)
        rows.append(row)
    return rows


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def markdown(rows: list[Row], pairs: int, max_foreign: float = 0.25, retries: int = 3) -> str:
    lines = [
        "| model | tool | median time | ratio to plain forward | spread of ratios (min-max) | reported |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        spread = f"{min(r.ratios):.2f}-{max(r.ratios):.2f}" if r.ratios else "-"
        lines.append(
            f"| {r.model} | {r.tool} | {_fmt_time(r.median)} | {r.ratio:.2f}x | {spread} | {r.note} |"
        )
    lines.append("")
    foreign = [f for r in rows for f in r.foreign]
    foreign_median = statistics.median(foreign) if foreign else 0.0
    lines.append(f"Median time over {pairs} timed runs per tool (plain: over all its interleaved runs); ratio = "
                 "median of per-pair tool/plain ratios, pairs interleaved ABBA after one warm-up each. "
                 "Before each pair the script waits (bounded) for the machine to be idle and a pair during "
                 f"which other processes used > {max_foreign:g} cores is re-measured (up to {retries} times); CPU "
                 f"used by other processes during the pairs: median {foreign_median:.2f} cores, "
                 f"max {max(foreign, default=0):.2f} cores.")
    return "\n".join(lines)


def machine() -> str:
    return (
        f"nproc {os.cpu_count()}, torch {torch.__version__} (num_threads {torch.get_num_threads()}), "
        f"Python {platform.python_version()}, {platform.machine()} {platform.system()}"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7, help="timed A/B pairs per tool (after one warm-up)")
    parser.add_argument("--wait-idle", type=float, default=30.0, metavar="S",
                        help="before each pair wait up to S seconds for other processes to leave the CPU (0: off)")
    parser.add_argument("--max-foreign", type=float, default=0.25, metavar="CORES",
                        help="re-measure a pair during which other processes used more than CORES cores")
    parser.add_argument("--retries", type=int, default=3, help="re-measurements per contended pair")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--tools", nargs="+", default=[t for t in TOOLS if t != "plain"],
                        choices=[t for t in TOOLS if t != "plain"])
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows: list[Row] = []
    for model in args.models:
        rows += measure(model, args.tools, args.pairs, wait_s=args.wait_idle, log=sys.stderr,
                        max_foreign=args.max_foreign, retries=args.retries)
    exe = Path(sys.executable)
    exe_text = os.path.relpath(exe) if exe.is_relative_to(Path.cwd()) else str(exe)
    cli = sys.argv[1:] if argv is None else argv
    command = " ".join(shlex.quote(a) for a in [exe_text, "-m", "benchmarks.overhead_table", *cli])
    text = "\n".join([
        markdown(rows, args.pairs, args.max_foreign, args.retries),
        "",
        f"Command: `{command}` (from the repository root)",
        "",
        f"Machine: {machine()}",
    ])
    print(text)
    return text


if __name__ == "__main__":
    main()
