"""A config's workload: the model it names, the inputs it feeds it, and the profiler it sets up.

Every command builds its workload here, so a config means the same model, weights, inputs and
counting options in ``count``, ``report``, ``compare``, ``measure``, ``train`` and dataset runs.
Failures of the model's own code (constructor, input generator, forward) are turned into one
:class:`~snnprof.errors.ConfigError` naming the config key at fault.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig
from snnprof.counting import Profiler
from snnprof.dataset.loop import first_batch, to_device
from snnprof.errors import ConfigError, SnnprofError, described, first_line
from snnprof.guard import Estimate, Limits, check_fits, limits_from_env
from snnprof.interop import NIRImportError, graph_input_shape, load_nir, read_graph
from snnprof.models import ModelEntry, get_entry
from snnprof.models.external import ModelReferenceError, external_entry, load_reference
from snnprof.quiet import quiet_libraries

__all__ = [
    "build_model",
    "entry_of",
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


def _model_failure(err: BaseException) -> str:
    """:func:`~snnprof.errors.described` for an exception raised by model or user code, out-of-memory named as such."""
    line = first_line(err)
    if isinstance(err, MemoryError) or "can't allocate memory" in line or "not enough memory" in line:
        return f"{type(err).__name__}: out of memory ({line})" if line else f"{type(err).__name__}: out of memory"
    return described(err)


def entry_of(cfg: RunConfig) -> ModelEntry:
    """The entry of the config's model: the zoo's, or one built for a model of your own or a NIR graph.

    Raises:
        ConfigError: a reference that cannot be imported or resolved (``model.name``), or a NIR
            graph that cannot be read (``model.nir``).
    """
    if cfg.model.in_zoo:
        return get_entry(cfg.model.name)
    if cfg.model.nir is not None:
        return _nir_entry(cfg)
    try:
        factory = load_reference(cfg.model.name, cfg.path.parent)
    except ModelReferenceError as err:
        raise ConfigError(cfg.path, "model.name", str(err)) from None
    return external_entry(cfg.model.name, factory, cfg.input.tensor_specs(), cfg.input.effective_step_mode())


@functools.lru_cache(maxsize=8)
def _nir_input_shape(path: Path, stamp: int) -> tuple[int, ...] | None:
    """The input shape a NIR file declares (cached per file version)."""
    del stamp
    return graph_input_shape(read_graph(path))


def _nir_entry(cfg: RunConfig) -> ModelEntry:
    """The entry of a ``[model] nir`` config: the graph as a :class:`~snnprof.interop.NIRNetwork`."""
    path = cfg.model.nir
    assert path is not None
    try:
        shape = _nir_input_shape(path, path.stat().st_mtime_ns)
    except (NIRImportError, OSError) as err:
        raise ConfigError(cfg.path, "model.nir", str(err)) from None
    specs = cfg.input.tensor_specs(default_shape=shape)
    if not specs and cfg.input.source == "synthetic":
        raise ConfigError(cfg.path, "input.shape", f"expected the shape of one input sample: {path.name} declares "
                                                   "no input type (e.g. shape = [2, 32, 32])")

    def factory(**kwargs: Any) -> nn.Module:
        return load_nir(path, **kwargs)

    return external_entry(cfg.model.name, factory, specs, "multi")


def build_model(cfg: RunConfig) -> nn.Module:
    """Build the config's model with its constructor kwargs (the boundary to the model's own code).

    Raises:
        ConfigError: whatever the constructor raises (bad kwargs, an assertion of the model's own,
            running out of memory), as one line naming ``model.kwargs`` and the model's message; a
            NIR graph that cannot be mapped names ``model.nir``.
    """
    key = "model.kwargs" if cfg.model.kwargs else "model.name"
    factory = entry_of(cfg).factory
    try:
        with quiet_libraries():
            model = factory(**cfg.model.kwargs)
    except SnnprofError:
        raise
    except NIRImportError as err:
        raise ConfigError(cfg.path, "model.kwargs.dt" if err.about_dt else "model.nir", str(err)) from None
    except Exception as err:  # noqa: BLE001  (model code raises anything; reported, never a traceback)
        raise ConfigError(cfg.path, key, f"rejected by {cfg.model.name}: {_model_failure(err)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(cfg.path, "model.name", f"expected {cfg.model.name} to build a torch.nn.Module, "
                                                  f"got {type(model).__name__}")
    return model


def _state_dict_of(obj: Any) -> Mapping[str, Any] | None:
    """The state dict in a loaded checkpoint (bare, or under ``state_dict``/``model``)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        if obj and all(isinstance(k, str) for k in obj):
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


def load_checkpoint(model: nn.Module, checkpoint: Path, cfg_path: Path, cfg: RunConfig | None = None) -> None:
    """Load a checkpoint into ``model`` (``torch.load(weights_only=True)``, on CPU).

    With ``[model] checkpoint_format = "upstream"`` (``cfg`` given) the file is a seed repository's
    own checkpoint, converted by :func:`snnprof.convert.load_upstream`; otherwise a ``state_dict``.

    Raises:
        ConfigError: unreadable file, no state dict inside, or a checkpoint of another model
            (the message names the path and the mismatching keys).
    """
    key = "model.checkpoint"
    if cfg is not None and cfg.model.checkpoint_format == "upstream":
        _load_upstream(model, checkpoint, cfg)
        return
    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for bad/unsafe files)
        raise ConfigError(cfg_path, key, f"cannot load checkpoint {checkpoint}: {err}") from None
    state = _state_dict_of(obj)
    if state is None:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} holds no state_dict")
    odd = sorted(k for k in model.state_dict() if k in state and not isinstance(state[k], torch.Tensor))
    if odd:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint}: expected tensors, got "
                                         f"{type(state[odd[0]]).__name__} under {_listing(odd)}")
    problem = _mismatch(model, state)
    if problem:
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} does not fit the model: {problem}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001  (dtype or custom load hooks of the model's own)
        raise ConfigError(cfg_path, key, f"checkpoint {checkpoint} does not load: {_model_failure(err)}") from None


def _load_upstream(model: nn.Module, checkpoint: Path, cfg: RunConfig) -> None:
    """Convert a seed's upstream checkpoint and load it (keys and shapes checked by the converter)."""
    from snnprof.convert import UpstreamCheckpointError, load_upstream

    try:
        state = load_upstream(cfg.model.name, checkpoint, dict(cfg.model.kwargs))
    except UpstreamCheckpointError as err:
        raise ConfigError(cfg.path, "model.checkpoint", f"upstream checkpoint {checkpoint}: "
                                                        f"{err.key + ': ' if err.key else ''}{err.expected}") from None
    try:
        model.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001  (dtype or custom load hooks of the model's own)
        raise ConfigError(cfg.path, "model.checkpoint", f"upstream checkpoint {checkpoint} does not load: "
                                                        f"{_model_failure(err)}") from None


def _check_overrides(cfg: RunConfig, model: nn.Module) -> None:
    """Every override names a module of the model (functional ops: ``module/op.k``)."""
    modules = {name for name, _ in model.named_modules()}
    for layer in cfg.count.overrides:
        if layer.split("/", 1)[0] not in modules:
            names = sorted(n for n in modules if n)
            raise ConfigError(cfg.path, f"count.overrides.{layer}",
                              f"no such layer in {cfg.model.name}; layers: {_listing(names)}")


#: A forward probe (one sample, one step) runs only when the run is at least this many times larger.
PROBE_SCALE = 16


def _tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in ``obj`` (a tensor, or tuples/lists/dicts of them)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, tuple | list):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers."""
    return sum(_tensor_bytes(t) for t in (*model.parameters(), *model.buffers()))


def _meta_params_bytes(cfg: RunConfig) -> int | None:
    """Parameter bytes of the config's model built on the ``meta`` device (nothing allocated).

    ``None`` when the constructor cannot build on ``meta`` (then the real build is the check).
    """
    try:
        with torch.device("meta"):
            return model_bytes(entry_of(cfg).factory(**cfg.model.kwargs))
    except Exception:  # noqa: BLE001  (data-dependent constructors cannot run on meta; the real build reports)
        return None


def run_scale(cfg: RunConfig) -> int:
    """How many one-sample, one-step probes the run is: ``B * T`` (``B`` for ANNs)."""
    steps = cfg.input.time_steps if entry_of(cfg).step_mode != "ann" else 1
    return cfg.input.batch_size * steps


def prepare_model(cfg: RunConfig, device: torch.device | str = "cpu", *, train: bool = False) -> nn.Module:
    """The config's model, seeded, with its checkpoint loaded, on ``device``.

    Args:
        cfg: a validated config.
        device: where the model goes.
        train: leave the model in training mode (``measure --mode train-step``); default eval.

    Raises:
        ConfigError: bad kwargs, checkpoint or overrides.
    """
    entry_of(cfg)  # a reference or graph that cannot be resolved is reported before anything runs
    params = _meta_params_bytes(cfg)
    if params is not None:
        check_fits(Estimate(params_bytes=params), limits_from_env(), cfg.path, "model.kwargs")
    torch.manual_seed(cfg.input.seed)  # every process and command builds the same weights
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path, cfg)
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
    guard_run(cfg, model, limits_from_env())
    try:
        return entry.make_inputs(model, inp.batch_size, inp.time_steps, inp.seed, **inp.kwargs), None
    except SnnprofError:
        raise
    except Exception as err:  # noqa: BLE001  (generator code raises anything; reported, never a traceback)
        key = "input.kwargs" if inp.kwargs else "input"
        raise ConfigError(cfg.path, key,
                          f"rejected by {cfg.model.name}'s input generator: {_model_failure(err)}") from None


def _forward_probe(cfg: RunConfig, model: nn.Module, sample: Any, scale: int) -> tuple[float, float] | None:
    """``(activation bytes, dense MACs)`` of the run, scaled from one sample at one step (``None``: no probe)."""
    probe = copy.deepcopy(model)
    profiler = make_profiler(cfg, probe, batch_size=1, time_steps=1, strict=False)
    try:
        with torch.no_grad(), profiler:  # the profiler quiets library notes while attached
            entry_of(cfg).run(probe, sample, 1)
        result = profiler.result()
    except Exception:  # noqa: BLE001  (a model that cannot run one step at batch 1: the real run reports)
        return None
    activations = float(sum(layer.output_write_bytes for layer in result.layers))
    return activations * scale, float(result.totals.dense_macs) * scale


def guard_run(cfg: RunConfig, model: nn.Module, limits: Limits) -> Estimate:
    """Refuse a synthetic-input run that cannot fit (see :mod:`snnprof.guard`); returns the estimate.

    The inputs are estimated from a one-sample, one-step draw of the generator; a forward probe of
    that draw (activations, dense MACs) runs when the run is :data:`PROBE_SCALE` or more times it.
    The probes leave the run's random state untouched.

    Raises:
        ConfigError: the estimate exceeds a limit (naming ``input`` and both figures).
    """
    inp, scale = cfg.input, run_scale(cfg)
    estimate = Estimate(params_bytes=float(model_bytes(model)))
    with torch.random.fork_rng(devices=[]):
        try:
            sample = entry_of(cfg).make_inputs(model, 1, 1, inp.seed, **inp.kwargs)
        except Exception:  # noqa: BLE001  (the real call reports the generator's own error)
            return estimate
        estimate = Estimate(estimate.params_bytes, float(_tensor_bytes(sample)) * scale)
        check_fits(estimate, limits, cfg.path)
        probed = _forward_probe(cfg, model, sample, scale) if scale >= PROBE_SCALE else None
    if probed is not None:
        estimate = Estimate(estimate.params_bytes, estimate.input_bytes, *probed)
        check_fits(estimate, limits, cfg.path)
    return estimate


def make_inputs(cfg: RunConfig, model: nn.Module) -> Any:
    """The runner inputs of one batch (see :func:`model_inputs`)."""
    return model_inputs(cfg, model)[0]


def run_model(cfg: RunConfig, model: nn.Module, inputs: Any) -> Any:
    """Run one batch through the zoo entry's runner (all time steps): the boundary to the model's forward.

    Raises:
        ConfigError: whatever the model's forward raises (shape errors, assertions, out of memory),
            as one line naming ``input`` and the model's message.
    """
    try:
        with quiet_libraries():
            return entry_of(cfg).run(model, inputs, cfg.input.time_steps)
    except SnnprofError:
        raise
    except Exception as err:  # noqa: BLE001  (model code raises anything; reported, never a traceback)
        raise ConfigError(cfg.path, "input", f"the model rejected the inputs: {_model_failure(err)}") from None


def make_profiler(cfg: RunConfig, model: nn.Module, **extra: Any) -> Profiler:
    """The profiler with the config's counting options (``extra`` adds e.g. ``sample_stats=True``)."""
    count = cfg.count
    options: dict[str, Any] = {
        "sop_convention": count.sop_convention, "strict": count.strict, "time_steps": cfg.input.time_steps,
        "batch_size": cfg.input.batch_size, "overrides": dict(count.overrides),
        "count_weighting": count.count_weighting, "fold_pooling": count.fold_pooling, "model_name": cfg.model.name,
        "warn": False,  # commands print what was not counted in their notes
    }
    options.update(extra)
    return Profiler(model, **options)
