"""Run a validated config: build the zoo model, feed it its inputs under the profiler, add energy.

This is what ``snnprof count`` does, as functions other commands (report, compare) reuse:
:func:`run_count` profiles one batch (synthetic inputs, or the first batch of a ``source =
"dataset"`` config); :func:`run_dataset_count` streams the whole data set (``--dataset``), also
sharded over the ranks of a ``torchrun`` job (see ``docs/dataset_profiling.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig, check_profiles
from snnprof.counting import Profiler, ProfileResult
from snnprof.energy import estimate_energy
from snnprof.errors import ConfigError
from snnprof.models import get_entry

__all__ = ["DatasetOptions", "build_model", "load_checkpoint", "make_inputs", "run_count", "run_dataset_count"]

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
    if cfg.input.source == "dataset":
        from snnprof.dataset.loop import first_batch_inputs

        inputs = first_batch_inputs(cfg, get_entry(cfg.model.name))
    else:
        inputs = make_inputs(cfg, model)
    result = _profile(cfg, model, inputs)
    _add_energy(cfg, result, chosen)
    logger.debug("counted %s on %d profile(s)", cfg.model.name, len(chosen))
    return result


def _add_energy(cfg: RunConfig, result: ProfileResult, chosen: tuple[str, ...] | list[str]) -> None:
    """Fill ``result.config`` and ``result.energy`` (one entry per hardware profile)."""
    config = cfg.to_dict()
    config.update({k: v for k, v in result.config.items() if k not in config})
    result.config = config
    result.config["energy"]["profiles"] = list(chosen)
    for profile in chosen:
        energy = estimate_energy(result, profile)
        result.energy[energy.profile] = energy.to_dict()


# --------------------------------------------------------------------------- whole data sets


@dataclass(frozen=True)
class DatasetOptions:
    """How to stream a data set (``snnprof count --dataset`` options).

    Attributes:
        max_batches: profile at most this many batches (all ranks together); ``None`` = all.
        checkpoint_every: write a checkpoint every this many batches (single process only).
        checkpoint: the checkpoint file (needed by ``checkpoint_every`` and ``resume``).
        resume: continue from ``checkpoint``.
        device: ``cpu`` or ``cuda`` (``cuda:LOCAL_RANK`` under torchrun).
        on_start: called once with ``(batches of this rank, batches already done)``.
        on_batch: called after every batch with ``(batches done, samples done, batch samples)``.
    """

    max_batches: int | None = None
    checkpoint_every: int | None = None
    checkpoint: Path | None = None
    resume: bool = False
    device: str = "cpu"
    on_start: Callable[[int, int], None] | None = None
    on_batch: Callable[[int, int, int], None] | None = None


def _dataset_profiler(cfg: RunConfig, model: nn.Module, weights: Mapping[str, Any]) -> Profiler:
    count = cfg.count
    return Profiler(model, sop_convention=count.sop_convention, strict=count.strict,
                    time_steps=cfg.input.time_steps, overrides=dict(count.overrides),
                    count_weighting=count.count_weighting, model_name=cfg.model.name,
                    sample_stats=True, sample_projections=weights)


def _prepared_model(cfg: RunConfig, device: torch.device) -> nn.Module:
    torch.manual_seed(cfg.input.seed)  # every rank builds the same weights
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path)
    model.eval()
    _check_overrides(cfg, model)
    return model.to(device)


def _profile_shard(cfg: RunConfig, chosen: tuple[str, ...], weights: dict[str, Any], opts: DatasetOptions,
                   ctx: Any) -> ProfileResult:
    """Profile this rank's batches of the data set (resuming from a checkpoint if asked)."""
    from snnprof.dataset.checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
    from snnprof.dataset.distributed import device_for
    from snnprof.dataset.loop import StreamSpec, open_config_dataset, stream_dataset
    from snnprof.dataset.sharding import BatchShardSampler

    device = device_for(ctx, opts.device)
    model = _prepared_model(cfg, device)
    dataset = open_config_dataset(cfg)
    size = cfg.input.batch_size
    print_ = fingerprint(cfg.text, list(chosen), size, len(dataset))  # type: ignore[arg-type]
    done = load_checkpoint(opts.checkpoint, print_) if opts.resume and opts.checkpoint else None
    start = done.batches_done if done else 0
    limit = opts.max_batches * size if opts.max_batches else None
    sampler = BatchShardSampler(dataset, batch_size=size, num_replicas=ctx.world_size, rank=ctx.rank,  # type: ignore[arg-type]
                                limit=limit, start_batch=start)
    prof = _dataset_profiler(cfg, model, weights)
    before = done.samples_done if done else 0

    def on_batch(batches: int, samples: int, batch: int) -> None:
        if opts.checkpoint_every and opts.checkpoint and batches % opts.checkpoint_every == 0:
            save_checkpoint(opts.checkpoint, Checkpoint(start + batches, before + samples, prof.state_dict(), print_))
        if opts.on_batch is not None:
            opts.on_batch(batches, samples, batch)

    if opts.on_start is not None:
        opts.on_start(len(sampler.batches), start)
    spec = StreamSpec(cfg, get_entry(cfg.model.name), model, dataset, sampler, device)
    with torch.no_grad(), prof:
        if done is not None:
            prof.load_state_dict(done.state, device)
        samples = stream_dataset(spec, prof, on_batch)
    prof.batch_size = before + samples
    result = prof.result()
    result.config = {"dataset": {"path": str(cfg.input.path), "reader": cfg.input.reader,
                                 "length": len(dataset), "samples": sampler.total_samples,  # type: ignore[arg-type]
                                 "batches": -(-sampler.total_samples // size), "max_batches": opts.max_batches,
                                 "world_size": ctx.world_size, "resumed_at_batch": start}}
    return result


def _outcome(run: Callable[[], ProfileResult], rank: int) -> dict[str, Any]:
    """``{"ok": True, "result": dict}`` or the rank's error as one line (never raises an Exception)."""
    from snnprof.errors import SnnprofError

    try:
        return {"ok": True, "result": run().to_dict()}
    except SnnprofError as err:
        return {"ok": False, "rank": rank, "error": " ".join(str(err).split())}
    except Exception as err:  # noqa: BLE001  (reported by rank 0; a hang would be worse)
        logger.debug("rank %d failed", rank, exc_info=True)
        return {"ok": False, "rank": rank, "error": f"{type(err).__name__}: {' '.join(str(err).split())}"}


def run_dataset_count(cfg: RunConfig, profiles: list[str] | None = None, opts: DatasetOptions | None = None,
                      ctx: Any = None) -> ProfileResult | None:
    """Stream the config's whole data set through one profiler; totals plus spread across samples.

    Under torchrun (``ctx.world_size > 1``) every rank profiles its batches and rank 0 merges the
    results (exact integer counts, identical to a single-process run) and returns it; other ranks
    return ``None``. A rank's failure is raised on every rank as :class:`DistributedRunError`.

    Args:
        cfg: a validated config with ``source = "dataset"``.
        profiles: hardware profiles replacing ``cfg.energy.profiles`` when given.
        opts: streaming options (max batches, checkpoints, device, progress callbacks).
        ctx: the :class:`~snnprof.dataset.distributed.DistContext` (default: single process).

    Returns:
        The result with ``sample_stats`` (and the per-profile energy spread) on rank 0.

    Raises:
        ConfigError: bad config/inputs/checkpoint; DatasetError: reader failure or early end;
        DistributedRunError: a rank failed.
    """
    from snnprof.counting.merge import merge_results
    from snnprof.dataset.distributed import DistContext, first_failure, gather_outcomes
    from snnprof.dataset.energy_spread import profile_weights

    opts = opts or DatasetOptions()
    ctx = ctx or DistContext()
    if cfg.input.source != "dataset":
        raise ConfigError(cfg.path, "input.source", "--dataset needs source = 'dataset' (with path and reader)")
    if ctx.active and (opts.checkpoint_every or opts.resume):
        raise ConfigError(cfg.path, "", "--checkpoint-every/--resume work in single-process runs only")
    chosen = cfg.energy.profiles if profiles is None else check_profiles(profiles, cfg.path, "--profile")
    weights = dict(profile_weights(p) for p in chosen)
    if not ctx.active:
        return _finish(cfg, _profile_shard(cfg, chosen, weights, opts, ctx), chosen, weights)
    outcomes = gather_outcomes(ctx, _outcome(lambda: _profile_shard(cfg, chosen, weights, opts, ctx), ctx.rank))
    failure = first_failure(outcomes)
    if failure is not None:
        raise failure
    if not ctx.is_main:
        return None
    merged = merge_results([ProfileResult.from_dict(o["result"]) for o in outcomes])
    merged.config["dataset"]["resumed_at_batch"] = 0
    return _finish(cfg, merged, chosen, weights)


def _finish(cfg: RunConfig, result: ProfileResult, chosen: tuple[str, ...],
            weights: Mapping[str, Any]) -> ProfileResult:
    """Energy on every profile and the spread of per-sample energy."""
    from snnprof.dataset.energy_spread import energy_spreads

    _add_energy(cfg, result, chosen)
    if result.sample_stats is not None:
        result.sample_stats.energy = energy_spreads(result.sample_stats, result.energy, weights)
    return result
