"""The report's data model of one entry: counts, firing statistics and energies (pure, no I/O).

:func:`model_report` turns one priced :class:`~snnprof.run.Run` (counts, typed energy estimates,
optional measured GPU energy and config text) into a :class:`ModelReport` of plain dataclasses.
Every count and energy is **per sample** (whole run divided by the batch), except where an
attribute says otherwise; energies are in picojoules (pJ). Comparisons across entries come from
:mod:`snnprof.comparison`, the whole report is :mod:`.build`, rendering :mod:`.render`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnprof.comparison import COUNT_METRICS
from snnprof.counting.results import LayerRecord, ProfileResult
from snnprof.energy.estimate import CROSSBAR_TERM, OPERATION_KINDS, EnergyResult, layer_counts
from snnprof.energy.measured import MeasuredEnergy
from snnprof.run import RenderSummary, Run
from snnprof.units import format_count

__all__ = [
    "KEY_CATEGORIES",
    "PER_SAMPLE_METRICS",
    "EnergySummary",
    "LayerRow",
    "ModelReport",
    "NeuronLayer",
    "energy_summary",
    "model_report",
]

logger = logging.getLogger(__name__)

#: ``(key, label)`` of the per-sample count metrics compared across variants, in table order.
PER_SAMPLE_METRICS: tuple[tuple[str, str], ...] = COUNT_METRICS
#: Layer categories listed first in tables and matched across entries; ``other`` (elementwise,
#: reshape, pooling ...) rows come after them, folded away by default.
KEY_CATEGORIES: tuple[str, ...] = ("synaptic", "neuron")


@dataclass(frozen=True)
class EnergySummary:
    """Estimated energy of one entry on one hardware profile.

    Attributes:
        profile: the hardware profile's name.
        total_pj: energy of the whole profiled run (all samples) in pJ.
        per_sample_pj: energy per sample in pJ.
        by_term_pj: per-sample energy per term (``mac``, ``ac``, ``crossbar`` ...) in pJ.
        layers_pj: per-sample energy per layer name in pJ.
        layer_terms_pj: per layer, per-sample energy per term in pJ.
        provenance: the profile's provenance (source, year, technology_nm, precision, fidelity...).
        warnings: what the profile does not price.
        unpriced: per event kind, the count left unpriced, per sample (memory kinds in bytes).
        coverage: fraction (0..1) of the run's operations that were priced.
        unpriced_ops: the operations left unpriced, per sample, as text (empty when none).
        host_profile: the host profile that priced what this one cannot run, if any.
    """

    profile: str
    total_pj: float
    per_sample_pj: float
    by_term_pj: dict[str, float]
    layers_pj: dict[str, float]
    layer_terms_pj: dict[str, dict[str, float]]
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    unpriced: dict[str, float] = field(default_factory=dict)
    coverage: float = 1.0
    unpriced_ops: str = ""
    host_profile: str | None = None

    @property
    def fidelity(self) -> str:
        """``measured``/``simulated``/``derived`` as the profile states it (``—`` when absent)."""
        return str(self.provenance.get("fidelity", "—"))


@dataclass(frozen=True)
class LayerRow:
    """One row of the per-layer table (counts per sample, energies per sample in pJ).

    Attributes:
        index: position in first-call order (0-based).
        name: dotted module path (functional ops: ``module/op.k``).
        type: module class or op name.
        category: ``synaptic`` (has MACs/SOPs), ``neuron`` (spiking neurons) or ``other``.
        input_kind: detected input kind of synaptic calls (``n/a`` otherwise).
        calls: calls over the whole run.
        params: parameters of the module.
        macs: dense-input MACs per sample.
        dense_macs: MACs per sample as if every input were dense.
        sops: exact synaptic operations per sample.
        sops_rate: the rate estimate of SOPs per sample.
        flops: FLOPs per sample.
        neurons: spiking neurons (per sample and time step).
        spikes: spikes per sample.
        firing_rate: spikes / neuron updates (``None`` for non-neuron layers).
        energy_pj: per-sample energy per profile name in pJ.
        valid_updates: neuron updates in valid (not padded) slots per sample, for neuron layers of
            models that pad their ``[T, B]`` layout (``None`` otherwise).
        firing_rate_valid: spikes in valid slots / valid updates (``None`` when not recorded).
        unpriced: per profile, the layer's operations the profile leaves unpriced: event kind
            (``mac``, ``ac``, ``neuron_update``, ``spike``) -> count per sample; profiles that price
            every operation of the layer are absent.
    """

    index: int
    name: str
    type: str
    category: str
    input_kind: str
    calls: int
    params: int
    macs: float
    dense_macs: float
    sops: float
    sops_rate: float
    flops: float
    neurons: int
    spikes: float
    firing_rate: float | None
    energy_pj: dict[str, float]
    valid_updates: float | None = None
    firing_rate_valid: float | None = None
    unpriced: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def key(self) -> bool:
        """A synaptic or neuron layer (listed first; matched across entries)."""
        return self.category in KEY_CATEGORIES


@dataclass(frozen=True)
class NeuronLayer:
    """Firing statistics of one spiking-neuron layer.

    Attributes:
        name: layer name.
        type: neuron class name.
        neurons: neurons per sample and time step.
        firing_rate: spikes / neuron updates over the run (0..1).
        rate_per_step: firing rate at each time step (0..1).
        rate_per_channel: firing rate of each channel (0..1), empty when not recorded.
        dead_channels: indices of channels that never fired (rate 0).
        saturated_channels: indices of channels that fired at every update (rate 1).
    """

    name: str
    type: str
    neurons: int
    firing_rate: float
    rate_per_step: tuple[float, ...]
    rate_per_channel: tuple[float, ...]
    dead_channels: tuple[int, ...]
    saturated_channels: tuple[int, ...]

    @property
    def channels(self) -> int:
        """Number of channels with a recorded rate."""
        return len(self.rate_per_channel)

    @property
    def silent(self) -> bool:
        """True when the whole layer never fired."""
        return self.firing_rate == 0.0


@dataclass(frozen=True)
class ModelReport:
    """Everything the report shows about one entry (counts and energies per sample).

    Attributes:
        index: position in the report (0 = the reference of a comparison).
        label: the entry's name in the report.
        model: model name (zoo name or class name).
        is_ann: no spiking neurons at all (an ANN).
        batch_size: samples profiled.
        time_steps: time steps per sample.
        input_shapes: shapes of the first call's input tensors.
        sop_convention: SOP counting convention.
        count_weighting: how graded (count) inputs weigh.
        params: parameters of the model (shared ones once).
        neurons: spiking neurons (per sample and time step).
        per_sample: per-sample counts (keys of :data:`PER_SAMPLE_METRICS`).
        firing_rate: mean firing rate over all neuron updates (0..1).
        rate_per_step: model-wide firing rate at each time step (0..1).
        layers: per-layer rows in first-call order.
        neuron_layers: firing statistics of each neuron layer.
        energies: one estimate per hardware profile.
        measured: GPU-measured energy, if any.
        config_text: the config verbatim (TOML), or the parsed config as JSON.
        config_is_text: ``config_text`` is the file's text (not the JSON of the parsed config).
        config_path: the config file's path when known.
        seed: the input seed when known.
        warnings: the run's warnings and every energy warning (``profile: message``).
        unsupported: modules/ops that ran without a counting rule.
        uncalled: modules with parameters that never ran.
        trained: weights from a checkpoint (``False``: the constructor's random init; ``None``: unknown).
        render: render statistics of a NeRF model (T and B of the SNN tensor per chunk, padding,
            valid points), else ``None``.
        valid_updates: neuron updates in valid (not padded) slots per sample (``None`` when not recorded).
        firing_rate_valid: spikes in valid slots / valid updates (``None`` when not recorded).
        pool_views: both pool-folding views per sample when they differ (label, own view, values).
        count_options: the ``[count]`` options the config turns on that change what is counted
            (``fold_pooling`` ...), as ``(key, value)`` text pairs; a second count of the same model
            with another convention is just another entry, told apart by these.
    """

    index: int
    label: str
    model: str
    is_ann: bool
    batch_size: int
    time_steps: int
    input_shapes: list[list[int]]
    sop_convention: str
    count_weighting: str
    params: int
    neurons: int
    per_sample: dict[str, float]
    firing_rate: float
    rate_per_step: tuple[float, ...]
    layers: tuple[LayerRow, ...]
    neuron_layers: tuple[NeuronLayer, ...]
    energies: tuple[EnergySummary, ...]
    measured: MeasuredEnergy | None
    config_text: str
    config_is_text: bool
    config_path: str | None
    seed: int | None
    warnings: tuple[str, ...]
    unsupported: tuple[str, ...]
    uncalled: tuple[str, ...]
    trained: bool | None = None
    render: RenderSummary | None = None
    valid_updates: float | None = None
    firing_rate_valid: float | None = None
    count_options: tuple[tuple[str, str], ...] = ()
    pool_views: tuple[tuple[str, bool, tuple[tuple[str, float], ...]], ...] = ()

    @property
    def steps_from_render(self) -> bool:
        """The SNN tensor's T comes from render statistics (NeRF: T per render chunk, not the config's)."""
        return self.render is not None and self.render.time_steps_mean is not None

    @property
    def real_time_steps(self) -> float | None:
        """The time steps the SNN actually ran (``None`` for an ANN: no time steps).

        The mean T per render chunk for NeRF models (whose config says ``time_steps = 1``), else the
        run's time steps.
        """
        if self.render is not None and self.render.time_steps_mean is not None:
            return self.render.time_steps_mean
        return None if self.is_ann else float(self.time_steps)

    @property
    def table_rows(self) -> tuple[LayerRow, ...]:
        """Per-layer rows: synaptic and neuron layers first (call order), then the other layers."""
        return tuple(r for r in self.layers if r.key) + tuple(r for r in self.layers if not r.key)

    @property
    def other_layers(self) -> int:
        """Rows that are neither synaptic nor neuron layers (elementwise, reshape, pooling ...)."""
        return sum(1 for r in self.layers if not r.key)

    @property
    def has_valid_rate(self) -> bool:
        """Some neuron layer records its firing rate over valid (not padded) slots."""
        return any(r.firing_rate_valid is not None for r in self.layers)

    def energy(self, profile: str) -> EnergySummary | None:
        """The estimate on ``profile`` (``None`` when not estimated)."""
        return next((e for e in self.energies if e.profile == profile), None)

    @property
    def dead_channels(self) -> int:
        """Channels that never fired, over all neuron layers."""
        return sum(len(n.dead_channels) for n in self.neuron_layers)

    @property
    def saturated_channels(self) -> int:
        """Channels that fired at every update, over all neuron layers."""
        return sum(len(n.saturated_channels) for n in self.neuron_layers)

# --------------------------------------------------------------------------- energy


def _scaled(values: Mapping[str, Any], batch: int) -> dict[str, float]:
    """Divide a dict of energies by the batch."""
    return {k: float(v) / batch for k, v in values.items()}


def energy_summary(profile: str, energy: EnergyResult, batch_size: int) -> EnergySummary:
    """Per-sample view of an energy estimate.

    Args:
        profile: the profile name (the key in ``Run.energy``).
        energy: the estimate.
        batch_size: samples in the run (energies are divided by it).

    Returns:
        The estimate with per-sample energies in pJ.
    """
    batch = max(int(batch_size), 1)
    return EnergySummary(
        profile=profile,
        total_pj=float(energy.total_pj),
        per_sample_pj=float(energy.per_sample_pj),
        by_term_pj=_scaled(energy.by_term_pj, batch),
        layers_pj=_scaled(energy.layers, batch),
        layer_terms_pj={name: _scaled(terms, batch) for name, terms in energy.layer_terms.items()},
        provenance=dict(energy.provenance),
        warnings=tuple(energy.warnings),
        unpriced={kind: count / batch for kind, count in energy.unpriced.items() if count},
        coverage=float(energy.coverage),
        unpriced_ops=_unpriced_text(energy, batch),
        host_profile=energy.host_profile,
    )


_OP_WORDS: dict[str, str] = {"mac": "MACs", "ac": "SOPs", "neuron_update": "neuron updates", "spike": "spikes"}


def _unpriced_text(energy: EnergyResult, batch: int) -> str:
    """``"27.2 G MACs · 1.2 M neuron updates"`` per sample (operations only; bytes are in the warnings)."""
    return " · ".join(f"{format_count(energy.unpriced[k] / batch)} {w}" for k, w in _OP_WORDS.items()
                      if energy.unpriced.get(k))


# --------------------------------------------------------------------------- layers


def _category(layer: LayerRecord) -> str:
    """``neuron``, ``synaptic`` or ``other``."""
    if layer.neurons > 0:
        return "neuron"
    if layer.dense_macs or layer.macs or layer.sops:
        return "synaptic"
    return "other"


def _layer_row(index: int, layer: LayerRecord, energies: Sequence[EnergySummary], batch: int) -> LayerRow:
    """Per-sample table row of one layer."""
    return LayerRow(
        index=index,
        name=layer.name,
        type=layer.type,
        category=_category(layer),
        input_kind=layer.input_kind,
        calls=layer.calls,
        params=layer.params,
        macs=layer.macs / batch,
        dense_macs=layer.dense_macs / batch,
        sops=layer.sops / batch,
        sops_rate=layer.sops_rate / batch,
        flops=layer.flops / batch,
        neurons=layer.neurons,
        spikes=layer.spikes / batch,
        firing_rate=layer.firing_rate if layer.is_neuron else None,
        energy_pj={e.profile: e.layers_pj.get(layer.name, 0.0) for e in energies},
        valid_updates=_optional(getattr(layer, "valid_updates", None), batch),
        firing_rate_valid=_optional(getattr(layer, "firing_rate_valid", None)),
        unpriced={e.profile: left for e in energies if (left := _unpriced_ops(layer, e, batch))},
    )


def _unpriced_ops(layer: LayerRecord, energy: EnergySummary, batch: int) -> dict[str, float]:
    """The layer's operations ``energy``'s profile leaves unpriced (event kind -> count per sample).

    A kind is unpriced in the layer when the run has unpriced events of that kind, the layer has
    events of it, and none of the layer's energy comes from that kind's term, its host term or the
    crossbar model (which prices only layers with geometry).
    """
    counts, terms = layer_counts(layer), energy.layer_terms_pj.get(layer.name, {})
    return {kind: counts[kind] / batch for kind in OPERATION_KINDS
            if energy.unpriced.get(kind) and counts.get(kind)
            and not any(terms.get(t, 0.0) > 0 for t in (kind, f"host_{kind}", CROSSBAR_TERM))}


def _optional(value: float | None, divisor: int = 1) -> float | None:
    """``value / divisor`` as a float, ``None`` kept."""
    return None if value is None else float(value) / divisor


def _neuron_layer(layer: LayerRecord) -> NeuronLayer:
    """Firing statistics of a neuron layer; dead/saturated channels from exact integer counts."""
    pairs = list(zip(layer.spikes_per_channel, layer.updates_per_channel, strict=False))
    return NeuronLayer(
        name=layer.name,
        type=layer.type,
        neurons=layer.neurons,
        firing_rate=layer.spikes / layer.neuron_updates if layer.neuron_updates else 0.0,
        rate_per_step=tuple(layer.firing_rate_per_step),
        rate_per_channel=tuple(layer.firing_rate_per_channel),
        dead_channels=tuple(i for i, (s, u) in enumerate(pairs) if u > 0 and s == 0),
        saturated_channels=tuple(i for i, (s, u) in enumerate(pairs) if u > 0 and s == u),
    )


def _rate_per_step(layers: Sequence[LayerRecord]) -> tuple[float, ...]:
    """Model-wide firing rate at each time step: summed spikes over summed updates."""
    steps = max((len(layer.spikes_per_step) for layer in layers), default=0)
    spikes, updates = [0] * steps, [0] * steps
    for layer in layers:
        for t, (s, u) in enumerate(zip(layer.spikes_per_step, layer.updates_per_step, strict=False)):
            spikes[t] += s
            updates[t] += u
    return tuple(s / u if u else 0.0 for s, u in zip(spikes, updates, strict=True))


# --------------------------------------------------------------------------- one entry


def _config_view(run: Run) -> tuple[str, bool]:
    """The config text verbatim, or the parsed config dict as JSON when no text was given."""
    if run.config_text is not None:
        return run.config_text, True
    return json.dumps(run.result.config, indent=2, sort_keys=True, default=str), False


def _warnings(result: ProfileResult, energies: Sequence[EnergySummary]) -> tuple[str, ...]:
    """The run's warnings followed by each profile's energy warnings."""
    out = list(result.warnings)
    out += [f"{e.profile}: {w}" for e in energies for w in e.warnings]
    return tuple(dict.fromkeys(out))


def _seed(config: Mapping[str, Any]) -> int | None:
    """The input seed recorded in a result's config dict."""
    seed = config.get("input", {}).get("seed") if isinstance(config.get("input"), Mapping) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


#: ``[count]`` keys shown next to an entry when its config sets them (they change what is counted).
_COUNT_OPTIONS: tuple[str, ...] = ("fold_pooling",)


def _count_options(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The counting options a config turns on that change the counts, as text (``fold_pooling = true``)."""
    count = config.get("count")
    if not isinstance(count, Mapping):
        return ()
    return tuple((key, json.dumps(count[key])) for key in _COUNT_OPTIONS if count.get(key))


def model_report(index: int, run: Run) -> ModelReport:
    """Build the model of one entry.

    Args:
        index: its position in the report (0 = the reference of a comparison).
        run: the priced run and what goes with it.

    Returns:
        Per-sample counts, firing statistics, energies and warnings of the entry.
    """
    result = run.result
    batch = max(result.batch_size, 1)
    energies = tuple(energy_summary(name, e, batch) for name, e in run.energy.items())
    neuron_records = [layer for layer in result.layers if layer.is_neuron]
    totals = result.totals
    text, is_text = _config_view(run)
    return ModelReport(
        index=index,
        label=run.label,
        model=result.model,
        is_ann=totals.neurons == 0,
        batch_size=result.batch_size,
        time_steps=result.time_steps,
        input_shapes=[list(s) for s in result.input_shapes],
        sop_convention=result.sop_convention,
        count_weighting=result.count_weighting,
        params=totals.params,
        neurons=totals.neurons,
        per_sample={key: getattr(totals, key) / batch for key, _ in PER_SAMPLE_METRICS},
        firing_rate=totals.firing_rate,
        rate_per_step=_rate_per_step(neuron_records),
        layers=tuple(_layer_row(i, layer, energies, batch) for i, layer in enumerate(result.layers)),
        neuron_layers=tuple(_neuron_layer(layer) for layer in neuron_records),
        energies=energies,
        measured=run.measured,
        config_text=text,
        config_is_text=is_text,
        config_path=str(result.config["path"]) if "path" in result.config else None,
        seed=_seed(result.config),
        warnings=_warnings(result, energies),
        unsupported=tuple(result.unsupported),
        uncalled=tuple(result.uncalled),
        pool_views=_pool_views(run),
        trained=run.trained,
        render=run.render,
        valid_updates=result.per_sample["valid_updates"],
        firing_rate_valid=result.per_sample["firing_rate_valid"],
        count_options=_count_options(result.config),
    )


_VIEW_LABELS = {"unfolded": "pools not folded (fold_pooling = false)", "folded": "pools folded (fold_pooling = true)"}


def _pool_views(run: Run) -> tuple[tuple[str, bool, tuple[tuple[str, float], ...]], ...]:
    """Both pool-folding views per sample: ``(label, is the run's own view, ((key, value), ...))``; empty when equal."""
    own = "folded" if run.result.fold_pooling else "unfolded"
    return tuple((_VIEW_LABELS[view], view == own, tuple(values.items())) for view, values in run.pool_views().items())
