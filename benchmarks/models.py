"""Benchmark models and the cases shared by ``test_overhead.py`` and ``overhead_table.py``.

* ``resnet18``: a hand-written torchvision-equivalent ResNet-18 (BasicBlock ``[2, 2, 2, 2]``,
  11.69 M parameters, 1.82 G MACs per 224x224 image); torchvision is not imported on purpose.
* ``ottt_vgg11_ws``: the snnprof zoo's OTTT online spiking VGG-11 (32x32, single-step loop over T).

Every tool is wrapped as a zero-argument callable (:func:`make_runners`) so that pytest-benchmark
and the interleaved A/B table time exactly the same code.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "RESNET_BATCH",
    "ROUNDS",
    "RESNET_SIZE",
    "OTTT_BATCH",
    "OTTT_STEPS",
    "TOOLS",
    "Runner",
    "BasicBlock",
    "Case",
    "ResNet18",
    "make_case",
    "make_runners",
    "ottt_case",
    "resnet_case",
    "summarize",
]

RESNET_BATCH = 8
RESNET_SIZE = 224
OTTT_BATCH = 16
OTTT_STEPS = 6
SEED = 0
#: pytest-benchmark rounds per (model, tool); override with ``SNNPROF_BENCH_ROUNDS``.
ROUNDS = int(os.environ.get("SNNPROF_BENCH_ROUNDS", "5"))

#: Tools in table order.
TOOLS: tuple[str, ...] = ("plain", "snnprof", "sj_dispatch", "fvcore", "thop")


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BN, identity or 1x1-conv/BN shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 for ImageNet (He et al. 2016), layer-for-layer as torchvision's ``resnet18``."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        planes, layers = 64, []
        for i, width in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(planes, width, stride), BasicBlock(width, width, 1)))
            planes = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@dataclass
class Case:
    """One benchmarked model: the network, its input and how one profiled "run" calls it."""

    name: str
    model: nn.Module
    inputs: torch.Tensor
    time_steps: int
    batch_size: int
    run: Callable[[nn.Module, torch.Tensor], Any]
    #: fvcore traces one model call at a time: ``[(args, ...)]`` per traced call.
    trace_calls: list[tuple[Any, ...]]


def resnet_case() -> Case:
    torch.manual_seed(SEED)
    model = ResNet18().eval()
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(RESNET_BATCH, 3, RESNET_SIZE, RESNET_SIZE, generator=gen)
    return Case("resnet18", model, x, 1, RESNET_BATCH, lambda m, inp: m(inp), [(x,)])


def ottt_case() -> Case:
    from snnprof.models import get_entry

    entry = get_entry("ottt_vgg11_ws")
    torch.manual_seed(SEED)
    model = entry.factory().eval()
    x = entry.make_inputs(model, OTTT_BATCH, OTTT_STEPS, SEED)
    calls = [(x, t == 0) for t in range(OTTT_STEPS)]
    return Case("ottt_vgg11_ws", model, x, OTTT_STEPS, OTTT_BATCH, lambda m, inp: entry.run(m, inp, OTTT_STEPS), calls)


def make_case(name: str) -> Case:
    if name == "resnet18":
        return resnet_case()
    if name == "ottt_vgg11_ws":
        return ottt_case()
    raise ValueError(f"unknown benchmark model {name!r}")


@dataclass
class Runner:
    """One tool's profiled run: ``call(setup())``; ``setup`` (untimed) prepares per-run state, e.g. thop's copy."""

    call: Callable[[Any], Any]
    setup: Callable[[], Any] | None = None

    def prepare(self) -> Any:
        return self.setup() if self.setup is not None else None


def make_runners(case: Case) -> dict[str, Runner]:
    """One :class:`Runner` per tool in :data:`TOOLS`, each doing one full run of the case under that tool."""
    from spikingjelly.activation_based.op_counter import ACCounter, DispatchCounterMode, MACCounter, SynOpCounter

    import snnprof

    model, x = case.model, case.inputs

    def plain(_: Any) -> Any:
        with torch.no_grad():
            return case.run(model, x)

    def snnprof_run(_: Any) -> Any:
        # every counter on: that is snnprof's default
        with torch.no_grad(), snnprof.Profiler(model, time_steps=case.time_steps, batch_size=case.batch_size) as prof:
            case.run(model, x)
        return prof.result()

    def sj_dispatch(_: Any) -> Any:
        counters = [SynOpCounter(), MACCounter(), ACCounter()]
        with torch.no_grad(), DispatchCounterMode(counters, strict=False):
            case.run(model, x)
        return [c.get_total() for c in counters]

    def fvcore_run(_: Any) -> Any:
        from fvcore.nn import FlopCountAnalysis

        total = 0
        with torch.no_grad():
            # fvcore traces one call with torch.jit; the online loop is T calls, each traced and counted
            for args in case.trace_calls:
                flops = FlopCountAnalysis(model, args)
                flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                total += flops.total()
        return total

    def thop_run(clone: nn.Module) -> Any:
        from thop import profile as thop_profile

        total = 0.0
        with torch.no_grad():
            # thop profiles one call; the online loop is T calls (thop mutates the model: a fresh copy per run)
            for args in case.trace_calls:
                macs, _params = thop_profile(clone, inputs=args, verbose=False)
                total += macs
        return total

    return {
        "plain": Runner(plain),
        "snnprof": Runner(snnprof_run),
        "sj_dispatch": Runner(sj_dispatch),
        "fvcore": Runner(fvcore_run),
        "thop": Runner(thop_run, setup=lambda: copy.deepcopy(model)),
    }


def summarize(tool: str, out: Any) -> str:
    """One-line description of what a tool returned (sanity check that it counted something)."""
    if tool == "plain":
        return "-"
    if tool == "snnprof":
        t = out.totals
        return f"MACs {t.macs:.4g}, SOPs {t.sops:.4g}, dense MACs {t.dense_macs:.4g}"
    if tool == "sj_dispatch":
        syn, mac, ac = out
        return f"SynOps {syn:.4g}, MACs {mac:.4g}, ACs {ac:.4g}"
    return f"{'MACs' if tool == 'thop' else 'flops (=MACs)'} {float(out):.4g}"
