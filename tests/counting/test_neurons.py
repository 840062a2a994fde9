"""Spiking neurons: neurons, updates, spikes, rates, per-step and per-channel spikes; multi-step vs single-step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from snnprof.counting import Profiler
from tests.counting._helpers import binary, run

T, B, C, H = 4, 3, 2, 5

NODES: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "IF": (lambda: neuron.IFNode(v_threshold=1.0), 3),
    "LIF": (lambda: neuron.LIFNode(tau=2.0, v_threshold=0.8), 5),
    "PLIF": (lambda: neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.8), 5),
}


def _drive(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 1.6


def _reference(node: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The neuron's own output, computed without the profiler (state reset before and after)."""
    functional.reset_net(node)
    with torch.no_grad():
        out = node(x).clone()
    functional.reset_net(node)
    return out


@pytest.mark.parametrize("name", list(NODES))
def test_single_step_call(name: str) -> None:
    build, per_update = NODES[name]
    node = build()
    x = _drive((B, C, H)) * 2
    out = _reference(node, x)
    res = run(node, x)
    rec = res.layers[0]
    spikes = int((out != 0).sum())
    assert 0 < spikes < B * C * H
    assert (rec.neurons, rec.neuron_updates, rec.spikes) == (C * H, B * C * H, spikes)
    assert rec.firing_rate == pytest.approx(spikes / (B * C * H))
    assert rec.flops == per_update * B * C * H
    assert rec.spikes_per_step == [spikes]
    assert rec.updates_per_step == [B * C * H]
    assert rec.spikes_per_channel == (out != 0).sum(dim=(0, 2)).tolist()
    assert rec.updates_per_channel == [B * H] * C
    assert (res.batch_size, res.time_steps) == (B, 1)
    assert res.totals.firing_rate == pytest.approx(spikes / (B * C * H))


@pytest.mark.parametrize("name", list(NODES))
def test_multi_step_call(name: str) -> None:
    build, per_update = NODES[name]
    node = build()
    functional.set_step_mode(node, "m")
    x = _drive((T, B, C, H), seed=1)
    out = _reference(node, x)
    res = run(node, x)
    rec = res.layers[0]
    fired = out != 0
    assert (rec.neurons, rec.neuron_updates, rec.spikes) == (C * H, T * B * C * H, int(fired.sum()))
    assert rec.flops == per_update * T * B * C * H
    assert rec.spikes_per_step == fired.sum(dim=(1, 2, 3)).tolist()
    assert rec.updates_per_step == [B * C * H] * T
    assert rec.spikes_per_channel == fired.sum(dim=(0, 1, 3)).tolist()
    assert rec.updates_per_channel == [T * B * H] * C
    assert rec.firing_rate_per_step == pytest.approx([s / (B * C * H) for s in rec.spikes_per_step])
    assert rec.firing_rate == pytest.approx(int(fired.sum()) / (T * B * C * H))
    assert (res.batch_size, res.time_steps) == (B, T)


def test_single_step_loop_of_a_node_equals_multi_step() -> None:
    node = neuron.LIFNode(tau=2.0, v_threshold=0.7)
    x = _drive((T, B, C, H), seed=2)
    functional.set_step_mode(node, "m")
    multi = run(node, x)
    functional.set_step_mode(node, "s")
    functional.reset_net(node)
    with Profiler(node) as prof:
        for t in range(T):
            node(x[t])
    single = prof.result()
    a, b = multi.layers[0], single.layers[0]
    for field in ("neurons", "neuron_updates", "spikes", "flops", "spikes_per_step", "updates_per_step",
                  "spikes_per_channel", "updates_per_channel"):
        assert getattr(a, field) == getattr(b, field), field
    assert (single.batch_size, single.time_steps) == (B, T)


def test_other_spikingjelly_node_uses_generic_rule() -> None:
    node = neuron.QIFNode()
    x = _drive((B, C, H)) * 5
    out = _reference(node, x)
    res = run(node, x)
    rec = res.layers[0]
    assert rec.spikes == int((out != 0).sum())
    assert rec.flops == 4 * B * C * H
    assert any("QIFNode" in w for w in res.warnings)


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(1, 2, 3, padding=1, bias=False),
        neuron.LIFNode(tau=2.0, v_threshold=0.5),
        layer.Flatten(),
        layer.Linear(2 * 4 * 4, 3),
        neuron.IFNode(v_threshold=0.5),
    )
    with torch.no_grad():  # weights that make both neuron layers fire sometimes, but not always
        net[0].weight.uniform_(0.0, 0.3)
        net[3].weight.uniform_(-0.1, 0.15)
    return net


def _manual_outputs(net: nn.Module, x: torch.Tensor, steps: int | None) -> list[torch.Tensor]:
    """Per-layer outputs computed by calling the children one by one (no hooks anywhere)."""
    functional.reset_net(net)
    outs: list[list[torch.Tensor]] = [[] for _ in net]
    with torch.no_grad():
        for xt in ([x] if steps is None else list(x)):
            h = xt
            for i, m in enumerate(net):
                h = m(h)
                outs[i].append(h)
    functional.reset_net(net)
    return [torch.stack(o) if steps is not None else o[0] for o in outs]


FIELDS = ("macs", "dense_macs", "flops", "sops", "neurons", "neuron_updates", "spikes", "params")


@pytest.mark.parametrize("give_steps", [True, False])
def test_conv_lif_linear_multi_step_equals_single_step_loop(give_steps: bool) -> None:
    net = _net()
    x = torch.rand(T, B, 1, 4, 4, generator=torch.Generator().manual_seed(3))

    functional.set_step_mode(net, "m")
    outs = _manual_outputs(net, x, None)
    functional.reset_net(net)
    multi = run(net, x)

    functional.set_step_mode(net, "s")
    outs_single = _manual_outputs(net, x, T)
    functional.reset_net(net)
    with Profiler(net, time_steps=T if give_steps else None) as prof:
        for t in range(T):
            net(x[t])
    single = prof.result()
    assert single.unsupported == []

    for o_m, o_s in zip(outs, outs_single, strict=True):
        assert torch.allclose(o_m, o_s, atol=1e-6)  # the same computation either way
    assert torch.equal(outs[1], outs_single[1]) and torch.equal(outs[4], outs_single[4])  # identical spikes
    for f in FIELDS:
        assert getattr(multi.totals, f) == getattr(single.totals, f), f
    assert multi.totals.sops_rate == pytest.approx(single.totals.sops_rate)
    assert [r.name for r in multi.layers] == [r.name for r in single.layers] == ["0", "1", "2", "3", "4"]
    for a, b in zip(multi.layers, single.layers, strict=True):
        for f in (*FIELDS, "spikes_per_step", "updates_per_step", "spikes_per_channel", "updates_per_channel"):
            assert getattr(a, f) == getattr(b, f), (a.name, f)
    assert (multi.batch_size, multi.time_steps) == (B, T)
    assert (single.batch_size, single.time_steps) == (B, T)

    # closed form against the hand-computed layer outputs
    lif, if2 = outs[1] != 0, outs[4] != 0
    assert 0 < int(lif.sum()) < lif.numel() and 0 < int(if2.sum()) < if2.numel()
    assert multi.layer("1").spikes_per_step == lif.sum(dim=(1, 2, 3, 4)).tolist()
    assert multi.layer("1").spikes_per_channel == lif.sum(dim=(0, 1, 3, 4)).tolist()
    assert multi.layer("4").spikes_per_step == if2.sum(dim=(1, 2)).tolist()
    assert multi.layer("4").spikes_per_channel == if2.sum(dim=(0, 1)).tolist()
    conv, fc = multi.layer("0"), multi.layer("3")
    assert (conv.input_kind, conv.macs, conv.dense_macs) == ("dense", T * B * 2 * 16 * 9, T * B * 2 * 16 * 9)
    assert fc.input_kind == "spike"
    assert (fc.macs, fc.sops, fc.dense_macs) == (0, int(lif.sum()) * 3, T * B * 32 * 3)
    assert multi.totals.spikes == int(lif.sum()) + int(if2.sum())
    assert multi.totals.neuron_updates == T * B * (32 + 3)
    assert multi.totals.neurons == 32 + 3
    assert multi.per_sample["sops"] == pytest.approx(fc.sops / B)


def test_single_step_loop_over_two_batches_with_time_steps() -> None:
    """Two samples-batches of T steps each: per-step lists fold onto T steps, batch adds up."""
    net = _net()
    functional.set_step_mode(net, "s")
    xs = torch.rand(2, T, B, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    expected_steps = [0] * T
    for batch in xs:
        outs = _manual_outputs(net, batch, T)
        for t in range(T):
            expected_steps[t] += int((outs[1][t] != 0).sum())
    with Profiler(net, time_steps=T) as prof:
        for batch in xs:
            functional.reset_net(net)
            for t in range(T):
                net(batch[t])
    res = prof.result()
    assert 0 < sum(expected_steps) < 2 * T * B * 32
    assert res.time_steps == T
    assert res.batch_size == 2 * B
    assert res.layer("1").spikes_per_step == expected_steps
    assert res.layer("1").updates_per_step == [2 * B * 32] * T


def test_parallel_spiking_neuron_counts_its_time_mixing_product() -> None:
    """PSN is observed: spikes from its output, its ``W [T, T] @ X [T, N]`` product counted as executed."""
    steps, batch, features = 4, 2, 3
    psn = neuron.PSN(steps)
    x = torch.rand(steps, batch, features, generator=torch.Generator().manual_seed(0))
    res = run(psn, x)
    rec = res.layer("")
    n = batch * features
    assert (rec.neuron_updates, rec.neurons) == (steps * n, features)
    product = res.layer("(root)/addmm.0")
    assert (product.dense_macs, product.flops) == (steps * steps * n, 2 * steps * steps * n + steps * n)
    assert res.totals.dense_macs == steps * steps * n


def test_calls_inside_vmap_are_counted_on_physical_tensors() -> None:
    """SpikingJelly's TLastSeqToANNContainer runs its module under torch.vmap over the last (time) dim."""
    batch, features, steps, out = 2, 4, 3, 5
    net = layer.TLastSeqToANNContainer(nn.Linear(features, out))
    x = binary((batch, features, steps), seed=2)
    rec = run(net, x).layer("0")
    rows = batch * steps
    assert (rec.dense_macs, rec.flops) == (rows * features * out, 2 * rows * features * out + rows * out)
    assert (rec.macs, rec.sops) == (0, int(x.sum()) * out)
