"""Merge the results of disjoint parts of one run (shards of a data set, ranks of a distributed run).

Every count of a :class:`~snnprof.counting.results.LayerRecord` is a sum over calls, so the merge
of results profiled on disjoint batches equals the result of profiling all batches at once: counts,
bytes, calls, per-step and per-channel lists and kind counts add (exact integers); ``neurons``
(per sample and step) and the geometry sizes take the maximum, ``frames`` adds; rates are
recomputed; ``params`` stay per-layer constants. The pool-folding views and valid-slot counts add
too, a part without them contributing its plain ``macs``/``sops`` (resp. all its updates and
spikes) when another part has them. Sample statistics merge with Chan's update.
``batch_size`` (samples) adds. Energy is not merged: estimate it again on the merged result.
"""

from __future__ import annotations

from collections.abc import Sequence

from snnprof.counting.kinds import KIND_NAMES
from snnprof.counting.results import (
    COUNT_FIELDS,
    FOLD_FIELDS,
    MEMORY_FIELDS,
    LayerRecord,
    ProfileResult,
    Totals,
    derived_warnings,
    kind_label,
)

__all__ = ["merge_results"]

_SUMMED = tuple(f for f in COUNT_FIELDS if f not in ("params", "neurons")) + MEMORY_FIELDS + ("calls", "folded_calls")


def _add_lists(a: list[int], b: list[int]) -> list[int]:
    longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
    return [x + (shorter[i] if i < len(shorter) else 0) for i, x in enumerate(longer)]


def _optional_sum(a: int | None, b: int | None, a_plain: int, b_plain: int) -> int | None:
    """``a + b`` where a missing side counts its plain value; ``None`` when both are missing."""
    if a is None and b is None:
        return None
    return (a_plain if a is None else a) + (b_plain if b is None else b)


def _merge_views(out: LayerRecord, a: LayerRecord, b: LayerRecord) -> None:
    """Pool-folding views and valid-slot counts of ``a`` and ``b`` into ``out``."""
    for name in FOLD_FIELDS:
        plain = name.split("_", 1)[0]
        setattr(out, name, _optional_sum(getattr(a, name), getattr(b, name), getattr(a, plain), getattr(b, plain)))
    out.folded_kinds = {k: n for k in KIND_NAMES if (n := a.folded_kinds.get(k, 0) + b.folded_kinds.get(k, 0))}
    out.valid_updates = _optional_sum(a.valid_updates, b.valid_updates, a.neuron_updates, b.neuron_updates)
    out.valid_spikes = _optional_sum(a.valid_spikes, b.valid_spikes, a.spikes, b.spikes)
    if out.valid_updates is not None and out.valid_spikes is not None:
        out.firing_rate_valid = out.valid_spikes / out.valid_updates if out.valid_updates else None


def _merge_geometry(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value if key == "frames" else max(out.get(key, 0), value)
    return out


def _merge_layer(a: LayerRecord, b: LayerRecord) -> LayerRecord:
    out = LayerRecord(name=a.name, type=a.type, params=max(a.params, b.params), neurons=max(a.neurons, b.neurons))
    for name in _SUMMED:
        setattr(out, name, getattr(a, name) + getattr(b, name))
    out.sops_rate = a.sops_rate + b.sops_rate
    for name in ("spikes_per_step", "updates_per_step", "spikes_per_channel", "updates_per_channel"):
        setattr(out, name, _add_lists(getattr(a, name), getattr(b, name)))
    kinds = {k: a.kind_calls.get(k, 0) + b.kind_calls.get(k, 0) for k in KIND_NAMES}
    out.kind_calls = {k: v for k, v in kinds.items() if v}
    folded = any(r.input_kind.endswith(" (folded)") for r in (a, b))
    out.input_kind = kind_label(out.kind_calls, out.folded_calls if folded else 0)
    out.geometry = _merge_geometry(a.geometry, b.geometry)
    _merge_views(out, a, b)
    out.firing_rate = out.spikes / out.neuron_updates if out.neuron_updates else None
    return out


def _copy_layer(rec: LayerRecord) -> LayerRecord:
    return _merge_layer(rec, LayerRecord(name=rec.name, type=rec.type, input_kind=rec.input_kind))


def _ordered_union(lists: Sequence[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def merge_results(results: Sequence[ProfileResult]) -> ProfileResult:
    """One result for the union of the batches profiled in ``results`` (see the module docstring).

    Args:
        results: results of the same model and settings on disjoint batches (order: layers appear
            in first-seen order, the first result's config and input shapes are kept).

    Raises:
        ValueError: no results, or results of different models, time steps or conventions.
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    first = results[0]
    for other in results[1:]:
        same = (other.model, other.time_steps, other.sop_convention, other.count_weighting, other.fold_pooling)
        if same != (first.model, first.time_steps, first.sop_convention, first.count_weighting, first.fold_pooling):
            raise ValueError(f"cannot merge results of {first.model} (T={first.time_steps}) and {other.model} "
                             f"(T={other.time_steps}) or of different counting conventions")
    layers: dict[str, LayerRecord] = {}
    for res in results:
        for rec in res.layers:
            layers[rec.name] = _merge_layer(layers[rec.name], rec) if rec.name in layers else _copy_layer(rec)
    merged = list(layers.values())
    unsupported = _ordered_union([r.unsupported for r in results])
    uncalled = [name for name in first.uncalled if all(name in r.uncalled for r in results[1:])]
    stats = [r.sample_stats for r in results if r.sample_stats is not None]
    sample_stats = None
    if stats:
        sample_stats = stats[0]
        for more in stats[1:]:
            sample_stats = sample_stats.merge(more)
    return ProfileResult(
        model=first.model, layers=merged, totals=Totals.from_layers(merged, first.totals.params),
        batch_size=sum(r.batch_size for r in results), time_steps=first.time_steps,
        input_shapes=next((r.input_shapes for r in results if r.input_shapes), []),
        sop_convention=first.sop_convention, count_weighting=first.count_weighting,
        fold_pooling=first.fold_pooling, unsupported=unsupported, uncalled=uncalled,
        warnings=_warnings(results, unsupported, uncalled, sample_stats.shared if sample_stats else []),
        config=dict(first.config), sample_stats=sample_stats,
    )


def _rule_warnings(result: ProfileResult) -> list[str]:
    """The warnings of ``result`` other than the summaries derived from its own fields."""
    shared = result.sample_stats.shared if result.sample_stats is not None else []
    derived = set(derived_warnings(result.unsupported, result.uncalled, shared))
    return [w for w in result.warnings if w not in derived]


def _warnings(results: Sequence[ProfileResult], unsupported: list[str], uncalled: list[str],
              shared: list[str]) -> list[str]:
    """Rule warnings of every part, with the derived summary lines recomputed for the union."""
    return _ordered_union([_rule_warnings(r) for r in results]) + derived_warnings(unsupported, uncalled, shared)
