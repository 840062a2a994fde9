"""A small generic multi-step spiking CNN built from SpikingJelly layers (``step_mode='m'``).

Not a seed project: it exercises the SpikingJelly code paths (multi-step ``[T, B, ...]`` layers,
``BatchNorm``, ``LIF``/``IF``/``ParametricLIF`` neurons) on DVS-like event frames::

    conv1 3x3 (C_in->32, no bias) -> bn1 -> lif1 (LIF, tau=2, ATan) -> pool1 MaxPool 2
    conv2 3x3 (32->64, no bias)   -> bn2 -> if2 (IF)                 -> pool2 MaxPool 2
    flatten -> fc1 (64*(H/4)*(W/4) -> 128) -> plif3 (ParametricLIF) -> fc2 (128 -> classes)

The output is the analog ``fc2`` sequence ``[T, B, classes]``; the runner averages it over T.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from snnprof.models.common import bernoulli_frames, model_device
from snnprof.models.registry import register_model

__all__ = ["EVENT_PROBABILITY", "SJSpikingCNN", "make_inputs", "run", "sj_spiking_cnn"]

#: Probability of an event per (t, b, c, y, x) entry in the synthetic frames.
EVENT_PROBABILITY: float = 0.2


class SJSpikingCNN(nn.Sequential):
    """Two conv blocks and a two-layer spiking classifier, all SpikingJelly ``step_mode='m'`` layers.

    Children (in order): ``conv1 bn1 lif1 pool1 conv2 bn2 if2 pool2 flatten fc1 plif3 fc2``.

    Args:
        in_channels: input channels (2 for DVS polarity frames).
        num_classes: outputs of ``fc2``.
        image_size: H = W of the input, pixels; must be divisible by 4.
        v_threshold: firing threshold of every neuron (0.2 keeps an untrained net active in eval
            mode, where BatchNorm passes the small conv outputs through unscaled).
    """

    def __init__(
        self, in_channels: int = 2, num_classes: int = 10, image_size: int = 32, v_threshold: float = 0.2
    ) -> None:
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError(f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}")
        if image_size <= 0 or image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size}")
        side = image_size // 4
        super().__init__(
            OrderedDict(
                [
                    ("conv1", layer.Conv2d(in_channels, 32, 3, padding=1, bias=False, step_mode="m")),
                    ("bn1", layer.BatchNorm2d(32, step_mode="m")),
                    (
                        "lif1",
                        neuron.LIFNode(
                            tau=2.0,
                            detach_reset=True,
                            v_threshold=v_threshold,
                            surrogate_function=surrogate.ATan(),
                            step_mode="m",
                        ),
                    ),
                    ("pool1", layer.MaxPool2d(2, step_mode="m")),
                    ("conv2", layer.Conv2d(32, 64, 3, padding=1, bias=False, step_mode="m")),
                    ("bn2", layer.BatchNorm2d(64, step_mode="m")),
                    (
                        "if2",
                        neuron.IFNode(
                            detach_reset=True,
                            v_threshold=v_threshold,
                            surrogate_function=surrogate.ATan(),
                            step_mode="m",
                        ),
                    ),
                    ("pool2", layer.MaxPool2d(2, step_mode="m")),
                    ("flatten", layer.Flatten(step_mode="m")),
                    ("fc1", layer.Linear(64 * side * side, 128, step_mode="m")),
                    (
                        "plif3",
                        neuron.ParametricLIFNode(
                            detach_reset=True,
                            v_threshold=v_threshold,
                            surrogate_function=surrogate.ATan(),
                            step_mode="m",
                        ),
                    ),
                    ("fc2", layer.Linear(128, num_classes, step_mode="m")),
                ]
            )
        )
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)


def make_inputs(
    model: nn.Module,
    batch_size: int,
    time_steps: int,
    seed: int,
    *,
    image_size: int | None = None,
    p: float = EVENT_PROBABILITY,
) -> torch.Tensor:
    """Seeded Bernoulli event frames ``[T, B, in_channels, image_size, image_size]`` of 0/1 floats.

    Args:
        model: the network (its ``in_channels``, ``image_size`` and device are used).
        batch_size: B, samples.
        time_steps: T, frames per sample.
        seed: generator seed.
        image_size: H = W, pixels; defaults to (and must equal) the model's ``image_size``.
        p: event probability per entry.
    """
    model_size = getattr(model, "image_size", None)
    if image_size is None:
        image_size = int(model_size) if model_size is not None else 32
    elif model_size is not None and int(image_size) != int(model_size):
        raise ValueError(
            f"input image_size={image_size} does not match the model's image_size={model_size} "
            "(set model kwargs image_size too)"
        )
    channels = int(getattr(model, "in_channels", 2))
    return bernoulli_frames(
        time_steps, batch_size, channels, image_size, image_size, seed=seed, p=p, device=model_device(model)
    )


def run(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    """Reset all neuron states, run the ``[T, B, ...]`` sequence in one call, average over T.

    Args:
        model: a multi-step SpikingJelly network.
        inputs: frames ``[T, B, C, H, W]``.
        time_steps: T; must equal ``inputs.shape[0]``.

    Returns:
        The output averaged over time, ``[B, num_classes]``.
    """
    if inputs.shape[0] != time_steps:
        raise ValueError(f"inputs have {inputs.shape[0]} time steps, expected {time_steps}")
    functional.reset_net(model)
    return model(inputs).mean(0)


@register_model(
    "sj_spiking_cnn",
    make_inputs=make_inputs,
    run=run,
    step_mode="multi",
    description="Small multi-step SpikingJelly CNN (Conv-BN-LIF, Conv-BN-IF, FC-PLIF-FC) on event frames",
    paper=(
        "W. Fang et al. SpikingJelly: An open-source machine learning infrastructure platform for "
        "spike-based intelligence. Science Advances 9(40), 2023 (PLIF: W. Fang et al., ICCV 2021)"
    ),
    defaults={"batch_size": 4, "time_steps": 8, "image_size": 32},
)
def sj_spiking_cnn(
    in_channels: int = 2, num_classes: int = 10, image_size: int = 32, v_threshold: float = 0.2
) -> SJSpikingCNN:
    """Build the generic SpikingJelly spiking CNN.

    Args:
        in_channels: input channels (2 for DVS polarities).
        num_classes: outputs.
        image_size: H = W of the input, pixels (multiple of 4).
        v_threshold: firing threshold of every neuron.
    """
    return SJSpikingCNN(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, v_threshold=v_threshold
    )
