"""Rich renderables of a profiled run: layer table, energy table, notes.

Pure functions over a :class:`~snnprof.run.Run` (counts plus typed energy estimates) or a bare
:class:`~snnprof.counting.ProfileResult` (counts only): they build Rich objects and never print;
the CLI decides where output goes.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.counting.results import LayerRecord, ProfileResult
from snnprof.energy.estimate import EnergyResult
from snnprof.run import Run
from snnprof.units import format_count, format_energy_pj, format_rate, printable

Shown = ProfileResult | Run

__all__ = [
    "energy_table", "layer_table", "notes", "per_sample_line", "pool_folding_line", "render_result", "title_line",
    "valid_slots_line",
]

_COUNT_COLUMNS: tuple[tuple[str, str], ...] = (("MACs", "macs"), ("SOPs", "sops"))
_NAME_MIN_WIDTH = 10
_TYPE_MAX_WIDTH = 12
_KIND_MAX_WIDTH = 9
_FOLDED_KIND_WIDTH = 14  # "spike (folded)"


def _scale(result: ProfileResult, per_sample: bool) -> int:
    """Divisor applied to totals: the batch size in per-sample mode, else 1."""
    return max(result.batch_size, 1) if per_sample else 1


def _count(value: float, divisor: int) -> str:
    """Format a count, divided by ``divisor`` (exact ints stay ints)."""
    if divisor == 1:
        return format_count(value)
    if isinstance(value, int) and value % divisor == 0:
        return format_count(value // divisor)
    return format_count(value / divisor)


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


def _layer_row(rec: LayerRecord, energy: EnergyResult | None, divisor: int, valid: bool = False) -> list[str]:
    """One table row for a layer (``valid``: with the valid-slot firing rate column)."""
    row = [printable(rec.name), printable(rec.type), printable(rec.input_kind)]
    row += [_count(getattr(rec, attr), divisor) for _, attr in _COUNT_COLUMNS]
    row.append(format_rate(rec.firing_rate))
    if valid:
        row.append(format_rate(rec.firing_rate_valid if rec.valid_updates is not None else rec.firing_rate))
    if energy is not None:
        row.append(_layer_energy(energy, rec.name, divisor))
    return row


def layer_table(shown: Shown, per_sample: bool = False) -> Table:
    """Per-layer table: name, type, input kind, MACs, SOPs, firing rate, energy (first profile).

    Args:
        shown: a run (its first profile fills the energy column) or a bare profiling result.
        per_sample: divide counts and energies by the batch size.

    Returns:
        A Rich table ending with a bold totals row.
    """
    result, energies = _split(shown)
    first = _first_energy(energies)
    energy = first[1] if first else None
    divisor = _scale(result, per_sample)
    scope = "per sample" if per_sample else f"whole run, batch {result.batch_size}"
    if first is not None:
        scope += f"; energy on {first[0]}"
    table = Table(title=f"Layers ({scope})", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    longest = max((len(rec.name) for rec in result.layers), default=5)
    table.add_column("layer", overflow="fold", min_width=min(longest, _NAME_MIN_WIDTH))
    table.add_column("type", no_wrap=True, overflow="ellipsis", max_width=_TYPE_MAX_WIDTH)
    kind_width = _FOLDED_KIND_WIDTH if result.fold_pooling and result.folds_pools else _KIND_MAX_WIDTH
    table.add_column("input", no_wrap=True, overflow="ellipsis", max_width=kind_width)
    for header, _ in _COUNT_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("fire rate", justify="right", no_wrap=True)
    valid = result.totals.valid_updates is not None
    if valid:
        table.add_column("valid rate", justify="right", no_wrap=True)
    if first is not None:
        table.add_column("energy", justify="right", no_wrap=True)
    for rec in result.layers:
        table.add_row(*_layer_row(rec, energy, divisor, valid))
    table.add_section()
    totals = [_count(getattr(result.totals, attr), divisor) for _, attr in _COUNT_COLUMNS]
    rate = format_rate(result.totals.firing_rate if result.totals.neuron_updates else None)
    rates = [rate, format_rate(result.totals.firing_rate_valid)] if valid else [rate]
    tail = [format_energy_pj(energy.total_pj / divisor)] if energy is not None else []
    table.add_row("total", "", "", *totals, *rates, *tail, style="bold")
    return table


def title_line(result: ProfileResult) -> Text:
    """One-line header: model, batch, time steps and the counting conventions.

    The pool-folding convention is named when it is on or when it changes the counts.
    """
    folding = f" · pool folding {'on' if result.fold_pooling else 'off'}" if (
        result.fold_pooling or result.folds_pools) else ""
    return Text.assemble(
        (printable(result.model), "bold"),
        f"  batch {result.batch_size} · T {result.time_steps} · SOPs {result.sop_convention}"
        f" · count weighting {result.count_weighting}{folding}",
    )


def pool_folding_line(result: ProfileResult) -> Text | None:
    """The other pool-folding view per sample, when some layer is fed by pooled spikes (else ``None``)."""
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
    return Text(f"{layers} synaptic layer(s) fed by average/sum-pooled spikes; {what}, per sample: "
                f"MACs {format_count(macs / batch)} · SOPs {format_count(sops / batch)}")


def valid_slots_line(result: ProfileResult) -> Text | None:
    """Padding and firing rate over valid slots, for models that mark them (else ``None``)."""
    tot = result.totals
    if tot.valid_updates is None or not tot.neuron_updates:
        return None
    padding = 1.0 - tot.valid_updates / tot.neuron_updates
    return Text(f"valid slots: padding {format_rate(padding)} of neuron updates · valid updates per sample "
                f"{format_count(tot.valid_updates / max(result.batch_size, 1))} · firing rate (valid slots) "
                f"{format_rate(tot.firing_rate_valid)} (all slots {format_rate(tot.firing_rate)})")


def per_sample_line(result: ProfileResult) -> Text:
    """Per-sample summary: MACs, dense MACs, SOPs, spikes and mean firing rate."""
    per = result.per_sample
    parts = [
        f"MACs {format_count(per['macs'])}",
        f"dense MACs {format_count(per['dense_macs'])}",
        f"SOPs {format_count(per['sops'])}",
        f"spikes {format_count(per['spikes'])}",
        f"firing rate {format_rate(result.totals.firing_rate if result.totals.neuron_updates else None)}",
    ]
    return Text("per sample: " + " · ".join(parts))


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
    parts += [line for line in (valid_slots_line(result), pool_folding_line(result)) if line is not None]
    energy = energy_table(shown, per_sample)
    if energy is not None:
        parts.append(energy)
    parts += notes(shown)
    return Group(*parts)
