"""snnprof: per-layer operations, spikes and energy of spiking and conventional PyTorch networks.

Example:
    >>> import snnprof, torch
    >>> result = snnprof.profile(torch.nn.Linear(4, 2), torch.ones(3, 4))
    >>> result.totals.dense_macs
    24
"""

from __future__ import annotations

from snnprof.counting import (
    LayerRecord,
    Profiler,
    ProfileResult,
    Totals,
    list_rules,
    profile,
    register_rule,
    valid_slots,
)
from snnprof.energy import EnergyResult, estimate_energy, list_profiles, load_profile
from snnprof.errors import ConfigError, ProfileFileError, SnnprofError, UncountedOpsError, UncountedOpsWarning
from snnprof.interop import NIRImportError, load_nir
from snnprof.models import create_model, list_models, register_model
from snnprof.render import render_result
from snnprof.reports import render_report
from snnprof.version import __version__

__all__ = [
    "ConfigError",
    "EnergyResult",
    "LayerRecord",
    "NIRImportError",
    "ProfileFileError",
    "ProfileResult",
    "Profiler",
    "SnnprofError",
    "Totals",
    "UncountedOpsError",
    "UncountedOpsWarning",
    "__version__",
    "create_model",
    "estimate_energy",
    "list_models",
    "list_profiles",
    "list_rules",
    "load_nir",
    "load_profile",
    "profile",
    "register_model",
    "register_rule",
    "render_report",
    "render_result",
    "valid_slots",
]
