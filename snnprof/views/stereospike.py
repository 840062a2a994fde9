"""StereoSpike's firing-rate convention: tensor density ``count_nonzero(t) / numel(t)`` (view ``stereospike_density``).

The seed (``StereoSpike.calculate_firing_rates``, ``docs/seed_models.md`` section 3.2) reports, for
15 intermediate tensors, ``count_nonzero(t) / numel(t)`` averaged over the test samples (batch 1)::

    out_bottom, out_conv1..4          outputs of the encoder IF layers (binary)
    out_rconv                         output of the SEW bottleneck (integer sums 0..3)
    out_deconv4, out_add4, ..., out_deconv1, out_add1
                                      decoder IF outputs (binary) and skip sums (integers 0..2)

It is a *density*, not a spike sum: a skip-sum entry of value 2 counts once. The seed's dict also
has a key ``out_combined`` that is never filled; it is left out here. The paper's "mean firing
rate" (Fig. 4) is the plain average of these densities; :attr:`StereoSpikeDensity.encoder_mean` and
:attr:`~StereoSpikeDensity.decoder_mean` average the encoder (``out_bottom``, ``out_conv1..4``) and
decoder (``out_deconv1..4``) conv layers, the two figures quoted in the paper's section 4.4.

Two ways to get it:

* :func:`densities_from_profile` reads the binary (neuron-output) tensors off a
  :class:`~snnprof.counting.results.ProfileResult`: for an IF layer, ``spikes / neuron_updates``
  *is* the density. The sum tensors are not neuron outputs and are reported as ``None``.
* :class:`DensityRecorder` hooks the model's ``bottom``, ``conv1..4``, ``bottleneck``,
  ``deconv1..4`` and ``add1..4`` modules and measures all 15 tensors, per sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from snnprof.counting.results import ProfileResult

__all__ = [
    "DECODER_TENSORS",
    "ENCODER_TENSORS",
    "SEED_TENSORS",
    "VIEW_NAME",
    "DensityRecorder",
    "StereoSpikeDensity",
    "densities_from_profile",
    "density",
    "stereospike_density",
]

logger = logging.getLogger(__name__)

#: Name of this view.
VIEW_NAME = "stereospike_density"
#: The seed's tensors in its dict order (``out_combined`` omitted: never filled by the seed).
SEED_TENSORS: tuple[str, ...] = (
    "out_bottom", "out_conv1", "out_conv2", "out_conv3", "out_conv4", "out_rconv",
    "out_deconv4", "out_add4", "out_deconv3", "out_add3", "out_deconv2", "out_add2", "out_deconv1", "out_add1",
)  # fmt: skip
ENCODER_TENSORS: tuple[str, ...] = ("out_bottom", "out_conv1", "out_conv2", "out_conv3", "out_conv4")
DECODER_TENSORS: tuple[str, ...] = ("out_deconv4", "out_deconv3", "out_deconv2", "out_deconv1")
#: Module whose output is each tensor.
TENSOR_MODULES: dict[str, str] = {t: t.removeprefix("out_").replace("rconv", "bottleneck") for t in SEED_TENSORS}
#: Neuron layer (profile record) whose spikes are each binary tensor.
NEURON_LAYERS: dict[str, str] = {t: f"{TENSOR_MODULES[t]}.2" for t in ENCODER_TENSORS + DECODER_TENSORS}


def density(t: torch.Tensor) -> float:
    """``count_nonzero(t) / numel(t)`` (the seed's "firing rate" of one tensor)."""
    return float(torch.count_nonzero(t)) / t.numel() if t.numel() else 0.0


@dataclass
class StereoSpikeDensity:
    """Per-tensor densities in StereoSpike's convention.

    Attributes:
        tensors: tensor name -> mean per-sample density in [0, 1] (``None`` when not available).
        samples: samples averaged.
    """

    tensors: dict[str, float | None]
    samples: int = 0
    name: str = field(default=VIEW_NAME)

    def _mean(self, names: tuple[str, ...]) -> float | None:
        values = [self.tensors.get(n) for n in names]
        if any(v is None for v in values):
            return None
        return sum(v for v in values if v is not None) / len(values)

    @property
    def mean(self) -> float | None:
        """Average density of all 15 tensors (paper Fig. 4 "mean firing rate"); ``None`` if incomplete."""
        return self._mean(SEED_TENSORS)

    @property
    def encoder_mean(self) -> float | None:
        """Average density of the encoder conv layers' outputs (paper section 4.4: 8.1 %)."""
        return self._mean(ENCODER_TENSORS)

    @property
    def decoder_mean(self) -> float | None:
        """Average density of the decoder conv layers' outputs (paper section 4.4: 23.5 %)."""
        return self._mean(DECODER_TENSORS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "view": self.name,
            "samples": self.samples,
            "tensors": dict(self.tensors),
            "mean": self.mean,
            "encoder_mean": self.encoder_mean,
            "decoder_mean": self.decoder_mean,
        }


def densities_from_profile(result: ProfileResult) -> StereoSpikeDensity:
    """The binary tensors' densities from per-layer statistics (``spikes / neuron_updates`` of each IF layer).

    Pooled over the profiled run, which equals the seed's per-sample average because every
    sample has the same number of neurons. Sum tensors (``out_rconv``, ``out_add*``) are ``None``.

    Args:
        result: a profile of a StereoSpike model.

    Raises:
        KeyError: when a neuron layer of the seed's layout is missing from the result.
    """
    tensors: dict[str, float | None] = dict.fromkeys(SEED_TENSORS)
    for tensor, layer in NEURON_LAYERS.items():
        rec = result.layer(layer)
        tensors[tensor] = rec.spikes / rec.neuron_updates if rec.neuron_updates else 0.0
    return StereoSpikeDensity(tensors=tensors, samples=result.batch_size)


class DensityRecorder:
    """Forward hooks measuring the 15 tensors' per-sample densities over any number of calls.

    Example:
        >>> with DensityRecorder(model) as rec:  # doctest: +SKIP
        ...     for x in batches:
        ...         run(model, x, 1)
        >>> rec.result().mean  # doctest: +SKIP

    Args:
        model: a StereoSpike model (or the ANN: same module names).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._sums: dict[str, float] = dict.fromkeys(SEED_TENSORS, 0.0)
        self._samples: dict[str, int] = dict.fromkeys(SEED_TENSORS, 0)
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> DensityRecorder:
        for tensor, module_name in TENSOR_MODULES.items():
            module = self.model.get_submodule(module_name)
            self._handles.append(module.register_forward_hook(self._hook(tensor)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, tensor: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
            with torch.no_grad():
                flat = output.detach().reshape(output.shape[0], -1)
                per_sample = torch.count_nonzero(flat, dim=1).double() / flat.shape[1]
                self._sums[tensor] += float(per_sample.sum())
                self._samples[tensor] += flat.shape[0]

        return hook

    def result(self) -> StereoSpikeDensity:
        """Mean per-sample density of each tensor over everything recorded so far."""
        tensors = {t: self._sums[t] / n if (n := self._samples[t]) else None for t in SEED_TENSORS}
        return StereoSpikeDensity(tensors=tensors, samples=max(self._samples.values(), default=0))


def stereospike_density(model: nn.Module, batches: Any, run: Any = None) -> StereoSpikeDensity:
    """Run ``model`` on every batch (stateless: reset before each) and return the seed's densities.

    Args:
        model: a StereoSpike model.
        batches: an iterable of input tensors ``[B, 1, C, H, W]``.
        run: runner ``(model, x, time_steps)``; default: the zoo's ``stereospike.run``.
    """
    if run is None:
        from snnprof.models.stereospike import run as run_fn

        run = run_fn
    with torch.no_grad(), DensityRecorder(model) as rec:
        for x in batches:
            run(model, x, 1)
    return rec.result()
