"""Rich rendering of a :class:`~snnprof.compare.Comparison` (``snnprof compare``): pure, never prints.

One table, one column per config plus a ``/ first`` ratio column after every config but the first;
counts and energies are per sample (per rendered image for the NeRF models), T and B per render chunk
(mean / max over the chunks).
Below the table, one line per profile and config with the first config's energy reduction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.compare import Comparison, ConfigRun
from snnprof.render.units import format_count, format_energy_pj, format_rate

__all__ = ["comparison_table", "reduction_lines", "render_comparison"]

logger = logging.getLogger(__name__)

_DASH = "—"

Cell = Callable[[ConfigRun], str]


def _num(value: float | None, digits: int = 1) -> str:
    """A plain number with ``digits`` decimals (em dash for ``None``)."""
    return _DASH if value is None else f"{value:.{digits}f}"


def _count(value: float | None) -> str:
    """An operation count (em dash for ``None``)."""
    return _DASH if value is None else format_count(value)


def _ratio(value: float | None) -> str:
    """A ratio against the first config (``×0.42``)."""
    if value is None:
        return _DASH
    return f"×{value:.2f}" if 0.01 <= abs(value) < 100 else f"×{value:.3g}"


def _mean_max(mean: float | None, peak: int | None) -> str:
    """``mean / max`` of a per-chunk size."""
    return _DASH if mean is None else f"{mean:.1f} / {peak}"


def _rows(cmp: Comparison) -> list[tuple[str, str | None, Cell]]:
    """``(label, metric key for the ratio column or None, cell function)`` for every table row."""
    rows: list[tuple[str, str | None, Cell]] = [
        ("model", None, lambda r: r.model),
        ("T mean / max", "time_steps_mean",
         lambda r: _mean_max(r.render.time_steps_mean, r.render.time_steps_max) if r.render else _DASH),
        ("B mean / max", "batch_mean",
         lambda r: _mean_max(r.render.batch_mean, r.render.batch_max) if r.render else _DASH),
        ("padding", "padding_fraction",
         lambda r: format_rate(r.render.padding_fraction) if r.render else _DASH),
        ("points M", "points", lambda r: _count(r.metrics()["points"])),
        ("MACs", "macs", lambda r: _count(r.metrics()["macs"])),
        ("SOPs", "sops", lambda r: _count(r.metrics()["sops"])),
        ("spikes", "spikes", lambda r: _count(r.metrics()["spikes"])),
        ("fire rate", "firing_rate", lambda r: format_rate(r.metrics()["firing_rate"])),
    ]
    for layer in cmp.neuron_layers():
        rows.append((f"fr {layer}", None, lambda r, n=layer: format_rate(r.firing_rates().get(n))))
    for profile in cmp.profiles:
        rows.append((f"E {profile}", f"energy_pj.{profile}",
                     lambda r, p=profile: format_energy_pj(r.energy_pj(p))))
    rows += [
        ("PSNR dB", "psnr", lambda r: _num(r.quality.get("psnr"), 2)),
        ("SSIM", "ssim", lambda r: _num(r.quality.get("ssim"), 4)),
        ("wall s", "wall_s", lambda r: _num(r.wall_s, 2)),
    ]
    return rows


def comparison_table(cmp: Comparison) -> Table:
    """The side-by-side table (per sample: per rendered image for NeRF models)."""
    batches = sorted({r.result.batch_size for r in cmp.runs})
    title = (f"Comparison: counts and energy (E) per sample (batch {', '.join(map(str, batches))}); T and B of the "
             "SNN tensor per render chunk; fr = firing rate; ratios / first config")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    for i, run in enumerate(cmp.runs):
        table.add_column(run.label, justify="right", overflow="fold")
        if i:
            table.add_column("/ first", justify="right", style="dim")
    for label, key, cell in _rows(cmp):
        row = [label]
        for i, run in enumerate(cmp.runs):
            row.append(cell(run))
            if i:
                row.append(_ratio(cmp.ratios[i].get(key)) if key else "")
        table.add_row(*row)
    return table


def reduction_lines(cmp: Comparison) -> list[str]:
    """``"A vs B on P: 73.4 % less energy (A/B = 0.266)"`` for every profile and other config."""
    first = cmp.runs[0].label
    lines = []
    for profile, others in cmp.energy_reduction_pct.items():
        for label, pct in others.items():
            if pct is None:
                lines.append(f"{first} vs {label} on {profile}: energy reduction undefined (zero energy)")
                continue
            if abs(pct) < 0.005:
                lines.append(f"{first} vs {label} on {profile}: the same energy (difference {pct:+.1e} %)")
                continue
            word = "less" if pct > 0 else "more"
            lines.append(f"{first} vs {label} on {profile}: {abs(pct):.2f} % {word} energy "
                         f"({first}/{label} = {1 - pct / 100:.3f})")
    return lines


def render_comparison(cmp: Comparison) -> RenderableType:
    """Table, energy-reduction lines, quality notes and warnings as one Rich renderable."""
    parts: list[RenderableType] = [comparison_table(cmp)]
    parts += [Text(line) for line in reduction_lines(cmp)]
    notes = sorted({f"quality: {r.label}: {r.quality_note}" for r in cmp.runs if r.quality_note})
    parts += [Text(n, style="dim") for n in notes]
    parts += [Text(f"warning: {w}", style="yellow") for w in cmp.warnings]
    return Group(*parts)
