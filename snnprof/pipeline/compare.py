"""Run several configs and compare them against the first (what ``snnprof compare`` computes).

Each config goes through :func:`~snnprof.pipeline.core.run_config` with ``side_by_side=True`` (an
unprofiled warm-up run for render statistics and quality, a second unprofiled run for the wall
time, then the profiled run), priced on the same profiles; :func:`~snnprof.comparison.compare_runs`
builds the comparison model that the terminal, JSON and HTML views render.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from snnprof.comparison import Comparison, compare_runs
from snnprof.config import RunConfig, check_profiles
from snnprof.errors import ConfigError
from snnprof.pipeline.core import run_config

__all__ = ["compare_configs", "comparison_profiles", "run_labels"]

logger = logging.getLogger(__name__)


def run_labels(configs: Sequence[RunConfig]) -> list[str]:
    """Config file stems, suffixed with their position when two are the same."""
    stems = [cfg.path.stem for cfg in configs]
    return [s if stems.count(s) == 1 else f"{s}#{i + 1}" for i, s in enumerate(stems)]


def comparison_profiles(configs: Sequence[RunConfig], profiles: Sequence[str] | None) -> tuple[str, ...]:
    """The profiles every run is priced on: ``profiles`` (``--profile``), else every profile any config names."""
    if profiles:
        return check_profiles(list(profiles), configs[0].path, "--profile")
    return tuple(dict.fromkeys(p for cfg in configs for p in cfg.energy.profiles))


def compare_configs(configs: Sequence[RunConfig], profiles: Sequence[str] | None = None,
                    host_profile: str | None = None) -> Comparison:
    """Run every config and compare them against the first.

    Args:
        configs: two or more validated configs.
        profiles: hardware profiles (CLI ``--profile``); default: every profile the configs name.
        host_profile: prices what a profile cannot run, for every config (CLI ``--host-profile``);
            default: each config's ``[energy] host_profile``.

    Returns:
        The :class:`~snnprof.comparison.Comparison`.

    Raises:
        ConfigError: fewer than two configs, an unknown profile, or a config that cannot run.
    """
    if len(configs) < 2:
        where = configs[0].path if configs else "<command line>"
        raise ConfigError(where, "", "compare needs at least two configs")
    chosen = comparison_profiles(configs, profiles)
    runs = [run_config(cfg, chosen, label=label, host_profile=host_profile, side_by_side=True)
            for cfg, label in zip(configs, run_labels(configs), strict=True)]
    return compare_runs(runs, runs[0].profiles)
