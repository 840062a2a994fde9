"""Small shape helpers shared by the rules."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["activity", "arg", "first_tensor", "optional_classes", "out_tensor", "prod"]


def prod(values: Iterable[int]) -> int:
    """Integer product (1 for an empty iterable)."""
    return math.prod(int(v) for v in values)


def optional_classes(module: str, names: tuple[str, ...]) -> list[type]:
    """The classes ``names`` of ``module`` that exist (none when the package does not import)."""
    try:
        found = importlib.import_module(module)
    except Exception:  # noqa: BLE001  (optional framework missing or broken: no rule)
        return []
    return [getattr(found, n) for n in names if isinstance(getattr(found, n, None), type)]


def arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any = None) -> Any:
    """Positional-or-keyword argument lookup."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor found in ``value`` (a tensor, or nested tuples/lists/dicts)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def out_tensor(output: Any) -> torch.Tensor:
    """The main output tensor of a call (first tensor of a tuple output)."""
    found = first_tensor(output)
    if found is None:
        raise TypeError("rule expected a tensor output")
    return found



def activity(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` as an event operand, or ``None`` for parameters (weights never count as events)."""
    return None if isinstance(t, nn.Parameter) else t
