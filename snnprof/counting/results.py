"""Typed results of a profiling run: per-layer records, totals and their JSON/pandas views.

Everything here is plain data computed once at the end of a run (after the single host sync);
rendering to a terminal table, JSON or HTML lives elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from snnprof.counting.kinds import KIND_NAMES
from snnprof.counting.sample_stats import SampleStats

__all__ = [
    "COUNT_FIELDS",
    "FOLD_FIELDS",
    "MEMORY_FIELDS",
    "SCHEMA",
    "VALID_FIELDS",
    "LayerRecord",
    "ProfileResult",
    "Totals",
    "derived_warnings",
    "kind_label",
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

#: The two pool-folding views of ``macs`` and ``sops`` (``None`` where no call was fed by pooled spikes).
FOLD_FIELDS: tuple[str, ...] = ("macs_unfolded", "sops_unfolded", "macs_folded", "sops_folded")

#: Valid-slot counts (``None`` where no validity mask was seen).
VALID_FIELDS: tuple[str, ...] = ("valid_updates", "valid_spikes")

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
        folded_calls: calls whose input came out of an average/sum pool of spikes (pool folding applies).
        macs_unfolded: ``macs`` with pools not folded (the default convention); ``None`` when
            ``folded_calls`` is 0 (then both views equal ``macs``).
        sops_unfolded: ``sops`` with pools not folded; ``None`` when ``folded_calls`` is 0.
        macs_folded: ``macs`` with pools folded (``fold_pooling``: those calls count no MACs).
        sops_folded: ``sops`` with pools folded: those calls count one accumulate per pre-pool spike
            and output connected to a pooled position holding it (border-aware).
        folded_kinds: the input kinds detected on the pooled tensor of the folded calls (their kind
            in the unfolded view; the folded view counts them as ``spike``).
        neurons: spiking neurons in the layer (per sample and time step).
        neuron_updates: neuron state updates = neurons x time steps x batch.
        spikes: emitted spikes (nonzero outputs of a neuron layer).
        firing_rate: ``spikes / neuron_updates``; ``None`` for non-neuron layers.
        valid_updates: neuron updates in valid (non-padding) ``[T, B]`` slots, for layers that ran
            inside :func:`snnprof.valid_slots` (calls outside count all their updates); else ``None``.
        valid_spikes: spikes in valid slots (``None`` as ``valid_updates``).
        firing_rate_valid: ``valid_spikes / valid_updates`` (``None`` as ``valid_updates``).
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
    folded_calls: int = 0
    macs_unfolded: int | None = None
    sops_unfolded: int | None = None
    macs_folded: int | None = None
    sops_folded: int | None = None
    neurons: int = 0
    neuron_updates: int = 0
    spikes: int = 0
    firing_rate: float | None = None
    valid_updates: int | None = None
    valid_spikes: int | None = None
    firing_rate_valid: float | None = None
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
    folded_kinds: dict[str, int] = field(default_factory=dict)

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
    The pool-folding views (``macs_folded`` ...) and the valid-slot counts are ``None`` unless some
    layer has them; then layers without them contribute their ``macs``/``sops`` (resp. all their
    neuron updates and spikes), and ``firing_rate_valid = valid_spikes / valid_updates``.
    """

    params: int = 0
    macs: int = 0
    dense_macs: int = 0
    flops: int = 0
    sops: int = 0
    sops_rate: float = 0.0
    macs_unfolded: int | None = None
    sops_unfolded: int | None = None
    macs_folded: int | None = None
    sops_folded: int | None = None
    neurons: int = 0
    neuron_updates: int = 0
    spikes: int = 0
    firing_rate: float = 0.0
    valid_updates: int | None = None
    valid_spikes: int | None = None
    firing_rate_valid: float | None = None
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
        if any(layer.folded_calls for layer in layers):
            for name in FOLD_FIELDS:
                plain = name.split("_", 1)[0]  # macs / sops
                setattr(tot, name, sum(_or(getattr(layer, name), getattr(layer, plain)) for layer in layers))
        neurons = [layer for layer in layers if layer.neuron_updates]
        if any(layer.valid_updates is not None for layer in neurons):
            tot.valid_updates = sum(_or(layer.valid_updates, layer.neuron_updates) for layer in neurons)
            tot.valid_spikes = sum(_or(layer.valid_spikes, layer.spikes) for layer in neurons)
            tot.firing_rate_valid = tot.valid_spikes / tot.valid_updates if tot.valid_updates else None
        return tot

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def kind_label(kind_calls: Mapping[str, int], folded_calls: int = 0) -> str:
    """A layer's input-kind label: the one kind seen, ``mixed:a+b``, or ``n/a``.

    Args:
        kind_calls: calls per input kind.
        folded_calls: calls counted with pools folded (adds `` (folded)`` to the label).
    """
    seen = [k for k in KIND_NAMES if kind_calls.get(k)]
    label = seen[0] if len(seen) == 1 else ("mixed:" + "+".join(seen) if seen else "n/a")
    return f"{label} (folded)" if folded_calls and seen else label


def _per_sample(value: float | None, batch: int) -> float | int | None:
    """Divide a total by the batch; stay an int when the division is exact."""
    if value is None:
        return None
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
        fold_pooling: the main ``macs``/``sops`` count synaptic layers fed by average/sum-pooled spikes
            on the pre-pool spikes (:mod:`snnprof.counting.folding`); both views are in the
            ``*_folded``/``*_unfolded`` fields either way.
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
    fold_pooling: bool = False
    unsupported: list[str] = field(default_factory=list)
    uncalled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    sample_stats: SampleStats | None = None

    @property
    def per_sample(self) -> dict[str, float | int]:
        """Totals divided by the batch size (what papers quote); ``neurons`` is already per sample."""
        tot = self.totals.to_dict()
        fixed = ("firing_rate", "firing_rate_valid", "params", "neurons")  # rates and per-sample sizes
        out = {k: _per_sample(v, self.batch_size) for k, v in tot.items() if k not in fixed}
        out["neurons"] = self.totals.neurons
        out["firing_rate"] = self.totals.firing_rate
        out["firing_rate_valid"] = self.totals.firing_rate_valid
        return out

    @property
    def folds_pools(self) -> bool:
        """Whether some synaptic call was fed by average/sum-pooled spikes (the two views differ)."""
        return any(rec.folded_calls for rec in self.layers)

    def with_pool_folding(self, fold_pooling: bool) -> ProfileResult:
        """A copy whose main ``macs``, ``sops`` and input kinds follow the chosen pool-folding view.

        Lets both views be priced (:func:`snnprof.estimate_energy`) from one profiling run: the
        folded calls count as ``spike`` in the folded view and as ``folded_kinds`` in the other.
        """
        layers = [_with_view(rec, fold_pooling) for rec in self.layers]
        return replace(self, layers=layers, totals=Totals.from_layers(layers, self.totals.params),
                       fold_pooling=fold_pooling)

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
            "fold_pooling": self.fold_pooling,
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
            fold_pooling=bool(data.get("fold_pooling", False)),
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


def _with_view(rec: LayerRecord, fold_pooling: bool) -> LayerRecord:
    """``rec`` with ``macs``/``sops`` and input kinds of one pool-folding view."""
    if not rec.folded_calls or rec.macs_folded is None or rec.macs_unfolded is None:
        return replace(rec)
    if fold_pooling == rec.input_kind.endswith(" (folded)"):
        return replace(rec)
    moved = sum(rec.folded_kinds.values())
    kinds = dict(rec.kind_calls)
    if fold_pooling:
        for name, n in rec.folded_kinds.items():
            kinds[name] = kinds.get(name, 0) - n
        kinds["spike"] = kinds.get("spike", 0) + moved
        macs, sops = rec.macs_folded, rec.sops_folded
    else:
        kinds["spike"] = kinds.get("spike", 0) - moved
        for name, n in rec.folded_kinds.items():
            kinds[name] = kinds.get(name, 0) + n
        macs, sops = rec.macs_unfolded, rec.sops_unfolded
    kinds = {k: v for k, v in kinds.items() if v}
    label = kind_label(kinds, rec.folded_calls if fold_pooling else 0)
    return replace(rec, macs=macs, sops=sops, kind_calls=kinds, input_kind=label)


_LIST_FIELDS = frozenset(
    {
        "spikes_per_step",
        "updates_per_step",
        "spikes_per_channel",
        "updates_per_channel",
        "kind_calls",
        "geometry",
        "folded_kinds",
    }
)
