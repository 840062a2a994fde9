"""A config's workload: the model it names, the inputs it feeds it, and the profiler it sets up.

Every command builds its workload here, so a config means the same model, weights, inputs and
counting options in ``count``, ``report``, ``compare``, ``measure``, ``train`` and dataset runs.
Failures of the model's own code (constructor, input generator, forward) are turned into one
:class:`~snnprof.errors.ConfigError` naming the config key at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig
from snnprof.counting import Profiler
from snnprof.dataset.loop import first_batch, to_device
from snnprof.errors import ConfigError
from snnprof.models import ModelEntry, get_entry

__all__ = [
    "build_model",
    "entry_of",
    "first_line",
    "load_checkpoint",
    "make_inputs",
    "make_profiler",
    "model_inputs",
    "prepare_model",
    "run_model",
    "to_device",
]

logger = logging.getLogger(__name__)

_MAX_LISTED = 5


def _listing(names: list[str]) -> str:
    """Comma-separated names, truncated after a few."""
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def entry_of(cfg: RunConfig) -> ModelEntry:
    """The zoo entry the config names."""
    return get_entry(cfg.model.name)


def build_model(cfg: RunConfig) -> nn.Module:
    """Build the config's zoo model with its constructor kwargs.

    Raises:
        ConfigError: when the constructor rejects ``model.kwargs`` (TypeError/ValueError).
    """
    try:
        return entry_of(cfg).factory(**cfg.model.kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(cfg.path, "model.kwargs", f"rejected by {cfg.model.name}: {err}") from None


def _state_dict_of(obj: Any) -> Mapping[str, Any] | None:
    """The state dict in a loaded checkpoint (bare, or under ``state_dict``/``model``)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    return None


def _mismatch(model: nn.Module, state: Mapping[str, Any]) -> str:
    """Describe how ``state`` differs from ``model.state_dict()`` (empty when it fits)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    )
    parts = [
        f"{label}: {_listing(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes))
        if keys
    ]
    return "; ".join(parts)


def load_checkpoint(model: nn.Module, checkpoint: Path, cfg_path: Path) -> None:
    """Load a ``state_dict`` checkpoint into ``model`` (``torch.load(weights_only=True)``, on CPU).

    Raises:
        ConfigError: unreadable file, no state dict inside, or a checkpoint of another model
            (the message names the path and the mismatching keys).
    """
    key = "model.checkpoint"
    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for bad/unsafe files)
        raise ConfigError(cfg_path, key, f"cannot load checkpoint {checkpoint}: {err}") from None
    state = _state_dict_of(obj)
    if state is None:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} holds no state_dict")
    problem = _mismatch(model, state)
    if problem:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} does not fit the model: {problem}")
    model.load_state_dict(state, strict=True)


def _check_overrides(cfg: RunConfig, model: nn.Module) -> None:
    """Every override names a module of the model (functional ops: ``module/op.k``)."""
    modules = {name for name, _ in model.named_modules()}
    for layer in cfg.count.overrides:
        if layer.split("/", 1)[0] not in modules:
            names = sorted(n for n in modules if n)
            raise ConfigError(cfg.path, f"count.overrides.{layer}",
                              f"no such layer in {cfg.model.name}; layers: {_listing(names)}")


def prepare_model(cfg: RunConfig, device: torch.device | str = "cpu", *, train: bool = False) -> nn.Module:
    """The config's model, seeded, with its checkpoint loaded, on ``device``.

    Args:
        cfg: a validated config.
        device: where the model goes.
        train: leave the model in training mode (``measure --mode train-step``); default eval.

    Raises:
        ConfigError: bad kwargs, checkpoint or overrides.
    """
    torch.manual_seed(cfg.input.seed)  # every process and command builds the same weights
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path)
    model.train(train)
    _check_overrides(cfg, model)
    return model.to(device)


def model_inputs(cfg: RunConfig, model: nn.Module) -> tuple[Any, Any]:
    """The runner inputs of one batch and their ground truth: ``(inputs, targets)``.

    Synthetic configs use the zoo entry's generator (targets ``None``); dataset configs read the
    data set's first ``input.batch_size`` samples.

    Raises:
        ConfigError: the generator rejects ``input.kwargs``, or an unreadable data set.
        DatasetError: a sample cannot be read.
    """
    entry = entry_of(cfg)
    if cfg.input.source == "dataset":
        return first_batch(cfg, entry)
    inp = cfg.input
    try:
        return entry.make_inputs(model, inp.batch_size, inp.time_steps, inp.seed, **inp.kwargs), None
    except (TypeError, ValueError) as err:
        raise ConfigError(cfg.path, "input.kwargs",
                          f"rejected by {cfg.model.name}'s input generator: {err}") from None


def make_inputs(cfg: RunConfig, model: nn.Module) -> Any:
    """The runner inputs of one batch (see :func:`model_inputs`)."""
    return model_inputs(cfg, model)[0]


def run_model(cfg: RunConfig, model: nn.Module, inputs: Any) -> Any:
    """Run one batch through the zoo entry's runner (all time steps).

    Raises:
        ConfigError: the model rejects the inputs (``RuntimeError``/``ValueError`` of its forward).
    """
    try:
        return entry_of(cfg).run(model, inputs, cfg.input.time_steps)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(cfg.path, "input", f"the model rejected the inputs: {first_line(err)}") from None


def make_profiler(cfg: RunConfig, model: nn.Module, **extra: Any) -> Profiler:
    """The profiler with the config's counting options (``extra`` adds e.g. ``sample_stats=True``)."""
    count = cfg.count
    options: dict[str, Any] = {
        "sop_convention": count.sop_convention, "strict": count.strict, "time_steps": cfg.input.time_steps,
        "batch_size": cfg.input.batch_size, "overrides": dict(count.overrides),
        "count_weighting": count.count_weighting, "model_name": cfg.model.name,
    }
    options.update(extra)
    return Profiler(model, **options)
