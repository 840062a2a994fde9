"""Energy estimation from hardware profiles (pJ per counted event, or a crossbar PE-cycle model).

Example:
    >>> from snnprof.energy import estimate_energy, list_profiles
    >>> "cmos45nm_fp32" in list_profiles()
    True

GPU measurement (NVML) lives in a separate module and is imported lazily by its callers; nothing
here touches NVML.
"""

from __future__ import annotations

from snnprof.energy.estimate import EnergyResult, estimate_energy
from snnprof.energy.profiles import HardwareProfile, list_profiles, load_profile

__all__ = ["EnergyResult", "HardwareProfile", "estimate_energy", "list_profiles", "load_profile"]
