"""Rich rendering of a :class:`~snnprof.comparison.Comparison` (``snnprof compare``): pure, never prints.

One table, one column per run plus a ``/ first`` ratio column after every run but the first;
counts and energies are per sample (per rendered image for the NeRF models), T and B per render
chunk (mean / max over the chunks). Rows that apply to no run are left out. Below the table, one
line per profile and run with the first run's energy reduction.
"""

from __future__ import annotations

import logging

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.comparison import Comparison, EnergyVerdict, Metric
from snnprof.units import format_count, format_energy_pj, format_rate, printable

__all__ = ["comparison_table", "reduction_lines", "render_comparison", "verdict_line"]

logger = logging.getLogger(__name__)

_DASH = "—"
#: ``(row label, metric key)`` of the table's rows, in order (``fr:*`` and ``energy_pj.*`` expand).
_ROWS: tuple[tuple[str, str], ...] = (
    ("T mean / max", "time_steps_mean"),
    ("B mean / max", "batch_mean"),
    ("padding", "padding_fraction"),
    ("sparsity (pooled)", "sparsity"),
    ("sparsity (seed)", "seed_sparsity"),
    ("points M", "points"),
    ("MACs", "macs"),
    ("SOPs", "sops"),
    ("MACs pools folded", "macs_folded"),
    ("SOPs pools folded", "sops_folded"),
    ("MACs pools unfolded", "macs_unfolded"),
    ("SOPs pools unfolded", "sops_unfolded"),
    ("spikes", "spikes"),
    ("fire rate", "firing_rate"),
    ("valid updates", "valid_updates"),
    ("padding (updates)", "valid_padding"),
    ("fire rate valid", "firing_rate_valid"),
    ("fr *", "fr:"),
    ("E *", "energy_pj."),
    ("E seed MLP-only *", "energy_pj_seed_mlp_only."),
    ("E GPU measured", "measured"),
    ("PSNR dB", "psnr"),
    ("SSIM", "ssim"),
    ("wall s", "wall_s"),
)
_PAIRED = {"time_steps_mean": "time_steps_max", "batch_mean": "batch_max"}


def _ratio(value: float | None) -> str:
    """A ratio against the first run (``×0.42``)."""
    if value is None:
        return _DASH
    return f"×{value:.2f}" if 0.01 <= abs(value) < 100 else f"×{value:.3g}"


def _cell(metric: Metric, i: int, pair: Metric | None) -> str:
    """One value, formatted by the metric's unit."""
    value = metric.values[i]
    if value is None:
        return _DASH
    if pair is not None:
        peak = pair.values[i]
        return f"{value:.1f} / {_DASH if peak is None else int(peak)}"
    if metric.unit == "rate":
        return format_rate(value)
    if metric.unit == "energy":
        return format_energy_pj(value)
    if metric.unit == "count":
        return format_count(value)
    digits = {"db": 2, "plain": 4, "seconds": 2}.get(metric.unit, 1)
    return f"{value:.{digits}f}"


def _table_rows(cmp: Comparison) -> list[tuple[str, Metric]]:
    """``(label, metric)`` of every row shown, in order."""
    rows: list[tuple[str, Metric]] = []
    for label, key in _ROWS:
        if key.endswith((":", ".")):
            prefix = label.removesuffix("*")
            rows += [(prefix + m.key[len(key):], m) for m in cmp.metrics if m.key.startswith(key)]
        elif (metric := cmp.metric(key)) is not None:
            rows.append((label, metric))
    return rows


def comparison_table(cmp: Comparison) -> Table:
    """The side-by-side table (per sample: per rendered image for NeRF models)."""
    batches = sorted({r.result.batch_size for r in cmp.runs})
    title = (f"Comparison: counts and energy (E) per sample (batch {', '.join(map(str, batches))}); T and B of the "
             "SNN tensor per render chunk; fr = firing rate; ratios / first config")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    for i, run in enumerate(cmp.runs):
        table.add_column(printable(run.label), justify="right", overflow="fold")
        if i:
            table.add_column("/ first", justify="right", style="dim")
    models = [printable(r.model) for r in cmp.runs]
    table.add_row("model", *[cell for i, m in enumerate(models) for cell in ([m, ""] if i else [m])])
    for label, metric in _table_rows(cmp):
        pair = cmp.metric(_PAIRED[metric.key]) if metric.key in _PAIRED else None
        row = [label]
        for i in range(len(cmp.runs)):
            row.append(_cell(metric, i, pair))
            if i:
                row.append(_ratio(metric.ratios[i]))
        table.add_row(*row)
    return table


def verdict_line(v: EnergyVerdict) -> str:
    """One verdict as a sentence a paper could quote, with what qualifies it in the same line."""
    head = f"{v.subject} vs {v.baseline} on {v.profile}"
    pct = v.reduction_pct
    if not v.comparable:
        line = f"{head}: not comparable ({v.reason})"
    elif pct is None:
        line = f"{head}: energy reduction undefined (zero energy)"
    elif abs(pct) < 0.005:
        line = f"{head}: the same energy (difference {pct:+.1e} %)"
    else:
        word = "less" if pct > 0 else "more"
        line = f"{head}: {abs(pct):.2f} % {word} energy ({v.subject}/{v.baseline} = {v.ratio:.3g})"
    if v.untrained:
        line += f" [untrained weights: {', '.join(v.untrained)}]"
    return line


def reduction_lines(cmp: Comparison) -> list[str]:
    """``"A vs B on P: 73.4 % less energy (A/B = 0.266)"`` per profile and other run, then the seed convention."""
    return [verdict_line(v) for v in (*cmp.reductions, *cmp.seed_reductions)]


def render_comparison(cmp: Comparison) -> RenderableType:
    """Table, verdict lines, the warnings that change them, quality notes and notes as one Rich renderable."""
    parts: list[RenderableType] = [comparison_table(cmp)]
    parts += [Text(printable(line), style="" if "not comparable" not in line else "yellow")
              for line in reduction_lines(cmp)]
    for label, warnings in cmp.warnings.items():
        parts += [Text(printable(f"warning ({label}, {w}"), style="yellow") for w in _with_paren(warnings)]
    notes = sorted({f"quality: {r.label}: {r.quality_note}" for r in cmp.runs if r.quality_note})
    parts += [Text(printable(n), style="dim") for n in notes]
    parts += [Text(printable(f"warning: {w}"), style="yellow") for w in cmp.notes]
    return Group(*parts)


def _with_paren(warnings: list[str]) -> list[str]:
    """``"profile: text"`` -> ``"profile): text"`` (the label's parenthesis closes after the profile)."""
    return [w.replace(": ", "): ", 1) for w in warnings]
