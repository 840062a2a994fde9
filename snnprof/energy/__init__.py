"""Energy estimation from hardware profiles (pJ per counted event, or a crossbar PE-cycle model).

Example:
    >>> from snnprof.energy import estimate_energy, list_profiles
    >>> "cmos45nm_fp32" in list_profiles()
    True

GPU measurement: :class:`EnergyMeter` (NVML is imported lazily, only when a meter is created).
"""

from __future__ import annotations

from snnprof.energy.estimate import EnergyResult, estimate_energy, price, price_other_pool_view
from snnprof.energy.meter import EnergyMeter
from snnprof.energy.profiles import DEFAULT_PROFILES, HardwareProfile, list_profiles, load_profile

__all__ = [
    "DEFAULT_PROFILES",
    "EnergyMeter",
    "EnergyResult",
    "HardwareProfile",
    "estimate_energy",
    "list_profiles",
    "load_profile",
    "price",
    "price_other_pool_view",
]
