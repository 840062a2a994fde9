"""Rich renderables of a profiled run: layer table, energy table, notes.

Pure functions over a :class:`~snnprof.run.Run` (counts plus typed energy estimates) or a bare
:class:`~snnprof.counting.ProfileResult` (counts only): they build Rich objects and never print;
the CLI decides where output goes.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.counting.results import ProfileResult
from snnprof.counting.table import layer_table as result_table
from snnprof.counting.table import per_sample_line, title_line
from snnprof.energy.estimate import EnergyResult
from snnprof.run import Run
from snnprof.units import format_count, format_energy_pj, format_rate, printable

Shown = ProfileResult | Run

__all__ = [
    "energy_table", "layer_table", "notes", "per_sample_line", "pool_folding_line", "render_result", "title_line",
    "valid_slots_line",
]



def _scale(result: ProfileResult, per_sample: bool) -> int:
    """Divisor applied to totals: the batch size in per-sample mode, else 1."""
    return max(result.batch_size, 1) if per_sample else 1


def _split(shown: Shown) -> tuple[ProfileResult, Mapping[str, EnergyResult]]:
    """The counts and the energy estimates (none for a bare result)."""
    if isinstance(shown, Run):
        return shown.result, shown.energy
    return shown, {}


def _first_energy(energies: Mapping[str, EnergyResult]) -> tuple[str, EnergyResult] | None:
    """The first profile's energy entry (it gets the per-layer column), if any."""
    for name, entry in energies.items():
        return name, entry
    return None


def _layer_energy(energy: EnergyResult | None, name: str, divisor: int) -> str:
    """Per-layer energy cell."""
    if energy is None:
        return ""
    value = energy.layers.get(name)
    return "—" if value is None else format_energy_pj(value / divisor)


def layer_table(shown: Shown, per_sample: bool = False) -> Table:
    """Per-layer table: name, type, input kind, MACs, SOPs, firing rate, energy (first profile).

    The table of a bare result is :func:`snnprof.counting.table.layer_table` (what ``print(result)``
    shows); a run adds its first profile's energy column.

    Args:
        shown: a run (its first profile fills the energy column) or a bare profiling result.
        per_sample: divide counts and energies by the batch size.

    Returns:
        A Rich table ending with a bold totals row.
    """
    result, energies = _split(shown)
    first = _first_energy(energies)
    if first is None:
        return result_table(result, per_sample)
    name, energy = first
    divisor = _scale(result, per_sample)
    cells = {rec.name: _layer_energy(energy, rec.name, divisor) for rec in result.layers}
    return result_table(result, per_sample, energy=(name, cells, format_energy_pj(energy.total_pj / divisor)))


def pool_folding_line(shown: Shown) -> Text | None:
    """The other pool-folding view per sample (counts, and energy when priced), when the views differ."""
    result, _ = _split(shown)
    tot = result.totals
    if not result.folds_pools or tot.macs_folded is None or tot.macs_unfolded is None:
        return None
    layers = sum(1 for rec in result.layers if rec.folded_calls)
    batch = max(result.batch_size, 1)
    if result.fold_pooling:
        macs, sops, what = tot.macs_unfolded, tot.sops_unfolded, "with pools not folded (fold_pooling = false)"
    else:
        macs, sops, what = tot.macs_folded, tot.sops_folded, "with pools folded (fold_pooling = true)"
    assert sops is not None
    other = shown.other_pool_view if isinstance(shown, Run) else {}
    energy = "".join(f" · {name} {format_energy_pj(e.per_sample_pj)}" for name, e in other.items())
    return Text(f"{layers} synaptic layer(s) fed by average/sum-pooled spikes; {what}, per sample: "
                f"MACs {format_count(macs / batch)} · SOPs {format_count(sops / batch)}{energy}")


def valid_slots_line(result: ProfileResult) -> Text | None:
    """Padding and firing rate over valid slots, for models that mark them (else ``None``)."""
    tot = result.totals
    if tot.valid_updates is None or not tot.neuron_updates:
        return None
    padding = 1.0 - tot.valid_updates / tot.neuron_updates
    return Text(f"valid slots: padding {format_rate(padding)} of neuron updates · valid updates per sample "
                f"{format_count(tot.valid_updates / max(result.batch_size, 1))} · firing rate (valid slots) "
                f"{format_rate(tot.firing_rate_valid)} (all slots {format_rate(tot.firing_rate)})")


def _terms(by_term: Mapping[str, float], divisor: int) -> str:
    """Energy terms, largest first (``mac 1.2 µJ · ac 30 nJ``)."""
    ordered = sorted(by_term.items(), key=lambda kv: -abs(kv[1]))
    return " · ".join(f"{term} {format_energy_pj(value / divisor)}" for term, value in ordered if value)


def energy_table(shown: Shown, per_sample: bool = False) -> Table | None:
    """Energy per hardware profile: total, per sample, terms and the profile's fidelity.

    Args:
        shown: a run with its energy estimates (a bare result has none).
        per_sample: show the terms per sample instead of for the whole run.

    Returns:
        The table, or ``None`` when no energy was estimated.
    """
    result, energies = _split(shown)
    if not energies:
        return None
    divisor = _scale(result, per_sample)
    table = Table(title="Energy (estimated)", title_justify="left")
    table.add_column("profile")
    table.add_column("total", justify="right")
    table.add_column("per sample", justify="right")
    table.add_column("terms per sample" if per_sample else "terms", overflow="fold")
    table.add_column("fidelity")
    table.add_column("ops priced", justify="right")
    for name, entry in energies.items():
        table.add_row(
            name + (f" + host {entry.host_profile}" if entry.host_profile else ""),
            format_energy_pj(entry.total_pj),
            format_energy_pj(entry.per_sample_pj),
            _terms(entry.by_term_pj, divisor),
            str(entry.provenance.get("fidelity", "?")),
            Text(format_rate(entry.coverage), style="" if entry.coverage >= 1 else "yellow"),
        )
    return table


def notes(shown: Shown) -> list[Text]:
    """Warnings, ops without a rule and modules that never ran, in yellow (empty when clean)."""
    result, energies = _split(shown)
    lines: list[Text] = []
    if result.unsupported:
        lines.append(Text(printable("no counting rule (not counted): " + ", ".join(result.unsupported)),
                          style="yellow"))
    if result.uncalled:
        lines.append(Text(printable("modules with parameters never ran: " + ", ".join(result.uncalled)),
                          style="yellow"))
    lines += [Text(printable(f"warning: {w}"), style="yellow") for w in result.warnings]
    for name, entry in energies.items():
        lines += [Text(printable(f"warning ({name}): {w}"), style="yellow") for w in entry.warnings]
    return lines


def render_result(shown: Shown, per_sample: bool = False) -> RenderableType:
    """Everything ``snnprof count`` shows: header, layer table, per-sample line, energy, notes.

    Args:
        shown: a priced run, or a bare profiling result (no energy table).
        per_sample: divide counts and energies by the batch size.
    """
    result, _ = _split(shown)
    parts: list[RenderableType] = [
        title_line(result),
        layer_table(shown, per_sample),
        per_sample_line(result),
    ]
    parts += [line for line in (valid_slots_line(result), pool_folding_line(shown)) if line is not None]
    energy = energy_table(shown, per_sample)
    if energy is not None:
        parts.append(energy)
    parts += notes(shown)
    return Group(*parts)
