"""Run a validated config: build the zoo model, feed it synthetic inputs under the profiler, add energy.

This is what ``snnprof count`` does, as a function other commands (report, compare) reuse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig, check_profiles
from snnprof.counting import Profiler, ProfileResult
from snnprof.energy import estimate_energy
from snnprof.errors import ConfigError
from snnprof.models import get_entry

__all__ = ["build_model", "load_checkpoint", "make_inputs", "run_count"]

logger = logging.getLogger(__name__)

_MAX_LISTED = 5


def _listing(names: list[str]) -> str:
    """Comma-separated names, truncated after a few."""
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def build_model(cfg: RunConfig) -> nn.Module:
    """Build the config's zoo model with its constructor kwargs.

    Raises:
        ConfigError: when the constructor rejects ``model.kwargs`` (TypeError/ValueError).
    """
    entry = get_entry(cfg.model.name)
    try:
        return entry.factory(**cfg.model.kwargs)
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
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch", shapes),
        )
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
    except Exception as err:  # torch raises many types for bad/unsafe files
        raise ConfigError(cfg_path, key, f"cannot load checkpoint {checkpoint}: {err}") from None
    state = _state_dict_of(obj)
    if state is None:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} holds no state_dict")
    problem = _mismatch(model, state)
    if problem:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} does not fit the model: {problem}")
    model.load_state_dict(state, strict=True)


def make_inputs(cfg: RunConfig, model: nn.Module) -> Any:
    """Generate the config's synthetic inputs with the zoo entry's generator.

    Raises:
        ConfigError: when the generator rejects ``input.kwargs`` (TypeError/ValueError).
    """
    entry = get_entry(cfg.model.name)
    inp = cfg.input
    try:
        return entry.make_inputs(model, inp.batch_size, inp.time_steps, inp.seed, **inp.kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(cfg.path, "input.kwargs", f"rejected by {cfg.model.name}'s input generator: {err}") from None


def _check_overrides(cfg: RunConfig, model: nn.Module) -> None:
    """Every override names a module of the model (functional ops: ``module/op.k``)."""
    modules = {name for name, _ in model.named_modules()}
    for layer in cfg.count.overrides:
        if layer.split("/", 1)[0] not in modules:
            names = sorted(n for n in modules if n)
            raise ConfigError(
                cfg.path,
                f"count.overrides.{layer}",
                f"no such layer in {cfg.model.name}; layers: {_listing(names)}",
            )


def _profile(cfg: RunConfig, model: nn.Module, inputs: Any) -> ProfileResult:
    """Run the zoo entry's runner once under the profiler."""
    entry = get_entry(cfg.model.name)
    inp, count = cfg.input, cfg.count
    profiler = Profiler(
        model,
        sop_convention=count.sop_convention,
        strict=count.strict,
        time_steps=inp.time_steps,
        batch_size=inp.batch_size,
        overrides=dict(count.overrides),
        count_weighting=count.count_weighting,
        model_name=cfg.model.name,
    )
    try:
        with torch.no_grad(), profiler:
            entry.run(model, inputs, inp.time_steps)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(cfg.path, "input", f"the model rejected the inputs: {first}") from None
    return profiler.result()


def run_count(cfg: RunConfig, profiles: list[str] | None = None, per_sample: bool = False) -> ProfileResult:
    """Profile the config's model on its inputs and estimate energy on each hardware profile.

    Args:
        cfg: a validated config.
        profiles: hardware profiles replacing ``cfg.energy.profiles`` when given (CLI ``--profile``).
        per_sample: accepted for symmetry with the CLI; per-sample numbers are always in
            ``result.per_sample`` and each energy entry's ``per_sample_pj``.

    Returns:
        The result, with ``config`` and ``energy`` filled.

    Raises:
        ConfigError: bad kwargs, checkpoint, overrides or inputs (and unknown ``profiles``).
        UncountedOpsError: ``count.strict`` and something ran without a rule.
        ProfileFileError: an invalid hardware-profile file.
    """
    del per_sample
    chosen = cfg.energy.profiles if profiles is None else check_profiles(profiles, cfg.path, "--profile")
    torch.manual_seed(cfg.input.seed)
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path)
    model.eval()
    _check_overrides(cfg, model)
    inputs = make_inputs(cfg, model)
    result = _profile(cfg, model, inputs)
    result.config = cfg.to_dict()
    result.config["energy"]["profiles"] = list(chosen)
    for profile in chosen:
        energy = estimate_energy(result, profile)
        result.energy[energy.profile] = energy.to_dict()
    logger.debug("counted %s on %d profile(s)", cfg.model.name, len(chosen))
    return result
