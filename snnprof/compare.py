"""Side-by-side comparison of configs on the same inputs (what ``snnprof compare`` computes).

Each config is built, run once without the profiler (wall time, rendered output, per-chunk statistics
of NeRF models) and once under the profiler (counts), and priced on every hardware profile. Ratios
are ``value / value of the first config``; the energy reduction of the first config against config
``i`` is ``(1 - E_first / E_i) * 100`` %, e.g. SpikingNeRF vs its ANN baseline.

Models that render rays expose ``last_render_stats`` (a list of per-chunk objects with ``rays``,
``points``, ``time_steps``, ``batch``, ``zero_elements`` and ``channels``); for them the comparison also
reports T and B of the SNN tensor per chunk (mean and max), the padding fraction and the valid points.
Quality (PSNR/SSIM) is computed when the config has a ``[model] checkpoint`` and its inputs come with
ground-truth images (``source = "dataset"``); otherwise it is reported as unavailable.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnprof.config import RunConfig, check_profiles
from snnprof.counting import Profiler, ProfileResult
from snnprof.energy import estimate_energy
from snnprof.errors import ConfigError
from snnprof.models import get_entry
from snnprof.runner import build_model, load_checkpoint, make_inputs

__all__ = [
    "DEFAULT_PROFILES",
    "SCHEMA",
    "Comparison",
    "ConfigRun",
    "RenderSummary",
    "compare_configs",
    "json_safe",
    "run_config",
    "summarize_chunks",
]

logger = logging.getLogger(__name__)

SCHEMA = "snnprof.compare/1"
#: Hardware profiles priced when neither ``--profile`` nor the configs choose: 45 nm and the crossbar.
DEFAULT_PROFILES: tuple[str, ...] = ("cmos45nm_fp32", "spikesim_rram")
_SSIM_WINDOW = 11


@dataclass(frozen=True)
class RenderSummary:
    """Per-chunk statistics of a NeRF render, aggregated over all chunks of the run.

    Attributes:
        chunks: render chunks.
        rays: rays rendered.
        points: M, valid points that reached the colour MLP (all chunks).
        time_steps_mean: mean T of the SNN tensor per chunk (``None`` without an SNN).
        time_steps_max: largest T.
        batch_mean: mean B per chunk.
        batch_max: largest B.
        padding_fraction: ``1 - sum M / sum (T * B)`` over the chunks.
        sparsity: the seed's sparsity over all chunks (zeros / numel of the ``[T, B, C]`` tensors).
        per_chunk: the chunks' own statistics (JSON-ready dicts).
    """

    chunks: int
    rays: int
    points: int
    time_steps_mean: float | None = None
    time_steps_max: int | None = None
    batch_mean: float | None = None
    batch_max: int | None = None
    padding_fraction: float | None = None
    sparsity: float | None = None
    per_chunk: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "chunks": self.chunks, "rays": self.rays, "points": self.points,
            "time_steps_mean": self.time_steps_mean, "time_steps_max": self.time_steps_max,
            "batch_mean": self.batch_mean, "batch_max": self.batch_max,
            "padding_fraction": self.padding_fraction, "sparsity": self.sparsity, "per_chunk": self.per_chunk,
        }


def _chunk_dict(chunk: Any) -> dict[str, Any]:
    """A chunk statistic as a dict (``to_dict`` when available, else its public attributes)."""
    if hasattr(chunk, "to_dict"):
        return dict(chunk.to_dict())
    return {k: v for k, v in vars(chunk).items() if not k.startswith("_")}


def summarize_chunks(stats: Sequence[Any]) -> RenderSummary | None:
    """Aggregate per-chunk render statistics (``None`` when there are none).

    Args:
        stats: objects with ``rays``, ``points`` and optionally ``time_steps``, ``batch``,
            ``zero_elements`` and ``channels`` (``ChunkStats`` of the NeRF zoo models).

    Example:
        >>> from snnprof.models.nerf_render import ChunkStats
        >>> s = summarize_chunks([ChunkStats(0, 4, 40, 20, 10, 6, 3, 4, 6 * 39, 39)])
        >>> s.points, s.time_steps_max, s.padding_fraction
        (6, 3, 0.5)
    """
    if not stats:
        return None
    rays = sum(int(s.rays) for s in stats)
    points = sum(int(s.points) for s in stats)
    snn = [s for s in stats if getattr(s, "time_steps", None) is not None]
    if not snn:
        return RenderSummary(len(stats), rays, points, per_chunk=[_chunk_dict(s) for s in stats])
    steps = [int(s.time_steps) for s in snn]
    batch = [int(s.batch) for s in snn]
    rows = sum(t * b for t, b in zip(steps, batch, strict=True))
    numel = sum(t * b * int(getattr(s, "channels", 0)) for t, b, s in zip(steps, batch, snn, strict=True))
    zeros = [getattr(s, "zero_elements", None) for s in snn]
    sparsity = sum(zeros) / numel if numel and None not in zeros else None
    return RenderSummary(
        chunks=len(stats), rays=rays, points=points,
        time_steps_mean=sum(steps) / len(steps), time_steps_max=max(steps),
        batch_mean=sum(batch) / len(batch), batch_max=max(batch),
        padding_fraction=1.0 - sum(int(s.points) for s in snn) / rows if rows else 0.0,
        sparsity=sparsity, per_chunk=[_chunk_dict(s) for s in stats],
    )


@dataclass
class ConfigRun:
    """One config's run: counts, energy, render statistics, quality and wall time.

    Attributes:
        label: short name (the config file's stem, made unique).
        config_path: the config file.
        model: zoo model name.
        result: the profile result (``energy`` filled for every profile).
        profiles: hardware profiles priced, in order.
        render: aggregated per-chunk render statistics (``None`` for models that expose none).
        quality: ``psnr`` (dB) and ``ssim`` when available.
        quality_note: why quality is unavailable (empty when it was computed).
        wall_s: seconds of one unprofiled run of the inputs (no autograd).
    """

    label: str
    config_path: str
    model: str
    result: ProfileResult
    profiles: list[str]
    render: RenderSummary | None = None
    quality: dict[str, float] = field(default_factory=dict)
    quality_note: str = ""
    wall_s: float = 0.0

    def energy_pj(self, profile: str, per_sample: bool = True) -> float:
        """Energy on ``profile`` in pJ, per sample (image) by default, else for the whole run."""
        entry = self.result.energy[profile]
        return float(entry["per_sample_pj"] if per_sample else entry["total_pj"])

    def firing_rates(self) -> dict[str, float]:
        """Firing rate of every neuron layer (spikes / neuron updates), in layer order."""
        return {rec.name: float(rec.firing_rate) for rec in self.result.layers if rec.firing_rate is not None}

    def metrics(self) -> dict[str, float | None]:
        """Flat numeric metrics (per sample where it applies) compared across configs."""
        per = self.result.per_sample
        r = self.render
        out: dict[str, float | None] = {
            "time_steps_mean": r.time_steps_mean if r else None, "time_steps_max": r.time_steps_max if r else None,
            "batch_mean": r.batch_mean if r else None, "batch_max": r.batch_max if r else None,
            "padding_fraction": r.padding_fraction if r else None,
            "points": r.points / max(self.result.batch_size, 1) if r else None,
            "macs": per["macs"], "sops": per["sops"], "spikes": per["spikes"],
            "firing_rate": self.result.totals.firing_rate if self.result.totals.neuron_updates else None,
        }
        out.update({f"energy_pj.{p}": self.energy_pj(p) for p in self.profiles})
        out.update({"psnr": self.quality.get("psnr"), "ssim": self.quality.get("ssim"), "wall_s": self.wall_s})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: summary metrics plus the full profile (schema ``snnprof.profile/1``)."""
        return {
            "label": self.label, "config": self.config_path, "model": self.model,
            "batch_size": self.result.batch_size, "metrics": self.metrics(), "firing_rates": self.firing_rates(),
            "render": self.render.to_dict() if self.render else None, "quality": dict(self.quality),
            "quality_note": self.quality_note, "wall_s": self.wall_s, "profile": self.result.to_dict(),
        }


@dataclass
class Comparison:
    """The comparison of several configs (the first is the reference).

    Attributes:
        runs: one :class:`ConfigRun` per config, in the given order.
        profiles: hardware profiles priced.
        ratios: per run, ``metric -> value / first value`` (``None`` when undefined).
        energy_reduction_pct: per profile, per other run label: ``(1 - E_first / E_other) * 100``.
        warnings: notes such as configs whose inputs differ.
    """

    runs: list[ConfigRun]
    profiles: list[str]
    ratios: list[dict[str, float | None]] = field(default_factory=list)
    energy_reduction_pct: dict[str, dict[str, float | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def neuron_layers(self) -> list[str]:
        """Names of every neuron layer of any run, in first-seen order."""
        names: dict[str, None] = {}
        for run in self.runs:
            names.update(dict.fromkeys(run.firing_rates()))
        return list(names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema ``snnprof.compare/1``); non-finite numbers (PSNR of identical images) are null."""
        return json_safe({
            "schema": SCHEMA, "profiles": list(self.profiles), "configs": [r.config_path for r in self.runs],
            "reference": self.runs[0].label if self.runs else None, "runs": [r.to_dict() for r in self.runs],
            "ratios": {r.label: ratio for r, ratio in zip(self.runs, self.ratios, strict=True)},
            "energy_reduction_pct": self.energy_reduction_pct, "warnings": list(self.warnings),
        })


# --------------------------------------------------------------------------- pure helpers


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (``inf``, ``nan``) replaced by ``None`` (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``; ``None`` when either is missing, the reference is 0 or not finite."""
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return float(value) / float(reference)


def ratios_against_first(metrics: Sequence[dict[str, float | None]]) -> list[dict[str, float | None]]:
    """Per run, every metric divided by the first run's."""
    if not metrics:
        return []
    first = metrics[0]
    return [{k: ratio(m.get(k), first.get(k)) for k in first} for m in metrics]


def energy_reduction(runs: Sequence[ConfigRun], profiles: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per profile: how much less energy (%) the first run uses than each other run."""
    out: dict[str, dict[str, float | None]] = {}
    for profile in profiles:
        first = runs[0].energy_pj(profile)
        out[profile] = {}
        for run in runs[1:]:
            other = run.energy_pj(profile)
            out[profile][run.label] = (1.0 - first / other) * 100.0 if other else None
    return out


def _input_signature(cfg: RunConfig) -> dict[str, Any]:
    """The parts of a config that decide its inputs."""
    inp = cfg.to_dict()["input"]
    return {k: inp.get(k) for k in ("source", "batch_size", "time_steps", "seed", "kwargs", "path", "reader")}


def input_warnings(configs: Sequence[RunConfig]) -> list[str]:
    """A warning for every config whose ``[input]`` differs from the first one's."""
    first = _input_signature(configs[0])
    return [
        f"{cfg.path}: [input] differs from {configs[0].path}; the configs do not run on the same inputs"
        for cfg in configs[1:]
        if _input_signature(cfg) != first
    ]


def _labels(configs: Sequence[RunConfig]) -> list[str]:
    """Config file stems, suffixed with their position when two are the same."""
    stems = [cfg.path.stem for cfg in configs]
    return [s if stems.count(s) == 1 else f"{s}#{i + 1}" for i, s in enumerate(stems)]


# --------------------------------------------------------------------------- running one config


def _dataset_inputs(cfg: RunConfig) -> tuple[Any, Any]:
    """The first ``batch_size`` samples of the config's dataset: ``(model inputs, targets)``."""
    from torch.utils.data import default_collate

    from snnprof.data import get_reader

    assert cfg.input.reader is not None and cfg.input.path is not None
    try:
        dataset = get_reader(cfg.input.reader)(cfg.input.path, **cfg.input.kwargs)
        items = [dataset[i] for i in range(min(cfg.input.batch_size, len(dataset)))]
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        raise ConfigError(cfg.path, "input.path", f"cannot read {cfg.input.path} with reader "
                                                  f"{cfg.input.reader!r}: {err}") from None
    if not items:
        raise ConfigError(cfg.path, "input.path", f"dataset {cfg.input.path} is empty")
    inputs, targets = default_collate(items)
    return get_entry(cfg.model.name).batch_to_inputs(inputs), targets


def _inputs_and_targets(cfg: RunConfig, model: nn.Module) -> tuple[Any, Any]:
    """Model inputs and ground truth (``None`` for synthetic inputs)."""
    if cfg.input.source == "dataset":
        return _dataset_inputs(cfg)
    return make_inputs(cfg, model), None


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


def _run_once(cfg: RunConfig, model: nn.Module, inputs: Any) -> tuple[Any, float]:
    """One unprofiled run: ``(output, wall seconds)``."""
    entry = get_entry(cfg.model.name)
    try:
        with torch.no_grad():
            start = time.perf_counter()
            out = entry.run(model, inputs, cfg.input.time_steps)
            return out, time.perf_counter() - start
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(cfg.path, "input", f"the model rejected the inputs: {first}") from None


def _profiled(cfg: RunConfig, model: nn.Module, inputs: Any) -> ProfileResult:
    """One run under the profiler with the config's counting options."""
    count = cfg.count
    profiler = Profiler(model, sop_convention=count.sop_convention, strict=count.strict,
                        time_steps=cfg.input.time_steps, batch_size=cfg.input.batch_size,
                        overrides=dict(count.overrides), count_weighting=count.count_weighting,
                        model_name=cfg.model.name)
    with profiler:
        _run_once(cfg, model, inputs)
    return profiler.result()


def run_config(cfg: RunConfig, profiles: Sequence[str], label: str | None = None) -> ConfigRun:
    """Build, run, profile and price one config.

    Args:
        cfg: a validated config.
        profiles: hardware profiles (validated names or paths).
        label: display name (default: the config file's stem).

    Raises:
        ConfigError: bad kwargs, checkpoint, dataset or inputs.
        UncountedOpsError: ``count.strict`` and something ran without a rule.
    """
    torch.manual_seed(cfg.input.seed)
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path)
    model.eval()
    inputs, targets = _inputs_and_targets(cfg, model)
    pred, wall = _run_once(cfg, model, inputs)
    render = summarize_chunks(list(getattr(model, "last_render_stats", None) or []))
    quality, note = _quality(cfg, pred, targets)
    result = _profiled(cfg, model, inputs)
    result.config = cfg.to_dict()
    result.config["energy"]["profiles"] = list(profiles)
    for profile in profiles:
        energy = estimate_energy(result, profile)
        result.energy[energy.profile] = energy.to_dict()
    names = list(result.energy)
    return ConfigRun(label or cfg.path.stem, str(cfg.path), cfg.model.name, result, names, render, quality, note, wall)


def compare_configs(configs: Sequence[RunConfig], profiles: Sequence[str] | None = None) -> Comparison:
    """Run every config and compare them against the first.

    Args:
        configs: two or more validated configs.
        profiles: hardware profiles (CLI ``--profile``); default: :data:`DEFAULT_PROFILES`.

    Returns:
        The :class:`Comparison`.

    Raises:
        ConfigError: fewer than two configs, an unknown profile, or a config that cannot run.
    """
    if len(configs) < 2:
        where = configs[0].path if configs else "<command line>"
        raise ConfigError(where, "", "compare needs at least two configs")
    chosen = check_profiles(list(profiles or DEFAULT_PROFILES), configs[0].path, "--profile")
    runs = [run_config(cfg, chosen, label) for cfg, label in zip(configs, _labels(configs), strict=True)]
    names = runs[0].profiles
    return Comparison(
        runs=runs, profiles=names,
        ratios=ratios_against_first([r.metrics() for r in runs]),
        energy_reduction_pct=energy_reduction(runs, names),
        warnings=input_warnings(configs),
    )
