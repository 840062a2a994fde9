"""Stream a config's whole data set through one profiler, shard it over ``torchrun`` ranks, price it once.

``snnprof count CONFIG --dataset`` (see ``docs/dataset_profiling.md``): every rank profiles its
batches (:mod:`snnprof.dataset`), rank 0 merges the results (exact integer counts, identical to a
single-process run), prices the merged counts and adds the spread of per-sample energy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnprof.config import RunConfig
from snnprof.counting import Profiler, ProfileResult
from snnprof.energy import price, price_other_pool_view
from snnprof.energy.spread import energy_spreads, profile_weights
from snnprof.errors import ConfigError
from snnprof.pipeline.core import choose_host, choose_profiles, record_config
from snnprof.run import Run
from snnprof.workload import entry_of, make_profiler, prepare_model

__all__ = ["DatasetOptions", "run_dataset"]

logger = logging.getLogger(__name__)


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


def _dataset_profiler(cfg: RunConfig, model: torch.nn.Module, weights: Mapping[str, Any]) -> Profiler:
    """The profiler of a whole data set: per-sample statistics on, batch size counted as it streams."""
    return make_profiler(cfg, model, batch_size=None, sample_stats=True, sample_projections=weights)


def _profile_shard(cfg: RunConfig, chosen: tuple[str, ...], weights: dict[str, Any], opts: DatasetOptions,
                   ctx: Any) -> ProfileResult:
    """Profile this rank's batches of the data set (resuming from a checkpoint if asked)."""
    from snnprof.dataset.checkpoint import Checkpoint, fingerprint, load_checkpoint, save_checkpoint
    from snnprof.dataset.distributed import device_for
    from snnprof.dataset.loop import StreamSpec, open_config_dataset, stream_dataset
    from snnprof.dataset.sharding import BatchShardSampler

    device = device_for(ctx, opts.device)
    model = prepare_model(cfg, device)
    dataset = open_config_dataset(cfg)
    size = cfg.input.batch_size
    print_ = fingerprint(cfg.text, list(chosen), size, len(dataset), cfg.input.path)  # type: ignore[arg-type]
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
    spec = StreamSpec(cfg, entry_of(cfg), model, dataset, sampler, device)
    with torch.no_grad(), prof:
        if done is not None:
            _resume(prof, done, opts.checkpoint, device)
        samples = stream_dataset(spec, prof, on_batch)
    prof.batch_size = before + samples
    result = prof.result()
    result.config = {"dataset": {"path": str(cfg.input.path), "reader": cfg.input.reader,
                                 "length": len(dataset), "samples": sampler.total_samples,  # type: ignore[arg-type]
                                 "batches": -(-sampler.total_samples // size), "max_batches": opts.max_batches,
                                 "world_size": ctx.world_size, "resumed_at_batch": start}}
    return result


def _resume(prof: Profiler, done: Any, path: Path | None, device: torch.device) -> None:
    """Load a validated checkpoint's profiler state; a state that does not load is bad input, not a crash."""
    try:
        prof.load_state_dict(done.state, device)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as err:
        raise ConfigError(path or "", "profiler", f"expected a profiler state of this model and run: "
                                                  f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None


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


def _priced(cfg: RunConfig, result: ProfileResult, chosen: tuple[str, ...], host: str | None) -> Run:
    """Price the whole data set's counts once; add the spread of per-sample energy."""
    result.config = record_config(cfg, result.config, chosen, host)
    energy = price(result, chosen, host)
    other = price_other_pool_view(result, chosen, host)
    if result.sample_stats is not None:
        weights = dict(profile_weights(p) for p in chosen)
        result.sample_stats.energy = energy_spreads(result.sample_stats, energy, weights)
    return Run(cfg.path.stem, result, energy, config_text=cfg.text, config_path=str(cfg.path),
               other_pool_view=other)


def run_dataset(cfg: RunConfig, profiles: list[str] | None = None, opts: DatasetOptions | None = None,
                ctx: Any = None, host_profile: str | None = None) -> Run | None:
    """Stream the config's whole data set through one profiler; totals plus spread across samples.

    Under torchrun (``ctx.world_size > 1``) every rank profiles its batches and rank 0 merges the
    results (exact integer counts, identical to a single-process run) and returns the priced run;
    other ranks return ``None``. A rank's failure is raised on every rank as
    :class:`~snnprof.dataset.errors.DistributedRunError`.

    Args:
        cfg: a validated config with ``source = "dataset"``.
        profiles: hardware profiles replacing ``cfg.energy.profiles`` when given.
        opts: streaming options (max batches, checkpoints, device, progress callbacks).
        ctx: the :class:`~snnprof.dataset.distributed.DistContext` (default: single process).
        host_profile: replaces ``cfg.energy.host_profile`` (CLI ``--host-profile``).

    Returns:
        The priced run with ``sample_stats`` (and the per-profile energy spread) on rank 0.

    Raises:
        ConfigError: bad config/inputs/checkpoint; DatasetError: reader failure or early end;
        DistributedRunError: a rank failed.
    """
    from snnprof.counting.merge import merge_results
    from snnprof.dataset.distributed import DistContext, first_failure, gather_outcomes

    opts = opts or DatasetOptions()
    ctx = ctx or DistContext()
    if cfg.input.source != "dataset":
        raise ConfigError(cfg.path, "input.source", "--dataset needs source = 'dataset' (with path and reader)")
    if ctx.active and (opts.checkpoint_every or opts.resume):
        raise ConfigError(cfg.path, "", "--checkpoint-every/--resume work in single-process runs only")
    chosen, host = choose_profiles(cfg, profiles), choose_host(cfg, host_profile)
    weights = dict(profile_weights(p) for p in chosen)
    if not ctx.active:
        return _priced(cfg, _profile_shard(cfg, chosen, weights, opts, ctx), chosen, host)
    outcomes = gather_outcomes(ctx, _outcome(lambda: _profile_shard(cfg, chosen, weights, opts, ctx), ctx.rank))
    failure = first_failure(outcomes)
    if failure is not None:
        raise failure
    if not ctx.is_main:
        return None
    merged = merge_results([ProfileResult.from_dict(o["result"]) for o in outcomes])
    merged.config["dataset"]["resumed_at_batch"] = 0
    return _priced(cfg, merged, chosen, host)
