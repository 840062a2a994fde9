"""Shared helpers of the model zoo: seeded synthetic inputs and device lookup.

Every generator draws on the CPU from its own ``torch.Generator`` seeded with ``seed`` (the global
RNG is never touched), so the same seed gives bit-identical inputs on any machine; the tensor is
then moved to the model's device.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "bernoulli_frames",
    "gaussian_images",
    "model_device",
    "seeded_generator",
]


def seeded_generator(seed: int) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded with ``seed``.

    Args:
        seed: the seed (any Python int accepted by ``manual_seed``).
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    return gen


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer; CPU for a stateless model."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def gaussian_images(
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    *,
    seed: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard-normal image batch ``[B, C, H, W]`` (a stand-in for normalised CIFAR images).

    Args:
        batch_size: B, images.
        channels: C, input channels.
        height: H, pixels.
        width: W, pixels.
        seed: generator seed; the same seed gives the same tensor.
        device: where to put the result (drawn on the CPU first).

    Returns:
        A float32 tensor of shape ``[B, C, H, W]``.
    """
    _check_positive(batch_size=batch_size, channels=channels, height=height, width=width)
    x = torch.randn((batch_size, channels, height, width), generator=seeded_generator(seed), dtype=torch.float32)
    return x.to(device) if device is not None else x


def bernoulli_frames(
    time_steps: int,
    batch_size: int,
    channels: int,
    height: int,
    width: int,
    *,
    seed: int,
    p: float = 0.2,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Binary event frames ``[T, B, C, H, W]``, each entry 1 with probability ``p`` (a DVS stand-in).

    Args:
        time_steps: T, frames per sample.
        batch_size: B, samples.
        channels: C, polarity channels.
        height: H, pixels.
        width: W, pixels.
        seed: generator seed; the same seed gives the same tensor.
        p: event probability per entry, in [0, 1].
        device: where to put the result (drawn on the CPU first).

    Returns:
        A float32 tensor of 0/1 values with shape ``[T, B, C, H, W]``.
    """
    _check_positive(time_steps=time_steps, batch_size=batch_size, channels=channels, height=height, width=width)
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    probs = torch.full((time_steps, batch_size, channels, height, width), float(p), dtype=torch.float32)
    x = torch.bernoulli(probs, generator=seeded_generator(seed))
    return x.to(device) if device is not None else x
