"""Typed results of a profiling run: per-layer records, totals and their JSON/pandas views.

Everything here is plain data computed once at the end of a run (after the single host sync);
rendering to a terminal table, JSON or HTML lives elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from snnprof.counting.sample_stats import SampleStats

__all__ = [
    "COUNT_FIELDS",
    "MEMORY_FIELDS",
    "SCHEMA",
    "LayerRecord",
    "ProfileResult",
    "Totals",
    "derived_warnings",
]

SCHEMA = "snnprof.profile/1"

#: Integer count fields shared by layers and totals, in schema order.
COUNT_FIELDS: tuple[str, ...] = (
    "params",
    "macs",
    "dense_macs",
    "flops",
    "sops",
    "neurons",
    "neuron_updates",
    "spikes",
)

#: Memory-traffic fields (bytes), shared by layers and totals.
MEMORY_FIELDS: tuple[str, ...] = (
    "weight_read_bytes",
    "input_read_bytes",
    "output_write_bytes",
    "state_read_bytes",
    "state_write_bytes",
)


@dataclass
class LayerRecord:
    """Counts of one layer (a module with a rule, or a functional op inside a module) over a run.

    Attributes:
        name: dotted module path; functional ops are named ``"<module path>/<op>.<k>"``.
        type: module class name, or the functional op's name (``matmul``, ``add`` ...).
        input_kind: kind of the synaptic input (``spike``/``count``/``ternary``/``dense``), ``mixed:a+b``
            when calls differ, ``n/a`` for non-synaptic layers.
        calls: number of times the layer ran.
        params: parameters owned by the module (counted once, even if shared or called often).
        macs: multiply-accumulates of synaptic calls whose input was dense (real-valued).
        dense_macs: synaptic MACs as if every input were dense (the ANN view; equals fvcore/thop MACs).
        flops: ``2 * dense_macs`` plus elementwise ops of the layer (see the rule table in README).
        sops: exact, border-aware synaptic operations (one accumulate per event and connected output;
            ``count`` inputs weigh by value unless configured to one per nonzero).
        sops_rate: the papers' estimate ``dense_macs * input event rate`` over non-dense calls (float).
        neurons: spiking neurons in the layer (per sample and time step).
        neuron_updates: neuron state updates = neurons x time steps x batch.
        spikes: emitted spikes (nonzero outputs of a neuron layer).
        firing_rate: ``spikes / neuron_updates``; ``None`` for non-neuron layers.
        weight_read_bytes: bytes of weights read (all weights once per call).
        input_read_bytes: bytes of input activations read.
        output_write_bytes: bytes of output activations written.
        state_read_bytes: bytes of membrane state read (one state element per neuron update).
        state_write_bytes: bytes of membrane state written.
        spikes_per_step: spikes per time step (index = time step), neuron layers only.
        updates_per_step: neuron updates per time step, matching ``spikes_per_step``.
        spikes_per_channel: spikes per channel (dim C of ``[T, B, C, ...]`` / ``[B, C, ...]``).
        updates_per_channel: neuron updates per channel.
        kind_calls: number of calls per detected input kind.
        geometry: structural facts for structural hardware models: ``in_channels``,
            ``out_channels``, ``kernel_elems``, ``out_positions`` (per frame) and ``frames`` (sum over
            calls of the leading batch-like dims, e.g. T x B).
    """

    name: str
    type: str
    input_kind: str = "n/a"
    calls: int = 0
    params: int = 0
    macs: int = 0
    dense_macs: int = 0
    flops: int = 0
    sops: int = 0
    sops_rate: float = 0.0
    neurons: int = 0
    neuron_updates: int = 0
    spikes: int = 0
    firing_rate: float | None = None
    weight_read_bytes: int = 0
    input_read_bytes: int = 0
    output_write_bytes: int = 0
    state_read_bytes: int = 0
    state_write_bytes: int = 0
    spikes_per_step: list[int] = field(default_factory=list)
    updates_per_step: list[int] = field(default_factory=list)
    spikes_per_channel: list[int] = field(default_factory=list)
    updates_per_channel: list[int] = field(default_factory=list)
    kind_calls: dict[str, int] = field(default_factory=dict)
    geometry: dict[str, int] = field(default_factory=dict)

    @property
    def is_neuron(self) -> bool:
        """True for spiking-neuron layers."""
        return self.neurons > 0

    @property
    def firing_rate_per_step(self) -> list[float]:
        """Firing rate per time step (spikes / updates at that step)."""
        return [s / u if u else 0.0 for s, u in zip(self.spikes_per_step, self.updates_per_step, strict=False)]

    @property
    def firing_rate_per_channel(self) -> list[float]:
        """Firing rate per channel (spikes / updates of that channel)."""
        return [s / u if u else 0.0 for s, u in zip(self.spikes_per_channel, self.updates_per_channel, strict=False)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (counts are ints, rates floats)."""
        out = asdict(self)
        out["firing_rate_per_step"] = self.firing_rate_per_step
        out["firing_rate_per_channel"] = self.firing_rate_per_channel
        return out


@dataclass
class Totals:
    """Model-wide sums of the per-layer counts (same units as :class:`LayerRecord`).

    ``firing_rate`` is the total spikes over total neuron updates (0.0 when there are no neurons).
    """

    params: int = 0
    macs: int = 0
    dense_macs: int = 0
    flops: int = 0
    sops: int = 0
    sops_rate: float = 0.0
    neurons: int = 0
    neuron_updates: int = 0
    spikes: int = 0
    firing_rate: float = 0.0
    weight_read_bytes: int = 0
    input_read_bytes: int = 0
    output_write_bytes: int = 0
    state_read_bytes: int = 0
    state_write_bytes: int = 0

    @classmethod
    def from_layers(cls, layers: list[LayerRecord], params: int) -> Totals:
        """Sum layer records; ``params`` is the model's unique parameter count."""
        tot = cls(params=params)
        for name in (*COUNT_FIELDS[1:], *MEMORY_FIELDS):
            setattr(tot, name, sum(getattr(layer, name) for layer in layers))
        tot.sops_rate = float(sum(layer.sops_rate for layer in layers))
        tot.firing_rate = tot.spikes / tot.neuron_updates if tot.neuron_updates else 0.0
        return tot

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _per_sample(value: float, batch: int) -> float | int:
    """Divide a total by the batch; stay an int when the division is exact."""
    if isinstance(value, int) and batch and value % batch == 0:
        return value // batch
    return value / batch if batch else float(value)


def derived_warnings(unsupported: list[str], uncalled: list[str], shared: list[str]) -> list[str]:
    """The summary warnings a result derives from its own fields (in this order, each only when non-empty).

    They are recomputed, not carried over, when results are merged (:mod:`snnprof.counting.merge`).

    Args:
        unsupported: modules/ops that ran without a rule.
        uncalled: modules with parameters that never ran.
        shared: layers whose per-sample counts were shared equally among a batch's samples.
    """
    out = []
    if unsupported:
        out.append("not counted (no rule): " + ", ".join(unsupported))
    if uncalled:
        out.append("modules with parameters that never ran: " + ", ".join(uncalled))
    if shared:
        out.append("per-sample counts without a sample axis were shared equally among the samples of their batch: "
                   + ", ".join(shared))
    return out


@dataclass(repr=False)
class ProfileResult:
    """The outcome of :func:`snnprof.profile` or :class:`snnprof.Profiler`.

    ``print(result)`` shows the per-layer table of ``snnprof count`` (without energy), notebooks
    show it as HTML; :meth:`by_module` and :meth:`table` give totals per module prefix.

    Attributes:
        model: model name (zoo name or class name).
        layers: per-layer records in first-call order.
        totals: sums over the layers.
        batch_size: samples profiled (``per_sample`` divides by this).
        time_steps: time steps per sample (1 for ANNs).
        input_shapes: shapes of the tensors fed to the model's first call.
        sop_convention: ``exact`` (border-aware events) — ``sops_rate`` always holds the estimate.
        count_weighting: ``value`` (a graded input of n counts n) or ``nonzero``.
        unsupported: modules/ops that ran but have no rule (``"name (Type)"`` strings).
        uncalled: modules with parameters that never ran.
        warnings: human-readable notes on anything that was not counted or is approximate.
        config: the config dict the run came from (if any).
        sample_stats: mean and spread across samples of the per-sample MACs, SOPs, spikes (and
            energy), when profiled with ``sample_stats=True``; ``None`` otherwise.
    """

    model: str
    layers: list[LayerRecord]
    totals: Totals
    batch_size: int
    time_steps: int
    input_shapes: list[list[int]] = field(default_factory=list)
    sop_convention: str = "exact"
    count_weighting: str = "value"
    unsupported: list[str] = field(default_factory=list)
    uncalled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    sample_stats: SampleStats | None = None

    @property
    def per_sample(self) -> dict[str, float | int]:
        """Totals divided by the batch size (what papers quote); ``neurons`` is already per sample."""
        tot = self.totals.to_dict()
        fixed = ("firing_rate", "params", "neurons")  # rates and per-sample sizes are not divided
        out = {k: _per_sample(v, self.batch_size) for k, v in tot.items() if k not in fixed}
        out["neurons"] = self.totals.neurons
        out["firing_rate"] = self.totals.firing_rate
        return out

    def __str__(self) -> str:
        """The compact per-layer table (what ``snnprof count`` prints, without energy)."""
        return self.table()

    def __repr__(self) -> str:
        tot = self.totals
        return (f"<ProfileResult {self.model}: {len(self.layers)} layers, batch {self.batch_size}, "
                f"T {self.time_steps}, dense_macs={tot.dense_macs}, macs={tot.macs}, sops={tot.sops}, "
                f"spikes={tot.spikes}>")

    def _repr_html_(self) -> str:
        """The per-layer table as HTML (Jupyter's rich display)."""
        from snnprof.counting.table import result_html

        return result_html(self)

    def table(self, depth: int | None = None) -> str:
        """The table as plain text: per layer, or per module prefix of ``depth`` components (``by_module``).

        Example:
            >>> print(result.table(depth=1))  # doctest: +SKIP  (one row per top-level block)
        """
        from snnprof.counting.table import result_text

        return result_text(self, depth=depth)

    def by_module(self, depth: int = 1) -> dict[str, Totals]:
        """Totals per module prefix (per block or stage), like fvcore's ``by_module`` / torch's ``get_table(depth)``.

        Layers are grouped by the first ``depth`` components of their module path (``"features.3"``
        at depth 1 is ``"features"``; a functional op ``"features.3/add.0"`` belongs to its module).
        Ops run by the root module itself group under ``""``. ``params`` sums the grouped layers'
        parameters; every other field is summed as in :attr:`totals`, in first-call order.

        Args:
            depth: how many module-path components to keep (0: everything under ``""``).

        Raises:
            ValueError: a negative ``depth``.
        """
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        from snnprof.counting.table import group_layers

        return {name: Totals.from_layers(layers, sum(rec.params for rec in layers))
                for name, layers in group_layers(self.layers, depth).items()}

    def layer(self, name: str) -> LayerRecord:
        """Return the record called ``name`` (KeyError if absent)."""
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict following schema ``snnprof.profile/1``."""
        return {
            "schema": SCHEMA,
            "model": self.model,
            "config": self.config,
            "input_shapes": self.input_shapes,
            "sop_convention": self.sop_convention,
            "count_weighting": self.count_weighting,
            "batch_size": self.batch_size,
            "time_steps": self.time_steps,
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": self.totals.to_dict(),
            "per_sample": self.per_sample,
            "energy": {},  # priced by snnprof.energy.price; a Run's to_dict() fills it
            "unsupported": list(self.unsupported),
            "uncalled": list(self.uncalled),
            "warnings": list(self.warnings),
            "sample_stats": self.sample_stats.to_dict() if self.sample_stats is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileResult:
        """Rebuild a result from :meth:`to_dict` output (derived keys such as ``per_sample`` are ignored).

        Raises:
            ValueError: ``data`` is not of schema ``snnprof.profile/1``.
        """
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} profile (schema {data.get('schema')!r})")
        layer_keys = {f.name for f in fields(LayerRecord)}
        total_keys = {f.name for f in fields(Totals)}
        stats = data.get("sample_stats")
        return cls(
            model=data["model"],
            layers=[LayerRecord(**{k: v for k, v in rec.items() if k in layer_keys}) for rec in data["layers"]],
            totals=Totals(**{k: v for k, v in data["totals"].items() if k in total_keys}),
            batch_size=int(data["batch_size"]),
            time_steps=int(data["time_steps"]),
            input_shapes=[list(s) for s in data.get("input_shapes", [])],
            sop_convention=data.get("sop_convention", "exact"),
            count_weighting=data.get("count_weighting", "value"),
            unsupported=list(data.get("unsupported", [])),
            uncalled=list(data.get("uncalled", [])),
            warnings=list(data.get("warnings", [])),
            config=dict(data.get("config", {})),
            sample_stats=SampleStats.from_dict(stats) if stats else None,
        )

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise :meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self) -> Any:
        """Per-layer table as a :class:`pandas.DataFrame` (one row per layer, scalar columns only)."""
        import pandas as pd

        scalar = [k for k in LayerRecord.__dataclass_fields__ if k not in _LIST_FIELDS]
        rows = [{k: getattr(rec, k) for k in scalar} for rec in self.layers]
        return pd.DataFrame(rows, columns=scalar)


_LIST_FIELDS = frozenset(
    {
        "spikes_per_step",
        "updates_per_step",
        "spikes_per_channel",
        "updates_per_channel",
        "kind_calls",
        "geometry",
    }
)
