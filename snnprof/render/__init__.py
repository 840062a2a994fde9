"""Renderers of profiling results: Rich terminal tables, CSV text and human number formatting."""

from __future__ import annotations

from snnprof.render.csv import layers_csv
from snnprof.render.terminal import (
    energy_table,
    layer_table,
    notes,
    per_sample_line,
    render_result,
    title_line,
)
from snnprof.units import format_count, format_energy_pj, format_rate, format_si

__all__ = [
    "energy_table",
    "format_count",
    "format_energy_pj",
    "format_rate",
    "format_si",
    "layer_table",
    "layers_csv",
    "notes",
    "per_sample_line",
    "render_result",
    "title_line",
]
