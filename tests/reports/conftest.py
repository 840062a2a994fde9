"""Small SNN/ANN pairs profiled once per session, plus helpers for the report tests."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import snnprof

#: Batch, time steps and image size of the tiny nets (closed-form ANN counts below).
B, T, C_IN, C_OUT, H = 2, 4, 2, 8, 16
XSS = "<script>alert(1)</script>"
DATE = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PROFILES = ["cmos45nm_fp32", "loihi"]


def ann_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(C_IN, C_OUT, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(C_OUT * H * H, 10)
    )


def snn_net(first_name: str = "0") -> nn.Module:
    net = nn.Sequential(
        OrderedDict(
            [
                (first_name, layer.Conv2d(C_IN, C_OUT, 3, padding=1, bias=False)),
                ("lif", neuron.LIFNode(v_threshold=0.3)),
                ("flat", layer.Flatten()),
                ("fc", layer.Linear(C_OUT * H * H, 10)),
            ]
        )
    )
    functional.set_step_mode(net, "m")
    return net


def spikes(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C_IN, H, H, generator=gen) < 0.2).float()


#: Per-sample dense MACs of both nets: conv (pad 1 keeps H x H) + linear.
DENSE_MACS_PER_SAMPLE = C_OUT * H * H * C_IN * 9 + C_OUT * H * H * 10


@pytest.fixture(scope="session")
def snn_result() -> snnprof.ProfileResult:
    torch.manual_seed(0)
    with torch.no_grad():
        return snnprof.profile(snn_net(), spikes(), time_steps=T, batch_size=B, model_name="tiny_snn")


@pytest.fixture(scope="session")
def ann_result() -> snnprof.ProfileResult:
    torch.manual_seed(0)
    x = torch.rand(B, C_IN, H, H, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return snnprof.profile(ann_net(), x, batch_size=B, model_name="tiny_ann")


@pytest.fixture(scope="session")
def xss_result() -> snnprof.ProfileResult:
    """An SNN whose first layer and model name carry a script tag."""
    torch.manual_seed(0)
    with torch.no_grad():
        return snnprof.profile(snn_net(XSS), spikes(), time_steps=T, batch_size=B, model_name=XSS)


def measured(joules: float = 0.002, **extra: object) -> dict:
    return {"joules_per_sample": {"mean": joules, "std": joules / 20}, "gpu_name": "NVIDIA H100 80GB HBM3",
            "method": "energy_counter", **extra}
