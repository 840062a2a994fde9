"""The contract between ``snnprof train`` (the harness) and the reference training loops.

A reference loop is a class registered for one or more zoo model names::

    @register_trainer("ottt_vgg11_ws", "ottt_vgg11f_ws")
    class OTTTTrainer:
        def __init__(self, model, cfg, device): ...

The harness owns everything generic: seeding, the Rich progress bar, epochs and ``--max-steps``,
JSON-lines metrics, atomic checkpoints of model + trainer state, ``--resume``, and the final
``count`` of the trained model. A loop owns its data, loss, optimiser, schedule and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["Trainer", "UnknownTrainerError", "get_trainer", "list_trainers", "register_trainer"]


@runtime_checkable
class Trainer(Protocol):
    """One reference training loop (instantiated as ``Trainer(model, cfg, device)``).

    ``cfg`` is the :class:`snnprof.config.RunConfig`; ``cfg.train`` is the free-form ``[train]``
    table, which the loop validates itself (unknown keys or bad values raise
    ``snnprof.errors.ConfigError(cfg.path, "train.<key>", "expected ...")``). Data come from
    ``cfg.input``: ``source = "dataset"`` with ``path``/``reader``, or ``"synthetic"``, in which case
    the loop generates its deterministic synthetic data set (seeded by ``cfg.input.seed``).
    """

    def steps_per_epoch(self) -> int:
        """Optimisation steps (batches) in one epoch."""
        ...

    def train_step(self, step: int) -> dict[str, float]:
        """Run one optimisation step (global step index ``step``); return scalar metrics (``loss`` ...)."""
        ...

    def end_epoch(self, epoch: int) -> None:
        """Called after each epoch (learning-rate schedules)."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics (accuracy, MDE, AEE, PSNR ...) and their trivial baselines."""
        ...

    def count_inputs(self) -> Any:
        """A held-out batch as the zoo runner's inputs, for the final ``count`` of the trained model."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Optimiser/scheduler/loop state to checkpoint (the harness saves the model itself)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (``--resume``)."""
        ...


TrainerFactory = Callable[[nn.Module, Any, torch.device], Trainer]
_TRAINERS: dict[str, TrainerFactory] = {}


class UnknownTrainerError(KeyError):
    """No reference training loop is registered for a model."""


def register_trainer(*model_names: str) -> Callable[[TrainerFactory], TrainerFactory]:
    """Class decorator registering a training loop for zoo ``model_names``; refuses duplicates."""

    def deco(factory: TrainerFactory) -> TrainerFactory:
        for name in model_names:
            if name in _TRAINERS:
                raise ValueError(f"a trainer for {name!r} is already registered")
            _TRAINERS[name] = factory
        return factory

    return deco


def _load_all() -> None:
    import importlib
    import pkgutil
    from pathlib import Path

    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.endswith("_train"):
            importlib.import_module(f"snnprof.reference_impls.{info.name}")


def list_trainers() -> list[str]:
    """Model names that have a reference training loop."""
    _load_all()
    return sorted(_TRAINERS)


def get_trainer(model_name: str) -> TrainerFactory:
    """The training-loop factory of ``model_name``."""
    _load_all()
    if model_name not in _TRAINERS:
        raise UnknownTrainerError(
            f"no reference training loop for {model_name!r}; models with one: {', '.join(sorted(_TRAINERS))}"
        )
    return _TRAINERS[model_name]
