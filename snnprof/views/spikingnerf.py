"""SpikingNeRF's own conventions beside snnprof's: the seed's MLP-only ``--op_count`` and its per-image sparsity.

snnprof counts every synaptic layer of a model; the seed's ``--op_count`` (``lib/spiking_dvgo.py``,
``SpikingNeRF-T/models/tensorBase.py``; ``docs/seed_models.md`` §1.3) counts the **colour MLP only**:

* SpikingNeRF-D / DVGO: ``rgbnet.*``. This is all of their synaptic work (grid sampling is elementwise),
  so the MLP-only figures equal the full ones.
* SpikingNeRF-T / TensoRF: ``render_module.*``, **without** the basis matrix ``basis_mat`` (144 -> 27
  per valid point) that both models also run. The seed's "float ops" are ``N_valid * in_mlpC *
  featureC`` (spiking: the first layer) or ``N * (in C + C^2 + 3 C)`` (ANN), its "add ops"
  ``spikes_L1 * featureC + spikes_L2 * 3``; these equal the ``macs`` / ``sops`` of ``render_module``.

The seed's per-image ``sparsity`` is the **mean over the render chunks** of each chunk's zero fraction
of the ``[T, B, C]`` SNN input (chunks without valid points excluded, as their value is an empty
tensor), then the mean over images; snnprof's pooled figure is ``sum zeros / sum numel`` over all
chunks. Both come from the same :class:`~snnprof.models.nerf_render.ChunkStats`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snnprof.counting.results import ProfileResult
from snnprof.energy.estimate import EnergyResult

__all__ = [
    "MLP_PREFIXES",
    "SeedOpCount",
    "mlp_only_reduction",
    "pooled_sparsity",
    "seed_op_count",
    "seed_sparsity",
]

logger = logging.getLogger(__name__)

#: Zoo model -> module prefix of the colour MLP the seed's ``--op_count`` counts.
MLP_PREFIXES: dict[str, str] = {
    "spikingnerf_d": "rgbnet.",
    "dvgo_ann": "rgbnet.",
    "spikingnerf_t": "render_module.",
    "tensorf_ann": "render_module.",
}


@dataclass(frozen=True)
class SeedOpCount:
    """The seed's MLP-only op count of a profiled run (whole run and per sample = per rendered view).

    Attributes:
        model: zoo model name.
        layers: the layers counted (the colour MLP's synaptic layers), in profile order.
        macs: MACs on real-valued inputs of those layers (the seed's "float ops"), whole run.
        sops: their synaptic operations (the seed's "s-ops" / "add ops"), whole run.
        dense_macs: their MACs as if every input were dense, whole run.
        batch_size: samples (views) profiled; ``per_sample`` divides by it.
        energy_pj: per hardware profile already priced in ``result.energy``, the sum of those layers'
            energies (pJ, whole run).
    """

    model: str
    layers: tuple[str, ...]
    macs: int
    sops: int
    dense_macs: int
    batch_size: int
    energy_pj: dict[str, float] = field(default_factory=dict)

    @property
    def per_sample(self) -> dict[str, float]:
        """``macs``, ``sops``, ``dense_macs`` and each profile's energy (pJ) per view."""
        b = max(self.batch_size, 1)
        out = {"macs": self.macs / b, "sops": self.sops / b, "dense_macs": self.dense_macs / b}
        return out | {f"energy_pj.{k}": v / b for k, v in self.energy_pj.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (counts as ints)."""
        return {"convention": "seed_mlp_only", "model": self.model, "layers": list(self.layers), "macs": self.macs,
                "sops": self.sops, "dense_macs": self.dense_macs, "batch_size": self.batch_size,
                "energy_pj": dict(self.energy_pj), "per_sample": self.per_sample}  # fmt: skip


def _prefix(result: ProfileResult, model: str | None) -> tuple[str, str]:
    name = model or getattr(result, "model", None) or ""
    if name not in MLP_PREFIXES:
        raise ValueError(f"no seed op-count convention for model {name!r}; known: {', '.join(MLP_PREFIXES)}")
    return name, MLP_PREFIXES[name]


def seed_op_count(result: ProfileResult, model: str | None = None,
                  energy: Mapping[str, EnergyResult] | None = None) -> SeedOpCount:
    """The seed's MLP-only ``--op_count`` figures of a profiled SpikingNeRF / DVGO / TensoRF run.

    Args:
        result: the profile (``snnprof.profile`` / ``snnprof count``).
        model: zoo model name (default: ``result.model``).
        energy: the run's energy estimates by profile (``Run.energy``, or ``snnprof.energy.price``);
            the MLP-only energy sums those layers' energies.

    Raises:
        ValueError: a model without this convention.
    """
    name, prefix = _prefix(result, model)
    layers = [r for r in result.layers if r.name.startswith(prefix) and (r.dense_macs or r.sops)]
    energies = {profile: float(sum(e.layers.get(r.name, 0.0) for r in layers)) for profile, e in (energy or {}).items()}
    return SeedOpCount(name, tuple(r.name for r in layers), sum(int(r.macs) for r in layers),
                       sum(int(r.sops) for r in layers), sum(int(r.dense_macs) for r in layers),
                       int(result.batch_size), energies)  # fmt: skip


def mlp_only_reduction(snn: SeedOpCount, ann: SeedOpCount, profile: str) -> float:
    """``(1 - E_snn / E_ann) * 100`` on ``profile`` in the seed's MLP-only convention (per view).

    Raises:
        KeyError: ``profile`` was not priced for both runs.
    """
    e_snn = snn.energy_pj[profile] / max(snn.batch_size, 1)
    e_ann = ann.energy_pj[profile] / max(ann.batch_size, 1)
    return (1.0 - e_snn / e_ann) * 100.0


def seed_sparsity(stats: Sequence[Any]) -> float | None:
    """The seed's ``Counting input sparsity``: per view the mean of the chunks' sparsity, then the mean over views.

    Args:
        stats: :class:`~snnprof.models.nerf_render.ChunkStats` of a render (``model.last_render_stats``).

    Returns:
        The fraction of zeros, or ``None`` without spiking chunks (ANN colour heads).
    """
    per_view: dict[int, list[float]] = {}
    for chunk in stats:
        if chunk.sparsity is None or not chunk.points:
            continue  # the seed's sparsity of a chunk without valid points is an empty tensor
        per_view.setdefault(int(chunk.view), []).append(float(chunk.sparsity))
    if not per_view:
        return None
    return sum(sum(v) / len(v) for v in per_view.values()) / len(per_view)


def pooled_sparsity(stats: Sequence[Any]) -> float | None:
    """Snnprof's pooled sparsity: ``sum zeros / sum numel`` of the ``[T, B, C]`` tensors of every chunk."""
    snn = [c for c in stats if c.zero_elements is not None and c.time_steps is not None and c.batch is not None]
    numel = sum(c.time_steps * c.batch * c.channels for c in snn)
    return sum(c.zero_elements for c in snn) / numel if numel else None
