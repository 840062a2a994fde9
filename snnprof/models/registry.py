"""The model-zoo registry: ``@register_model`` plus lookup helpers.

A zoo entry bundles what ``snnprof count`` needs to run a model from a config: the constructor,
a synthetic-input generator and a runner (how one sample batch flows through the model over
time: one multi-step call, or an online loop of single-step calls).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "ModelEntry",
    "UnknownModelError",
    "create_model",
    "default_run",
    "get_entry",
    "list_models",
    "register_model",
]

logger = logging.getLogger(__name__)

Inputs = torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]


class UnknownModelError(KeyError):
    """Raised when a zoo name is not registered."""


def default_run(model: nn.Module, inputs: Inputs, time_steps: int) -> Any:
    """Feed ``inputs`` to ``model`` once (multi-step models take ``[T, B, ...]`` in one call).

    Args:
        model: the network.
        inputs: a tensor, a tuple of positional tensors or a dict of keyword tensors.
        time_steps: unused here; runners of single-step models loop over it.
    """
    del time_steps
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


@dataclass(frozen=True)
class ModelEntry:
    """A registered zoo model.

    Attributes:
        name: registry name (what configs use).
        factory: builds the ``nn.Module`` from keyword arguments.
        make_inputs: ``(model, batch_size, time_steps, seed, **input_kwargs) -> inputs``; deterministic.
        run: ``(model, inputs, time_steps) -> output``; one sample batch over all time steps.
        step_mode: ``multi`` (inputs are ``[T, B, ...]``), ``single`` (online loop, one call per
            step) or ``ann`` (no time axis).
        description: one line for ``snnprof zoo``.
        paper: citation of the seed project.
        defaults: default input settings (``batch_size``, ``time_steps`` and generator kwargs).
        from_batch: turns a collated dataset batch (``[B, ...]`` per-sample inputs) into the
            runner's inputs; default: multi-step models get ``[B, T, ...] -> [T, B, ...]``.
    """

    name: str
    factory: Callable[..., nn.Module]
    make_inputs: Callable[..., Inputs]
    run: Callable[[nn.Module, Inputs, int], Any] = default_run
    step_mode: str = "ann"
    description: str = ""
    paper: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    from_batch: Callable[[Any], Inputs] | None = None

    def batch_to_inputs(self, batch: Any) -> Inputs:
        """Model inputs for a collated dataset batch (see ``from_batch``)."""
        if self.from_batch is not None:
            return self.from_batch(batch)
        if self.step_mode == "multi" and isinstance(batch, torch.Tensor):
            return batch.transpose(0, 1).contiguous()
        return batch


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    make_inputs: Callable[..., Inputs],
    run: Callable[[nn.Module, Inputs, int], Any] = default_run,
    step_mode: str = "ann",
    description: str = "",
    paper: str = "",
    defaults: dict[str, Any] | None = None,
    from_batch: Callable[[Any], Inputs] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model factory under ``name``; refuses duplicates.

    Example:
        >>> @register_model("tiny", make_inputs=lambda m, b, t, s: torch.zeros(b, 3))
        ... def tiny() -> nn.Module:
        ...     return nn.Linear(3, 2)
    """
    if step_mode not in ("multi", "single", "ann"):
        raise ValueError(f"step_mode must be multi, single or ann, got {step_mode!r}")

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(
            name, factory, make_inputs, run, step_mode, description, paper, dict(defaults or {}), from_batch
        )
        return factory

    return deco


def _ensure_zoo_loaded() -> None:
    from snnprof.models import zoo  # noqa: F401  (registers the shipped models)


def get_entry(name: str) -> ModelEntry:
    """Return the registry entry of ``name``.

    Raises:
        UnknownModelError: with the list of known names.
    """
    _ensure_zoo_loaded()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; registered models: {known}")
    return _REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob ``pattern``, sorted."""
    _ensure_zoo_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the zoo model ``name`` with constructor ``kwargs``."""
    return get_entry(name).factory(**kwargs)
