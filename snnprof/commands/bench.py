"""``snnprof bench``: neuron-kernel and event-driven synapse benchmarks (computing: :mod:`snnprof.kernels.bench`).

Parses the options into a :class:`~snnprof.kernels.bench.BenchConfig`, runs it with a progress line
on stderr, prints Rich tables and optionally writes the JSON report (schema ``snnprof.bench/1``).
``--device cuda`` without a usable GPU exits with code 3 and one sentence; bad option values exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.cli_common import check_outputs, err_console, errors, out_console, strict_json, write_outputs
from snnprof.errors import HardwareMissingError, SnnprofError
from snnprof.run import json_safe

if TYPE_CHECKING:
    from snnprof.kernels.bench import BenchConfig, BenchReport, NeuronRow, SynapseRow

__all__ = ["parse_config", "register", "render_report"]

_KERNELS = ("lif", "if", "plif", "synapse")


def _split(text: str, option: str) -> list[str]:
    """Comma-separated values of an option (empty items rejected)."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise SnnprofError(f"{option} {text!r}: expected a comma-separated list")
    return items


def _ints(text: str, option: str) -> tuple[int, ...]:
    """Positive integers of a comma-separated option."""
    try:
        values = tuple(int(item) for item in _split(text, option))
    except ValueError:
        raise SnnprofError(f"{option} {text!r}: expected comma-separated positive integers") from None
    if any(v <= 0 for v in values):
        raise SnnprofError(f"{option} {text!r}: expected comma-separated positive integers")
    return values


def _choices(text: str, option: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Items of a comma-separated option, each one of ``allowed``."""
    items = tuple(_split(text, option))
    bad = [item for item in items if item not in allowed]
    if bad:
        raise SnnprofError(f"{option} {text!r}: unknown {', '.join(bad)}; expected some of {', '.join(allowed)}")
    return items


def _rates(text: str) -> tuple[float, ...]:
    """Firing rates given in percent -> fractions in (0, 1]."""
    try:
        values = tuple(float(item) / 100 for item in _split(text, "--rates"))
    except ValueError:
        raise SnnprofError(f"--rates {text!r}: expected comma-separated percentages in (0, 100]") from None
    if any(not 0 < v <= 1 for v in values):
        raise SnnprofError(f"--rates {text!r}: expected comma-separated percentages in (0, 100]")
    return tuple(sorted(values))


def _check_device(device: str) -> None:
    """Refuse ``cuda`` without a usable GPU (exit 3) and unknown devices (exit 2)."""
    import torch

    if device not in ("cpu", "cuda"):
        raise SnnprofError(f"--device {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise HardwareMissingError(
            f"--device cuda needs an NVIDIA GPU, but this torch ({torch.__version__}) sees no CUDA device."
        )


def parse_config(
    *,
    kernels: str,
    steps: str | None,
    neurons: str | None,
    device: str,
    impls: str | None,
    modes: str,
    rounds: int | None,
    rates: str | None,
    quick: bool,
    threads: int | None = None,
) -> BenchConfig:
    """Turn the command-line strings into a config (raises SnnprofError naming the bad option)."""
    from snnprof.kernels import NEURON_IMPLS
    from snnprof.kernels.bench import MODES, QUICK_LAYERS, BenchConfig

    base = BenchConfig()
    if quick:  # seconds, not minutes
        base = BenchConfig(steps=(4,), neurons=(16384,), rounds=3, rates=(0.001, 0.05, 0.5), layers=QUICK_LAYERS)

    _check_device(device)
    if rounds is not None and rounds < 1:
        raise SnnprofError(f"--rounds {rounds}: expected a positive integer")
    if threads is not None and threads < 1:
        raise SnnprofError(f"--threads {threads}: expected a positive integer")
    names = tuple(i.name for i in NEURON_IMPLS)
    chosen = _choices(impls, "--impls", names) if impls else None
    if quick and chosen is None:  # compiling with Inductor takes tens of seconds: not quick
        chosen = tuple(n for n in names if n != "compiled")
    return BenchConfig(
        kernels=_choices(kernels, "--kernels", _KERNELS),
        steps=_ints(steps, "--T") if steps else base.steps,
        neurons=_ints(neurons, "--N") if neurons else base.neurons,
        device=device,
        impls=chosen,
        modes=_choices(modes, "--mode", MODES),
        rounds=rounds or base.rounds,
        rates=_rates(rates) if rates else base.rates,
        layers=base.layers,
        threads=threads,
    )


# --------------------------------------------------------------------------- rendering


def _ms(seconds: float | None) -> str:
    """Milliseconds with about 3 significant digits, never in exponent notation."""
    if seconds is None:
        return "—"
    return _num(seconds * 1e3)


def _num(value: float | None) -> str:
    """About 3 significant digits, never in exponent notation."""
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _n(value: int) -> str:
    """Neuron counts: powers of two as ``2^k``."""
    return f"2^{value.bit_length() - 1}" if value >= 1024 and value & (value - 1) == 0 else str(value)


def _table(title: str, headers: tuple[str, ...], left: int) -> Table:
    """A compact table; the first ``left`` columns are left-aligned and may fold, the numbers are never cut."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for i, header in enumerate(headers):
        if i < left:
            table.add_column(header, justify="left", overflow="fold")
        else:
            table.add_column(header, justify="right", no_wrap=True, min_width=max(len(header), 5))
    return table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _neuron_table(rows: list[NeuronRow], gpu: bool) -> Table:
    """One line per implementation and case (untimed rows show their status; reasons follow the table)."""
    stream = any(r.stream_gbs is not None for r in rows)
    headers = ("case", "mode", "impl", "ms", "IQR", "Mupd/s", "×eager", "×SJ", "GB/s")
    headers += (("%STREAM",) if stream else ()) + (("%peak",) if gpu else ())
    table = _table("Neuron kernels: time per call (median, interquartile range)", headers, 3)
    previous = None
    for r in rows:
        case = f"{r.kernel} {r.steps}×{_n(r.neurons)}"
        shown = case if (case, r.mode) != previous else ""
        previous = (case, r.mode)
        t = r.timing
        cells = [
            shown, r.mode if shown else "", r.impl + ("" if r.verified else "*"),
            _ms(t.median_s) if t else r.status, _ms(t.iqr_s) if t else "",
            "—" if r.throughput is None else _num(r.throughput / 1e6),
            _x(r.speedup_vs_eager), _x(r.speedup_vs_sj),
            _num(r.bandwidth_gbs),
        ]  # fmt: skip
        if stream:
            cells.append(_pct(r.stream_fraction))
        if gpu:
            cells.append(_pct(r.peak_fraction))
        table.add_row(*cells, style=None if r.status == "ok" else "yellow")
    return table


def _synapse_table(rows: list[SynapseRow]) -> Table:
    """One line per layer, rate and method."""
    headers = ("layer", "rate", "events", "method", "ms", "IQR", "×dense")
    table = _table("Synaptic layers: dense vs event-driven (time per call)", headers, 1)
    previous = None
    for r in rows:
        key = (r.layer, r.rate)
        t = r.timing
        table.add_row(
            r.layer if key != previous else "", f"{r.rate:.1%}" if key != previous else "",
            str(r.events) if key != previous else "", r.method, _ms(t.median_s) if t else r.status,
            _ms(t.iqr_s) if t else "", _x(r.speedup_vs_dense), style=None if r.status == "ok" else "yellow",
        )  # fmt: skip
        previous = key
    return table


def _stream_lines(report: BenchReport) -> list[str]:
    """The machine's streaming bandwidth, and what the bandwidth columns mean."""
    if report.stream is None:
        reason = report.environment.get("stream_unavailable")
        return [f"STREAM bandwidth not measured: {reason}"] if reason else []
    s, after = report.stream, report.stream_after
    where = f"{s.threads} threads" if s.device == "cpu" else "GPU"
    line = (
        f"STREAM ({where}, 3 arrays of {s.array_bytes >> 20} MiB, median of {s.reps}): copy {s.copy_gbs:.1f} GB/s, "
        f"triad {s.triad_gbs:.1f} GB/s"
    )
    if s.copy_plain_gbs is not None:
        line += f" (non-temporal stores; copy with plain stores {s.copy_plain_gbs:.1f} GB/s)"
    if after is not None:
        line += f"; after the cases: copy {after.copy_gbs:.1f}, triad {after.triad_gbs:.1f} GB/s"
    return [
        line,
        "GB/s: bytes the operation must move (docs/kernels.md) / median time; %STREAM: that over the better of "
        "STREAM copy and triad timed in the same rounds as the case",
    ]


def _notes(report: BenchReport) -> list[str]:
    """Reasons of rows that were not timed, the unverified marker and the crossovers."""
    lines = _stream_lines(report) if report.neuron_rows else []
    lines += [
        f"{r.kernel} T={r.steps} N={r.neurons} {r.mode} {r.impl}: {r.status}: {r.reason}"
        for r in report.neuron_rows
        if r.status != "ok"
    ]
    lines += [
        f"{r.layer} {r.rate:.1%} {r.method}: {r.status}: {r.reason}" for r in report.synapse_rows if r.status != "ok"
    ]
    if any(not r.verified for r in report.neuron_rows):
        lines.append("* unverified: written without access to this device type; checked by the gate above")
    shapes = dict.fromkeys((r.layer, r.shape) for r in report.synapse_rows)
    lines += [f"{layer}: {shape}" for layer, shape in shapes]
    lines += [f"crossover {c.layer} {c.method}: {c.note}" for c in report.crossovers]
    load, cpus = report.environment.get("load_average_1min"), report.environment.get("cpus")
    if load is not None and cpus and load > cpus:
        lines.append(f"warning: load average {load:.1f} on {cpus} CPUs: other processes compete, times are inflated")
    return lines


def render_report(report: BenchReport) -> RenderableType:
    """The whole report as Rich renderables (environment line, tables, notes)."""
    env = report.environment
    head = (
        f"{env.get('gpu') or env.get('cpu')} · {env['threads']} threads · torch {env['torch']} · "
        f"spikingjelly {env['spikingjelly']} · load average {env.get('load_average_1min') or 0:.1f}"
    )
    parts: list[RenderableType] = [Text(head, style="bold")]
    if report.neuron_rows:
        parts.append(_neuron_table(report.neuron_rows, gpu=env["device"] == "cuda"))
    if report.synapse_rows:
        parts.append(_synapse_table(report.synapse_rows))
    parts.extend(Text(line) for line in _notes(report))
    return Group(*parts)


# --------------------------------------------------------------------------- command


def register(app: typer.Typer) -> None:
    """Add ``snnprof bench`` to the app."""

    @app.command()
    def bench(
        *,
        kernels: Annotated[str, typer.Option("--kernels", help="Comma list of lif, if, plif, synapse.")] = (
            "lif,if,plif,synapse"
        ),
        steps: Annotated[str | None, typer.Option("--T", help="Time steps, comma list (default 16).")] = None,
        neurons: Annotated[str | None, typer.Option("--N", help="Neurons, comma list (default 1048576).")] = None,
        device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
        impls: Annotated[
            str | None, typer.Option("--impls", help="Comma list of implementations (default: all for the device).")
        ] = None,
        modes: Annotated[str, typer.Option("--mode", help="fwd and/or fwd+bwd, comma list.")] = "fwd,fwd+bwd",
        rounds: Annotated[
            int | None, typer.Option("--rounds", help="Timed calls per case (default 10; 3 with --quick).")
        ] = None,
        rates: Annotated[
            str | None,
            typer.Option("--rates", help="Synapse firing rates in percent, comma list (default 0.1,0.2,...,50)."),
        ] = None,
        quick: Annotated[
            bool, typer.Option("--quick", help="Small sizes, 3 rounds, no torch.compile: a smoke test in seconds.")
        ] = False,
        threads: Annotated[
            int | None,
            typer.Option("--threads", help="CPU threads for the run (torch.set_num_threads; default: torch's)."),
        ] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="Write the report (snnprof.bench/1).")] = None,
    ) -> None:
        """Benchmark neuron kernels (eager, SpikingJelly, torch.compile, our fused kernel) and event-driven synapses.

        Every implementation is first checked against the eager reference (spikes identical, membrane and
        gradients within tolerance); a mismatch is reported as FAILED and not timed.

        Example: [bold]snnprof bench --kernels lif --T 16 --N 1048576 --json bench.json[/bold]
        """
        from snnprof.kernels.bench import run_bench

        check_outputs(json_out)
        with errors():
            config = parse_config(
                kernels=kernels, steps=steps, neurons=neurons, device=device, impls=impls, modes=modes,
                rounds=rounds, rates=rates, quick=quick, threads=threads,
            )  # fmt: skip
            with err_console.status("benchmarking ...") as status:
                report = run_bench(config, progress=lambda text: status.update(f"benchmarking {text} ..."))
            if json_out is not None:
                write_outputs({json_out: strict_json(json_safe(report.to_dict()))})
        out_console.print(render_report(report))
        if json_out is not None:
            out_console.print(f"wrote {json_out}", highlight=False)
