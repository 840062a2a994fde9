"""Synthetic input tensors for any model: spikes, event counts or dense values of a given shape.

What ``[input] source = "synthetic"`` feeds a model that is not in the zoo (``[model] name =
"pkg.module:callable"``, a Python file, or a NIR graph). A :class:`TensorSpec` describes one
positional input *per sample and time step*; :func:`make_tensors` lays the batch and time axes in
front of it:

* ``step_mode = "multi"``: ``[T, B, *shape]`` (SpikingJelly ``step_mode='m'``, NIR graphs);
* ``step_mode = "single"``: also ``[T, B, *shape]``; the runner feeds one ``[B, *shape]`` slice per call;
* ``step_mode = "ann"``: ``[B, *shape]`` (no time axis).

Kinds: ``spike`` draws 0/1 with probability ``rate`` per element; ``count`` draws Poisson counts
of mean ``rate`` (graded spikes, event counts); ``dense`` draws standard normal values (``rate``
unused). Every tensor has its own ``torch.Generator`` seeded with its ``seed``, so the draw does
not depend on the global random state and the same spec gives bit-identical tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["KINDS", "STEP_MODES", "TensorSpec", "make_tensors"]

logger = logging.getLogger(__name__)

#: Kinds of synthetic input.
KINDS: tuple[str, ...] = ("spike", "count", "dense")
#: How the time axis is laid out (see the module docstring).
STEP_MODES: tuple[str, ...] = ("multi", "single", "ann")


@dataclass(frozen=True)
class TensorSpec:
    """One synthetic positional input.

    Attributes:
        shape: shape of one sample at one time step (no batch or time axis).
        kind: ``spike`` (0/1), ``count`` (Poisson counts) or ``dense`` (standard normal).
        rate: spike probability per element (``spike``) or mean count per element (``count``).
        seed: seed of this tensor's generator.
    """

    shape: tuple[int, ...]
    kind: str = "spike"
    rate: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if any(int(s) < 1 for s in self.shape):
            raise ValueError(f"shape must hold positive sizes, got {list(self.shape)}")

    def draw(self, lead: tuple[int, ...]) -> torch.Tensor:
        """A float32 tensor of shape ``[*lead, *shape]`` drawn from this spec's own generator."""
        gen = torch.Generator().manual_seed(self.seed)
        size = (*lead, *self.shape)
        if self.kind == "spike":
            return (torch.rand(size, generator=gen) < self.rate).float()
        if self.kind == "count":
            return torch.poisson(torch.full(size, float(self.rate)), generator=gen)
        return torch.randn(size, generator=gen)


def make_tensors(specs: Sequence[TensorSpec], batch_size: int, time_steps: int,
                 step_mode: str) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Draw every spec with the batch (and time) axes in front.

    Args:
        specs: one spec per positional input.
        batch_size: samples ``B``.
        time_steps: time steps ``T`` (``ann``: must be 1).
        step_mode: ``multi``, ``single`` (both ``[T, B, *shape]``) or ``ann`` (``[B, *shape]``).

    Returns:
        One tensor for one spec, else a tuple of positional tensors.

    Raises:
        ValueError: an unknown step mode, no spec, or ``ann`` with more than one time step.
    """
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
    if not specs:
        raise ValueError("expected at least one tensor spec")
    if step_mode == "ann" and time_steps != 1:
        raise ValueError(f"step_mode 'ann' has no time axis: expected time_steps = 1, got {time_steps}")
    lead = (batch_size,) if step_mode == "ann" else (time_steps, batch_size)
    tensors = tuple(spec.draw(lead) for spec in specs)
    return tensors[0] if len(tensors) == 1 else tensors
