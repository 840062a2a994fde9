"""A network of your own: any nn.Module (a class or a function returning one) works with snnprof."""

import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


class TinyNet(nn.Module):
    """Conv-LIF, average pool, Linear-LIF on event frames [T, B, 2, 32, 32] (SpikingJelly multi-step)."""

    def __init__(self, channels: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            layer.Conv2d(2, channels, 3, padding=1), neuron.LIFNode(tau=2.0, v_threshold=0.1), layer.AvgPool2d(4))
        self.classifier = nn.Sequential(
            layer.Flatten(), layer.Linear(channels * 8 * 8, classes), neuron.LIFNode(tau=2.0, v_threshold=0.1))
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes of the classifier, ``[T, B, classes]``."""
        return self.classifier(self.features(x))
