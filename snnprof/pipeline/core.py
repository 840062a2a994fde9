"""Run one config: build its workload, profile one batch, price it once (what ``snnprof count`` does).

:func:`run_config` is the single path from a validated config to a priced :class:`~snnprof.run.Run`;
``count``, ``report``, ``compare`` and ``measure`` call it. :func:`profile_model` is its second half,
for callers that already hold the model and inputs (``train``'s final count of the trained model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig, check_host_profile, check_profiles
from snnprof.energy import price, price_other_pool_view
from snnprof.run import RenderSummary, Run, summarize_chunks
from snnprof.workload import make_profiler, model_inputs, prepare_model, run_model

__all__ = ["choose_host", "choose_profiles", "profile_model", "record_config", "run_config"]

logger = logging.getLogger(__name__)

_SSIM_WINDOW = 11


def choose_profiles(cfg: RunConfig, profiles: Sequence[str] | None) -> tuple[str, ...]:
    """The profiles to price: ``profiles`` (CLI ``--profile``, validated) or the config's ``[energy]``."""
    if profiles is None:
        return tuple(cfg.energy.profiles)
    return check_profiles(list(profiles), cfg.path, "--profile")


def choose_host(cfg: RunConfig, host_profile: str | None) -> str | None:
    """The host profile: ``host_profile`` (CLI ``--host-profile``, validated) or the config's."""
    if host_profile is None:
        return cfg.energy.host_profile
    return check_host_profile(host_profile, cfg.path, "--host-profile")


def record_config(cfg: RunConfig, carried: dict[str, Any], profiles: Sequence[str],
                  host_profile: str | None = None) -> dict[str, Any]:
    """The config dict a result records: the resolved config, extras the run added, the profiles priced."""
    config = cfg.to_dict()
    config.update({k: v for k, v in carried.items() if k not in config})
    config["energy"] = {"profiles": list(profiles), **({"host_profile": host_profile} if host_profile else {})}
    return config


def profile_model(cfg: RunConfig, model: nn.Module, inputs: Any, profiles: Sequence[str], *,
                  label: str | None = None, host_profile: str | None = None, **profiler_options: Any) -> Run:
    """Profile one batch of ``inputs`` through ``model`` with the config's options and price it.

    Args:
        cfg: the validated config (counting options, time steps, runner).
        model: the model (built by :func:`~snnprof.workload.prepare_model`, or trained in memory).
        inputs: the runner's inputs of one batch.
        profiles: validated hardware profiles (names or paths).
        label: the run's name (default: the config file's stem).
        host_profile: validated host profile pricing what a profile cannot run (``None``: off).
        profiler_options: replace profiler options (e.g. ``batch_size=None`` to infer it).

    Returns:
        The priced run; ``render`` holds the render statistics of a NeRF model (T and B of the SNN
        tensor per chunk, padding, valid points) from this profiled run, else ``None``.

    Raises:
        ConfigError: the model rejects the inputs.
        UncountedOpsError: ``count.strict`` and something ran without a rule.
    """
    profiler = make_profiler(cfg, model, **profiler_options)
    with torch.no_grad(), profiler:
        run_model(cfg, model, inputs)
    result = profiler.result()
    result.config = record_config(cfg, result.config, profiles, host_profile)
    energy = price(result, profiles, host_profile)
    logger.debug("counted %s on %d profile(s)", cfg.model.name, len(energy))
    return Run(label or cfg.path.stem, result, energy, config_text=cfg.text, config_path=str(cfg.path),
               render=_render_stats(model), other_pool_view=price_other_pool_view(result, profiles, host_profile))


def _render_stats(model: nn.Module) -> RenderSummary | None:
    """The render statistics a NeRF model left from its last call (``None`` for other models)."""
    return summarize_chunks(list(getattr(model, "last_render_stats", None) or []))


def _quality(cfg: RunConfig, pred: Any, targets: Any) -> tuple[dict[str, float], str]:
    """PSNR/SSIM of a rendered output against ground-truth images, or why they are unavailable."""
    from snnprof.models.nerf_metrics import psnr, ssim

    if cfg.model.checkpoint is None:
        return {}, "no [model] checkpoint (untrained weights)"
    if not isinstance(targets, torch.Tensor):
        return {}, "the inputs carry no ground truth (synthetic source)"
    if not isinstance(pred, torch.Tensor) or pred.shape != targets.shape or pred.shape[-1] != 3:
        return {}, "the model output is not an RGB image shaped like the targets"
    pred, targets = pred.detach().float().cpu().clamp(0, 1), targets.detach().float().cpu()
    out = {"psnr": psnr(pred, targets)}
    if min(pred.shape[-3], pred.shape[-2]) >= _SSIM_WINDOW:
        out["ssim"] = ssim(pred, targets)
    return out, ""


def run_config(cfg: RunConfig, profiles: Sequence[str] | None = None, *, label: str | None = None,
               host_profile: str | None = None, side_by_side: bool = False) -> Run:
    """Build the config's model and inputs, profile one batch, price it on every profile.

    Args:
        cfg: a validated config.
        profiles: hardware profiles replacing ``cfg.energy.profiles`` (CLI ``--profile``).
        label: the run's name (default: the config file's stem).
        host_profile: replaces ``cfg.energy.host_profile`` (CLI ``--host-profile``).
        side_by_side: also run the model twice unprofiled before profiling it: the first run is the
            warm-up and gives what a comparison shows (render statistics of NeRF models, PSNR/SSIM
            when a checkpoint and ground truth exist); the second, warmed-up run is timed
            (``Run.wall_s``), so the wall time excludes first-call costs (allocator, kernel and
            lazy-init warm-up).

    Returns:
        The priced run.

    Raises:
        ConfigError: bad kwargs, checkpoint, overrides, dataset or inputs; unknown ``profiles``.
        UncountedOpsError: ``count.strict`` and something ran without a rule.
        ProfileFileError: an invalid hardware-profile file.
    """
    chosen, host = choose_profiles(cfg, profiles), choose_host(cfg, host_profile)
    model = prepare_model(cfg)
    inputs, targets = model_inputs(cfg, model)
    if not side_by_side:
        return profile_model(cfg, model, inputs, chosen, label=label, host_profile=host)
    with torch.no_grad():
        pred = run_model(cfg, model, inputs)  # warm-up: render statistics and quality come from this run
        render = _render_stats(model)
        start = time.perf_counter()
        run_model(cfg, model, inputs)  # timed: warm
        wall = time.perf_counter() - start
    quality, note = _quality(cfg, pred, targets)
    run = profile_model(cfg, model, inputs, chosen, label=label, host_profile=host)
    run.render, run.quality, run.quality_note, run.wall_s = render, quality, note, wall
    return run
