"""Terminal rendering of the spread across samples (the ``--dataset`` part of ``snnprof count``)."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table

from snnprof.counting.sample_stats import SAMPLE_FIELDS, SampleStats, Spread
from snnprof.units import format_count, format_energy_pj

__all__ = ["sample_stats_table"]

_LABELS = {"macs": "MACs", "sops": "SOPs", "spikes": "spikes"}


def _row(label: str, spread: Spread, fmt: Callable[[float], str]) -> list[str]:
    def cell(value: float | None) -> str:
        return "—" if value is None else fmt(value)

    return [label, cell(spread.mean), cell(spread.std), cell(spread.min), cell(spread.max)]


def sample_stats_table(stats: SampleStats) -> Table:
    """Mean, std (population), min and max per sample of MACs, SOPs, spikes and energy per profile."""
    table = Table(title=f"Across samples (n = {stats.n:,}; std over samples, ddof 0)", title_justify="left")
    table.add_column("per sample")
    for header in ("mean", "std", "min", "max"):
        table.add_column(header, justify="right")
    for name in SAMPLE_FIELDS:
        table.add_row(*_row(_LABELS[name], stats.spread(name), format_count))
    for profile, spread in stats.energy.items():
        table.add_row(*_row(f"energy ({profile})", spread, format_energy_pj))
    return table
