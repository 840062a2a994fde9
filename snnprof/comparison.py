"""The comparison of several runs: metrics side by side, ratios against the first, energy verdicts (pure).

One model serves every comparison view: ``snnprof compare`` (terminal and ``--json``) and the HTML
comparison of ``snnprof report A B``. :func:`compare_runs` turns priced :class:`~snnprof.run.Run`
objects into a :class:`Comparison`:

* :class:`Metric` rows: one per compared quantity (per-sample counts, firing rates, energy per
  profile, render statistics, quality, wall time), with ``value / value of the first run``;
  quantities no run has are left out;
* :class:`EnergyVerdict` entries: the first run against each other run on every profile
  (``ratio = E_first / E_other``, ``reduction_pct = (1 - ratio) * 100``), and every SNN against every
  ANN (``ratio = E_snn / E_ann``);
* notes that qualify the comparison (runs that did not see the same inputs, untrained weights).

**No ratio without like-for-like pricing.** An energy ratio on a profile is stated only when every
synaptic operation (MAC and SOP) of both runs has a price there (on the profile or on the host
profile), and every other term one run has priced is priced for the other too. Otherwise the
verdict, and the ``energy_pj.<profile>`` ratio, is ``None`` and says why
(``"stereospike_ann: 27.2 G dense-input MACs per sample have no price on loihi"``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnprof.energy.estimate import SYNAPTIC_KINDS, EnergyResult
from snnprof.run import Run, json_safe
from snnprof.units import format_count

__all__ = ["SCHEMA", "Comparability", "Comparison", "EnergyVerdict", "Metric", "comparability", "compare_runs",
           "event_words", "firing_rate_valid", "ratio", "untrained_note", "valid_updates"]

logger = logging.getLogger(__name__)

SCHEMA = "snnprof.compare/1"
MEASURED = "measured"
#: Metric-key prefix and verdict label of SpikingNeRF's MLP-only op-count convention.
SEED_MLP = "energy_pj_seed_mlp_only"
SEED_MLP_LABEL = "seed MLP-only"


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``; ``None`` when either is missing, the reference is 0 or not finite."""
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return float(value) / float(reference)


@dataclass(frozen=True)
class Metric:
    """One compared quantity across the runs, with ratios against the first run.

    Attributes:
        key: metric key (``macs``, ``energy_pj.<profile>``, ``fr:<layer>``, ``measured`` ...).
        label: human-readable name.
        unit: ``count``, ``rate`` (0..1), ``energy`` (pJ per sample), ``steps``, ``seconds``,
            ``db`` or ``plain``.
        values: the quantity per run (``None`` where it does not apply).
        ratios: ``value / first value`` per run (``None`` when either is missing or the first is 0).
    """

    key: str
    label: str
    unit: str
    values: tuple[float | None, ...]
    ratios: tuple[float | None, ...]


@dataclass(frozen=True)
class Comparability:
    """Whether one run's energy on one profile can enter a ratio.

    Attributes:
        comparable: every synaptic operation of the run has a price on the profile (or its host).
        reason: why not (empty when comparable).
    """

    comparable: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"comparable": bool, "reason": str | None}``."""
        return {"comparable": self.comparable, "reason": self.reason or None}


@dataclass(frozen=True)
class EnergyVerdict:
    """The energy of one run against another on one profile (or the measured GPU energy).

    Attributes:
        profile: hardware profile name, or ``measured``.
        subject: label of the run judged (the first run, or the SNN).
        baseline: label of the run it is judged against (another run, or the ANN).
        subject_pj: per-sample energy of the subject in pJ (what was priced).
        baseline_pj: per-sample energy of the baseline in pJ (what was priced).
        ratio: ``subject_pj / baseline_pj``; ``None`` when undefined or not like-for-like.
        comparable: both sides are priced like for like on this profile.
        reason: why the ratio is withheld (empty when it is stated).
        untrained: labels of the two runs whose weights are the constructor's random init.
    """

    profile: str
    subject: str
    baseline: str
    subject_pj: float
    baseline_pj: float
    ratio: float | None
    comparable: bool = True
    reason: str = ""
    untrained: tuple[str, ...] = ()

    @property
    def reduction_pct(self) -> float | None:
        """How much less energy the subject uses, in % (negative: more)."""
        return None if self.ratio is None else (1.0 - self.ratio) * 100.0


@dataclass
class Comparison:
    """Several runs compared against the first.

    Attributes:
        runs: the runs, in the given order (the first is the reference).
        profiles: hardware profiles priced for every run, in order.
        metrics: every compared quantity that applies to at least one run.
        reductions: the first run against each other run, per profile (and measured energy).
        seed_reductions: the same in SpikingNeRF's MLP-only convention, where both runs have it.
        snn_ann: every SNN against every ANN, per profile (and measured energy).
        notes: remarks that qualify the comparison (e.g. runs on different inputs).
        comparability: per run label and profile, whether its energy can enter a ratio.
        warnings: per run label, the energy warnings on the compared profiles (``profile: text``),
            each of which changes what a verdict includes.
    """

    runs: list[Run]
    profiles: list[str]
    metrics: list[Metric] = field(default_factory=list)
    reductions: list[EnergyVerdict] = field(default_factory=list)
    seed_reductions: list[EnergyVerdict] = field(default_factory=list)
    snn_ann: list[EnergyVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparability: dict[str, dict[str, Comparability]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """The runs' labels."""
        return [run.label for run in self.runs]

    def metric(self, key: str) -> Metric | None:
        """The metric ``key`` (``None`` when no run has it)."""
        return next((m for m in self.metrics if m.key == key), None)

    def neuron_layers(self) -> list[str]:
        """Names of every neuron layer of any run, in first-seen order."""
        names: dict[str, None] = {}
        for run in self.runs:
            names.update(dict.fromkeys(run.firing_rates()))
        return list(names)

    def ratios(self) -> dict[str, dict[str, float | None]]:
        """Per run label: ``metric key -> value / first value``."""
        return {run.label: {m.key: m.ratios[i] for m in self.metrics} for i, run in enumerate(self.runs)}

    def energy_reduction_pct(self) -> dict[str, dict[str, float | None]]:
        """Per profile: how much less energy (%) the first run uses than each other run."""
        out: dict[str, dict[str, float | None]] = {}
        for verdict in self.reductions:
            out.setdefault(verdict.profile, {})[verdict.baseline] = verdict.reduction_pct
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema ``snnprof.compare/1``); non-finite numbers are ``null``."""
        return json_safe({
            "schema": SCHEMA, "profiles": list(self.profiles), "configs": [r.config_path for r in self.runs],
            "reference": self.runs[0].label if self.runs else None,
            "runs": [r.summary_dict() for r in self.runs],
            "ratios": self.ratios(), "energy_reduction_pct": self.energy_reduction_pct(),
            "verdicts": [_verdict_dict(v) for v in self.reductions],
            "seed_mlp_only_verdicts": [_verdict_dict(v) for v in self.seed_reductions],
            "snn_ann": [_verdict_dict(v) for v in self.snn_ann],
            "comparability": {label: {p: c.to_dict() for p, c in by.items()}
                              for label, by in self.comparability.items()},
            "energy_warnings": {label: list(ws) for label, ws in self.warnings.items()},
            "warnings": list(self.notes),
        })


def _verdict_dict(verdict: EnergyVerdict) -> dict[str, Any]:
    return {"profile": verdict.profile, "subject": verdict.subject, "baseline": verdict.baseline,
            "subject_pj": verdict.subject_pj, "baseline_pj": verdict.baseline_pj, "ratio": verdict.ratio,
            "reduction_pct": verdict.reduction_pct, "comparable": verdict.comparable,
            "reason": verdict.reason or None, "untrained": list(verdict.untrained)}


# --------------------------------------------------------------------------- metrics

#: Per-sample counts compared across runs: ``(key, label)``.
COUNT_METRICS: tuple[tuple[str, str], ...] = (
    ("macs", "MACs (dense input)"),
    ("dense_macs", "dense MACs (ANN view)"),
    ("sops", "SOPs (exact)"),
    ("sops_rate", "SOPs (rate estimate)"),
    ("flops", "FLOPs"),
    ("spikes", "spikes"),
    ("neuron_updates", "neuron updates"),
)


def valid_updates(run: Run) -> float | None:
    """Neuron updates in valid (not padded) slots per sample; ``None`` without a validity mask."""
    return run.metrics()["valid_updates"]


def firing_rate_valid(run: Run) -> float | None:
    """Spikes in valid slots / valid updates (``None`` without a validity mask)."""
    return run.metrics()["firing_rate_valid"]


#: Rows shown only when some run has them: valid slots (padded ``[T, B]`` layouts) and the
#: pool-folding view opposite to each run's own: ``(key of Run.metrics(), label, unit)``.
OPTIONAL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("valid_updates", "valid neuron updates", "count"),
    ("valid_padding", "padding (neuron updates)", "rate"),
    ("firing_rate_valid", "firing rate (valid slots)", "rate"),
    ("macs_folded", "MACs (pools folded)", "count"),
    ("sops_folded", "SOPs (pools folded)", "count"),
    ("macs_unfolded", "MACs (pools not folded)", "count"),
    ("sops_unfolded", "SOPs (pools not folded)", "count"),
)


def _metric_specs(runs: Sequence[Run], profiles: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(key of Run.metrics(), label, unit)`` of every metric, in display order."""
    specs: list[tuple[str, str, str]] = [
        ("params", "parameters", "count"),
        ("time_steps_mean", "T per chunk (mean)", "steps"),
        ("time_steps_max", "T per chunk (max)", "steps"),
        ("batch_mean", "B per chunk (mean)", "steps"),
        ("batch_max", "B per chunk (max)", "steps"),
        ("padding_fraction", "padding", "rate"),
        ("sparsity", "sparsity of the SNN input (pooled)", "rate"),
        ("seed_sparsity", "sparsity (seed: chunk mean)", "rate"),
        ("points", "valid points per sample", "count"),
    ]
    specs += [(key, label, "count") for key, label in COUNT_METRICS]
    specs.append(("firing_rate", "mean firing rate", "rate"))
    specs += list(OPTIONAL_METRICS)
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.firing_rates()))
    specs += [(f"fr:{n}", f"firing rate {n}", "rate") for n in names]
    specs += [(f"energy_pj.{p}", f"energy · {p}", "energy") for p in profiles]
    specs += [(f"{SEED_MLP}.{p}", f"energy · {p} (seed MLP-only)", "energy") for p in profiles]
    specs += [
        (MEASURED, "energy · GPU (measured)", "energy"),
        ("psnr", "PSNR (dB)", "db"),
        ("ssim", "SSIM", "plain"),
        ("wall_s", "wall time (s)", "seconds"),
    ]
    return specs


def seed_mlp_pj(run: Run, profile: str) -> float | None:
    """Per-sample energy of the colour MLP alone (SpikingNeRF's ``--op_count`` convention), else ``None``."""
    from snnprof.views.spikingnerf import MLP_PREFIXES, seed_op_count

    if run.model not in MLP_PREFIXES or profile not in run.energy:
        return None
    count = seed_op_count(run.result, run.model, {profile: run.energy[profile]})
    return count.energy_pj[profile] / max(run.result.batch_size, 1)


def _metric_ratios(key: str, runs: Sequence[Run], values: tuple[float | None, ...]) -> tuple[float | None, ...]:
    """``value / first value``; an energy ratio only where the two runs are priced like for like."""
    if not key.startswith(("energy_pj.", f"{SEED_MLP}.")):
        return tuple(ratio(v, values[0]) for v in values)
    profile = key.split(".", 1)[1]
    return tuple(ratio(v, values[0]) if like_for_like(runs[0], run, profile).comparable else None
                 for v, run in zip(values, runs, strict=True))


def _metrics(runs: Sequence[Run], profiles: Sequence[str]) -> list[Metric]:
    """Every metric that applies to at least one run (values from :meth:`Run.metrics`)."""
    per_run = [run.metrics() for run in runs]
    for run, values in zip(runs, per_run, strict=True):
        values.update({f"{SEED_MLP}.{p}": seed_mlp_pj(run, p) for p in profiles})
    out = []
    for key, label, unit in _metric_specs(runs, profiles):
        values = tuple(metrics.get(key) for metrics in per_run)
        if all(v is None for v in values):
            continue
        out.append(Metric(key, label, unit, values, _metric_ratios(key, runs, values)))
    return out


# --------------------------------------------------------------------------- like-for-like pricing

_KIND_WORDS: dict[str, str] = {
    "mac": "dense-input MACs", "ac": "SOPs", "neuron_update": "neuron updates", "spike": "spikes",
}


def _kind_words(kind: str) -> str:
    return _KIND_WORDS.get(kind, f"bytes of {kind.removeprefix('mem_').replace('_', ' ')} traffic")


def event_words(kind: str) -> str:
    """What an event kind counts, in words (``mac`` -> ``dense-input MACs``, ``mem_weight_read`` -> bytes)."""
    return _kind_words(kind)


def comparability(run: Run, profile: str) -> Comparability:
    """Whether every synaptic operation of ``run`` has a price on ``profile`` (or its host profile)."""
    energy = run.energy.get(profile)
    if energy is None:
        return Comparability(False, f"{run.label}: not priced on {profile}")
    batch = max(run.result.batch_size, 1)
    missing = [f"{format_count(energy.unpriced[k] / batch)} {_KIND_WORDS[k]}" for k in SYNAPTIC_KINDS
               if energy.unpriced.get(k)]
    if missing:
        return Comparability(False, f"{run.label}: {' and '.join(missing)} per sample have no price on {profile}")
    return Comparability(True)


def _asymmetry(a: Run, ea: EnergyResult, b: Run, eb: EnergyResult, profile: str) -> list[str]:
    """Terms ``a`` has priced (with events) that ``b`` has events of but no price for."""
    out = []
    for kind, left in eb.unpriced.items():
        if kind not in SYNAPTIC_KINDS and left and ea.counts.get(kind) and ea.priced(kind):
            out.append(f"{b.label}: {format_count(left / max(b.result.batch_size, 1))} {_kind_words(kind)} "
                       f"per sample have no price on {profile} "
                       f"while {a.label}'s are priced")
    return out


def like_for_like(a: Run, b: Run, profile: str) -> Comparability:
    """Whether the energies of ``a`` and ``b`` on ``profile`` may be divided (see the module docstring)."""
    if profile == MEASURED:
        return Comparability(True)
    reasons = [c.reason for c in (comparability(a, profile), comparability(b, profile)) if not c.comparable]
    ea, eb = a.energy.get(profile), b.energy.get(profile)
    if ea is not None and eb is not None:
        reasons += _asymmetry(a, ea, b, eb, profile) + _asymmetry(b, eb, a, ea, profile)
    return Comparability(not reasons, "; ".join(reasons))


# --------------------------------------------------------------------------- verdicts


def _energies(run: Run, profiles: Sequence[str]) -> list[tuple[str, float | None]]:
    """``(profile, per-sample pJ)`` on every profile, then the measured energy."""
    pairs = [(p, run.energy_pj(p)) for p in profiles]
    return pairs + [(MEASURED, run.measured.per_sample_pj if run.measured else None)]


def verdict(profile: str, subject: Run, baseline: Run, profiles: Sequence[str]) -> EnergyVerdict | None:
    """The subject's energy against the baseline's on ``profile`` (``None`` when either lacks it)."""
    s = dict(_energies(subject, profiles)).get(profile)
    b = dict(_energies(baseline, profiles)).get(profile)
    if s is None or b is None:
        return None
    fair = like_for_like(subject, baseline, profile)
    untrained = tuple(r.label for r in (subject, baseline) if r.trained is False)
    return EnergyVerdict(profile, subject.label, baseline.label, s, b, ratio(s, b) if fair.comparable else None,
                         fair.comparable, fair.reason, untrained)


def seed_verdicts(runs: Sequence[Run], profiles: Sequence[str]) -> list[EnergyVerdict]:
    """The first run against each other one in SpikingNeRF's MLP-only convention (profile ``"P (seed MLP-only)"``)."""
    out = []
    for profile in profiles:
        first = seed_mlp_pj(runs[0], profile) if runs else None
        for other in runs[1:]:
            value = seed_mlp_pj(other, profile)
            if first is None or value is None:
                continue
            fair = like_for_like(runs[0], other, profile)
            untrained = tuple(r.label for r in (runs[0], other) if r.trained is False)
            out.append(EnergyVerdict(f"{profile} ({SEED_MLP_LABEL})", runs[0].label, other.label, first, value,
                                     ratio(first, value) if fair.comparable else None, fair.comparable, fair.reason,
                                     untrained))
    return out


def _reductions(runs: Sequence[Run], profiles: Sequence[str]) -> list[EnergyVerdict]:
    out = []
    for profile in [*profiles, MEASURED]:
        for other in runs[1:]:
            found = verdict(profile, runs[0], other, profiles)
            if found is not None:
                out.append(found)
    return out


def _snn_ann(runs: Sequence[Run], profiles: Sequence[str]) -> list[EnergyVerdict]:
    out = []
    for ann in (r for r in runs if r.is_ann):
        for snn in (r for r in runs if not r.is_ann):
            for profile in [*profiles, MEASURED]:
                found = verdict(profile, snn, ann, profiles)
                if found is not None:
                    out.append(found)
    return out


# --------------------------------------------------------------------------- notes

_INPUT_KEYS: tuple[str, ...] = ("source", "batch_size", "time_steps", "seed", "kwargs", "path", "reader")


def _input_signature(run: Run) -> dict[str, Any] | None:
    """The parts of a run's config that decide its inputs (``None`` without a config)."""
    inp = run.result.config.get("input")
    if not isinstance(inp, Mapping):
        return None
    return {k: inp.get(k) for k in _INPUT_KEYS}


def input_notes(runs: Sequence[Run]) -> list[str]:
    """A note for every run whose ``[input]`` differs from the first run's."""
    first = _input_signature(runs[0]) if runs else None
    if first is None:
        return []
    out = []
    for run in runs[1:]:
        other = _input_signature(run)
        if other is not None and other != first:
            what = "different input seeds" if {**other, "seed": first["seed"]} == first else "a different [input]"
            out.append(f"{run.label} has {what} than {runs[0].label} ({_describe(first)} vs {_describe(other)}); "
                       "the runs did not see the same inputs")
    return out


def untrained_note(runs: Sequence[Run]) -> list[str]:
    """A note naming the runs whose weights are the constructor's random init (no checkpoint)."""
    names = [r.label for r in runs if r.trained is False]
    if not names:
        return []
    return [f"untrained weights: {', '.join(names)} (no [model] checkpoint); counts and energies depend on "
            "the weights through the spikes, so these figures describe random networks"]


def _describe(signature: Mapping[str, Any]) -> str:
    return f"seed {signature.get('seed')}, batch {signature.get('batch_size')}, T {signature.get('time_steps')}"


# --------------------------------------------------------------------------- entry point


def compare_runs(runs: Sequence[Run], profiles: Sequence[str] | None = None,
                 notes: Sequence[str] = ()) -> Comparison:
    """Compare priced runs against the first one.

    Args:
        runs: one or more runs (the first is the reference).
        profiles: profiles to compare on (default: every profile any run was priced on, in order).
        notes: extra remarks to carry (e.g. from the caller).

    Returns:
        The :class:`Comparison`.
    """
    runs = list(runs)
    if profiles is None:
        profiles = list(dict.fromkeys(p for run in runs for p in run.profiles))
    return Comparison(
        runs=runs, profiles=list(profiles), metrics=_metrics(runs, profiles),
        reductions=_reductions(runs, profiles), seed_reductions=seed_verdicts(runs, profiles),
        snn_ann=_snn_ann(runs, profiles),
        notes=[*notes, *input_notes(runs), *untrained_note(runs)],
        comparability={r.label: {p: comparability(r, p) for p in profiles} for r in runs},
        warnings={r.label: [f"{p}: {w}" for p in profiles if p in r.energy for w in r.energy[p].warnings]
                  for r in runs},
    )
