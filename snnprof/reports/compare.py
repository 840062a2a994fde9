"""Comparisons across report entries: ratios against the first entry, SNN/ANN energy ratios (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from snnprof.reports.model import PER_SAMPLE_METRICS, ModelReport

__all__ = ["ComparisonRow", "SnnAnnRatio", "comparison_notes", "comparison_rows", "snn_ann_ratios"]


@dataclass(frozen=True)
class ComparisonRow:
    """One metric across the entries of a comparison, with ratios against the first entry.

    Attributes:
        key: metric key (``macs``, ``energy:<profile>``, ``measured`` ...).
        label: human-readable metric name.
        unit: ``count``, ``rate`` (0..1) or ``energy`` (pJ per sample).
        values: the metric per entry (``None`` where it does not exist, e.g. no such profile).
        ratios: ``value / first value`` per entry (``None`` when either is missing or the first is 0).
    """

    key: str
    label: str
    unit: str
    values: tuple[float | None, ...]
    ratios: tuple[float | None, ...]


@dataclass(frozen=True)
class SnnAnnRatio:
    """Energy of a spiking entry relative to an ANN entry (same profile).

    Attributes:
        snn: label of the spiking entry.
        ann: label of the ANN entry.
        profile: hardware profile name, or ``measured`` for GPU measurements.
        snn_pj: per-sample energy of the SNN in pJ.
        ann_pj: per-sample energy of the ANN in pJ.
        ratio: ``snn_pj / ann_pj`` (``None`` when the ANN costs nothing on this profile).
    """

    snn: str
    ann: str
    profile: str
    snn_pj: float
    ann_pj: float
    ratio: float | None


def _ratios(values: Sequence[float | None]) -> tuple[float | None, ...]:
    """Each value divided by the first (``None`` when missing or the first is zero)."""
    first = values[0]
    if first is None or first == 0:
        return tuple(None for _ in values)
    return tuple(None if v is None else v / first for v in values)


def _row(key: str, label: str, unit: str, values: Sequence[float | None]) -> ComparisonRow:
    """A comparison row with its ratios."""
    return ComparisonRow(key=key, label=label, unit=unit, values=tuple(values), ratios=_ratios(values))


def _energy_value(model: ModelReport, profile: str) -> float | None:
    """Per-sample energy on a profile (``None`` when not estimated)."""
    energy = model.energy(profile)
    return None if energy is None else energy.per_sample_pj


def comparison_rows(models: Sequence[ModelReport], profiles: Sequence[str]) -> tuple[ComparisonRow, ...]:
    """Every compared metric across the entries."""
    rows = [_row("params", "parameters", "count", [float(m.params) for m in models])]
    rows += [_row(key, label, "count", [m.per_sample[key] for m in models]) for key, label in PER_SAMPLE_METRICS]
    rows.append(_row("firing_rate", "mean firing rate", "rate", [m.firing_rate for m in models]))
    for profile in profiles:
        label = f"energy · {profile}"
        rows.append(_row(f"energy:{profile}", label, "energy", [_energy_value(m, profile) for m in models]))
    if any(m.measured for m in models):
        values = [m.measured.per_sample_pj if m.measured else None for m in models]
        rows.append(_row("measured", "energy · GPU (measured)", "energy", values))
    return tuple(rows)


def snn_ann_ratios(models: Sequence[ModelReport], profiles: Sequence[str]) -> tuple[SnnAnnRatio, ...]:
    """SNN/ANN energy ratio for each (SNN, ANN) pair and each profile both were estimated on."""
    out: list[SnnAnnRatio] = []
    for ann in (m for m in models if m.is_ann):
        for snn in (m for m in models if not m.is_ann):
            pairs = [(p, _energy_value(snn, p), _energy_value(ann, p)) for p in profiles]
            if snn.measured and ann.measured:
                pairs.append(("measured", snn.measured.per_sample_pj, ann.measured.per_sample_pj))
            for profile, s, a in pairs:
                if s is not None and a is not None:
                    out.append(SnnAnnRatio(snn.label, ann.label, profile, s, a, s / a if a else None))
    return tuple(out)


def comparison_notes(models: Sequence[ModelReport]) -> tuple[str, ...]:
    """Remarks that qualify a comparison."""
    notes = []
    seeds = {m.seed for m in models}
    if len(models) > 1 and len(seeds) > 1:
        listed = ", ".join(f"{m.label}: {m.seed}" for m in models)
        notes.append(f"The entries use different input seeds ({listed}); they did not see the same inputs.")
    return tuple(notes)
