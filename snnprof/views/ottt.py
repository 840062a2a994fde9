"""OTTT's firing-rate convention: per-layer rates and the neuron-weighted total (view ``ottt_rates``).

The seed's ``get_rate_cifar.py`` / ``get_rate_imagenet.py`` (``docs/seed_models.md`` section 5.2)
run the test set online (``net(x, init=(t == 0), save_spike=True)`` for ``t < T``), collect every
spiking layer's ``[B, neurons]`` spikes per step and print::

    rate_i            = sum over samples and steps of mean_neurons(spike_i) / (N_test * T)
    total_spike_rate  = sum_i rate_i * dims_i / sum_i dims_i       (dims_i = neurons of layer i)

For our per-layer records ``rate_i = spikes_i / neuron_updates_i`` (``LayerRecord.firing_rate``)
and ``dims_i = neurons_i`` (per sample and step), over every neuron layer in first-call order
(VGG-11: the 8 feature neurons; NF-ResNet-34: ``sn1``, ``sn2`` of each of the 16 blocks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from snnprof.counting.results import ProfileResult

__all__ = ["VIEW_NAME", "OTTTFiringRates", "OTTTLayerRate", "ottt_firing_rates", "render_ottt_rates"]

logger = logging.getLogger(__name__)

#: Name of this view.
VIEW_NAME = "ottt_rates"


@dataclass(frozen=True)
class OTTTLayerRate:
    """One spiking layer in OTTT's convention.

    Attributes:
        name: layer (module) name.
        rate: mean spikes per neuron and time step, in [0, 1] (the seed's ``spike_rate``).
        dims: neurons of the layer per sample and step (the seed's ``dims``).
    """

    name: str
    rate: float
    dims: int


@dataclass(frozen=True)
class OTTTFiringRates:
    """OTTT's firing-rate statistics of a profiled run.

    Attributes:
        layers: per spiking layer, in call order (the seed's ``layer=1..L``).
        total_spike_rate: ``sum(rate_i * dims_i) / sum(dims_i)``, in [0, 1] (0.0 without neurons).
    """

    layers: tuple[OTTTLayerRate, ...]
    total_spike_rate: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "view": VIEW_NAME,
            "layers": [{"name": r.name, "rate": r.rate, "dims": r.dims} for r in self.layers],
            "total_spike_rate": self.total_spike_rate,
        }


def _weighted_total(layers: tuple[OTTTLayerRate, ...]) -> float:
    dims = sum(layer.dims for layer in layers)
    return sum(layer.rate * layer.dims for layer in layers) / dims if dims else 0.0


def ottt_firing_rates(result: ProfileResult) -> OTTTFiringRates:
    """Per-layer rates and OTTT's neuron-weighted total rate from a profile's neuron layers.

    Args:
        result: a profile of an online run (any number of batches and steps).

    Returns:
        The statistics that ``get_rate_*.py`` prints for the same run.
    """
    layers = tuple(
        OTTTLayerRate(rec.name, rec.spikes / rec.neuron_updates, rec.neurons)
        for rec in result.layers
        if rec.neurons > 0 and rec.neuron_updates > 0
    )
    if not layers:
        logger.debug("no spiking layers in %s", result.model)
    return OTTTFiringRates(layers=layers, total_spike_rate=_weighted_total(layers))


def render_ottt_rates(rates: OTTTFiringRates) -> str:
    """The seed's printout: ``layer=i, spike_rate=r`` lines (1-based) then ``total_spike_rate=r``."""
    lines = [f"layer={i}, spike_rate={r.rate}  # {r.name}" for i, r in enumerate(rates.layers, start=1)]
    lines.append(f"total_spike_rate={rates.total_spike_rate}")
    return "\n".join(lines)
