"""Energy estimation: price a :class:`~snnprof.counting.results.ProfileResult` on a hardware profile.

Two models (chosen by the profile, see :mod:`snnprof.energy.profiles`):

* ``per_event``: ``E = sum over priced event kinds of (pJ per event x count)`` plus
  ``pJ per byte x bytes`` for priced memory traffic. Event kinds map to counts as
  ``mac -> macs`` (dense-input MACs), ``ac -> sops``, ``neuron_update -> neuron_updates``,
  ``spike -> spikes``; memory terms are named ``mem_<kind>`` (``mem_weight_read`` ...).
* ``crossbar``: the SpikeSim PE-cycle model; each synaptic layer with geometry costs
  ``ceil(Cout/xbar) * ceil(Cin/xbar) * out_positions * frames * PE_cycle_energy(k*k)`` (term
  ``crossbar``). It does not depend on spikes, only on geometry and frames (time steps x batch).

Every energy is in picojoules (pJ). Counts the profile does not price are never silently zero:
the result carries a warning naming them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snnprof.counting.results import LayerRecord, ProfileResult
from snnprof.energy.profiles import ENERGY_KEYS, MEMORY_KEYS, HardwareProfile, load_profile
from snnprof.errors import ProfileFileError

__all__ = [
    "CROSSBAR_TERM",
    "EVENT_COUNTS",
    "MEMORY_COUNTS",
    "OPERATION_KINDS",
    "SYNAPTIC_KINDS",
    "EnergyResult",
    "coverage",
    "crossbar_layer_energy_pj",
    "crossbar_pe_cycles",
    "estimate_energy",
    "layer_counts",
    "pe_cycle_energy_pj",
    "price",
    "price_other_pool_view",
]

#: Profile event key -> the count field it prices.
EVENT_COUNTS: dict[str, str] = {
    "mac": "macs",
    "ac": "sops",
    "neuron_update": "neuron_updates",
    "spike": "spikes",
}
#: Profile memory key -> the byte field it prices (the term is named ``mem_<key>``).
MEMORY_COUNTS: dict[str, str] = {key: f"{key}_bytes" for key in MEMORY_KEYS}
#: Name of the single term of the crossbar model.
CROSSBAR_TERM = "crossbar"
#: Geometry keys the crossbar model needs on a layer.
GEOMETRY_KEYS: tuple[str, ...] = ("in_channels", "out_channels", "kernel_elems", "out_positions", "frames")
_MAX_NAMES = 8


@dataclass
class EnergyResult:
    """Estimated energy of one profiled run on one hardware profile (all energies in pJ).

    Attributes:
        profile: the hardware profile's name.
        total_pj: energy of the whole profiled run (all samples, all time steps).
        per_sample_pj: ``total_pj / batch_size`` (what papers quote).
        by_term_pj: energy per term (``mac``, ``ac``, ``neuron_update``, ``spike``,
            ``mem_<kind>``, ``crossbar``); every term the profile prices, zeros included.
        layers: energy per layer name; sums to ``total_pj``.
        layer_terms: per layer, energy per term; each sums to ``layers[name]``.
        provenance: the profile's provenance (source, year, technology_nm, precision, fidelity...).
        warnings: counts the profile does not price (excluded from the total), missing geometry.
        counts: the run's count of each event kind (``mac``, ``ac``, ``neuron_update``, ``spike``;
            ``mem_<kind>`` in bytes), what pricing looked at.
        unpriced: per event kind, the count left unpriced (no price on this profile, nor on the
            host profile); kinds fully priced are absent.
        coverage: fraction (0..1) of the run's operations (MACs, SOPs, neuron updates, spikes) that
            were priced; 1.0 for a run without operations. Memory bytes are reported in
            ``unpriced`` but are not operations.
        host_profile: the host profile that priced the synaptic operations this profile cannot
            run (terms ``host_mac``, ``host_ac``), or ``None``.
    """

    profile: str
    total_pj: float
    per_sample_pj: float
    by_term_pj: dict[str, float] = field(default_factory=dict)
    layers: dict[str, float] = field(default_factory=dict)
    layer_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unpriced: dict[str, int] = field(default_factory=dict)
    coverage: float = 1.0
    host_profile: str | None = None

    def priced(self, kind: str) -> bool:
        """Whether every event of ``kind`` in the run has a price (trivially true when there are none)."""
        return not self.unpriced.get(kind)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (energies as floats in pJ, counts as integers).

        Returns:
            ``{"total_pj", "per_sample_pj", "by_term_pj", "layers", "layer_terms", "provenance",
            "warnings", "unpriced", "coverage", "host_profile"}``.
        """
        return {
            "total_pj": float(self.total_pj),
            "per_sample_pj": float(self.per_sample_pj),
            "by_term_pj": {k: float(v) for k, v in self.by_term_pj.items()},
            "layers": {k: float(v) for k, v in self.layers.items()},
            "layer_terms": {n: {k: float(v) for k, v in t.items()} for n, t in self.layer_terms.items()},
            "provenance": dict(self.provenance),
            "warnings": list(self.warnings),
            "unpriced": {k: int(v) for k, v in self.unpriced.items()},
            "coverage": float(self.coverage),
            "host_profile": self.host_profile,
        }


# ---------------------------------------------------------------------------------------------
# Crossbar (SpikeSim) model
# ---------------------------------------------------------------------------------------------


def pe_cycle_energy_pj(crossbar: Mapping[str, float], kernel_elems: int) -> float:
    """Energy of one processing-element cycle of the SpikeSim crossbar model.

    ``PE_ar = k*k*xbar_ar + (xbar/8)*(ADC + MUX)`` and ``PE_cycle = Htree + mem_fetch + neuron +
    (xbar/8)*PE_ar + (xbar/8)*16*Sub + (xbar/8)*Temp_Buff + Tile_buff``.

    Args:
        crossbar: the profile's ``[crossbar]`` constants (pJ; ``xbar_size`` an integer).
        kernel_elems: ``k*k`` of the layer (1 for linear layers).

    Returns:
        Energy of one PE cycle in pJ (715.58 pJ for RRAM, xbar 64, k = 1).
    """
    groups = crossbar["xbar_size"] / 8
    pe_ar = kernel_elems * crossbar["xbar_ar_pj"] + groups * (crossbar["adc_pj"] + crossbar["mux_pj"])
    return (
        crossbar["htree_pj"]
        + crossbar["mem_fetch_pj"]
        + crossbar["neuron_pj"]
        + groups * pe_ar
        + groups * 16 * crossbar["sub_pj"]
        + groups * crossbar["temp_buffer_pj"]
        + crossbar["tile_buffer_pj"]
    )


def crossbar_pe_cycles(geometry: Mapping[str, int], xbar_size: int) -> int:
    """PE cycles of one frame: ``ceil(Cout/xbar) * ceil(Cin/xbar) * out_positions``.

    Args:
        geometry: the layer's geometry (``in_channels``, ``out_channels``, ``out_positions``).
        xbar_size: crossbar rows = columns.

    Returns:
        PE cycles per frame (one sample at one time step).
    """
    rows = math.ceil(geometry["in_channels"] / xbar_size)
    cols = math.ceil(geometry["out_channels"] / xbar_size)
    return cols * rows * geometry["out_positions"]


def _has_geometry(layer: LayerRecord) -> bool:
    """True when the layer carries every geometry key the crossbar model needs."""
    return all(key in layer.geometry for key in GEOMETRY_KEYS)


def crossbar_layer_energy_pj(layer: LayerRecord, crossbar: Mapping[str, float]) -> float:
    """Crossbar energy of one layer over the run: ``PE_cycles * PE_cycle_energy * frames``.

    Args:
        layer: a layer record; layers without complete geometry cost 0.0 (the caller warns).
        crossbar: the profile's ``[crossbar]`` constants.

    Returns:
        Energy in pJ.
    """
    if not _has_geometry(layer):
        return 0.0
    geo = layer.geometry
    cycles = crossbar_pe_cycles(geo, int(crossbar["xbar_size"]))
    return cycles * pe_cycle_energy_pj(crossbar, geo["kernel_elems"]) * geo["frames"]


# ---------------------------------------------------------------------------------------------
# Per-layer terms, unpriced counts and warnings
# ---------------------------------------------------------------------------------------------

#: Event kinds that are operations (``coverage`` is the priced fraction of these).
OPERATION_KINDS: tuple[str, ...] = ("mac", "ac", "neuron_update", "spike")
#: The synaptic operation kinds (what a host profile can take over).
SYNAPTIC_KINDS: tuple[str, ...] = ("mac", "ac")
#: Term names of the host profile's prices.
HOST_TERMS: dict[str, str] = {kind: f"host_{kind}" for kind in SYNAPTIC_KINDS}


def layer_counts(layer: LayerRecord) -> dict[str, int]:
    """The layer's count of every event kind pricing looks at (memory kinds in bytes)."""
    counts = {key: int(getattr(layer, EVENT_COUNTS[key])) for key in ENERGY_KEYS}
    counts.update({f"mem_{key}": int(getattr(layer, MEMORY_COUNTS[key])) for key in MEMORY_KEYS})
    return counts


def _priced_kinds(layer: LayerRecord, profile: HardwareProfile) -> set[str]:
    """Event kinds the profile prices for this layer.

    A per-event profile prices the kinds it lists. The crossbar model's PE cycle includes the
    neuron, buffers and memory fetches, so it covers neuron updates, spikes and memory traffic of
    every layer, and the synaptic operations of layers with conv/linear geometry.
    """
    kinds = set(profile.energy_pj) | {f"mem_{key}" for key in profile.memory_pj_per_byte}
    if profile.model == "crossbar":
        kinds |= {"neuron_update", "spike"} | {f"mem_{key}" for key in MEMORY_KEYS}
        if _has_geometry(layer):
            kinds |= set(SYNAPTIC_KINDS)
    return kinds


def _term_names(profile: HardwareProfile, host: HardwareProfile | None) -> list[str]:
    """Names of every term the profile (and host) prices, in report order."""
    names = [key for key in ENERGY_KEYS if key in profile.energy_pj]
    names += [f"mem_{key}" for key in MEMORY_KEYS if key in profile.memory_pj_per_byte]
    names += [CROSSBAR_TERM] if profile.model == "crossbar" else []
    return names + ([HOST_TERMS[k] for k in SYNAPTIC_KINDS if k in host.energy_pj] if host is not None else [])


def _layer_terms(layer: LayerRecord, profile: HardwareProfile,
                 host: HardwareProfile | None) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Energy per term of one layer (pJ), its counts left unpriced and those priced on the host, per kind."""
    terms = {
        key: profile.energy_pj[key] * getattr(layer, EVENT_COUNTS[key])
        for key in ENERGY_KEYS
        if key in profile.energy_pj
    }
    for key in MEMORY_KEYS:
        if key in profile.memory_pj_per_byte:
            terms[f"mem_{key}"] = profile.memory_pj_per_byte[key] * getattr(layer, MEMORY_COUNTS[key])
    if profile.model == "crossbar":
        terms[CROSSBAR_TERM] = crossbar_layer_energy_pj(layer, profile.crossbar)
    priced = _priced_kinds(layer, profile)
    unpriced = {kind: n for kind, n in layer_counts(layer).items() if n and kind not in priced}
    hosted: dict[str, int] = {}
    if host is not None:
        for kind in SYNAPTIC_KINDS:
            if unpriced.get(kind) and kind in host.energy_pj:
                hosted[kind] = unpriced.pop(kind)
                terms[HOST_TERMS[kind]] = host.energy_pj[kind] * hosted[kind]
    return terms, unpriced, hosted


def _merge(into: dict[str, Any], terms: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``terms`` to ``into`` key by key (a layer name seen twice accumulates)."""
    for key, value in terms.items():
        into[key] = into.get(key, 0) + value
    return into


def coverage(counts: Mapping[str, int], unpriced: Mapping[str, int]) -> float:
    """Priced fraction of the operations (MACs, SOPs, neuron updates, spikes); 1.0 without any."""
    total = sum(counts.get(kind, 0) for kind in OPERATION_KINDS)
    left = sum(unpriced.get(kind, 0) for kind in OPERATION_KINDS)
    return 1.0 - left / total if total else 1.0


def _names(names: list[str]) -> str:
    """Comma-join layer names, shortening long lists."""
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


_SYNAPTIC_WORDS: dict[str, tuple[str, str]] = {
    "mac": ("dense-input MACs", "mac"),
    "ac": ("synaptic operations (SOPs)", "ac"),
}


def _other_unpriced(unpriced: Mapping[str, int]) -> list[str]:
    """Neuron updates, spikes and memory bytes left unpriced (as text)."""
    items = [f"{unpriced[key]:,} {label}" for key, label in (("neuron_update", "neuron updates"), ("spike", "spikes"))
             if unpriced.get(key)]
    kinds = [key for key in MEMORY_KEYS if unpriced.get(f"mem_{key}")]
    if kinds:
        nbytes = sum(unpriced[f"mem_{key}"] for key in kinds)
        items.append(f"{nbytes:,} bytes of memory traffic ({', '.join(kinds)})")
    return items


def _warnings(unpriced: Mapping[str, int], by_layer: Mapping[str, Mapping[str, int]], hosted: Mapping[str, int],
              profile: HardwareProfile, host: HardwareProfile | None) -> list[str]:
    """One warning per kind of count left out of ``total_pj``, and a note on what the host priced."""
    out: list[str] = []
    if profile.model == "crossbar":
        missing = [name for name, left in by_layer.items() if left.get("mac") or left.get("ac")]
        if missing:
            out.append(f"{len(missing)} synaptic layer(s) have no crossbar geometry and are not priced by profile "
                       f"'{profile.name}' (excluded from total_pj): {_names(missing)}")
    else:
        for kind, (words, key) in _SYNAPTIC_WORDS.items():
            if unpriced.get(kind):
                out.append(f"{unpriced[kind]:,} {words} are not priced: profile '{profile.name}' has no '{key}' "
                           "energy; their energy is not included in total_pj")
    other = _other_unpriced(unpriced)
    if other:
        out.append(f"not priced by profile '{profile.name}' (excluded from total_pj): " + ", ".join(other))
    if host is not None and hosted:
        moved = ", ".join(f"{n:,} {_SYNAPTIC_WORDS[kind][0]} (term {HOST_TERMS[kind]})" for kind, n in hosted.items())
        out.append(f"priced on host profile '{host.name}' because profile '{profile.name}' cannot run them "
                   f"(included in total_pj as separate terms): {moved}")
    return out


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def estimate_energy(
    result: ProfileResult,
    profile: str | os.PathLike[str] | HardwareProfile,
    host_profile: str | os.PathLike[str] | HardwareProfile | None = None,
) -> EnergyResult:
    """Estimate the energy of a profiled run on a hardware profile.

    Args:
        result: the profiling result (counts over the whole run: all samples and time steps).
        profile: a shipped profile name (:func:`~snnprof.energy.list_profiles`), a path to a
            profile ``.toml`` file, or a :class:`~snnprof.energy.HardwareProfile`.
        host_profile: a per-event profile that prices the synaptic operations ``profile`` cannot
            (dense MACs on a neuromorphic chip, layers without crossbar geometry), as the separate
            terms ``host_mac`` / ``host_ac`` — the convention papers use for mixed systems.

    Returns:
        The energy in pJ: total, per sample, per term, per layer and per layer and term, with
        the profile's provenance, the counts left unpriced, the priced fraction of operations
        (``coverage``) and warnings for anything not priced.

    Raises:
        ProfileFileError: the profile name is unknown or its file is missing or invalid, or the
            host profile is not a per-event profile.

    Example:
        >>> energy = estimate_energy(result, "cmos45nm_fp32")  # doctest: +SKIP
        >>> energy.by_term_pj["mac"] == 4.6 * result.totals.macs  # doctest: +SKIP
    """
    prof = load_profile(profile)
    host = load_profile(host_profile) if host_profile is not None else None
    if host is not None and host.model != "per_event":
        raise ProfileFileError(host.path or host.name, "profile.model",
                               f"expected a per_event host profile, got {host.model!r}")
    layer_terms: dict[str, dict[str, float]] = {}
    by_layer: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    hosted: dict[str, int] = {}
    for layer in result.layers:
        terms, left, moved = _layer_terms(layer, prof, host)
        _merge(layer_terms.setdefault(layer.name, {}), terms)
        _merge(by_layer.setdefault(layer.name, {}), left)
        _merge(counts, layer_counts(layer))
        _merge(hosted, moved)
    unpriced: dict[str, int] = {}
    for left in by_layer.values():
        _merge(unpriced, left)
    layers = {name: math.fsum(terms.values()) for name, terms in layer_terms.items()}
    by_term = {key: math.fsum(t.get(key, 0.0) for t in layer_terms.values()) for key in _term_names(prof, host)}
    total = math.fsum(layers.values())
    batch = result.batch_size
    return EnergyResult(
        profile=prof.name,
        total_pj=total,
        per_sample_pj=total / batch if batch > 0 else total,
        by_term_pj=by_term,
        layers=layers,
        layer_terms=layer_terms,
        provenance=dict(prof.provenance),
        warnings=_warnings(unpriced, by_layer, hosted, prof, host),
        counts=counts,
        unpriced=unpriced,
        coverage=coverage(counts, unpriced),
        host_profile=host.name if host is not None else None,
    )


def price(
    result: ProfileResult,
    profiles: Iterable[str | os.PathLike[str] | HardwareProfile],
    host_profile: str | os.PathLike[str] | HardwareProfile | None = None,
) -> dict[str, EnergyResult]:
    """Price one profiled run on several hardware profiles: the single pricing step of every command.

    Args:
        result: the profiling result.
        profiles: shipped names, profile file paths or :class:`HardwareProfile` objects, in order.
        host_profile: prices what each profile cannot run (see :func:`estimate_energy`); a profile
            that prices everything is unaffected.

    Returns:
        ``{profile name: EnergyResult}`` in the given order.

    Raises:
        ProfileFileError: an unknown or invalid profile, or two profiles of the same name.
    """
    out: dict[str, EnergyResult] = {}
    sources: dict[str, str] = {}
    for profile in profiles:
        prof = load_profile(profile)
        if prof.name in out:
            raise ProfileFileError(prof.path or prof.name, "profile.name",
                                   f"expected distinct profile names in one run: {prof.name!r} is also "
                                   f"{sources[prof.name]}")
        out[prof.name] = estimate_energy(result, prof, host_profile)
        sources[prof.name] = prof.path or prof.name
    return out


def price_other_pool_view(
    result: ProfileResult,
    profiles: Iterable[str | os.PathLike[str] | HardwareProfile],
    host_profile: str | os.PathLike[str] | HardwareProfile | None = None,
) -> dict[str, EnergyResult]:
    """Price the pool-folding view the run did not choose (empty when no layer is fed by pooled spikes).

    A run counts synaptic layers fed by average/sum-pooled spikes both ways (``fold_pooling``); this
    prices the other way so that both can be shown side by side.
    """
    if not result.folds_pools:
        return {}
    return price(result.with_pool_folding(not result.fold_pooling), profiles, host_profile)
