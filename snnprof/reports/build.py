"""The whole report: its entries, comparison, hardware-profile provenance and reproducibility (pure).

:func:`build_report` turns one or more priced :class:`~snnprof.run.Run` into a :class:`Report`: one
entry gives a model report, several a comparison with ratios against the first (the comparison
model is :mod:`snnprof.comparison`, the same one ``snnprof compare`` renders in the terminal).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snnprof.comparison import EnergyVerdict, Metric, compare_runs, untrained_note
from snnprof.reports.model import ModelReport, model_report
from snnprof.reports.side import SideBySide, side_by_side
from snnprof.run import Run

__all__ = ["ProfileProvenance", "Report", "Reproducibility", "build_report"]

logger = logging.getLogger(__name__)

_MAX_TITLE_LABELS = 4


@dataclass(frozen=True)
class ProfileProvenance:
    """Where a hardware profile's numbers come from.

    Attributes:
        profile: profile name.
        source: the citation.
        year: year of the source.
        technology: process node (e.g. ``45 nm``) or ``—``.
        precision: arithmetic precision.
        fidelity: ``measured``, ``simulated`` or ``derived``.
        notes: how the numbers were derived, what is left out.
        links: DOI/URL entries as ``(label, value)``.
    """

    profile: str
    source: str
    year: str
    technology: str
    precision: str
    fidelity: str
    notes: str
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reproducibility:
    """How the report was made.

    Attributes:
        command: the exact command line (or a description of the API call).
        date: when the report was generated (ISO 8601, UTC).
        versions: package name -> version (snnprof, torch, spikingjelly, python ...).
        device: where the models ran.
        platform: operating system and machine.
    """

    command: str
    date: str
    versions: dict[str, str]
    device: str
    platform: str


@dataclass(frozen=True)
class Report:
    """A whole report: one entry (model report) or several (comparison, ratios against the first).

    Attributes:
        title: the report's title.
        models: one :class:`ModelReport` per entry.
        comparison: metrics across entries, ratios against the first (empty for a single entry).
        snn_ann: SNN/ANN energy verdicts (where the entries include an ANN and an SNN).
        provenance: each hardware profile used, once.
        reproducibility: command, versions, device and date.
        notes: remarks on the comparison (e.g. entries with different seeds).
        side: the side-by-side view of a comparison (verdicts, explaining rows, energy terms and
            matched layers); ``None`` for a single entry.
        untrained: labels of the entries without a checkpoint (the constructor's random weights),
            named in the page's banner.
    """

    title: str
    models: tuple[ModelReport, ...]
    comparison: tuple[Metric, ...]
    snn_ann: tuple[EnergyVerdict, ...]
    provenance: tuple[ProfileProvenance, ...]
    reproducibility: Reproducibility
    notes: tuple[str, ...] = ()
    side: SideBySide | None = None
    untrained: tuple[str, ...] = ()

    @property
    def is_comparison(self) -> bool:
        """True for two or more entries."""
        return len(self.models) > 1

    @property
    def profiles(self) -> tuple[str, ...]:
        """Every profile name estimated for any entry, in first-seen order."""
        return tuple(dict.fromkeys(e.profile for m in self.models for e in m.energies))


# --------------------------------------------------------------------------- provenance


def _provenance(profile: str, prov: Mapping[str, Any]) -> ProfileProvenance:
    """Display view of a profile's provenance dict."""
    tech = prov.get("technology_nm")
    links = tuple((key, str(prov[key])) for key in ("doi", "url") if prov.get(key))
    return ProfileProvenance(
        profile=profile,
        source=str(prov.get("source", "—")),
        year=str(prov.get("year", "—")),
        technology=f"{tech} nm" if tech else "—",
        precision=str(prov.get("precision", "—")),
        fidelity=str(prov.get("fidelity", "—")),
        notes=str(prov.get("notes", "")),
        links=links,
    )


def _provenances(models: Sequence[ModelReport]) -> tuple[ProfileProvenance, ...]:
    """Each profile's provenance once, in first-seen order."""
    seen: dict[str, ProfileProvenance] = {}
    for model in models:
        for energy in model.energies:
            seen.setdefault(energy.profile, _provenance(energy.profile, energy.provenance))
    return tuple(seen.values())


# --------------------------------------------------------------------------- entry point


def _unique_labels(labels: Sequence[str]) -> list[str]:
    """Make labels unique by suffixing repeats with `` (2)``, `` (3)`` ..."""
    out: list[str] = []
    for label in labels:
        name, k = label, 2
        while name in out:
            name, k = f"{label} ({k})", k + 1
        out.append(name)
    return out


def _title(models: Sequence[ModelReport]) -> str:
    """Default title: the entry's label, or the compared labels."""
    labels = [m.label for m in models]
    if len(labels) == 1:
        return f"{labels[0]}: operations, spikes and energy"
    shown = " vs ".join(labels[:_MAX_TITLE_LABELS])
    more = f" (+{len(labels) - _MAX_TITLE_LABELS} more)" if len(labels) > _MAX_TITLE_LABELS else ""
    return f"{shown}{more}: comparison"


#: Labels the HTML comparison table uses instead of the comparison model's (what the number is).
_LABELS: dict[str, str] = {"wall_s": "wall time (s; one unprofiled run after a warm-up run)"}


def _shown(metrics: Sequence[Metric]) -> tuple[Metric, ...]:
    """The metrics the HTML comparison table shows (per-layer firing rates have their own chart)."""
    return tuple(dataclasses.replace(m, label=_LABELS.get(m.key, m.label)) for m in metrics
                 if not m.key.startswith("fr:"))


def build_report(runs: Sequence[Run], reproducibility: Reproducibility, title: str | None = None) -> Report:
    """Build the report model of one run (model report) or several (comparison against the first).

    Args:
        runs: the priced runs, in report order; the first is the comparison's reference.
        reproducibility: command, versions, device and date.
        title: the report's title (default: from the labels).

    Returns:
        The report, ready to render.

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("build_report needs at least one entry")
    labels = _unique_labels([run.label for run in runs])
    runs = [dataclasses.replace(run, label=label) for run, label in zip(runs, labels, strict=True)]
    models = tuple(model_report(i, run) for i, run in enumerate(runs))
    cmp = compare_runs(runs)
    multi = len(models) > 1
    logger.debug("report model: %d entries, %d profiles", len(models), len(cmp.profiles))
    banner = set(untrained_note(runs))  # the page's banner names them
    return Report(
        title=title or _title(models),
        models=models,
        comparison=_shown(cmp.metrics) if multi else (),
        snn_ann=tuple(cmp.snn_ann),
        provenance=_provenances(models),
        reproducibility=reproducibility,
        notes=tuple(n for n in cmp.notes if n not in banner),
        side=side_by_side(cmp, models) if multi else None,
        untrained=tuple(m.label for m in models if m.trained is False),
    )
