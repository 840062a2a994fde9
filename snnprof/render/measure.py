"""Rich rendering of a :class:`~snnprof.energy.measure_report.MeasureReport` (``snnprof measure``): pure."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.energy.measure import Stats
from snnprof.energy.measure_report import ESTIMATE_SCOPE, MeasureReport
from snnprof.units import format_energy_pj, format_si

__all__ = ["render_measurement"]

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("energy / iteration", "energy_per_iter_j", "J"),
    ("energy / sample", "energy_per_sample_j", "J"),
    ("dynamic / iteration", "dynamic_per_iter_j", "J"),
    ("dynamic / sample", "dynamic_per_sample_j", "J"),
    ("average power", "avg_power_w", "W"),
    ("window", "wall_s", "s"),
    ("time / iteration", "iter_s", "s"),
)


def _joules(value: float | None) -> str:
    """Energy in J with an SI prefix (``—`` for ``None``)."""
    return "—" if value is None else format_energy_pj(value * 1e12)


def _plain(value: float | None, unit: str) -> str:
    """A W or s value with an SI prefix."""
    return "—" if value is None else format_si(value, unit)


def _cell(stats: Stats | None, attr: str, unit: str) -> str:
    """One formatted statistic."""
    if stats is None:
        return "—"
    value = getattr(stats, attr)
    return _joules(value) if unit == "J" else _plain(value, unit)


def _measured_table(report: MeasureReport) -> Table:
    """Mean/std/min/max of each measured quantity over the valid trials."""
    measured = report.measured
    n = len(measured.valid_trials)
    table = Table(title=f"Measured ({n} trial(s), {', '.join(measured.methods) or 'no'} method)", title_justify="left")
    table.add_column("quantity", no_wrap=True)
    for header in ("mean", "std", "min", "max"):
        table.add_column(header, justify="right", no_wrap=True)
    summary = measured.summary()
    for label, key, unit in _ROWS:
        stats = summary.get(key)
        table.add_row(label, *(_cell(stats, a, unit) for a in ("mean", "std", "min", "max")))
    return table


def _ratio(value: float | None) -> str:
    """A measured/estimated ratio, ``2,880×`` or ``1.23×``."""
    if value is None:
        return "—"
    return f"{value:,.0f}×" if abs(value) >= 1000 else f"{value:.3g}×"


def _estimate_table(report: MeasureReport) -> Table:
    """Estimated energy per sample on each profile next to the measured one."""
    total = report.per_sample_mean_j("energy_per_sample_j")
    dynamic = report.per_sample_mean_j("dynamic_per_sample_j")
    table = Table(title="Per sample: measured (mean) vs estimated (hardware profiles)", title_justify="left")
    for header in ("profile", "fidelity", "estimated", "measured", "dynamic", "dyn./est."):
        table.add_column(header, justify="left" if header in ("profile", "fidelity") else "right", no_wrap=True)
    for name, est in report.estimated.items():
        table.add_row(name, str(est.provenance.get("fidelity") or "—"), _joules(est.per_sample_pj * 1e-12),
                      _joules(total), _joules(dynamic), _ratio(report.over_estimate(name)))
    return table


def _header(report: MeasureReport) -> Text:
    """Model, mode and GPU line."""
    gpu = report.measured.gpu
    return Text(
        f"{report.model}  {report.mode} · batch {report.batch_size} · T {report.time_steps} · "
        f"GPU {gpu.index} {gpu.name} ({gpu.architecture}) · driver {gpu.driver_version} · "
        f"NVML {gpu.nvml_version} · power via {gpu.power_source}",
        style="bold",
    )


def _state_line(report: MeasureReport) -> Text:
    """Idle baseline, temperatures and SM clocks."""
    measured = report.measured
    idle = measured.idle
    parts = []
    if idle is not None and idle.power_w is not None:
        parts.append(f"idle {_plain(idle.power_w, 'W')} over {_plain(idle.duration_s, 's')} ({idle.method})")
    trials = measured.trials
    temps = [v for t in trials for v in (t.temperature_start_c, t.temperature_end_c) if v is not None]
    clocks = [v for t in trials for v in (t.sm_clock_start_mhz, t.sm_clock_end_mhz) if v is not None]
    if temps:
        parts.append(f"temperature {min(temps)}–{max(temps)} °C")
    if clocks:
        parts.append(f"SM clock {min(clocks)}–{max(clocks)} MHz")
    return Text(" · ".join(parts) or "no idle baseline")


def render_measurement(report: MeasureReport) -> RenderableType:
    """The terminal view of a measurement and its estimates."""
    parts: list[RenderableType] = [_header(report)]
    if report.status != "complete":
        parts.append(Text(f"PARTIAL RESULT: {report.measured.error}", style="bold red"))
    parts += [_measured_table(report), _state_line(report)]
    check = report.cross_check()
    if check is not None:
        parts.append(Text(f"cross-check: power sampling / energy counter = {check.mean:.3f} "
                          f"(min {check.min:.3f}, max {check.max:.3f}, {check.trials} trial(s))"))
    parts.append(_estimate_table(report))
    notes = [report.measured.tolerance, f"estimates cover the {ESTIMATE_SCOPE}"]
    notes += [f"warning: {w}" for w in report.measured.warnings]
    parts += [Text(n, style="dim" if not n.startswith("warning") else "yellow") for n in notes]
    return Group(*parts)
