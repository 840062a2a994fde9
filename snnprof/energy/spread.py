"""Spread across samples of the per-sample energy on each hardware profile.

Per-event profiles price ``mac``, ``ac`` (SOP), ``neuron_update``, ``spike`` and memory bytes.
Only MACs, SOPs and spikes vary with the data; neuron updates and memory traffic are fixed by the
shapes (and the crossbar model depends on geometry only). The energy of sample ``i`` is therefore
taken as ``E_i = w . x_i + c`` with ``x_i = (macs_i, sops_i, spikes_i)``, ``w = (pJ/MAC, pJ/SOP,
pJ/spike)`` (zero for crossbar profiles) and ``c`` = the activity-independent energy of the run
shared equally among its samples. Its mean is ``total_pj / n``; its std ``sqrt(w^T cov w)`` and
its min/max (tracked on the device as a projection) are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from snnprof.counting.sample_stats import SampleStats, Spread
from snnprof.energy.estimate import EnergyResult
from snnprof.energy.profiles import load_profile

__all__ = ["ACTIVITY_TERMS", "energy_spreads", "profile_weights"]

#: Energy terms that vary with the data (priced per MAC, SOP and spike); every other term is fixed.
ACTIVITY_TERMS: tuple[str, ...] = ("mac", "ac", "spike")


def profile_weights(profile: str) -> tuple[str, tuple[float, float, float]]:
    """``(profile name, (pJ per MAC, pJ per SOP, pJ per spike))`` of a profile name or file.

    Raises:
        ProfileFileError: an unknown or invalid profile.
    """
    prof = load_profile(profile)
    if prof.model != "per_event":
        return prof.name, (0.0, 0.0, 0.0)
    prices = prof.energy_pj
    return prof.name, (float(prices.get("mac", 0.0)), float(prices.get("ac", 0.0)), float(prices.get("spike", 0.0)))


def energy_spreads(stats: SampleStats, energies: Mapping[str, EnergyResult],
                   weights: Mapping[str, Sequence[float]]) -> dict[str, Spread]:
    """Per-sample energy spread per profile (see the module docstring).

    Args:
        stats: the run's sample statistics (with a projection per profile name).
        energies: ``{profile name: EnergyResult}`` of the run (``by_term_pj`` is used).
        weights: ``{profile name: (pJ/MAC, pJ/SOP, pJ/spike)}``.
    """
    out: dict[str, Spread] = {}
    if not stats.n:
        return out
    for name, energy in energies.items():
        fixed = math.fsum(v for k, v in energy.by_term_pj.items() if k not in ACTIVITY_TERMS)
        out[name] = stats.linear(weights[name], fixed / stats.n, projection=name if name in stats.projections else None)
    return out
