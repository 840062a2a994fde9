"""A small multi-step SpikingJelly CNN made only of layers NIR can express (the NIR round-trip model).

``sj_spiking_cnn`` with the layers NIR lacks swapped out: no BatchNorm (conv biases instead),
average and sum pooling instead of max pooling, hard-reset LIF/IF neurons::

    conv1 3x3 (C_in->16) -> lif1 (LIF, tau=2) -> pool1 AvgPool 2
    conv2 3x3 (16->32)   -> if2 (IF)          -> pool2 SumPool 2 (AvgPool2d, divisor_override=1)
    flatten -> fc1 (32*(H/4)*(W/4) -> 64) -> lif3 (LIF, tau=2) -> fc2 (64 -> classes)

``snnprof export configs/sj_nir_cnn.toml --nir sj_nir_cnn.nir`` writes it as a NIR graph;
``snnprof count sj_nir_cnn.nir`` counts the graph to the same MACs, SOPs, updates and spikes.
Inputs and runner are ``sj_spiking_cnn``'s (seeded Bernoulli event frames, one multi-step call).
"""

from __future__ import annotations

from collections import OrderedDict

from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnprof.models.registry import register_model
from snnprof.models.sj_cnn import make_inputs, run

__all__ = ["SJNirCNN", "sj_nir_cnn"]


class SJNirCNN(nn.Sequential):
    """Two conv blocks and a spiking classifier in NIR-expressible SpikingJelly ``step_mode='m'`` layers.

    Args:
        in_channels: input channels (2 for DVS polarity frames).
        num_classes: outputs of ``fc2``.
        image_size: H = W of the input, pixels; a positive multiple of 4.
        v_threshold: firing threshold of every neuron.
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 10, image_size: int = 32,
                 v_threshold: float = 0.25) -> None:
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError(f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}")
        if image_size <= 0 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size}")
        side = image_size // 4
        super().__init__(OrderedDict([
            ("conv1", layer.Conv2d(in_channels, 16, 3, padding=1, step_mode="m")),
            ("lif1", neuron.LIFNode(tau=2.0, v_threshold=v_threshold, step_mode="m")),
            ("pool1", layer.AvgPool2d(2, step_mode="m")),
            ("conv2", layer.Conv2d(16, 32, 3, padding=1, step_mode="m")),
            ("if2", neuron.IFNode(v_threshold=v_threshold, step_mode="m")),
            ("pool2", layer.AvgPool2d(2, divisor_override=1, step_mode="m")),
            ("flatten", layer.Flatten(step_mode="m")),
            ("fc1", layer.Linear(32 * side * side, 64, step_mode="m")),
            ("lif3", neuron.LIFNode(tau=2.0, v_threshold=v_threshold, step_mode="m")),
            ("fc2", layer.Linear(64, num_classes, step_mode="m")),
        ]))
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)


@register_model(
    "sj_nir_cnn",
    make_inputs=make_inputs,
    run=run,
    step_mode="multi",
    description="SpikingJelly CNN of NIR-expressible layers (conv, LIF/IF, avg/sum pool, linear); NIR round trip",
    paper="snnprof (NIR export/import test model)",
    defaults={"batch_size": 4, "time_steps": 8},
)
def sj_nir_cnn(in_channels: int = 2, num_classes: int = 10, image_size: int = 32,
               v_threshold: float = 0.25) -> SJNirCNN:
    """Build :class:`SJNirCNN`."""
    return SJNirCNN(in_channels, num_classes, image_size, v_threshold)
