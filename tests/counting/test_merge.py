"""Merging results: the derived summary warnings are recomputed exactly, rule warnings are kept."""

from __future__ import annotations

import torch
from torch import nn

from snnprof.counting import Cost, profile, register_rule
from snnprof.counting.merge import merge_results
from snnprof.counting.results import derived_warnings
from tests.counting._helpers import binary


class Odd(nn.Module):
    """A leaf whose rule warns with text that looks like a derived summary."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


@register_rule(Odd)
def _odd(module: nn.Module, args: tuple, kwargs: dict, output: object) -> Cost:
    return Cost(flops=1, warnings=("not counted (no rule): a rule's own note",))


class Silent(nn.Module):
    """A leaf without a rule and without ops: reported as unsupported."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_derived_warnings_are_recomputed_and_rule_warnings_kept() -> None:
    model = nn.Sequential(Odd(), Silent())
    parts = [profile(model, binary((2, 3), seed=s)) for s in (0, 1)]
    own = "not counted (no rule): a rule's own note"
    derived = derived_warnings(["1 (Silent)"], [], [])
    assert parts[0].warnings == [own, *derived]
    merged = merge_results(parts)
    assert merged.unsupported == ["1 (Silent)"]
    assert merged.warnings == [own, *derived]
    assert merged.totals.flops == 2


def test_derived_warnings_order_and_emptiness() -> None:
    assert derived_warnings([], [], []) == []
    lines = derived_warnings(["a (A)"], ["w"], ["s"])
    assert [line.split(":")[0] for line in lines] == [
        "not counted (no rule)", "modules with parameters that never ran",
        "per-sample counts without a sample axis were shared equally among the samples of their batch",
    ]
