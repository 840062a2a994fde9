"""Closed-form checks of the generic multi-step SpikingJelly CNN zoo model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import base, functional, neuron
from torch import nn

from snnprof.models import sj_cnn

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "sj_spiking_cnn.toml"


def _neurons_per_layer(size: int) -> dict[str, int]:
    """Spiking neurons per (sample, step) of each neuron layer, closed form."""
    return {"lif1": 32 * size * size, "if2": 64 * (size // 2) ** 2, "plif3": 128}


def _dense_macs(in_channels: int, size: int, num_classes: int) -> dict[str, int]:
    """Dense MACs per (sample, step) of each synaptic layer, closed form."""
    return {
        "conv1": in_channels * 32 * 9 * size * size,
        "conv2": 32 * 64 * 9 * (size // 2) ** 2,
        "fc1": 64 * (size // 4) ** 2 * 128,
        "fc2": 128 * num_classes,
    }


def _measure(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, int], dict[str, int]]:
    """Per-(sample, step) neurons and dense MACs measured with forward hooks on a [T, B, ...] call."""
    steps_batch = x.shape[0] * x.shape[1]
    neurons: dict[str, int] = {}
    macs: dict[str, int] = {}

    def hook(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def fn(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            per = out.numel() // steps_batch
            if isinstance(mod, neuron.BaseNode):
                neurons[name] = per
            elif isinstance(mod, nn.Conv2d):
                macs[name] = per * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            elif isinstance(mod, nn.Linear):
                macs[name] = per * mod.in_features

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_children()]
    try:
        with torch.no_grad():
            sj_cnn.run(model, x, x.shape[0])
    finally:
        for h in handles:
            h.remove()
    return neurons, macs


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return sj_cnn.sj_spiking_cnn().eval()


def test_structure_and_step_mode(net: nn.Module) -> None:
    names = [n for n, _ in net.named_children()]
    assert names == [
        "conv1",
        "bn1",
        "lif1",
        "pool1",
        "conv2",
        "bn2",
        "if2",
        "pool2",
        "flatten",
        "fc1",
        "plif3",
        "fc2",
    ]
    assert isinstance(net.lif1, neuron.LIFNode) and net.lif1.detach_reset and net.lif1.tau == 2.0
    assert isinstance(net.if2, neuron.IFNode)
    assert isinstance(net.plif3, neuron.ParametricLIFNode)
    assert net.conv1.bias is None and net.conv2.bias is None
    assert all(m.step_mode == "m" for m in net.modules() if isinstance(m, base.StepModule))
    assert (net.fc1.in_features, net.fc2.out_features) == (64 * 8 * 8, 10)


@pytest.mark.parametrize(("in_channels", "size", "num_classes"), [(2, 32, 10), (2, 48, 11), (3, 16, 4)])
def test_neurons_and_macs_closed_form(in_channels: int, size: int, num_classes: int) -> None:
    model = sj_cnn.sj_spiking_cnn(in_channels=in_channels, num_classes=num_classes, image_size=size).eval()
    x = sj_cnn.make_inputs(model, 1, 1, seed=0)
    neurons, macs = _measure(model, x)
    assert neurons == _neurons_per_layer(size)
    assert macs == _dense_macs(in_channels, size, num_classes)


def test_default_counts_literal() -> None:
    assert sum(_neurons_per_layer(32).values()) == 32_768 + 16_384 + 128 == 49_280
    assert _dense_macs(2, 32, 10) == {"conv1": 589_824, "conv2": 4_718_592, "fc1": 524_288, "fc2": 1_280}


def test_parameter_count(net: nn.Module) -> None:
    bn = 2 * (32 + 64)  # affine weight + bias
    plif = 1  # learnable tau parameter
    expected = 2 * 32 * 9 + 32 * 64 * 9 + bn + 4096 * 128 + 128 + plif + 128 * 10 + 10
    assert sum(p.numel() for p in net.parameters()) == expected


def test_make_inputs_bernoulli_and_deterministic(net: nn.Module) -> None:
    a = sj_cnn.make_inputs(net, 4, 8, seed=0)
    b = sj_cnn.make_inputs(net, 4, 8, seed=0)
    c = sj_cnn.make_inputs(net, 4, 8, seed=1)
    assert a.shape == (8, 4, 2, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(torch.unique(a).tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - 0.2) < 0.01  # 65,536 draws: std of the mean is 0.0016
    assert sj_cnn.make_inputs(net, 1, 2, seed=0, image_size=32).shape == (2, 1, 2, 32, 32)
    with pytest.raises(ValueError, match="image_size"):
        sj_cnn.make_inputs(net, 1, 2, seed=0, image_size=48)


def test_run_shape_and_determinism(net: nn.Module) -> None:
    x = sj_cnn.make_inputs(net, 2, 2, seed=0)
    with torch.no_grad():
        out = sj_cnn.run(net, x, 2)
        again = sj_cnn.run(net, x, 2)  # reset_net first: no state carried over
        functional.reset_net(net)
        seq = net(x)
    assert out.shape == (2, 10)
    assert seq.shape == (2, 2, 10)
    assert torch.equal(out, again)
    torch.testing.assert_close(out, seq.mean(0))
    with pytest.raises(ValueError, match="time steps"):
        sj_cnn.run(net, x, 3)


def test_neuron_outputs_are_spikes(net: nn.Module) -> None:
    outs: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in net.modules() if isinstance(m, neuron.BaseNode)
    ]
    try:
        with torch.no_grad():
            sj_cnn.run(net, sj_cnn.make_inputs(net, 2, 2, seed=0), 2)
    finally:
        for h in handles:
            h.remove()
    assert len(outs) == 3
    for o in outs:
        assert set(torch.unique(o).tolist()) <= {0.0, 1.0}


def test_bad_kwargs() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        sj_cnn.sj_spiking_cnn(image_size=30)
    with pytest.raises(ValueError, match="positive"):
        sj_cnn.sj_spiking_cnn(num_classes=0)


def test_registry_entry() -> None:
    from snnprof.models.registry import create_model, get_entry

    entry = get_entry("sj_spiking_cnn")
    assert entry.step_mode == "multi"
    assert entry.factory is sj_cnn.sj_spiking_cnn
    assert entry.make_inputs is sj_cnn.make_inputs and entry.run is sj_cnn.run
    assert entry.defaults["batch_size"] == 4 and entry.defaults["time_steps"] == 8
    assert create_model("sj_spiking_cnn", num_classes=3).fc2.out_features == 3


def test_config_file() -> None:
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads(CONFIG.read_text())
    assert set(cfg) == {"model", "input", "count", "energy"}
    assert cfg["model"]["name"] == "sj_spiking_cnn"
    assert (cfg["input"]["batch_size"], cfg["input"]["time_steps"], cfg["input"]["seed"]) == (4, 8, 0)
    assert cfg["count"] == {"sop_convention": "exact", "overrides": {}}
    model = sj_cnn.sj_spiking_cnn(**cfg["model"]["kwargs"])
    inp = cfg["input"]
    x = sj_cnn.make_inputs(model, inp["batch_size"], inp["time_steps"], inp["seed"], **inp["kwargs"])
    assert x.shape == (8, 4, 2, 32, 32)
