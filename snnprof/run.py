"""A profiled, priced run: what every command computes and every renderer shows (plain data).

:class:`Run` bundles one :class:`~snnprof.counting.results.ProfileResult` with its energy on each
hardware profile (typed :class:`~snnprof.energy.estimate.EnergyResult`, priced once by
:func:`snnprof.energy.price`), the config it came from, and what a comparison shows next to it
(render statistics of NeRF models, image quality, wall time, measured GPU energy). The terminal,
JSON and HTML renderers read it; none of them prices or re-parses anything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnprof.counting.results import ProfileResult
from snnprof.energy.estimate import EnergyResult
from snnprof.energy.measured import MeasuredEnergy

__all__ = ["RenderSummary", "Run", "json_safe", "summarize_chunks"]

logger = logging.getLogger(__name__)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (``inf``, ``nan``) replaced by ``None`` (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


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
        sparsity: pooled sparsity over all chunks (zeros / numel of the ``[T, B, C]`` tensors).
        seed_sparsity: the seed's own figure: per view the mean of the chunks' sparsity, then the
            mean over views (:func:`snnprof.views.spikingnerf.seed_sparsity`).
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
    seed_sparsity: float | None = None
    per_chunk: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "chunks": self.chunks, "rays": self.rays, "points": self.points,
            "time_steps_mean": self.time_steps_mean, "time_steps_max": self.time_steps_max,
            "batch_mean": self.batch_mean, "batch_max": self.batch_max,
            "padding_fraction": self.padding_fraction, "sparsity": self.sparsity,
            "seed_sparsity": self.seed_sparsity, "per_chunk": self.per_chunk,
        }


def _chunk_dict(chunk: Any) -> dict[str, Any]:
    """A chunk statistic as a dict (``to_dict`` when available, else its public attributes)."""
    if hasattr(chunk, "to_dict"):
        return dict(chunk.to_dict())
    return {k: v for k, v in vars(chunk).items() if not k.startswith("_")}


def _seed_sparsity(stats: Sequence[Any]) -> float | None:
    """The seed's chunk-mean sparsity when the chunks carry it (``None`` otherwise)."""
    from snnprof.views.spikingnerf import seed_sparsity

    try:
        return seed_sparsity(stats)
    except AttributeError:  # chunk statistics of other models (no view / sparsity fields)
        return None


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
        sparsity=sparsity, seed_sparsity=_seed_sparsity(snn), per_chunk=[_chunk_dict(s) for s in stats],
    )


@dataclass
class Run:
    """One profiled run, priced on every hardware profile, with what is shown next to it.

    Attributes:
        label: the run's short name (a config's file stem, made unique in comparisons).
        result: the counts (whole run: all samples and time steps).
        energy: ``{profile name: EnergyResult}``, in pricing order (all energies in pJ).
        config_text: the config file's text, verbatim (``None`` for API runs).
        config_path: the config file (``None`` for API runs).
        render: aggregated per-chunk render statistics (NeRF models), else ``None``.
        quality: ``psnr`` (dB) and ``ssim`` when available.
        quality_note: why quality is unavailable (empty when it was computed or not asked for).
        wall_s: seconds of one unprofiled run of the inputs (no autograd) after a warm-up run, when
            measured (``run_config(..., side_by_side=True)``).
        measured: GPU-measured energy of the same config (``snnprof measure --json``), if given.
        other_pool_view: the energy of the pool-folding view the run did not choose (``fold_pooling``
            flipped), by profile; empty unless a synaptic layer is fed by average/sum-pooled spikes.
    """

    label: str
    result: ProfileResult
    energy: dict[str, EnergyResult] = field(default_factory=dict)
    config_text: str | None = None
    config_path: str | None = None
    render: RenderSummary | None = None
    quality: dict[str, float] = field(default_factory=dict)
    quality_note: str = ""
    wall_s: float | None = None
    measured: MeasuredEnergy | None = None
    other_pool_view: dict[str, EnergyResult] = field(default_factory=dict)

    def pool_views(self) -> dict[str, dict[str, float]]:
        """Both pool-folding views per sample (``{"unfolded": {...}, "folded": {...}}``; empty when they agree).

        Each view: ``macs``, ``sops`` and ``energy_pj.<profile>`` per sample.
        """
        tot = self.result.totals
        if not self.other_pool_view or tot.macs_folded is None or tot.macs_unfolded is None:
            return {}
        batch = max(self.result.batch_size, 1)
        own, other = ("folded", "unfolded") if self.result.fold_pooling else ("unfolded", "folded")
        energies = {own: self.energy, other: self.other_pool_view}
        out = {}
        for view in ("unfolded", "folded"):
            macs, sops = getattr(tot, f"macs_{view}"), getattr(tot, f"sops_{view}")
            out[view] = {"macs": macs / batch, "sops": (sops or 0) / batch,
                         **{f"energy_pj.{p}": e.per_sample_pj for p, e in energies[view].items()}}
        return out

    @property
    def model(self) -> str:
        """The model's name."""
        return self.result.model

    @property
    def profiles(self) -> list[str]:
        """Profiles priced, in order."""
        return list(self.energy)

    @property
    def is_ann(self) -> bool:
        """No spiking neurons at all."""
        return self.result.totals.neurons == 0

    @property
    def trained(self) -> bool | None:
        """Whether the weights came from a checkpoint.

        ``False`` for a config without one (the constructor's random init), ``None`` when unknown
        (a result profiled from Python without a config).
        """
        model = self.result.config.get("model")
        if not isinstance(model, Mapping):
            return None
        return bool(model.get("checkpoint"))

    def energy_pj(self, profile: str, per_sample: bool = True) -> float | None:
        """Energy on ``profile`` in pJ, per sample by default (``None`` when not priced there)."""
        energy = self.energy.get(profile)
        if energy is None:
            return None
        return energy.per_sample_pj if per_sample else energy.total_pj

    def firing_rates(self) -> dict[str, float]:
        """Firing rate of every neuron layer (spikes / neuron updates), in layer order."""
        return {rec.name: float(rec.firing_rate) for rec in self.result.layers if rec.firing_rate is not None}

    def valid_padding(self) -> float | None:
        """Fraction of neuron updates in padding slots, ``1 - valid / all`` (``None`` without a validity mask)."""
        tot = self.result.totals
        if tot.valid_updates is None or not tot.neuron_updates:
            return None
        return 1.0 - tot.valid_updates / tot.neuron_updates

    def metrics(self) -> dict[str, float | None]:
        """Flat numeric metrics (per sample where it applies): what a comparison puts side by side.

        The per-sample counts (``macs``, ``dense_macs``, ``sops``, ``sops_rate``, ``flops``,
        ``spikes``, ``neuron_updates``), ``params``, the firing rate and one ``fr:<layer>`` per neuron
        layer, render statistics of NeRF models (T and B per chunk, padding, sparsity, valid points),
        ``valid_updates`` (per sample), ``firing_rate_valid`` and ``valid_padding`` for models that
        mark valid slots, the two pool-folding views ``macs_folded``, ``sops_folded``,
        ``macs_unfolded``, ``sops_unfolded`` (per sample), energy per profile (``energy_pj.<profile>``),
        the measured GPU energy (``measured``, pJ), quality and wall time; ``None`` where a metric
        does not apply.
        """
        per = self.result.per_sample
        r = self.render
        render_keys = ("time_steps_mean", "time_steps_max", "batch_mean", "batch_max", "padding_fraction",
                       "sparsity", "seed_sparsity")
        out: dict[str, float | None] = {key: getattr(r, key) if r else None for key in render_keys}
        out["points"] = r.points / max(self.result.batch_size, 1) if r else None
        out["params"] = self.result.totals.params
        out.update({key: per[key] for key in ("macs", "dense_macs", "sops", "sops_rate", "flops", "spikes",
                                                "neuron_updates")})
        out["firing_rate"] = self.result.totals.firing_rate if self.result.totals.neuron_updates else None
        out.update({"valid_updates": per["valid_updates"], "firing_rate_valid": per["firing_rate_valid"],
                    "valid_padding": self.valid_padding()})
        out.update({key: per[key] for key in ("macs_folded", "sops_folded", "macs_unfolded", "sops_unfolded")})
        out.update({f"fr:{name}": rate for name, rate in self.firing_rates().items()})
        out.update({f"energy_pj.{p}": self.energy_pj(p) for p in self.profiles})
        out["measured"] = self.measured.per_sample_pj if self.measured else None
        out.update({"psnr": self.quality.get("psnr"), "ssim": self.quality.get("ssim"), "wall_s": self.wall_s})
        return out

    def to_dict(self) -> dict[str, Any]:
        """The profile JSON (schema ``snnprof.profile/1``) with ``energy`` filled from the typed estimates."""
        data = self.result.to_dict()
        data["energy"] = {name: energy.to_dict() for name, energy in self.energy.items()}
        views = self.pool_views()
        if views:
            data["pool_folding_views"] = views
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as strict JSON (non-finite numbers become ``null``)."""
        import json

        return json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False)

    def summary_dict(self) -> dict[str, Any]:
        """The run's entry of a comparison JSON: summary metrics plus the full profile."""
        return {
            "label": self.label, "config": self.config_path, "model": self.model,
            "batch_size": self.result.batch_size, "metrics": self.metrics(), "firing_rates": self.firing_rates(),
            "render": self.render.to_dict() if self.render else None, "quality": dict(self.quality),
            "quality_note": self.quality_note, "wall_s": self.wall_s, "profile": self.to_dict(),
        }
