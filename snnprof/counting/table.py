"""The compact per-layer table of a result, as Rich renderables, plain text and HTML.

One builder serves ``snnprof count`` (which adds an energy column, :mod:`snnprof.render.terminal`),
``print(result)`` and ``result._repr_html_()`` in notebooks, so the three show the same rows:
layer, type, input kind, MACs, SOPs and firing rate, a bold total, and the per-sample line.
``result.table(depth=1)`` gives the same columns per module prefix (:meth:`ProfileResult.by_module`).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.units import format_count, format_rate, printable


class Totals(Protocol):
    """The totals a table reads (:class:`snnprof.counting.results.Totals`)."""

    macs: int
    sops: int
    neuron_updates: int
    firing_rate: float


class LayerRecord(Protocol):
    """The per-layer fields a table reads (:class:`snnprof.counting.results.LayerRecord`)."""

    name: str
    type: str
    input_kind: str
    macs: int
    sops: int
    firing_rate: float | None


class ProfileResult(Protocol):
    """The result fields a table reads (:class:`snnprof.counting.results.ProfileResult`; no import: it imports us)."""

    model: str
    layers: Sequence[Any]
    totals: Any
    batch_size: int
    time_steps: int
    sop_convention: str
    count_weighting: str
    unsupported: list[str]
    uncalled: list[str]

    @property
    def per_sample(self) -> dict[str, float | int]:
        """Totals divided by the batch."""
        ...

    def by_module(self, depth: int = 1) -> dict[str, Any]:
        """Totals per module prefix."""
        ...

__all__ = ["EnergyColumn", "layer_table", "per_sample_line", "result_html", "result_text", "title_line"]

_COUNT_COLUMNS: tuple[tuple[str, str], ...] = (("MACs", "macs"), ("SOPs", "sops"))
_NAME_MIN_WIDTH = 10
_TYPE_MAX_WIDTH = 12
_KIND_MAX_WIDTH = 9
_FOLDED_KIND_WIDTH = 14  # "spike (folded)"
#: Width of the text that ``print(result)`` renders (wide enough for every column).
TEXT_WIDTH = 100

#: An extra last column: ``(header, cell per layer name, cell of the total row)``.
EnergyColumn = tuple[str, Mapping[str, str], str]


def _count(value: float, divisor: int) -> str:
    """Format a count divided by ``divisor`` (exact integer quotients stay integers)."""
    if divisor == 1:
        return format_count(value)
    if isinstance(value, int) and value % divisor == 0:
        return format_count(value // divisor)
    return format_count(value / divisor)


def _rate(totals: Totals) -> str:
    return format_rate(totals.firing_rate if totals.neuron_updates else None)


def _valid(result: ProfileResult) -> bool:
    """Whether the result records valid-slot firing rates (a model that pads its ``[T, B]`` layout)."""
    return getattr(result.totals, "valid_updates", None) is not None


def _valid_rate(rec: Any) -> str:
    return format_rate(rec.firing_rate_valid if getattr(rec, "valid_updates", None) is not None else rec.firing_rate)


def layer_rows(result: ProfileResult, per_sample: bool = False) -> list[list[str]]:
    """One row of cells per layer: name, type, input kind, MACs, SOPs, firing rate (and valid-slot rate)."""
    divisor = max(result.batch_size, 1) if per_sample else 1
    valid = _valid(result)
    return [[printable(rec.name), printable(rec.type), printable(rec.input_kind),
             *(_count(getattr(rec, attr), divisor) for _, attr in _COUNT_COLUMNS), format_rate(rec.firing_rate),
             *([_valid_rate(rec)] if valid else [])]
            for rec in result.layers]


def _module_rows(groups: Mapping[str, Totals], divisor: int, valid: bool) -> list[list[str]]:
    return [[printable(name or "(model)"), *(_count(getattr(tot, attr), divisor) for _, attr in _COUNT_COLUMNS),
             _rate(tot), *([format_rate(getattr(tot, "firing_rate_valid", None))] if valid else [])]
            for name, tot in groups.items()]


def layer_table(result: ProfileResult, per_sample: bool = False, energy: EnergyColumn | None = None,
                depth: int | None = None) -> Table:
    """The per-layer (or, with ``depth``, per-module) table ending with a bold total row.

    Args:
        result: the profiling result.
        per_sample: divide counts by the batch size.
        energy: an extra column (what ``snnprof count`` adds for its first hardware profile).
        depth: group layers by their first ``depth`` module-path components instead.
    """
    divisor = max(result.batch_size, 1) if per_sample else 1
    scope = "per sample" if per_sample else f"whole run, batch {result.batch_size}"
    if energy is not None:
        scope += f"; energy on {energy[0]}"
    what = "Layers" if depth is None else f"Modules (depth {depth})"
    table = Table(title=f"{what} ({scope})", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    valid = _valid(result)
    rows = layer_rows(result, per_sample) if depth is None else _module_rows(result.by_module(depth), divisor, valid)
    longest = max((len(row[0]) for row in rows), default=5)
    table.add_column("layer" if depth is None else "module", overflow="fold", min_width=min(longest, _NAME_MIN_WIDTH))
    if depth is None:
        table.add_column("type", no_wrap=True, overflow="ellipsis", max_width=_TYPE_MAX_WIDTH)
        folded = getattr(result, "fold_pooling", False) and getattr(result, "folds_pools", False)
        table.add_column("input", no_wrap=True, overflow="ellipsis",
                         max_width=_FOLDED_KIND_WIDTH if folded else _KIND_MAX_WIDTH)
    for header, _ in _COUNT_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("fire rate", justify="right", no_wrap=True)
    if valid:
        table.add_column("valid rate", justify="right", no_wrap=True)
    if energy is not None:
        table.add_column("energy", justify="right", no_wrap=True)
    names = [rec.name for rec in result.layers]
    for k, row in enumerate(rows):
        tail = [energy[1].get(names[k], "—")] if energy is not None and depth is None else []
        table.add_row(*row, *tail)
    table.add_section()
    totals = [_count(getattr(result.totals, attr), divisor) for _, attr in _COUNT_COLUMNS]
    tail = [energy[2]] if energy is not None else []
    blanks = ["", ""] if depth is None else []
    rates = [_rate(result.totals), *([format_rate(result.totals.firing_rate_valid)] if valid else [])]
    table.add_row("total", *blanks, *totals, *rates, *tail, style="bold")
    return table


def title_line(result: ProfileResult) -> Text:
    """One-line header: model, batch, time steps and the counting conventions.

    The pool-folding convention is named when it is on or when it changes the counts.
    """
    fold, differs = getattr(result, "fold_pooling", False), getattr(result, "folds_pools", False)
    folding = f" · pool folding {'on' if fold else 'off'}" if fold or differs else ""
    return Text.assemble(
        (printable(result.model), "bold"),
        f"  batch {result.batch_size} · T {result.time_steps} · SOPs {result.sop_convention}"
        f" · count weighting {result.count_weighting}{folding}",
    )


def per_sample_line(result: ProfileResult) -> Text:
    """Per-sample summary: MACs, dense MACs, SOPs, spikes and mean firing rate."""
    per = result.per_sample
    parts = [
        f"MACs {format_count(per['macs'])}",
        f"dense MACs {format_count(per['dense_macs'])}",
        f"SOPs {format_count(per['sops'])}",
        f"spikes {format_count(per['spikes'])}",
        f"firing rate {_rate(result.totals)}",
    ]
    return Text("per sample: " + " · ".join(parts))


def _notes(result: ProfileResult) -> list[str]:
    lines = []
    if result.unsupported:
        lines.append("no counting rule (not counted): " + ", ".join(result.unsupported))
    if result.uncalled:
        lines.append("modules with parameters never ran: " + ", ".join(result.uncalled))
    return lines


def result_text(result: ProfileResult, depth: int | None = None, width: int = TEXT_WIDTH) -> str:
    """What ``print(result)`` shows: header, table, per-sample line and what was not counted (plain text)."""
    sink = io.StringIO()
    console = Console(file=sink, width=width, color_system=None, markup=False, emoji=False, highlight=False,
                      force_terminal=False)
    parts: list[RenderableType] = [title_line(result), layer_table(result, depth=depth), per_sample_line(result)]
    parts += [Text(printable(line)) for line in _notes(result)]
    console.print(Group(*parts))
    return "\n".join(line.rstrip() for line in sink.getvalue().splitlines()).strip("\n")


def _html_row(cells: Sequence[str], tag: str = "td", bold: bool = False) -> str:
    style = ' style="font-weight:bold"' if bold else ""
    inner = "".join(f'<{tag} style="text-align:{"left" if i < 3 else "right"}">{html.escape(c)}</{tag}>'
                    for i, c in enumerate(cells))
    return f"<tr{style}>{inner}</tr>"


def result_html(result: ProfileResult) -> str:
    """The same table as HTML (what notebooks show for ``result``), every value escaped."""
    header = ["layer", "type", "input", *(h for h, _ in _COUNT_COLUMNS), "fire rate"]
    totals = ["total", "", "", *(_count(getattr(result.totals, a), 1) for _, a in _COUNT_COLUMNS), _rate(result.totals)]
    body = "".join(_html_row(row) for row in layer_rows(result)) + _html_row(totals, bold=True)
    notes = "".join(f"<p>{html.escape(line)}</p>" for line in _notes(result))
    return (f"<div><p><b>{html.escape(result.model)}</b> {html.escape(title_line(result).plain[len(result.model):])}"
            f"</p><table><thead>{_html_row(header, 'th')}</thead><tbody>{body}</tbody></table>"
            f"<p>{html.escape(per_sample_line(result).plain)}</p>{notes}</div>")


def record_module(name: str, depth: int) -> str:
    """The module prefix of a layer name at ``depth`` (``"features.0/add.0"`` at depth 1: ``"features"``).

    Functional ops of the root (``"(root)/add.0"``) and the root module itself (``""``) group under ``""``.
    """
    path = name.split("/", 1)[0]
    if path == "(root)":
        return ""
    return ".".join(path.split(".")[:depth]) if depth > 0 else ""


def group_layers(layers: Sequence[LayerRecord], depth: int) -> dict[str, list[LayerRecord]]:
    """Layers grouped by module prefix at ``depth``, in first-appearance order."""
    groups: dict[str, list[LayerRecord]] = {}
    for rec in layers:
        groups.setdefault(record_module(rec.name, depth), []).append(rec)
    return groups
