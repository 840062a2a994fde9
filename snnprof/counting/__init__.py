"""Counting engine: hooks, rule registry, input-kind detection and typed results."""

from __future__ import annotations

from snnprof.counting.costs import Cost, NeuronActivity, Synapse
from snnprof.counting.profiler import Profiler, profile
from snnprof.counting.registry import Convention, list_rules, register_rule
from snnprof.counting.results import LayerRecord, ProfileResult, Totals
from snnprof.counting.slots import valid_slots

__all__ = [
    "Convention",
    "Cost",
    "LayerRecord",
    "NeuronActivity",
    "ProfileResult",
    "Profiler",
    "Synapse",
    "Totals",
    "list_rules",
    "profile",
    "register_rule",
    "valid_slots",
]
