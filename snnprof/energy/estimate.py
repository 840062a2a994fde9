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

__all__ = [
    "CROSSBAR_TERM",
    "EVENT_COUNTS",
    "MEMORY_COUNTS",
    "EnergyResult",
    "crossbar_layer_energy_pj",
    "crossbar_pe_cycles",
    "estimate_energy",
    "pe_cycle_energy_pj",
    "price",
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
    """

    profile: str
    total_pj: float
    per_sample_pj: float
    by_term_pj: dict[str, float] = field(default_factory=dict)
    layers: dict[str, float] = field(default_factory=dict)
    layer_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (energies as floats in pJ).

        Returns:
            ``{"total_pj", "per_sample_pj", "by_term_pj", "layers", "layer_terms", "provenance",
            "warnings"}``.
        """
        return {
            "total_pj": float(self.total_pj),
            "per_sample_pj": float(self.per_sample_pj),
            "by_term_pj": {k: float(v) for k, v in self.by_term_pj.items()},
            "layers": {k: float(v) for k, v in self.layers.items()},
            "layer_terms": {n: {k: float(v) for k, v in t.items()} for n, t in self.layer_terms.items()},
            "provenance": dict(self.provenance),
            "warnings": list(self.warnings),
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
# Per-layer terms and warnings
# ---------------------------------------------------------------------------------------------


def _term_names(profile: HardwareProfile) -> list[str]:
    """Names of every term the profile prices, in report order."""
    names = [key for key in ENERGY_KEYS if key in profile.energy_pj]
    names += [f"mem_{key}" for key in MEMORY_KEYS if key in profile.memory_pj_per_byte]
    return names + ([CROSSBAR_TERM] if profile.model == "crossbar" else [])


def _layer_terms(layer: LayerRecord, profile: HardwareProfile) -> dict[str, float]:
    """Energy per term of one layer (pJ), one entry per term the profile prices."""
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
    return terms


def _merge(into: dict[str, float], terms: Mapping[str, float]) -> dict[str, float]:
    """Add ``terms`` to ``into`` key by key (a layer name seen twice accumulates)."""
    for key, value in terms.items():
        into[key] = into.get(key, 0.0) + value
    return into


def _count(layers: Iterable[LayerRecord], field_name: str) -> int:
    """Sum one count field over layers."""
    return sum(getattr(layer, field_name) for layer in layers)


def _names(names: list[str]) -> str:
    """Comma-join layer names, shortening long lists."""
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def _unpriced_other(layers: list[LayerRecord], profile: HardwareProfile) -> list[str]:
    """Neuron updates, spikes and memory bytes that occurred but have no price (as text)."""
    items: list[str] = []
    for key, label in (("neuron_update", "neuron updates"), ("spike", "spikes")):
        n = _count(layers, EVENT_COUNTS[key])
        if n and key not in profile.energy_pj:
            items.append(f"{n:,} {label}")
    kinds = [key for key in MEMORY_KEYS if key not in profile.memory_pj_per_byte]
    nbytes = sum(_count(layers, MEMORY_COUNTS[key]) for key in kinds)
    if nbytes:
        items.append(f"{nbytes:,} bytes of memory traffic ({', '.join(kinds)})")
    return items


def _per_event_warnings(layers: list[LayerRecord], profile: HardwareProfile) -> list[str]:
    """Warnings for nonzero counts that a per-event profile does not price."""
    out: list[str] = []
    priced = profile.energy_pj
    macs, sops = _count(layers, "macs"), _count(layers, "sops")
    if macs and "mac" not in priced:
        out.append(
            f"{macs:,} dense-input MACs are not priced: profile '{profile.name}' has no 'mac' energy; "
            "their energy is not included in total_pj"
        )
    if sops and "ac" not in priced:
        out.append(
            f"{sops:,} synaptic operations (SOPs) are not priced: profile '{profile.name}' has no 'ac' "
            "energy; their energy is not included in total_pj"
        )
    unpriced = _unpriced_other(layers, profile)
    if unpriced:
        out.append(f"not priced by profile '{profile.name}' (excluded from total_pj): " + ", ".join(unpriced))
    return out


def _crossbar_warnings(layers: list[LayerRecord], profile: HardwareProfile) -> list[str]:
    """Warnings for synaptic layers the crossbar model cannot price (no geometry)."""
    missing = [
        layer.name
        for layer in layers
        if (layer.dense_macs or layer.macs or layer.sops) and not _has_geometry(layer)
    ]
    if not missing:
        return []
    return [
        f"{len(missing)} synaptic layer(s) have no crossbar geometry and are not priced by profile "
        f"'{profile.name}' (excluded from total_pj): {_names(missing)}"
    ]


def _warnings(layers: list[LayerRecord], profile: HardwareProfile) -> list[str]:
    """Every warning for this result/profile pair."""
    if profile.model == "crossbar":
        return _crossbar_warnings(layers, profile)
    return _per_event_warnings(layers, profile)


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def estimate_energy(result: ProfileResult, profile: str | os.PathLike[str] | HardwareProfile) -> EnergyResult:
    """Estimate the energy of a profiled run on a hardware profile.

    Args:
        result: the profiling result (counts over the whole run: all samples and time steps).
        profile: a shipped profile name (:func:`~snnprof.energy.list_profiles`), a path to a
            profile ``.toml`` file, or a :class:`~snnprof.energy.HardwareProfile`.

    Returns:
        The energy in pJ: total, per sample, per term, per layer and per layer and term, with
        the profile's provenance and warnings for anything not priced.

    Raises:
        ProfileFileError: the profile name is unknown or its file is missing or invalid.

    Example:
        >>> energy = estimate_energy(result, "cmos45nm_fp32")  # doctest: +SKIP
        >>> energy.by_term_pj["mac"] == 4.6 * result.totals.macs  # doctest: +SKIP
    """
    prof = load_profile(profile)
    layer_terms: dict[str, dict[str, float]] = {}
    for layer in result.layers:
        _merge(layer_terms.setdefault(layer.name, {}), _layer_terms(layer, prof))
    layers = {name: math.fsum(terms.values()) for name, terms in layer_terms.items()}
    by_term = {key: math.fsum(t.get(key, 0.0) for t in layer_terms.values()) for key in _term_names(prof)}
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
        warnings=_warnings(result.layers, prof),
    )


def price(
    result: ProfileResult, profiles: Iterable[str | os.PathLike[str] | HardwareProfile]
) -> dict[str, EnergyResult]:
    """Price one profiled run on several hardware profiles: the single pricing step of every command.

    Args:
        result: the profiling result.
        profiles: shipped names, profile file paths or :class:`HardwareProfile` objects, in order.

    Returns:
        ``{profile name: EnergyResult}`` in the given order.

    Raises:
        ProfileFileError: an unknown or invalid profile.
    """
    out: dict[str, EnergyResult] = {}
    for profile in profiles:
        energy = estimate_energy(result, profile)
        out[energy.profile] = energy
    return out
