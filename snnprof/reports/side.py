"""The comparison's side-by-side view: which entry costs less on each profile, and why (pure, no I/O).

:func:`side_by_side` turns the comparison model (:mod:`snnprof.comparison`) and the entries' report
models (:mod:`.model`) into what the top of a comparison page shows:

* :class:`VerdictCell`: one pair of entries on one profile: the cheaper entry, by how much, or
  why the two cannot be compared (taken from :class:`~snnprof.comparison.EnergyVerdict`);
* explaining rows: T, B and padding of the SNN tensor, valid points, neuron updates, firing rates
  (each only when at least one entry has it), as :class:`~snnprof.comparison.Metric` rows;
* :class:`TermComparison`: per profile, each energy term of each entry side by side;
* :class:`MatchedLayer`: synaptic and neuron layers matched by name across entries (the union, in
  call order), with each entry's row or ``None``.

Energies are per sample in pJ, counts per sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from snnprof.comparison import MEASURED, Comparison, EnergyVerdict, Metric, event_words, ratio
from snnprof.energy.estimate import OPERATION_KINDS
from snnprof.reports.model import EnergySummary, LayerRow, ModelReport
from snnprof.units import format_count

__all__ = [
    "EXPLAIN_KEYS",
    "MatchedLayer",
    "SideBySide",
    "TermComparison",
    "VerdictCell",
    "explain_rows",
    "match_layers",
    "merge_order",
    "side_by_side",
    "term_comparisons",
    "verdict_cells",
]

logger = logging.getLogger(__name__)

#: Comparison metrics that explain a difference, in display order (after the synthesized ``time_steps``).
EXPLAIN_KEYS: tuple[str, ...] = (
    "time_steps_max", "batch_mean", "batch_max", "padding_fraction", "points",
    "neuron_updates", "valid_updates", "firing_rate", "firing_rate_valid",
)
#: Below this difference (in %) two energies are called the same.
SAME_PCT = 0.05


@dataclass(frozen=True)
class VerdictCell:
    """One pair of entries on one profile: which costs less and by how much, or why not comparable.

    Attributes:
        verdict: the comparison's verdict (subject vs baseline, energies, ratio, reason, untrained).
        cheaper: label of the entry that costs less (``None``: not comparable, undefined or the same).
        pricier: label of the other entry (``None`` alike).
        factor: energy of the pricier entry / energy of the cheaper one (>= 1; ``None`` without a ratio).
        saving_pct: how much less the cheaper entry costs, in % of the pricier one's energy.
        coverage: priced fraction (0..1) of the operations of the subject and of the baseline
            (``None`` for the measured energy).
    """

    verdict: EnergyVerdict
    cheaper: str | None
    pricier: str | None
    factor: float | None
    saving_pct: float | None
    coverage: tuple[float | None, float | None]

    @property
    def profile(self) -> str:
        """The verdict's profile (or ``measured``)."""
        return self.verdict.profile

    @property
    def same(self) -> bool:
        """Comparable and within :data:`SAME_PCT` of each other."""
        return self.saving_pct is not None and self.cheaper is None


@dataclass(frozen=True)
class TermComparison:
    """Each energy term of each entry on one profile, side by side (per sample, pJ).

    Attributes:
        profile: the profile.
        entries: indices (into the report's models) of the entries priced on it.
        terms: every term with energy in any of them (the profile's order), then every operation kind
            (``mac``, ``ac``, ``neuron_update``, ``spike``) some entry has events of but no price for.
        values: ``values[k][j]``: term ``terms[k]`` of entry ``entries[j]`` (0.0 when absent).
        unpriced: ``unpriced[k][j]``: the events of that kind the profile leaves unpriced for the
            entry, in words (``27.2 G dense-input MACs``; empty when none).
        totals: per-sample energy of each entry.
        reasons: why a verdict on this profile is withheld (each reason once).
    """

    profile: str
    entries: tuple[int, ...]
    terms: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    unpriced: tuple[tuple[str, ...], ...]
    totals: tuple[float, ...]
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchedLayer:
    """One synaptic or neuron layer matched by name across entries.

    Attributes:
        name: the layer name.
        category: ``synaptic`` or ``neuron`` (from the first entry that has the layer).
        rows: per entry, its row of that name (``None`` where the entry has no such layer).
        unpriced: per profile, per entry: the layer's operations the profile leaves unpriced, in
            words (``1.15 G dense-input MACs``; empty when all are priced or the entry lacks the layer).
    """

    name: str
    category: str
    rows: tuple[LayerRow | None, ...]
    unpriced: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class SideBySide:
    """What the top of a comparison page shows (see the module docstring).

    Attributes:
        verdicts: per profile (then measured), each compared pair once.
        explain: the rows that explain a difference, each only when some entry has it.
        terms: per profile, the energy terms side by side.
        layers: synaptic and neuron layers matched by name, the union in call order.
        other_energy_pj: per profile, per entry: per-sample energy of the layers not in ``layers``
            (elementwise, reshape ...); ``None`` where the entry is not priced on the profile.
    """

    verdicts: tuple[VerdictCell, ...]
    explain: tuple[Metric, ...]
    terms: tuple[TermComparison, ...]
    layers: tuple[MatchedLayer, ...]
    other_energy_pj: dict[str, tuple[float | None, ...]]

    @property
    def verdicts_by_profile(self) -> list[tuple[str, tuple[VerdictCell, ...]]]:
        """The verdicts grouped by profile, in profile order."""
        profiles = dict.fromkeys(c.profile for c in self.verdicts)
        return [(p, tuple(c for c in self.verdicts if c.profile == p)) for p in profiles]


# --------------------------------------------------------------------------- verdicts


def _coverage(cmp: Comparison, label: str, profile: str) -> float | None:
    """Priced fraction of the operations of run ``label`` on ``profile`` (``None``: measured or not priced)."""
    run = next(r for r in cmp.runs if r.label == label)
    energy = run.energy.get(profile)
    return None if energy is None else float(energy.coverage)


def verdict_cell(verdict: EnergyVerdict, coverage: tuple[float | None, float | None]) -> VerdictCell:
    """Which of the verdict's two entries costs less, by how much (see :class:`VerdictCell`)."""
    (cheap, low), (dear, high) = sorted(((verdict.subject, verdict.subject_pj),
                                         (verdict.baseline, verdict.baseline_pj)), key=lambda p: p[1])
    if verdict.ratio is None or high <= 0:
        return VerdictCell(verdict, None, None, None, None, coverage)
    saving = (1.0 - low / high) * 100.0
    factor = high / low if low > 0 else None
    if saving < SAME_PCT:
        return VerdictCell(verdict, None, None, factor, saving, coverage)
    return VerdictCell(verdict, cheap, dear, factor, saving, coverage)


def _pairs(cmp: Comparison, profile: str) -> list[EnergyVerdict]:
    """The verdicts on ``profile``, each unordered pair once.

    The reference against each other entry (an SNN vs ANN pair in the SNN / ANN orientation), then
    the remaining SNN / ANN pairs.
    """
    snn_ann = {frozenset((v.subject, v.baseline)): v for v in cmp.snn_ann if v.profile == profile}
    out: dict[frozenset[str], EnergyVerdict] = {}
    for v in cmp.reductions:
        if v.profile == profile:
            pair = frozenset((v.subject, v.baseline))
            out[pair] = snn_ann.get(pair, v)
    for pair, v in snn_ann.items():
        out.setdefault(pair, v)
    return list(out.values())


def verdict_cells(cmp: Comparison) -> tuple[VerdictCell, ...]:
    """Every compared pair on every profile (then the measured energy), each pair once per profile."""
    out = []
    for profile in [*cmp.profiles, MEASURED]:
        for v in _pairs(cmp, profile):
            cover = (_coverage(cmp, v.subject, profile), _coverage(cmp, v.baseline, profile))
            out.append(verdict_cell(v, cover))
    return tuple(out)


# --------------------------------------------------------------------------- explaining rows


def _steps_label(models: Sequence[ModelReport]) -> str:
    """Label of the time-steps row: says when T is the mean per render chunk."""
    chunked = [m.steps_from_render for m in models if m.real_time_steps is not None]
    if chunked and all(chunked):
        return "T per render chunk (mean)"
    return "time steps T (NeRF: mean per render chunk)" if any(chunked) else "time steps T"


def time_steps_row(models: Sequence[ModelReport]) -> Metric | None:
    """The real time steps of each entry (mean T per render chunk for NeRF models; ``None`` for ANNs)."""
    values = tuple(m.real_time_steps for m in models)
    if all(v is None for v in values):
        return None
    return Metric("time_steps", _steps_label(models), "steps", values, tuple(ratio(v, values[0]) for v in values))


def explain_rows(cmp: Comparison, models: Sequence[ModelReport]) -> tuple[Metric, ...]:
    """The rows that explain a difference, each only when some entry has it (see :data:`EXPLAIN_KEYS`)."""
    rows = [time_steps_row(models), *(cmp.metric(key) for key in EXPLAIN_KEYS)]
    return tuple(r for r in rows if r is not None and any(v is not None for v in r.values))


# --------------------------------------------------------------------------- energy terms


def _unpriced_words(energy: EnergySummary | None, kind: str) -> str:
    """The events of ``kind`` left unpriced, per sample, in words (empty when none)."""
    count = energy.unpriced.get(kind, 0.0) if energy is not None else 0.0
    return f"{format_count(count)} {event_words(kind)}" if count else ""


def _reasons(cells: Sequence[VerdictCell], profile: str) -> tuple[str, ...]:
    """Each distinct reason a verdict on ``profile`` is withheld."""
    return tuple(dict.fromkeys(c.verdict.reason for c in cells if c.profile == profile and not c.verdict.comparable))


def term_comparison(models: Sequence[ModelReport], profile: str, cells: Sequence[VerdictCell]) -> TermComparison:
    """Each energy term of every entry priced on ``profile``, side by side, with the unpriced operations."""
    priced = [m for m in models if m.energy(profile) is not None]
    energies = [m.energy(profile) for m in priced]
    terms = list(dict.fromkeys(t for e in energies if e for t, v in e.by_term_pj.items() if v > 0))
    terms += [k for k in OPERATION_KINDS if k not in terms and any(_unpriced_words(e, k) for e in energies)]
    return TermComparison(
        profile=profile,
        entries=tuple(m.index for m in priced),
        terms=tuple(terms),
        values=tuple(tuple(e.by_term_pj.get(t, 0.0) for e in energies if e) for t in terms),
        unpriced=tuple(tuple(_unpriced_words(e, t) for e in energies) for t in terms),
        totals=tuple(e.per_sample_pj for e in energies if e),
        reasons=_reasons(cells, profile),
    )


def term_comparisons(models: Sequence[ModelReport], profiles: Sequence[str],
                     cells: Sequence[VerdictCell]) -> tuple[TermComparison, ...]:
    """One :class:`TermComparison` per profile that prices something for two or more entries."""
    out = (term_comparison(models, p, cells) for p in profiles)
    return tuple(t for t in out if len(t.entries) > 1 and t.terms)


# --------------------------------------------------------------------------- layers


def merge_order(sequences: Sequence[Sequence[str]]) -> list[str]:
    """The union of several name sequences, each name once, keeping every sequence's order.

    A name first seen in a later sequence goes right before the next name that sequence shares with
    the merged order; after the last shared one when none follows; at the end when none is shared.

    Example:
        >>> merge_order([["a", "c"], ["a", "b", "c", "d"], ["x", "y"]])
        ['a', 'b', 'c', 'd', 'x', 'y']
    """
    merged: list[str] = []
    for names in sequences:
        pending: list[str] = []
        at = len(merged)
        for name in names:
            if name not in merged:
                pending.append(name)
                continue
            i = merged.index(name)
            merged[i:i] = pending
            at, pending = i + len(pending) + 1, []
        merged[at:at] = pending
    return merged


def layer_unpriced(row: LayerRow | None, profile: str) -> str:
    """The operations of one layer that ``profile`` leaves unpriced, in words (``1.15 G dense-input MACs``)."""
    left = row.unpriced.get(profile, {}) if row is not None else {}
    return " + ".join(f"{format_count(n)} {event_words(kind)}" for kind, n in left.items())


def match_layers(models: Sequence[ModelReport], profiles: Sequence[str] = ()) -> tuple[MatchedLayer, ...]:
    """Synaptic and neuron layers of every entry matched by name: the union, in call order.

    Args:
        models: the entries.
        profiles: the profiles whose unpriced synaptic operations each layer names.
    """
    by_name = [{r.name: r for r in m.layers if r.key} for m in models]
    names = merge_order([list(rows) for rows in by_name])
    out = []
    for name in names:
        rows = tuple(rows.get(name) for rows in by_name)
        first = next(r for r in rows if r is not None)
        unpriced = {p: tuple(layer_unpriced(r, p) for r in rows) for p in profiles}
        out.append(MatchedLayer(name, first.category, rows, unpriced))
    return tuple(out)


def other_energy(models: Sequence[ModelReport], profiles: Sequence[str]) -> dict[str, tuple[float | None, ...]]:
    """Per profile and entry: energy of the layers that are neither synaptic nor neuron layers (pJ/sample)."""
    out: dict[str, tuple[float | None, ...]] = {}
    for profile in profiles:
        values: list[float | None] = []
        for m in models:
            energy = m.energy(profile)
            values.append(None if energy is None else sum(r.energy_pj.get(profile, 0.0) for r in m.layers if not r.key))
        out[profile] = tuple(values)
    return out


# --------------------------------------------------------------------------- entry point


def side_by_side(cmp: Comparison, models: Sequence[ModelReport]) -> SideBySide:
    """The side-by-side view of a comparison (``models`` in the comparison's run order)."""
    cells = verdict_cells(cmp)
    return SideBySide(
        verdicts=cells,
        explain=explain_rows(cmp, models),
        terms=term_comparisons(models, cmp.profiles, cells),
        layers=match_layers(models, cmp.profiles),
        other_energy_pj=other_energy(models, cmp.profiles),
    )
